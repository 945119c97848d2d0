// Drives the real mailer with the official socket.io-client v4 and prints one JSON line per
// observation: {"name": "...", "value": ...}. The Rust test asserts on them.
// Usage: node socketio_scenarios.js <base-url> <token> <template-for-room>
"use strict";
const { io } = require("socket.io-client");
const { randomUUID } = require("crypto");

const [base, token] = process.argv.slice(2);
const report = (name, value) => console.log(JSON.stringify({ name, value }));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function request(overrides) {
  return Object.assign({
    id: randomUUID(),
    template: "welcome",
    locale: "en",
    to: { email: "ada@example.com", name: "Ada Lovelace" },
    vars: { login: "ada" },
    requested_at: "2026-11-27T08:00:00Z",
  }, overrides || {});
}

function connect(ns, auth) {
  return new Promise((resolve) => {
    const socket = io(base + ns, { auth, transports: ["websocket"], reconnection: false, forceNew: true });
    socket.on("connect", () => resolve({ socket, error: null }));
    socket.on("connect_error", (e) => resolve({ socket, error: e.message }));
  });
}

function waitFor(socket, event, predicate, ms) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), ms);
    socket.on(event, (payload) => {
      if (predicate(payload)) { clearTimeout(timer); resolve(payload); }
    });
  });
}

async function ack(socket, event, payload) {
  try { return await socket.timeout(5000).emitWithAck(event, payload); }
  catch (e) { return { timeout: String(e) }; }
}

(async () => {
  const wrong = await connect("/", { token: "wrong" });
  report("wrong_token", wrong.error);
  wrong.socket.close();
  const none = await connect("/", {});
  report("no_token", none.error);
  none.socket.close();

  const sender = await connect("/", { token });
  report("service_connect", sender.error);
  const watcher = await connect("/", { token });
  const live = await connect("/live", {});
  report("live_connect", live.error);

  const req = request();
  report("request_id", req.id);
  report("join", await ack(watcher.socket, "join", "mail:" + req.id));
  report("join_bad_room", await ack(watcher.socket, "join", "lobby"));
  const senderStatus = waitFor(sender.socket, "mail-status", (p) => p.id === req.id && p.status === "sent", 10000);
  const roomStatus = waitFor(watcher.socket, "mail-status", (p) => p.id === req.id && p.status === "sent", 10000);
  const liveQueued = waitFor(live.socket, "mail-activity", (p) => p.id === req.id && p.status === "queued", 10000);
  const liveSent = waitFor(live.socket, "mail-activity", (p) => p.id === req.id && p.status === "sent", 10000);

  report("ack_accepted", await ack(sender.socket, "send-mail", req));
  report("ack_duplicate", await ack(sender.socket, "send-mail", req));
  report("sender_mail_status", await senderStatus);
  report("room_mail_status", await roomStatus);
  report("live_activity_queued", await liveQueued);
  report("live_activity_sent", await liveSent);
  report("get_mail", await ack(sender.socket, "get-mail", req.id));
  report("get_mail_unknown", await ack(sender.socket, "get-mail", randomUUID()));

  const missing = request(); delete missing.to;
  report("bad_missing_field", await ack(sender.socket, "send-mail", missing));
  report("bad_wrong_type", await ack(sender.socket, "send-mail", request({ locale: 42 })));
  report("bad_unknown_template", await ack(sender.socket, "send-mail", request({ template: "newsletter" })));
  // Over the 64 KiB request limit but under the 128 KiB message limit: an answer, not a close.
  report("bad_huge", await ack(sender.socket, "send-mail", request({ vars: { login: "x".repeat(100 * 1024) } })));
  report("bad_string", await ack(sender.socket, "send-mail", "hello"));
  report("bad_array", await ack(sender.socket, "send-mail", [1, 2, 3]));
  report("bad_number", await ack(sender.socket, "send-mail", 12));
  // A zero-width space in the address, a right-to-left override in the name.
  report("bad_hidden_email", await ack(sender.socket, "send-mail", request({ to: { email: "a\u200bda@example.com", name: "Ada" } })));
  report("bad_hidden_name", await ack(sender.socket, "send-mail", request({ to: { email: "ada@example.com", name: "Ada\u202e Lovelace" } })));
  report("still_connected", sender.socket.connected);
  report("ack_after_bad_input", await ack(sender.socket, "send-mail", request()));

  // Over the 128 KiB message limit: the mailer closes this connection.
  const closed = new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), 10000);
    sender.socket.on("disconnect", (reason) => { clearTimeout(timer); resolve(reason); });
  });
  sender.socket.emit("send-mail", request({ vars: { login: "x".repeat(200 * 1024) } }));
  report("oversize_disconnect", await closed);
  report("watcher_still_connected", watcher.socket.connected);
  // The watcher is now the only service socket: a mail asked over REST still reaches it.
  const third = request();
  const lastActivity = waitFor(watcher.socket, "mail-activity", (p) => p.id === third.id && p.status === "sent", 10000);
  const posted = await fetch(base + "/mails", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer " + token },
    body: JSON.stringify(third),
  });
  report("rest_request_id", third.id);
  report("rest_status", posted.status);
  report("last_socket_activity", await lastActivity);

  await sleep(50);
  for (const s of [sender.socket, watcher.socket, live.socket]) s.close();
  process.exit(0);
})().catch((e) => { report("script_error", String(e && e.stack || e)); process.exit(1); });
