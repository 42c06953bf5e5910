//! `fs-sync-hydrate`: the container entrypoint (see the library docs).

use std::process::ExitCode;

use anyhow::Context as _;
use fs_sync_hydrate::{Agent, Config, ConfigError, Logger};

fn main() -> ExitCode {
    match run() {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            match e.downcast_ref::<ConfigError>() {
                Some(ConfigError::Help(help)) => {
                    print!("{help}");
                    return ExitCode::SUCCESS;
                }
                // clap's message names the program in its usage line already.
                Some(ConfigError::Usage(message)) => eprint!("{message}"),
                _ => eprintln!("fs-sync-hydrate: {e:#}"),
            }
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<u8> {
    let config = Config::from_env_and_args(std::env::vars(), std::env::args().skip(1))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let code = runtime.block_on(async {
        let logger = Logger::stderr(&config.project_id, &config.session_id);
        // Signal handlers first, so a SIGTERM during hydration is seen.
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        for kind in [
            tokio::signal::unix::SignalKind::terminate(),
            tokio::signal::unix::SignalKind::interrupt(),
        ] {
            let mut s = tokio::signal::unix::signal(kind).context("installing a signal handler")?;
            let tx = tx.clone();
            let number = kind.as_raw_value();
            tokio::spawn(async move {
                while s.recv().await.is_some() {
                    if tx.send(number).is_err() {
                        break;
                    }
                }
            });
        }
        let outcome = match Agent::start(config, logger.clone()).await {
            Ok(agent) => agent.run(rx).await,
            Err(e) => Err(e),
        };
        // Reported once, as a log line like everything else the agent says.
        anyhow::Ok(outcome.map_or_else(
            |e| {
                logger.error("agent.failed", &format!("{e:#}"), serde_json::Value::Null);
                2
            },
            |o| o.exit_code(),
        ))
    })?;
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    Ok(code)
}
