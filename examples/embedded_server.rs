//! Runs a whole Tandem instance inside your own program, configured in code.
//!
//! ```sh
//! cargo run --example embedded_server
//! ```
//!
//! The instance keeps its SQLite file in a temporary directory, listens on a free loopback
//! port, and stops cleanly on Ctrl-C. Point several such programs at one PostgreSQL URL
//! (`DatabaseSettings::from_url`) and they form a cluster.

use tandem::http::{Server, Settings};
use tandem::storage::DatabaseSettings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let data = std::env::temp_dir().join(format!("tandem-example-{}", std::process::id()));
    let mut settings = Settings {
        database: DatabaseSettings::sqlite(data.join("tandem.db")),
        ..Settings::default()
    };
    settings.server.http_addr = "127.0.0.1".to_owned();
    settings.server.http_port = 0;

    let server = Server::start(settings).await?;
    let url = format!("http://{}", server.local_addr());
    tracing::info!(%url, "try {url}/api/health and {url}/api/cluster; Ctrl-C stops");
    // The example has no logger of its own; say where it listens on the terminal.
    #[allow(clippy::print_stdout)]
    {
        println!(
            "Tandem is listening on {url} (instance {})",
            server.instance_id()
        );
    }

    tokio::signal::ctrl_c().await?;
    server.shutdown().await?;
    std::fs::remove_dir_all(&data)?;
    Ok(())
}
