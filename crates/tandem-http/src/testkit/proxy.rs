use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A TCP proxy in front of a database server, for outage tests: while it is down, open
/// connections are cut and new ones are closed at once, as if the server were gone.
pub struct TcpProxy {
    addr: SocketAddr,
    up: watch::Sender<bool>,
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
        let target = target.to_owned();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !*watcher.borrow() {
                    drop(client);
                    continue;
                }
                let mut watcher = watcher.clone();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let mut client = client;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = watcher.wait_for(|up| !up) => {}
                    }
                });
            }
        });
        TcpProxy { addr, up, task }
    }

    /// The proxy's own address, to put in the database URL.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts the database off (`false`) or restores it (`true`).
    pub fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
