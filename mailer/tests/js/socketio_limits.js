// Drives the real mailer with the official socket.io-client v4 for the /live privacy rules
// and the room limit, printing one JSON line per observation: {"name": "...", "value": ...}.
// Usage: node socketio_limits.js <base-url> <token> <scenario> [live-token | recipients]
//   scenario: anonymous | live_token | rooms | pools | masking
//   pools: a /live viewer (expected refused), then a service client's send-mail.
//   masking: recipients is a JSON list of addresses; each gets a mail, and a /live viewer
//   reports every mail-activity it hears for them, then a catch-up's items.
"use strict";
const { io } = require("socket.io-client");
const { randomUUID } = require("crypto");

const [base, token, scenario, liveToken] = process.argv.slice(2);
const report = (name, value) => console.log(JSON.stringify({ name, value }));

function request(email) {
  return {
    id: randomUUID(),
    template: "welcome",
    locale: "en",
    to: { email: email || "ada@example.com", name: "Ada Lovelace" },
    vars: { login: "ada" },
    requested_at: "2026-11-27T08:00:00Z",
  };
}

function connect(ns, auth) {
  return new Promise((resolve) => {
    const socket = io(base + ns, { auth, transports: ["websocket"], reconnection: false, forceNew: true });
    socket.on("connect", () => resolve({ socket, error: null }));
    socket.on("connect_error", (e) => resolve({ socket, error: e.message }));
  });
}

function activityOf(socket, id) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), 10000);
    socket.on("mail-activity", (p) => {
      if (p.id === id) { clearTimeout(timer); resolve(p); }
    });
  });
}

async function ack(socket, event, payload) {
  try { return await socket.timeout(5000).emitWithAck(event, payload); }
  catch (e) { return { timeout: String(e) }; }
}

async function sendAndWatch(live) {
  const sender = await connect("/", { token });
  const req = request();
  const onLive = activityOf(live.socket, req.id);
  const onService = activityOf(sender.socket, req.id);
  report("ack", await ack(sender.socket, "send-mail", req));
  report("live_activity", await onLive);
  report("service_activity", await onService);
  sender.socket.close();
}

(async () => {
  if (scenario === "anonymous") {
    const live = await connect("/live", {});
    report("live_connect", live.error);
    await sendAndWatch(live);
    live.socket.close();
  } else if (scenario === "live_token") {
    const none = await connect("/live", {});
    report("no_token", none.error);
    none.socket.close();
    const wrong = await connect("/live", { token: "wrong" });
    report("wrong_token", wrong.error);
    wrong.socket.close();
    const live = await connect("/live", { token: liveToken });
    report("live_connect", live.error);
    await sendAndWatch(live);
    live.socket.close();
  } else if (scenario === "pools") {
    const viewer = await connect("/live", {});
    report("live_refused", viewer.error);
    viewer.socket.close();
    const sender = await connect("/", { token });
    report("service_connect", sender.error);
    if (!sender.error) report("ack", await ack(sender.socket, "send-mail", request()));
    sender.socket.close();
  } else if (scenario === "masking") {
    const recipients = JSON.parse(liveToken);
    const live = await connect("/live", {});
    report("live_connect", live.error);
    const heard = [];
    const settled = new Set();
    live.socket.on("mail-activity", (p) => {
      heard.push(p);
      if (p.status !== "queued") settled.add(p.id);
    });
    const sender = await connect("/", { token });
    const requests = recipients.map((email) => request(email));
    for (const req of requests) report("ack_" + req.to.email, await ack(sender.socket, "send-mail", req));
    const deadline = Date.now() + 20000;
    while (Date.now() < deadline && !requests.every((r) => settled.has(r.id))) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    report("live_activity", heard);
    report("catch_up", await ack(live.socket, "catch-up", {}));
    sender.socket.close();
    live.socket.close();
  } else if (scenario === "rooms") {
    const s = (await connect("/", { token })).socket;
    let ok = 0;
    const first = "mail:" + randomUUID();
    for (let i = 0; i < 1000; i++) {
      const answer = await ack(s, "join", i === 0 ? first : "mail:" + randomUUID());
      if (answer && answer.ok === true) ok += 1;
    }
    report("joined", ok);
    report("join_1001", await ack(s, "join", "mail:" + randomUUID()));
    report("join_again", await ack(s, "join", first));
    report("leave", await ack(s, "leave", first));
    report("join_after_leave", await ack(s, "join", "mail:" + randomUUID()));
    s.close();
  }
  process.exit(0);
})().catch((e) => { report("script_error", String(e && e.stack || e)); process.exit(1); });
