//! The `pulseboard` binary: parse config, start tracing, bind, run.

use anyhow::Context;
use clap::Parser;
use pulseboard::config::{Command, Config};
use tokio_util::sync::CancellationToken;

/// How long the runtime waits, once `run` has returned, for blocking calls still running
/// (a Kafka client call bounded by its own timeout): the process exits after that anyway.
const EXIT_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// mimalloc, which also serves librdkafka's `malloc` and `free` (feature `override`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let now = pulseboard::now_ms();
    let printed = match &config.command {
        None => None,
        Some(Command::Openapi) => Some(
            pulseboard::api::openapi::spec()
                .to_pretty_json()
                .context("cannot encode the OpenAPI description")?,
        ),
        Some(Command::Token(c)) => Some(pulseboard::access_cli::token(
            &config.clone().validate()?,
            c,
            now,
        )?),
        Some(Command::Link(c)) => Some(pulseboard::access_cli::link(
            &config.clone().validate()?,
            c,
            now,
        )?),
    };
    if let Some(out) = printed {
        println!("{out}");
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(serve(config));
    // Dropping the runtime would wait for every blocking task; a client call stuck on an
    // unreachable broker must not keep the process alive after its work is done.
    runtime.shutdown_timeout(EXIT_GRACE);
    result
}

async fn serve(config: Config) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,librdkafka=warn".into()),
        )
        .init();
    let config = config.validate()?;
    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (use --listen to pick another address)",
                config.http.listen
            )
        })?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "serving");
    let scheme = if config.tls.enabled() {
        "https"
    } else {
        "http"
    };
    println!("Pulseboard on {scheme}://{addr}");

    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: flushing the last checkpoint");
        signal.cancel();
    });
    if let Err(e) = pulseboard::run(config, listener, shutdown).await {
        tracing::error!("{e:#}");
        return Err(anyhow::Error::new(e).context("pulseboard stopped"));
    }
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
