//! Our snapshot container against the `zip` crate (9.x, deflate through the same flate2/zlib-rs)
//! on the same inputs: build time and archive size, read+verify time, peak heap, determinism of
//! the bytes, and which hostile archives each refuses. The results are summarized in
//! `src/snapshot/mod.rs`.
//!
//! ```text
//! cargo run --release -p fs-sync-core --example zip_compare              # all three parts (~80 s)
//! cargo run --release -p fs-sync-core --example zip_compare -- speed     # or: determinism, hostile
//! ```
//!
//! Both sides get the same manifest and the same files, deflate level 6, small (< 64 B) and
//! already-compressed files stored, a fixed timestamp and mode. Ours also checks every file's size
//! and SHA-256 against the manifest while writing; the `zip` side does not (it cannot). The `zip`
//! read path does what ours does: manifest first, path rules, every entry listed once, size,
//! CRC-32 (the crate's own check) and SHA-256 against the manifest, local headers against the
//! central directory. The hostile archives are those of `tests/snapshot_hostile.rs`, written by
//! Python's zipfile (`python3` must be on the path).

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Instant;

use common::alloc::{peak_heap, Counting};
use common::{source_file, source_tree as tree, PROJECT};

use fs_sync_core::{
    content_hash, extract_snapshot, is_precompressed, read_snapshot, validate_path, ContentHasher,
    Limits, Manifest, ManifestEntry, SnapshotWriter, WriteOptions, MANIFEST_PATH,
};
use zip::read::{ExtractOptions, ZipReadOptions};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Median wall time of `runs` calls, in milliseconds.
fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

// ---------------------------------------------------------------------------------------------
// Inputs: the source-like trees of benches/core.rs and the 64 MiB CSV of bench/extract-memory.mjs.

struct Input {
    name: &'static str,
    files: Vec<(String, Vec<u8>)>,
    manifest: Manifest,
    runs: usize,
}

impl Input {
    fn new(name: &'static str, mut files: Vec<(String, Vec<u8>)>, runs: usize) -> Input {
        files.sort();
        let entries = files
            .iter()
            .map(|(p, b)| ManifestEntry::for_content(p.as_str(), b, 1))
            .collect();
        let manifest = Manifest::new(PROJECT, 1, entries).expect("valid manifest");
        Input {
            name,
            files,
            manifest,
            runs,
        }
    }

    fn bytes(&self) -> u64 {
        self.manifest.total_size()
    }
}

/// 64 MiB of CSV-like rows (as in bench/extract-memory.mjs).
fn big_csv() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::with_capacity((64 << 20) + 64);
    let mut x: u32 = 12345;
    let mut row = 0u64;
    while out.len() < 64 << 20 {
        x = x.wrapping_mul(1103515245).wrapping_add(12345);
        let line = format!(
            "{row},user{},{},2026-12-{}\n",
            x % 9973,
            f64::from(x % 100000) / 100.0,
            1 + (x % 28)
        );
        out.extend_from_slice(line.as_bytes());
        row += 1;
    }
    out.truncate(64 << 20);
    vec![("data/export.csv".to_owned(), out)]
}

// ---------------------------------------------------------------------------------------------
// The two writers and the two verifying readers.

fn ours_build<W: Write>(out: W, input: &Input) -> W {
    let mut w = SnapshotWriter::new(out, input.manifest.clone(), WriteOptions::default()).unwrap();
    for (path, bytes) in &input.files {
        w.add_file(path, bytes).unwrap();
    }
    w.finish().unwrap().0
}

/// Ours, each file given in pieces of `piece` bytes (two passes, see `begin_file`).
fn ours_build_pieces<W: Write>(out: W, input: &Input, piece: usize) -> W {
    let mut w = SnapshotWriter::new(out, input.manifest.clone(), WriteOptions::default()).unwrap();
    for (path, bytes) in &input.files {
        w.begin_file(path).unwrap();
        for p in bytes.chunks(piece) {
            w.measure(p).unwrap();
        }
        w.write_header().unwrap();
        for p in bytes.chunks(piece) {
            w.write_data(p).unwrap();
        }
        w.end_file().unwrap();
    }
    w.finish().unwrap().0
}

/// What makes the `zip` crate's bytes reproducible: a fixed timestamp (`DEFAULT` is 1980-01-01;
/// `default()` is the current time whenever anything in the build enables the crate's `time`
/// feature), the host system and the mode fixed. Compression chosen as ours chooses it.
fn zip_options(path: &str, size: usize) -> SimpleFileOptions {
    let deflate = size >= 64 && !is_precompressed(path);
    SimpleFileOptions::DEFAULT
        .compression_method(if deflate {
            CompressionMethod::Deflated
        } else {
            CompressionMethod::Stored
        })
        .compression_level(deflate.then_some(6))
        .system(zip::System::Unix)
        .unix_permissions(0o644)
}

/// The `zip` crate's writer needs `Seek` (it goes back to fill in each header's CRC-32 and sizes);
/// without it, `new_stream` writes data descriptors, which our format (and reader) refuse.
fn zip_build<W: Write + Seek>(out: W, input: &Input, piece: usize) -> W {
    let mut z = ZipWriter::new(out);
    let json = input.manifest.to_canonical_json();
    z.start_file(MANIFEST_PATH, zip_options(MANIFEST_PATH, json.len()))
        .unwrap();
    z.write_all(&json).unwrap();
    for (path, bytes) in &input.files {
        z.start_file(path.as_str(), zip_options(path, bytes.len()))
            .unwrap();
        for p in bytes.chunks(piece) {
            z.write_all(p).unwrap();
        }
    }
    z.finish().unwrap()
}

/// A seekable writer that keeps nothing: the writers' own memory, without the archive's.
#[derive(Default)]
struct SeekSink {
    pos: u64,
    len: u64,
}

impl Write for SeekSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pos += buf.len() as u64;
        self.len = self.len.max(self.pos);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for SeekSink {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::End(d) => self.len.saturating_add_signed(d),
            SeekFrom::Current(d) => self.pos.saturating_add_signed(d),
        };
        Ok(self.pos)
    }
}

fn ours_read(zip: &[u8], limits: &Limits) -> Result<Manifest, String> {
    read_snapshot(zip, limits, |_| Ok(()), |_, _| Ok(())).map_err(|e| e.to_string())
}

/// The `zip` crate's reader with the checks ours makes.
fn zip_read(zip: &[u8], limits: &Limits) -> Result<Manifest, String> {
    let err = |e: zip::result::ZipError| e.to_string();
    let checked = || ZipReadOptions::new().enforce_header_consistency(true);
    let mut archive = ZipArchive::new(Cursor::new(zip)).map_err(err)?;
    if archive.is_empty() {
        return Err("archive has no entries".into());
    }
    let manifest = {
        let mut first = archive.by_index_with_options(0, checked()).map_err(err)?;
        if first.name().map_err(err)? != MANIFEST_PATH {
            return Err("the manifest is not the first entry".into());
        }
        if first.size() > limits.max_manifest_bytes {
            return Err("manifest too large".into());
        }
        let mut json = Vec::with_capacity(first.size() as usize);
        (&mut first)
            .take(limits.max_manifest_bytes + 1)
            .read_to_end(&mut json)
            .map_err(|e| e.to_string())?;
        Manifest::from_json(&json).map_err(|e| e.to_string())?
    };
    if manifest.files.len() > limits.max_entries {
        return Err("too many files".into());
    }
    if manifest.total_size() > limits.max_total_bytes {
        return Err(format!(
            "declares {} bytes, over the limit",
            manifest.total_size()
        ));
    }
    let mut visited = vec![false; manifest.files.len()];
    let mut buf = vec![0u8; 64 << 10];
    for i in 1..archive.len() {
        let mut file = archive.by_index_with_options(i, checked()).map_err(err)?;
        let name = file.name().map_err(err)?.into_owned();
        if file.is_dir() {
            return Err(format!("directory entry {name:?}"));
        }
        if file.is_symlink() {
            return Err(format!("symbolic link {name:?}"));
        }
        validate_path(&name).map_err(|e| format!("unsafe entry {name:?}: {e}"))?;
        let index = manifest
            .files
            .binary_search_by(|e| e.path.as_str().cmp(&name))
            .map_err(|_| format!("{name:?} is not in the manifest"))?;
        if std::mem::replace(&mut visited[index], true) {
            return Err(format!("duplicate entry {name:?}"));
        }
        let expected = &manifest.files[index];
        if file.size() != expected.size {
            return Err(format!("{name:?}: header size differs from the manifest"));
        }
        let mut hasher = ContentHasher::new();
        let mut produced = 0u64;
        let mut data = (&mut file).take(expected.size + 1);
        loop {
            let n = data.read(&mut buf).map_err(|e| format!("{name:?}: {e}"))?;
            if n == 0 {
                break;
            }
            produced += n as u64;
            hasher.update(&buf[..n]);
        }
        if produced != expected.size {
            return Err(format!(
                "{name:?} is {produced} bytes, not {}",
                expected.size
            ));
        }
        if hasher.finish() != expected.content_hash {
            return Err(format!("{name:?}: SHA-256 differs from the manifest"));
        }
    }
    if let Some(i) = visited.iter().position(|v| !v) {
        return Err(format!("{:?} is missing", manifest.files[i].path));
    }
    Ok(manifest)
}

// ---------------------------------------------------------------------------------------------
// Speed, size and memory.

fn kib(bytes: u64) -> String {
    if bytes >= 10 << 20 {
        format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
    } else {
        format!("{:.0} KiB", bytes as f64 / 1024.0)
    }
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn speed() {
    let inputs = [
        Input::new("100 files", tree(100), 30),
        Input::new("1,000 files", tree(1_000), 10),
        Input::new("10,000 files", tree(10_000), 5),
        Input::new("one 64 MiB file", big_csv(), 5),
    ];
    println!("## speed, size, peak heap (median of N runs, in memory)\n");
    println!("| input | build ms: ours / zip | of which SHA-256 (ours checks it) | archive bytes: ours / zip | read+verify ms: ours / zip | build heap: ours / zip | read heap: ours / zip |");
    println!("|---|---|---|---|---|---|---|");
    for input in &inputs {
        let ours = ours_build(Vec::new(), input);
        let theirs = zip_build(Cursor::new(Vec::new()), input, usize::MAX).into_inner();
        // Each reader accepts both archives: the formats are the same subset of zip.
        for zip in [&ours, &theirs] {
            let a = ours_read(zip, &Limits::default()).unwrap();
            let b = zip_read(zip, &Limits::default()).unwrap();
            assert!(a == input.manifest && b == input.manifest);
        }
        let build_ours = median_ms(input.runs, || drop(ours_build(Vec::new(), input)));
        let build_zip = median_ms(input.runs, || {
            drop(zip_build(Cursor::new(Vec::new()), input, usize::MAX))
        });
        let hash = median_ms(input.runs, || {
            for (_, bytes) in &input.files {
                std::hint::black_box(content_hash(bytes));
            }
        });
        let read_ours = median_ms(input.runs, || {
            ours_read(&ours, &Limits::default()).unwrap();
        });
        let read_zip = median_ms(input.runs, || {
            zip_read(&theirs, &Limits::default()).unwrap();
        });
        let (_, heap_build_ours) = peak_heap(|| ours_build(io::sink(), input));
        let (_, heap_build_zip) = peak_heap(|| zip_build(SeekSink::default(), input, usize::MAX));
        let (_, heap_read_ours) = peak_heap(|| ours_read(&ours, &Limits::default()).unwrap());
        let (_, heap_read_zip) = peak_heap(|| zip_read(&theirs, &Limits::default()).unwrap());
        println!(
            "| {} ({}, {} runs) | {build_ours:.1} / {build_zip:.1} | {hash:.1} | {} / {} | {read_ours:.1} / {read_zip:.1} | {} / {} | {} / {} |",
            input.name,
            kib(input.bytes()),
            input.runs,
            grouped(ours.len() as u64),
            grouped(theirs.len() as u64),
            kib(heap_build_ours as u64),
            kib(heap_build_zip as u64),
            kib(heap_read_ours as u64),
            kib(heap_read_zip as u64),
        );
    }
    // A file too large to hold compressed is given in pieces: ours in two passes (its header,
    // which precedes the data, holds the CRC-32 and compressed size); the zip crate seeks back.
    let big = &inputs[3];
    let piece = 64 << 10;
    let ours_ms = median_ms(big.runs, || {
        ours_build_pieces(io::sink(), big, piece);
    });
    let zip_ms = median_ms(big.runs, || {
        zip_build(SeekSink::default(), big, piece);
    });
    let (_, ours_heap) = peak_heap(|| ours_build_pieces(io::sink(), big, piece));
    let (_, zip_heap) = peak_heap(|| zip_build(SeekSink::default(), big, piece));
    println!(
        "| one 64 MiB file in 64 KiB pieces (ours: two passes) | {ours_ms:.1} / {zip_ms:.1} | | | | {} / {} | |",
        kib(ours_heap as u64),
        kib(zip_heap as u64)
    );
    println!();
}

// ---------------------------------------------------------------------------------------------
// Determinism.

fn determinism() {
    let small = Input::new("1,000 files", tree(1_000), 0);
    let big = Input::new("one 64 MiB file", big_csv(), 0);
    let same = |a: &[u8], b: &[u8]| if a == b { "same bytes" } else { "DIFFERENT" };
    println!("## determinism\n");
    println!("| check | ours | zip |");
    println!("|---|---|---|");
    let zip_whole =
        |input: &Input| zip_build(Cursor::new(Vec::new()), input, usize::MAX).into_inner();
    println!(
        "| 1,000 files built twice | {} | {} |",
        same(
            &ours_build(Vec::new(), &small),
            &ours_build(Vec::new(), &small)
        ),
        same(&zip_whole(&small), &zip_whole(&small)),
    );
    let ours_big = ours_build(Vec::new(), &big);
    let zip_big = zip_whole(&big);
    for piece in [1 << 20, 1000] {
        println!(
            "| 64 MiB file given whole vs in {piece}-byte pieces | {} | {} |",
            same(&ours_big, &ours_build_pieces(Vec::new(), &big, piece)),
            same(
                &zip_big,
                &zip_build(Cursor::new(Vec::new()), &big, piece).into_inner()
            ),
        );
    }
    // `FileOptions::default()` rather than the pinned options above.
    let mut z = ZipWriter::new(Cursor::new(Vec::new()));
    z.start_file("a.txt", SimpleFileOptions::default()).unwrap();
    z.write_all(b"hello").unwrap();
    let archive = ZipArchive::new(Cursor::new(z.finish().unwrap().into_inner())).unwrap();
    let entry = archive.by_index_data(0).unwrap();
    println!(
        "| `zip` with `FileOptions::default()` | — | timestamp {}, system {:?} (the host's) |",
        entry
            .last_modified()
            .map_or_else(|| "none".to_owned(), |t| t.to_string()),
        entry.system(),
    );
    println!();
}

// ---------------------------------------------------------------------------------------------
// Hostile archives.

/// Where an absolute-path entry would land if written.
const ABSOLUTE: &str = "/tmp/fs-sync-zip-compare-evil.txt";

/// An archive written by Python's zipfile, as tests/snapshot_hostile.rs writes its fixtures.
fn python_zip(dir: &Path, spec: &str, manifest: &str) -> Vec<u8> {
    let out = dir.join("fixture.zip");
    let args = [out.to_str().unwrap(), spec, manifest, "0", PROJECT];
    common::python(common::HOSTILE_WRITER, &args);
    std::fs::read(out).unwrap()
}

/// A small valid snapshot of ours, for the cases made by editing bytes.
fn ours_sample() -> Vec<u8> {
    let input = Input::new(
        "sample",
        vec![
            ("package.json".into(), br#"{"name":"demo"}"#.to_vec()),
            (
                "src/App.tsx".into(),
                b"export default function App() { return null }\n".repeat(40),
            ),
            ("src/main.tsx".into(), source_file(1, 3000)),
        ],
        0,
    );
    ours_build(Vec::new(), &input)
}

/// Makes the local header and central record of `name` declare `size`.
fn declare_size(zip: &mut [u8], name: &[u8], size: u32) {
    let at: Vec<usize> = zip
        .windows(name.len())
        .enumerate()
        .filter(|(_, w)| *w == name)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 2);
    zip[at[0] - 30 + 22..at[0] - 30 + 26].copy_from_slice(&size.to_le_bytes());
    zip[at[1] - 46 + 24..at[1] - 46 + 28].copy_from_slice(&size.to_le_bytes());
}

struct Case {
    name: &'static str,
    zip: Vec<u8>,
    limits: Limits,
}

fn cases(dir: &Path) -> Vec<Case> {
    let ok_manifest = r#"[{"path":"ok.txt","data":"fine"}]"#;
    let ok = r#"{"name":"ok.txt","data":"fine"}"#;
    let py = |spec: String, manifest: &str| python_zip(dir, &spec, manifest);
    let mut out = vec![
        Case {
            name: "zip-slip `../evil.txt`",
            zip: py(
                format!(r#"[{ok},{{"name":"../evil.txt","data":"x"}}]"#),
                ok_manifest,
            ),
            limits: Limits::default(),
        },
        Case {
            name: "absolute path",
            zip: py(
                format!(r#"[{ok},{{"name":"{ABSOLUTE}","data":"x"}}]"#),
                ok_manifest,
            ),
            limits: Limits::default(),
        },
        Case {
            name: "backslash `..\\evil.txt`",
            zip: py(
                format!(r#"[{ok},{{"name":"..\\\\evil.txt","data":"x"}}]"#),
                ok_manifest,
            ),
            limits: Limits::default(),
        },
        Case {
            name: "symlink `link` → /etc/passwd (listed, right hash)",
            zip: py(
                format!(r#"[{ok},{{"name":"link","data":"/etc/passwd","link":true}}]"#),
                r#"[{"path":"ok.txt","data":"fine"},{"path":"link","data":"/etc/passwd"}]"#,
            ),
            limits: Limits::default(),
        },
        Case {
            name: "duplicate entry",
            zip: py(format!("[{ok},{ok}]"), ok_manifest),
            limits: Limits::default(),
        },
        Case {
            name: "directory entry",
            zip: py(
                format!(r#"[{ok},{{"name":"dir/","dir":true}}]"#),
                ok_manifest,
            ),
            limits: Limits::default(),
        },
    ];
    let mut mismatch = ours_sample();
    let name = b"src/App.tsx";
    let at: Vec<usize> = mismatch
        .windows(name.len())
        .enumerate()
        .filter(|(_, w)| w == name)
        .map(|(i, _)| i)
        .collect();
    mismatch[at[1] + 4] = b'B';
    out.push(Case {
        name: "central directory name ≠ local header name",
        zip: mismatch,
        limits: Limits::default(),
    });
    let mut liar = py(
        r#"[{"name":"liar.bin","zeros":4194304}]"#.into(),
        r#"[{"path":"liar.bin","zeros":10,"data":""}]"#,
    );
    declare_size(&mut liar, b"liar.bin", 10);
    out.push(Case {
        name: "lying size (4 MiB inflates, 10 B declared everywhere)",
        zip: liar,
        limits: Limits::default(),
    });
    let bomb_spec: Vec<String> = (0..9)
        .map(|i| format!(r#"{{"name":"z{i}.bin","zeros":1048576}}"#))
        .collect();
    let bomb_manifest: Vec<String> = (0..9)
        .map(|i| format!(r#"{{"path":"z{i}.bin","zeros":1048576,"data":""}}"#))
        .collect();
    out.push(Case {
        name: "bomb: 9 × 1 MiB of zeros (9 KiB zipped), limit 8 MiB",
        zip: py(
            format!("[{}]", bomb_spec.join(",")),
            &format!("[{}]", bomb_manifest.join(",")),
        ),
        limits: Limits {
            max_total_bytes: 8 << 20,
            ..Limits::default()
        },
    });
    let sample = ours_sample();
    for (cut, name) in [
        (10, "truncated inside the end record"),
        (30, "truncated inside the central directory"),
        (sample.len() - 200, "truncated inside file data"),
    ] {
        out.push(Case {
            name,
            zip: sample[..sample.len() - cut].to_vec(),
            limits: Limits::default(),
        });
    }
    out
}

/// What an extraction into `root/project` did: refused or not, and whether anything landed
/// outside it, became a link, or stayed behind after a refusal.
fn judge_extraction(root: &Path, result: Result<(), String>) -> String {
    let target = root.join("project");
    let mut harm = Vec::new();
    if root.join("evil.txt").exists() {
        harm.push("WROTE ../evil.txt".to_owned());
    }
    if Path::new(ABSOLUTE).exists() {
        let _ = std::fs::remove_file(ABSOLUTE);
        harm.push(format!("WROTE {ABSOLUTE}"));
    }
    let mut files = 0;
    let mut links = 0;
    let mut odd = Vec::new();
    let mut stack = vec![target.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let kind = entry.file_type().unwrap();
            if kind.is_symlink() {
                links += 1;
            } else if kind.is_dir() {
                stack.push(entry.path());
            } else {
                files += 1;
                let rel = entry
                    .path()
                    .strip_prefix(&target)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                if rel != MANIFEST_PATH && rel != "ok.txt" && odd.len() < 2 {
                    odd.push(rel);
                }
            }
        }
    }
    if links > 0 {
        harm.push("MADE A SYMLINK".to_owned());
    }
    let verdict = match result {
        Ok(()) if odd.is_empty() => format!("accepted ({files} files)"),
        Ok(()) => format!("accepted ({files} files: {}…)", odd.join(", ")),
        Err(e) if files > 0 => format!("refused, {files} files left: {}", short(&e)),
        Err(e) => format!("refused: {}", short(&e)),
    };
    if harm.is_empty() {
        verdict
    } else {
        format!("{verdict}; {}", harm.join(", "))
    }
}

fn short(e: &str) -> String {
    let e = e.replace('|', "/").replace('\n', " ");
    match e.char_indices().nth(70) {
        Some((at, _)) => format!("{}…", &e[..at]),
        None => e,
    }
}

fn hostile() {
    let dir = tempfile::tempdir().unwrap();
    println!("## hostile archives (Python's zipfile; our archives edited)\n");
    println!("| archive | ours: `extract_snapshot` | zip: open + read every entry | zip: `extract` (defaults) | zip: `extract`, size limit + header consistency | zip + our checks (`zip_read` above) |");
    println!("|---|---|---|---|---|---|");
    for (n, case) in cases(dir.path()).into_iter().enumerate() {
        let run = |label: &str, f: &dyn Fn(&Path) -> Result<(), String>| {
            let root = dir.path().join(format!("{n}-{label}"));
            std::fs::create_dir_all(root.join("project")).unwrap();
            let result = f(&root.join("project"));
            judge_extraction(&root, result)
        };
        let ours = run("ours", &|target| {
            extract_snapshot(&case.zip[..], target, &case.limits, |_| Ok(()))
                .map(drop)
                .map_err(|e| e.to_string())
        });
        let read_all = match zip_read_all(&case.zip) {
            Ok(bytes) => format!("accepted ({bytes} B out)"),
            Err(e) => format!("refused: {}", short(&e)),
        };
        let extract = run("zip", &|target| {
            ZipArchive::new(Cursor::new(&case.zip[..]))
                .and_then(|mut a| a.extract(target))
                .map_err(|e| e.to_string())
        });
        let hardened = run("zip-hardened", &|target| {
            let options = ExtractOptions::default()
                .with_size_limit(case.limits.max_total_bytes)
                .enforce_header_consistency(true);
            ZipArchive::new(Cursor::new(&case.zip[..]))
                .and_then(|mut a| a.extract_with_options(target, options))
                .map_err(|e| e.to_string())
        });
        let checked = match zip_read(&case.zip, &case.limits) {
            Ok(_) => "accepted".to_owned(),
            Err(e) => format!("refused: {}", short(&e)),
        };
        println!(
            "| {} | {ours} | {read_all} | {extract} | {hardened} | {checked} |",
            case.name
        );
    }
    println!();
}

/// The `zip` crate's reader as an application would use it: open, read every entry to its end.
fn zip_read_all(zip: &[u8]) -> Result<u64, String> {
    let mut archive = ZipArchive::new(Cursor::new(zip)).map_err(|e| e.to_string())?;
    let mut total = 0;
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).map_err(|e| e.to_string())?;
        total += io::copy(&mut file, &mut io::sink()).map_err(|e| e.to_string())?;
    }
    Ok(total)
}

fn main() {
    let part = std::env::args().nth(1);
    let all = part.is_none();
    let want = |name: &str| all || part.as_deref() == Some(name);
    if want("speed") {
        speed();
    }
    if want("determinism") {
        determinism();
    }
    if want("hostile") {
        hostile();
    }
    if !all && !["speed", "determinism", "hostile"].contains(&part.as_deref().unwrap_or("")) {
        eprintln!("usage: zip_compare [speed | determinism | hostile]");
        std::process::exit(2);
    }
}
