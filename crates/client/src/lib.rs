//! fs-sync-client: the `@velocity/fs-sync` npm package, compiled to Wasm.
//!
//! The frontend gets content hashing, path rules and file types straight from fs-sync-core, and an
//! [`FsSyncClient`] that saves through the fs-sync RPCs with optimistic concurrency (the
//! `expected_version` comes from a [`fs_sync_core::VersionTracker`]), skips no-op saves without a
//! request, classifies realtime events (applied, duplicate, gap) and catches up from the change
//! log. Errors reach JS as `FsSyncError`, a real `Error` subclass with a `kind`.
//!
//! All JS conversion lives here and in the private modules; fs-sync-core knows nothing of JS.

mod error;
mod retry;
mod rpc;

use std::cell::RefCell;
use std::rc::Rc;

use fs_sync_core::{Disposition, Event, Sequencer, VersionTracker};
use js_sys::{Function, Promise, Reflect};
use serde::Serialize;
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

pub use error::{ClientError, ErrorKind};
use retry::Retry;
pub use retry::RetryPolicy;
use rpc::{TokenSource, Transport};

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = r#"
export type FileType =
  | 'typescript' | 'javascript' | 'json' | 'markdown' | 'sql' | 'css' | 'html' | 'yaml' | 'xml'
  | 'binary' | 'text';

export type FsSyncErrorKind =
  | 'conflict' | 'invalid' | 'too_large' | 'rate_limited' | 'unauthorized' | 'not_found'
  | 'network' | 'server';

/** Thrown by every call: `kind` to branch on, `details` from the server (conflict: the current head). */
export interface FsSyncErrorShape extends Error {
  name: 'FsSyncError';
  kind: FsSyncErrorKind;
  details: any;
  status: number | null;
  code: string | null;
}

export interface RetryOptions {
  /** Attempts in all, the first included (default 4; 1 = never retry). */
  maxAttempts?: number;
  /** First backoff in ms (default 200), doubled per retry, with full jitter. */
  baseDelayMs?: number;
  /** Cap on one wait in ms (default 5000). */
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

export type ApplyResult =
  | { kind: 'applied'; changedPaths: string[]; lastSeq: number }
  | { kind: 'duplicate'; changedPaths: string[]; lastSeq: number }
  | { kind: 'gap'; from: number; to: number; changedPaths: string[]; lastSeq: number };

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
/// throws for an input that is neither a string nor a Uint8Array: an `FsSyncError` of kind
/// `invalid`.
#[wasm_bindgen(js_name = hashInputError)]
pub fn hash_input_error() -> JsValue {
    ClientError::local(
        ErrorKind::Invalid,
        "contentHash takes a string or a Uint8Array",
        Value::Null,
    )
    .to_js()
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
pub fn validate_path(path: &str) -> Result<(), JsValue> {
    fs_sync_core::validate_path(path).map_err(|e| ClientError::from(e).to_js())
}

/// The file type fs-sync stores for `path`, from its extension.
#[wasm_bindgen(js_name = inferFileType, unchecked_return_type = "FileType")]
pub fn infer_file_type(path: &str) -> String {
    fs_sync_core::infer_file_type(path).as_str().to_owned()
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
    order: Sequencer<Event>,
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

/// A JS value (plain data) to JSON, or an `invalid` error naming `what`.
fn from_js(value: &JsValue, what: &str) -> Result<Value, ClientError> {
    let text = js_sys::JSON::stringify(value)
        .ok()
        .and_then(|t| t.as_string())
        .ok_or_else(|| {
            ClientError::local(
                ErrorKind::Invalid,
                format!("{what} is not JSON data"),
                Value::Null,
            )
        })?;
    serde_json::from_str(&text).map_err(|e| {
        ClientError::local(
            ErrorKind::Invalid,
            format!("{what} is not JSON data: {e}"),
            Value::Null,
        )
    })
}

fn invalid(message: impl Into<String>) -> JsValue {
    ClientError::local(ErrorKind::Invalid, message, Value::Null).to_js()
}

fn string_option(options: &JsValue, key: &str) -> Result<Option<String>, JsValue> {
    let v = Reflect::get(options, &key.into()).unwrap_or(JsValue::UNDEFINED);
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    v.as_string()
        .map(Some)
        .ok_or_else(|| invalid(format!("option {key} must be a string")))
}

fn function_option(options: &JsValue, key: &str) -> Result<Option<Function>, JsValue> {
    let v = Reflect::get(options, &key.into()).unwrap_or(JsValue::UNDEFINED);
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    v.dyn_into::<Function>()
        .map(Some)
        .map_err(|_| invalid(format!("option {key} must be a function")))
}

fn number_option(options: &JsValue, key: &str) -> Option<f64> {
    Reflect::get(options, &key.into())
        .ok()
        .and_then(|v| v.as_f64())
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
        if !options.is_object() {
            return Err(invalid("FsSyncClient needs an options object"));
        }
        let required = |key: &str| {
            string_option(&options, key)?
                .filter(|s| !s.is_empty())
                .ok_or_else(|| invalid(format!("option {key} is required")))
        };
        let supabase_url = required("supabaseUrl")?;
        let anon_key = required("anonKey")?;
        let project_id = required("projectId")?;
        let token = match (
            function_option(&options, "getAccessToken")?,
            string_option(&options, "accessToken")?,
        ) {
            (Some(f), _) => TokenSource::Callback(f),
            (None, Some(t)) => TokenSource::Fixed(t),
            (None, None) => TokenSource::Anon,
        };
        let global = js_sys::global();
        let (fetch, fetch_this) = match function_option(&options, "fetch")? {
            Some(f) => (f, JsValue::UNDEFINED),
            None => {
                let f = Reflect::get(&global, &"fetch".into())
                    .ok()
                    .and_then(|f| f.dyn_into::<Function>().ok())
                    .ok_or_else(|| invalid("no global fetch: pass options.fetch"))?;
                (f, global.into())
            }
        };
        let mut retry = RetryPolicy::default();
        if let Ok(r) = Reflect::get(&options, &"retry".into()) {
            if r.is_object() {
                if let Some(n) = number_option(&r, "maxAttempts") {
                    retry.max_attempts = n.max(1.0) as u32;
                }
                if let Some(n) = number_option(&r, "baseDelayMs") {
                    retry.base_delay_ms = n.max(0.0) as u64;
                }
                if let Some(n) = number_option(&r, "maxDelayMs") {
                    retry.max_delay_ms = n.max(0.0) as u64;
                }
            }
        }
        Ok(FsSyncClient {
            inner: Rc::new(Inner {
                transport: Transport {
                    rpc_url: format!("{}/rest/v1/rpc/", supabase_url.trim_end_matches('/')),
                    anon_key,
                    token,
                    fetch,
                    fetch_this,
                    retry,
                },
                project_id,
                state: RefCell::new(State {
                    heads: VersionTracker::new(),
                    order: Sequencer::new(0),
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
        self.inner.state.borrow().order.last_applied() as f64
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
            state.order.advance_to(as_of);
            Ok(to_js(&json!({"asOfSeq": as_of, "files": files.len()})))
        })
    }

    /// Saves `content` at `path`. A save whose content equals the known head makes no request.
    /// Sends the known version as `expected_version` (0 for a path never seen), so a stale
    /// client gets a `conflict` instead of overwriting.
    #[wasm_bindgen(unchecked_return_type = "Promise<Head>")]
    pub fn save(
        &self,
        path: String,
        content: String,
        #[wasm_bindgen(unchecked_param_type = "FileType | undefined")] file_type: Option<String>,
    ) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            fs_sync_core::validate_path(&path)?;
            let hash = fs_sync_core::content_hash(content.as_bytes());
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
    pub fn remove(&self, path: String) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
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
    pub fn rename(&self, from: String, to: String) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
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
        let parsed = from_js(&files, "saveAll's files");
        promise(async move {
            let Value::Array(files) = parsed? else {
                return Err(ClientError::local(
                    ErrorKind::Invalid,
                    "saveAll takes an array of files",
                    Value::Null,
                ));
            };
            let mut entries = Vec::with_capacity(files.len());
            for f in &files {
                let path = f["path"].as_str().ok_or_else(|| {
                    ClientError::local(
                        ErrorKind::Invalid,
                        format!("file without a path: {f}"),
                        Value::Null,
                    )
                })?;
                fs_sync_core::validate_path(path)?;
                let delete = f["delete"].as_bool().unwrap_or(false);
                let expected = if delete {
                    inner.known_version(path)
                } else {
                    Some(inner.state.borrow().heads.expected_version(path))
                };
                entries.push(json!({"file_path": path, "content": f.get("content"), "file_type": f.get("fileType"),
                                    "delete": delete, "expected_version": expected}));
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
    pub fn apply_event(&self, payload: JsValue) -> Result<JsValue, JsValue> {
        let value = from_js(&payload, "the event payload").map_err(|e| e.to_js())?;
        // supabase-js hands listeners {type, event, payload, meta}; accept that too.
        let value = match value.get("seq") {
            None if value.get("payload").is_some() => value["payload"].clone(),
            _ => value,
        };
        let event = parse_event(value).map_err(|e| e.to_js())?;
        let mut state = self.inner.state.borrow_mut();
        let seq = event.seq;
        let result = match state.order.offer(seq, event) {
            Disposition::Duplicate => json!({"kind": "duplicate", "changedPaths": []}),
            Disposition::Gap { from, to } => {
                json!({"kind": "gap", "from": from, "to": to, "changedPaths": []})
            }
            Disposition::Apply => {
                let changed = drain(&mut state).map_err(|e| e.to_js())?;
                json!({"kind": "applied", "changedPaths": changed})
            }
        };
        let mut result = result;
        result["lastSeq"] = json!(state.order.last_applied());
        Ok(to_js(&result))
    }

    /// Reads the change log after the last applied seq (list_project_events) and applies it.
    #[wasm_bindgen(js_name = catchUp, unchecked_return_type = "Promise<CatchUpResult>")]
    pub fn catch_up(&self) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            const PAGE: u64 = 500;
            let mut applied = 0u64;
            let mut changed = Vec::new();
            loop {
                let after = inner.state.borrow().order.last_applied();
                let rows = inner
                    .call(
                        "list_project_events",
                        json!({"project_uuid": inner.project_id, "after_seq": after, "max_events": PAGE}),
                    )
                    .await?;
                let rows = rows.as_array().cloned().unwrap_or_default();
                let mut state = inner.state.borrow_mut();
                for row in &rows {
                    let event = parse_event(row.clone())?;
                    state.order.offer(event.seq, event);
                }
                let before = state.order.last_applied();
                changed.extend(drain(&mut state)?);
                applied += state.order.last_applied() - before;
                if (rows.len() as u64) < PAGE || state.order.last_applied() == before {
                    let last = state.order.last_applied();
                    changed.sort();
                    changed.dedup();
                    return Ok(to_js(
                        &json!({"applied": applied, "changedPaths": changed, "lastSeq": last}),
                    ));
                }
            }
        })
    }

    /// What the client knows of `path`, or undefined.
    #[wasm_bindgen(unchecked_return_type = "KnownHead | undefined")]
    pub fn head(&self, path: &str) -> JsValue {
        match self.inner.state.borrow().heads.head(path) {
            Some(h) => to_js(
                &json!({"version": h.version, "contentHash": h.content_hash, "deleted": h.is_deleted()}),
            ),
            None => JsValue::UNDEFINED,
        }
    }

    /// True when `content` differs from the known head of `path` (or the path has none).
    #[wasm_bindgen(js_name = isDirty)]
    pub fn is_dirty(&self, path: &str, content: &str) -> bool {
        !self
            .inner
            .state
            .borrow()
            .heads
            .is_noop(path, &fs_sync_core::content_hash(content.as_bytes()))
    }

    /// Whether a feature flag is on for the signed-in user.
    #[wasm_bindgen(js_name = isFeatureEnabled, unchecked_return_type = "Promise<boolean>")]
    pub fn is_feature_enabled(&self, flag: String) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
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

fn parse_event(value: Value) -> Result<Event, ClientError> {
    let event: Event = serde_json::from_value(value).map_err(|e| {
        ClientError::local(
            ErrorKind::Invalid,
            format!("not an fs-sync event: {e}"),
            Value::Null,
        )
    })?;
    event
        .changes()
        .map_err(|e| ClientError::local(ErrorKind::Invalid, e.to_string(), Value::Null))?;
    Ok(event)
}

/// Applies every event that is next in order; returns the paths whose head moved.
fn drain(state: &mut State) -> Result<Vec<String>, ClientError> {
    let mut changed = Vec::new();
    while let Some(event) = state.order.pop_ready() {
        let paths = state
            .heads
            .apply_event(&event)
            .map_err(|e| ClientError::local(ErrorKind::Invalid, e.to_string(), Value::Null))?;
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
    Ok(changed)
}
