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

window.addEventListener("DOMContentLoaded", function () {
  var rows = document.getElementById("rows");
  var state = document.getElementById("state");
  connectLive("/live", function (event, activity) {
    if (event !== "mail-activity" || !activity) return;
    var tr = document.createElement("tr");
    tr.className = "status-" + text(activity.status);
    // Anonymous viewers get {email: "a…@example.com"} and no name (see CONTRACT.md).
    var to = activity.to ? (activity.to.name ? activity.to.name + " <" + activity.to.email + ">" : activity.to.email) : "";
    [activity.at, activity.id, activity.template, to, activity.status].forEach(function (cell) {
      var td = document.createElement("td");
      td.textContent = text(cell);   // textContent: nothing from the wire is parsed as HTML
      tr.appendChild(td);
    });
    rows.insertBefore(tr, rows.firstChild);
    while (rows.children.length > 500) rows.removeChild(rows.lastChild);
  }, function (s) {
    state.textContent = s;
  });
});
