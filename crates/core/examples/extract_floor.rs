//! Verified extraction next to its write floor, interleaved in one process, for
//! `bench/extract-floor.mjs`.
//!
//! ```text
//! extract_floor <zip> <dir> [rounds]
//! ```
//!
//! The floor writes the snapshot's tree (same paths, same bytes, read from the archive before the
//! clock starts) into a new folder under `<dir>` with a tight loop: each folder created once,
//! then create, write, close per file; no zip, no hashing, no verification. fs-sync extracts the
//! archive (read from its file, as the agent does) into another new folder under `<dir>` with
//! `extract_snapshot`. Each round runs both, alternating which goes first. Every tree stays until
//! the caller removes `<dir>`: on an ext4 without a journal (this VM's disk), creating a file right
//! after many were deleted scans past the recently deleted inodes, so removing a round's trees
//! would slow the next round's floor and extraction alike. Each round also times reading and
//! verifying the archive without writing anything (the compute part). Prints one JSON line: the
//! files, bytes and, for each of floor, extract and verify, every round's wall milliseconds
//! (`<name>_ms`) and CPU milliseconds of all the process's threads (`<name>_cpu_ms`).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use fs_sync_core::{extract_snapshot, read_snapshot, Limits};

type BoxError = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("extract_floor: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (zip, dir, rounds) = match args.as_slice() {
        [zip, dir] => (zip, dir, 7),
        [zip, dir, rounds] => (zip, dir, rounds.parse()?),
        _ => return Err("usage: extract_floor <zip> <dir> [rounds]".into()),
    };
    let (zip, dir) = (Path::new(zip), Path::new(dir));
    let files = read_files(zip)?;
    let bytes: usize = files.iter().map(|(_, b)| b.len()).sum();
    let mut times: [Vec<(f64, f64)>; 3] = Default::default();
    for round in 0..rounds {
        let floor_dir = dir.join(format!("floor-{round}"));
        let extract_dir = dir.join(format!("extract-{round}"));
        let floor = || timed(|| write_floor(&files, &floor_dir));
        let extract = || {
            timed(|| {
                extract_snapshot(File::open(zip)?, &extract_dir, &Limits::default(), |_| {
                    Ok(())
                })
                .map(drop)
                .map_err(BoxError::from)
            })
        };
        let (f, e) = if round % 2 == 0 {
            let f = floor()?;
            (f, extract()?)
        } else {
            let e = extract()?;
            (floor()?, e)
        };
        times[0].push(f);
        times[1].push(e);
        times[2].push(timed(|| verify(zip))?);
    }
    let list = |v: &[(f64, f64)], cpu: bool| {
        v.iter()
            .map(|&(wall, cpu_ms)| format!("{:.3}", if cpu { cpu_ms } else { wall }))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut json = format!(r#"{{"files":{},"bytes":{bytes}"#, files.len());
    for (name, t) in ["floor", "extract", "verify"].iter().zip(&times) {
        json += &format!(
            r#","{name}_ms":[{}],"{name}_cpu_ms":[{}]"#,
            list(t, false),
            list(t, true)
        );
    }
    println!("{json}}}");
    Ok(())
}

/// Wall and CPU milliseconds (every thread of the process, user and system) `f` took.
fn timed(f: impl FnOnce() -> Result<(), BoxError>) -> Result<(f64, f64), BoxError> {
    let (start, cpu) = (Instant::now(), cpu_ms());
    f()?;
    Ok((start.elapsed().as_secs_f64() * 1000.0, cpu_ms() - cpu))
}

fn cpu_ms() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1000.0 + t.tv_usec as f64 / 1000.0;
    ms(usage.ru_utime) + ms(usage.ru_stime)
}

/// The archive's files in archive order, verified once, outside any clock.
fn read_files(zip: &Path) -> Result<Vec<(String, Vec<u8>)>, BoxError> {
    let mut files = Vec::new();
    read_snapshot(
        File::open(zip)?,
        &Limits::default(),
        |_| Ok(()),
        |entry, data| {
            let mut bytes = Vec::with_capacity(entry.size as usize);
            data.read_to_end(&mut bytes)?;
            files.push((entry.path.clone(), bytes));
            Ok(())
        },
    )?;
    Ok(files)
}

/// Reading and verifying alone, writing nothing: the compute part of an extraction. Data is read
/// through a buffer as large as extraction's for large files.
fn verify(zip: &Path) -> Result<(), BoxError> {
    let mut buf = vec![0u8; 1 << 20];
    read_snapshot(
        File::open(zip)?,
        &Limits::default(),
        |_| Ok(()),
        |_, data| {
            while data.read(&mut buf)? > 0 {}
            Ok(())
        },
    )?;
    Ok(())
}

/// The floor: every folder once, then create, write, close per file.
fn write_floor(files: &[(String, Vec<u8>)], root: &Path) -> Result<(), BoxError> {
    fs::create_dir(root)?;
    let mut made: HashSet<PathBuf> = HashSet::new();
    for (path, bytes) in files {
        let dest = root.join(path);
        if let Some(parent) = dest.parent() {
            if !made.contains(parent) {
                fs::create_dir_all(parent)?;
                made.insert(parent.to_path_buf());
            }
        }
        File::create(&dest)?.write_all(bytes)?;
    }
    Ok(())
}
