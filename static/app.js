// lvs-director: the little the pages need beyond HTML. Everything works without it;
// it only refreshes the monitoring table in place and asks before deleting.
(function () {
  "use strict";

  // Confirmation for destructive forms (data-confirm="...").
  document.addEventListener("submit", function (ev) {
    var f = ev.target;
    var msg = f.getAttribute && f.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) {
      ev.preventDefault();
    }
  });

  // The monitoring page's live part: refetched every N seconds (the select), only
  // while the tab is visible; the rest of the page (the form being typed in) stays.
  var live = document.getElementById("live");
  if (!live) {
    return;
  }
  var controls = document.getElementById("live-controls");
  var timer = null;
  function query() {
    var params = new URLSearchParams(new FormData(controls));
    var page = new URLSearchParams(window.location.search).get("page");
    if (page) {
      params.set("page", page);
    }
    return params.toString();
  }
  function refresh() {
    if (document.hidden) {
      return;
    }
    fetch(live.getAttribute("data-src") + "?" + query(), {
      credentials: "same-origin",
      headers: { "Accept": "text/html" }
    }).then(function (r) {
      if (r.status === 401 || r.redirected) {
        live.insertAdjacentHTML("afterbegin",
          "<p class=\"flash error\" role=\"alert\">Your session ended: reload the page to log in again.</p>");
        stop();
        return null;
      }
      return r.ok ? r.text() : null;
    }).then(function (html) {
      if (html !== null && html !== undefined) {
        live.innerHTML = html;
      }
    }).catch(function () {
      // Keep the last view; the next tick tries again.
    });
  }
  function stop() {
    if (timer) {
      window.clearInterval(timer);
      timer = null;
    }
  }
  function start() {
    stop();
    var secs = parseInt(document.getElementById("refresh").value, 10) || 0;
    if (secs > 0) {
      timer = window.setInterval(refresh, secs * 1000);
    }
  }
  document.getElementById("refresh").addEventListener("change", function () {
    var url = new URL(window.location.href);
    url.searchParams.set("refresh", this.value);
    window.history.replaceState(null, "", url);
    start();
  });
  start();
})();
