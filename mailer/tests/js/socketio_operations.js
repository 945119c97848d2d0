// Drives the real mailer's operations with the official socket.io-client v4 and prints one
// JSON line per observation: {"name": "...", "value": ...}. The Rust test asserts on them.
// Usage: node socketio_operations.js <base-url> <token> <failed-id> <retrying-id> <sent-id> <suppressed-email>
"use strict";
const { io } = require("socket.io-client");
const { randomUUID } = require("crypto");

const [base, token, failedId, retryingId, sentId, suppressedEmail] = process.argv.slice(2);
const report = (name, value) => console.log(JSON.stringify({ name, value }));

function connect() {
  return new Promise((resolve, reject) => {
    const socket = io(base, { auth: { token }, transports: ["websocket"], reconnection: false, forceNew: true });
    socket.on("connect", () => resolve(socket));
    socket.on("connect_error", (e) => reject(e));
  });
}

// Every mail-status this socket hears, by id, from the moment it connects.
function statuses(socket) {
  const seen = new Map();
  socket.on("mail-status", (s) => {
    if (!seen.has(s.id)) seen.set(s.id, []);
    seen.get(s.id).push(s.status);
  });
  return seen;
}

async function ack(socket, event, payload) {
  try { return await socket.timeout(5000).emitWithAck(event, payload); }
  catch (e) { return { timeout: String(e) }; }
}

async function until(check, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

(async () => {
  const socket = await connect();
  const heard = statuses(socket);

  report("retry_failed", await ack(socket, "retry-mail", failedId));
  // The socket that retried hears the statuses that follow, as a sender would.
  await until(() => (heard.get(failedId) || []).includes("sent"), 10000);
  report("retry_failed_statuses", heard.get(failedId) || []);
  report("retry_sent", await ack(socket, "retry-mail", sentId));
  report("retry_unknown", await ack(socket, "retry-mail", randomUUID()));
  report("retry_garbage", await ack(socket, "retry-mail", { nope: true }));

  report("cancel_retrying", await ack(socket, "cancel-mail", { id: retryingId }));
  report("cancel_sent", await ack(socket, "cancel-mail", sentId));
  report("cancel_unknown", await ack(socket, "cancel-mail", randomUUID()));

  const suppressed = {
    id: randomUUID(),
    template: "welcome",
    locale: "en",
    to: { email: suppressedEmail, name: "Grace" },
    vars: { login: "grace" },
    requested_at: "2026-12-01T08:00:00Z",
  };
  report("suppressed_ack", await ack(socket, "send-mail", suppressed));
  await until(() => heard.has(suppressed.id), 5000);
  report("suppressed_id", suppressed.id);
  report("suppressed_statuses", heard.get(suppressed.id) || []);
  socket.close();
})().catch((e) => { console.error(e); process.exit(1); });
