// A fake OpenAI-compatible model for the browser tests: a real HTTP server on 127.0.0.1.
//
//   import { startFakeModel } from './fake-model.mjs';
//   const model = await startFakeModel({ port: 0 });   // → { url, port, requests, getRequests, close }
//
// `url` is the base URL to give the server as MATHIA_AI_BASE_URL (it ends in `/v1`; any path that
// ends in `/chat/completions` is answered, so a base with or without `/v1` works).
//
// POST …/chat/completions with `stream: true` answers `text/event-stream`:
//   data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"…"},"finish_reason":null}]}
//   … (CHUNKS chunks, DELAY_MS apart — slow enough for a person, or a test, to press Stop)
//   data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}
//   data: [DONE]
// The text is FAKE_REPLY (its rendered form, markdown removed, is FAKE_REPLY_TEXT).
//
// Reminders: when the request offers a tool whose name mentions "remind" and the last user message
// says "remind me to <what> in <n> <unit>", the model answers with a streamed tool call whose
// arguments are filled from the tool's JSON schema (text/what → <what>; due_at/when/time → an
// ISO timestamp; *minutes* → n in minutes; *seconds* → in seconds). Once the tool result is in
// the conversation it answers in text ("Okay — I will remind you to <what> …").
// Without tools, such a request is answered in text too, so a server that reads the intent itself
// also works.
//
// A request without `stream: true` gets one JSON `chat.completion`: `{"flags": []}` as content when
// the prompt talks about moderation (nothing to flag), else FAKE_REPLY.
//
// A request whose last user message says "vary" is answered "Answer number <n>." (n counts such
// answers), so a regenerated reply differs from the first one.
//
// Every request body is recorded (`requests`, or GET /__requests over HTTP, which is how a test
// inspects a fake model that the runner script started); POST /__reset clears them.

import http from 'node:http';

export const CHUNKS = 40;
export const DELAY_MS = 50;

export const FAKE_REPLY =
  'Hello from the fake model! This reply arrives in forty small pieces, fifty milliseconds apart, ' +
  'so that someone in the room can press Stop while it is still being written out for everyone. ' +
  'It ends with a little **markdown** and `code`.';
export const FAKE_REPLY_TEXT = FAKE_REPLY.replace(/\*\*/g, '').replace(/`/g, '');

/** Splits text into `n` pieces of nearly equal length (never empty while text lasts). */
export function splitInto(text, n) {
  const chars = [...text];
  const pieces = [];
  for (let i = 0; i < n; i++) {
    const from = Math.round((i * chars.length) / n);
    const to = Math.round(((i + 1) * chars.length) / n);
    const piece = chars.slice(from, to).join('');
    if (piece) pieces.push(piece);
  }
  return pieces;
}

const REMIND = /remind me to (.+?) in (\d+)\s*(seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h)\b/gi;

/** The last "remind me to … in N unit" of the text (a server may send the history as one message). */
function parseReminder(text) {
  const m = [...String(text || '').matchAll(REMIND)].at(-1);
  if (!m) return null;
  const n = Number(m[2]);
  const unit = m[3].toLowerCase();
  const seconds = unit.startsWith('s') ? n : unit.startsWith('h') ? n * 3600 : n * 60;
  return { what: m[1].trim(), seconds, phrase: `${m[2]} ${m[3]}` };
}

function textOf(message) {
  if (!message) return '';
  if (typeof message.content === 'string') return message.content;
  if (Array.isArray(message.content)) {
    return message.content.map((part) => (typeof part === 'string' ? part : part?.text || '')).join('');
  }
  return '';
}

function reminderTool(body) {
  const tools = Array.isArray(body.tools) ? body.tools : [];
  return tools.find((t) => /remind/i.test(t?.function?.name || t?.name || '')) || null;
}

/** Fills a tool's declared parameters from the parsed reminder. */
function toolArguments(tool, reminder) {
  const schema = tool.function?.parameters || tool.parameters || {};
  const props = schema.properties || {};
  const due = new Date(Date.now() + reminder.seconds * 1000).toISOString();
  const args = {};
  for (const [name, spec] of Object.entries(props)) {
    const key = name.toLowerCase();
    const numeric = spec?.type === 'integer' || spec?.type === 'number';
    if (/(text|what|message|title|task|description|body|content|note)/.test(key)) args[name] = reminder.what;
    else if (/minute|(^|_)mins?(_|$)/.test(key)) args[name] = Math.round(reminder.seconds / 60);
    else if (/second|delay|(^|_)(secs?|s)(_|$)/.test(key)) args[name] = reminder.seconds;
    else if (/due|when|time|date|(^|_)at$/.test(key)) {
      args[name] = numeric ? Math.round(Date.now() / 1000) + reminder.seconds : due;
    } else if (/(^|_)(in|after|duration)(_|$)/.test(key)) args[name] = numeric ? reminder.seconds : reminder.phrase;
  }
  if (Object.keys(props).length === 0) {
    args.text = reminder.what;
    args.due_at = due;
  }
  return args;
}

let varied = 0;

/** Decides what the model says to one request: {toolCall?: {name, arguments}, text}. */
function answer(body) {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  let lastUser = -1;
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i]?.role === 'user') {
      lastUser = i;
      break;
    }
  }
  const userText = textOf(messages[lastUser]);
  const reminder = parseReminder(userText);
  const toolDone = messages.slice(lastUser + 1).some((m) => m?.role === 'tool' || m?.role === 'function');
  if (reminder) {
    const tool = reminderTool(body);
    if (tool && !toolDone) {
      return {
        toolCall: {
          name: tool.function?.name || tool.name,
          arguments: JSON.stringify(toolArguments(tool, reminder)),
        },
      };
    }
    return { text: `Okay — I will remind you to ${reminder.what} in ${reminder.phrase}.` };
  }
  if (/\bvary\b/i.test(userText)) {
    varied += 1;
    return { text: `Answer number ${varied}.` };
  }
  return { text: FAKE_REPLY };
}

function isModerationPrompt(body) {
  const all = (Array.isArray(body.messages) ? body.messages : []).map(textOf).join('\n');
  return /moderat/i.test(all);
}

export async function startFakeModel({ port = 0, host = '127.0.0.1', chunks = CHUNKS, delayMs = DELAY_MS } = {}) {
  const requests = [];
  const sockets = new Set();

  const server = http.createServer(async (req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (req.method === 'GET' && path === '/__requests') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(requests));
      return;
    }
    if (req.method === 'POST' && path === '/__reset') {
      requests.length = 0;
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'GET' && /\/models$/.test(path)) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [{ id: 'fake-model', object: 'model', owned_by: 'e2e' }] }));
      return;
    }
    if (req.method !== 'POST' || !/\/chat\/completions$/.test(path)) {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { message: `no route ${req.method} ${path}`, type: 'invalid_request_error' } }));
      return;
    }

    let raw = '';
    for await (const chunk of req) raw += chunk;
    let body;
    try {
      body = JSON.parse(raw);
    } catch {
      res.writeHead(400, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'body is not JSON', type: 'invalid_request_error' } }));
      return;
    }
    requests.push(body);
    const id = `chatcmpl-fake-${requests.length}`;
    const model = body.model || 'fake-model';
    const created = Math.floor(Date.now() / 1000);

    if (!body.stream) {
      const content = isModerationPrompt(body) ? '{"flags": []}' : answer(body).text || FAKE_REPLY;
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({
          id,
          object: 'chat.completion',
          created,
          model,
          choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
        }),
      );
      return;
    }

    res.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache',
      Connection: 'keep-alive',
    });
    let closed = false;
    res.on('close', () => {
      closed = true;
    });
    const frame = (delta, finishReason = null) =>
      `data: ${JSON.stringify({
        id,
        object: 'chat.completion.chunk',
        created,
        model,
        choices: [{ index: 0, delta, finish_reason: finishReason }],
      })}\n\n`;
    const pause = () => new Promise((resolve) => setTimeout(resolve, delayMs));

    const { toolCall, text } = answer(body);
    if (toolCall) {
      const callId = `call_fake_${requests.length}`;
      const parts = splitInto(toolCall.arguments, 3);
      res.write(
        frame({
          role: 'assistant',
          content: null,
          tool_calls: [{ index: 0, id: callId, type: 'function', function: { name: toolCall.name, arguments: '' } }],
        }),
      );
      for (const part of parts) {
        if (closed) return;
        await pause();
        res.write(frame({ tool_calls: [{ index: 0, function: { arguments: part } }] }));
      }
      if (closed) return;
      res.write(frame({}, 'tool_calls'));
      res.end('data: [DONE]\n\n');
      return;
    }

    const pieces = splitInto(text, chunks);
    for (let i = 0; i < pieces.length; i++) {
      if (closed) return; // the server stopped the stream (stop_ai): stop writing
      res.write(frame(i === 0 ? { role: 'assistant', content: pieces[i] } : { content: pieces[i] }));
      await pause();
    }
    if (closed) return;
    res.write(frame({}, 'stop'));
    res.end('data: [DONE]\n\n');
  });

  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actualPort = server.address().port;
  const url = `http://${host}:${actualPort}/v1`;

  return {
    url,
    port: actualPort,
    requests,
    getRequests: async () => requests,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * The fake model a test should talk to: starts one on `port`, or — when that port is taken
 * (the runner script started `fake-model-server.mjs` there before the server) — uses that one
 * over HTTP. `external` says which.
 */
export async function useFakeModel({ port = 0, host = '127.0.0.1' } = {}) {
  try {
    return { ...(await startFakeModel({ port, host })), external: false };
  } catch (err) {
    if (err.code !== 'EADDRINUSE' || !port) throw err;
    const base = `http://${host}:${port}`;
    return {
      url: `${base}/v1`,
      port,
      external: true,
      requests: null,
      getRequests: async () => (await fetch(`${base}/__requests`)).json(),
      close: async () => {},
    };
  }
}
