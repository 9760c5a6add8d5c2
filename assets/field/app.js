/* The field app (/field/): a worker's tasks on a phone on a poor network, offline too.
 *
 * The cards are drawn here from GET /api/v1/field/tasks (the tasks in hand, the done list, the session's expiry).
 * The last answer is kept in localStorage tagged with the user and his session's expiry: offline the app opens
 * with it, it is not shown once the session has expired, and logging out clears it.
 *
 * The outbox: one tap = one intent = one entry in localStorage with its own Idempotency-Key, generated once.
 * The entry is sent to the JSON API and retried with backoff (network error, timeout, 408, 429, 5xx) until a
 * definitive answer; a retry carries the same key and the same body, so the server applies it at most once and
 * answers a replay with its first answer. 409: the card shows the task's current state. Other 4xx: the server's
 * message. 401: the entry waits for a new login. Entries of one worker go one at a time, in order. It flushes
 * when the network returns.
 *
 * Today's follow-ups (今日随访, issue 25): the persons in observation in the worker's grids, from
 * GET /api/v1/observation/follow-ups, kept with the tasks. A check-in (temperature, symptoms) is one more kind of
 * outbox entry ("check"), its body fixed at the tap, posted to /api/v1/observation/plans/<id>/checks under its own
 * Idempotency-Key: retried as a task action is, recorded once.
 */
window.nanhai = window.nanhai || {};
window.nanhai.field = (function () {
  var OUTBOX = "nanhai.field.outbox";
  var CACHE = "nanhai.field.cache";
  var RETRY_MS = [1000, 2000, 4000, 8000, 15000];
  var TIMEOUT_MS = 20000;
  var REFRESH_MS = 60000;
  var MAX_PHOTOS = 6;
  var TARGET = { accept: "accepted", decline: "declined", start: "in_progress", handle: "handled" };
  var IN_HAND = ["dispatched", "accepted", "in_progress"];
  var state = { csrf: null, user: null, data: null, fromCache: false, tab: "todo", busy: false, timer: null,
                failures: 0, paused: null, memory: null, sent: {}, sheet: null, position: null, photos: [],
                firstCardAt: null, stamp: null, loading: false, follow: null, followStamp: null, checked: {} };
  var SYMPTOMS = ["none", "cough", "fever", "other"];

  function $(id) { return document.getElementById(id); }
  function config() {
    if (!state.config) {
      var node = $("field-config");
      state.config = node ? JSON.parse(node.textContent || "{}") : { strings: {} };
    }
    return state.config;
  }
  function t(key, values) {
    var s = config().strings[key] || key;
    Object.keys(values || {}).forEach(function (name) { s = s.replace("{" + name + "}", values[name]); });
    return s;
  }
  function en() { return config().lang === "en"; }
  function newKey() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    if (window.crypto && window.crypto.getRandomValues) { window.crypto.getRandomValues(bytes); }
    else { for (var i = 0; i < 16; i += 1) { bytes[i] = Math.floor(Math.random() * 256); } }
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("")
      + "-" + Date.now().toString(36);
  }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === null || value === undefined || value === false) { return; }
      if (name === "className") { node.className = value; } else { node.setAttribute(name, value === true ? "" : value); }
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined || child === "") { return; }
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }
  function setText(node, value) { if (node && node.textContent !== value) { node.textContent = value; } }
  function setAttr(node, name, value) { if (node && node.getAttribute(name) !== value) { node.setAttribute(name, value); } }

  /* -- the kept tasks: tagged with the user and the session's expiry ------------------------------------ */
  function readCache() {
    var kept = null;
    try { kept = JSON.parse(window.localStorage.getItem(CACHE) || "null"); } catch (e) { kept = null; }
    if (!kept) { return null; }
    if (!kept.user || !kept.expires_at || !(Date.parse(kept.expires_at) > Date.now())) {
      window.localStorage.removeItem(CACHE);  /* the session it came with has ended: never shown again */
      return null;
    }
    return kept;
  }
  function keep(data) {
    var kept = { user: data.username, display_name: data.display_name, expires_at: data.session_expires_at,
                 saved_at: new Date().toISOString(), tasks: data.tasks, done: data.done, far_from_m: data.far_from_m };
    try { window.localStorage.setItem(CACHE, JSON.stringify(kept)); } catch (e) { /* full: the outbox matters more */ }
    return kept;
  }
  function forget() {
    [CACHE, OUTBOX].forEach(function (key) { try { window.localStorage.removeItem(key); } catch (e) { /* none */ } });
    state.memory = null;
    state.data = null;
    state.follow = null;
  }
  function keepFollow(list) {
    var kept = readCache();
    if (!kept) { return; }
    kept.follow = list;
    try { window.localStorage.setItem(CACHE, JSON.stringify(kept)); } catch (e) { /* full: the outbox matters more */ }
  }

  /* -- the outbox ---------------------------------------------------------------------------------------- */
  function load() {
    if (state.memory) { return state.memory.slice(); }
    try { return JSON.parse(window.localStorage.getItem(OUTBOX) || "[]"); } catch (e) { return []; }
  }
  function save(list) {
    try { window.localStorage.setItem(OUTBOX, JSON.stringify(list)); state.memory = null; }
    catch (e) { state.memory = list.slice(); }  /* private mode or full: keep it for this page at least */
  }
  function mine() {
    return load().filter(function (e) { return state.user && e.user === state.user; });
  }
  function update(entry) { save(load().map(function (e) { return e.key === entry.key ? entry : e; })); }
  function remove(entry) { save(load().filter(function (e) { return e.key !== entry.key; })); }
  function enqueue(entry) {
    var list = load();
    list.push(entry);
    save(list);
    overlay();
    flush();
  }
  /* Taps the Dash page queued before this app (one photo each, tagged with the user's id) go out as any other. */
  function adopt(data) {
    var changed = false;
    var list = load().map(function (e) {
      if (e.user === String(data.user_id)) { e.user = data.username; changed = true; }
      if (!e.photos) {
        e.photos = e.photo && !e.photoId ? [e.photo] : (e.photoId ? [null] : []);
        e.photoKeys = e.photoKey ? [e.photoKey] : [];
        e.photoIds = e.photoId ? [e.photoId] : e.photos.map(function () { return null; });
        delete e.photo; delete e.photoKey; delete e.photoId;
        changed = true;
      }
      return e;
    });
    if (changed) { save(list); }
  }
  function pending(taskId, action) {
    return mine().some(function (e) { return e.task === taskId && (!action || e.action === action); });
  }

  /* -- drawing ------------------------------------------------------------------------------------------- */
  function message(text, kind) {
    var box = $("field-message");
    if (!box) { return; }
    setText(box, text || "");
    box.className = "nh-field-message" + (kind ? " nh-field-message-" + kind : "");
  }
  function clock(iso, withDate) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) { return ""; }
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    var time = two(d.getHours()) + ":" + two(d.getMinutes());
    var today = new Date();
    if (!withDate && d.toDateString() === today.toDateString()) { return time; }
    return two(d.getMonth() + 1) + "-" + two(d.getDate()) + " " + time;
  }
  function kindName(task) { return en() ? (task.kind_name_en || task.kind) : (task.kind_name || task.kind); }
  function gridName(task) { return (task.grid_name ? task.grid_name + " " : "") + task.grid_code; }
  function mapLinks(task) {
    if (!task.target) { return []; }
    var lon = task.target.lon, lat = task.target.lat;
    var label = encodeURIComponent(task.address || task.grid_name || task.title);
    return [
      el("a", { className: "nh-field-btn nh-field-secondary nh-field-nav", id: "field-nav-" + task.id,
                href: "https://uri.amap.com/marker?position=" + lon + "," + lat + "&name=" + label
                  + "&coordinate=wgs84&callnative=1", target: "_blank", rel: "noopener" }, [t("navigate")]),
      el("a", { className: "nh-field-link nh-field-geo", id: "field-geo-" + task.id,
                href: "geo:" + lat + "," + lon + "?q=" + lat + "," + lon + "(" + label + ")" }, [t("map_app")])
    ];
  }
  function actionButton(task, action, when, primary) {
    return el("button", { type: "button", id: "field-" + action + "-" + task.id, "data-action": action,
                          "data-when": when, className: "nh-field-btn " + (primary ? "nh-field-primary"
                                                                                   : "nh-field-secondary") },
              [t(action)]);
  }
  function card(task) {
    var person = task.person;
    var buttons = [actionButton(task, "accept", "dispatched", true), actionButton(task, "decline", "dispatched", false),
                   actionButton(task, "start", "accepted", true), actionButton(task, "handle", "in_progress", true),
                   el("div", { className: "nh-field-note", "data-when": "handled" }, [t("waiting")]),
                   el("div", { className: "nh-field-note", "data-when": "declined" }, [t("declined")])];
    var tools = [];
    if (person) {
      tools.push(el("button", { type: "button", id: "field-call-" + task.id, "data-action": "call",
                                className: "nh-field-btn nh-field-secondary" }, [t("call")]));
    }
    tools = tools.concat(mapLinks(task));
    tools.push(el("button", { type: "button", id: "field-extend-" + task.id, "data-action": "extend",
                              className: "nh-field-btn nh-field-secondary nh-field-extend" }, [t("extend")]));
    return el("article", {
      id: "field-task-" + task.id, className: "nh-field-card", "data-task": String(task.id),
      "data-version": String(task.version), "data-status": task.status, "data-due": task.due_at || "",
      "data-temperature": task.needs_temperature ? "1" : "0", "data-task-title": task.title,
      "data-person": person ? person.person_key : null,
      "data-extension": task.extension_requested_until ? "pending" : "none"
    }, [
      el("div", { className: "nh-field-card-top" }, [
        el("span", { className: "nh-field-kind" }, [kindName(task)]),
        el("span", { className: "nh-field-status" }, [t("status." + task.status)])]),
      el("h2", { className: "nh-field-title nh-name" }, [task.title]),
      el("div", { className: "nh-field-due-row" }, [
        el("span", { className: "nh-field-countdown" + (task.overdue ? " nh-field-overdue" : ""),
                     "data-due": task.due_at || "" }, []),
        el("span", { className: "nh-field-due" }, [task.due_at ? t("due") + " " + clock(task.due_at) : ""])]),
      el("div", { className: "nh-field-facts" }, [t("grid") + " ", el("span", { className: "nh-name" }, [gridName(task)])]),
      task.address ? el("div", { className: "nh-field-address" }, [t("address") + " ",
                                                                 el("span", { className: "nh-name" }, [task.address])])
                   : null,
      person ? el("div", { className: "nh-field-person" }, [t("person") + " ", el("span", { className: "nh-name" },
        [[person.name_masked, person.id_masked].filter(Boolean).join(" · ")])]) : null,
      task.detail ? el("p", { className: "nh-field-detail nh-name" }, [task.detail]) : null,
      el("div", { className: "nh-field-ext" }, [task.extension_requested_until
        ? t("extension_pending", { until: clock(task.extension_requested_until, true) }) : ""]),
      el("div", { className: "nh-field-actions" }, buttons),
      el("div", { className: "nh-field-tools" }, tools),
      el("div", { className: "nh-field-call", id: "field-dial-" + task.id }, []),
      el("div", { className: "nh-field-sync", role: "status" }, [])
    ]);
  }
  function doneCard(task) {
    var when = task.closed_at || task.handled_at;
    return el("article", { id: "field-done-" + task.id, className: "nh-field-card nh-field-done-card",
                           "data-task": String(task.id), "data-status": task.status }, [
      el("div", { className: "nh-field-card-top" }, [
        el("span", { className: "nh-field-kind" }, [kindName(task)]),
        el("span", { className: "nh-field-status" }, [t("status." + task.status)])]),
      el("h2", { className: "nh-field-title nh-name" }, [task.title]),
      el("div", { className: "nh-field-facts" }, [t("grid") + " ", el("span", { className: "nh-name" }, [gridName(task)]),
                                                 when ? " · " + clock(when, true) : ""])
    ]);
  }
  function render() {
    var data = state.data;
    var list = $("field-tasks"), done = $("field-done");
    if (!list || !data) { return; }
    var stamp = JSON.stringify([data.tasks, data.done, state.fromCache]);
    if (stamp === state.stamp) { overlay(); return; }  /* nothing changed: the cards stay as they are */
    state.stamp = stamp;
    list.textContent = "";
    done.textContent = "";
    data.tasks.forEach(function (task) { list.appendChild(card(task)); });
    if (!data.tasks.length) { list.appendChild(el("p", { className: "nh-field-empty", id: "field-empty" }, [t("empty")])); }
    data.done.forEach(function (task) { done.appendChild(doneCard(task)); });
    if (!data.done.length) { done.appendChild(el("p", { className: "nh-field-empty" }, [t("done_empty")])); }
    setText($("field-count-todo"), String(data.tasks.length));
    setText($("field-count-done"), String(data.done.length));
    setText($("field-user"), data.display_name || data.user || "");
    if (data.tasks.length && state.firstCardAt === null && window.performance) {
      state.firstCardAt = window.performance.now();  /* the benchmark reads it: navigation start to first card */
    }
    overlay();
    countdown();
  }
  /* -- today's follow-ups ------------------------------------------------------------------------------- */
  function beijing(iso, withDate) {
    /* check times are Beijing times whatever the phone's zone */
    var ms = Date.parse(iso);
    if (isNaN(ms)) { return ""; }
    var d = new Date(ms + 8 * 3600 * 1000);
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    var time = two(d.getUTCHours()) + ":" + two(d.getUTCMinutes());
    var today = new Date(Date.now() + 8 * 3600 * 1000);
    if (!withDate && d.toISOString().slice(0, 10) === today.toISOString().slice(0, 10)) { return time; }
    return two(d.getUTCMonth() + 1) + "-" + two(d.getUTCDate()) + " " + time;
  }
  function symptomNames(list) {
    return (list || []).filter(function (s) { return s !== "none"; }).map(function (s) { return t("symptom_" + s); });
  }
  function reading(report) {
    var parts = [];
    if (report.temperature !== null && report.temperature !== undefined) { parts.push(Number(report.temperature).toFixed(1) + " ℃"); }
    var names = symptomNames(report.symptoms);
    if (names.length) { parts.push(names.join("、")); }
    return parts.join(" · ") || t("symptom_none");
  }
  function chip(check) {
    var label = beijing(check.due_at) + " ";
    if (check.status === "done") { label += check.temperature !== null ? Number(check.temperature).toFixed(1) + "℃" : t("follow_done"); }
    else { label += t("follow_" + check.status); }
    return el("span", { className: "nh-field-chip", "data-state": check.status, "data-check": String(check.id),
                        "data-abnormal": check.abnormal ? "1" : null }, [label]);
  }
  function followCard(item) {
    var next = "";
    if (item.next_state === "late") { next = t("follow_late", { t: beijing(item.next_check_at) }); }
    else if (item.next_check_at) { next = t("follow_next", { t: beijing(item.next_check_at) }); }
    else { next = t("follow_none"); }
    var last = item.last_report;
    return el("article", { id: "field-follow-" + item.plan_id, className: "nh-field-card nh-field-follow-card",
                           "data-plan": String(item.plan_id), "data-state": item.next_state || "none",
                           "data-missed": item.last_missed ? "1" : "0", "data-person-title":
                             [item.name_masked, item.id_masked].filter(Boolean).join(" · ") }, [
      el("div", { className: "nh-field-card-top" }, [
        el("span", { className: "nh-field-kind" }, [t("follow_day", { n: item.day, N: item.days })]),
        el("span", { className: "nh-field-status" + (item.last_missed ? " nh-field-overdue" : "") },
           [item.last_missed ? t("follow_last_missed") : ""])]),
      el("h2", { className: "nh-field-title nh-name" }, [[item.name_masked, item.id_masked].filter(Boolean).join(" · ")]),
      el("div", { className: "nh-field-next" + (item.next_state === "late" ? " nh-field-overdue" : "") }, [next]),
      el("div", { className: "nh-field-facts" }, [t("grid") + " ", el("span", { className: "nh-name" },
        [(item.grid_name ? item.grid_name + " " : "") + (item.grid_code || "")])]),
      el("div", { className: "nh-field-chips" }, item.checks_today.map(chip)),
      last ? el("div", { className: "nh-field-facts nh-field-last", "data-abnormal": last.abnormal ? "1" : null },
                [t("follow_last", { v: reading(last), at: beijing(last.reported_at) })]) : null,
      el("div", { className: "nh-field-actions" }, [
        el("button", { type: "button", id: "field-check-" + item.plan_id, "data-action": "check",
                       className: "nh-field-btn nh-field-primary" }, [t("check")]),
        el("a", { className: "nh-field-btn nh-field-secondary", id: "field-link-" + item.plan_id,
                  href: "/obs/print/" + item.plan_id, target: "_blank", rel: "noopener" }, [t("follow_link")])]),
      el("div", { className: "nh-field-sync", role: "status" }, [])
    ]);
  }
  function renderFollow() {
    var box = $("field-follow");
    if (!box || !state.follow) { return; }
    var stamp = JSON.stringify(state.follow);
    if (stamp !== state.followStamp) {
      state.followStamp = stamp;
      box.textContent = "";
      state.follow.forEach(function (item) { box.appendChild(followCard(item)); });
      if (!state.follow.length) {
        box.appendChild(el("p", { className: "nh-field-empty", id: "field-follow-empty" }, [t("follow_empty")]));
      }
      setText($("field-count-follow"), String(state.follow.length));
    }
    overlay();
  }
  function refreshFollow() {
    return request("GET", "/api/v1/observation/follow-ups").then(function (answer) {
      if (answer.status === 200) {
        state.follow = answer.data.follow_ups || [];
        state.checked = {};
        keepFollow(state.follow);
        renderFollow();
        document.body.setAttribute("data-follow", "ready");
      } else if (answer.status !== 401) {
        document.body.setAttribute("data-follow", "refused");
      }
    }, function () { /* offline: the kept list stays */ });
  }
  function showTab(tab) {
    state.tab = tab;
    $("field-tasks").hidden = tab !== "todo";
    $("field-done").hidden = tab !== "done";
    $("field-follow").hidden = tab !== "follow";
    setAttr($("field-tab-todo"), "aria-selected", String(tab === "todo"));
    setAttr($("field-tab-done"), "aria-selected", String(tab === "done"));
    setAttr($("field-tab-follow"), "aria-selected", String(tab === "follow"));
  }
  function indicator() {
    var box = $("field-outbox");
    if (!box) { return; }
    var n = mine().length;
    var label, kind;
    if (!n) { label = t("outbox_sent"); kind = "sent"; }
    else if (state.paused === "login") { label = t("outbox_login", { n: n }); kind = "login"; }
    else if (state.paused === "offline" || navigator.onLine === false) { label = t("outbox_offline", { n: n }); kind = "offline"; }
    else if (state.busy) { label = t("outbox_sending") + " " + t("outbox_pending", { n: n }); kind = "sending"; }
    else { label = t("outbox_pending", { n: n }); kind = "pending"; }
    setText(box, label);
    setAttr(box, "data-state", kind);
  }
  function cardOf(taskId) { return $("field-task-" + taskId); }
  function showTask(taskId, status, version) {
    var node = cardOf(taskId);
    if (!node) { return; }
    setAttr(node, "data-status", status);
    if (version !== undefined && version !== null) { setAttr(node, "data-version", String(version)); }
    setText(node.querySelector(".nh-field-status"), t("status." + status));
  }
  /* Cards as the server drew them, moved ahead by what still waits in the outbox. */
  function overlay() {
    var waiting = {}, checking = {};
    mine().forEach(function (e) {
      if (e.kind === "check") { checking[e.plan] = true; return; }
      waiting[e.task] = true;
      showTask(e.task, e.to, e.version + 1);
      if (e.action === "request_extension" && cardOf(e.task)) { setAttr(cardOf(e.task), "data-extension", "pending"); }
    });
    Array.prototype.forEach.call(document.querySelectorAll("#field-tasks .nh-field-card"), function (node) {
      var id = node.getAttribute("data-task");
      setText(node.querySelector(".nh-field-sync"), waiting[id] ? t("card_pending") : (state.sent[id] ? t("card_sent") : ""));
      setAttr(node, "data-sync", waiting[id] ? "pending" : (state.sent[id] ? "sent" : "none"));
    });
    Array.prototype.forEach.call(document.querySelectorAll("#field-follow .nh-field-card"), function (node) {
      var plan = node.getAttribute("data-plan");
      var done = state.checked[plan];
      setText(node.querySelector(".nh-field-sync"), checking[plan] ? t("card_pending")
        : (done ? t("check_recorded", { v: reading(done) }) : ""));
      setAttr(node, "data-sync", checking[plan] ? "pending" : (done ? "sent" : "none"));
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
  function network(online) {
    var box = $("field-net");
    if (!box) { return; }
    if (online) { box.hidden = true; setText(box, ""); return; }
    box.hidden = false;
    setText(box, state.data && state.data.saved_at ? t("offline_cached", { at: clock(state.data.saved_at, true) })
                                                   : t("offline_nothing"));
  }

  /* -- reading the lists ------------------------------------------------------------------------------- */
  function request(method, url, body, headers) {
    /* the API answers its refusals in the language asked for: the page's */
    headers = Object.assign({ "Accept-Language": en() ? "en" : "zh" }, headers || {});
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
  function refreshList() {
    if (state.loading) { return Promise.resolve(); }
    state.loading = true;
    return request("GET", "/api/v1/field/tasks").then(function (answer) {
      state.loading = false;
      document.body.setAttribute("data-field", "ready");  /* the first answer is in (tests wait for it) */
      if (answer.status === 200) {
        var data = answer.data;
        if (state.user && state.user !== data.username) { forget(); }  /* another worker on this phone */
        state.csrf = data.csrf_token;
        state.user = data.username;
        adopt(data);
        state.data = keep(data);
        state.fromCache = false;
        network(true);
        if (state.paused === "login") { state.paused = null; }
        render();
        refreshFollow();
        flush();
        return;
      }
      if (answer.status === 401) {  /* the session is over: what was kept of it goes */
        try { window.localStorage.removeItem(CACHE); } catch (e) { /* none */ }
        state.data = null;
        state.paused = "login";
        var list = $("field-tasks");
        list.textContent = "";
        list.appendChild(el("p", { className: "nh-field-empty", id: "field-login" }, [
          t("login_needed") + " ", el("a", { href: "/login?next=/field/" }, [t("login")])]));
        indicator();
        return;
      }
      message(t("refused", { m: answer.data.message || String(answer.status) }), "error");
    }, function () {
      state.loading = false;  /* offline: the kept tasks, if any, stay on screen */
      document.body.setAttribute("data-field", "ready");
      state.paused = mine().length ? "offline" : state.paused;
      if (!state.data) {
        var list = $("field-tasks");
        list.textContent = "";
        list.appendChild(el("p", { className: "nh-field-empty", id: "field-offline-empty" }, [t("offline_nothing")]));
      }
      network(false);
      indicator();
    });
  }

  /* -- sending ------------------------------------------------------------------------------------------- */
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
      var headers = { "X-CSRF-Token": token };
      if (key) { headers["Idempotency-Key"] = key; }
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
  /* The entry's photos, one at a time, each under its own key; one that the server refuses for good is left out
     (the report goes without it rather than not at all). */
  function uploadPhotos(entry) {
    var index = (entry.photos || []).findIndex(function (p, i) { return p && !entry.photoIds[i]; });
    if (index < 0) { return Promise.resolve({ status: 201 }); }
    var form = new FormData();
    form.append("photo", dataBlob(entry.photos[index]), "photo-" + (index + 1) + ".jpg");
    return mutate("/api/v1/tasks/" + entry.task + "/photos", form, entry.photoKeys[index]).then(function (answer) {
      if (answer.status === 201) { entry.photoIds[index] = answer.data.id; }
      else if (!retryable(answer.status) && answer.status !== 401) {
        message(t("photo_failed", { m: answer.data.message || answer.status }), "error");
        entry.photoIds[index] = -1;
      } else { return answer; }
      entry.photos[index] = null;
      update(entry);
      return uploadPhotos(entry);
    });
  }
  function deliver(entry) {
    if (entry.kind === "check") {
      return mutate("/api/v1/observation/plans/" + entry.plan + "/checks", entry.json, entry.key, "application/json");
    }
    return uploadPhotos(entry).then(function (photo) {
      if (photo.status !== 201) { return photo; }
      if (!entry.json) {  /* fixed once: a retry must send the very same bytes under the same key */
        var body = Object.assign({ action: entry.action, version: entry.version }, entry.body);
        var ids = (entry.photoIds || []).filter(function (id) { return id > 0; });
        if (ids.length) { body.photos = ids; }
        entry.json = JSON.stringify(body);
        update(entry);
      }
      return mutate("/api/v1/tasks/" + entry.task + "/transitions", entry.json, entry.key, "application/json");
    });
  }
  function settleCheck(entry, answer) {
    if (answer.status >= 200 && answer.status < 300) {
      remove(entry);
      state.checked[entry.plan] = entry.body;
      message(t("check_recorded", { v: reading(entry.body) }) + (answer.data.fever ? " · " + t("check_fever") : ""),
              answer.data.fever ? "error" : "");
      return "done";
    }
    if (answer.status === 401) { state.paused = "login"; return "wait"; }
    if (retryable(answer.status)) { return "retry"; }
    remove(entry);
    message(t("refused", { m: answer.data.message || String(answer.status) }), "error");
    return "done";
  }
  function settle(entry, answer) {
    if (entry.kind === "check") { return settleCheck(entry, answer); }
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
    refreshList();
    flush();
  }
  function queue(taskId, action, version, body, photos, to) {
    photos = photos || [];
    enqueue({ key: newKey(), user: state.user, task: taskId, action: action, version: version, body: body || {},
              to: to || TARGET[action], photos: photos, photoKeys: photos.map(function () { return newKey(); }),
              photoIds: photos.map(function () { return null; }), json: null, at: new Date().toISOString() });
  }

  function queueCheck(planId, body) {
    /* the body is fixed at the tap: a retry sends the very same bytes under the same key */
    enqueue({ key: newKey(), user: state.user, kind: "check", plan: planId, task: null, body: body,
              json: JSON.stringify(body), photos: [], photoKeys: [], photoIds: [], at: new Date().toISOString() });
  }

  /* -- calling: the phone number is opened (and audited) only on the tap ---------------------------------- */
  function call(node) {
    var taskId = node.getAttribute("data-task");
    var slot = $("field-dial-" + taskId);
    setText(slot, t("calling"));
    mutate("/api/v1/persons/" + node.getAttribute("data-person") + "/unmask",
           JSON.stringify({ reason: "外呼 任务#" + taskId + " / calling for task #" + taskId }), null,
           "application/json").then(function (answer) {
      slot.textContent = "";
      if (answer.status === 200 && answer.data.phone) {
        slot.appendChild(el("a", { className: "nh-field-btn nh-field-primary", id: "field-tel-" + taskId,
                                   href: "tel:" + answer.data.phone }, [t("dial") + " " + answer.data.phone]));
      } else if (answer.status === 200) {
        setText(slot, t("no_phone"));
      } else {
        setText(slot, answer.status === 0 ? t("call_offline") : (answer.data.message || String(answer.status)));
      }
    }, function () { setText(slot, t("call_offline")); });
  }

  /* -- the sheet: declining, asking for more time, reporting ---------------------------------------------- */
  function localInput(date) {
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    return date.getFullYear() + "-" + two(date.getMonth() + 1) + "-" + two(date.getDate()) + "T"
      + two(date.getHours()) + ":" + two(date.getMinutes());
  }
  function openSheet(action, node) {
    var sheet = $("field-sheet");
    if (action === "check") {
      state.sheet = { action: action, plan: node.getAttribute("data-plan"), node: node };
      setText($("field-sheet-title"), t("check_title"));
      setText($("field-sheet-task"), node.getAttribute("data-person-title"));
      ["field-decline-form", "field-report-form", "field-extend-form"].forEach(function (id) { $(id).hidden = true; });
      $("field-check-form").hidden = false;
      setText($("field-sheet-error"), "");
      sheet.hidden = false;
      document.body.classList.add("nh-field-sheet-open");
      return;
    }
    $("field-check-form").hidden = true;
    state.sheet = { action: action, task: node.getAttribute("data-task"), node: node,
                    version: parseInt(node.getAttribute("data-version"), 10), due: node.getAttribute("data-due"),
                    temperature: node.getAttribute("data-temperature") === "1" };
    state.position = null;
    state.photos = [];
    setText($("field-sheet-title"), t(action + "_title"));
    setText($("field-sheet-task"), node.getAttribute("data-task-title"));
    $("field-decline-form").hidden = action !== "decline";
    $("field-report-form").hidden = action !== "handle";
    $("field-extend-form").hidden = action !== "extend";
    $("field-temperature-needed").hidden = !state.sheet.temperature;
    if (action === "extend") {
      var due = Date.parse(state.sheet.due);
      $("field-until").value = localInput(new Date(Math.max(isNaN(due) ? 0 : due, Date.now()) + 2 * 3600 * 1000));
    }
    ["field-sheet-error", "field-position-text", "field-distance"].forEach(function (id) { setText($(id), ""); });
    previews();
    sheet.hidden = false;
    document.body.classList.add("nh-field-sheet-open");
    if (action === "handle") { locate(false); }
  }
  function closeSheet() {
    $("field-sheet").hidden = true;
    document.body.classList.remove("nh-field-sheet-open");
    ["field-reason", "field-result", "field-note", "field-temperature", "field-extend-reason", "field-until",
     "field-photo", "field-check-temperature"].forEach(function (id) { if ($(id)) { $(id).value = ""; } });
    SYMPTOMS.forEach(function (s) { var box = $("field-check-symptom-" + s); if (box) { box.checked = false; } });
    state.sheet = null;
    state.photos = [];
    previews();
  }
  function previews() {
    var box = $("field-previews");
    if (!box) { return; }
    box.textContent = "";
    state.photos.forEach(function (photo, index) {
      box.appendChild(el("div", { className: "nh-field-preview" }, [
        el("img", { src: photo, alt: t("photo") + " " + (index + 1) }),
        el("button", { type: "button", className: "nh-field-remove", "data-remove": String(index),
                       "aria-label": t("remove_photo") }, ["×"])]));
    });
    setAttr(box, "data-count", String(state.photos.length));
  }
  function distance(task, position) {
    var shown = $("field-distance");
    request("GET", "/api/v1/field/tasks/" + task + "/distance?lon=" + position.lon + "&lat=" + position.lat)
      .then(function (answer) {
        if (!state.sheet || state.sheet.task !== task) { return; }
        if (answer.status !== 200) { setText(shown, answer.data.message || ""); return; }
        var d = answer.data, metres = Math.round(d.distance_m).toLocaleString();
        setText(shown, d.inside ? t("inside") : t(d.far ? "far" : "near", { m: metres }));
        shown.className = "nh-field-distance " + (d.far ? "nh-field-far" : "nh-field-near");
      }, function () {
        if (state.sheet && state.sheet.task === task) { setText(shown, t("distance_offline")); }
      });
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
      distance(asked, state.position);
    }, function () {
      if (state.sheet && state.sheet.task === asked) { setText(shown, t("no_position")); }
    }, { enableHighAccuracy: true, timeout: 15000, maximumAge: fresh ? 0 : 30000 });
  }
  /* A phone photo shrunk to at most 1600 px as JPEG: small enough for a poor network and for localStorage. */
  function shrink(file) {
    return new Promise(function (resolve) {
      var reader = new FileReader();
      reader.onerror = function () { resolve(null); };
      reader.onload = function () {
        var image = new Image();
        image.onerror = function () { resolve(null); };
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
  function addPhotos(input) {
    var files = Array.prototype.slice.call(input.files || []);
    var room = MAX_PHOTOS - state.photos.length;
    if (files.length > room) { setText($("field-sheet-error"), t("too_many_photos", { n: MAX_PHOTOS })); }
    var submit = $("field-submit");
    submit.disabled = true;
    Promise.all(files.slice(0, Math.max(0, room)).map(shrink)).then(function (shrunk) {
      submit.disabled = false;
      shrunk.forEach(function (photo) { if (photo) { state.photos.push(photo); } });
      input.value = "";  /* the same picture may be chosen again */
      previews();
    });
  }
  function submitSheet() {
    var s = state.sheet;
    if (!s) { return; }
    var error = $("field-sheet-error");
    if (s.action === "check") {
      var check = { symptoms: SYMPTOMS.filter(function (name) { return $("field-check-symptom-" + name).checked; }) };
      var typed = ($("field-check-temperature").value || "").trim();
      if (typed) {
        var degrees = parseFloat(typed);
        if (isNaN(degrees) || degrees < 34 || degrees > 43) { setText(error, t("bad_temperature")); return; }
        check.temperature = Math.round(degrees * 10) / 10;
      }
      if (check.temperature === undefined && !check.symptoms.length) { setText(error, t("check_need")); return; }
      if (check.symptoms.indexOf("none") >= 0 && check.symptoms.length > 1) { setText(error, t("check_none_alone")); return; }
      queueCheck(s.plan, check);
      closeSheet();
      return;
    }
    var body = {};
    var to = null;
    var action = s.action;
    if (action === "decline") {
      body.reason = ($("field-reason").value || "").trim();
      if (!body.reason) { setText(error, t("need_reason")); return; }
    } else if (action === "extend") {
      action = "request_extension";
      to = s.node.getAttribute("data-status");
      body.reason = ($("field-extend-reason").value || "").trim();
      var until = new Date($("field-until").value);
      if (isNaN(until.getTime())) { setText(error, t("need_until")); return; }
      if (!(until.getTime() > (Date.parse(s.due) || Date.now()))) { setText(error, t("until_later")); return; }
      if (!body.reason) { setText(error, t("need_extend_reason")); return; }
      body.until = until.toISOString();
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
    queue(s.task, action, s.version, body, action === "handle" ? state.photos.slice() : [], to);
    closeSheet();
  }
  function onClick(event) {
    var target = event.target.closest && event.target.closest("button");
    if (!target) { return; }
    if (target.id === "field-submit") { submitSheet(); return; }
    if (target.id === "field-cancel") { closeSheet(); return; }
    if (target.id === "field-locate") { locate(true); return; }
    if (target.getAttribute("data-tab")) { showTab(target.getAttribute("data-tab")); return; }
    if (target.getAttribute("data-remove")) {
      state.photos.splice(parseInt(target.getAttribute("data-remove"), 10), 1);
      previews();
      return;
    }
    var action = target.getAttribute("data-action");
    var node = target.closest(".nh-field-card");
    if (!action || !node) { return; }
    if (action === "check") { openSheet("check", node); return; }
    var taskId = node.getAttribute("data-task");
    var status = node.getAttribute("data-status");
    if (action === "call") { call(node); return; }
    if (action === "extend") {
      if (IN_HAND.indexOf(status) >= 0 && node.getAttribute("data-extension") !== "pending") { openSheet("extend", node); }
      return;
    }
    if (target.getAttribute("data-when") !== status) { return; }
    if (pending(taskId, action)) { return; }  /* a double tap is still one intent */
    if (action === "decline" || action === "handle") { openSheet(action, node); return; }
    queue(taskId, action, parseInt(node.getAttribute("data-version"), 10), {}, []);
  }
  /* Logging out clears what this phone kept of the session (tasks, the outbox); taps not yet sent are lost, so
     the worker is asked first. */
  function onLogout(event) {
    var n = mine().length;
    if (n && !window.confirm(t("logout_outbox", { n: n }))) { event.preventDefault(); return; }
    forget();
  }

  function start() {
    document.body.setAttribute("data-field", "loading");
    document.addEventListener("click", onClick);
    document.addEventListener("input", function (event) {  /* a fixed field clears the sheet's complaint */
      if (event.target.closest && event.target.closest("#field-sheet")) { setText($("field-sheet-error"), ""); }
    });
    $("field-photo").addEventListener("change", function (event) { addPhotos(event.target); });
    $("field-logout-form").addEventListener("submit", onLogout);
    window.addEventListener("online", wake);
    window.addEventListener("offline", function () { state.paused = "offline"; network(false); indicator(); });
    document.addEventListener("visibilitychange", function () { if (!document.hidden) { refreshList(); flush(); } });
    var kept = readCache();
    if (kept) {  /* at once, before the network answers (or does not) */
      state.user = kept.user;
      state.data = kept;
      state.follow = kept.follow || null;
      state.fromCache = true;
      render();
      renderFollow();
    }
    refreshList();
    flush();
    setInterval(countdown, 1000);
    setInterval(function () { if (!state.busy && mine().length && !state.timer) { flush(); } }, 5000);
    setInterval(function () { if (!document.hidden) { refreshList(); } }, REFRESH_MS);
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.register("/field/sw.js", { scope: "/field/" }).catch(function () { /* works online */ });
    }
  }
  if (window.location.pathname === "/field/" && document.getElementById("field-config")) {
    if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
  }
  return { outbox: mine, flush: flush, newKey: newKey, queue: queue, refresh: refreshList,
           timing: function () { return { firstCardAt: state.firstCardAt }; } };
}());
