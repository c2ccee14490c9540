//! The notification provisioning API of two in-process instances on one database:
//! contact points with redacted secrets, the policy tree, mute timings, templates and the
//! test-receiver call against a real HTTP receiver.

use std::sync::{Arc, Mutex};

use serde_json::json;
use tandem_http::testkit::TestCluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use tandem_http::testkit::http::HttpResponse;

use crate::common::{as_admin, as_admin_ok};

/// The answer has this status and its message says `fragment`.
#[track_caller]
fn refused(response: &HttpResponse, status: u16, fragment: &str) {
    assert_eq!(response.status, status, "{}", response.text());
    let message = response.json()["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains(fragment), "{message}");
}

/// A loopback HTTP server that answers 200 and records each request's text.
async fn recorder() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(at) = text.find("\r\n\r\n") {
                        let length = text[..at]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= at + 4 + length {
                            record.lock().unwrap().push(text);
                            let _ = socket
                                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                                .await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, seen)
}

tandem_http::cluster_tests!(
    notification_provisioning_keeps_grafanas_shapes_across_instances,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        let points = as_admin_ok(
            "GET",
            &b,
            "/api/v1/provisioning/contact-points",
            json!(null),
        )
        .await;
        let points = points.json();
        assert_eq!(points.as_array().unwrap().len(), 1, "{points}");
        assert_eq!(points[0]["name"], "grafana-default-email");
        assert_eq!(points[0]["type"], "email");

        let (url, seen) = recorder().await;
        let created = as_admin(
            "POST",
            &a,
            "/api/v1/provisioning/contact-points",
            json!({"name": "hook", "type": "webhook",
                   "settings": {"url": url, "username": "user", "password": "s3cret"}}),
        )
        .await;
        assert_eq!(created.status, 202, "{}", created.text());
        let created = created.json();
        assert_eq!(created["settings"]["password"], "[REDACTED]");
        assert!(!created.to_string().contains("s3cret"));
        let uid = created["uid"].as_str().unwrap().to_owned();
        let listed = as_admin_ok(
            "GET",
            &b,
            "/api/v1/provisioning/contact-points?name=hook",
            json!(null),
        )
        .await;
        let listed = listed.json();
        assert_eq!(listed.as_array().unwrap().len(), 1);
        assert_eq!(listed[0]["settings"]["password"], "[REDACTED]");
        assert_eq!(listed[0]["provenance"], "api");
        refused(
            &as_admin(
                "POST",
                &a,
                "/api/v1/provisioning/contact-points",
                json!({"name": "x", "type": "webhook", "settings": {}}),
            )
            .await,
            400,
            "url",
        );

        // The secret survives a PUT that sends the redacted value back.
        let put = as_admin(
            "PUT",
            &b,
            &format!("/api/v1/provisioning/contact-points/{uid}"),
            json!({"name": "hook", "type": "webhook",
                   "settings": {"url": url, "username": "user", "password": "[REDACTED]"}}),
        )
        .await;
        assert_eq!(put.status, 202, "{}", put.text());

        let tested = as_admin(
            "POST",
            &a,
            "/api/alertmanager/grafana/config/api/v1/receivers/test",
            json!({"receivers": [{"name": "hook", "grafana_managed_receiver_configs": [
                {"uid": uid, "name": "hook", "type": "webhook",
                 "settings": {"url": url, "username": "user", "password": "[REDACTED]"}}]}]}),
        )
        .await;
        assert_eq!(tested.status, 200, "{}", tested.text());
        assert_eq!(
            tested.json()["receivers"][0]["grafana_managed_receiver_configs"][0]["status"],
            "ok"
        );
        let requests = seen.lock().unwrap().clone();
        assert_eq!(requests.len(), 1);
        // Basic auth of user:s3cret, the stored secret.
        assert!(
            requests[0]
                .to_ascii_lowercase()
                .contains("authorization: basic dxnlcjpzm2nyzxq="),
            "{}",
            requests[0]
        );
        assert!(requests[0].contains("\"receiver\":\"hook\""));

        refused(
            &as_admin(
                "PUT",
                &a,
                "/api/v1/provisioning/policies",
                json!({"receiver": "nobody"}),
            )
            .await,
            400,
            "does not exist",
        );
        let timing = as_admin(
            "POST",
            &a,
            "/api/v1/provisioning/mute-timings",
            json!({"name": "weekends", "time_intervals": [{"weekdays": ["saturday", "sunday"]}]}),
        )
        .await;
        assert_eq!(timing.status, 201, "{}", timing.text());
        refused(
            &as_admin(
                "POST",
                &b,
                "/api/v1/provisioning/mute-timings",
                json!({"name": "weekends"}),
            )
            .await,
            409,
            "already exists",
        );
        for bad in [
            json!([{"times": [{"start_time": "18:00", "end_time": "09:00"}]}]),
            json!([{"weekdays": ["caturday"]}]),
            json!([{"location": "Mars/Olympus_Mons"}]),
        ] {
            refused(
                &as_admin(
                    "POST",
                    &b,
                    "/api/v1/provisioning/mute-timings",
                    json!({"name": "bad", "time_intervals": bad}),
                )
                .await,
                400,
                "invalid mute timing",
            );
        }
        refused(
            &as_admin(
                "GET",
                &a,
                "/api/v1/provisioning/mute-timings/bad",
                json!(null),
            )
            .await,
            404,
            "not found",
        );
        let tree = json!({"receiver": "grafana-default-email", "group_by": ["alertname"],
            "routes": [{"receiver": "hook", "object_matchers": [["team", "=~", "db|web"]],
                        "mute_time_intervals": ["weekends"], "group_wait": "10s"}]});
        let put = as_admin("PUT", &a, "/api/v1/provisioning/policies", tree).await;
        assert_eq!(put.status, 202, "{}", put.text());
        let read = as_admin_ok("GET", &b, "/api/v1/provisioning/policies", json!(null))
            .await
            .json();
        assert_eq!(read["routes"][0]["receiver"], "hook");
        assert_eq!(
            read["routes"][0]["object_matchers"][0],
            json!(["team", "=~", "db|web"])
        );
        refused(
            &as_admin(
                "DELETE",
                &b,
                &format!("/api/v1/provisioning/contact-points/{uid}"),
                json!(null),
            )
            .await,
            409,
            "referenced",
        );
        refused(
            &as_admin(
                "DELETE",
                &b,
                "/api/v1/provisioning/mute-timings/weekends",
                json!(null),
            )
            .await,
            409,
            "used",
        );

        let template = as_admin(
            "PUT",
            &a,
            "/api/v1/provisioning/templates/mine",
            json!({"template": "{{ define \"my.title\" }}{{ .Status }}{{ end }}"}),
        )
        .await;
        assert_eq!(template.status, 202, "{}", template.text());
        let read = as_admin_ok(
            "GET",
            &b,
            "/api/v1/provisioning/templates/mine",
            json!(null),
        )
        .await
        .json();
        assert_eq!(read["name"], "mine");
        refused(
            &as_admin(
                "GET",
                &b,
                "/api/v1/provisioning/templates/none",
                json!(null),
            )
            .await,
            404,
            "not found",
        );

        let reset = as_admin("DELETE", &b, "/api/v1/provisioning/policies", json!(null)).await;
        assert_eq!(reset.status, 202, "{}", reset.text());
        let read = as_admin_ok("GET", &a, "/api/v1/provisioning/policies", json!(null))
            .await
            .json();
        assert_eq!(
            read,
            json!({"receiver": "grafana-default-email", "group_by": ["grafana_folder", "alertname"]})
        );
        let deleted = as_admin(
            "DELETE",
            &a,
            &format!("/api/v1/provisioning/contact-points/{uid}"),
            json!(null),
        )
        .await;
        assert_eq!(deleted.status, 202, "{}", deleted.text());
        let listed = as_admin_ok(
            "GET",
            &b,
            "/api/v1/provisioning/contact-points?name=hook",
            json!(null),
        )
        .await
        .json();
        assert_eq!(listed, json!([]));
    }
);

/// Two instances with `[smtp]` pointing at a real SMTP server: the test-receiver call on
/// one instance sends an email contact point stored through the other; then a rule fires
/// on both instances and exactly one email arrives; no answer ever shows the SMTP password.
async fn email_test_notification(backend: tandem_http::testkit::Backend) {
    let Some(sink) =
        tandem_alerting::testkit::smtp::SmtpSink::start(Some(("tandem", "smtp-pass"))).await
    else {
        return;
    };
    let smtp = tandem_http::SmtpSettings {
        enabled: true,
        host: sink.host(),
        user: "tandem".into(),
        password: "smtp-pass".into(),
        from_address: "grafana@example.com".into(),
        ..tandem_http::SmtpSettings::default()
    };
    let configure = move |_: usize, s: &mut tandem_http::Settings| {
        s.notifications.smtp = smtp.clone();
        s.notifications.poll_interval = std::time::Duration::from_millis(200);
        s.alerting.min_interval = std::time::Duration::from_secs(1);
    };
    tandem_http::testkit::run_cluster(backend, 2, configure, |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        let created = as_admin(
            "POST",
            &a,
            "/api/v1/provisioning/contact-points",
            json!({"name": "mail", "type": "email",
                   "settings": {"addresses": "ops@example.com;dev@example.com", "singleEmail": true}}),
        )
        .await;
        assert_eq!(created.status, 202, "{}", created.text());
        let uid = created.json()["uid"].as_str().unwrap().to_owned();
        let tested = as_admin(
            "POST",
            &b,
            "/api/alertmanager/grafana/config/api/v1/receivers/test",
            json!({"receivers": [{"name": "mail", "grafana_managed_receiver_configs": [
                {"uid": uid, "name": "mail", "type": "email",
                 "settings": {"addresses": "ops@example.com;dev@example.com", "singleEmail": true}}]}]}),
        )
        .await;
        assert_eq!(tested.status, 200, "{}", tested.text());
        assert_eq!(
            tested.json()["receivers"][0]["grafana_managed_receiver_configs"][0]["status"],
            "ok"
        );
        let mail = sink.messages();
        assert_eq!(mail.len(), 1, "{mail:?}");
        assert_eq!(mail[0].rcpt_tos, ["ops@example.com", "dev@example.com"]);
        assert_eq!(mail[0].subject, "[FIRING:1]  (TestAlert Grafana)");
        assert_eq!(mail[0].login.as_deref(), Some("tandem"));
        assert!(mail[0].from.contains("grafana@example.com"), "{:?}", mail[0]);

        // A rule evaluated by both instances fires: one email.
        let put = as_admin(
            "PUT",
            &a,
            "/api/v1/provisioning/policies",
            json!({"receiver": "mail", "group_by": ["alertname"], "group_wait": "1s",
                   "group_interval": "1s", "repeat_interval": "1h"}),
        )
        .await;
        assert_eq!(put.status, 202, "{}", put.text());
        as_admin_ok(
            "POST",
            &b,
            "/api/folders",
            json!({"uid": "alerts", "title": "Alerts"}),
        )
        .await;
        let rules = as_admin(
            "POST",
            &b,
            "/api/ruler/grafana/api/v1/rules/alerts",
            json!({"name": "disk", "interval": "1s", "rules": [
                {"grafana_alert": {"title": "Disk full", "condition": "A", "data": [
                    {"refId": "A", "relativeTimeRange": {"from": 0, "to": 0},
                     "datasourceUid": "__expr__", "model": {"type": "math", "expression": "1"}}]},
                 "for": "0s"}]}),
        )
        .await;
        assert_eq!(rules.status, 202, "{}", rules.text());
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while sink.messages().len() < 2 {
            assert!(tokio::time::Instant::now() < deadline, "no email for the firing rule");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        // Quiet time in which a duplicate would show.
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        let mail = sink.messages();
        assert_eq!(mail.len(), 2, "one email for the rule: {mail:#?}");
        assert_eq!(mail[1].subject, "[FIRING:1] Disk full (Alerts)");
        assert_eq!(mail[1].rcpt_tos, ["ops@example.com", "dev@example.com"]);
        assert!(
            mail[1].text.as_deref().unwrap_or("").contains("alertname = Disk full"),
            "{:?}",
            mail[1]
        );
        let mut answers = vec![tested.text()];
        for path in [
            "/api/v1/provisioning/contact-points",
            "/api/frontend/settings",
            "/api/health",
            "/api/cluster",
        ] {
            for url in [&a, &b] {
                answers.push(as_admin("GET", url, path, json!(null)).await.text());
            }
        }
        for text in answers {
            assert!(!text.contains("smtp-pass"), "{text}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_test_notification_sqlite() {
    email_test_notification(tandem_http::testkit::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_test_notification_postgres() {
    email_test_notification(tandem_http::testkit::Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_test_notification_mysql() {
    email_test_notification(tandem_http::testkit::Backend::Mysql).await;
}

const PROVISIONED: &str = r#"
apiVersion: 1
templates:
  - name: short
    template: '{{ define "short" }}{{ len .Alerts }} alerts{{ end }}'
muteTimes:
  - name: weekends
    time_intervals:
      - weekdays: [saturday, sunday]
contactPoints:
  - name: hook
    receivers:
      - uid: filehook
        type: webhook
        settings:
          url: http://127.0.0.1:9/hook
          password: $HOOK_PASSWORD
          username: tandem
policies:
  - receiver: hook
    group_by: [alertname]
    routes:
      - receiver: hook
        object_matchers: [[team, '=', db]]
        mute_time_intervals: [weekends]
"#;

fn provisioned(_: usize, settings: &mut tandem_http::Settings) {
    let lookup = |name: &str| (name == "HOOK_PASSWORD").then(|| "pw-81c2".to_owned());
    settings.alerting_provisioning =
        tandem_http::AlertProvisioning::from_yaml(PROVISIONED, lookup).unwrap();
}

tandem_http::cluster_tests!(
    provisioning_files_configure_notifications_once_and_the_api_leaves_them_alone,
    2,
    provisioned,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        // Both instances started at once with the same files.
        let points = as_admin_ok(
            "GET",
            &b,
            "/api/v1/provisioning/contact-points?name=hook",
            json!(null),
        )
        .await
        .json();
        assert_eq!(points.as_array().unwrap().len(), 1, "{points}");
        assert_eq!(points[0]["uid"], "filehook");
        assert_eq!(points[0]["provenance"], "file");
        assert_eq!(points[0]["settings"]["password"], "[REDACTED]");
        assert!(!points.to_string().contains("pw-81c2"));
        let tree = as_admin_ok("GET", &a, "/api/v1/provisioning/policies", json!(null))
            .await
            .json();
        assert_eq!(tree["receiver"], "hook");
        assert_eq!(tree["provenance"], "file");
        let timing = as_admin_ok(
            "GET",
            &b,
            "/api/v1/provisioning/mute-timings/weekends",
            json!(null),
        )
        .await
        .json();
        assert_eq!(timing["provenance"], "file", "{timing}");

        // The API refuses to change what a file manages, with or without
        // X-Disable-Provenance, and nothing changes.
        let put = as_admin(
            "PUT",
            &a,
            "/api/v1/provisioning/contact-points/filehook",
            json!({"name": "hook", "type": "webhook", "settings": {"url": "http://127.0.0.1:9/x"}}),
        )
        .await;
        refused(&put, 409, "provenance");
        let policy = as_admin(
            "PUT",
            &b,
            "/api/v1/provisioning/policies",
            json!({"receiver": "grafana-default-email"}),
        )
        .await;
        refused(&policy, 409, "provenance");
        refused(
            &as_admin("DELETE", &a, "/api/v1/provisioning/policies", json!(null)).await,
            409,
            "provenance",
        );
        refused(
            &as_admin(
                "DELETE",
                &b,
                "/api/v1/provisioning/templates/short",
                json!(null),
            )
            .await,
            409,
            "provenance",
        );
        refused(
            &as_admin(
                "PUT",
                &a,
                "/api/v1/provisioning/mute-timings/weekends",
                json!({"name": "weekends", "time_intervals": []}),
            )
            .await,
            409,
            "provenance",
        );
        refused(
            &as_admin(
                "DELETE",
                &a,
                "/api/v1/provisioning/contact-points/filehook",
                json!(null),
            )
            .await,
            409,
            "provenance",
        );
        let after = as_admin_ok(
            "GET",
            &a,
            "/api/v1/provisioning/contact-points?name=hook",
            json!(null),
        )
        .await
        .json();
        assert_eq!(after[0]["settings"]["url"], "http://127.0.0.1:9/hook");
        let tree = as_admin_ok("GET", &b, "/api/v1/provisioning/policies", json!(null))
            .await
            .json();
        assert_eq!(tree["receiver"], "hook");
        as_admin_ok(
            "GET",
            &b,
            "/api/v1/provisioning/templates/short",
            json!(null),
        )
        .await;
    }
);
