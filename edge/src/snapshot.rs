//! Cutting, building, storing and signing a project snapshot (DESIGN.md "Snapshot").
//!
//! 1. **Cut**: one call to `get_project_snapshot(project, include_content => false)` gives the file
//!    list and `as_of_seq` from one consistent read. The [`Manifest`] (and so the snapshot id)
//!    follows from it alone, so an unchanged project is recognised without reading any content.
//! 2. **Reuse**: if `project-snapshots/<project>/<snapshot_id>.zip` exists it is the same archive
//!    (the writer is deterministic); it is streamed once through SHA-256 for `sha256`/`size`.
//! 3. **Build**: otherwise the archive is written by [`SnapshotWriter`] straight into the Storage
//!    upload's request body (a `ReadableStream` pulled by `fetch`). Text contents are read in
//!    batches by exact `(path, version)` through `get_project_files` (versions are immutable, and
//!    the writer checks every file's size and SHA-256 against the manifest, so the archive is exactly
//!    the cut), binaries one at a time from Storage. Memory holds one batch (or one binary) and
//!    the compressed bytes not yet sent, never the archive or the whole project.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, Write};
use std::rc::Rc;

use fs_sync_core::{
    infer_file_type, ContentHasher, Manifest, ManifestEntry, ManifestError, SnapshotError,
    SnapshotWriter, WriteOptions,
};
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::json;
use wasm_bindgen::JsValue;

use crate::error::AppError;
use crate::supabase::{Supabase, Uploaded};

/// Text contents read per `get_project_files` call: at most this many bytes…
const BATCH_BYTES: u64 = 4 << 20;
/// …and at most this many files.
const BATCH_FILES: usize = 500;

/// One file of `get_project_snapshot`'s answer (without content).
#[derive(Debug, Deserialize)]
pub(crate) struct CutFile {
    pub(crate) file_path: String,
    pub(crate) content_hash: Option<String>,
    pub(crate) version: i64,
    #[serde(default)]
    pub(crate) file_type: Option<String>,
    pub(crate) size_bytes: i64,
    #[serde(default)]
    pub(crate) storage_path: Option<String>,
}

/// `get_project_snapshot`'s answer.
#[derive(Debug, Deserialize)]
pub(crate) struct Cut {
    pub(crate) project_id: String,
    pub(crate) as_of_seq: i64,
    pub(crate) files: Vec<CutFile>,
}

/// A snapshot to build or reuse: the manifest, and where each file's bytes come from.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) manifest: Manifest,
    /// Aligned with `manifest.files`: `Some("<bucket>/<object>")` for a binary.
    pub(crate) sources: Vec<Option<String>>,
    pub(crate) snapshot_id: String,
}

impl Plan {
    /// The archive's object name inside the snapshot bucket.
    pub(crate) fn object_name(&self) -> String {
        format!("{}/{}.zip", self.manifest.project_id, self.snapshot_id)
    }
}

/// Turns the cut into a [`Plan`]; refuses what a snapshot cannot carry.
pub(crate) fn plan(cut: Cut) -> Result<Plan, AppError> {
    let mut rows: Vec<(ManifestEntry, Option<String>)> = Vec::with_capacity(cut.files.len());
    for f in cut.files {
        let content_hash = f.content_hash.ok_or_else(|| {
            AppError::Upstream(format!("file {:?} has no content_hash", f.file_path))
        })?;
        let (Ok(size), Ok(version)) = (u64::try_from(f.size_bytes), u64::try_from(f.version))
        else {
            return Err(AppError::Upstream(format!(
                "file {:?} has a negative size or version",
                f.file_path
            )));
        };
        let file_type = f
            .file_type
            .unwrap_or_else(|| infer_file_type(&f.file_path).as_str().to_owned());
        rows.push((
            ManifestEntry {
                content_hash,
                file_type,
                path: f.file_path,
                size,
                version,
            },
            f.storage_path,
        ));
    }
    // Byte order of the UTF-8 paths (the database sorts by its collation).
    rows.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    let (entries, sources): (Vec<_>, Vec<_>) = rows.into_iter().unzip();
    let as_of_seq = u64::try_from(cut.as_of_seq)
        .map_err(|_| AppError::Upstream("as_of_seq is negative".into()))?;
    let manifest = Manifest::new(cut.project_id, as_of_seq, entries).map_err(|e| match e {
        ManifestError::Path(p) => AppError::Invalid(format!(
            "the project holds a file a snapshot cannot carry: {p}"
        )),
        other => AppError::Upstream(format!("the project's file list is inconsistent: {other}")),
    })?;
    let snapshot_id = manifest.snapshot_id();
    Ok(Plan {
        manifest,
        sources,
        snapshot_id,
    })
}

/// One unit of work while building: text files `[start, end)` in one RPC, or one binary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Text(usize, usize),
    Binary(usize),
}

/// Splits the manifest into [`Step`]s in manifest order.
pub(crate) fn steps(plan: &Plan, max_bytes: u64, max_files: usize) -> Vec<Step> {
    let mut out = Vec::new();
    let mut start = None::<usize>;
    let mut bytes = 0u64;
    for (i, (entry, source)) in plan.manifest.files.iter().zip(&plan.sources).enumerate() {
        if source.is_some() {
            if let Some(s) = start.take() {
                out.push(Step::Text(s, i));
            }
            out.push(Step::Binary(i));
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
        out.push(Step::Text(s, plan.manifest.files.len()));
    }
    out
}

/// What the archive's bytes went through on their way out.
#[derive(Default)]
pub(crate) struct Output {
    hasher: ContentHasher,
    bytes: u64,
    pending: Vec<u8>,
    limit: u64,
    over_limit: bool,
}

/// The [`Write`] the [`SnapshotWriter`] writes into: hashes, counts, enforces the size limit and
/// keeps the bytes until the upload stream takes them.
#[derive(Clone)]
pub(crate) struct Sink(Rc<RefCell<Output>>);

impl Sink {
    pub(crate) fn new(limit: u64) -> Sink {
        Sink(Rc::new(RefCell::new(Output {
            limit,
            ..Output::default()
        })))
    }

    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut self.0.borrow_mut().pending)
    }

    /// `(sha256 hex, bytes)` of everything written.
    pub(crate) fn finish(&self) -> (String, u64) {
        let out = self.0.borrow();
        (out.hasher.clone().finish(), out.bytes)
    }

    fn over_limit(&self) -> bool {
        self.0.borrow().over_limit
    }
}

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut out = self.0.borrow_mut();
        if out.bytes + data.len() as u64 > out.limit {
            out.over_limit = true;
            return Err(io::Error::other("snapshot over the size limit"));
        }
        out.hasher.update(data);
        out.bytes += data.len() as u64;
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

fn too_large(bytes: u64, limit: u64) -> AppError {
    AppError::TooLarge(format!(
        "the project's snapshot would be {bytes} bytes or more; the limit is {limit} bytes \
         ({} MB, the snapshot bucket's file size limit)",
        limit / (1 << 20)
    ))
}

/// Refuses a project whose files alone are over the limit (before reading any content).
pub(crate) fn check_size(plan: &Plan, limit: u64) -> Result<(), AppError> {
    let total = plan.manifest.total_size();
    if total > limit {
        return Err(too_large(total, limit));
    }
    Ok(())
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// Workers' `crypto.DigestStream`: a `WritableStream` that hashes what is piped into it, natively.
    #[wasm_bindgen(js_namespace = crypto, js_name = DigestStream, extends = worker::web_sys::WritableStream)]
    type DigestStream;
    #[wasm_bindgen(constructor, js_namespace = crypto, js_class = "DigestStream", catch)]
    fn new(algorithm: &str) -> Result<DigestStream, JsValue>;
    #[wasm_bindgen(method, getter)]
    fn digest(this: &DigestStream) -> js_sys::Promise;
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
    plan: Rc<Plan>,
    steps: std::vec::IntoIter<Step>,
    writer: Option<SnapshotWriter<Sink>>,
    sink: Sink,
    limit: u64,
}

#[derive(Deserialize)]
struct FileRow {
    file_path: String,
    version: i64,
    #[serde(default)]
    content: Option<String>,
}

impl Builder {
    fn map_writer_error(&self, e: SnapshotError) -> AppError {
        if self.sink.over_limit() {
            return too_large(self.limit, self.limit);
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

    async fn text_batch(&mut self, start: usize, end: usize) -> Result<(), AppError> {
        let files = &self.plan.manifest.files[start..end];
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        let versions: Vec<u64> = files.iter().map(|f| f.version).collect();
        let rows: Vec<FileRow> = self
            .supabase
            .rpc(
                "get_project_files",
                &json!({
                    "project_uuid": self.plan.manifest.project_id,
                    "paths": paths,
                    "versions": versions,
                }),
            )
            .await?;
        let mut contents: HashMap<String, (i64, Option<String>)> = rows
            .into_iter()
            .map(|r| (r.file_path, (r.version, r.content)))
            .collect();
        for entry in files {
            let content = match contents.remove(&entry.path) {
                Some((v, Some(c))) if v as u64 == entry.version => c,
                _ => {
                    return Err(AppError::Upstream(format!(
                        "version {} of {:?} could not be read back; try again",
                        entry.version, entry.path
                    )))
                }
            };
            let writer = self
                .writer
                .as_mut()
                .expect("writer present while steps remain");
            if let Err(e) = writer.add_file(&entry.path, content.as_bytes()) {
                return Err(self.map_writer_error(e));
            }
        }
        Ok(())
    }

    async fn binary(&mut self, index: usize) -> Result<(), AppError> {
        let entry = &self.plan.manifest.files[index];
        let source = self.plan.sources[index].as_deref().unwrap_or_default();
        let Some((bucket, name)) = source
            .split_once('/')
            .filter(|(b, n)| !b.is_empty() && !n.is_empty())
        else {
            return Err(AppError::Upstream(format!(
                "binary {:?} has storage_path {source:?}; expected \"<bucket>/<object path>\"",
                entry.path
            )));
        };
        let Some(mut resp) = self.supabase.get_object(bucket, name).await? else {
            return Err(AppError::Upstream(format!(
                "binary {:?}: its Storage object {source:?} does not exist",
                entry.path
            )));
        };
        let body = crate::supabase::body_bytes(&mut resp).await?;
        let writer = self
            .writer
            .as_mut()
            .expect("writer present while steps remain");
        if let Err(e) = writer.add_file(&entry.path, &body) {
            return Err(self.map_writer_error(e));
        }
        Ok(())
    }

    /// Runs the next step; `None` when the archive is complete.
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, AppError> {
        match self.steps.next() {
            Some(Step::Text(s, e)) => self.text_batch(s, e).await?,
            Some(Step::Binary(i)) => self.binary(i).await?,
            None => match self.writer.take() {
                Some(writer) => {
                    if let Err(e) = writer.finish() {
                        return Err(self.map_writer_error(e));
                    }
                }
                None => return Ok(None),
            },
        }
        Ok(Some(self.sink.take()))
    }
}

/// How [`store`] ended.
pub(crate) struct Stored {
    pub(crate) sha256: String,
    pub(crate) size: u64,
    /// The object already existed (a concurrent build): its bytes were hashed instead.
    pub(crate) raced: bool,
}

/// Builds the archive for `plan` and uploads it to `<bucket>/<plan.object_name()>`.
pub(crate) async fn store(
    supabase: &Supabase,
    plan: Rc<Plan>,
    bucket: &str,
    limit: u64,
) -> Result<Stored, AppError> {
    let sink = Sink::new(limit);
    let writer = SnapshotWriter::new(sink.clone(), plan.manifest.clone(), WriteOptions::default())
        .map_err(|e| AppError::Internal(format!("starting the snapshot: {e}")))?;
    let builder = Builder {
        supabase: supabase.clone(),
        steps: steps(&plan, BATCH_BYTES, BATCH_FILES).into_iter(),
        plan: plan.clone(),
        writer: Some(writer),
        sink: sink.clone(),
        limit,
    };
    // The first cause of a failed stream, kept here: fetch only sees "the body errored".
    let failure: Rc<RefCell<Option<AppError>>> = Rc::new(RefCell::new(None));
    let failure_in = failure.clone();
    let stream = futures_util::stream::try_unfold(builder, |mut b| async move {
        Ok::<_, AppError>(b.next_chunk().await?.map(|chunk| (chunk, b)))
    })
    .map_ok(|chunk| JsValue::from(js_sys::Uint8Array::from(chunk.as_slice())))
    .map_err(move |e| {
        let msg = JsValue::from_str(&e.to_string());
        failure_in.borrow_mut().get_or_insert(e);
        msg
    });
    let body = wasm_streams::ReadableStream::from_stream(stream).into_raw();
    let name = plan.object_name();
    let outcome = supabase
        .upload(bucket, &name, "application/zip", body.into())
        .await;
    let cause = failure.borrow_mut().take();
    if let Some(cause) = cause {
        // The upload was cut short; make sure no partial object stays behind under this name.
        supabase.delete_object(bucket, &name).await;
        return Err(cause);
    }
    match outcome? {
        Uploaded::Created => {
            let (sha256, size) = sink.finish();
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

    fn cut(files: &[(&str, &str, Option<&str>)]) -> Cut {
        Cut {
            project_id: "00000000-0000-0000-0000-0000000000aa".into(),
            as_of_seq: 7,
            files: files
                .iter()
                .map(|(p, c, s)| CutFile {
                    file_path: (*p).into(),
                    content_hash: Some(content_hash(c.as_bytes())),
                    version: 1,
                    file_type: None,
                    size_bytes: c.len() as i64,
                    storage_path: s.map(Into::into),
                })
                .collect(),
        }
    }

    #[test]
    fn plan_sorts_by_bytes_and_keeps_sources_aligned() {
        // A database collation may put "B" after "a"; bytes put it first.
        let p = plan(cut(&[
            ("a.ts", "a", None),
            ("B.png", "b", Some("assets/p/B.png")),
            ("é.md", "", None),
        ]))
        .unwrap();
        let paths: Vec<_> = p.manifest.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["B.png", "a.ts", "é.md"]);
        assert_eq!(p.sources, [Some("assets/p/B.png".to_owned()), None, None]);
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
    fn plan_refuses_bad_paths_with_422() {
        let e = plan(cut(&[("../x", "a", None)])).unwrap_err();
        assert_eq!(e.status(), 422);
    }

    #[test]
    fn steps_batch_text_and_isolate_binaries() {
        let big = "x".repeat(10);
        let p = plan(cut(&[
            ("a", &big, None),
            ("b", &big, None),
            ("c", &big, None),
            ("d.png", "b", Some("x/d.png")),
            ("e", &big, None),
        ]))
        .unwrap();
        assert_eq!(
            steps(&p, 25, 100),
            [
                Step::Text(0, 2),
                Step::Text(2, 3),
                Step::Binary(3),
                Step::Text(4, 5)
            ]
        );
        assert_eq!(
            steps(&p, 1000, 2),
            [
                Step::Text(0, 2),
                Step::Text(2, 3),
                Step::Binary(3),
                Step::Text(4, 5)
            ]
        );
        let empty = plan(cut(&[])).unwrap();
        assert!(steps(&empty, 10, 10).is_empty());
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
        assert_eq!(size, archive.len() as u64);
        assert_eq!(sha, content_hash(&archive));
        let mut seen = Vec::new();
        read_snapshot(
            std::io::Cursor::new(&archive),
            &Limits::default(),
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
        assert!(tiny.over_limit());
    }

    #[test]
    fn check_size_is_413() {
        let p = plan(cut(&[("a", "12345", None)])).unwrap();
        check_size(&p, 5).unwrap();
        assert_eq!(check_size(&p, 4).unwrap_err().status(), 413);
    }
}
