// Chat pane state: constants, the one object `S` holding every mutable variable, and the per-room
// store (messages by id with revisions, pending messages, streams, presence, typing).

export const BODY_MAX = 4000;
export const HISTORY_PAGE = 50;
export const CATCHUP_PAGE = 100;
export const CATCHUP_MAX_PAGES = 100;
export const TYPING_SEND_EVERY_MS = 2000;
export const TYPING_IDLE_MS = 3000;
export const TYPING_SHOW_MS = 5000;
export const NEAR_BOTTOM_PX = 80;
export const EDIT_TIMEOUT_MS = 10_000;
export const STREAM_STALE_MS = 20_000; // on reconnect: a stream silent this long is given up
export const STREAM_IDLE_MS = 60_000; // any time: a stream silent this long lost its end; drop it
export const EXCERPT_MAX = 140;
export const REACTIONS = ['👍', '❤️', '😂', '🎉', '👀', '✅'];
export const FILES_AT_ONCE = 10;

export const ERROR_TEXT = {
  rate_limited: 'You are sending messages too quickly. Please wait a moment.',
  not_member: 'You are not a member of this room any more.',
  muted: 'You are muted in this room for now.',
  too_large: 'That message is too long.',
  insufficient_funds: 'The workspace is out of credits — ask your Mathia operator to top it up.',
  onboarding_incomplete: 'Finish setting up your account before chatting.',
  forbidden: 'You can only change your own messages.',
  not_found: 'That message no longer exists.',
  too_many_pins: 'This room already has 50 pinned messages. Unpin one first.',
  unavailable: 'Mathia is having trouble right now. Please try again.',
  internal: 'Something went wrong on our side. Please try again.',
};

export const reducedMotion = window.matchMedia('(prefers-reduced-motion: reduce)');

/** All of the chat pane's mutable state. Other modules read and write `S.<name>`. */
export const S = {
  /** roomId -> room state (see `state`) */
  rooms: new Map(),
  /** client_msg_id -> roomId, for acks and errors that do not name the room */
  pendingRoom: new Map(),
  /** key -> element of the current room's rendered items */
  nodes: new Map(),
  /** message id -> [revision, signature]: the revision goes up when what is shown changes */
  revisions: new Map(),
  /** stream ids that have ended (late chunks for them are ignored) */
  endedStreams: new Set(),
  /** upload id -> {id, roomId, file, caption, progress, handle, el} */
  uploads: new Map(),

  me: null,
  current: null, // the room shown in the pane
  initialized: false,
  hooks: { openWallet: () => {}, finishOnboarding: () => {} },

  editing: null, // {roomId, id, draft, saving, timer}
  confirming: null, // id of the message whose delete is being confirmed
  picker: null, // id of the message whose emoji picker is open
  activeMessageId: null, // the message that takes Tab focus in the list (roving tabindex)

  typingRoom: null,
  lastTypingSentAt: 0,
  typingIdleTimer: null,

  notice: null, // {text, label, action, kind}
  rateLimitUntil: 0,
  rateLimitTimer: null,
  connectionTimer: null,
  everConnected: false,
  animFrame: null,
  pinned: true, // the list was scrolled to the bottom when last scrolled (thumbnails keep it there)
  dragDepth: 0,
  mentionPicks: new Map(), // '@Name' picked in the composer -> user id (sent as `<@id>`)
};

export function state(roomId) {
  let st = S.rooms.get(roomId);
  if (!st) {
    st = {
      messages: new Map(),
      pending: new Map(),
      online: new Map(),
      onlineCount: null, // people online, listed or not, as the server last counted them
      presenceFloor: null, // the presence number room_joined's list was read at
      countSeq: null, // the presence number onlineCount came with
      presenceSeqOf: new Map(), // user id -> the presence number of the change last applied
      typing: new Map(),
      streams: new Map(),
      hasMore: false,
      loaded: false,
      loadingOlder: false,
      draft: '',
      replyTo: null,
      mutedUntil: 0,
      muteTimer: null,
      catchingUp: false,
      catchUpQueued: false,
      gapTried: null,
      dividerSeq: null, // the read marker when the room was opened: "New messages" goes after it
    };
    S.rooms.set(roomId, st);
  }
  return st;
}

export function friendly(code, message) {
  return ERROR_TEXT[code] || message || 'Something went wrong.';
}

/** Stores (or replaces) a message by id; bumps its revision when what is shown changed. */
export function storeMessage(st, message) {
  if (!message || message.id == null) return;
  st.messages.set(message.id, message);
  const signature = JSON.stringify([
    message.seq,
    message.body,
    Boolean(message.deleted),
    message.edited_at || null,
    message.reactions || [],
    message.reply_to || null,
    Boolean(message.stopped),
    message.attachment || null,
    message.sources || [],
    message.private_sources || 0,
    message.tools || [],
    message.pinned || null,
    message.mentions || [],
    Boolean(message.mentions_room),
  ]);
  const known = S.revisions.get(message.id);
  if (!known) S.revisions.set(message.id, [0, signature]);
  else if (known[1] !== signature) S.revisions.set(message.id, [known[0] + 1, signature]);
  if (message.client_msg_id && st.pending.has(message.client_msg_id)) {
    dropPending(st, message.client_msg_id);
  }
}

export function bump(id) {
  const known = S.revisions.get(id);
  if (known) S.revisions.set(id, [known[0] + 1, known[1]]);
}

export function dropPending(st, cmid) {
  st.pending.delete(cmid);
  S.pendingRoom.delete(cmid);
}

export function isCurrent(roomId) {
  return S.current !== null && S.current.id === roomId;
}

export function isMine(message) {
  return Boolean(message?.author && S.me && message.author.id === S.me.id);
}

export function sortedMessages(st) {
  return [...st.messages.values()].sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0) || cmp(a.id, b.id));
}

export function cmp(a, b) {
  return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
}
