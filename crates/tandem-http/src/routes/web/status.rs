//! `GET /`: the status page of the instance that answers and of its cluster.
//!
//! Anyone sees what `/api/health` tells anyone (the database, the Live engine, the
//! version) and a link to `/login`. The instances of the cluster come from
//! `/api/cluster`, which needs a signed-in caller, so the script asks for it with the
//! visitor's session cookie and shows the peers only when that answers 200: the page gives
//! an anonymous visitor nothing the API would not. The script refreshes both every two
//! seconds, so an instance that dies leaves the list once its heartbeat is older than
//! `[cluster] peer_timeout`.

use std::time::Duration;

use axum::extract::State;
use axum::response::Response;

use crate::AppState;
use crate::routes::web::{Page, escape};

/// How long the page waits for the database before calling it failing (as `/api/health`).
const PING_TIMEOUT: Duration = Duration::from_secs(3);

/// `GET /`: the status page.
pub(crate) async fn page(State(state): State<AppState>) -> Response {
    let database_ok = matches!(
        tokio::time::timeout(PING_TIMEOUT, state.db.ping()).await,
        Ok(Ok(()))
    );
    let live = state.live.health().as_str();
    let build = state.build;
    let base = escape(state.sub_path());
    let body = format!(
        r#"<h1>Tandem</h1>
<p id="who" class="muted">Not signed in. <a href="{base}/login">Sign in</a></p>
<h2>Health</h2>
<dl>
<dt>Database</dt><dd id="database" class="{database_class}">{database}</dd>
<dt>Live engine</dt><dd id="live" class="{live_class}">{live}</dd>
<dt>Version</dt><dd>Grafana-compatible <span id="version">{version}</span>, Tandem {tandem_version} (commit {commit})</dd>
<dt>Checked</dt><dd id="checked" class="muted">when this page was served</dd>
</dl>
<section id="signed-out">
<h2>Cluster</h2>
<p>The instances of this cluster are shown to signed-in users. <a href="{base}/login">Sign in</a> to see them.</p>
</section>
<section id="cluster" hidden>
<h2>Cluster</h2>
<p>Answered by instance <strong id="instance"></strong>: <span id="peer-count"></span> live instances (an instance whose last heartbeat is older than the peer timeout has left the list).</p>
<table>
<thead><tr><th>Instance</th><th>Address</th><th>Version</th><th>Started</th><th>Last heartbeat</th></tr></thead>
<tbody id="peers"></tbody>
</table>
</section>
<p id="error" class="bad" hidden></p>
<noscript><p>The cluster view needs JavaScript; <a href="{base}/api/cluster">/api/cluster</a> answers the same as JSON to a signed-in user.</p></noscript>
<h2>More</h2>
<ul>
<li><a href="{base}/api/health">/api/health</a> (JSON, for load balancers) and <a href="{base}/metrics">/metrics</a> (Prometheus)</li>
<li><a href="{base}/api/openapi.json">/api/openapi.json</a>: every API route of this server, as OpenAPI 3.0</li>
<li><a href="https://grafana.com/docs/grafana/latest/developers/http_api/">Grafana's HTTP API reference</a>: the API this server answers. Tandem's own guides are in its source tree: <code>docs/ha.md</code>, <code>docs/configuration.md</code>, <code>docs/api.md</code>.</li>
</ul>"#,
        database_class = if database_ok { "ok" } else { "bad" },
        database = if database_ok { "ok" } else { "failing" },
        live_class = if live == "ok" { "ok" } else { "bad" },
        live = escape(live),
        version = escape(build.version),
        tandem_version = escape(build.tandem_version),
        commit = escape(build.commit),
    );
    Page {
        title: "Tandem",
        base: state.sub_path(),
        body: &body,
        script: SCRIPT,
    }
    .render()
}

/// Refreshes the health and the cluster view every two seconds; values go in as text.
const SCRIPT: &str = r#""use strict";
const base = document.body.dataset.base || "";
const byId = (id) => document.getElementById(id);
function show(id, value, good) {
  const node = byId(id);
  node.textContent = value;
  if (good !== undefined) node.className = good ? "ok" : "bad";
}
async function getJson(path) {
  const response = await fetch(base + path, {
    credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" },
  });
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  return { status: response.status, body };
}
function cell(row, value) {
  const td = document.createElement("td");
  td.textContent = value === undefined || value === null ? "" : String(value);
  row.appendChild(td);
}
async function refreshHealth() {
  try {
    const health = await getJson("/api/health");
    const body = health.body || {};
    show("database", body.database || "no answer (HTTP " + health.status + ")", body.database === "ok");
    show("live", body.live || "unknown", body.live === "ok");
    if (body.version) show("version", body.version);
  } catch (_) {
    show("database", "the server did not answer", false);
  }
}
async function refreshCluster() {
  const error = byId("error");
  try {
    const cluster = await getJson("/api/cluster");
    if (cluster.status === 401) {
      byId("cluster").hidden = true;
      byId("signed-out").hidden = false;
      error.hidden = true;
      return;
    }
    if (cluster.status !== 200 || !cluster.body || !Array.isArray(cluster.body.peers)) {
      throw new Error("/api/cluster answered HTTP " + cluster.status);
    }
    const rows = [];
    for (const peer of cluster.body.peers) {
      const row = document.createElement("tr");
      row.dataset.instance = String(peer.instanceId);
      for (const key of ["instanceId", "address", "version", "startedAt", "lastHeartbeat"]) cell(row, peer[key]);
      rows.push(row);
    }
    byId("peers").replaceChildren(...rows);
    show("instance", cluster.body.instanceId);
    show("peer-count", String(rows.length));
    byId("signed-out").hidden = true;
    byId("cluster").hidden = false;
    error.hidden = true;
  } catch (failure) {
    error.textContent = "The cluster view could not be refreshed: " + failure.message;
    error.hidden = false;
  }
}
async function refreshUser() {
  try {
    const user = await getJson("/api/user");
    if (user.status !== 200 || !user.body) return;
    const who = byId("who");
    const link = document.createElement("a");
    link.href = base + "/logout";
    link.textContent = "Sign out";
    who.replaceChildren("Signed in as " + String(user.body.login) + ". ", link);
  } catch (_) { /* the next refresh of the cluster says what is wrong */ }
}
async function refresh() {
  await Promise.all([refreshHealth(), refreshCluster()]);
  show("checked", new Date().toLocaleTimeString());
}
refreshUser();
refresh();
setInterval(refresh, 2000);"#;
