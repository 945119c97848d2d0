// A real SMTP server for tests and the mailer benchmark: nodemailer's `smtp-server`, which
// offers PIPELINING (RFC 2920), unlike the Rust servers the tests use in process.
//
// Usage: node smtp-server.js [--port N] [--count-only] [--watch-client] [--refuse-second-ehlo]
//
// Prints `{"listening":PORT}` first. Then, per mail, one JSON line
// `{"mail":{"from":…,"to":[…],"message_id":…,"bytes":N,"raw":…}}` (`raw`: the message as the
// server has it, dot-stuffing undone, read as latin1), or with --count-only the running
// total once a second as `mails N`, like the benchmark's Rust sink.
// --watch-client puts a TCP relay in front of the server that prints each piece the client
// wrote, as it arrived, as `{"client_wrote":"…"}`: a test sees whether commands came together.
// --refuse-second-ehlo (with --watch-client) makes the relay answer a client's second EHLO on a
// connection with 502 itself, as some servers do, instead of passing it on.
//
// Recipients decide the replies: a local part starting `refused` gets 550 at RCPT TO; one
// starting `later` gets 451 the first two times it is tried, then is accepted; one starting
// `bounceonce` gets 550 at RCPT TO the first time only; one starting `fullonce` gets 552
// (mailbox full: permanent, but about this mail, not the address) the first time only.
// Without --count-only, every RCPT TO is also printed as `{"rcpt":ADDRESS,"code":N}`.
'use strict';
const net = require('net');
const { SMTPServer } = require('smtp-server');

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const portArg = args.indexOf('--port');
const port = portArg >= 0 ? Number(args[portArg + 1]) : 0;
const countOnly = flag('--count-only');
const watchClient = flag('--watch-client');
const refuseSecondEhlo = flag('--refuse-second-ehlo');

let mails = 0;
const tries = new Map();

// The reply to one RCPT TO, by the recipient's local part (see the header).
function decide(address, callback) {
  const local = address.address.split('@')[0];
  const refuse = (code, text) => {
    const err = new Error(text);
    err.responseCode = code;
    callback(err);
  };
  const first = !tries.has(address.address);
  const n = (tries.get(address.address) || 0) + 1;
  tries.set(address.address, n);
  if (local.startsWith('refused')) return refuse(550, 'no such mailbox here');
  if (local.startsWith('bounceonce') && first) return refuse(550, 'no such mailbox here');
  if (local.startsWith('fullonce') && first) return refuse(552, 'mailbox full');
  if (local.startsWith('later') && n <= 2) return refuse(451, 'try again later');
  callback();
}

const server = new SMTPServer({
  name: 'smtp.test',
  authOptional: true,
  disabledCommands: ['AUTH', 'STARTTLS'],
  logger: false,
  // The benchmark keeps many connections open at once.
  maxClients: 1000,
  onRcptTo(address, session, callback) {
    const reply = (code) => { if (!countOnly) console.log(JSON.stringify({ rcpt: address.address, code })); };
    decide(address, (err) => { reply(err ? err.responseCode : 250); callback(err); });
  },
  onData(stream, session, callback) {
    const chunks = [];
    stream.on('data', (c) => { if (!countOnly) chunks.push(c); });
    stream.on('end', () => {
      mails += 1;
      if (!countOnly) {
        const raw = Buffer.concat(chunks).toString('latin1');
        const id = /^message-id:\s*(.*)$/im.exec(raw);
        console.log(JSON.stringify({
          mail: {
            from: session.envelope.mailFrom && session.envelope.mailFrom.address,
            to: session.envelope.rcptTo.map((r) => r.address),
            message_id: id ? id[1].trim() : null,
            bytes: raw.length,
            raw,
          },
        }));
      }
      callback();
    });
  },
});
server.on('error', (e) => console.error(`smtp-server: ${e.message}`));

function announce(p) {
  console.log(JSON.stringify({ listening: p }));
  if (countOnly) setInterval(() => console.log(`mails ${mails}`), 1000);
}

if (!watchClient) {
  server.listen(port, '127.0.0.1', () => announce(server.server.address().port));
} else {
  // The server on a port of its own, the relay on the announced one.
  server.listen(0, '127.0.0.1', () => {
    const inner = server.server.address().port;
    const relay = net.createServer((client) => {
      client.setNoDelay(true);
      const upstream = net.connect(inner, '127.0.0.1');
      upstream.setNoDelay(true);
      let ehlos = 0;
      client.on('data', (piece) => {
        const text = piece.toString('latin1');
        console.log(JSON.stringify({ client_wrote: text }));
        if (/^EHLO /i.test(text) && ++ehlos > 1 && refuseSecondEhlo) {
          client.write('502 5.5.1 EHLO was already said on this connection\r\n');
          return;
        }
        upstream.write(piece);
      });
      upstream.pipe(client);
      client.on('end', () => upstream.end());
      upstream.on('end', () => client.end());
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    relay.listen(port, '127.0.0.1', () => announce(relay.address().port));
  });
}
