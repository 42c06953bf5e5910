//! fs-sync-hydrate: the container agent that gets a project's files into a preview container and
//! keeps them equal to the database.
//!
//! It replaces the seed's `entrypoint.js`. Given the environment fs-sync-edge hands a container
//! (docs/contracts.md, "Container token and env"), [`Agent::run`]:
//!
//! 1. refuses to start when a service credential is in its environment ([`check_environment`]);
//! 2. joins the project's private realtime topic and buffers what arrives, and meanwhile (the
//!    snapshot is cut before the container starts: only the catch-up waits for the join)
//! 3. downloads the snapshot (streaming, sha256-verified) and extracts it through
//!    [`fs_sync_core::extract_snapshot`] (refusing, before anything is written, a snapshot of
//!    another project or one declaring more than the project caps), taking each file's stamp
//!    from the extraction, or resumes from its saved state when that state still describes the
//!    folder (see "State" below);
//! 4. applies every event with seq > the snapshot's `as_of_seq` strictly in order (a
//!    [`fs_sync_core::Sequencer`]): atomic writes, deletes, renames, `bulk:apply` and
//!    `content_omitted` contents fetched with `get_project_files`; a write whose hash already
//!    matches the file on disk is skipped;
//! 5. catches up from `list_project_events` on every gap, after every (re)join and whenever a
//!    `get_project_sync_state` check shows it is behind (checks follow activity, 0.5 s after the
//!    last event and then ever more rarely, down to once per `--sync-interval` when idle:
//!    [`fs_sync_core::CheckCadence`]); refreshes its token through the edge before it expires;
//! 6. re-hydrates in place when the log no longer holds its position (see "Re-hydration");
//! 7. reports readiness and health (a `ready` log line, `GET /healthz`, Prometheus
//!    `GET /metrics`; see "Health") and can run the dev server (`--exec`), forwarding
//!    SIGTERM/SIGINT to it and exiting with its status.
//!
//! It needs nothing but the nine container variables: no `PATH`, `HOME` or `TMPDIR`. The project
//! folder defaults to `/app/project` (`--target`), the state folder to the folder beside it
//! (`/app/.fs-sync-state`), temporary files live under the folder's `.fs-sync/`, and `--exec`
//! runs `/bin/sh -c CMD` with a default `PATH` when the agent has none.
//!
//! # Re-hydration
//!
//! When `list_project_events` answers `PT410` (retention pruned the events after the agent's
//! position) or a page starts past it, the agent asks the edge for a fresh snapshot with its
//! container token (`POST $EDGE_URL/sessions/snapshot`), downloads and verifies it as at start,
//! extracts it with [`fs_sync_core::extract_snapshot`] into a scratch folder under `.fs-sync/tmp/`,
//! then brings the folder to it in place: files the snapshot no longer has are deleted, the others
//! moved in only when their content differs, untracked files left alone. It saves its state at the
//! snapshot's `as_of_seq` and follows on from there, without a restart: the realtime channel and
//! the `--exec` child keep running. Failed attempts are retried with backoff, as is a
//! re-hydration that follows another before the agent settled; without `EDGE_URL`
//! the agent stops, saying the container must start again from a fresh snapshot. Counted in
//! `hydrate_rehydrations_total`.
//!
//! # Health
//!
//! `GET /healthz` answers 200 `{"state":"ready",…}` only while hydrated, caught up and healthy;
//! otherwise 503 with `"state"` `degraded` (reasons `hydrating`, `realtime`, `behind`) or
//! `failing` (`auth`, `disk`) and `"reasons": [{"reason", "detail", "since"}, …]`. `auth`: the
//! RPCs or the edge refused the token (401/403) and still do at an interval; `realtime`: the channel
//! was not joined for `--health-realtime-intervals` intervals; `behind`: a position check shows
//! the server more than `--health-max-behind` events ahead, or ahead without progress for two
//! intervals; `disk`: ENOSPC or EDQUOT on a write. The same is exported as
//! `hydrate_health_state{state}` and `hydrate_health_reason{reason}` (0/1 gauges), with
//! `hydrate_cold_start_seconds` (from the container token's `iat` to ready).
//!
//! # State
//!
//! `<state-dir>/<project_id>.json` (default state dir: `<target>/../.fs-sync-state`) holds the last
//! applied seq and the head of every file (version, hash, size, mtime), written atomically after
//! each batch of applied events. On restart the agent resumes from it when it parses and names the
//! same project and the target folder exists. Every head is then verified: a file whose size and
//! mtime equal the recorded ones is trusted, any other is hashed. Files that fail (missing or
//! changed, e.g. because the agent died between a write and the next state save) are not a reason
//! to re-hydrate: the agent first catches up from the log (replaying events is idempotent: writes
//! whose hash matches are skipped), then re-fetches each remaining mismatched file at its head
//! version. Without usable state the agent hydrates from the snapshot.
//!
//! # The folder is shared
//!
//! Files the agent does not track (a dev server's `node_modules`, build output) are never deleted
//! and never stop a change: an untracked entry in the way of a project file or folder (or an
//! untracked file at a path the project creates) is moved to `.fs-sync/displaced/` and logged
//! (`untracked.displaced`), and no symbolic link is followed. The agent's own temporary files and
//! staging folders live in the reserved `.fs-sync/` folder, which no project path can enter; it
//! empties `.fs-sync/tmp/` and removes stale staging folders at every start.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use fs_sync_hydrate::{Agent, Config, Logger};
//!
//! let vars: Vec<(String, String)> = std::env::vars().collect();
//! let args: Vec<String> = vec!["--target".into(), "/app/project".into()];
//! let config = Config::from_env_and_args(vars, args)?;
//! let logger = Logger::stderr(&config.project_id, &config.session_id);
//! let agent = Agent::start(config, logger).await?;
//! let (_signals_tx, signals) = tokio::sync::mpsc::unbounded_channel();
//! let outcome = agent.run(signals).await?;
//! println!("{outcome:?}");
//! # Ok(()) }
//! ```

#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]
#![deny(unused_must_use)]

mod agent;
mod api;
mod config;
mod driver;
mod exec;
mod fsops;
mod health;
mod http;
mod log;
mod metrics;
mod mirror;
mod plan;
mod realtime;
mod snapshot;
mod state;

pub use agent::{Agent, Outcome};
pub use api::ApiError;
pub use config::{check_environment, Config, ConfigError};
pub use log::Logger;
pub use metrics::{Metrics, MetricsSnapshot};
pub use state::state_file;
