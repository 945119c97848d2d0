// Asks /live's catch-up with the official socket.io-client v4 and prints one JSON line per
// observation: {"name": "...", "value": ...}. The Rust test (catch_up.rs) asserts on them.
// Usage: node catch_up.js <base-url>
"use strict";
const { io } = require("socket.io-client");

const [base] = process.argv.slice(2);
const report = (name, value) => console.log(JSON.stringify({ name, value }));
// The mailer serves one catch-up a second per socket; a little more keeps clear of it.
const turn = () => new Promise((resolve) => setTimeout(resolve, 1100));

function connect() {
  return new Promise((resolve, reject) => {
    const socket = io(base + "/live", { transports: ["websocket"], reconnection: false, forceNew: true });
    socket.on("connect", () => resolve(socket));
    socket.on("connect_error", (e) => reject(e));
  });
}

const ask = (socket, ...args) => socket.timeout(10000).emitWithAck("catch-up", ...args).catch((e) => ({ error: "no_ack", message: String(e) }));
const summary = (answer) => answer.items
  ? { count: answer.items.length, cursor: answer.cursor, first: answer.items[0] && answer.items[0].cursor,
      last: answer.items.length ? answer.items[answer.items.length - 1].cursor : null,
      ordered: answer.items.every((item, i, all) => i === 0 || all[i - 1].cursor < item.cursor),
      ids: answer.items.map((item) => item.id), emails: answer.items.map((item) => item.to.email) }
  : { error: answer.error, message: answer.message };

(async () => {
  const socket = await connect();
  // The opening rows, then every change from the first cursor on, 500 at a time.
  const latest = await ask(socket, {});
  report("latest", summary(latest));
  const pages = [];
  let after = "0000000000000000";
  for (let n = 0; n < 10; n++) {
    await turn();
    const page = await ask(socket, { after });
    pages.push(summary(page));
    if (!page.items || page.items.length < 500) break;
    after = page.cursor;
  }
  report("pages", pages);
  // Nothing and null ask for the latest too.
  await turn();
  report("nothing", summary(await ask(socket)).count);
  await turn();
  report("null", summary(await ask(socket, null)).count);
  // Ten within a second on one socket: one is served, the others are told to come back.
  await turn();
  const burst = await Promise.all(Array.from({ length: 10 }, () => ask(socket, { after: "0000000000000000" })));
  report("burst", burst.map(summary).map((s) => s.error || s.count));
  // Anything but a cursor string or nothing; answered whatever the turn. (Arrays nested
  // deeper than this client can write are catch_up.rs's, over a bare websocket.)
  const bad = await Promise.all([
    ask(socket, { after: "soon" }),
    ask(socket, "0000000000000001"),
    ask(socket, { after: 12 }),
    ask(socket, 42),
    ask(socket, { after: "0000000000000001", limit: 5000 }),
    ask(socket, { before: "0000000000000001" }),
  ]);
  report("bad", bad.map((b) => b.error));
  report("bad_messages", bad.map((b) => b.message));
  // The socket is still there and served.
  await turn();
  report("after_bad", summary(await ask(socket, {})).count);
  report("connected", socket.connected);
  socket.close();
  process.exit(0);
})().catch((e) => { report("failure", String(e)); process.exit(1); });
