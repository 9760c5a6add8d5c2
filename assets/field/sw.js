/* The field app's service worker (scope /field/): keeps the app's shell and files so that /field/ opens offline.
 *
 * It keeps no personal data: the shell names nobody, and the API's answers (the tasks, the people) are never
 * kept here; the app keeps its last task list itself, tagged with the user and the session's expiry.
 * The shell: from the network when it answers (kept afresh each time), else the kept copy. The app's files:
 * by their hashed URLs, kept until the next version. Everything else goes to the network untouched.
 * (Dash's pages load every file under assets/; outside a service worker this file does nothing.)
 */
(function (worker) {
  if (typeof ServiceWorkerGlobalScope === "undefined" || !(worker instanceof ServiceWorkerGlobalScope)) { return; }
  var VERSION = "__VERSION__";
  var FILES = __FILES__;
  var SHELL = "/field/";
  var CACHE = "nanhai-field-" + VERSION;

  function keepShell(cache, response) {
    /* only the worker's own shell: not a redirect to the login page, not a refusal */
    if (response && response.ok && response.type === "basic" && !response.redirected) {
      return cache.put(SHELL, response);
    }
    return Promise.resolve();
  }
  worker.addEventListener("install", function (event) {
    event.waitUntil(caches.open(CACHE).then(function (cache) {
      return cache.addAll(FILES).then(function () {
        return fetch(SHELL, { credentials: "same-origin", redirect: "manual", cache: "no-cache" })
          .then(function (response) { return keepShell(cache, response); }, function () { /* kept on next load */ });
      });
    }).then(function () { return worker.skipWaiting(); }));
  });
  worker.addEventListener("activate", function (event) {
    event.waitUntil(caches.keys().then(function (names) {
      return Promise.all(names.filter(function (name) {
        return name.indexOf("nanhai-field-") === 0 && name !== CACHE;
      }).map(function (name) { return caches.delete(name); }));
    }).then(function () { return worker.clients.claim(); }));
  });
  worker.addEventListener("fetch", function (event) {
    var request = event.request;
    if (request.method !== "GET") { return; }
    var url = new URL(request.url);
    if (url.origin !== worker.location.origin) { return; }
    if (url.pathname === SHELL && request.mode === "navigate") {
      event.respondWith(fetch(request).then(function (response) {
        var copy = response.clone();
        caches.open(CACHE).then(function (cache) { return keepShell(cache, copy); });
        return response;
      }, function () {
        return caches.match(SHELL, { cacheName: CACHE }).then(function (kept) { return kept || Response.error(); });
      }));
      return;
    }
    if (FILES.indexOf(url.pathname + url.search) >= 0) {
      event.respondWith(caches.match(request, { cacheName: CACHE }).then(function (kept) {
        return kept || fetch(request);
      }));
    }
  });
}(self));
