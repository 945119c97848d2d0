// Facteur live page client: a minimal socket.io (protocol v5, engine.io v4) client over a
// websocket, enough to join namespace /live, receive "mail-activity" events and emit
// "catch-up" with an ack. On every connect the page catches up on the changes it missed
// (the latest 50 when it opens) and shows each change once, one row per delivery.
// Written for this project so the page needs no CDN and no third-party code.
"use strict";

// The live token, when the mailer asks for one (mailer.live_token), is kept for this tab only.
var TOKEN_KEY = "facteur.live_token";
// The connect error the mailer sends when /live needs a token (socket/live.rs).
var NEEDS_TOKEN = "needs the live token";
// The connect errors of a mailer that has no place for this page now: it tries again later.
var FULL = ["too_many_viewers", "too_many_sessions"];

// How long an emitted event waits for its ack before it counts as failed.
var ACK_TIMEOUT_MS = 10000;

// Connects to `namespace` and reconnects whenever the websocket closes. `on` holds the
// callbacks: `event(name, data)` for each event, `state(text)` for the connection's state,
// `connected()` on every namespace CONNECT (the first and each reconnect) and
// `lost(lastHeard)` when a connected socket closes, `lastHeard` being the time (ms) the
// last packet arrived on it. Returns `{emit(event, data, reply)}`: `reply(answer)` is
// called once, with the ack's object, or with `{error: "timeout"}` after ACK_TIMEOUT_MS
// or `{error: "disconnected"}` when the socket closes first.
function connectLive(namespace, on) {
  var delay = 500;
  var asked = false;
  var prefix = namespace + ",";
  // The websocket whose namespace is connected, if any: emits go only there.
  var current = null;
  var lastHeard = 0;
  // Ack ids are never reused on this page, so an ack that arrives late for a reply that
  // already timed out finds nothing and is dropped.
  var nextAckId = 0;
  var pending = new Map();

  function settle(id, answer) {
    var waiting = pending.get(id);
    if (!waiting) return;
    pending.delete(id);
    clearTimeout(waiting.timer);
    waiting.reply(answer);
  }

  function emit(event, data, reply) {
    if (!current) {
      setTimeout(function () { reply({ error: "disconnected" }); }, 0);
      return;
    }
    var id = nextAckId++;
    var timer = setTimeout(function () { settle(id, { error: "timeout" }); }, ACK_TIMEOUT_MS);
    pending.set(id, { reply: reply, timer: timer });
    // engine.io MESSAGE "4", socket.io EVENT "2", the namespace, the ack id, the arguments.
    current.send("42" + prefix + id + JSON.stringify([event, data]));
  }

  // The namespace packet after its type and namespace: an optional ack id, then a JSON array.
  function parseArgs(body) {
    if (body.indexOf(prefix) === 0) body = body.slice(prefix.length);
    var start = body.indexOf("[");
    return { id: body.slice(0, start), args: JSON.parse(body.slice(start)) };
  }

  function open() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(scheme + location.host + "/socket.io/?EIO=4&transport=websocket");
    ws.onmessage = function (message) {
      lastHeard = Date.now();
      var data = String(message.data);
      var type = data.charAt(0);
      if (type === "0") {            // engine.io OPEN: ask for the namespace
        var token = sessionStorage.getItem(TOKEN_KEY);
        ws.send("40" + prefix + (token ? JSON.stringify({ token: token }) : ""));
      } else if (type === "2") {     // engine.io PING: answer PONG
        ws.send("3");
      } else if (type === "4") {     // engine.io MESSAGE carrying a socket.io packet
        var packet = data.slice(1);
        var kind = packet.charAt(0);
        if (kind === "0") {          // CONNECT
          delay = 500;
          current = ws;
          on.state("connected");
          on.connected();
        } else if (kind === "4") {   // CONNECT_ERROR
          var reason = packet.slice(1);
          if (reason.indexOf(prefix) === 0) reason = reason.slice(prefix.length);
          var retry = FULL.some(function (full) { return reason.indexOf(full) >= 0; });
          if (reason.indexOf(NEEDS_TOKEN) >= 0) {
            // Asked once per page; a token refused after that is forgotten.
            var given = asked ? null : window.prompt("This live page needs the mailer's live token:");
            asked = true;
            if (given) {
              sessionStorage.setItem(TOKEN_KEY, given);
              retry = true;
            } else {
              sessionStorage.removeItem(TOKEN_KEY);
            }
          }
          on.state("refused");
          if (!retry) ws.onclose = null;
          ws.close();
        } else if (kind === "2" || kind === "3") {   // EVENT, or the ACK of an emit
          var parsed;
          try {
            parsed = parseArgs(packet.slice(1));
          } catch (e) {
            console.warn("ignored an unreadable packet", e);
            return;
          }
          if (kind === "2") on.event(parsed.args[0], parsed.args[1]);
          // An ACK names its emit by id; Number("") would be 0, a real id.
          else if (/^[0-9]+$/.test(parsed.id)) settle(Number(parsed.id), parsed.args[0]);
        }
      }
    };
    ws.onclose = function () {
      if (current === ws) {
        current = null;
        on.lost(lastHeard);
        // The socket that would have carried these acks is gone; their callers ask again
        // on the next connect.
        Array.from(pending.keys()).forEach(function (id) { settle(id, { error: "disconnected" }); });
      }
      on.state("reconnecting");
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 10000);
    };
  }
  open();
  return { emit: emit };
}

function text(value) {
  return value === undefined || value === null ? "" : String(value);
}

// The statuses a delivery shows (CONTRACT.md, "Operating deliveries"); `sending` arrives as
// `queued`. Anything else is shown as it came, without a style of its own.
var STATUSES = ["queued", "retrying", "sent", "failed", "cancelled", "suppressed", "bounced", "complained"];
// Rows kept; the oldest delivery's row goes first.
var MAX_ROWS = 500;
// The cells of a row, in the order of the table's header; each is also the cell's class.
var CELLS = ["time", "id", "template", "to", "status", "attempts", "error"];

// One row per delivery, keyed by its id, updated in place as its events arrive.
function DeliveryTable(body, filter) {
  this.body = body;
  this.filter = filter;
  this.byId = new Map();
}

DeliveryTable.prototype.show = function (activity) {
  var id = text(activity.id);
  if (!id) return;
  var row = this.byId.get(id);
  if (!row) {
    row = document.createElement("tr");
    row.dataset.id = id;
    CELLS.forEach(function (name) {
      var td = document.createElement("td");
      td.className = name;
      row.appendChild(td);
    });
    this.body.insertBefore(row, this.body.firstChild);
    this.byId.set(id, row);
    this.trim();
  } else if (olderThanShown(activity, row)) {
    // A change older than the one shown says nothing new about this delivery.
    return;
  }
  var status = text(activity.status);
  if (activity.at) row.dataset.at = text(activity.at);
  if (activity.cursor) row.dataset.cursor = text(activity.cursor);
  row.dataset.status = status;
  row.className = STATUSES.indexOf(status) >= 0 ? "status-" + status : "";
  var cells = row.children;
  // textContent only: nothing from the wire is parsed as HTML.
  cells[0].textContent = text(activity.at);
  cells[1].textContent = id;
  cells[2].textContent = text(activity.template);
  cells[3].textContent = recipient(activity.to);
  cells[4].textContent = status;
  // Events from before `attempts` and `error` existed carry neither; the row then keeps
  // what it had. An event without `error` leaves the last error seen, which stays the
  // delivery's last error even once a later try succeeds.
  if (typeof activity.attempts === "number") cells[5].textContent = String(activity.attempts);
  if (activity.error !== undefined && activity.error !== null) cells[6].textContent = text(activity.error);
  this.applyFilterTo(row);
};

// Cursors order changes store-wide, across mailers, where two mailers' clocks may not
// agree on `at`; so they decide whenever both sides carry one. RFC 3339 times in UTC
// compare as strings, and so do cursors (16 digits, zero-padded).
function olderThanShown(activity, row) {
  if (activity.cursor && row.dataset.cursor) return text(activity.cursor) < row.dataset.cursor;
  return Boolean(activity.at && row.dataset.at && text(activity.at) < row.dataset.at);
}

DeliveryTable.prototype.trim = function () {
  while (this.body.children.length > MAX_ROWS) {
    var oldest = this.body.lastChild;
    this.byId.delete(oldest.dataset.id);
    this.body.removeChild(oldest);
  }
};

DeliveryTable.prototype.applyFilterTo = function (row) {
  var wanted = this.filter.value;
  row.hidden = wanted !== "all" && row.dataset.status !== wanted;
};

DeliveryTable.prototype.applyFilter = function () {
  for (var i = 0; i < this.body.children.length; i++) this.applyFilterTo(this.body.children[i]);
};

// Anonymous viewers get {email: "a…@example.com"} and no name (see CONTRACT.md).
function recipient(to) {
  if (!to) return "";
  return to.name ? text(to.name) + " <" + text(to.email) + ">" : text(to.email);
}

// The larger of two cursors, either of which may be missing.
function laterCursor(a, b) {
  if (!a) return b || null;
  if (!b) return a;
  return a < b ? b : a;
}

// The cursors of the changes already shown, so that a change that comes both live and in a
// catch-up is shown once. Bounded, the oldest forgotten first (a Set iterates in insertion
// order): catch-ups ask only for changes after the settled cursor, so a change that old
// hardly comes again, and if it does the row's cursor keeps it from undoing a later one.
function SeenCursors(limit) {
  this.limit = limit;
  this.cursors = new Set();
}

// Records `cursor`; false when it was already there.
SeenCursors.prototype.add = function (cursor) {
  if (this.cursors.has(cursor)) return false;
  this.cursors.add(cursor);
  if (this.cursors.size > this.limit) this.cursors.delete(this.cursors.values().next().value);
  return true;
};

// A catch-up answer holds at most this many changes; a full one means more are waiting.
var CATCH_UP_PAGE = 500;
// The mailer serves one catch-up a second per socket (more are answered `busy`).
var CATCH_UP_EVERY_MS = 1000;
// Events from two mailers may arrive slightly out of cursor order: a live change is taken
// as settled (every change before it has arrived too) when it arrived this long before the
// connection was last heard from.
var SETTLE_MS = 2000;

// What the page has shown and from where it resumes: each connection starts with a
// `catch-up` (the latest 50 at first, then the changes after the settled cursor) while
// live `mail-activity` events are shown as they come.
function LiveFeed(table) {
  this.table = table;
  this.live = null;
  this.seen = new SeenCursors(5000);
  // Every change up to this cursor that the page asked for has been shown; the next
  // catch-up asks for the changes after it (null: none asked for yet).
  this.settled = null;
  // Whether a first catch-up, the latest 50, has been answered.
  this.opened = false;
  // Counts connections and losses, so that a reply or a retry meant for an earlier
  // connection does nothing.
  this.connection = 0;
  // Whether this connection's catch-up has reached the end.
  this.caughtUp = false;
  // The live changes of this connection, with the time each arrived.
  this.recent = [];
}

LiveFeed.prototype.show = function (activity) {
  var cursor = text(activity.cursor);
  if (cursor && !this.seen.add(cursor)) return;
  this.table.show(activity);
};

// A live `mail-activity` event.
LiveFeed.prototype.receive = function (activity) {
  if (activity.cursor) this.recent.push({ cursor: text(activity.cursor), at: Date.now() });
  this.show(activity);
};

LiveFeed.prototype.connected = function () {
  this.connection++;
  this.caughtUp = false;
  this.recent = [];
  this.catchUp(this.connection);
};

// The connection closed; `lastHeard` is when its last packet arrived, which is when it
// was last known to work (a dead socket may take a while to be noticed).
LiveFeed.prototype.lost = function (lastHeard) {
  this.connection++;
  // A live change proves nothing about the changes before it unless this connection's
  // catch-up covered the gap since the last one; if it did not, the next catch-up starts
  // from the same cursor again.
  if (this.caughtUp) {
    var horizon = lastHeard - SETTLE_MS;
    for (var i = 0; i < this.recent.length; i++) {
      if (this.recent[i].at <= horizon) this.settled = laterCursor(this.settled, this.recent[i].cursor);
    }
  }
  this.recent = [];
  this.caughtUp = false;
};

LiveFeed.prototype.catchUp = function (connection) {
  var feed = this;
  var request = this.opened && this.settled ? { after: this.settled } : {};
  this.live.emit("catch-up", request, function (answer) {
    if (connection !== feed.connection) return;
    if (!answer || answer.error || !Array.isArray(answer.items)) {
      // A cursor the mailer does not know (its store was replaced): start over from the
      // latest 50. Any other error (`busy`, a timeout) is asked again a little later; a
      // lost connection asks on the next connect. The page shows only its connection state.
      if (answer && answer.error === "invalid_cursor") {
        feed.opened = false;
        feed.settled = null;
      }
      setTimeout(function () {
        if (connection === feed.connection) feed.catchUp(connection);
      }, CATCH_UP_EVERY_MS + Math.random() * 1000);
      return;
    }
    answer.items.forEach(function (activity) {
      if (activity) feed.show(activity);
    });
    // The mailer answers every change up to its cursor that came after ours.
    feed.settled = laterCursor(feed.settled, answer.cursor ? text(answer.cursor) : null);
    feed.opened = true;
    if (answer.items.length >= CATCH_UP_PAGE) {
      // The next page, once this socket's next catch-up may be served.
      setTimeout(function () {
        if (connection === feed.connection) feed.catchUp(connection);
      }, CATCH_UP_EVERY_MS + 50);
    } else {
      feed.caughtUp = true;
    }
  });
};

window.addEventListener("DOMContentLoaded", function () {
  var state = document.getElementById("state");
  var filter = document.getElementById("status-filter");
  var table = new DeliveryTable(document.getElementById("rows"), filter);
  var feed = new LiveFeed(table);
  filter.addEventListener("change", function () {
    table.applyFilter();
  });
  feed.live = connectLive("/live", {
    event: function (event, activity) {
      if (event === "mail-activity" && activity) feed.receive(activity);
    },
    state: function (s) {
      state.textContent = s;
    },
    connected: function () {
      feed.connected();
    },
    lost: function (lastHeard) {
      feed.lost(lastHeard);
    },
  });
});
