// Facteur live page client: a minimal socket.io (protocol v5, engine.io v4) client over a
// websocket, enough to join namespace /live and receive "mail-activity" events.
// Written for this project so the page needs no CDN and no third-party code.
"use strict";

// The live token, when the mailer asks for one (mailer.live_token), is kept for this tab only.
var TOKEN_KEY = "facteur.live_token";
// The connect error the mailer sends when /live needs a token (socket/live.rs).
var NEEDS_TOKEN = "needs the live token";

function connectLive(namespace, onEvent, onState) {
  var delay = 500;
  var asked = false;
  function open() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(scheme + location.host + "/socket.io/?EIO=4&transport=websocket");
    ws.onmessage = function (message) {
      var data = String(message.data);
      var type = data.charAt(0);
      if (type === "0") {            // engine.io OPEN: ask for the namespace
        var token = sessionStorage.getItem(TOKEN_KEY);
        ws.send("40" + namespace + "," + (token ? JSON.stringify({ token: token }) : ""));
      } else if (type === "2") {     // engine.io PING: answer PONG
        ws.send("3");
      } else if (type === "4") {     // engine.io MESSAGE carrying a socket.io packet
        var packet = data.slice(1);
        var prefix = namespace + ",";
        if (packet.charAt(0) === "0") {
          delay = 500;
          onState("connected");
        } else if (packet.charAt(0) === "4") {
          var reason = packet.slice(1);
          if (reason.indexOf(prefix) === 0) reason = reason.slice(prefix.length);
          var retry = false;
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
          onState("refused");
          if (!retry) ws.onclose = null;
          ws.close();
        } else if (packet.charAt(0) === "2") {
          var body = packet.slice(1);
          if (body.indexOf(prefix) === 0) body = body.slice(prefix.length);
          // An event may carry an ack id before the array; the server sends none here.
          var start = body.indexOf("[");
          try {
            var args = JSON.parse(body.slice(start));
            onEvent(args[0], args[1]);
          } catch (e) {
            console.warn("ignored an unreadable packet", e);
          }
        }
      }
    };
    ws.onclose = function () {
      onState("reconnecting");
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 10000);
    };
  }
  open();
}

function text(value) {
  return value === undefined || value === null ? "" : String(value);
}

// The statuses a delivery shows (CONTRACT.md, "Operating deliveries"); `sending` arrives as
// `queued`. Anything else is shown as it came, without a style of its own.
var STATUSES = ["queued", "retrying", "sent", "failed", "cancelled", "suppressed"];
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
  } else if (activity.at && row.dataset.at && text(activity.at) < row.dataset.at) {
    // An event older than the one shown (RFC 3339 times in UTC compare as strings) says
    // nothing new about this delivery.
    return;
  }
  var status = text(activity.status);
  if (activity.at) row.dataset.at = text(activity.at);
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

window.addEventListener("DOMContentLoaded", function () {
  var state = document.getElementById("state");
  var filter = document.getElementById("status-filter");
  var table = new DeliveryTable(document.getElementById("rows"), filter);
  filter.addEventListener("change", function () {
    table.applyFilter();
  });
  connectLive("/live", function (event, activity) {
    if (event !== "mail-activity" || !activity) return;
    table.show(activity);
  }, function (s) {
    state.textContent = s;
  });
});
