//! Guards a route of your own plain hyper service with Tandem's sessions, no axum and no
//! Tandem HTTP layer involved.
//!
//! ```sh
//! cargo run --example hyper_session_guard
//! curl -si -X POST 127.0.0.1:8088/login -d 'admin:admin'        # note the session cookie
//! curl -s 127.0.0.1:8088/private -H 'cookie: session=<token>'    # 200 with the cookie, 401 without
//! ```
//!
//! Point `DatabaseSettings` at the PostgreSQL database of a Tandem cluster instead, with the
//! cluster's `secret_key`, and a user logged in on Tandem is recognised here too.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tandem::sessions::{Identity, SessionSettings, SessionStore, SqlSessionStore};
use tandem::storage::{Database, DatabaseSettings, MigrationOptions};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let data = std::env::temp_dir().join(format!("tandem-guard-{}", std::process::id()));
    let db = Database::connect(&DatabaseSettings::sqlite(data.join("tandem.db"))).await?;
    db.migrate(MigrationOptions {
        locking: true,
        lock_timeout: None,
    })
    .await?;
    let store: Arc<dyn SessionStore> = Arc::new(SqlSessionStore::new(db));
    let identity = Identity::new(store, SessionSettings::default());
    identity.ensure_admin().await?;

    let listener = TcpListener::bind("127.0.0.1:8088").await?;
    #[allow(clippy::print_stdout)]
    {
        println!("listening on http://127.0.0.1:8088 (POST /login with body 'admin:admin')");
    }
    loop {
        let (stream, _) = listener.accept().await?;
        let identity = identity.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |request| handle(identity.clone(), request));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    identity: Identity,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, text: String| {
        let mut response = Response::new(Full::new(Bytes::from(text)));
        *response.status_mut() = status;
        response
    };
    match (request.method().as_str(), request.uri().path()) {
        ("POST", "/login") => {
            let body = request
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&body).into_owned();
            let Some((user, password)) = text.trim().split_once(':') else {
                return Ok(reply(
                    StatusCode::BAD_REQUEST,
                    "send user:password\n".to_owned(),
                ));
            };
            match identity.login(user, password, "", "hyper-example").await {
                Ok((_, session)) => {
                    let mut response = reply(StatusCode::OK, "logged in\n".to_owned());
                    let cookie = format!("session={}; HttpOnly; Path=/", session.token);
                    if let Ok(value) = cookie.parse() {
                        response
                            .headers_mut()
                            .insert(hyper::header::SET_COOKIE, value);
                    }
                    Ok(response)
                }
                Err(err) => Ok(reply(StatusCode::UNAUTHORIZED, format!("{err}\n"))),
            }
        }
        ("GET", "/private") => {
            let token = request
                .headers()
                .get(hyper::header::COOKIE)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| {
                    value
                        .split(';')
                        .find_map(|pair| pair.trim().strip_prefix("session="))
                })
                .unwrap_or_default()
                .to_owned();
            // Checks the token against the shared database: revoked, expired or unknown
            // tokens fail, and a due rotation happens (a new token to hand back).
            match identity.authenticate_session(&token).await {
                Ok(auth) => {
                    let mut response =
                        reply(StatusCode::OK, format!("hello, {}\n", auth.user.login));
                    if let Some(new) = auth.rotated {
                        let cookie = format!("session={new}; HttpOnly; Path=/");
                        if let Ok(value) = cookie.parse() {
                            response
                                .headers_mut()
                                .insert(hyper::header::SET_COOKIE, value);
                        }
                    }
                    Ok(response)
                }
                Err(_) => Ok(reply(StatusCode::UNAUTHORIZED, "log in first\n".to_owned())),
            }
        }
        _ => Ok(reply(StatusCode::NOT_FOUND, "not found\n".to_owned())),
    }
}
