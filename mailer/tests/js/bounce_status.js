// Joins the room of one mail with the official socket.io-client v4, touches a file once it
// has joined, and reports the mail-status events it hears until one has the awaited status.
// Usage: node bounce_status.js <base-url> <token> <mail-id> <status> <joined-file>
"use strict";
const { io } = require("socket.io-client");
const fs = require("fs");

const [base, token, id, awaited, joinedFile] = process.argv.slice(2);
const report = (name, value) => console.log(JSON.stringify({ name, value }));

const socket = io(base, { auth: { token }, transports: ["websocket"], reconnection: false, forceNew: true });
const heard = [];
const timer = setTimeout(() => { report("statuses", heard); process.exit(0); }, 20000);
socket.on("mail-status", (s) => {
  if (s.id !== id) return;
  heard.push(s);
  if (s.status === awaited) {
    clearTimeout(timer);
    report("statuses", heard);
    socket.close();
    process.exit(0);
  }
});
socket.on("connect", async () => {
  report("join", await socket.timeout(5000).emitWithAck("join", "mail:" + id));
  fs.writeFileSync(joinedFile, "joined");
});
socket.on("connect_error", (e) => { report("connect_error", String(e)); process.exit(0); });
