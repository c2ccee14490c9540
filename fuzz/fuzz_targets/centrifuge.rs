//! Centrifuge frames as a WebSocket client sends them to Live: the input is one or more
//! messages (separated by NUL bytes, which JSON text never holds raw), each fed to
//! `Connection::handle_frame` (or `handle_bytes`, when it is not UTF-8) of a fresh hub on
//! the local engine, as the HTTP layer feeds them.
//! That runs the command decoder (`protocol/command.rs`), channel names (`channel.rs`)
//! and the session's handling of every command.
//!
//! Asserts: no panic; every text frame the hub queues is one JSON object per line; nothing
//! follows a close.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use tandem_live::{
    ClientInfo, Hub, HubOptions, LiveSettings, OrgId, OrgMembers, Outbox, Outgoing, Role,
};
use tokio::runtime::Runtime;

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|err| panic!("a runtime: {err}"))
    })
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(run(data));
});

async fn run(data: &[u8]) {
    let hub = Hub::start(HubOptions {
        settings: LiveSettings::default(),
        node_id: "fuzz".to_owned(),
        authorizer: Arc::new(OrgMembers),
        leases: None,
        database: None,
        local_broker: None,
    })
    .await
    .unwrap_or_else(|err| panic!("a local hub starts: {err}"));
    let client = ClientInfo {
        user_id: 1,
        org_id: OrgId(1),
        role: Role::Admin,
    };
    let (mut connection, mut outbox) = hub
        .connect(client)
        .unwrap_or_else(|err| panic!("a first connection is admitted: {err}"));
    let mut closed = false;
    for message in data.split(|b| *b == 0) {
        match std::str::from_utf8(message) {
            Ok(text) => connection.handle_frame(text).await,
            Err(_) => connection.handle_bytes(message).await,
        }
        // Let the hub's tasks fan publications out to this connection.
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        drain(&mut outbox, &mut closed);
    }
    drop(connection);
    drain(&mut outbox, &mut closed);
    drop(hub);
    // The hub's tasks see the cancellation and end.
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
}

fn drain(outbox: &mut Outbox, closed: &mut bool) {
    while let Some(item) = outbox.try_recv() {
        assert!(!*closed, "{item:?} after a close");
        match item {
            Outgoing::Text(text) => {
                for line in text.split('\n') {
                    let value: serde_json::Value = serde_json::from_str(line)
                        .unwrap_or_else(|err| panic!("{line:?} is not JSON: {err}"));
                    assert!(value.is_object(), "{line:?} is not an object");
                }
            }
            Outgoing::Close(_) => *closed = true,
        }
    }
}
