//! The worker's calls to Supabase as the service role: PostgREST RPCs and one table read, and
//! Storage objects (get, upload, sign, delete). Wire formats per docs/supabase.md.

use fs_sync_core::ErrorKind;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use worker::{ByteStream, Fetch, Headers, Method, Request, RequestInit, Response, ResponseBody};

use crate::error::AppError;

/// A PostgREST error body (`{code, message, details, hint}`).
#[derive(Debug, Default, Deserialize)]
struct PostgrestError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// A Storage error body (`{statusCode, error, message}`; `statusCode` is a string).
#[derive(Debug, Default, Deserialize)]
struct StorageError {
    #[serde(default, rename = "statusCode")]
    status_code: Option<Value>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl StorageError {
    fn status(&self, http: u16) -> u16 {
        match &self.status_code {
            Some(Value::String(s)) => s.parse().unwrap_or(http),
            Some(Value::Number(n)) => n.as_u64().map(|n| n as u16).unwrap_or(http),
            _ => http,
        }
    }

    /// Storage says "no such object" as HTTP 404, or as 400 with `statusCode: "404"` /
    /// `error: "not_found"` (hosted Storage's error shape).
    fn not_found(&self, http: u16) -> bool {
        self.status(http) == 404 || self.error.as_deref() == Some("not_found")
    }
}

/// How an upload ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Uploaded {
    /// The object was created.
    Created,
    /// An object with that name already exists (a concurrent build of the same snapshot).
    AlreadyExists,
}

/// Percent-encodes one path segment for a URL (unreserved characters stay).
pub(crate) fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `bucket/a/b c` → `bucket/a/b%20c`.
pub(crate) fn encode_path(path: &str) -> String {
    path.split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

/// A response's whole body, read by the runtime in one `arrayBuffer()` and copied into Wasm
/// once. (`worker::Response::bytes` pulls the stream chunk by chunk through a promise each, which
/// costs several times more CPU on multi-megabyte bodies.)
pub(crate) async fn body_bytes(resp: &mut Response) -> Result<Vec<u8>, AppError> {
    let stream = match resp.body() {
        ResponseBody::Stream(stream) => stream.clone(),
        ResponseBody::Body(bytes) => return Ok(bytes.clone()),
        ResponseBody::Empty => return Ok(Vec::new()),
    };
    let read = async {
        let whole = worker::web_sys::Response::new_with_opt_readable_stream(Some(&stream))?;
        let buffer = wasm_bindgen_futures::JsFuture::from(whole.array_buffer()?).await?;
        Ok::<_, wasm_bindgen::JsValue>(js_sys::Uint8Array::new(&buffer).to_vec())
    };
    read.await.map_err(|e| {
        AppError::Upstream(format!(
            "reading a response body from Supabase failed: {e:?}"
        ))
    })
}

/// Error bodies are read for their message only: at most this much of one.
const ERROR_BODY_MAX: usize = 16 << 10;

/// The first `max` bytes of a body (of a chunk more at most), and whether that was all of it. The
/// rest is never read, so a body of any size costs at most `max` bytes of memory.
pub(crate) async fn read_prefix(
    mut stream: ByteStream,
    max: usize,
) -> Result<(Vec<u8>, bool), worker::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        if out.len() >= max {
            return Ok((out, false));
        }
        out.extend_from_slice(&chunk?);
    }
    let complete = out.len() <= max;
    Ok((out, complete))
}

/// At most [`ERROR_BODY_MAX`] bytes of an error response's body (empty if it cannot be read).
async fn error_body(resp: &mut Response) -> Vec<u8> {
    match resp.stream() {
        Ok(stream) => read_prefix(stream, ERROR_BODY_MAX)
            .await
            .map(|(bytes, _)| bytes)
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// The service-role client.
#[derive(Clone)]
pub(crate) struct Supabase {
    url: String,
    key: String,
}

impl Supabase {
    pub(crate) fn new(url: &str, service_key: &str) -> Supabase {
        Supabase {
            url: url.trim_end_matches('/').to_owned(),
            key: service_key.to_owned(),
        }
    }

    fn headers(&self) -> Result<Headers, AppError> {
        let h = Headers::new();
        h.set("apikey", &self.key)?;
        h.set("authorization", &format!("Bearer {}", self.key))?;
        Ok(h)
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: Headers,
        body: Option<wasm_bindgen::JsValue>,
    ) -> Result<Response, AppError> {
        let mut init = RequestInit::new();
        init.with_method(method)
            .with_headers(headers)
            .with_body(body);
        let req = Request::new_with_init(url, &init)?;
        Fetch::Request(req).send().await.map_err(|e| {
            // The URL is ours (no token in it); the error text is the runtime's.
            AppError::Upstream(format!("could not reach Supabase: {e}"))
        })
    }

    /// Calls `POST /rest/v1/rpc/<name>` with named arguments.
    pub(crate) async fn rpc<T: DeserializeOwned>(
        &self,
        name: &str,
        args: &Value,
    ) -> Result<T, AppError> {
        let h = self.headers()?;
        h.set("content-type", "application/json")?;
        let url = format!("{}/rest/v1/rpc/{name}", self.url);
        let mut resp = self
            .send(Method::Post, &url, h, Some(args.to_string().into()))
            .await?;
        let status = resp.status_code();
        if !(200..300).contains(&status) {
            return Err(postgrest_error(name, status, &error_body(&mut resp).await));
        }
        let bytes = body_bytes(&mut resp).await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            AppError::Upstream(format!(
                "{name} returned a body this worker cannot read: {e}"
            ))
        })
    }

    fn object_url(&self, bucket: &str, name: &str) -> String {
        format!(
            "{}/storage/v1/object/{}/{}",
            self.url,
            encode_segment(bucket),
            encode_path(name)
        )
    }

    /// `GET /storage/v1/object/<bucket>/<name>`: the response to stream, or `None` if missing.
    pub(crate) async fn get_object(
        &self,
        bucket: &str,
        name: &str,
    ) -> Result<Option<Response>, AppError> {
        let mut resp = self
            .send(
                Method::Get,
                &self.object_url(bucket, name),
                self.headers()?,
                None,
            )
            .await?;
        let status = resp.status_code();
        if (200..300).contains(&status) {
            return Ok(Some(resp));
        }
        let err: StorageError =
            serde_json::from_slice(&error_body(&mut resp).await).unwrap_or_default();
        if err.not_found(status) {
            return Ok(None);
        }
        Err(storage_error("reading", bucket, name, status, &err))
    }

    /// `POST /storage/v1/object/<bucket>/<name>` with `x-upsert: false` and a streamed body that
    /// never exceeds `limit` bytes (`SNAPSHOT_MAX_BYTES`).
    pub(crate) async fn upload(
        &self,
        bucket: &str,
        name: &str,
        content_type: &str,
        body: wasm_bindgen::JsValue,
        limit: u64,
    ) -> Result<Uploaded, AppError> {
        let h = self.headers()?;
        h.set("content-type", content_type)?;
        h.set("x-upsert", "false")?;
        // Same name, same bytes (the name is the manifest's hash): cache it for a long time.
        h.set("cache-control", "max-age=31536000")?;
        let mut resp = self
            .send(Method::Post, &self.object_url(bucket, name), h, Some(body))
            .await?;
        let status = resp.status_code();
        if (200..300).contains(&status) {
            return Ok(Uploaded::Created);
        }
        let err: StorageError =
            serde_json::from_slice(&error_body(&mut resp).await).unwrap_or_default();
        match err.status(status) {
            409 => Ok(Uploaded::AlreadyExists),
            413 => Err(storage_refused_size(bucket, limit, &err)),
            _ => Err(storage_error("uploading", bucket, name, status, &err)),
        }
    }

    /// `DELETE /storage/v1/object/<bucket>/<name>`; best effort (used to clean up a failed upload).
    pub(crate) async fn delete_object(&self, bucket: &str, name: &str) {
        if let Ok(h) = self.headers() {
            let _ = self
                .send(Method::Delete, &self.object_url(bucket, name), h, None)
                .await;
        }
    }

    /// `POST /storage/v1/object/sign/<bucket>/<name>`: an absolute signed download URL, or None
    /// when there is no such object.
    pub(crate) async fn sign(
        &self,
        bucket: &str,
        name: &str,
        expires_in: i64,
    ) -> Result<Option<String>, AppError> {
        #[derive(Deserialize)]
        struct Signed {
            #[serde(rename = "signedURL", alias = "signedUrl")]
            signed_url: String,
        }
        let h = self.headers()?;
        h.set("content-type", "application/json")?;
        let url = format!(
            "{}/storage/v1/object/sign/{}/{}",
            self.url,
            encode_segment(bucket),
            encode_path(name)
        );
        let body = serde_json::json!({ "expiresIn": expires_in }).to_string();
        let mut resp = self.send(Method::Post, &url, h, Some(body.into())).await?;
        let status = resp.status_code();
        if !(200..300).contains(&status) {
            let err: StorageError =
                serde_json::from_slice(&error_body(&mut resp).await).unwrap_or_default();
            if err.not_found(status) {
                return Ok(None);
            }
            return Err(storage_error("signing", bucket, name, status, &err));
        }
        let bytes = body_bytes(&mut resp).await?;
        let signed: Signed = serde_json::from_slice(&bytes).map_err(|e| {
            AppError::Upstream(format!(
                "Storage's sign endpoint returned an unreadable body: {e}"
            ))
        })?;
        Ok(Some(absolute_signed_url(&self.url, &signed.signed_url)))
    }
}

/// Storage answers `/object/sign/…?token=…`, relative to `<url>/storage/v1` (storage-js prefixes it).
pub(crate) fn absolute_signed_url(base: &str, signed: &str) -> String {
    if signed.starts_with("http://") || signed.starts_with("https://") {
        signed.to_owned()
    } else if signed.starts_with("/storage/v1/") {
        format!("{base}{signed}")
    } else {
        format!(
            "{base}/storage/v1{}{signed}",
            if signed.starts_with('/') { "" } else { "/" }
        )
    }
}

fn postgrest_error(what: &str, status: u16, body: &[u8]) -> AppError {
    let err: PostgrestError = serde_json::from_slice(body).unwrap_or_default();
    let message = err
        .message
        .unwrap_or_else(|| format!("HTTP {status} without an error body"));
    let text = format!("{what}: {message}");
    match ErrorKind::from_response(err.code.as_deref(), status) {
        ErrorKind::NotFound => AppError::NotFound(message),
        ErrorKind::TooLarge => AppError::TooLarge(message),
        // A rule the project's data breaks; any other 4xx is the worker's request at fault.
        ErrorKind::Invalid if matches!(err.code.as_deref(), Some("PT422" | "22P02")) => {
            AppError::Invalid(text)
        }
        ErrorKind::RateLimited => AppError::RateLimited(text),
        // The worker's own credential or the database failed: not the caller's doing.
        _ => AppError::Upstream(format!("the database refused {text} (HTTP {status})")),
    }
}

/// Storage's 413 for an archive the worker kept within `limit`: the bucket's `file_size_limit` is
/// below the worker's `SNAPSHOT_MAX_BYTES`, and the two must agree.
fn storage_refused_size(bucket: &str, limit: u64, err: &StorageError) -> AppError {
    AppError::TooLarge(format!(
        "Storage refused the snapshot archive as over the {bucket} bucket's file_size_limit, \
         which is below this worker's SNAPSHOT_MAX_BYTES of {limit} bytes: set SNAPSHOT_MAX_BYTES \
         to the bucket's limit (Storage said: {} {})",
        err.error.as_deref().unwrap_or(""),
        err.message.as_deref().unwrap_or("")
    ))
}

fn storage_error(
    doing: &str,
    bucket: &str,
    name: &str,
    status: u16,
    err: &StorageError,
) -> AppError {
    AppError::Upstream(format!(
        "Storage failed {doing} {bucket}/{name}: HTTP {status} {} {}",
        err.error.as_deref().unwrap_or(""),
        err.message.as_deref().unwrap_or("")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_paths_per_segment() {
        assert_eq!(encode_path("b/p/x y/é.png"), "b/p/x%20y/%C3%A9.png");
        assert_eq!(encode_segment("a?b#c"), "a%3Fb%23c");
    }

    #[test]
    fn signed_urls_become_absolute() {
        let b = "http://127.0.0.1:5";
        assert_eq!(
            absolute_signed_url(b, "/object/sign/x/y.zip?token=t"),
            "http://127.0.0.1:5/storage/v1/object/sign/x/y.zip?token=t"
        );
        assert_eq!(
            absolute_signed_url(b, "/storage/v1/object/sign/x?token=t"),
            "http://127.0.0.1:5/storage/v1/object/sign/x?token=t"
        );
        assert_eq!(absolute_signed_url(b, "https://h/x"), "https://h/x");
    }

    #[test]
    fn postgrest_codes_map_to_statuses() {
        let e = postgrest_error(
            "f",
            404,
            br#"{"code":"PT404","message":"project x not found"}"#,
        );
        assert_eq!(e.status(), 404);
        // A missing function or table is a deployment problem, not a missing project.
        let e = postgrest_error(
            "f",
            404,
            br#"{"code":"PGRST202","message":"no such function"}"#,
        );
        assert_eq!(e.status(), 502);
        let e = postgrest_error(
            "f",
            404,
            br#"{"message":"no Route matched with those values"}"#,
        );
        assert_eq!(e.status(), 502);
        let e = postgrest_error("f", 429, br#"{"code":"PT429","message":"slow down"}"#);
        assert_eq!(e.status(), 429);
        let e = postgrest_error("f", 500, b"garbage");
        assert_eq!(e.status(), 502);
    }
}
