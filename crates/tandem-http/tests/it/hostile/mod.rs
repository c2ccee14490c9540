//! The bad-input battery: every route of [`tandem_http::route_table`] gets each class of
//! hostile input (NUL in every string position, numbers at the boundaries and non-numbers,
//! over-long text, oversized collections, malformed and deeply nested JSON, a wrong content
//! type, NUL in Basic credentials), through both instances of a cluster in turn.
//!
//! Every answer must be a success or a 4xx with a JSON `message`: never a 5xx, never a
//! dropped connection. A refused write must leave every content table as it was. Cases
//! refused while the request is parsed, before any database is reached (broken JSON, a form
//! body, path and query values no integer type holds), run on SQLite only: they are the
//! same on every backend, and the battery's time goes to the cases that reach storage.

mod cases;

use std::collections::BTreeMap;

use axum::http::Method;
use serde_json::json;
use tandem_http::RouteSpec;
use tandem_http::testkit::http::{self, HttpResponse};
use tandem_http::testkit::{Backend, TestCluster};

use crate::common::digest::{self, Snapshot};
use crate::common::fixtures::Fixtures;
use crate::common::{as_admin_ok, create_user, login};
use crate::hostile::cases::{Case, Class};

/// Write routes that read no body: they act on the path alone.
const ACTIONS_WITHOUT_BODY: &[&str] = &[
    "POST /api/user/auth-tokens/rotate",
    "POST /api/user/using/{org_id}",
    "POST /api/users/{id}/using/{org_id}",
    "POST /api/admin/users/{id}/disable",
    "POST /api/admin/users/{id}/enable",
    "POST /api/admin/users/{id}/logout",
    "DELETE /api/admin/users/{id}",
    "DELETE /api/org/users/{user_id}",
    "DELETE /api/orgs/{org_id}",
    "DELETE /api/orgs/{org_id}/users/{user_id}",
    "DELETE /api/teams/{team_id}",
    "DELETE /api/teams/{team_id}/members/{user_id}",
    "DELETE /api/serviceaccounts/{id}",
    "DELETE /api/serviceaccounts/{id}/tokens/{token_id}",
    "DELETE /api/dashboards/uid/{uid}",
    "DELETE /api/folders/{uid}",
    "DELETE /api/datasources/{id}",
    "DELETE /api/datasources/uid/{uid}",
    "DELETE /api/datasources/name/{name}",
    "POST /api/user/stars/dashboard/uid/{uid}",
    "DELETE /api/user/stars/dashboard/uid/{uid}",
    "DELETE /api/annotations/{id}",
];

tandem_http::cluster_tests!(
    every_route_answers_hostile_input_with_a_4xx_and_writes_nothing,
    2,
    // Retention never runs into the battery's snapshots, nor alert evaluations.
    |_, settings| {
        settings.dashboards.versions_to_keep = 1_000_000;
        settings.alerting.execute_alerts = false;
    },
    |cluster: TestCluster| async move {
        run(&cluster).await;
        cluster.shutdown().await;
    }
);

// The snapshot the battery compares must see any changed row, and nothing but the
// columns reads write: one statement changes a user's name, another only its
// `last_seen_at`.
tandem_http::cluster_tests!(
    the_content_snapshot_sees_a_changed_row_and_ignores_seen_columns,
    1,
    |_, _| {},
    |cluster: TestCluster| async move {
        use tandem_storage::sea_orm::{ConnectionTrait, Statement};
        let db = cluster.server(0).database();
        let conn = db.connection();
        let user = match db.backend() {
            Backend::Mysql => "`user`",
            _ => "\"user\"",
        };
        let exec = |sql: String| async move {
            conn.execute_raw(Statement::from_string(conn.get_database_backend(), sql))
                .await
                .expect("run the statement");
        };
        let before = digest::snapshot(db).await;
        exec(format!(
            "UPDATE {user} SET last_seen_at = last_seen_at + 1000"
        ))
        .await;
        let seen = digest::snapshot(db).await;
        assert!(
            digest::differences(&before, &seen).is_empty(),
            "a seen column is ignored"
        );
        exec(format!(
            "UPDATE {user} SET name = 'renamed' WHERE login = 'admin'"
        ))
        .await;
        let renamed = digest::snapshot(db).await;
        let changed = digest::differences(&seen, &renamed);
        assert_eq!(changed.len(), 1, "{changed:?}");
        assert!(changed[0].starts_with("user:"), "{changed:?}");
        cluster.shutdown().await;
    }
);

async fn run(cluster: &TestCluster) {
    let urls = cluster.urls();
    let db = cluster.server(0).database();
    let fixtures = Fixtures::create(&urls[0]).await;
    let table = tandem_http::route_table();
    assert!(
        table.len() > 50,
        "the table lists every route: {}",
        table.len()
    );
    let mut caller = Caller::new(&urls[0]).await;
    let mut cached: Option<Snapshot> = None;
    let mut sent = 0usize;
    let mut by_class: BTreeMap<Class, usize> = BTreeMap::new();
    let mut refused_writes = 0usize;
    for spec in &table {
        check_body_declared(spec);
        let fixture = |path: &str, param: &str| fixtures.param(path, param);
        for case in cases::cases(spec, &fixture) {
            if !case.every_backend && db.backend() != Backend::Sqlite {
                continue;
            }
            let url = &urls[sent % urls.len()];
            sent += 1;
            *by_class.entry(case.class).or_default() += 1;
            // Grafana's `GET /api/snapshots-delete/:deleteKey` deletes: it is a write.
            let write =
                spec.method != Method::GET || spec.path.starts_with("/api/snapshots-delete/");
            let before = match (write, cached.take()) {
                (false, kept) => kept,
                (true, Some(kept)) => Some(kept),
                (true, None) => Some(digest::snapshot(db).await),
            };
            let response = send(url, spec, &case, &caller.cookie).await;
            check_answer(spec, &case, &response);
            if response.status >= 400 {
                if write {
                    refused_writes += 1;
                    let after = digest::snapshot(db).await;
                    let changed = digest::differences(before.as_ref().expect("taken"), &after);
                    assert!(
                        changed.is_empty(),
                        "{} {} ({:?}: {}) was refused with {} but wrote:\n{}",
                        spec.method,
                        spec.path,
                        case.class,
                        case.what,
                        response.status,
                        changed.join("\n")
                    );
                    cached = Some(after);
                } else {
                    cached = before;
                }
            } else {
                if write {
                    // A success may have written anything.
                    cached = None;
                } else {
                    cached = before;
                }
                if (write || spec.path == "/logout") && caller.keep_session(&urls[0]).await {
                    // Renewing the caller wrote a user.
                    cached = None;
                }
            }
        }
    }
    report(cluster, table.len(), sent, &by_class, refused_writes);
}

/// A write route either declares an example body or is listed as one that reads none, so a
/// route that reads a body cannot skip the body classes by forgetting its example.
#[track_caller]
fn check_body_declared(spec: &RouteSpec) {
    let writes = matches!(spec.method, Method::POST | Method::PUT | Method::PATCH);
    let name = format!("{} {}", spec.method, spec.path);
    if writes && spec.body.is_none() {
        assert!(
            ACTIONS_WITHOUT_BODY.contains(&name.as_str()),
            "{name} declares no example body: give it `.body(…)` in the route table, or list \
             it in ACTIONS_WITHOUT_BODY if it reads none"
        );
    }
}

#[track_caller]
fn check_answer(spec: &RouteSpec, case: &Case, response: &HttpResponse) {
    let context = || {
        format!(
            "{} {}?{} ({:?}: {}) answered {} {}",
            spec.method,
            short(&case.path),
            short(&case.query),
            case.class,
            case.what,
            response.status,
            short(&response.text())
        )
    };
    assert!(response.status < 500, "{}", context());
    if response.status >= 400 {
        assert!(
            response
                .header("content-type")
                .is_some_and(|value| value.starts_with("application/json")),
            "a JSON error body: {}",
            context()
        );
        let body: serde_json::Value =
            serde_json::from_slice(&response.body).unwrap_or_else(|_| panic!("{}", context()));
        assert!(body["message"].is_string(), "{}", context());
    }
}

async fn send(url: &str, spec: &RouteSpec, case: &Case, cookie: &str) -> HttpResponse {
    let target = if case.query.is_empty() {
        format!("{url}{}", case.path)
    } else {
        format!("{url}{}?{}", case.path, case.query)
    };
    let mut headers = vec![("content-type", case.content_type)];
    match &case.authorization {
        Some(authorization) => headers.push(("authorization", authorization.as_str())),
        None => headers.push(("cookie", cookie)),
    }
    let body = case.body.clone().unwrap_or_default();
    http::request(spec.method.as_str(), &target, &headers, body)
        .await
        .unwrap_or_else(|err| {
            panic!(
                "{} {} ({:?}: {}): the connection dropped: {err}",
                spec.method, case.path, case.class, case.what
            )
        })
}

/// The battery's own server admin, with a session; replaced when a request of the battery
/// ended its session (a logout, a password change, a login change).
struct Caller {
    cookie: String,
    generation: usize,
}

impl Caller {
    async fn new(url: &str) -> Caller {
        let mut caller = Caller {
            cookie: String::new(),
            generation: 0,
        };
        caller.renew(url).await;
        caller
    }

    async fn renew(&mut self, url: &str) {
        self.generation += 1;
        let login_name = format!("battery-{}", self.generation);
        let id = create_user(url, &login_name, "battery password").await;
        as_admin_ok(
            "PUT",
            url,
            &format!("/api/admin/users/{id}/permissions"),
            json!({"isGrafanaAdmin": true}),
        )
        .await;
        as_admin_ok(
            "PATCH",
            url,
            &format!("/api/org/users/{id}"),
            json!({"role": "Admin"}),
        )
        .await;
        let token = login(url, &login_name, "battery password").await;
        self.cookie = format!("grafana_session={token}");
    }

    /// Renews the caller if its session ended; says whether it did.
    async fn keep_session(&mut self, url: &str) -> bool {
        let ping = http::request(
            "GET",
            &format!("{url}/api/login/ping"),
            &[("cookie", &self.cookie)],
            "",
        )
        .await
        .expect("ping");
        if ping.status != 401 {
            return false;
        }
        self.renew(url).await;
        true
    }
}

#[allow(clippy::print_stderr)]
fn report(
    cluster: &TestCluster,
    routes: usize,
    sent: usize,
    by_class: &BTreeMap<Class, usize>,
    refused_writes: usize,
) {
    eprintln!(
        "bad-input battery on {:?}: {routes} routes, {sent} requests ({by_class:?}), \
         {refused_writes} refused writes left every content table unchanged",
        cluster.database().backend()
    );
}

fn short(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((end, _)) => format!("{}… ({} bytes)", &text[..end], text.len()),
        None => text.to_owned(),
    }
}
