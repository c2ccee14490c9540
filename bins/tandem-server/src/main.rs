//! The `tandem-server` binary: reads the command line and the configuration, then runs the
//! server or the migrations. The work itself lives in the library crates.

mod cli;
mod config;

use std::process::ExitCode;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::cli::{Command, Invocation};

/// The exit status for a command line or a configuration the binary cannot use.
const USAGE_EXIT: u8 = 2;

fn main() -> ExitCode {
    let args = match cli::parse(std::env::args_os().skip(1)) {
        Ok(Invocation::Run(args)) => args,
        Ok(Invocation::Help) => {
            print_out(&format!("{}\n\n{}", cli::USAGE, config::describe_keys()));
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Version) => {
            print_out(&format!("tandem-server {}", env!("CARGO_PKG_VERSION")));
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            print_err(&format!("tandem-server: {err}\n\n{}", cli::USAGE));
            return ExitCode::from(USAGE_EXIT);
        }
    };
    // The one place the process environment is read; config::load takes it as a closure
    // so that its tests need not touch the process environment.
    #[allow(clippy::disallowed_methods)]
    let env = |name: &str| std::env::var(name).ok();
    let loaded = match config::load(&args, env) {
        Ok(loaded) => loaded,
        Err(err) => {
            print_err(&format!("tandem-server: {err}"));
            return ExitCode::from(USAGE_EXIT);
        }
    };

    let config::Loaded {
        settings,
        log,
        file,
        warnings,
    } = loaded;
    init_tracing(&log, settings.database.log_queries);
    match &file {
        Some(file) => tracing::info!(file = %file.display(), "read configuration"),
        None => tracing::info!("no configuration file; using defaults and GF_* variables"),
    }
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(error = %err, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match args.command {
        Command::Serve => runtime.block_on(serve(settings)),
        Command::Migrate => runtime.block_on(migrate(settings)),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "tandem-server stopped");
            ExitCode::FAILURE
        }
    }
}

/// Runs the server until SIGTERM or SIGINT, then shuts it down gracefully.
async fn serve(settings: tandem_http::Settings) -> anyhow::Result<()> {
    let mut server = tandem_http::Server::start(settings).await?;
    tokio::select! {
        signal = shutdown_signal() => tracing::info!(signal = signal?, "received a shutdown signal"),
        err = server.failed() => return Err(err.into()),
    }
    server.shutdown().await?;
    Ok(())
}

/// Applies pending migrations under the cluster-wide lock and exits.
async fn migrate(settings: tandem_http::Settings) -> anyhow::Result<()> {
    let db = tandem_storage::Database::connect(&settings.database).await?;
    let applied = db
        .migrate(tandem_storage::MigrationOptions {
            locking: settings.database.migration_locking,
            lock_timeout: settings.database.migration_lock_timeout,
        })
        .await?;
    tracing::info!(applied = applied.len(), "migrations done");
    db.close().await;
    Ok(())
}

async fn shutdown_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    })
}

fn init_tracing(log: &config::LogSettings, log_queries: bool) {
    // sqlx logs statements at info level; they are wanted only with [database] log_queries.
    let sqlx_level = if log_queries {
        tracing::Level::TRACE
    } else {
        tracing::Level::WARN
    };
    let filter = tracing_subscriber::filter::Targets::new()
        .with_default(log.level)
        .with_target("sqlx", sqlx_level);
    let registry = tracing_subscriber::registry().with(filter);
    match log.format {
        config::LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(false),
            )
            .init(),
        config::LogFormat::Text => registry.with(tracing_subscriber::fmt::layer()).init(),
    }
}

// Help, version and fatal errors come before logging exists, and belong on the terminal.
#[allow(clippy::print_stdout)]
fn print_out(text: &str) {
    println!("{text}");
}

#[allow(clippy::print_stderr)]
fn print_err(text: &str) {
    eprintln!("{text}");
}
