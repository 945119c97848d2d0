// A stand-in mailer on the official Node.js socket.io v4 server, for the interop tests of
// the Rust publisher. It checks the token at connect like the real mailer, answers each
// `send-mail` like the Rust test handler (duplicate ids, reject-* addresses), and prints
// every request it receives as one JSON line so the test can compare it byte for byte.
const http = require("http");
const { Server } = require("socket.io");

const token = process.argv[2];
const server = http.createServer();
const io = new Server(server);
const seen = new Set();

io.use((socket, next) => {
  const auth = socket.handshake.auth || {};
  if (auth.token === token) return next();
  next(new Error("unauthorized: a valid token is required in the connect auth payload"));
});

io.on("connection", (socket) => {
  socket.on("send-mail", (request, ack) => {
    if (typeof ack !== "function") return;
    if (!request || typeof request !== "object" || typeof request.id !== "string") {
      return ack({ id: null, status: "rejected", error: "request: must be a JSON object with an id" });
    }
    process.stdout.write(JSON.stringify({ received: request }) + "\n");
    const email = (request.to && request.to.email) || "";
    if (email.startsWith("reject-")) {
      return ack({ id: request.id, status: "rejected", error: "the stub rejects reject-* addresses" });
    }
    if (seen.has(request.id)) return ack({ id: request.id, status: "duplicate" });
    seen.add(request.id);
    ack({ id: request.id, status: "accepted" });
  });
});

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + "\n");
});
