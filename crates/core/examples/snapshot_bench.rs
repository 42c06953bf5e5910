//! Measures snapshot build, extraction and hashing on a tree on disk, for `bench/*.mjs`.
//!
//! ```text
//! snapshot_bench build <srcdir> <out.zip>     # read the tree into memory, then time hashing + zip
//! snapshot_bench extract <zip> <outdir>       # time a verified extraction
//! snapshot_bench hash <dir>                   # read files into memory, then time content_hash
//! ```
//! Each prints one JSON line: `{"op","ms","peak_rss_kb","bytes","files"}`.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use fs_sync_core::{
    content_hash, extract_snapshot, Limits, Manifest, ManifestEntry, SnapshotWriter, WriteOptions,
};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("snapshot_bench: {e}");
            ExitCode::from(2)
        }
    }
}

type BoxError = Box<dyn std::error::Error>;

fn run() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["build", src, out] => build(Path::new(src), Path::new(out)),
        ["extract", zip, out] => extract(Path::new(zip), Path::new(out)),
        ["hash", dir] => hash(Path::new(dir)),
        _ => Err(
            "usage: snapshot_bench build <srcdir> <out.zip> | extract <zip> <outdir> | hash <dir>"
                .into(),
        ),
    }
}

fn build(src: &Path, out: &Path) -> Result<(), BoxError> {
    let files = read_tree(src)?;
    let start = Instant::now();
    let entries = files
        .iter()
        .map(|(path, bytes)| ManifestEntry::for_content(path.as_str(), bytes, 1))
        .collect();
    let manifest = Manifest::new("00000000-0000-4000-8000-000000000000", 1, entries)?;
    let sink = BufWriter::with_capacity(1 << 20, File::create(out)?);
    let mut writer = SnapshotWriter::new(sink, manifest, WriteOptions::default())?;
    for (path, bytes) in &files {
        writer.add_file(path, bytes)?;
    }
    let (sink, summary) = writer.finish()?;
    sink.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    report("build", start, summary.bytes, files.len());
    Ok(())
}

fn extract(zip: &Path, out: &Path) -> Result<(), BoxError> {
    let bytes = std::fs::metadata(zip)?.len();
    let start = Instant::now();
    let done = extract_snapshot(File::open(zip)?, out, &Limits::default(), |_| Ok(()))?;
    report("extract", start, bytes, done.manifest.files.len());
    Ok(())
}

fn hash(dir: &Path) -> Result<(), BoxError> {
    let files = read_tree(dir)?;
    let bytes: u64 = files.iter().map(|(_, b)| b.len() as u64).sum();
    let start = Instant::now();
    let mut acc = 0u8;
    for (_, b) in &files {
        acc ^= content_hash(b).as_bytes()[0];
    }
    std::hint::black_box(acc);
    report("hash", start, bytes, files.len());
    Ok(())
}

fn report(op: &str, start: Instant, bytes: u64, files: usize) {
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    println!(
        r#"{{"op":"{op}","ms":{ms:.3},"peak_rss_kb":{},"bytes":{bytes},"files":{files}}}"#,
        peak_rss_kb()
    );
}

/// Peak resident set size from /proc (Linux); 0 elsewhere.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn read_tree(root: &Path) -> Result<Vec<(String, Vec<u8>)>, BoxError> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(root)?
                    .to_str()
                    .ok_or("non-UTF-8 file name")?
                    .to_owned();
                out.push((rel, std::fs::read(&path)?));
            }
        }
    }
    out.sort();
    Ok(out)
}
