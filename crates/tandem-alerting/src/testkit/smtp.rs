//! A real SMTP server for tests: Python's `aiosmtpd` (Debian's `python3-aiosmtpd`) on a
//! free loopback port, recording every message it accepts, as Python's `email` package
//! parses it, in a JSON-lines file the test reads.
//!
//! Without `aiosmtpd` a test says it skipped; with `TANDEM_TEST_REQUIRE_SERVICES=1` it
//! fails instead. The interpreter is `TANDEM_TEST_PYTHON`, else the first of
//! `/usr/bin/python3` and `python3` on `PATH` that imports `aiosmtpd`.
//!
//! This module reads environment variables and files on purpose; library code never does.
#![allow(clippy::disallowed_methods, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The variable naming the Python interpreter that has `aiosmtpd`.
pub const PYTHON_ENV: &str = "TANDEM_TEST_PYTHON";

/// The sink: a handler that writes each message as one JSON line, and, when a login is
/// given, an authenticator that accepts only it (over plain text, as a local relay may).
const SINK: &str = r#"
import email, email.policy, json, logging, os, socket, sys, warnings
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

warnings.simplefilter("ignore")
logging.getLogger("mail.log").setLevel(logging.ERROR)
out = sys.argv[1]
user = os.environ.get("SINK_USER", "")
password = os.environ.get("SINK_PASSWORD", "")

class Handler:
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        def part(kind):
            body = msg.get_body(preferencelist=(kind,))
            return body.get_content() if body is not None else None
        auth = getattr(session, "auth_data", None)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "subject": str(msg.get("subject", "")),
            "from": str(msg.get("from", "")),
            "to": str(msg.get("to", "")),
            "message_id": str(msg.get("message-id", "")),
            "text": part("plain"),
            "html": part("html"),
            "login": auth.login.decode() if isinstance(auth, LoginPassword) else None,
        }
        with open(out, "a") as f:
            f.write(json.dumps(record) + "\n")
        return "250 OK"

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login.decode() == user
          and auth_data.password.decode() == password)
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
params = {"auth_require_tls": False}
if user:
    params.update(authenticator=authenticator, auth_required=True)
if os.environ.get("SINK_TLS_CERT"):
    import ssl
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(os.environ["SINK_TLS_CERT"], os.environ["SINK_TLS_KEY"])
    # Only a client presenting the trusted certificate completes STARTTLS.
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(os.environ["SINK_CLIENT_CA"])
    params.update(tls_context=context, require_starttls=True)
controller = Controller(Handler(), hostname="127.0.0.1", port=port, **params)
controller.start()
print("ready", port, flush=True)
sys.stdin.read()
controller.stop()
"#;

/// One message the sink accepted.
#[derive(Clone, Debug, Deserialize)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`).
    pub mail_from: String,
    /// The envelope recipients (`RCPT TO`).
    pub rcpt_tos: Vec<String>,
    /// The decoded `Subject` header.
    pub subject: String,
    /// The `From` header.
    pub from: String,
    /// The `To` header.
    pub to: String,
    /// The `Message-ID` header.
    pub message_id: String,
    /// The text/plain part.
    pub text: Option<String>,
    /// The text/html part.
    pub html: Option<String>,
    /// The login the client authenticated with, if any.
    pub login: Option<String>,
}

/// The TLS of a sink that requires client certificates.
#[derive(Clone, Debug)]
pub struct SinkTls {
    /// The server's PEM certificate.
    pub cert: PathBuf,
    /// Its PEM key.
    pub key: PathBuf,
    /// The PEM certificates a client's certificate must chain to.
    pub client_ca: PathBuf,
}

/// Makes a self-signed certificate for `common_name` with `openssl` in `dir`: the paths of
/// the PEM certificate and its PEM (PKCS #8) key.
pub fn self_signed(dir: &std::path::Path, common_name: &str) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{common_name}.pem"));
    let key = dir.join(format!("{common_name}.key"));
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        ])
        .arg(format!("/CN={common_name}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// A running sink; stopped when dropped.
pub struct SmtpSink {
    child: Child,
    dir: PathBuf,
    file: PathBuf,
    port: u16,
}

impl SmtpSink {
    /// Starts a sink accepting anyone, or only `login` (user, password) when given; `None`
    /// after saying the test skipped when `aiosmtpd` is missing.
    pub async fn start(login: Option<(&str, &str)>) -> Option<SmtpSink> {
        SmtpSink::start_with(login, None).await
    }

    /// Starts a sink that requires STARTTLS with `tls` (its certificate and key) and a
    /// client certificate signed by (or equal to) `tls.client_ca`.
    pub async fn start_tls(tls: SinkTls) -> Option<SmtpSink> {
        SmtpSink::start_with(None, Some(tls)).await
    }

    async fn start_with(login: Option<(&str, &str)>, tls: Option<SinkTls>) -> Option<SmtpSink> {
        let python = python().await?;
        let dir = std::env::temp_dir().join(format!(
            "tandem-smtp-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).expect("create the sink's directory");
        let file = dir.join("mail.jsonl");
        let mut command = Command::new(python);
        command
            .arg("-c")
            .arg(SINK)
            .arg(&file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some((user, password)) = login {
            command
                .env("SINK_USER", user)
                .env("SINK_PASSWORD", password);
        }
        if let Some(tls) = &tls {
            command
                .env("SINK_TLS_CERT", &tls.cert)
                .env("SINK_TLS_KEY", &tls.key)
                .env("SINK_CLIENT_CA", &tls.client_ca);
        }
        let mut child = command.spawn().expect("start the SMTP sink");
        let stdout = child.stdout.take().expect("the sink's stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the SMTP sink did not start within 20 s")
            .expect("read the sink's stdout")
            .expect("the SMTP sink exited before it was ready");
        let port = line
            .strip_prefix("ready ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("the SMTP sink said {line:?}"));
        Some(SmtpSink {
            child,
            dir,
            file,
            port,
        })
    }

    /// `127.0.0.1:<port>`, what `[smtp] host` takes.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every message accepted so far, in order.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let Ok(text) = std::fs::read_to_string(&self.file) else {
            return Vec::new();
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("a sink record"))
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An interpreter that imports `aiosmtpd`, or `None` after saying the test skipped.
async fn python() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(path) = std::env::var_os(PYTHON_ENV).filter(|p| !p.is_empty()) {
        candidates.push(PathBuf::from(path));
    }
    candidates.push(PathBuf::from("/usr/bin/python3"));
    candidates.push(PathBuf::from("python3"));
    for candidate in candidates {
        let ok = Command::new(&candidate)
            .args(["-c", "import aiosmtpd.controller"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok_and(|s| s.success());
        if ok {
            return Some(candidate);
        }
    }
    let required =
        std::env::var(tandem_storage::testkit::REQUIRE_SERVICES_ENV).is_ok_and(|v| v == "1");
    assert!(
        !required,
        "an SMTP sink is required ({}=1) but no python3 imports aiosmtpd (apt-get install python3-aiosmtpd, or set {PYTHON_ENV})",
        tandem_storage::testkit::REQUIRE_SERVICES_ENV
    );
    tandem_storage::testkit::skip(&format!(
        "SMTP tests need python3-aiosmtpd (or {PYTHON_ENV})"
    ));
    None
}
