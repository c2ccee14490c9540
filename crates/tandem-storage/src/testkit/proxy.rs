//! A TCP proxy between a test's process and a server (a database, Redis), to cut or stall
//! the link of one client while the others keep theirs.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A TCP proxy in front of a database server, for outage tests: while it is down, open
/// connections are cut and new ones are closed at once, as if the server were gone; while
/// it is paused, connections stay open but no byte passes either way, as on a network
/// that stalls.
pub struct TcpProxy {
    addr: SocketAddr,
    up: watch::Sender<bool>,
    paused: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl TcpProxy {
    /// A proxy on a free loopback port forwarding to `target` (`host:port`).
    pub async fn start(target: &str) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let (up, watcher) = watch::channel(true);
        let (paused, pause_watcher) = watch::channel(false);
        let target = target.to_owned();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !*watcher.borrow() {
                    drop(client);
                    continue;
                }
                let mut watcher = watcher.clone();
                let pause = pause_watcher.clone();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::select! {
                        () = pump(client_read, server_write, pause.clone()) => {}
                        () = pump(server_read, client_write, pause) => {}
                        _ = watcher.wait_for(|up| !up) => {}
                    }
                });
            }
        });
        TcpProxy {
            addr,
            up,
            paused,
            task,
        }
    }

    /// The proxy's own address, to put in the database URL.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts the database off (`false`) or restores it (`true`).
    pub fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }

    /// Stalls every connection (`true`): bytes already sent wait in the proxy until it is
    /// resumed (`false`), in order, and nothing is lost.
    pub fn set_paused(&self, paused: bool) {
        self.paused.send_replace(paused);
    }
}

/// Copies `from` to `to` until either ends, holding each chunk while the proxy is paused.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut paused: watch::Receiver<bool>) {
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        if paused.wait_for(|paused| !paused).await.is_err() {
            return;
        }
        let read = match from.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if paused.wait_for(|paused| !paused).await.is_err()
            || to.write_all(&chunk[..read]).await.is_err()
        {
            return;
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
