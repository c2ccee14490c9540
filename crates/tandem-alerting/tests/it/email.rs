//! Email contact points sent through a real SMTP server (aiosmtpd) by two dispatchers
//! sharing one database: one message per flush and recipient batch, Grafana's subject,
//! the SMTP login used; and `cert_file`/`key_file` presented to a server that requires a
//! client certificate over STARTTLS.

use std::sync::Arc;
use std::time::Duration;

use tandem_alerting::notify::contact::ContactPoint;
use tandem_alerting::notify::send_test;
use tandem_alerting::notify::store::NotificationStore;
use tandem_alerting::testkit::smtp::{SinkTls, SmtpSink, self_signed};
use tandem_alerting::{
    Dispatcher, DispatcherDeps, InstanceState, NotifySettings, OrgId, Provenance, SmtpSettings,
    SqlAlertStore, SqlNotificationStore, StartTlsPolicy,
};
use tandem_storage::testkit::TestDatabase;

use crate::notifications::{eventually, set_policy, start_dispatchers, write};

async fn configure(store: &SqlNotificationStore) {
    store.ensure_defaults(OrgId(1)).await.unwrap();
    for (uid, settings) in [
        (
            "together",
            serde_json::json!({"addresses": "oncall@example.com; dba@example.com", "singleEmail": true}),
        ),
        (
            "apart",
            serde_json::json!({"addresses": "x@example.com,y@example.com",
                               "subject": "{{ .Status | toUpper }}: {{ .GroupLabels.alertname }}",
                               "message": "{{ len .Alerts.Firing }} firing for {{ .CommonLabels.team }}"}),
        ),
    ] {
        let point = ContactPoint::from_request(
            uid.into(),
            "mail".into(),
            "email".into(),
            settings.as_object().unwrap().clone(),
            false,
            Provenance::Api,
            None,
        )
        .unwrap();
        store.create_contact_point(OrgId(1), &point).await.unwrap();
    }
    set_policy(
        store,
        serde_json::json!({
            "receiver": "grafana-default-email", "group_by": ["alertname"],
            "routes": [{"receiver": "mail", "object_matchers": [["team", "=", "db"]],
                        "group_wait": "100ms", "group_interval": "300ms", "repeat_interval": "1h"}]
        }),
    )
    .await;
}

tandem_storage::backend_tests!(
    two_dispatchers_send_each_email_once_through_smtp,
    |test: TestDatabase| async move {
        let Some(sink) = SmtpSink::start(Some(("tandem", "smtp-pass"))).await else {
            return;
        };
        let db = test.connect_migrated().await;
        let alerts = SqlAlertStore::new(db.clone());
        configure(&SqlNotificationStore::new(db.clone(), "secret-key")).await;
        let smtp = SmtpSettings {
            enabled: true,
            host: sink.host(),
            user: "tandem".into(),
            password: "smtp-pass".into(),
            from_address: "alerts@example.com".into(),
            from_name: "Tandem Alerts".into(),
            start_tls_policy: StartTlsPolicy::Opportunistic,
            ..SmtpSettings::default()
        };
        let dispatchers = start_dispatchers(&test, 2, smtp).await;
        let now = tandem_storage::now_ms();
        write(&alerts, 1, InstanceState::Alerting, now).await;
        // One message to both addresses, and one to each of the other two.
        eventually("the firing emails", Duration::from_secs(30), || {
            sink.messages().len() >= 3
        })
        .await;
        write(&alerts, 1, InstanceState::Normal, now + 1).await;
        eventually("the resolved emails", Duration::from_secs(30), || {
            sink.messages().len() >= 6
        })
        .await;
        // Quiet time in which a duplicate would show.
        tokio::time::sleep(Duration::from_secs(2)).await;
        for d in dispatchers {
            d.stop().await;
        }
        let mail = sink.messages();
        assert_eq!(mail.len(), 6, "{mail:#?}");
        for m in &mail {
            assert_eq!(m.login.as_deref(), Some("tandem"), "{m:?}");
            assert_eq!(m.mail_from, "alerts@example.com");
            assert!(m.from.contains("Tandem Alerts"), "{m:?}");
            assert!(m.message_id.ends_with("@tandem>"), "{m:?}");
        }
        let firing_together = mail
            .iter()
            .filter(|m| m.rcpt_tos == ["oncall@example.com", "dba@example.com"])
            .collect::<Vec<_>>();
        assert_eq!(firing_together.len(), 2, "{mail:#?}");
        assert_eq!(firing_together[0].subject, "[FIRING:1] rule-0 (Alerts db)");
        assert_eq!(firing_together[1].subject, "[RESOLVED] rule-0 (Alerts db)");
        let text = firing_together[0].text.as_deref().unwrap();
        assert!(text.starts_with("**Firing**"), "{text}");
        assert!(text.contains(" - team = db"), "{text}");
        let html = firing_together[0].html.as_deref().unwrap();
        assert!(html.contains("<h3>Firing: 1</h3>"), "{html}");
        assert!(html.contains("rule-0"), "{html}");
        for address in ["x@example.com", "y@example.com"] {
            let mine: Vec<_> = mail
                .iter()
                .filter(|m| m.rcpt_tos == [address])
                .map(|m| (m.subject.as_str(), m.text.as_deref().unwrap_or("").trim()))
                .collect();
            assert_eq!(
                mine,
                [
                    ("FIRING: rule-0", "1 firing for db"),
                    ("RESOLVED: rule-0", "0 firing for db")
                ],
                "{address}"
            );
        }
        let ids: std::collections::HashSet<_> = mail.iter().map(|m| &m.message_id).collect();
        assert_eq!(ids.len(), 6, "every message has its own Message-ID");
    }
);

tandem_storage::backend_tests!(
    a_refused_login_is_recorded_and_not_retried,
    |test: TestDatabase| async move {
        let Some(sink) = SmtpSink::start(Some(("tandem", "smtp-pass"))).await else {
            return;
        };
        let db = test.connect_migrated().await;
        let alerts = SqlAlertStore::new(db.clone());
        let store = SqlNotificationStore::new(db.clone(), "secret-key");
        configure(&store).await;
        let dispatcher = Dispatcher::start(DispatcherDeps {
            alerts: Arc::new(SqlAlertStore::new(db.clone())),
            store: Arc::new(SqlNotificationStore::new(db, "secret-key")),
            instance_id: "d0".into(),
            settings: NotifySettings {
                poll_interval: Duration::from_millis(100),
                smtp: SmtpSettings {
                    enabled: true,
                    host: sink.host(),
                    user: "tandem".into(),
                    password: "wrong".into(),
                    ..SmtpSettings::default()
                },
                ..NotifySettings::default()
            },
        });
        write(
            &alerts,
            1,
            InstanceState::Alerting,
            tandem_storage::now_ms(),
        )
        .await;
        let mut log = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while log.len() < 2 {
            assert!(tokio::time::Instant::now() < deadline, "{log:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
            log = store
                .notification_log(OrgId(1))
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.status == "failed")
                .collect();
        }
        dispatcher.stop().await;
        assert!(sink.messages().is_empty());
        for entry in &log {
            assert_eq!(entry.attempts, 1, "{entry:?}");
            assert!(!entry.last_error.contains("wrong"), "{entry:?}");
        }
    }
);

/// An email contact point to `to`.
fn mail_point(to: &str) -> ContactPoint {
    ContactPoint::from_request(
        "tls".into(),
        "mail".into(),
        "email".into(),
        serde_json::json!({"addresses": to})
            .as_object()
            .unwrap()
            .clone(),
        false,
        Provenance::Api,
        None,
    )
    .unwrap()
}

#[tokio::test]
async fn cert_file_and_key_file_authenticate_the_client_over_starttls() {
    let dir = std::env::temp_dir().join(format!(
        "tandem-smtp-tls-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (server_cert, server_key) = self_signed(&dir, "localhost");
    let (client_cert, client_key) = self_signed(&dir, "tandem-client");
    let (stranger_cert, stranger_key) = self_signed(&dir, "stranger");
    let Some(sink) = SmtpSink::start_tls(SinkTls {
        cert: server_cert,
        key: server_key,
        client_ca: client_cert.clone(),
    })
    .await
    else {
        return;
    };
    let smtp = |cert: &std::path::Path, key: &std::path::Path| SmtpSettings {
        enabled: true,
        host: sink.host(),
        // The sink's own certificate is self-signed; what is tested is the client's.
        skip_verify: true,
        start_tls_policy: StartTlsPolicy::Mandatory,
        cert_file: cert.display().to_string(),
        key_file: key.display().to_string(),
        ..SmtpSettings::default()
    };
    let payload = serde_json::json!({"title": "[FIRING:1] TLS", "message": "client certificate"});
    let point = mail_point("oncall@example.com");
    let timeout = Duration::from_secs(15);
    send_test(&point, &payload, &smtp(&client_cert, &client_key), timeout)
        .await
        .expect("the trusted client certificate is accepted");
    assert_eq!(sink.messages().len(), 1);
    assert_eq!(sink.messages()[0].rcpt_tos, ["oncall@example.com"]);
    for (what, settings) in [
        (
            "no certificate",
            SmtpSettings {
                cert_file: String::new(),
                key_file: String::new(),
                ..smtp(&client_cert, &client_key)
            },
        ),
        (
            "an untrusted certificate",
            smtp(&stranger_cert, &stranger_key),
        ),
    ] {
        assert!(
            send_test(&point, &payload, &settings, timeout)
                .await
                .is_err(),
            "{what} is refused"
        );
    }
    assert_eq!(sink.messages().len(), 1, "nothing else was accepted");
    let _ = std::fs::remove_dir_all(&dir);
}
