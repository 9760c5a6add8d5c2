/* The administration pages (/admin/...): files go to the plain upload endpoint, not through a Dash callback.

   window.nanhai.admin.upload(inputId, purpose, storeId, barId) sends the chosen file as multipart to
   /admin/uploads with the session's CSRF token, moves the bar <barId> as the bytes leave, and hands the
   answer ({id, name, bytes, sha256} or {error, message}) to the Dash store <storeId> with set_props. A
   clientside callback calls it from a button (dash_clientside.nanhai_admin.upload). Its own words come from the
   catalogs, in the page's language: the holder's data-strings (pages.admin_parts.upload_box). */
window.nanhai = window.nanhai || {};
window.nanhai.admin = (function () {
  var csrfToken = null;

  function csrf() {
    if (csrfToken) { return Promise.resolve(csrfToken); }
    return fetch("/api/v1/session", { credentials: "same-origin" }).then(function (answer) {
      return answer.json().then(function (body) {
        if (answer.status === 200 && body.csrf_token) { csrfToken = body.csrf_token; return csrfToken; }
        throw new Error(body.message || "session");
      });
    });
  }

  function show(barId, fraction, label) {
    var bar = document.getElementById(barId);
    if (!bar) { return; }
    bar.style.display = "block";
    var fill = bar.querySelector(".nh-bar-fill");
    if (fill) { fill.style.width = Math.round(fraction * 100) + "%"; }
    var text = bar.querySelector(".nh-bar-text");
    if (text && label) { text.textContent = label; }
  }

  function say(inputId, key) {
    var holder = document.getElementById(inputId);
    var strings = {};
    try { strings = JSON.parse((holder && holder.getAttribute("data-strings")) || "{}"); } catch (e) { strings = {}; }
    return strings[key] || key;
  }

  function hand(storeId, body) {
    body.at = Date.now();  /* a second upload of the same file still changes the store */
    window.dash_clientside.set_props(storeId, { data: body });
  }

  /* Dash has no file <input>: each upload box's holder gets a plain one (again after a re-render). */
  function fillHolders() {
    var holders = document.querySelectorAll(".nh-upload-holder");
    for (var i = 0; i < holders.length; i += 1) {
      if (!holders[i].querySelector("input[type=file]")) {
        var input = document.createElement("input");
        input.type = "file";
        input.id = holders[i].id + "-input";
        input.setAttribute("accept", holders[i].getAttribute("data-accept") || "");
        holders[i].appendChild(input);
      }
    }
  }
  new MutationObserver(fillHolders).observe(document.documentElement, { childList: true, subtree: true });

  function upload(inputId, purpose, storeId, barId) {
    var input = document.getElementById(inputId + "-input");
    var file = input && input.files && input.files[0];
    if (!file) {
      hand(storeId, { error: "InvalidRequest", message: say(inputId, "choose_first") });
      return;
    }
    csrf().then(function (token) {
      var form = new FormData();
      form.append("purpose", purpose);
      form.append("file", file, file.name);
      var xhr = new XMLHttpRequest();
      xhr.open("POST", "/admin/uploads");
      xhr.setRequestHeader("X-CSRF-Token", token);
      xhr.upload.onprogress = function (event) {
        if (event.lengthComputable) {
          show(barId, event.loaded / event.total, Math.round(100 * event.loaded / event.total) + "%");
        }
      };
      xhr.onload = function () {
        var body;
        try { body = JSON.parse(xhr.responseText); } catch (e) { body = { error: "HTTP", message: "HTTP " + xhr.status }; }
        if (xhr.status === 403 || xhr.status === 401) { csrfToken = null; }
        show(barId, 1, xhr.status === 201 ? "100%" : "");
        hand(storeId, body);
      };
      xhr.onerror = function () { hand(storeId, { error: "Network", message: say(inputId, "cut_off") }); };
      xhr.send(form);
    }).catch(function (error) { hand(storeId, { error: "Session", message: String(error.message || error) }); });
  }

  return { upload: upload };
})();

window.dash_clientside = Object.assign({}, window.dash_clientside, {
  nanhai_admin: {
    /* Bound to a button: (n_clicks, inputId, purpose, storeId, barId) -> nothing; the answer arrives in the store. */
    upload: function (clicks, inputId, purpose, storeId, barId) {
      if (clicks) { window.nanhai.admin.upload(inputId, purpose, storeId, barId); }
      return window.dash_clientside.no_update;
    },
  },
});
