//! `fs-sync-dev start`: the local Supabase-compatible stack (see the library docs).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use fs_sync_dev::{DevStack, Options};

const USAGE: &str = "\
usage: fs-sync-dev start [--data-dir DIR | --ephemeral] [--port N] [--ready-file PATH]
                         [--storage-dir DIR] [--quiet]

Starts PostgreSQL, applies the local Supabase base and fs-sync's migrations, and serves
/rest/v1, /storage/v1, /realtime/v1 and /admin/v1 on one port until Ctrl-C or SIGTERM.

  --data-dir DIR     keep the data in DIR and continue from it on the next start: a PostgreSQL
                     cluster of its own (shut down cleanly at stop), the JWT secret and the anon
                     and service_role keys (so issued tokens stay valid), the Storage objects.
                     Migrations added since the last start are applied; an applied migration
                     that changed is refused. A DIR in use by another fs-sync-dev is refused.
                     Default: .fs-sync-dev/ in the repository (git-ignored)
  --ephemeral        keep nothing: a new cluster (or a new database on the server in
                     DATABASE_URL, dropped at exit), a new JWT secret and new keys every start;
                     what the tests and the demo use
  --port N           port to listen on (default 54321; 0 picks a free port)
  --ready-file PATH  once ready, write {api_url, anon_key, service_role_key, jwt_secret, db_url}
                     as JSON to PATH
  --storage-dir DIR  keep uploaded objects in DIR (default: DIR/storage of the data dir, or a
                     temporary folder when ephemeral)
  --quiet            no per-request log lines on stderr
";

struct Args {
    port: u16,
    ready_file: Option<PathBuf>,
    storage_dir: Option<PathBuf>,
    /// `None`: `--ephemeral`.
    data_dir: Option<PathBuf>,
    quiet: bool,
}

fn parse_args() -> anyhow::Result<Option<Args>> {
    let mut it = std::env::args().skip(1);
    match it.next().as_deref() {
        Some("start") => {}
        Some("-h" | "--help" | "help") | None => return Ok(None),
        Some(other) => bail!("unknown command {other:?}\n\n{USAGE}"),
    }
    let mut args = Args {
        port: 54321,
        ready_file: None,
        storage_dir: None,
        data_dir: None,
        quiet: false,
    };
    let mut ephemeral = false;
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match a.as_str() {
            "--port" => {
                let v = value("--port")?;
                args.port = v.parse().with_context(|| format!("--port {v:?}"))?;
            }
            "--ready-file" => args.ready_file = Some(value("--ready-file")?.into()),
            "--storage-dir" => args.storage_dir = Some(value("--storage-dir")?.into()),
            "--data-dir" => args.data_dir = Some(value("--data-dir")?.into()),
            "--ephemeral" => ephemeral = true,
            "--quiet" => args.quiet = true,
            "-h" | "--help" => return Ok(None),
            other => bail!("unknown option {other:?}\n\n{USAGE}"),
        }
    }
    if ephemeral {
        if args.data_dir.is_some() {
            bail!("--data-dir and --ephemeral exclude each other");
        }
        return Ok(Some(args));
    }
    if std::env::var_os("DATABASE_URL").is_some_and(|u| !u.is_empty()) {
        bail!(
            "DATABASE_URL is set, but a data dir keeps its own PostgreSQL cluster: pass \
             --ephemeral to use the server in DATABASE_URL (a new database, dropped at exit), or \
             unset DATABASE_URL"
        );
    }
    args.data_dir
        .get_or_insert_with(|| fs_sync_pg::repo_root().join(".fs-sync-dev"));
    Ok(Some(args))
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fs-sync-dev: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<()> {
    let Some(args) = parse_args()? else {
        print!("{USAGE}");
        return Ok(());
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args))?;
    // Dropping the runtime ends the remaining tasks; returning from main then runs the exit
    // handler that stops the PostgreSQL cluster this process started.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    Ok(())
}

async fn serve(args: Args) -> anyhow::Result<()> {
    // Handlers first, so a signal during startup still shuts down cleanly.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let options = Options {
        port: args.port,
        storage_dir: args.storage_dir,
        data_dir: args.data_dir,
        request_log: !args.quiet,
        ..Options::default()
    };
    let stack = tokio::select! {
        s = DevStack::start(options) => s.context("starting fs-sync-dev")?,
        _ = tokio::signal::ctrl_c() => return Ok(()),
        _ = term.recv() => return Ok(()),
    };
    let info = stack.info().clone();
    println!(
        "Started fs-sync-dev, a local Supabase-compatible stack for fs-sync.\n\n\
         \x20        API URL: {api}\n\
         \x20       REST URL: {api}/rest/v1\n\
         \x20     Storage URL: {api}/storage/v1\n\
         \x20    Realtime URL: {ws}/realtime/v1\n\
         \x20          DB URL: {db}\n\
         \x20      JWT secret: {secret}\n\
         \x20        anon key: {anon}\n\
         service_role key: {service}\n\n\
         Admin (service_role key): POST {api}/admin/v1/users {{\"email\"}}, /admin/v1/token, \
         /admin/v1/projects, /admin/v1/members, /admin/v1/faults/*",
        api = info.api_url,
        ws = info.api_url.replacen("http", "ws", 1),
        db = info.db_url,
        secret = info.jwt_secret,
        anon = info.anon_key,
        service = info.service_role_key,
    );
    match stack.data_dir() {
        Some(d) => println!(
            "\nData dir: {} ({}). Kept across restarts; --ephemeral keeps nothing.",
            d.path.display(),
            if d.created {
                format!(
                    "created: the local base and {} migrations applied",
                    d.migrations_applied.len()
                )
            } else {
                let applied: Vec<String> = (d.base_applied.iter())
                    .map(|f| format!("local base {f}"))
                    .chain(d.migrations_applied.iter().cloned())
                    .collect();
                if applied.is_empty() {
                    "reused: no new migrations".to_owned()
                } else {
                    format!("reused: applied {}", applied.join(", "))
                }
            }
        ),
        None => println!("\nEphemeral: the database, keys and objects are gone at exit."),
    }
    println!("Press Ctrl-C to stop.");
    if let Some(path) = &args.ready_file {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&info)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    }
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("fs-sync-dev: shutting down");
    stack.shutdown().await;
    if let Some(path) = &args.ready_file {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}
