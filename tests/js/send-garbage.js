// Connects to the mailer as a service client with the official socket.io-client and emits
// `send-mail` with payloads that must each be rejected, then one valid request.
// Usage: node send-garbage.js URL TOKEN VALID_REQUEST_JSON
// Prints one JSON line per ack: {"case": name, "ack": [...]} and exits 0, or 1 on a timeout.
"use strict";
const { io } = require("socket.io-client");

const [url, token, validJson] = process.argv.slice(2);
const valid = JSON.parse(validJson);
const cases = [
  ["missing fields", { id: valid.id }],
  ["wrong types", { ...valid, id: 42, locale: ["fr"] }],
  ["unknown template", { ...valid, template: "birthday" }],
  // Over the 64 KiB request limit and under the 128 KiB message limit (past which the mailer
  // closes the connection instead of answering).
  ["100 KiB payload", { ...valid, vars: { login: "x".repeat(100 * 1024) } }],
  ["line break in to.name", { ...valid, to: { ...valid.to, name: "Ada\r\nBcc: all@example.com" } }],
  ["not an object", "just a string"],
  ["null", null],
  ["valid", valid],
];

const socket = io(url, { auth: { token }, transports: ["websocket"], reconnection: false });
const fail = (why) => { console.error(why); process.exit(1); };
const timer = setTimeout(() => fail("timed out waiting for acks"), 15000);
socket.on("connect_error", (err) => fail(`connect_error: ${err.message}`));
socket.on("connect", async () => {
  for (const [name, payload] of cases) {
    const ack = await socket.timeout(5000).emitWithAck("send-mail", payload).catch((e) => ({ timeout: String(e) }));
    console.log(JSON.stringify({ case: name, ack }));
  }
  clearTimeout(timer);
  socket.close();
  process.exit(0);
});
