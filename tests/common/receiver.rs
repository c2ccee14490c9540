//! A webhook receiver for notification tests: it records every request (group key and
//! status, the status it answered, when, the JSON body) and answers 500 while its switch is
//! on, 200 otherwise. Shared by the `it` and `faults` test binaries.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// (group key/status, answered status, when, body) of every request.
pub(crate) type Log = Arc<Mutex<Vec<(String, u16, i64, Value)>>>;

pub(crate) async fn receiver(fail: Arc<AtomicBool>) -> (String, Log) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let log: Log = Arc::default();
    let record = log.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (record, fail) = (record.clone(), fail.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 16384];
                loop {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..at]).to_ascii_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() < at + 4 + length {
                        continue;
                    }
                    let body: Value = serde_json::from_slice(&buf[at + 4..at + 4 + length])
                        .unwrap_or(Value::Null);
                    let status = if fail.load(Ordering::SeqCst) {
                        500
                    } else {
                        200
                    };
                    let key = format!(
                        "{}/{}",
                        body["groupKey"].as_str().unwrap_or(""),
                        body["status"].as_str().unwrap_or("")
                    );
                    record
                        .lock()
                        .unwrap()
                        .push((key, status, tandem::storage::now_ms(), body));
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = socket.write_all(reply.as_bytes()).await;
                    return;
                }
            });
        }
    });
    (url, log)
}
