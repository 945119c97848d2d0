// Load generator for the mailer benchmark: C socket.io clients (official socket.io-client
// v4, websocket transport), each keeping W send-mail requests in flight, for D seconds.
// Prints one JSON line: {acks, accepted, seconds, per_second, p50_ms, p99_ms, max_ms}.
// Usage: node send_mail_load.js <base-url> <token> <clients> <window> <seconds>
"use strict";
const { io } = require("socket.io-client");
const { randomUUID } = require("crypto");

const [base, token, clientsArg, windowArg, secondsArg] = process.argv.slice(2);
const clients = Number(clientsArg || 50), windowSize = Number(windowArg || 4), seconds = Number(secondsArg || 10);
const latencies = [];
let accepted = 0, other = 0, running = true;

function request() {
  return { id: randomUUID(), template: "welcome", locale: "en",
    to: { email: "ada@example.com", name: "Ada Lovelace" }, vars: { login: "ada" },
    requested_at: new Date().toISOString() };
}

function connect() {
  return new Promise((resolve, reject) => {
    const s = io(base, { auth: { token }, transports: ["websocket"], reconnection: false, forceNew: true });
    s.on("connect", () => resolve(s));
    s.on("connect_error", reject);
  });
}

async function lane(socket) {
  while (running) {
    const started = process.hrtime.bigint();
    const answer = await socket.timeout(10000).emitWithAck("send-mail", request()).catch(() => null);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    // Answers that arrive after the deadline still count: the mailer stored those requests.
    latencies.push(ms);
    if (answer && answer.status === "accepted") accepted++; else other++;
  }
}

(async () => {
  const sockets = await Promise.all(Array.from({ length: clients }, connect));
  const t0 = Date.now();
  const lanes = [];
  for (const s of sockets) for (let i = 0; i < windowSize; i++) lanes.push(lane(s));
  await new Promise((r) => setTimeout(r, seconds * 1000));
  running = false;
  const elapsed = (Date.now() - t0) / 1000;
  await Promise.race([Promise.all(lanes), new Promise((r) => setTimeout(r, 11000))]);
  latencies.sort((a, b) => a - b);
  const q = (p) => latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : null;
  console.log(JSON.stringify({ acks: latencies.length, accepted, other, seconds: elapsed,
    per_second: Math.round(latencies.length / elapsed), p50_ms: q(0.5), p99_ms: q(0.99), max_ms: latencies[latencies.length - 1] }));
  for (const s of sockets) s.close();
  process.exit(0);
})().catch((e) => { console.error(String(e)); process.exit(1); });
