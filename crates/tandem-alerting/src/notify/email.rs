//! Email contact points: Grafana's subject and body made at plan time, sent through the
//! `[smtp]` server with `lettre` when the claim is delivered.
//!
//! The body is rendered into the notification log with the flush (subject, text and HTML),
//! so a take-over sends exactly what the planner rendered; the recipients are read from the
//! contact point when sending, as a webhook's URL is. Every message carries a `Message-ID`
//! derived from the flush key, the same on every retry and take-over, so a mail system that
//! deduplicates by it drops the duplicate a crash between "sent" and "recorded" can cause.

use std::fmt;
use std::fmt::Write as _;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Identity, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};

use crate::notify::contact::ContactPoint;
use crate::notify::dispatch::Failure;
use crate::notify::payload::{DEFAULT_TITLE, Notification, Prepared};

/// Grafana's `[smtp] startTLS_policy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartTlsPolicy {
    /// `OpportunisticStartTLS` (the default): STARTTLS when the server offers it.
    #[default]
    Opportunistic,
    /// `MandatoryStartTLS`: refuse to send without STARTTLS.
    Mandatory,
    /// `NoStartTLS`: plain text, never STARTTLS.
    None,
}

impl StartTlsPolicy {
    /// Parses Grafana's spelling (any case); empty is the default.
    pub fn parse(text: &str) -> Option<StartTlsPolicy> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "opportunisticstarttls" => Some(StartTlsPolicy::Opportunistic),
            "mandatorystarttls" => Some(StartTlsPolicy::Mandatory),
            "nostarttls" => Some(StartTlsPolicy::None),
            _ => None,
        }
    }
}

/// Grafana's `[smtp]` section; `Default` is Grafana's default.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// `enabled`: send email at all.
    pub enabled: bool,
    /// `host`: `host:port` of the SMTP server; port 465 means TLS from the first byte.
    pub host: String,
    /// `user`: the SMTP login; empty means no authentication.
    pub user: String,
    /// `password`: the SMTP password (never logged, never answered by any API).
    pub password: String,
    /// `skip_verify`: accept any certificate of the server.
    pub skip_verify: bool,
    /// `from_address`.
    pub from_address: String,
    /// `from_name`.
    pub from_name: String,
    /// `ehlo_identity`: the name sent in EHLO; empty means `localhost`.
    pub ehlo_identity: String,
    /// `startTLS_policy`.
    pub start_tls_policy: StartTlsPolicy,
    /// `cert_file`: a PEM certificate this client presents to the server (TLS client
    /// authentication), with `key_file`; empty means none. The first certificate of the file
    /// is sent. Read at every connection, so a renewed file is picked up without a restart.
    pub cert_file: String,
    /// `key_file`: the PEM private key of `cert_file`.
    pub key_file: String,
}

impl Default for SmtpSettings {
    fn default() -> SmtpSettings {
        SmtpSettings {
            enabled: false,
            host: "localhost:25".to_owned(),
            user: String::new(),
            password: String::new(),
            skip_verify: false,
            from_address: "admin@grafana.localhost".to_owned(),
            from_name: "Grafana".to_owned(),
            ehlo_identity: String::new(),
            start_tls_policy: StartTlsPolicy::Opportunistic,
            cert_file: String::new(),
            key_file: String::new(),
        }
    }
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("enabled", &self.enabled)
            .field("host", &self.host)
            .field("user", &self.user)
            .field(
                "password",
                &if self.password.is_empty() {
                    ""
                } else {
                    "<set>"
                },
            )
            .field("skip_verify", &self.skip_verify)
            .field("from_address", &self.from_address)
            .field("from_name", &self.from_name)
            .field("start_tls_policy", &self.start_tls_policy)
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

impl SmtpSettings {
    /// Checks what can be checked before the first email: the host's port and the sender.
    pub fn check(&self) -> Result<(), String> {
        self.host_port()?;
        self.from_address
            .parse::<lettre::Address>()
            .map_err(|err| format!("from_address: {err}"))?;
        self.identity()?;
        Ok(())
    }

    /// The client certificate and key of `cert_file` and `key_file`, when set; both or
    /// neither must be.
    fn identity(&self) -> Result<Option<Identity>, String> {
        let (cert, key) = (self.cert_file.trim(), self.key_file.trim());
        if cert.is_empty() && key.is_empty() {
            return Ok(None);
        }
        if cert.is_empty() || key.is_empty() {
            return Err("cert_file: cert_file and key_file go together".to_owned());
        }
        let read = |field: &str, path: &str| {
            std::fs::read(path).map_err(|err| format!("{field}: cannot read {path}: {err}"))
        };
        let cert_pem = read("cert_file", cert)?;
        let key_pem = read("key_file", key)?;
        let first = CertificateDer::pem_slice_iter(&cert_pem)
            .next()
            .ok_or_else(|| format!("cert_file: no PEM certificate in {cert}"))?
            .map_err(|err| format!("cert_file: {cert}: {err}"))?;
        // lettre's rustls identity takes the certificate as DER and the key as PEM.
        Identity::from_pem(first.as_ref(), &key_pem)
            .map(Some)
            .map_err(|err| format!("key_file: {key}: {err}"))
    }

    fn host_port(&self) -> Result<(&str, u16), String> {
        let host = self.host.trim();
        match host.rsplit_once(':') {
            Some((name, port)) if !name.is_empty() => port
                .parse::<u16>()
                .map(|port| (name.trim_start_matches('[').trim_end_matches(']'), port))
                .map_err(|_| format!("host: invalid port in '{host}'")),
            None if !host.is_empty() => Ok((host, 25)),
            _ => Err(format!("host: '{host}' is not host:port")),
        }
    }

    fn transport(&self, timeout: Duration) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let (host, port) = self.host_port()?;
        let identity = self.identity()?;
        let tls = || {
            let mut params = TlsParameters::builder(host.to_owned())
                .dangerous_accept_invalid_certs(self.skip_verify)
                .dangerous_accept_invalid_hostnames(self.skip_verify);
            if let Some(identity) = identity.clone() {
                params = params.identify_with(identity);
            }
            params.build_rustls().map_err(|err| format!("TLS: {err}"))
        };
        let tls = if port == 465 {
            Tls::Wrapper(tls()?)
        } else {
            match self.start_tls_policy {
                StartTlsPolicy::Opportunistic => Tls::Opportunistic(tls()?),
                StartTlsPolicy::Mandatory => Tls::Required(tls()?),
                StartTlsPolicy::None => Tls::None,
            }
        };
        let hello = if self.ehlo_identity.is_empty() {
            "localhost"
        } else {
            self.ehlo_identity.as_str()
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .tls(tls)
            .hello_name(ClientId::Domain(hello.to_owned()))
            .timeout(Some(timeout));
        if !self.user.is_empty() {
            builder =
                builder.credentials(Credentials::new(self.user.clone(), self.password.clone()));
        }
        Ok(builder.build())
    }
}

/// The email of `notification` for `point`: Grafana's subject (`subject`, by default
/// `default.title`), the message as text (`message`, by default `default.message`) and an
/// HTML version with every alert's labels, annotations and links.
pub(crate) fn email_body(
    notification: &Notification<'_>,
    point: &ContactPoint,
    templates: &[(String, String)],
) -> Value {
    let prepared = Prepared::new(notification);
    let subject = prepared.text(notification, point, templates, "subject", DEFAULT_TITLE);
    let custom = point.text("message").is_some_and(|m| !m.is_empty());
    let text = prepared.text(
        notification,
        point,
        templates,
        "message",
        "{{ template \"default.message\" . }}",
    );
    let mut html = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body style=\"font-family: sans-serif\">\n",
    );
    let _ = writeln!(html, "<h2>{}</h2>", escape(&subject));
    if custom {
        let _ = writeln!(
            html,
            "<p style=\"white-space: pre-wrap\">{}</p>",
            escape(&text)
        );
    } else {
        for (heading, firing) in [("Firing", true), ("Resolved", false)] {
            let alerts: Vec<_> = prepared.alerts().filter(|a| a.firing == firing).collect();
            if alerts.is_empty() {
                continue;
            }
            let _ = writeln!(html, "<h3>{heading}: {}</h3>", alerts.len());
            for alert in alerts {
                html.push_str("<table style=\"margin-bottom: 16px\">\n");
                for (title, labels) in
                    [("Labels", alert.labels), ("Annotations", alert.annotations)]
                {
                    let _ = writeln!(
                        html,
                        "<tr><th colspan=\"2\" align=\"left\">{title}</th></tr>"
                    );
                    for (k, v) in labels {
                        let _ = writeln!(
                            html,
                            "<tr><td>{}</td><td>{}</td></tr>",
                            escape(k),
                            escape(v)
                        );
                    }
                }
                let _ = writeln!(
                    html,
                    "<tr><td colspan=\"2\"><a href=\"{}\">View alert rule</a> · <a href=\"{}\">Silence</a></td></tr>\n</table>",
                    escape(alert.generator_url),
                    escape(alert.silence_url)
                );
            }
        }
    }
    let _ = writeln!(
        html,
        "<p><a href=\"{}\">Sent by Grafana-compatible Tandem</a></p>\n</body></html>",
        escape(notification.external_url)
    );
    json!({
        "receiver": notification.receiver,
        "status": prepared.status,
        "subject": subject,
        "text": text,
        "html": html,
    })
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Sends the email of `payload` to `point`'s addresses: one message to all of them when
/// `singleEmail` is set, else one message per address (as Grafana). A payload without
/// `subject` and `text` (the test notification's webhook body) uses its `title` and
/// `message`.
pub(crate) async fn send_email(
    smtp: &SmtpSettings,
    point: &ContactPoint,
    key: &str,
    payload: &Value,
    timeout: Duration,
) -> Result<(), Failure> {
    if !smtp.enabled {
        return Err(Failure::Permanent(
            "SMTP not configured, check your grafana.ini config file's [smtp] section".to_owned(),
        ));
    }
    let field = |name: &str, fallback: &str| {
        payload
            .get(name)
            .or_else(|| payload.get(fallback))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let subject = field("subject", "title");
    let text = field("text", "message");
    let html = payload
        .get("html")
        .and_then(Value::as_str)
        .map_or_else(|| format!("<pre>{}</pre>", escape(&text)), str::to_owned);
    let from_address = smtp
        .from_address
        .parse::<lettre::Address>()
        .map_err(|err| Failure::Permanent(format!("[smtp] from_address: {err}")))?;
    let from = Mailbox::new(
        Some(smtp.from_name.clone()).filter(|n| !n.is_empty()),
        from_address,
    );
    let mut recipients = Vec::new();
    for address in point.addresses() {
        let mailbox = address
            .parse::<Mailbox>()
            .map_err(|err| Failure::Permanent(format!("invalid address '{address}': {err}")))?;
        recipients.push(mailbox);
    }
    if recipients.is_empty() {
        return Err(Failure::Permanent("no addresses to send to".to_owned()));
    }
    let batches: Vec<Vec<Mailbox>> =
        if point.settings.get("singleEmail").and_then(Value::as_bool) == Some(true) {
            vec![recipients]
        } else {
            recipients.into_iter().map(|r| vec![r]).collect()
        };
    let transport = smtp.transport(timeout).map_err(Failure::Permanent)?;
    let many = batches.len() > 1;
    for (index, to) in batches.into_iter().enumerate() {
        let message_id = if many {
            format!("<{key}.{index}@tandem>")
        } else {
            format!("<{key}@tandem>")
        };
        let mut builder = Message::builder()
            .from(from.clone())
            .subject(subject.clone())
            .message_id(Some(message_id));
        for mailbox in to {
            builder = builder.to(mailbox);
        }
        let message = builder
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(text.clone()),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(html.clone()),
                    ),
            )
            .map_err(|err| Failure::Permanent(format!("building the email failed: {err}")))?;
        match transport.send(message).await {
            Ok(_) => {}
            Err(err) if err.is_permanent() => {
                return Err(Failure::Permanent(format!(
                    "the SMTP server refused: {err}"
                )));
            }
            Err(err) => return Err(Failure::Retry(format!("sending email failed: {err}"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grafana_spellings_of_the_smtp_keys() {
        assert_eq!(
            StartTlsPolicy::parse(""),
            Some(StartTlsPolicy::Opportunistic)
        );
        assert_eq!(
            StartTlsPolicy::parse("MandatoryStartTLS"),
            Some(StartTlsPolicy::Mandatory)
        );
        assert_eq!(
            StartTlsPolicy::parse("NoStartTLS"),
            Some(StartTlsPolicy::None)
        );
        assert_eq!(StartTlsPolicy::parse("sometimes"), None);
        let mut smtp = SmtpSettings {
            password: "hunter2".into(),
            ..SmtpSettings::default()
        };
        assert!(!format!("{smtp:?}").contains("hunter2"));
        assert_eq!(smtp.host_port().unwrap(), ("localhost", 25));
        smtp.host = "[::1]:2525".into();
        assert_eq!(smtp.host_port().unwrap(), ("::1", 2525));
        smtp.host = "mail:x".into();
        assert!(smtp.check().is_err());
        smtp.host = "mail".into();
        smtp.from_address = "not an address".into();
        assert!(smtp.check().is_err());
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
