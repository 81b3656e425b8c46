// Refreshes every element with a data-live attribute (seconds) by fetching
// the page's content again and swapping the element with the same id. A
// redirect means the session ended, so the whole page reloads to the login.
"use strict";
document.querySelectorAll("[data-live]").forEach(function (el) {
  var seconds = parseInt(el.dataset.live, 10) || 10;
  setInterval(function () {
    var url = new URL(window.location.href);
    url.searchParams.set("partial", "1");
    fetch(url, { credentials: "same-origin" }).then(function (resp) {
      if (resp.redirected || !resp.ok) {
        window.location.reload();
        return null;
      }
      return resp.text();
    }).then(function (html) {
      if (html === null) return;
      var doc = new DOMParser().parseFromString(html, "text/html");
      var fresh = doc.getElementById(el.id);
      if (fresh) {
        el.innerHTML = fresh.innerHTML;
      }
    }).catch(function () {});
  }, seconds * 1000);
});
