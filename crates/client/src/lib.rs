//! fs-sync-client: the `@velocity/fs-sync` npm package, compiled to Wasm.
//!
//! The frontend gets content hashing, path rules and file types straight from fs-sync-core, and an
//! [`FsSyncClient`] that saves through the fs-sync RPCs with optimistic concurrency (the
//! `expected_version` comes from a [`fs_sync_core::VersionTracker`]), skips no-op saves without a
//! request, classifies realtime events (applied, duplicate, gap) and catches up from the change
//! log. Errors reach JS as `FsSyncError`, a real `Error` subclass with a `kind`.
//!
//! All JS conversion lives here and in the private modules; fs-sync-core knows nothing of JS.
//!
//! Values cross the boundary as JSON: `to_js` is serde_json then `JSON.parse`, `from_js` is
//! `JSON.stringify` then serde_json, and RPC responses are read as text. serde-wasm-bindgen 0.6.5
//! (`to_value`/`from_value`, `json_compatible`) was measured against it on a copy of this crate
//! (Node 20, the package's baseline wasm-release + `wasm-opt -O3` build; µs per conversion,
//! medians of 3 processes × 7 rounds):
//!
//! | payload | JSON | serde-wasm-bindgen |
//! |---|---|---|
//! | a `Head` (Rust → JS) | 1.3 | 0.9 |
//! | an event with 4 KiB of content (JS → `Event`) | 25 | 18; 14 straight to `Event` |
//! | `saveAll`'s result for 2,000 files (Rust → JS) | 1,270 | 3,150 |
//! | `get_project_snapshot`'s response for 2,000 files, which `load()` reads (JS → Rust) | 3,000 from the text | 8,600 (`response.json()`, then `from_value`) |
//! | `.wasm`, gzipped | 126,486 B | 129,974 B |
//!
//! JSON is kept: serde-wasm-bindgen saves under 10 µs on small values, next to a request's
//! milliseconds, costs 2.5–3× on large ones, and takes 3.4 KiB more of the 150 KiB budget.

mod args;
mod digest;
mod error;
mod retry;
mod rpc;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use fs_sync_core::{Action, Disposition, Event, Follower, FollowerConfig, Input, VersionTracker};
use js_sys::{Function, Promise, Reflect};
use serde::Serialize;
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

pub use digest::set_digest;
pub use error::{ClientError, ErrorKind};
pub use retry::RetryPolicy;
use retry::{Retry, MAX_WAIT_MS};
use rpc::{TokenSource, Transport};

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = r#"
export type FileType =
  | 'typescript' | 'javascript' | 'json' | 'markdown' | 'sql' | 'css' | 'html' | 'yaml' | 'xml'
  | 'binary' | 'text';

export type FsSyncErrorKind =
  | 'conflict' | 'invalid' | 'too_large' | 'rate_limited' | 'unauthorized' | 'not_found'
  | 'network' | 'server' | 'rehydrate';

/**
 * Thrown by every call: `kind` to branch on, `details` from the server (conflict: the current
 * head), or `{ argument }` naming the argument a call refused.
 */
export interface FsSyncErrorShape extends Error {
  name: 'FsSyncError';
  kind: FsSyncErrorKind;
  details: any;
  status: number | null;
  code: string | null;
}

export interface RetryOptions {
  /** Attempts in all, the first included: an integer, at least 1 (default 4; 1 = never retry). */
  maxAttempts?: number;
  /** First backoff in ms (default 200), doubled per retry, with full jitter; an integer up to 2147483647. */
  baseDelayMs?: number;
  /** Cap on one wait in ms (default 5000); an integer up to 2147483647. */
  maxDelayMs?: number;
}

export interface ClientOptions {
  supabaseUrl: string;
  anonKey: string;
  projectId: string;
  /** A fixed access token; or give getAccessToken. Without either, calls run as anon. */
  accessToken?: string;
  /** Called before every request, e.g. `async () => (await supabase.auth.getSession()).data.session?.access_token`. */
  getAccessToken?: () => string | Promise<string>;
  /** The fetch to use (default: globalThis.fetch). */
  fetch?: (input: string, init?: any) => Promise<any>;
  retry?: RetryOptions;
}

/** A file's head after a write. */
export interface Head {
  path: string;
  version: number;
  contentHash: string | null;
  size: number;
  fileType: string;
  deleted: boolean;
  /** The change-log seq of this write; null for a no-op. */
  seq: number | null;
  /** True when nothing changed (same content as the head). */
  noop: boolean;
  /** For a rename: the old path and its tombstone version. */
  fromPath?: string;
  fromVersion?: number;
}

/** What the client knows of a path. */
export interface KnownHead {
  version: number;
  contentHash: string | null;
  deleted: boolean;
}

export interface FileInput {
  path: string;
  content?: string;
  fileType?: FileType;
  /** Delete the file instead of writing it. */
  delete?: boolean;
}

export interface BulkResult {
  seq: number | null;
  applied: number;
  unchanged: number;
  files: { path: string; version: number; contentHash: string | null; deleted: boolean; noop: boolean }[];
}

export interface LoadResult {
  asOfSeq: number;
  files: number;
}

/** `syncNeeded`: the log must be read (a gap, or a position check is due): call `catchUp()`. */
export type ApplyResult =
  | { kind: 'applied'; changedPaths: string[]; lastSeq: number; syncNeeded: boolean }
  | { kind: 'duplicate'; changedPaths: string[]; lastSeq: number; syncNeeded: boolean }
  | { kind: 'gap'; from: number; to: number; changedPaths: string[]; lastSeq: number; syncNeeded: boolean };

export interface CatchUpResult {
  applied: number;
  changedPaths: string[];
  lastSeq: number;
}
"#;

/// Runs when the module is instantiated: path rules use the engine's own Unicode normalizer.
#[wasm_bindgen(start)]
pub fn start() {
    fs_sync_core::install_nfc(|s| String::from(js_sys::JsString::from(s).normalize("NFC")));
}

/// What `contentHash` (wasm-pkg/src/hash.js, which hashes through the scratch buffer below)
/// throws for an `input` that is neither a string nor a Uint8Array: an `FsSyncError` of kind
/// `invalid`.
#[wasm_bindgen(js_name = hashInputError)]
pub fn hash_input_error(input: JsValue) -> JsValue {
    args::expected("input", "be a string or a Uint8Array", &input).to_js()
}

/// Size of the input area `contentHash` (wasm-pkg/src/hash.js) encodes strings and copies bytes
/// into. Inputs that fit are hashed in one call; larger ones stream through it in pieces.
const SCRATCH_INPUT: usize = 48 * 1024;

/// Bytes before the input area: the hash as 64 lowercase hex digits.
const HEX: usize = 64;

thread_local! {
    /// The hex digest, then the input area. JS writes into it directly and decodes the digest
    /// from it, so hashing allocates nothing on either side and Wasm memory does not grow with the
    /// input. A boxed slice that is never resized, so its address stays valid for the module's
    /// lifetime.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; HEX + SCRATCH_INPUT].into_boxed_slice());
    /// The hash of an input being streamed through the scratch buffer.
    static STREAM: RefCell<fs_sync_core::ContentHasher> = RefCell::default();
}

/// `[address, hex digits, input area size]`: `contentHash` writes input at `address + hex digits`
/// and reads the hash at `address`.
#[wasm_bindgen(js_name = hashScratch)]
pub fn hash_scratch() -> Vec<u32> {
    let ptr = SCRATCH.with_borrow_mut(|buf| buf.as_mut_ptr() as u32);
    vec![ptr, HEX as u32, SCRATCH_INPUT as u32]
}

fn put_hex(buf: &mut [u8], digest: &[u8; 32]) {
    hex::encode_to_slice(digest, &mut buf[..HEX]).expect("64 bytes hold a 32-byte digest");
}

/// Hashes the first `len` bytes of the input area as a whole input.
#[wasm_bindgen(js_name = hashScratchInput)]
pub fn hash_scratch_input(len: usize) {
    SCRATCH.with_borrow_mut(|buf| {
        let digest = fs_sync_core::content_digest(&buf[HEX..HEX + len]);
        put_hex(buf, &digest);
    });
}

/// Feeds the first `len` bytes of the input area to the streamed hash.
#[wasm_bindgen(js_name = hashScratchUpdate)]
pub fn hash_scratch_update(len: usize) {
    SCRATCH.with_borrow(|buf| STREAM.with_borrow_mut(|h| h.update(&buf[HEX..HEX + len])));
}

/// Ends the streamed hash (the next stream starts empty).
#[wasm_bindgen(js_name = hashScratchFinish)]
pub fn hash_scratch_finish() {
    let digest = STREAM.take().digest();
    SCRATCH.with_borrow_mut(|buf| put_hex(buf, &digest));
}

/// Throws an `FsSyncError` of kind `invalid` naming the broken rule when `path` is not a valid
/// project path.
#[wasm_bindgen(js_name = validatePath)]
pub fn validate_path(
    #[wasm_bindgen(unchecked_param_type = "string")] path: JsValue,
) -> Result<(), JsValue> {
    let path = args::path(&path, "path").map_err(|e| e.to_js())?;
    fs_sync_core::validate_path(&path).map_err(|e| ClientError::from(e).to_js())
}

/// The file type fs-sync stores for `path`, from its extension.
#[wasm_bindgen(js_name = inferFileType, unchecked_return_type = "FileType")]
pub fn infer_file_type(
    #[wasm_bindgen(unchecked_param_type = "string")] path: JsValue,
) -> Result<String, JsValue> {
    let path = args::path(&path, "path").map_err(|e| e.to_js())?;
    Ok(fs_sync_core::infer_file_type(&path).as_str().to_owned())
}

/// The `FsSyncError` class, for `instanceof` checks.
#[wasm_bindgen(js_name = errorClass, unchecked_return_type = "new (...args: any[]) => FsSyncErrorShape")]
pub fn error_class() -> JsValue {
    error::error_class()
}

/// Saves, deletes and renames one project's files through the fs-sync RPCs.
#[wasm_bindgen]
pub struct FsSyncClient {
    inner: Rc<Inner>,
}

struct Inner {
    transport: Transport,
    project_id: String,
    state: RefCell<State>,
}

struct State {
    heads: VersionTracker,
    /// Core's change-log follower: ordering, gaps, paging and position checks.
    follow: Follower<Event>,
    /// The request the follower asked for that `catchUp()` has not made yet.
    wants: Option<Action<Event>>,
    /// Loads in flight.
    loads: u32,
    /// While a load is in flight, every head that moved: replayed over the snapshot when it
    /// arrives, so a save or event that lands during a reload is never undone by it.
    journal: Vec<(String, u64, Option<String>)>,
}

impl State {
    fn record(&mut self, path: &str, version: u64, hash: Option<&str>) {
        if self.heads.record(path, version, hash) && self.loads > 0 {
            self.journal
                .push((path.to_owned(), version, hash.map(str::to_owned)));
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HeadOut {
    path: String,
    version: u64,
    content_hash: Option<String>,
    size: u64,
    file_type: String,
    deleted: bool,
    seq: Option<u64>,
    noop: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    from_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from_version: Option<u64>,
}

impl HeadOut {
    fn from_server(v: &Value) -> Result<HeadOut, ClientError> {
        let bad = || {
            ClientError::local(
                ErrorKind::Server,
                format!("unexpected RPC result {v}"),
                Value::Null,
            )
        };
        Ok(HeadOut {
            path: v["file_path"].as_str().ok_or_else(bad)?.to_owned(),
            version: v["version"].as_u64().ok_or_else(bad)?,
            content_hash: v["content_hash"].as_str().map(str::to_owned),
            size: v["size_bytes"].as_u64().unwrap_or(0),
            file_type: v["file_type"].as_str().unwrap_or("text").to_owned(),
            deleted: v["is_deleted"].as_bool().unwrap_or(false),
            seq: v["seq"].as_u64(),
            noop: v["noop"].as_bool().unwrap_or(false),
            from_path: v["from_path"].as_str().map(str::to_owned),
            from_version: v["from_version"].as_u64(),
        })
    }
}

/// Plain data to a JS value. JSON crosses the boundary: JSON.parse is fast and keeps a
/// general-purpose (de)serializer out of the Wasm, which matters for the size budget.
fn to_js<T: Serialize>(value: &T) -> JsValue {
    // Neither step can fail for plain data; NULL keeps error formatting out of the Wasm.
    serde_json::to_string(value)
        .ok()
        .and_then(|text| js_sys::JSON::parse(&text).ok())
        .unwrap_or(JsValue::NULL)
}

/// A JS value (plain data) to JSON, or an `invalid` error naming the argument `name`.
fn from_js(value: &JsValue, name: &str) -> Result<Value, ClientError> {
    // JSON.stringify throws on a BigInt or a cycle, and gives undefined for a symbol.
    let text = js_sys::JSON::stringify(value)
        .ok()
        .and_then(|t| t.as_string())
        .ok_or_else(|| args::invalid(name, "is not JSON data"))?;
    serde_json::from_str(&text).map_err(|e| args::invalid(name, format!("is not JSON data: {e}")))
}

/// One of `saveAll`'s files.
struct FileInput {
    path: String,
    content: Option<String>,
    file_type: Option<String>,
    delete: bool,
}

/// `saveAll`'s `files`.
fn parse_files(files: &JsValue) -> Result<Vec<FileInput>, ClientError> {
    args::array(files, "files")?
        .iter()
        .enumerate()
        .map(|(i, file)| {
            let name = format!("files[{i}]");
            let file = args::record(&file, &name)?;
            Ok(FileInput {
                path: args::field(&file, &name, "path", args::path)?,
                content: args::optional_field(&file, &name, "content", args::string)?,
                file_type: args::optional_field(&file, &name, "fileType", args::file_type)?,
                delete: args::optional_field(&file, &name, "delete", args::boolean)?
                    .unwrap_or(false),
            })
        })
        .collect()
}

/// The constructor's `options`: the transport, and the project id.
fn parse_options(options: &JsValue) -> Result<(Transport, String), ClientError> {
    let options = args::record(options, "options")?;
    let required = |key: &str| {
        args::field(&options, "options", key, |value, name| {
            let s = args::string(value, name)?;
            if s.is_empty() {
                return Err(args::invalid(name, "must not be empty"));
            }
            Ok(s)
        })
    };
    let supabase_url = required("supabaseUrl")?;
    let anon_key = required("anonKey")?;
    let project_id = required("projectId")?;
    let token = match (
        args::optional_field(&options, "options", "getAccessToken", args::function)?,
        args::optional_field(&options, "options", "accessToken", args::string)?,
    ) {
        (Some(f), _) => TokenSource::Callback(f),
        (None, Some(t)) => TokenSource::Fixed(t),
        (None, None) => TokenSource::Anon,
    };
    let (fetch, fetch_this) =
        match args::optional_field(&options, "options", "fetch", args::function)? {
            Some(f) => (f, JsValue::UNDEFINED),
            None => {
                let global = js_sys::global();
                let f = Reflect::get(&global, &"fetch".into())
                    .ok()
                    .and_then(|f| f.dyn_into::<Function>().ok())
                    .ok_or_else(|| {
                        args::invalid("options.fetch", "is needed: there is no global fetch")
                    })?;
                (f, global.into())
            }
        };
    let mut retry = RetryPolicy::default();
    if let Some(r) = args::optional_field(&options, "options", "retry", args::record)? {
        let field = |key: &str, range| {
            args::optional_field(&r, "options.retry", key, |value, name| {
                args::integer(value, name, range)
            })
        };
        let wait = 0..=MAX_WAIT_MS;
        if let Some(n) = field("maxAttempts", 1..=u32::MAX)? {
            retry.max_attempts = n;
        }
        if let Some(n) = field("baseDelayMs", wait.clone())? {
            retry.base_delay_ms = n.into();
        }
        if let Some(n) = field("maxDelayMs", wait)? {
            retry.max_delay_ms = n.into();
        }
    }
    let transport = Transport {
        rpc_url: format!("{}/rest/v1/rpc/", supabase_url.trim_end_matches('/')),
        anon_key,
        token,
        fetch,
        fetch_this,
        retry,
    };
    Ok((transport, project_id))
}

fn promise<F>(future: F) -> Promise
where
    F: std::future::Future<Output = Result<JsValue, ClientError>> + 'static,
{
    future_to_promise(async move { future.await.map_err(|e| e.to_js()) })
}

#[wasm_bindgen]
impl FsSyncClient {
    /// Creates a client for one project. Throws `FsSyncError` (`invalid`) on bad options.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "ClientOptions")] options: JsValue,
    ) -> Result<FsSyncClient, JsValue> {
        let (transport, project_id) = parse_options(&options).map_err(|e| e.to_js())?;
        Ok(FsSyncClient {
            inner: Rc::new(Inner {
                transport,
                project_id,
                state: RefCell::new(State {
                    heads: VersionTracker::new(),
                    follow: Follower::new(0, now(), FollowerConfig::default()),
                    wants: None,
                    loads: 0,
                    journal: Vec::new(),
                }),
            }),
        })
    }

    /// The project this client writes to.
    #[wasm_bindgen(getter, js_name = projectId)]
    pub fn project_id(&self) -> String {
        self.inner.project_id.clone()
    }

    /// The last change-log seq applied to the tracker.
    #[wasm_bindgen(getter, js_name = lastSeq)]
    pub fn last_seq(&self) -> f64 {
        self.inner.state.borrow().follow.applied() as f64
    }

    /// Loads every live head and the seq they reflect, in one consistent read.
    #[wasm_bindgen(unchecked_return_type = "Promise<LoadResult>")]
    pub fn load(&self) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.state.borrow_mut().loads += 1;
            let snap = inner
                .call(
                    "get_project_snapshot",
                    json!({"project_uuid": inner.project_id, "include_content": false}),
                )
                .await;
            let mut state = inner.state.borrow_mut();
            state.loads -= 1;
            let journal = if state.loads == 0 {
                std::mem::take(&mut state.journal)
            } else {
                state.journal.clone()
            };
            let snap = snap?;
            let as_of = snap["as_of_seq"].as_u64().unwrap_or(0);
            let files = snap["files"].as_array().cloned().unwrap_or_default();
            state.heads.clear();
            for f in &files {
                if let (Some(path), Some(version)) =
                    (f["file_path"].as_str(), f["version"].as_u64())
                {
                    state
                        .heads
                        .record(path, version, f["content_hash"].as_str());
                }
            }
            for (path, version, hash) in &journal {
                state.heads.record(path, *version, hash.as_deref());
            }
            state.follow.advance_to(as_of);
            Ok(to_js(&json!({"asOfSeq": as_of, "files": files.len()})))
        })
    }

    /// Saves `content` at `path`. A save whose content equals the known head makes no request.
    /// Sends the known version as `expected_version` (0 for a path never seen), so a stale
    /// client gets a `conflict` instead of overwriting.
    #[wasm_bindgen(unchecked_return_type = "Promise<Head>")]
    pub fn save(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] path: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] content: JsValue,
        #[wasm_bindgen(js_name = fileType, unchecked_optional_param_type = "FileType")]
        file_type: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        let parsed = args::path(&path, "path").and_then(|path| {
            let text = args::string(&content, "content")?;
            Ok((
                path,
                text,
                args::optional(&file_type, "fileType", args::file_type)?,
            ))
        });
        promise(async move {
            let (path, text, file_type) = parsed?;
            fs_sync_core::validate_path(&path)?;
            // The JS string too: an installed digest hashes it without a copy into Rust.
            let hash = digest::content_hash(&content, &text);
            let content = text;
            let expected = {
                let state = inner.state.borrow();
                // An explicit type may differ from the stored one: let the server decide.
                if file_type.is_none() && state.heads.is_noop(&path, &hash) {
                    let head = state.heads.head(&path).expect("a no-op has a head");
                    return Ok(to_js(&HeadOut {
                        path: path.clone(),
                        version: head.version,
                        content_hash: Some(hash),
                        size: content.len() as u64,
                        file_type: file_type.unwrap_or_else(|| {
                            fs_sync_core::infer_file_type(&path).as_str().into()
                        }),
                        deleted: false,
                        seq: None,
                        noop: true,
                        from_path: None,
                        from_version: None,
                    }));
                }
                state.heads.expected_version(&path)
            };
            let v = inner
                .call(
                    "upsert_project_file",
                    json!({"project_uuid": inner.project_id, "p_file_path": path, "p_content": content,
                           "p_file_type": file_type, "expected_version": expected}),
                )
                .await?;
            let head = HeadOut::from_server(&v)?;
            inner
                .state
                .borrow_mut()
                .record(&head.path, head.version, head.content_hash.as_deref());
            Ok(to_js(&head))
        })
    }

    /// Deletes `path` (a tombstone version), checked against the known version.
    #[wasm_bindgen(unchecked_return_type = "Promise<Head>")]
    pub fn remove(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] path: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        let parsed = args::path(&path, "path");
        promise(async move {
            let path = parsed?;
            fs_sync_core::validate_path(&path)?;
            let expected = inner.known_version(&path);
            let v = inner
                .call(
                    "delete_project_file",
                    json!({"project_uuid": inner.project_id, "p_file_path": path, "expected_version": expected}),
                )
                .await?;
            let head = HeadOut::from_server(&v)?;
            inner
                .state
                .borrow_mut()
                .record(&head.path, head.version, None);
            Ok(to_js(&head))
        })
    }

    /// Moves `from` to `to` as one change (one event).
    #[wasm_bindgen(unchecked_return_type = "Promise<Head>")]
    pub fn rename(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] from: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] to: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        let parsed = args::path(&from, "from").and_then(|from| Ok((from, args::path(&to, "to")?)));
        promise(async move {
            let (from, to) = parsed?;
            fs_sync_core::validate_path(&from)?;
            fs_sync_core::validate_path(&to)?;
            let expected = inner.known_version(&from);
            let v = inner
                .call_unrepeatable(
                    "rename_project_file",
                    json!({"project_uuid": inner.project_id, "p_from_path": from, "p_to_path": to,
                           "expected_version": expected}),
                )
                .await?;
            let head = HeadOut::from_server(&v)?;
            let mut state = inner.state.borrow_mut();
            if let Some(from_version) = head.from_version {
                state.record(&from, from_version, None);
            }
            state.record(&head.path, head.version, head.content_hash.as_deref());
            Ok(to_js(&head))
        })
    }

    /// Writes and deletes many files in one round trip, all or nothing, as one `bulk:apply` event.
    #[wasm_bindgen(js_name = saveAll, unchecked_return_type = "Promise<BulkResult>")]
    pub fn save_all(
        &self,
        #[wasm_bindgen(unchecked_param_type = "FileInput[]")] files: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        // Read synchronously: the caller may change the array once this returns.
        let parsed = parse_files(&files);
        promise(async move {
            let files = parsed?;
            let mut entries = Vec::with_capacity(files.len());
            for f in &files {
                let path = f.path.as_str();
                fs_sync_core::validate_path(path)?;
                let expected = if f.delete {
                    inner.known_version(path)
                } else {
                    Some(inner.state.borrow().heads.expected_version(path))
                };
                entries.push(json!({"file_path": path, "content": f.content,
                    "file_type": f.file_type, "delete": f.delete, "expected_version": expected}));
            }
            let v = inner
                .call(
                    "bulk_upsert_project_files",
                    json!({"project_uuid": inner.project_id, "files": entries}),
                )
                .await?;
            let mut out = Vec::new();
            {
                let mut state = inner.state.borrow_mut();
                for f in v["files"].as_array().into_iter().flatten() {
                    let (Some(path), Some(version)) =
                        (f["file_path"].as_str(), f["version"].as_u64())
                    else {
                        continue;
                    };
                    let deleted = f["deleted"].as_bool().unwrap_or(false);
                    let hash = if deleted {
                        None
                    } else {
                        f["content_hash"].as_str()
                    };
                    state.record(path, version, hash);
                    out.push(json!({"path": path, "version": version, "contentHash": hash,
                                    "deleted": deleted, "noop": f["noop"].as_bool().unwrap_or(false)}));
                }
            }
            Ok(to_js(
                &json!({"seq": v["seq"], "applied": v["applied"], "unchanged": v["unchanged"], "files": out}),
            ))
        })
    }

    /// Feeds a realtime event (the broadcast's payload, or the whole broadcast message) into the
    /// tracker. Returns `applied` with the paths that changed, `duplicate` for one already seen, or
    /// `gap` with the missing range: then call `catchUp()`.
    #[wasm_bindgen(js_name = applyEvent, unchecked_return_type = "ApplyResult")]
    pub fn apply_event(
        &self,
        #[wasm_bindgen(unchecked_param_type = "object")] payload: JsValue,
    ) -> Result<JsValue, JsValue> {
        let payload = args::record(&payload, "payload")
            .and_then(|p| from_js(&p, "payload"))
            .map_err(|e| e.to_js())?;
        // supabase-js hands listeners {type, event, payload, meta}; accept that too.
        let value = match payload.get("seq") {
            None if payload.get("payload").is_some() => payload["payload"].clone(),
            _ => payload,
        };
        let event = parse_event(value, "payload").map_err(|e| e.to_js())?;
        let mut state = self.inner.state.borrow_mut();
        let disposition = state.follow.offer(now(), event);
        let changed = settle(&mut state).map_err(|e| e.to_js())?;
        let mut result = match disposition {
            Disposition::Duplicate => json!({"kind": "duplicate"}),
            Disposition::Gap { from, to } => json!({"kind": "gap", "from": from, "to": to}),
            Disposition::Apply => json!({"kind": "applied"}),
        };
        result["changedPaths"] = json!(changed);
        result["lastSeq"] = json!(state.follow.applied());
        result["syncNeeded"] = json!(state.wants.is_some());
        Ok(to_js(&result))
    }

    /// Reads the change log after the last applied seq (list_project_events, page by page) and
    /// applies it, and answers a position check the follower asked for. Call it after a
    /// `syncNeeded` result, after the channel (re)subscribes, and every `nextSyncInMs`.
    #[wasm_bindgen(js_name = catchUp, unchecked_return_type = "Promise<CatchUpResult>")]
    pub fn catch_up(&self) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let before = inner.state.borrow().follow.applied();
            let mut changed = Vec::new();
            {
                let mut state = inner.state.borrow_mut();
                if state.wants.is_none() {
                    state.follow.catch_up_now();
                }
                changed.extend(settle(&mut state)?);
            }
            loop {
                let wanted = inner.state.borrow_mut().wants.take();
                let input = match wanted {
                    None => break,
                    Some(Action::FetchEvents { after, limit }) => {
                        let rows = inner
                            .call(
                                "list_project_events",
                                json!({"project_uuid": inner.project_id, "after_seq": after, "max_events": limit}),
                            )
                            .await;
                        let rows = rows.map_err(|e| inner.keep_wanting(wanted, e))?;
                        let mut page = Vec::new();
                        for row in rows.as_array().cloned().unwrap_or_default() {
                            page.push(parse_event(row, "list_project_events row")?);
                        }
                        Input::Page(page)
                    }
                    Some(Action::CheckPosition) => {
                        let v = inner
                            .call(
                                "get_project_sync_state",
                                json!({"project_uuid": inner.project_id}),
                            )
                            .await
                            .map_err(|e| inner.keep_wanting(wanted, e))?;
                        Input::Position(v["seq"].as_u64().unwrap_or(0))
                    }
                    Some(Action::Rehydrate { reason }) => {
                        // Until the app reloads (load() advances past the pruned range).
                        inner.state.borrow_mut().wants = Some(Action::Rehydrate {
                            reason: reason.clone(),
                        });
                        return Err(ClientError::local(
                            ErrorKind::Rehydrate,
                            format!("{reason}: call load() to start again from the current files"),
                            Value::Null,
                        ));
                    }
                    Some(Action::Apply(_) | Action::Persist { .. }) => {
                        unreachable!("settle applies and persists itself")
                    }
                };
                let mut state = inner.state.borrow_mut();
                state.follow.handle(now(), input);
                changed.extend(settle(&mut state)?);
            }
            let last = inner.state.borrow().follow.applied();
            changed.sort();
            changed.dedup();
            Ok(to_js(
                &json!({"applied": last - before, "changedPaths": changed, "lastSeq": last}),
            ))
        })
    }

    /// Milliseconds until the follower wants the log read again (a position check: a dropped
    /// last event has no successor to reveal it); call `catchUp()` then.
    #[wasm_bindgen(getter, js_name = nextSyncInMs)]
    pub fn next_sync_in_ms(&self) -> f64 {
        let state = self.inner.state.borrow();
        if state.wants.is_some() {
            return 0.0;
        }
        match state.follow.next_wakeup() {
            Some(at) => at.saturating_sub(now()).as_secs_f64() * 1e3,
            None => 0.0,
        }
    }

    /// What the client knows of `path`, or undefined.
    #[wasm_bindgen(unchecked_return_type = "KnownHead | undefined")]
    pub fn head(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] path: JsValue,
    ) -> Result<JsValue, JsValue> {
        let path = args::path(&path, "path").map_err(|e| e.to_js())?;
        Ok(match self.inner.state.borrow().heads.head(&path) {
            Some(h) => to_js(
                &json!({"version": h.version, "contentHash": h.content_hash, "deleted": h.is_deleted()}),
            ),
            None => JsValue::UNDEFINED,
        })
    }

    /// True when `content` differs from the known head of `path` (or the path has none).
    #[wasm_bindgen(js_name = isDirty)]
    pub fn is_dirty(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] path: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] content: JsValue,
    ) -> Result<bool, JsValue> {
        let path = args::path(&path, "path").map_err(|e| e.to_js())?;
        let text = args::string(&content, "content").map_err(|e| e.to_js())?;
        let hash = digest::content_hash(&content, &text);
        Ok(!self.inner.state.borrow().heads.is_noop(&path, &hash))
    }

    /// Whether a feature flag is on for the signed-in user.
    #[wasm_bindgen(js_name = isFeatureEnabled, unchecked_return_type = "Promise<boolean>")]
    pub fn is_feature_enabled(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] flag: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        let parsed = args::string(&flag, "flag");
        promise(async move {
            let flag = parsed?;
            let v = inner
                .call("is_feature_enabled", json!({"flag_key": flag}))
                .await?;
            Ok(JsValue::from_bool(v.as_bool().unwrap_or(false)))
        })
    }

    /// The flags that are on for the signed-in user.
    #[wasm_bindgen(js_name = enabledFeatures, unchecked_return_type = "Promise<string[]>")]
    pub fn enabled_features(&self) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let v = inner.call("get_enabled_features", json!({})).await?;
            Ok(to_js(&v.as_array().cloned().unwrap_or_default()))
        })
    }
}

impl Inner {
    /// A request failed: it stays wanted (the transport already retried what it may), so the
    /// next `catchUp()` makes it again.
    fn keep_wanting(&self, wanted: Option<Action<Event>>, e: ClientError) -> ClientError {
        self.state.borrow_mut().wants = wanted;
        e
    }

    async fn call(&self, name: &str, args: Value) -> Result<Value, ClientError> {
        self.transport.call(name, &args, Retry::Transient).await
    }

    /// For a write that a lost response would make unsafe to repeat (a rename that committed
    /// cannot be renamed again): only retried when the server refused it (429).
    async fn call_unrepeatable(&self, name: &str, args: Value) -> Result<Value, ClientError> {
        self.transport.call(name, &args, Retry::RefusedOnly).await
    }

    /// The version to check a delete or rename against: only when the client knows the path.
    fn known_version(&self, path: &str) -> Option<u64> {
        self.state.borrow().heads.head(path).map(|h| h.version)
    }
}

/// Seqs and versions come back to JS as numbers, exact only up to 2^53 - 1.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// An event, from `name` (the argument, or where the server's rows came from).
fn parse_event(value: Value, name: &str) -> Result<Event, ClientError> {
    let not_event =
        |e: &dyn std::fmt::Display| args::invalid(name, format!("is not an fs-sync event: {e}"));
    let event: Event = serde_json::from_value(value).map_err(|e| not_event(&e))?;
    event.changes().map_err(|e| not_event(&e))?;
    let numbers = [Some(event.seq), event.version, event.from_version]
        .into_iter()
        .flatten()
        .chain(event.files.iter().flatten().map(|f| f.version));
    if let Some(n) = numbers.max().filter(|&n| n > MAX_SAFE_INTEGER) {
        return Err(not_event(&format!("{n} is above Number.MAX_SAFE_INTEGER")));
    }
    Ok(event)
}

/// Does the follower's local work: applies to the tracker what it hands out, in order. Stops at
/// the first request it asks for (kept in `wants` for `catchUp()`). Returns the paths whose head
/// moved.
fn settle(state: &mut State) -> Result<Vec<String>, ClientError> {
    let mut changed = Vec::new();
    let mut refused = None;
    while state.wants.is_none() {
        let Some(action) = state.follow.poll(now()) else {
            break;
        };
        let batch = match action {
            Action::Apply(batch) => batch,
            Action::Persist { .. } => continue,
            other => {
                state.wants = Some(other);
                break;
            }
        };
        for event in &batch {
            match state.heads.apply_event(event) {
                Ok(paths) => {
                    if state.loads > 0 {
                        for path in &paths {
                            let head = state
                                .heads
                                .head(path)
                                .expect("a path that just moved has a head");
                            let entry = (path.clone(), head.version, head.content_hash.clone());
                            state.journal.push(entry);
                        }
                    }
                    changed.extend(paths);
                }
                // The event is past (its seq is used); the first refusal is reported.
                Err(e) => {
                    refused.get_or_insert_with(|| {
                        ClientError::local(ErrorKind::Invalid, e.to_string(), Value::Null)
                    });
                }
            }
        }
        let through = batch.last().map_or(0, |e| e.seq);
        state.follow.handle(now(), Input::Applied { through });
    }
    match refused {
        Some(e) => Err(e),
        None => Ok(changed),
    }
}

/// Now, on the wall clock: the follower only compares times it was given.
fn now() -> Duration {
    Duration::from_secs_f64(js_sys::Date::now() / 1e3)
}
