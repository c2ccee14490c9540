use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::edge::trim_trailing_slash;

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `router` on `listener` with hyper until `shutdown` fires, then stops accepting,
/// lets in-flight requests finish (idle keep-alive connections are closed at once) and
/// returns once every connection is closed or `drain_timeout` has passed.
///
/// At most `max_connections` connections are served at once; further clients wait in the
/// listen backlog until one closes.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    max_connections: usize,
    shutdown: CancellationToken,
    drain_timeout: Duration,
) -> std::io::Result<()> {
    let connections = TaskTracker::new();
    // Cancelled when draining takes too long: the connections still open are dropped.
    let force = CancellationToken::new();
    let permits = Arc::new(Semaphore::new(max_connections.max(1)));
    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                // The semaphore is never closed; if it were, nothing more could be served.
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) if is_transient(&err) => {
                    tracing::warn!(error = %err, "accepting a connection failed");
                    // Out of file descriptors and similar: give the process a moment.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(err) => return Err(err),
            },
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let (shutdown, force) = (shutdown.clone(), force.clone());
        connections.spawn(async move {
            let _permit = permit;
            serve_connection(stream, peer, router, shutdown, force).await;
        });
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(drain_timeout, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the drain timeout; closing them"
        );
        force.cancel();
        connections.wait().await;
    }
    Ok(())
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    router: Router,
    shutdown: CancellationToken,
    force: CancellationToken,
) {
    let service =
        router.map_request(|request: hyper::Request<Incoming>| trim_trailing_slash(request));
    let service = TowerToHyperService::new(service);
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(err) = result {
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
        }
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            tokio::select! {
                result = connection => {
                    if let Err(err) = result {
                        tracing::debug!(%peer, error = %err, "connection ended with an error while draining");
                    }
                }
                () = force.cancelled() => tracing::debug!(%peer, "connection dropped after the drain timeout"),
            }
        }
    }
}

fn is_transient(err: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        err.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted
    ) || err
        .raw_os_error()
        .is_some_and(|code| code == 23 || code == 24)
}
