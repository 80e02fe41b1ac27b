// Runs the fake OpenAI-compatible model (fake-model.mjs) on its own, for the e2e runner script:
//
//   MATHIA_FAKE_MODEL_PORT=18555 node e2e/fake-model-server.mjs &
//   MATHIA_AI_BASE_URL=http://127.0.0.1:18555/v1 mathia-local …
//
// The port comes from MATHIA_FAKE_MODEL_PORT (or the first argument); it prints
// "fake model listening on <url>" once ready and stops on SIGINT / SIGTERM.

import { startFakeModel } from './fake-model.mjs';

const port = Number(process.env.MATHIA_FAKE_MODEL_PORT || process.argv[2] || 0);
const model = await startFakeModel({ port });
console.log(`fake model listening on ${model.url}`);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, async () => {
    await model.close();
    process.exit(0);
  });
}
