/* The checkpoint page (/checkpoint/) and the e-pass pages: window.nanhai.gate and window.nanhai.gatePasses.
 *
 * The gate: a scan (a QR code read by the vendored jsQR from the camera, or a typed ID number) is posted to
 * POST /api/v1/gate/scans with its own Idempotency-Key and its time; the verdict fills the screen in its colour.
 * A scan that cannot reach the server (no network, a timeout, the server away) is kept in localStorage with its
 * key and time, the screen says plainly that it could not be checked (grey), and the queue is sent when the network
 * is back: the same key makes a resend that did reach the server count once. Queued scans older than a day are
 * dropped; a scan may hold a typed ID number, so nothing stays longer than needed.
 */
(function () {
  "use strict";
  var nanhai = window.nanhai = window.nanhai || {};
  var QUEUE_KEY = "nanhai.gate.queue";
  var PREFS_KEY = "nanhai.gate.prefs";
  var MAX_AGE_MS = 24 * 3600 * 1000;
  var TIMEOUT_MS = 4000;      // a scan unanswered this long is queued and shown as not checked
  var SAME_CODE_MS = 4000;    // the same QR code held in front of the camera counts once
  var VERDICT_MS = 6000;      // the verdict screen closes by itself
  var SCAN_EVERY_MS = 80;     // camera frames decoded at most this often
  var ID_NUMBER = /^[0-9]{17}[0-9Xx]$/;

  function byId(id) { return document.getElementById(id); }

  function config() {
    var node = byId("gate-config");
    return node ? JSON.parse(node.textContent) : {strings: {}};
  }

  function newKey() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function readJson(key, fallback) {
    try { return JSON.parse(window.localStorage.getItem(key)) || fallback; } catch (e) { return fallback; }
  }

  function writeJson(key, value) {
    try { window.localStorage.setItem(key, JSON.stringify(value)); } catch (e) { /* storage full or off */ }
  }

  /* POST JSON to the API with the session's CSRF token; resolves {status, body}, rejects on a network failure
   * or after TIMEOUT_MS. */
  function post(cfg, path, body, key) {
    var controller = window.AbortController ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, TIMEOUT_MS) : null;
    var headers = {"Content-Type": "application/json", "X-CSRF-Token": cfg.csrf, "Accept-Language": cfg.lang};
    if (key) { headers["Idempotency-Key"] = key; }
    return fetch(path, {method: "POST", credentials: "same-origin", headers: headers, body: JSON.stringify(body),
                        signal: controller ? controller.signal : undefined})
      .then(function (response) {
        if (timer) { clearTimeout(timer); }
        return response.json().then(function (json) { return {status: response.status, body: json}; },
                                    function () { return {status: response.status, body: {}}; });
      }, function (error) {
        if (timer) { clearTimeout(timer); }
        throw error;
      });
  }

  var gate = nanhai.gate = {timings: [], seq: 0};

  gate.start = function () {
    var cfg = config(), s = cfg.strings;
    var select = byId("gate-checkpoint");
    var overlay = byId("gate-verdict");
    if (!select || !overlay) { return; }
    var prefs = readJson(PREFS_KEY, {});
    var direction = prefs.direction === "out" ? "out" : "in";
    var lastCode = "", lastCodeAt = 0, closeTimer = null;
    var video = byId("gate-video"), canvas = byId("gate-canvas"), stream = null, scanning = false;
    var context = canvas.getContext("2d", {willReadFrequently: true});

    if (prefs.checkpoint && select.querySelector("option[value='" + prefs.checkpoint + "']")) {
      select.value = prefs.checkpoint;
    }
    function savePrefs() { writeJson(PREFS_KEY, {checkpoint: select.value, direction: direction}); }
    select.addEventListener("change", savePrefs);

    function showDirection() {
      ["gate-in", "gate-out"].forEach(function (id) {
        var button = byId(id);
        button.setAttribute("aria-pressed", button.getAttribute("data-direction") === direction ? "true" : "false");
      });
    }
    ["gate-in", "gate-out"].forEach(function (id) {
      byId(id).addEventListener("click", function () {
        direction = byId(id).getAttribute("data-direction");
        showDirection();
        savePrefs();
      });
    });
    showDirection();

    /* -- the verdict screen -- */
    function paint(kind, colour, big, name, reason, started, source, why) {
      overlay.className = "gate-verdict v-" + kind + " c-" + (colour || "none");
      overlay.setAttribute("data-verdict", kind);
      overlay.setAttribute("data-colour", colour || "none");
      byId("gate-verdict-text").textContent = big;
      byId("gate-verdict-name").textContent = name || "";
      byId("gate-verdict-reason").textContent = reason || "";
      overlay.hidden = false;
      gate.seq += 1;
      overlay.setAttribute("data-seq", String(gate.seq));
      var seq = gate.seq;
      // painted: the frame after the change (what the benchmark measures from the scan)
      window.requestAnimationFrame(function () {
        gate.timings.push({ms: performance.now() - started, verdict: kind, colour: colour || "none", why: why || "",
                           source: source, seq: seq});
      });
      if (closeTimer) { clearTimeout(closeTimer); }
      closeTimer = setTimeout(close, VERDICT_MS);
    }
    function close() {
      overlay.hidden = true;
      if (closeTimer) { clearTimeout(closeTimer); closeTimer = null; }
    }
    overlay.addEventListener("click", close);

    function showVerdict(answer, started, source) {
      var colour = answer.colour || "none";
      var reason = s["colour." + colour];
      if (answer.task_id) { reason += " · " + s["reason.alert"].replace("{task}", answer.task_id); }
      paint(answer.verdict, colour, s["verdict." + answer.verdict], answer.name_masked, reason, started, source);
    }

    function showError(message) {
      var node = byId("gate-error");
      node.textContent = message || "";
      node.hidden = !message;
    }

    /* -- the queue -- */
    function queue() {
      var now = Date.now();
      return readJson(QUEUE_KEY, []).filter(function (item) { return now - item.queued_at < MAX_AGE_MS; });
    }
    function showQueue() {
      var count = queue().length, badge = byId("gate-queue");
      badge.hidden = count === 0;
      badge.textContent = s.queue.replace("{n}", count);
    }
    function enqueue(item) {
      var items = queue();
      items.push(item);
      writeJson(QUEUE_KEY, items);
      showQueue();
    }
    var flushing = false;
    gate.flush = function () {
      if (flushing) { return Promise.resolve(); }
      var items = queue();
      writeJson(QUEUE_KEY, items);  // the expired ones gone
      if (!items.length) { showQueue(); return Promise.resolve(); }
      flushing = true;
      function next() {
        var pending = queue();
        if (!pending.length) { return Promise.resolve(); }
        var item = pending[0];
        return post(cfg, "/api/v1/gate/scans", item.body, item.key).then(function (answer) {
          if (answer.status === 401) {
            showError(s.login_expired);
            throw new Error("login");
          }
          if (answer.status >= 500 || answer.status === 429) { throw new Error("later"); }
          // sent: recorded (an alert raised if red or yellow), or refused for good (a bad pass): out of the queue
          writeJson(QUEUE_KEY, queue().filter(function (other) { return other.key !== item.key; }));
          showQueue();
          return next();
        });
      }
      return next().catch(function () { /* still offline: next time */ }).then(function () {
        flushing = false;
        showQueue();
      });
    };

    /* -- one scan -- */
    function submit(what, started, source) {
      if (!select.value) { return; }
      showError("");
      var body = {checkpoint: select.value, direction: direction, scanned_at: new Date().toISOString()};
      for (var name in what) { if (Object.prototype.hasOwnProperty.call(what, name)) { body[name] = what[name]; } }
      var item = {key: newKey(), body: body, queued_at: Date.now()};
      var unchecked = function () {
        enqueue(item);
        paint("unchecked", "none", s["verdict.unchecked"], "", s["reason.queued"], started, source);
      };
      if (queue().length) { gate.flush(); }
      return post(cfg, "/api/v1/gate/scans", body, item.key).then(function (answer) {
        var json = answer.body || {};
        if (answer.status === 201) {
          showVerdict(json, started, source);
        } else if (answer.status === 422 && json.field === "pass_token") {
          var revoked = json.error === "RevokedPass";
          paint("invalid", "none", s["verdict.invalid"], "", s[revoked ? "reason.revoked" : "reason.forged"], started,
                source, revoked ? "revoked" : "forged");
        } else if (answer.status === 401) {
          showError(s.login_expired);
        } else if (answer.status >= 500 || answer.status === 429) {
          unchecked();
        } else {
          showError(json.message || s.error);
        }
      }, unchecked);
    }

    gate.submitCode = function (data, started) {
      var value = String(data).trim();
      var what = ID_NUMBER.test(value) ? {pass_code: value.toUpperCase()} : {pass_token: value};
      return submit(what, started === undefined ? performance.now() : started, "qr");
    };

    byId("gate-typed").addEventListener("submit", function (event) {
      event.preventDefault();
      var field = byId("gate-id"), value = field.value.trim().toUpperCase();
      if (!value) { showError(s["typed.empty"]); return; }
      field.value = "";
      submit({pass_code: value}, performance.now(), "typed");
    });

    /* -- the camera -- */
    var state = byId("gate-camera-state"), toggle = byId("gate-camera-toggle");
    function tick() {
      if (!scanning) { return; }
      if (video.readyState >= 2 && video.videoWidth && window.jsQR) {
        var started = performance.now();
        var scale = Math.min(1, 640 / Math.max(video.videoWidth, video.videoHeight));
        var width = Math.round(video.videoWidth * scale), height = Math.round(video.videoHeight * scale);
        if (canvas.width !== width) { canvas.width = width; canvas.height = height; }
        context.drawImage(video, 0, 0, width, height);
        var found = window.jsQR(context.getImageData(0, 0, width, height).data, width, height,
                                {inversionAttempts: "dontInvert"});
        if (found && found.data && (found.data !== lastCode || Date.now() - lastCodeAt > SAME_CODE_MS)) {
          lastCode = found.data;
          lastCodeAt = Date.now();
          gate.submitCode(found.data, started);
        }
      }
      setTimeout(tick, SCAN_EVERY_MS);
    }
    function startCamera() {
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        state.textContent = s["camera.unavailable"];
        return;
      }
      navigator.mediaDevices.getUserMedia({audio: false, video: {facingMode: "environment", width: {ideal: 640},
                                                                 height: {ideal: 480}}})
        .then(function (media) {
          stream = media;
          video.srcObject = media;
          var playing = video.play();
          if (playing && playing.catch) { playing.catch(function () { /* autoplay: muted, plays anyway */ }); }
          scanning = true;
          state.textContent = s["camera.scanning"];
          toggle.textContent = s.camera_stop;
          tick();
        }, function () {
          state.textContent = s["camera.denied"];
        });
    }
    function stopCamera() {
      scanning = false;
      if (stream) { stream.getTracks().forEach(function (track) { track.stop(); }); }
      stream = null;
      video.srcObject = null;
      state.textContent = "";
      toggle.textContent = s.camera_start;
    }
    toggle.addEventListener("click", function () { if (scanning) { stopCamera(); } else { startCamera(); } });

    window.addEventListener("online", function () { gate.flush(); });
    setInterval(function () { if (queue().length) { gate.flush(); } }, 5000);
    showQueue();
    gate.flush();
    startCamera();
  };

  /* The e-pass pages: issue and revoke (a person's page), print (the pass's page). */
  nanhai.gatePasses = {
    start: function () {
      var cfg = config(), s = cfg.strings || {};
      var printButton = byId("pass-print");
      if (printButton) { printButton.addEventListener("click", function () { window.print(); }); }
      var issue = byId("pass-issue");
      if (!issue) { return; }
      var error = byId("pass-error");
      function refused(answer) {
        error.textContent = (answer.body && answer.body.message) || s.error;
        error.hidden = false;
      }
      var base = "/api/v1/persons/" + encodeURIComponent(cfg.person) + "/passes";
      var issueKey = newKey();  // one click, one pass: a retry of the same click is the same request
      issue.addEventListener("click", function () {
        issue.disabled = true;
        post(cfg, base, {}, issueKey).then(function (answer) {
          if (answer.status === 201) {
            window.location.assign("/checkpoint/passes/" + answer.body.id);
          } else {
            issue.disabled = false;
            refused(answer);
          }
        }, function () { issue.disabled = false; refused({}); });
      });
      var form = byId("pass-revoke-form");
      if (!form) { return; }
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var reason = byId("pass-reason").value.trim();
        if (reason.length < 2) { refused({body: {message: s["passes.reason_needed"]}}); return; }
        post(cfg, base + "/revocation", {reason: reason}, newKey()).then(function (answer) {
          if (answer.status === 200) { window.location.reload(); } else { refused(answer); }
        }, function () { refused({}); });
      });
    }
  };

  function ready() {
    if (byId("gate-verdict")) { gate.start(); } else { nanhai.gatePasses.start(); }
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", ready); } else { ready(); }
}());
