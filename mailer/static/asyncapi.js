// The /asyncapi page: fetches /asyncapi.json and hands it to the vendored renderer
// (window.AsyncApiStandalone, loaded after this script). Listed first so that its
// securitypolicyviolation counter also sees what the renderer's own loading is refused;
// the tests read window.facteurCsp to check that the page stays within its policy.
"use strict";

window.facteurCsp = { violations: 0, blocked: [] };
document.addEventListener("securitypolicyviolation", function (e) {
  window.facteurCsp.violations += 1;
  window.facteurCsp.blocked.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});

function showState(text) {
  var state = document.getElementById("asyncapi-state");
  if (state) state.textContent = text;
}

function render(text) {
  if (!window.AsyncApiStandalone) {
    showState("The renderer did not load; the document itself is at /asyncapi.json.");
    return;
  }
  window.AsyncApiStandalone.render(
    {
      schema: text,
      // The sidebar lists the servers, operations and messages: a table of contents.
      config: { show: { sidebar: true } },
    },
    document.getElementById("asyncapi")
  );
  var state = document.getElementById("asyncapi-state");
  if (state) state.remove();
}

// Deferred scripts run before DOMContentLoaded, so the renderer is there by then.
document.addEventListener("DOMContentLoaded", function () {
  fetch("/asyncapi.json", { headers: { Accept: "application/json" } })
    .then(function (response) {
      if (!response.ok) throw new Error("/asyncapi.json answered " + response.status);
      return response.text();
    })
    .then(render)
    .catch(function (e) {
      showState("Could not load /asyncapi.json: " + e.message);
    });
});
