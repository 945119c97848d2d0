// Holds socket.io-client v4 sockets on one or more mailers and prints one JSON line for
// everything they receive, so the Rust tests can count events per socket.
// Usage: node cluster-clients.js [DEADLINE_MS]
// Commands come on stdin, one JSON object a line:
//   {"op":"connect","socket":NAME,"url":URL,"ns":"/"|"/live","auth":{...}}
//   {"op":"emit","socket":NAME,"event":EVENT,"payload":...,"ref":REF}   (with an ack)
//   {"op":"close","socket":NAME}
//   {"op":"exit"}
// Each output line carries `t` (ms since the epoch) and `socket`; `event` is one of
// connect, connect_error, emitted, ack, ack_timeout, disconnect, closed, or the name of an
// event the mailer emitted (with its `payload`). The script exits 0 on `exit` or the end of
// stdin, and 3 past DEADLINE_MS (default 240000).
"use strict";
const { io } = require("socket.io-client");
const readline = require("readline");

const deadline = Number(process.argv[2] || 240000);
const sockets = new Map();
const print = (line) => process.stdout.write(JSON.stringify({ t: Date.now(), ...line }) + "\n");

function connect({ socket: name, url, ns, auth }) {
  const socket = io(url + (ns || "/"), {
    auth: auth || {},
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
  });
  sockets.set(name, socket);
  socket.on("connect", () => print({ socket: name, event: "connect" }));
  socket.on("connect_error", (e) => print({ socket: name, event: "connect_error", error: e.message }));
  socket.on("disconnect", (reason) => print({ socket: name, event: "disconnect", reason }));
  socket.onAny((event, payload) => print({ socket: name, event, payload }));
}

async function emit({ socket: name, event, payload, ref }) {
  const socket = sockets.get(name);
  if (!socket) return print({ socket: name, event: "ack_timeout", ref, error: "no such socket" });
  print({ socket: name, event: "emitted", ref });
  try {
    const ack = await socket.timeout(30000).emitWithAck(event, payload);
    print({ socket: name, event: "ack", ref, ack });
  } catch (e) {
    print({ socket: name, event: "ack_timeout", ref, error: String(e) });
  }
}

function exit(code) {
  for (const socket of sockets.values()) socket.close();
  // Lets stdout drain before the process ends.
  process.stdout.write("", () => process.exit(code));
}

setTimeout(() => {
  print({ socket: null, event: "deadline" });
  exit(3);
}, deadline);

const commands = readline.createInterface({ input: process.stdin });
commands.on("line", (line) => {
  if (!line.trim()) return;
  const command = JSON.parse(line);
  switch (command.op) {
    case "connect": return connect(command);
    case "emit": return void emit(command);
    case "close": {
      const socket = sockets.get(command.socket);
      if (socket) socket.close();
      return print({ socket: command.socket, event: "closed" });
    }
    case "exit": return exit(0);
    default: return print({ socket: command.socket || null, event: "unknown_op", op: command.op });
  }
});
commands.on("close", () => exit(0));
