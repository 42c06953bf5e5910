//! Cutting, building, storing and signing a project snapshot (docs/contracts.md "Snapshot").
//!
//! 1. **Cut**: `get_project_snapshot`'s file list and `as_of_seq` from one consistent read,
//!    handed out by `find_project_snapshot` when there is no archive to reuse (with the contents
//!    too for a project of at most [`BATCH_BYTES`]). The [`Manifest`] (and so the snapshot id)
//!    follows from the list alone.
//! 2. **Reuse**: the edge records every archive it stores (`record_project_snapshot`: snapshot id,
//!    `as_of_seq`, SHA-256, size), and `find_project_snapshot` offers that record while the project's
//!    seq has not moved and the object is still stored, so an unchanged project's session reads
//!    neither the project nor the archive (`handlers::ensure_snapshot`). The writer is
//!    deterministic: an archive found under the same name by the upload (a concurrent build) is
//!    the same one, streamed once through SHA-256 for `sha256`/`size`.
//! 3. **Build**: otherwise the archive is written by [`SnapshotWriter`] straight into the Storage
//!    upload's request body (a `ReadableStream` pulled by `fetch`). Text contents are read in
//!    batches by exact `(path, version)` through `get_project_files` (versions are immutable, and
//!    the writer checks every file's size and SHA-256 against the manifest, so the archive is exactly
//!    the cut); binaries one at a time from Storage, those over [`WHOLE_BINARY_MAX`] streamed
//!    twice (the zip header before their data needs its CRC-32 and compressed size). The limit
//!    applies to the archive's bytes, the ones stored: refused up front when the headers and the
//!    files stored as they are already exceed it, else the moment the archive does. Memory holds
//!    one batch (or one small binary, or one piece of a large one) and the compressed bytes not
//!    yet sent, never the archive or the whole project, whatever their sizes.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, Write};
use std::rc::Rc;

use fs_sync_core::{
    infer_file_type, ContentHasher, Manifest, ManifestEntry, ManifestError, SnapshotError,
    SnapshotWriter, WriteOptions,
};
use futures_util::{StreamExt, TryStreamExt};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::json;
use wasm_bindgen::JsValue;

use crate::error::AppError;
use crate::supabase::{Supabase, Uploaded};

/// Text contents read per `get_project_files` call: at most this many bytes…
pub(crate) const BATCH_BYTES: u64 = 4 << 20;
/// …and at most this many files.
const BATCH_FILES: usize = 500;
/// Deflate level of the files of an archive that fits the limit whatever the level. zlib's default
/// (6) spends two thirds of a build's CPU in deflate for source text; 2 costs about a third less
/// there, for archives about 5% larger (bench:edge). An archive that may not fit keeps 6, so every
/// project whose archive fitted still does. Consumers verify sizes, CRC-32 and SHA-256 of the
/// uncompressed data and the snapshot id is the manifest's hash: the level only has to follow from
/// the state for one state to give one archive.
const FAST_DEFLATE_LEVEL: u32 = 2;
/// Deflate level of an archive of at most [`SMALL_ARCHIVE`] bytes at any level (a small
/// project's): 1 costs about a quarter less CPU than 2 (bench:edge at 100 files: 12.0 vs 16.5 ms
/// of workerd CPU per build) for archives about a quarter larger, which at this size is tens of
/// kilobytes; on larger archives the quarter is megabytes every container downloads.
const SMALL_DEFLATE_LEVEL: u32 = 1;
const SMALL_ARCHIVE: u64 = 1 << 20;
/// Binaries up to this size are read whole; larger ones are streamed, twice, in the pieces Storage
/// sends (one extra download buys memory bounded by a piece).
const WHOLE_BINARY_MAX: u64 = 1 << 20;

/// One file of `get_project_snapshot`'s answer (with its content when the cut carries contents).
#[derive(Debug, Deserialize)]
struct CutFile {
    file_path: String,
    content_hash: Option<String>,
    version: i64,
    #[serde(default)]
    file_type: Option<String>,
    size_bytes: i64,
    #[serde(default)]
    storage_path: Option<String>,
    #[serde(default)]
    content: Option<String>,
}

impl CutFile {
    /// Its manifest entry, its Storage object if it is a binary, and its content if the cut
    /// carried it.
    fn into_entry(self) -> Result<(ManifestEntry, Option<String>, Option<String>), String> {
        let content_hash = self
            .content_hash
            .ok_or_else(|| format!("file {:?} has no content_hash", self.file_path))?;
        let (Ok(size), Ok(version)) = (u64::try_from(self.size_bytes), u64::try_from(self.version))
        else {
            return Err(format!(
                "file {:?} has a negative size or version",
                self.file_path
            ));
        };
        let file_type = self
            .file_type
            .unwrap_or_else(|| infer_file_type(&self.file_path).as_str().to_owned());
        let entry = ManifestEntry {
            content_hash,
            file_type,
            path: self.file_path,
            size,
            version,
        };
        Ok((entry, self.storage_path, self.content))
    }
}

/// The cut's files, read entry by entry straight into manifest entries (the file list is the
/// largest thing a build holds, up to 65,534 entries: it is held once): the entries, the Storage
/// object of each binary by path, and the text contents the cut carried (a small project's).
#[derive(Debug, Default)]
pub(crate) struct CutFiles {
    entries: Vec<ManifestEntry>,
    binaries: HashMap<String, String>,
    contents: HashMap<String, String>,
}

impl<'de> Deserialize<'de> for CutFiles {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Files;
        impl<'de> Visitor<'de> for Files {
            type Value = CutFiles;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of files")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CutFiles, A::Error> {
                let mut files = CutFiles::default();
                while let Some(file) = seq.next_element::<CutFile>()? {
                    let (entry, source, content) = file.into_entry().map_err(de::Error::custom)?;
                    if let Some(source) = source {
                        files.binaries.insert(entry.path.clone(), source);
                    } else if let Some(content) = content {
                        files.contents.insert(entry.path.clone(), content);
                    }
                    files.entries.push(entry);
                }
                Ok(files)
            }
        }
        deserializer.deserialize_seq(Files)
    }
}

/// `get_project_snapshot`'s answer.
#[derive(Debug, Deserialize)]
pub(crate) struct Cut {
    pub(crate) project_id: String,
    pub(crate) as_of_seq: i64,
    pub(crate) files: CutFiles,
}

/// A snapshot to build or reuse: the manifest, and where each file's bytes come from.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) manifest: Manifest,
    /// `path → "<bucket>/<object>"` for every binary.
    pub(crate) binaries: HashMap<String, String>,
    /// Text contents the cut carried, by path: read from the database with the file list.
    pub(crate) contents: HashMap<String, String>,
    pub(crate) snapshot_id: String,
}

impl Plan {
    /// The archive's object name inside the snapshot bucket.
    pub(crate) fn object_name(&self) -> String {
        format!("{}/{}.zip", self.manifest.project_id, self.snapshot_id)
    }
}

/// Turns the cut into a [`Plan`] (files sorted by the bytes of their paths; the database sorts by
/// its collation); refuses what a snapshot cannot carry.
pub(crate) fn plan(cut: Cut) -> Result<Plan, AppError> {
    let as_of_seq = u64::try_from(cut.as_of_seq)
        .map_err(|_| AppError::Upstream("as_of_seq is negative".into()))?;
    let manifest =
        Manifest::new(cut.project_id, as_of_seq, cut.files.entries).map_err(|e| match e {
            ManifestError::Path(p) => AppError::Invalid(format!(
                "the project holds a file a snapshot cannot carry: {p}"
            )),
            other => {
                AppError::Upstream(format!("the project's file list is inconsistent: {other}"))
            }
        })?;
    let snapshot_id = snapshot_id(&manifest);
    Ok(Plan {
        manifest,
        binaries: cut.files.binaries,
        contents: cut.files.contents,
        snapshot_id,
    })
}

/// [`Manifest::snapshot_id`], hashed as the canonical JSON is serialized rather than from a copy
/// of it (megabytes for a large project, and Wasm memory never shrinks).
fn snapshot_id(manifest: &Manifest) -> String {
    struct Hashing(ContentHasher);
    impl Write for Hashing {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.0.update(data);
            Ok(data.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut hashing = Hashing(ContentHasher::new());
    serde_json::to_writer(&mut hashing, manifest).expect("a manifest always serializes");
    hashing.0.finish()
}

/// One unit of work while building: text files `[start, end)` in one RPC, or one binary, read
/// whole or (over [`WHOLE_BINARY_MAX`]) streamed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Text(usize, usize),
    Binary(usize),
    LargeBinary(usize),
}

/// Splits the files into [`Step`]s in manifest order.
pub(crate) fn steps(
    files: &[ManifestEntry],
    binaries: &HashMap<String, String>,
    max_bytes: u64,
    max_files: usize,
) -> Vec<Step> {
    let mut out = Vec::new();
    let mut start = None::<usize>;
    let mut bytes = 0u64;
    for (i, entry) in files.iter().enumerate() {
        if binaries.contains_key(&entry.path) {
            if let Some(s) = start.take() {
                out.push(Step::Text(s, i));
            }
            out.push(if entry.size > WHOLE_BINARY_MAX {
                Step::LargeBinary(i)
            } else {
                Step::Binary(i)
            });
            bytes = 0;
            continue;
        }
        if let Some(s) = start {
            if i - s >= max_files || bytes + entry.size > max_bytes {
                out.push(Step::Text(s, i));
                start = Some(i);
                bytes = 0;
            }
        } else {
            start = Some(i);
            bytes = 0;
        }
        bytes += entry.size;
    }
    if let Some(s) = start {
        out.push(Step::Text(s, files.len()));
    }
    out
}

/// What the archive's bytes went through on their way out.
#[derive(Default)]
pub(crate) struct Output {
    /// `None` once the caller hashes the bytes it takes instead ([`Sink::hashed_elsewhere`]).
    hasher: Option<ContentHasher>,
    bytes: u64,
    pending: Vec<u8>,
    limit: u64,
    /// Set when a write would have taken the archive past `limit`: the size it would have reached.
    over_limit: Option<u64>,
}

/// The [`Write`] the [`SnapshotWriter`] writes into: hashes, counts, enforces the size limit and
/// keeps the bytes until the upload stream takes them.
#[derive(Clone)]
pub(crate) struct Sink(Rc<RefCell<Output>>);

impl Sink {
    pub(crate) fn new(limit: u64) -> Sink {
        Sink(Rc::new(RefCell::new(Output {
            limit,
            hasher: Some(ContentHasher::new()),
            ..Output::default()
        })))
    }

    /// Stops hashing here: the caller hashes what it takes.
    fn hashed_elsewhere(&self) {
        self.0.borrow_mut().hasher = None;
    }

    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut self.0.borrow_mut().pending)
    }

    /// `(sha256 hex unless hashed elsewhere, bytes)` of everything written.
    pub(crate) fn finish(&self) -> (Option<String>, u64) {
        let out = self.0.borrow();
        (out.hasher.clone().map(ContentHasher::finish), out.bytes)
    }

    /// The archive size a refused write would have reached, once one was refused.
    fn over_limit(&self) -> Option<u64> {
        self.0.borrow().over_limit
    }
}

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut out = self.0.borrow_mut();
        let reached = out.bytes + data.len() as u64;
        if reached > out.limit {
            out.over_limit = Some(reached);
            return Err(io::Error::other("snapshot archive over the size limit"));
        }
        if let Some(hasher) = out.hasher.as_mut() {
            hasher.update(data);
        }
        out.bytes = reached;
        out.pending.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What a finished snapshot looks like to the caller.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SnapshotInfo {
    pub(crate) snapshot_id: String,
    pub(crate) signed_url: String,
    /// RFC 3339, when `signed_url` stops working.
    pub(crate) expires_at: String,
    pub(crate) sha256: String,
    pub(crate) size: u64,
    pub(crate) as_of_seq: u64,
    pub(crate) file_count: usize,
    /// true: the stored archive was reused; false: it was built now.
    pub(crate) reused: bool,
}

/// 413 for an archive of at least `reached` bytes; `when` says how far the build had come.
fn too_large(reached: u64, limit: u64, bucket: &str, when: &str) -> AppError {
    AppError::TooLarge(format!(
        "snapshot archive is at least {reached} bytes, over the {bucket} limit of {limit} bytes \
         ({when})"
    ))
}

/// Starts the archive for `plan`'s manifest, writing into a [`Sink`] that holds it to `limit`
/// bytes. Refuses, before any content is read, a project whose archive cannot fit: one with more
/// files than a snapshot holds, or whose headers, names and files stored as they are already
/// exceed `limit`.
pub(crate) fn start(
    manifest: Manifest,
    limit: u64,
    bucket: &str,
) -> Result<(SnapshotWriter<Sink>, Sink), AppError> {
    let sink = Sink::new(limit);
    let files = manifest.files.len();
    let mut writer = match SnapshotWriter::new(sink.clone(), manifest, WriteOptions::default()) {
        Ok(writer) => writer,
        Err(e) => {
            return Err(match (sink.over_limit(), e) {
                (Some(reached), _) => {
                    let when = format!("its manifest of {files} files alone");
                    too_large(reached, limit, bucket, &when)
                }
                (None, SnapshotError::TooManyEntries { limit, actual }) => {
                    AppError::TooLarge(format!(
                        "the project has {actual} files; a snapshot archive holds at most {limit}"
                    ))
                }
                (None, other) => AppError::Internal(format!("starting the snapshot: {other}")),
            })
        }
    };
    let floor = writer.min_size();
    if floor > limit {
        return Err(too_large(
            floor,
            limit,
            bucket,
            "counting its headers, names and the files stored as they are, before reading any \
             content",
        ));
    }
    let max = writer.max_size();
    if max <= limit {
        writer.set_level(if max <= SMALL_ARCHIVE {
            SMALL_DEFLATE_LEVEL
        } else {
            FAST_DEFLATE_LEVEL
        });
    }
    Ok((writer, sink))
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// Workers' `crypto.DigestStream`: a `WritableStream` that hashes what is piped into it, natively.
    #[wasm_bindgen(js_namespace = crypto, js_name = DigestStream, extends = worker::web_sys::WritableStream)]
    #[derive(Clone)]
    type DigestStream;
    #[wasm_bindgen(constructor, js_namespace = crypto, js_class = "DigestStream", catch)]
    fn new(algorithm: &str) -> Result<DigestStream, JsValue>;
    #[wasm_bindgen(method, getter)]
    fn digest(this: &DigestStream) -> js_sys::Promise;

    /// A `DigestStream`'s `WritableStreamDefaultWriter`.
    #[derive(Clone)]
    type DigestWriter;
    #[wasm_bindgen(method, js_name = getWriter, catch)]
    fn get_writer(this: &DigestStream) -> Result<DigestWriter, JsValue>;
    #[wasm_bindgen(method)]
    fn write(this: &DigestWriter, chunk: &js_sys::Uint8Array) -> js_sys::Promise;
    #[wasm_bindgen(method)]
    fn close(this: &DigestWriter) -> js_sys::Promise;
}

/// The archive's SHA-256 computed by the runtime (`crypto.DigestStream`) from a copy of each chunk
/// the upload takes: native hashing costs a fraction of SHA-256 in Wasm.
#[derive(Clone)]
struct ArchiveDigest {
    stream: DigestStream,
    writer: DigestWriter,
}

impl ArchiveDigest {
    /// `None` where the runtime has no `DigestStream` (the archive is then hashed in Wasm).
    fn new() -> Option<ArchiveDigest> {
        let stream = DigestStream::new("SHA-256").ok()?;
        let writer = stream.get_writer().ok()?;
        Some(ArchiveDigest { stream, writer })
    }

    /// Queues a copy of `chunk`; the writes complete in order, and a failed one fails
    /// [`ArchiveDigest::finish`].
    fn update(&self, chunk: &[u8]) {
        drop(self.writer.write(&js_sys::Uint8Array::from(chunk)));
    }

    /// The hex SHA-256 of every chunk given.
    async fn finish(self) -> Result<String, AppError> {
        let done = async {
            wasm_bindgen_futures::JsFuture::from(self.writer.close()).await?;
            wasm_bindgen_futures::JsFuture::from(self.stream.digest()).await
        };
        let digest = done.await.map_err(|e| {
            AppError::Internal(format!("hashing the archive (DigestStream) failed: {e:?}"))
        })?;
        Ok(hex::encode(js_sys::Uint8Array::new(&digest).to_vec()))
    }
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// `crypto.subtle.digest`: the runtime's native SHA-256 (several times faster than SHA-256
    /// compiled to Wasm; most of a build's CPU after deflate).
    #[wasm_bindgen(js_namespace = ["crypto", "subtle"], js_name = digest, catch)]
    fn subtle_digest(
        algorithm: &JsValue,
        data: &js_sys::Uint8Array,
    ) -> Result<js_sys::Promise, JsValue>;
}

/// The SHA-256 of each of `contents`, hashed by the runtime. The writer checks each against the
/// manifest, as it checks its own.
async fn native_sha256<'a>(
    contents: impl ExactSizeIterator<Item = &'a [u8]>,
) -> Result<Vec<[u8; 32]>, AppError> {
    let failed = |e: JsValue| AppError::Internal(format!("crypto.subtle.digest failed: {e:?}"));
    let algorithm = JsValue::from_str("SHA-256");
    let pending = js_sys::Array::new_with_length(contents.len() as u32);
    for (i, content) in contents.enumerate() {
        // SAFETY: the view is used only within this call, and digest() takes a copy of the bytes
        // before it returns (WebCrypto: "get a copy of the bytes held by the data parameter"); no
        // Wasm allocation (which could move the memory) happens in between.
        let view = unsafe { js_sys::Uint8Array::view(content) };
        pending.set(
            i as u32,
            subtle_digest(&algorithm, &view).map_err(failed)?.into(),
        );
    }
    let done = wasm_bindgen_futures::JsFuture::from(js_sys::Promise::all(&pending))
        .await
        .map_err(failed)?;
    js_sys::Array::from(&done)
        .iter()
        .map(|digest| {
            let bytes = js_sys::Uint8Array::new(&digest);
            let mut out = [0u8; 32];
            if bytes.length() != 32 {
                return Err(AppError::Internal(format!(
                    "crypto.subtle.digest gave {} bytes for SHA-256",
                    bytes.length()
                )));
            }
            bytes.copy_to(&mut out);
            Ok(out)
        })
        .collect()
}

/// SHA-256 of a stored object and its size: `(sha256 hex, bytes)`.
///
/// The body is piped into `crypto.DigestStream` (native hashing, nothing copied into Wasm, memory
/// bounded) when the runtime has it and the response carries its length; otherwise it is streamed
/// through Rust's SHA-256 chunk by chunk.
pub(crate) async fn hash_object(mut resp: worker::Response) -> Result<(String, u64), AppError> {
    let length = resp
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let (Some(length), worker::ResponseBody::Stream(body)) = (length, resp.body()) {
        if let Ok(sink) = DigestStream::new("SHA-256") {
            let piped = async {
                wasm_bindgen_futures::JsFuture::from(body.pipe_to(&sink)).await?;
                wasm_bindgen_futures::JsFuture::from(sink.digest()).await
            };
            let digest = piped.await.map_err(|e| {
                AppError::Upstream(format!("reading the stored snapshot failed: {e:?}"))
            })?;
            return Ok((
                hex::encode(js_sys::Uint8Array::new(&digest).to_vec()),
                length,
            ));
        }
    }
    let mut hasher = ContentHasher::new();
    let mut bytes = 0u64;
    let mut stream = resp.stream()?;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| AppError::Upstream(format!("reading the stored snapshot: {e}")))?;
        bytes += chunk.len() as u64;
        hasher.update(&chunk);
    }
    Ok((hasher.finish(), bytes))
}

/// Everything the upload stream needs while it is pulled.
struct Builder {
    supabase: Supabase,
    /// `path → "<bucket>/<object>"` for every binary.
    binaries: HashMap<String, String>,
    /// Text contents the cut carried, taken as they are written.
    contents: HashMap<String, String>,
    steps: std::vec::IntoIter<Step>,
    writer: Option<SnapshotWriter<Sink>>,
    sink: Sink,
    limit: u64,
    bucket: String,
    /// Files written so far, of how many (for a refusal's message).
    done: usize,
    files: usize,
    /// The second pass over a large binary: its index and body, being written piece by piece.
    streaming: Option<(usize, worker::ByteStream)>,
}

#[derive(Deserialize)]
struct FileRow {
    file_path: String,
    version: i64,
    #[serde(default)]
    content: Option<String>,
}

impl Builder {
    fn writer(&mut self) -> &mut SnapshotWriter<Sink> {
        self.writer
            .as_mut()
            .expect("writer present while steps remain")
    }

    fn entry(&self, index: usize) -> &ManifestEntry {
        &self
            .writer
            .as_ref()
            .expect("writer present")
            .manifest()
            .files[index]
    }

    fn map_writer_error(&self, e: SnapshotError) -> AppError {
        if let Some(reached) = self.sink.over_limit() {
            let when = format!("stopped after {} of {} files", self.done, self.files);
            return too_large(reached, self.limit, &self.bucket, &when);
        }
        match e {
            SnapshotError::HashMismatch { path, .. } | SnapshotError::SizeMismatch { path, .. } => {
                AppError::Upstream(format!(
                    "the bytes read for {path:?} do not match its registered size and content_hash"
                ))
            }
            other => AppError::Internal(format!("snapshot writer: {other}")),
        }
    }

    fn write(
        &mut self,
        op: impl FnOnce(&mut SnapshotWriter<Sink>) -> Result<(), SnapshotError>,
    ) -> Result<(), AppError> {
        op(self.writer()).map_err(|e| self.map_writer_error(e))
    }

    /// Text contents by exact `(path, version)` through `get_project_files`, in `paths`' order.
    async fn read_texts(
        &self,
        project_id: String,
        paths: Vec<String>,
        versions: Vec<u64>,
    ) -> Result<Vec<(String, String)>, AppError> {
        let rows: Vec<FileRow> = self
            .supabase
            .rpc(
                "get_project_files",
                &json!({
                    "project_uuid": project_id,
                    "paths": paths,
                    "versions": versions,
                }),
            )
            .await?;
        let mut contents: HashMap<String, (i64, Option<String>)> = rows
            .into_iter()
            .map(|r| (r.file_path, (r.version, r.content)))
            .collect();
        let mut batch = Vec::with_capacity(paths.len());
        for (path, version) in paths.into_iter().zip(versions) {
            match contents.remove(&path) {
                Some((v, Some(c))) if v as u64 == version => batch.push((path, c)),
                _ => {
                    return Err(AppError::Upstream(format!(
                        "version {version} of {path:?} could not be read back; try again"
                    )))
                }
            }
        }
        Ok(batch)
    }

    async fn text_batch(&mut self, start: usize, end: usize) -> Result<(), AppError> {
        let (project_id, paths, versions) = {
            let manifest = self.writer.as_ref().expect("writer present").manifest();
            let files = &manifest.files[start..end];
            let paths: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
            let versions: Vec<u64> = files.iter().map(|f| f.version).collect();
            (manifest.project_id.clone(), paths, versions)
        };
        // The cut carries every text or none (the same versions, read in the same statement).
        let carried: Option<Vec<(String, String)>> = paths
            .iter()
            .map(|p| self.contents.remove_entry(p))
            .collect();
        let batch = match carried {
            Some(batch) => batch,
            None => self.read_texts(project_id, paths, versions).await?,
        };
        let digests = native_sha256(batch.iter().map(|(_, c)| c.as_bytes())).await?;
        // Each content is dropped once written: the batch's compressed output grows meanwhile.
        for ((path, content), digest) in batch.into_iter().zip(&digests) {
            self.write(|w| w.add_file_with_digest(&path, content.as_bytes(), digest))?;
            self.done += 1;
        }
        Ok(())
    }

    /// The Storage object of binary `index`: `(bucket, object name)`.
    fn source(&self, index: usize) -> Result<(String, String), AppError> {
        let path = &self.entry(index).path;
        let source = self.binaries.get(path).map_or("", String::as_str);
        source
            .split_once('/')
            .filter(|(b, n)| !b.is_empty() && !n.is_empty())
            .map(|(b, n)| (b.to_owned(), n.to_owned()))
            .ok_or_else(|| {
                AppError::Upstream(format!(
                    "binary {path:?} has storage_path {source:?}; expected \"<bucket>/<object path>\""
                ))
            })
    }

    async fn fetch_binary(&self, index: usize) -> Result<worker::Response, AppError> {
        let (bucket, name) = self.source(index)?;
        self.supabase
            .get_object(&bucket, &name)
            .await?
            .ok_or_else(|| {
                AppError::Upstream(format!(
                    "binary {:?}: its Storage object {bucket}/{name} does not exist",
                    self.entry(index).path
                ))
            })
    }

    async fn binary(&mut self, index: usize) -> Result<(), AppError> {
        let mut resp = self.fetch_binary(index).await?;
        let body = crate::supabase::body_bytes(&mut resp).await?;
        let path = self.entry(index).path.clone();
        self.write(|w| w.add_file(&path, &body))?;
        self.done += 1;
        Ok(())
    }

    /// A binary too large to hold: its first pass, then its second pass's body for
    /// [`Builder::next_chunk`] to write piece by piece.
    async fn large_binary(&mut self, index: usize) -> Result<(), AppError> {
        let path = self.entry(index).path.clone();
        self.write(|w| w.begin_file(&path))?;
        let mut first = self.fetch_binary(index).await?.stream()?;
        while let Some(piece) = first.next().await {
            let piece = piece.map_err(|e| read_failed(&path, &e))?;
            self.write(|w| w.measure(&piece))?;
        }
        self.write(SnapshotWriter::write_header)?;
        self.streaming = Some((index, self.fetch_binary(index).await?.stream()?));
        Ok(())
    }

    /// Runs the next step and returns what it added to the archive; `None` when it is complete.
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, AppError> {
        loop {
            if let Some((index, stream)) = self.streaming.as_mut() {
                let index = *index;
                match stream.next().await {
                    Some(piece) => {
                        let piece = piece.map_err(|e| read_failed(&self.entry(index).path, &e))?;
                        self.write(|w| w.write_data(&piece))?;
                    }
                    None => {
                        self.streaming = None;
                        self.write(SnapshotWriter::end_file)?;
                        self.done += 1;
                    }
                }
            } else {
                match self.steps.next() {
                    Some(Step::Text(s, e)) => self.text_batch(s, e).await?,
                    Some(Step::Binary(i)) => self.binary(i).await?,
                    Some(Step::LargeBinary(i)) => self.large_binary(i).await?,
                    None => match self.writer.take() {
                        Some(writer) => {
                            if let Err(e) = writer.finish() {
                                return Err(self.map_writer_error(e));
                            }
                        }
                        None => return Ok(None),
                    },
                }
            }
            // Only non-empty chunks go out (a piece may deflate into nothing yet).
            let chunk = self.sink.take();
            if !chunk.is_empty() {
                return Ok(Some(chunk));
            }
        }
    }
}

fn read_failed(path: &str, e: &worker::Error) -> AppError {
    AppError::Upstream(format!("reading binary {path:?} from Storage failed: {e}"))
}

/// How [`store`] ended.
pub(crate) struct Stored {
    pub(crate) sha256: String,
    pub(crate) size: u64,
    /// The object already existed (a concurrent build): its bytes were hashed instead.
    pub(crate) raced: bool,
}

/// Builds the archive for `plan` and uploads it to `<bucket>/<plan.object_name()>`; 413 when the
/// archive would exceed `limit` bytes (nothing is stored then).
pub(crate) async fn store(
    supabase: &Supabase,
    plan: Plan,
    bucket: &str,
    limit: u64,
) -> Result<Stored, AppError> {
    let name = plan.object_name();
    let Plan {
        manifest,
        binaries,
        contents,
        ..
    } = plan;
    let steps = steps(&manifest.files, &binaries, BATCH_BYTES, BATCH_FILES);
    let files = manifest.files.len();
    let (writer, sink) = start(manifest, limit, bucket)?;
    let digest = ArchiveDigest::new();
    if digest.is_some() {
        sink.hashed_elsewhere();
    }
    let digest_in = digest.clone();
    let builder = Builder {
        supabase: supabase.clone(),
        binaries,
        contents,
        steps: steps.into_iter(),
        writer: Some(writer),
        sink: sink.clone(),
        limit,
        bucket: bucket.to_owned(),
        done: 0,
        files,
        streaming: None,
    };
    // The first cause of a failed stream, kept here: fetch only sees "the body errored".
    let failure: Rc<RefCell<Option<AppError>>> = Rc::new(RefCell::new(None));
    let failure_in = failure.clone();
    let stream = futures_util::stream::try_unfold(builder, |mut b| async move {
        Ok::<_, AppError>(b.next_chunk().await?.map(|chunk| (chunk, b)))
    })
    .map_ok(move |chunk| {
        if let Some(digest) = &digest_in {
            digest.update(&chunk);
        }
        JsValue::from(js_sys::Uint8Array::from(chunk.as_slice()))
    })
    .map_err(move |e| {
        let msg = JsValue::from_str(&e.to_string());
        failure_in.borrow_mut().get_or_insert(e);
        msg
    });
    let body = wasm_streams::ReadableStream::from_stream(stream).into_raw();
    let outcome = supabase
        .upload(bucket, &name, "application/zip", body.into(), limit)
        .await;
    let cause = failure.borrow_mut().take();
    if let Some(cause) = cause {
        // The upload was cut short; make sure no partial object stays behind under this name.
        supabase.delete_object(bucket, &name).await;
        return Err(cause);
    }
    match outcome? {
        Uploaded::Created => {
            let (sha256, size) = match (digest, sink.finish()) {
                (Some(digest), (_, size)) => (digest.finish().await?, size),
                (None, (Some(sha256), size)) => (sha256, size),
                (None, (None, _)) => unreachable!("the sink hashes unless a digest does"),
            };
            Ok(Stored {
                sha256,
                size,
                raced: false,
            })
        }
        Uploaded::AlreadyExists => {
            let resp = supabase.get_object(bucket, &name).await?.ok_or_else(|| {
                AppError::Upstream(format!(
                    "{bucket}/{name} exists and then does not; try again"
                ))
            })?;
            let (sha256, size) = hash_object(resp).await?;
            Ok(Stored {
                sha256,
                size,
                raced: true,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fs_sync_core::{content_hash, read_snapshot, Limits};

    /// `get_project_snapshot`'s answer for `(path, content, storage_path)`s, as PostgREST sends it.
    fn cut_json(files: &[(&str, &str, Option<&str>)]) -> serde_json::Value {
        let files: Vec<_> = files
            .iter()
            .map(|(p, c, s)| {
                json!({
                    "file_path": p, "content_hash": content_hash(c.as_bytes()), "version": 1,
                    "file_type": null, "size_bytes": c.len(), "storage_path": s,
                    "updated_at": "2025-11-26T09:15:00.123456+00:00",
                })
            })
            .collect();
        json!({"project_id": "00000000-0000-0000-0000-0000000000aa", "as_of_seq": 7, "files": files})
    }

    fn cut(files: &[(&str, &str, Option<&str>)]) -> Cut {
        serde_json::from_value(cut_json(files)).unwrap()
    }

    #[test]
    fn a_cut_carrying_contents_keeps_the_texts_for_the_build() {
        let mut json = cut_json(&[("a.ts", "a", None), ("b.png", "b", Some("assets/p/b.png"))]);
        json["files"][0]["content"] = json!("a");
        json["files"][1]["content"] = serde_json::Value::Null;
        let p = plan(serde_json::from_value(json).unwrap()).unwrap();
        assert_eq!(
            p.contents,
            HashMap::from([("a.ts".to_owned(), "a".to_owned())])
        );
        assert!(plan(cut(&[("a.ts", "a", None)]))
            .unwrap()
            .contents
            .is_empty());
    }

    #[test]
    fn plan_sorts_by_bytes_and_knows_where_binaries_are() {
        // A database collation may put "B" after "a"; bytes put it first.
        let p = plan(cut(&[
            ("a.ts", "a", None),
            ("B.png", "b", Some("assets/p/B.png")),
            ("é.md", "", None),
        ]))
        .unwrap();
        let paths: Vec<_> = p.manifest.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["B.png", "a.ts", "é.md"]);
        assert_eq!(p.snapshot_id, p.manifest.snapshot_id());
        assert_eq!(
            p.binaries,
            HashMap::from([("B.png".to_owned(), "assets/p/B.png".to_owned())])
        );
        assert_eq!(
            p.manifest.files[0].file_type, "binary",
            "inferred when NULL"
        );
        assert_eq!(p.manifest.as_of_seq, 7);
        assert_eq!(
            p.object_name(),
            format!("00000000-0000-0000-0000-0000000000aa/{}.zip", p.snapshot_id)
        );
        // Same state, same id; another seq, another id.
        let again = plan(cut(&[
            ("é.md", "", None),
            ("a.ts", "a", None),
            ("B.png", "b", Some("assets/p/B.png")),
        ]))
        .unwrap();
        assert_eq!(again.snapshot_id, p.snapshot_id);
        let mut later = cut(&[("a.ts", "a", None)]);
        later.as_of_seq = 8;
        assert_ne!(
            plan(later).unwrap().snapshot_id,
            plan(cut(&[("a.ts", "a", None)])).unwrap().snapshot_id
        );
    }

    #[test]
    fn a_cut_that_does_not_check_out_is_refused_naming_the_file() {
        let mut v = cut_json(&[("a.ts", "a", None)]);
        v["files"][0]["content_hash"] = serde_json::Value::Null;
        let e = serde_json::from_value::<Cut>(v).unwrap_err().to_string();
        assert!(e.starts_with("file \"a.ts\" has no content_hash"), "{e}");
        let mut v = cut_json(&[("a.ts", "a", None)]);
        v["files"][0]["size_bytes"] = json!(-1);
        let e = serde_json::from_value::<Cut>(v).unwrap_err().to_string();
        assert!(
            e.starts_with("file \"a.ts\" has a negative size or version"),
            "{e}"
        );
    }

    #[test]
    fn plan_refuses_bad_paths_with_422() {
        let e = plan(cut(&[("../x", "a", None)])).unwrap_err();
        assert_eq!(e.status(), 422);
    }

    #[test]
    fn steps_batch_text_and_isolate_binaries() {
        let big = "x".repeat(10);
        let mut p = plan(cut(&[
            ("a", &big, None),
            ("b", &big, None),
            ("c", &big, None),
            ("d.png", "b", Some("x/d.png")),
            ("e", &big, None),
            ("f.wasm", "b", Some("x/f.wasm")),
        ]))
        .unwrap();
        // Sizes come from the cut: a binary over WHOLE_BINARY_MAX is streamed.
        p.manifest.files[5].size = WHOLE_BINARY_MAX + 1;
        let files = &p.manifest.files;
        assert_eq!(
            steps(files, &p.binaries, 25, 100),
            [
                Step::Text(0, 2),
                Step::Text(2, 3),
                Step::Binary(3),
                Step::Text(4, 5),
                Step::LargeBinary(5)
            ]
        );
        assert_eq!(
            steps(files, &p.binaries, 1000, 2),
            [
                Step::Text(0, 2),
                Step::Text(2, 3),
                Step::Binary(3),
                Step::Text(4, 5),
                Step::LargeBinary(5)
            ]
        );
        assert!(steps(&[], &HashMap::new(), 10, 10).is_empty());
    }

    /// Source-like text: compresses several times over, as a project's files do.
    fn source(lines: usize) -> String {
        (0..lines)
            .map(|i| {
                format!(
                    "export const value{i} = compute({i}, \"item-{}\");\n",
                    i % 97
                )
            })
            .collect()
    }

    fn noise(len: usize) -> String {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'a' + (x % 26) as u8)
            })
            .collect()
    }

    fn builder(plan: Plan, limit: u64) -> Builder {
        let Plan {
            manifest,
            binaries,
            contents,
            ..
        } = plan;
        let steps = steps(&manifest.files, &binaries, BATCH_BYTES, BATCH_FILES);
        let files = manifest.files.len();
        let (writer, sink) = start(manifest, limit, "project-snapshots").unwrap();
        Builder {
            supabase: Supabase::new("http://127.0.0.1:9", "key"),
            binaries,
            contents,
            steps: steps.into_iter(),
            writer: Some(writer),
            sink,
            limit,
            bucket: "project-snapshots".into(),
            done: 0,
            files,
            streaming: None,
        }
    }

    /// Adds every file of `files` (text) in order, as the batches would.
    fn add_all(b: &mut Builder, files: &[(&str, String)]) -> Result<(), AppError> {
        for (path, content) in files {
            b.write(|w| w.add_file(path, content.as_bytes()))?;
            b.done += 1;
        }
        Ok(())
    }

    /// Regression: the limit was compared with the files' raw size, so a project of compressible
    /// text over it was refused (413 "would be N bytes or more") although its archive fits.
    #[test]
    fn the_limit_applies_to_the_archive_not_to_the_raw_content() {
        let files: Vec<(&str, String)> = vec![("a.ts", source(4000)), ("b.ts", source(5000))];
        let raw: usize = files.iter().map(|(_, c)| c.len()).sum();
        let limit = raw as u64 / 2;
        let p = plan(cut(&files
            .iter()
            .map(|(p, c)| (*p, c.as_str(), None))
            .collect::<Vec<_>>()))
        .unwrap();
        let mut b = builder(p, limit);
        add_all(&mut b, &files).unwrap();
        let (_, summary) = b.writer.take().unwrap().finish().unwrap();
        assert!(summary.bytes < limit, "{} bytes", summary.bytes);
        assert_eq!(b.sink.finish().1, summary.bytes);
    }

    #[test]
    fn an_archive_over_the_limit_stops_at_the_limit_with_a_413_saying_so() {
        let files: Vec<(&str, String)> = (0..6)
            .map(|i| (["a", "b", "c", "d", "e", "f"][i], noise(20_000)))
            .collect();
        let p = plan(cut(&files
            .iter()
            .map(|(p, c)| (*p, c.as_str(), None))
            .collect::<Vec<_>>()))
        .unwrap();
        let limit = 50_000;
        let mut b = builder(p, limit);
        let e = add_all(&mut b, &files).unwrap_err();
        assert_eq!(e.status(), 413);
        let msg = e.to_string();
        let reached: u64 = msg
            .strip_prefix("snapshot archive is at least ")
            .and_then(|m| m.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{msg}"));
        assert!(reached > limit, "{msg}");
        assert!(
            msg.contains(
                "over the project-snapshots limit of 50000 bytes (stopped after 4 of 6 files)"
            ),
            "{msg}"
        );
        // Nothing past the limit was passed on.
        assert!(b.sink.finish().1 <= limit);

        // Every file fits, the central directory does not: refused as it is written.
        let files: Vec<(&str, String)> = vec![("a.ts", source(50)), ("b.ts", source(60))];
        let rows: Vec<_> = files.iter().map(|(p, c)| (*p, c.as_str(), None)).collect();
        let mut b = builder(plan(cut(&rows)).unwrap(), u64::MAX);
        // At the level a limit below the archive's largest size keeps, as the build below.
        b.writer().set_level(WriteOptions::default().level);
        add_all(&mut b, &files).unwrap();
        let size = b.writer.take().unwrap().finish().unwrap().1.bytes;
        let mut b = builder(plan(cut(&rows)).unwrap(), size - 1);
        add_all(&mut b, &files).unwrap();
        let e = b.writer.take().unwrap().finish().err().unwrap();
        assert_eq!(
            b.map_writer_error(e).to_string(),
            format!(
                "snapshot archive is at least {size} bytes, over the project-snapshots limit of {} \
                 bytes (stopped after 2 of 2 files)",
                size - 1
            )
        );
    }

    fn refusal(started: Result<(SnapshotWriter<Sink>, Sink), AppError>) -> AppError {
        match started {
            Ok(_) => panic!("the snapshot was started"),
            Err(e) => e,
        }
    }

    #[test]
    fn start_refuses_archives_that_cannot_fit_before_reading_content() {
        // Already compressed files are stored as they are: 3 × 40,000 bytes cannot fit 100,000.
        let png = noise(40_000);
        let rows: Vec<(String, &str, Option<&str>)> = (0..3)
            .map(|i| (format!("img/{i}.png"), png.as_str(), Some("assets/x.png")))
            .collect();
        let p = plan(cut(&rows
            .iter()
            .map(|(p, c, s)| (p.as_str(), *c, *s))
            .collect::<Vec<_>>()))
        .unwrap();
        let e = refusal(start(p.manifest.clone(), 100_000, "project-snapshots"));
        assert_eq!(e.status(), 413);
        assert!(
            e.to_string()
                .contains("over the project-snapshots limit of 100000 bytes (counting"),
            "{e}"
        );
        start(p.manifest, 130_000, "project-snapshots").unwrap();

        // The manifest alone.
        let p = plan(cut(&[("a.ts", "x", None)])).unwrap();
        let e = refusal(start(p.manifest, 100, "project-snapshots"));
        assert!(
            e.to_string().contains("its manifest of 1 files alone"),
            "{e}"
        );
    }

    /// The fast levels only where they cannot cost a project its snapshot: a project whose
    /// archive might not fit the limit keeps the best compression; the fastest for small archives.
    #[test]
    fn the_fast_levels_only_where_the_archive_fits_at_any_level() {
        for (size, fast) in [(2000, SMALL_DEFLATE_LEVEL), (2 << 20, FAST_DEFLATE_LEVEL)] {
            let text = source(size);
            let p = plan(cut(&[("a.ts", text.as_str(), None)])).unwrap();
            let level = |limit| {
                let (w, _) = start(p.manifest.clone(), limit, "project-snapshots").unwrap();
                (w.level(), w.max_size())
            };
            let (chosen, max) = level(u64::MAX);
            assert_eq!(chosen, fast, "{size} bytes");
            assert!(max > text.len() as u64);
            assert_eq!(level(max).0, fast);
            assert_eq!(level(max - 1).0, WriteOptions::default().level);
        }
    }

    #[test]
    fn more_files_than_a_zip_holds_is_a_413_naming_the_count() {
        let rows: Vec<String> = (0..65_535).map(|i| format!("f/{i}.txt")).collect();
        let p = plan(cut(&rows
            .iter()
            .map(|p| (p.as_str(), "", None))
            .collect::<Vec<_>>()))
        .unwrap();
        let e = refusal(start(p.manifest, u64::MAX, "project-snapshots"));
        assert_eq!(e.status(), 413);
        assert_eq!(
            e.to_string(),
            "the project has 65535 files; a snapshot archive holds at most 65534"
        );
    }

    #[test]
    fn sink_hashes_what_it_passes_on_and_enforces_the_limit() {
        let p = plan(cut(&[("a.ts", "export const a = 1;\n", None)])).unwrap();
        let sink = Sink::new(1 << 20);
        let mut w =
            SnapshotWriter::new(sink.clone(), p.manifest.clone(), WriteOptions::default()).unwrap();
        let mut archive = sink.take();
        w.add_file("a.ts", b"export const a = 1;\n").unwrap();
        archive.extend(sink.take());
        w.finish().unwrap();
        archive.extend(sink.take());
        let (sha, size) = sink.finish();
        let sha = sha.expect("hashed in the sink");
        assert_eq!(size, archive.len() as u64);
        assert_eq!(sha, content_hash(&archive));
        let mut seen = Vec::new();
        read_snapshot(
            std::io::Cursor::new(&archive),
            &Limits::default(),
            |_| Ok(()),
            |entry, _| {
                seen.push(entry.path.clone());
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, ["a.ts"]);

        let tiny = Sink::new(10);
        assert!(
            SnapshotWriter::new(tiny.clone(), p.manifest.clone(), WriteOptions::default()).is_err()
        );
        assert!(tiny.over_limit().is_some_and(|reached| reached > 10));
    }
}
