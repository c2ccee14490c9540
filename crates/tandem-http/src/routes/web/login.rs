//! `GET /login`: the login form Grafana users expect.
//!
//! It posts Grafana's JSON body `{"user","password"}` to `POST /login` (the same call
//! Grafana's own login page makes, so the session cookies are set as for any client) and
//! then goes to the address the answer names, the status page. Without JavaScript the
//! form cannot post JSON; the page says so.

use axum::extract::State;
use axum::response::Response;

use crate::AppState;
use crate::routes::web::{Page, escape};

/// `GET /login`: the login form.
pub(crate) async fn page(State(state): State<AppState>) -> Response {
    let base = escape(state.sub_path());
    let body = format!(
        r#"<h1>Sign in to Tandem</h1>
<form id="login" method="post" action="{base}/login">
<label for="user">Email or username</label>
<input id="user" name="user" type="text" autocomplete="username" autocapitalize="none" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button id="submit" type="submit">Log in</button>
<p id="message" class="bad" role="alert"></p>
</form>
<noscript><p>This form needs JavaScript: it sends the login as JSON, as Grafana's login page does.</p></noscript>
<p><a href="{base}/">Status page</a></p>"#
    );
    Page {
        title: "Sign in · Tandem",
        base: state.sub_path(),
        body: &body,
        script: SCRIPT,
    }
    .render()
}

/// Posts the form as JSON; on success follows the answer's `redirectUrl` when it is a path
/// of this site, else goes to the status page.
const SCRIPT: &str = r#""use strict";
const base = document.body.dataset.base || "";
const form = document.getElementById("login");
const message = document.getElementById("message");
const submit = document.getElementById("submit");
function target(redirect) {
  if (typeof redirect === "string" && /^\/(?![\/\\])/.test(redirect)) return redirect;
  return base + "/";
}
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  message.textContent = "";
  submit.disabled = true;
  try {
    const response = await fetch(base + "/login", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ user: form.elements.user.value, password: form.elements.password.value }),
    });
    let body = {};
    try { body = await response.json(); } catch (_) { body = {}; }
    if (response.ok) {
      window.location.assign(target(body.redirectUrl));
      return;
    }
    message.textContent = body.message || "Login failed (HTTP " + response.status + ")";
  } catch (_) {
    message.textContent = "The server did not answer; try again.";
  } finally {
    submit.disabled = false;
  }
});"#;
