//! Downloading (streamed to a temporary file, sha256-verified) and extracting the snapshot.

use std::io::{IsTerminal, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use fs_sync_core::{ContentHasher, Extraction, Limits, Manifest, SnapshotError};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::log::redact_url;

/// Streams `url` into `dest`, hashing as it goes; fails unless the SHA-256 is `expected`.
/// Returns the byte count.
pub(crate) async fn download(
    http: &reqwest::Client,
    url: &str,
    expected: &str,
    dest: &Path,
    progress: bool,
) -> anyhow::Result<u64> {
    let shown = redact_url(url);
    let resp = http
        .get(url)
        .timeout(Duration::from_secs(600))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.without_url()))
        .with_context(|| format!("downloading the snapshot from {shown}"))?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        let body: String = body.chars().take(300).collect();
        bail!("downloading the snapshot from {shown}: HTTP {status}: {body}");
    }
    let total = resp.content_length();
    let mut bar = Progress::new(progress && std::io::stderr().is_terminal(), total);
    let mut file = tokio::fs::File::create(dest)
        .await
        .with_context(|| format!("creating {}", dest.display()))?;
    let mut hasher = ContentHasher::new();
    let mut bytes = 0u64;
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| anyhow::anyhow!("{}", e.without_url()))
            .with_context(|| format!("downloading the snapshot from {shown}"))?;
        hasher.update(&chunk);
        file.write_all(&chunk)
            .await
            .with_context(|| format!("writing {}", dest.display()))?;
        bytes += chunk.len() as u64;
        bar.update(bytes);
    }
    file.flush().await?;
    drop(file);
    bar.finish(bytes);
    let actual = hasher.finish();
    if actual != expected {
        bail!(
            "the snapshot from {shown} has sha256 {actual}, but SNAPSHOT_SHA256 is {expected}: \
             refusing to extract it"
        );
    }
    Ok(bytes)
}

/// Extracts the verified archive into `target`, refusing, before anything is written, a
/// snapshot of another project than `project_id`.
pub(crate) async fn extract(
    archive: &Path,
    target: &Path,
    project_id: &str,
    limits: &Limits,
) -> anyhow::Result<Extraction> {
    let limits = limits.clone();
    let archive = archive.to_path_buf();
    let target = target.to_path_buf();
    let expected = project_id.to_owned();
    tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&archive)
            .with_context(|| format!("opening {}", archive.display()))?;
        let accept = |m: &Manifest| {
            if m.project_id == expected {
                return Ok(());
            }
            Err(SnapshotError::WrongProject {
                expected,
                found: m.project_id.clone(),
            })
        };
        fs_sync_core::extract_snapshot(file, &target, &limits, accept)
            .with_context(|| format!("extracting the snapshot into {}", target.display()))
    })
    .await
    .context("the extraction task failed")?
}

/// A one-line progress bar on stderr, drawn only on a terminal.
struct Progress {
    on: bool,
    total: Option<u64>,
    last: Instant,
}

impl Progress {
    fn new(on: bool, total: Option<u64>) -> Progress {
        Progress {
            on,
            total,
            last: Instant::now() - Duration::from_secs(1),
        }
    }

    fn update(&mut self, bytes: u64) {
        if !self.on || self.last.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.last = Instant::now();
        self.draw(bytes);
    }

    fn draw(&self, bytes: u64) {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let line = match self.total {
            Some(t) if t > 0 => {
                let frac = (bytes as f64 / t as f64).min(1.0);
                let filled = (frac * 30.0) as usize;
                format!(
                    "\rsnapshot [{}{}] {:>3}% {:.1}/{:.1} MiB",
                    "#".repeat(filled),
                    " ".repeat(30 - filled),
                    (frac * 100.0) as u32,
                    mib(bytes),
                    mib(t)
                )
            }
            _ => format!("\rsnapshot {:.1} MiB", mib(bytes)),
        };
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(line.as_bytes());
        let _ = err.flush();
    }

    fn finish(&self, bytes: u64) {
        if self.on {
            self.draw(bytes);
            let _ = std::io::stderr().write_all(b"\n");
        }
    }
}
