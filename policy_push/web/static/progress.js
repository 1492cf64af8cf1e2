// The progress page refreshes itself every 10 seconds while the box stays ticked (WCAG 2.2.1: the
// officer can stop it). Without JavaScript the page still works: the "刷新" link reloads it.
(function () {
  "use strict";
  var box = document.getElementById("auto-refresh");
  if (!box) { return; }
  box.disabled = false;
  window.setInterval(function () {
    if (box.checked) { window.location.reload(); }
  }, 10000);
})();
