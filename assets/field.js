/* The field view (/field/): countdowns, and every action through an outbox that survives a poor network.
 *
 * One tap = one intent = one entry in the localStorage outbox with its own Idempotency-Key, generated once.
 * The entry is sent to the JSON API and retried with backoff (network error, timeout, 408, 429, 5xx) until a
 * definitive answer; a retry carries the same key and the same body, so the server applies it at most once and
 * answers a replay with its first answer. 409: the card shows the task's current state. Other 4xx: the
 * server's message. 401: the entry waits for a new login. Entries of one worker go one at a time, in order.
 */
window.nanhai = window.nanhai || {};
window.nanhai.field = (function () {
  var STORE = "nanhai.field.outbox";
  var RETRY_MS = [1000, 2000, 4000, 8000, 15000];
  var TIMEOUT_MS = 20000;
  var TARGET = { accept: "accepted", decline: "declined", start: "in_progress", handle: "handled" };
  var state = { csrf: null, busy: false, timer: null, failures: 0, paused: null, memory: null, sent: {},
                sheet: null, position: null, scheduled: false };

  function config() {
    var node = document.getElementById("field-config");
    if (!node) { return null; }
    if (!node._parsed) {
      node._parsed = { user: node.getAttribute("data-user"), lang: node.getAttribute("data-lang"),
                       strings: JSON.parse(node.getAttribute("data-strings") || "{}") };
    }
    return node._parsed;
  }
  function t(key, values) {
    var c = config();
    var s = (c && c.strings[key]) || key;
    Object.keys(values || {}).forEach(function (name) { s = s.replace("{" + name + "}", values[name]); });
    return s;
  }
  function newKey() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    if (window.crypto && window.crypto.getRandomValues) { window.crypto.getRandomValues(bytes); }
    else { for (var i = 0; i < 16; i += 1) { bytes[i] = Math.floor(Math.random() * 256); } }
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("")
      + "-" + Date.now().toString(36);
  }

  /* -- the outbox ---------------------------------------------------------------------------------------- */
  function load() {
    if (state.memory) { return state.memory.slice(); }
    try { return JSON.parse(window.localStorage.getItem(STORE) || "[]"); } catch (e) { return []; }
  }
  function save(list) {
    try { window.localStorage.setItem(STORE, JSON.stringify(list)); state.memory = null; }
    catch (e) { state.memory = list.slice(); }  /* private mode or full: keep it for this page at least */
  }
  function mine() {
    var c = config();
    return load().filter(function (e) { return c && e.user === c.user; });
  }
  function update(entry) {
    save(load().map(function (e) { return e.key === entry.key ? entry : e; }));
  }
  function remove(entry) {
    save(load().filter(function (e) { return e.key !== entry.key; }));
  }
  function enqueue(entry) {
    var list = load();
    list.push(entry);
    save(list);
    overlay();
    flush();
  }
  function pending(taskId, action) {
    return mine().some(function (e) { return e.task === taskId && (!action || e.action === action); });
  }

  /* -- what the page shows ------------------------------------------------------------------------------- */
  function setText(node, value) { if (node && node.textContent !== value) { node.textContent = value; } }
  function setAttr(node, name, value) { if (node && node.getAttribute(name) !== value) { node.setAttribute(name, value); } }
  function message(text, kind) {
    var box = document.getElementById("field-message");
    if (!box) { return; }
    setText(box, text || "");
    box.className = "nh-field-message" + (kind ? " nh-field-message-" + kind : "");
  }
  function indicator() {
    var box = document.getElementById("field-outbox");
    if (!box) { return; }
    var n = mine().length;
    var label, kind;
    if (!n) { label = t("outbox_sent"); kind = "sent"; }
    else if (state.paused === "login") { label = t("outbox_login", { n: n }); kind = "login"; }
    else if (state.paused === "offline" || navigator.onLine === false) {
      label = t("outbox_offline", { n: n }); kind = "offline";
    }
    else if (state.busy) { label = t("outbox_sending") + " " + t("outbox_pending", { n: n }); kind = "sending"; }
    else { label = t("outbox_pending", { n: n }); kind = "pending"; }
    setText(box, label);
    setAttr(box, "data-state", kind);
  }
  function card(taskId) { return document.getElementById("field-task-" + taskId); }
  function showTask(taskId, status, version) {
    var node = card(taskId);
    if (!node) { return; }
    setAttr(node, "data-status", status);
    if (version !== undefined && version !== null) { setAttr(node, "data-version", String(version)); }
    setText(node.querySelector(".nh-field-status"), t("status." + status));
  }
  /* Cards as the server drew them, moved ahead by what still waits in the outbox. */
  function overlay() {
    var list = mine();
    var waiting = {};
    list.forEach(function (e) {
      waiting[e.task] = true;
      showTask(e.task, e.to, e.version + 1);
    });
    Array.prototype.forEach.call(document.querySelectorAll(".nh-field-card"), function (node) {
      var id = node.getAttribute("data-task");
      var sync = node.querySelector(".nh-field-sync");
      setText(sync, waiting[id] ? t("card_pending") : (state.sent[id] ? t("card_sent") : ""));
      setAttr(node, "data-sync", waiting[id] ? "pending" : (state.sent[id] ? "sent" : "none"));
    });
    indicator();
  }
  function countdown() {
    var now = Date.now();
    Array.prototype.forEach.call(document.querySelectorAll(".nh-field-countdown[data-due]"), function (node) {
      var due = Date.parse(node.getAttribute("data-due"));
      if (isNaN(due)) { return; }
      var left = Math.round((due - now) / 1000);
      var s = Math.abs(left);
      var days = Math.floor(s / 86400);
      var hms = [Math.floor(s % 86400 / 3600), Math.floor(s % 3600 / 60), s % 60].map(function (v, i) {
        return i === 0 ? String(v) : (v < 10 ? "0" : "") + v;
      }).join(":");
      setText(node, (left < 0 ? t("over") : t("left")) + " " + (days ? days + t("days") + " " : "") + hms);
      node.classList.toggle("nh-field-overdue", left < 0);
      node.classList.toggle("nh-field-soon", left >= 0 && left < 1800);
    });
  }
  function refreshList() {
    if (window.dash_clientside && window.dash_clientside.set_props) {
      window.dash_clientside.set_props("field-synced", { data: Date.now() });
    }
  }

  /* -- sending ------------------------------------------------------------------------------------------- */
  function request(method, url, body, headers) {
    /* the API answers its refusals in the language asked for: the page's */
    headers = Object.assign({ "Accept-Language": (config() || {}).lang === "en" ? "en" : "zh" }, headers || {});
    var controller = window.AbortController ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, TIMEOUT_MS) : null;
    return fetch(url, { method: method, body: body, headers: headers, credentials: "same-origin",
                        cache: "no-store", signal: controller ? controller.signal : undefined })
      .then(function (response) {
        return response.text().then(function (raw) {
          var data = null;
          try { data = raw ? JSON.parse(raw) : null; } catch (e) { data = null; }
          return { status: response.status, data: data || {}, retryAfter: response.headers.get("Retry-After") };
        });
      })
      .finally(function () { if (timer) { clearTimeout(timer); } });
  }
  function csrf() {
    if (state.csrf) { return Promise.resolve(state.csrf); }
    return request("GET", "/api/v1/session").then(function (answer) {
      if (answer.status === 200 && answer.data.csrf_token) { state.csrf = answer.data.csrf_token; return state.csrf; }
      var error = new Error("session"); error.answer = answer; throw error;
    });
  }
  function retryable(status) { return status === 0 || status === 408 || status === 429 || status >= 500; }
  function mutate(url, body, key, contentType) {
    return csrf().then(function (token) {
      var headers = { "X-CSRF-Token": token, "Idempotency-Key": key };
      if (contentType) { headers["Content-Type"] = contentType; }
      return request("POST", url, body, headers);
    }).then(function (answer) {
      if (answer.status === 403 && /CSRF/.test(answer.data.message || "")) {
        state.csrf = null;  /* a new session since the token was read: read it again and retry */
        answer.status = 0;
        answer.csrf = true;
      }
      return answer;
    });
  }
  function dataBlob(dataUrl) {
    var parts = dataUrl.split(",");
    var type = (parts[0].match(/:(.*?);/) || [])[1] || "image/jpeg";
    var bytes = atob(parts[1]);
    var array = new Uint8Array(bytes.length);
    for (var i = 0; i < bytes.length; i += 1) { array[i] = bytes.charCodeAt(i); }
    return new Blob([array], { type: type });
  }
  function uploadPhoto(entry) {
    if (!entry.photo || entry.photoId) { return Promise.resolve({ status: 201 }); }
    var form = new FormData();
    form.append("photo", dataBlob(entry.photo), "photo.jpg");
    return mutate("/api/v1/tasks/" + entry.task + "/photos", form, entry.photoKey).then(function (answer) {
      if (answer.status === 201) { entry.photoId = answer.data.id; }
      else if (!retryable(answer.status) && answer.status !== 401) {
        message(t("photo_failed", { m: answer.data.message || answer.status }), "error");
        answer = { status: 201 };  /* the report goes without the photo rather than not at all */
      }
      if (answer.status === 201) { entry.photo = null; update(entry); }
      return answer;
    });
  }
  function deliver(entry) {
    return uploadPhoto(entry).then(function (photo) {
      if (photo.status !== 201) { return photo; }
      if (!entry.json) {  /* fixed once: a retry must send the very same bytes under the same key */
        var body = Object.assign({ action: entry.action, version: entry.version }, entry.body);
        if (entry.photoId) { body.photos = [entry.photoId]; }
        entry.json = JSON.stringify(body);
        update(entry);
      }
      return mutate("/api/v1/tasks/" + entry.task + "/transitions", entry.json, entry.key, "application/json");
    });
  }
  function settle(entry, answer) {
    if (answer.status >= 200 && answer.status < 300) {
      remove(entry);
      state.sent[entry.task] = true;
      var task = answer.data.task || {};
      showTask(entry.task, task.status || entry.to, task.version);
      message("");
      return "done";
    }
    if (answer.status === 401) { state.paused = "login"; return "wait"; }
    if (retryable(answer.status)) { return "retry"; }
    remove(entry);
    var current = answer.data.current;
    if (answer.status === 409 && current) {
      showTask(entry.task, current.status, current.version);
      message(t("conflict", { s: t("status." + current.status) }) + " · " + (answer.data.message || ""), "error");
    } else {
      message(t("refused", { m: answer.data.message || String(answer.status) }), "error");
    }
    return "done";
  }
  function schedule(ms) {
    clearTimeout(state.timer);
    state.timer = setTimeout(function () { state.timer = null; flush(); }, ms);
  }
  function flush() {
    if (state.busy) { return; }
    var list = mine();
    if (!list.length) { indicator(); return; }
    clearTimeout(state.timer);
    state.timer = null;
    state.busy = true;
    indicator();
    var entry = list[0];
    deliver(entry).catch(function (error) {
      return (error && error.answer) || { status: 0, data: {} };  /* offline, timed out or dropped */
    }).then(function (answer) {
      var outcome = settle(entry, answer);
      state.busy = false;
      if (outcome === "done") {
        state.failures = 0;
        state.paused = null;
        overlay();
        if (mine().length) { flush(); } else { refreshList(); }
        return;
      }
      if (outcome === "retry") {
        state.paused = answer.status === 0 && !answer.csrf ? "offline" : null;
        var wait = answer.csrf ? 0 : RETRY_MS[Math.min(state.failures, RETRY_MS.length - 1)];
        var asked = parseInt(answer.retryAfter || "", 10);
        if (!isNaN(asked)) { wait = Math.max(wait, asked * 1000); }
        state.failures += 1;
        schedule(wait + Math.floor(Math.random() * 400));
      } else {
        schedule(30000);  /* waiting for a login: look again now and then */
      }
      overlay();
    });
  }
  function wake() {
    state.paused = null;
    state.failures = 0;
    flush();
  }

  /* -- the sheet: declining and reporting -------------------------------------------------------------- */
  function $(id) { return document.getElementById(id); }
  function photoInput() {
    var slot = $("field-photo-slot");
    if (slot && !$("field-photo")) {
      var input = document.createElement("input");
      input.type = "file"; input.id = "field-photo"; input.accept = "image/*";
      input.setAttribute("capture", "environment");
      input.className = "nh-field-input";
      slot.appendChild(input);
    }
    return $("field-photo");
  }
  function openSheet(action, node) {
    var sheet = $("field-sheet");
    if (!sheet) { return; }
    state.sheet = { action: action, task: node.getAttribute("data-task"),
                    version: parseInt(node.getAttribute("data-version"), 10),
                    temperature: node.getAttribute("data-temperature") === "1" };
    state.position = null;
    setText($("field-sheet-title"), t(action === "decline" ? "decline_title" : "report_title"));
    setText($("field-sheet-task"), node.getAttribute("data-title"));
    $("field-decline-form").hidden = action !== "decline";
    $("field-report-form").hidden = action !== "handle";
    $("field-temperature-needed").hidden = !state.sheet.temperature;
    setText($("field-sheet-error"), "");
    setText($("field-position-text"), "");
    setText($("field-distance"), "");
    photoInput();
    sheet.hidden = false;
    document.body.classList.add("nh-field-sheet-open");
    if (action === "handle") { locate(false); }
  }
  function closeSheet() {
    var sheet = $("field-sheet");
    if (sheet) { sheet.hidden = true; }
    document.body.classList.remove("nh-field-sheet-open");
    ["field-reason", "field-result", "field-note"].forEach(function (id) { if ($(id)) { $(id).value = ""; } });
    if ($("field-temperature")) {
      $("field-temperature").value = "";
      if (window.dash_clientside && window.dash_clientside.set_props) {
        window.dash_clientside.set_props("field-temperature", { value: null });
      }
    }
    if ($("field-photo")) { $("field-photo").value = ""; }
    state.sheet = null;
  }
  function locate(fresh) {
    var shown = $("field-position-text");
    if (!navigator.geolocation) { setText(shown, t("no_position")); return; }
    var asked = state.sheet && state.sheet.task;
    setText(shown, t("locating"));
    navigator.geolocation.getCurrentPosition(function (position) {
      if (!state.sheet || state.sheet.task !== asked) { return; }
      var c = position.coords;
      state.position = { lon: Math.round(c.longitude * 1e6) / 1e6, lat: Math.round(c.latitude * 1e6) / 1e6 };
      setText(shown, state.position.lon.toFixed(6) + ", " + state.position.lat.toFixed(6)
        + (c.accuracy ? " · " + t("accuracy") + " ±" + Math.round(c.accuracy) + " m" : ""));
      if (window.dash_clientside && window.dash_clientside.set_props) {  /* the server says how far from the grid */
        window.dash_clientside.set_props("field-position", { data: { task: asked, lon: state.position.lon,
                                                                     lat: state.position.lat, at: Date.now() } });
      }
    }, function () {
      if (state.sheet && state.sheet.task === asked) { setText(shown, t("no_position")); }
    }, { enableHighAccuracy: true, timeout: 15000, maximumAge: fresh ? 0 : 30000 });
  }
  /* A phone photo shrunk to at most 1600 px as JPEG: small enough for a poor network and for localStorage. */
  function shrink(file) {
    if (!file) { return Promise.resolve(null); }
    return new Promise(function (resolve) {
      var reader = new FileReader();
      reader.onerror = function () { resolve(null); };
      reader.onload = function () {
        var image = new Image();
        image.onerror = function () { resolve(reader.result); };
        image.onload = function () {
          var scale = Math.min(1, 1600 / Math.max(image.width, image.height));
          var canvas = document.createElement("canvas");
          canvas.width = Math.max(1, Math.round(image.width * scale));
          canvas.height = Math.max(1, Math.round(image.height * scale));
          canvas.getContext("2d").drawImage(image, 0, 0, canvas.width, canvas.height);
          resolve(canvas.toDataURL("image/jpeg", 0.8));
        };
        image.src = reader.result;
      };
      reader.readAsDataURL(file);
    });
  }
  function submitSheet() {
    var s = state.sheet;
    if (!s) { return; }
    var error = $("field-sheet-error");
    var body = {};
    if (s.action === "decline") {
      body.reason = ($("field-reason").value || "").trim();
      if (!body.reason) { setText(error, t("need_reason")); return; }
    } else {
      body.result = ($("field-result").value || "").trim();
      if (!body.result) { setText(error, t("need_result")); return; }
      var raw = ($("field-temperature").value || "").trim();
      if (raw) {
        var value = parseFloat(raw);
        if (isNaN(value) || value < 34 || value > 43) { setText(error, t("bad_temperature")); return; }
        body.temperature = Math.round(value * 10) / 10;
      } else if (s.temperature) { setText(error, t("need_temperature")); return; }
      var note = ($("field-note").value || "").trim();
      if (note) { body.note = note; }
      if (state.position) { body.location = state.position; }
    }
    var file = s.action === "handle" && $("field-photo") && $("field-photo").files[0];
    var button = $("field-submit");
    button.disabled = true;
    shrink(file).then(function (photo) {
      button.disabled = false;
      queue(s.task, s.action, s.version, body, photo);
      closeSheet();
    });
  }
  function queue(taskId, action, version, body, photo) {
    var c = config();
    enqueue({ key: newKey(), user: c.user, task: taskId, action: action, version: version, body: body || {},
              to: TARGET[action], photo: photo || null, photoKey: photo ? newKey() : null, photoId: null,
              json: null, at: new Date().toISOString() });
  }
  function onClick(event) {
    var target = event.target.closest && event.target.closest("button");
    if (!target) { return; }
    if (target.id === "field-submit") { submitSheet(); return; }
    if (target.id === "field-cancel") { closeSheet(); return; }
    if (target.id === "field-locate") { locate(true); return; }
    var action = target.getAttribute("data-action");
    var node = target.closest(".nh-field-card");
    if (!action || !node || target.getAttribute("data-when") !== node.getAttribute("data-status")) { return; }
    var taskId = node.getAttribute("data-task");
    if (pending(taskId, action)) { return; }  /* a double tap is still one intent */
    if (action === "decline" || action === "handle") { openSheet(action, node); return; }
    queue(taskId, action, parseInt(node.getAttribute("data-version"), 10), {}, null);
  }

  function start() {
    document.addEventListener("click", onClick);
    document.addEventListener("input", function (event) {  /* a fixed field clears the sheet's complaint */
      if (event.target.closest && event.target.closest("#field-sheet")) { setText($("field-sheet-error"), ""); }
    });
    window.addEventListener("online", wake);
    window.addEventListener("offline", function () { state.paused = "offline"; indicator(); });
    document.addEventListener("visibilitychange", function () { if (!document.hidden) { flush(); } });
    new MutationObserver(function () {  /* Dash redrew the cards: put the waiting actions back on them */
      if (state.scheduled) { return; }
      state.scheduled = true;
      window.requestAnimationFrame(function () { state.scheduled = false; overlay(); countdown(); });
    }).observe(document.body, { childList: true, subtree: true });
    setInterval(countdown, 1000);
    setInterval(function () { if (!state.busy && mine().length && !state.timer) { flush(); } }, 5000);
    var wait = setInterval(function () {  /* the layout arrives after the scripts */
      if (config()) { clearInterval(wait); overlay(); countdown(); flush(); }
    }, 200);
  }
  if (window.location.pathname.indexOf("/field/") === 0) {
    if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
  }
  return { outbox: mine, flush: flush, newKey: newKey, queue: queue };
}());
