//! Calling the fs-sync RPCs over PostgREST with the app's fetch, retrying what is transient.

use js_sys::{Function, Object, Promise, Reflect};
use serde_json::Value;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::args;
use crate::error::{ClientError, ErrorKind};
use crate::retry::{Retry, RetryPolicy, MAX_WAIT_MS};

/// Where the bearer token comes from.
pub(crate) enum TokenSource {
    /// A fixed access token.
    Fixed(String),
    /// `getAccessToken()`, called before every request (it may return a promise).
    Callback(Function),
    /// No user: the anon key is the bearer, as supabase-js does without a session.
    Anon,
}

/// One Supabase project's PostgREST endpoint.
pub(crate) struct Transport {
    pub(crate) rpc_url: String,
    pub(crate) anon_key: String,
    pub(crate) token: TokenSource,
    pub(crate) fetch: Function,
    pub(crate) fetch_this: JsValue,
    pub(crate) retry: RetryPolicy,
}

impl Transport {
    /// Calls `name` with named `args`, retrying what `retry` allows per the policy.
    pub(crate) async fn call(
        &self,
        name: &str,
        args: &Value,
        retry: Retry,
    ) -> Result<Value, ClientError> {
        let body = args.to_string();
        let mut attempt = 1;
        loop {
            match self.attempt(name, &body).await {
                Ok(v) => return Ok(v),
                Err(e) => match self
                    .retry
                    .delay_ms_for(retry, attempt, &e, js_sys::Math::random())
                {
                    Some(ms) => {
                        let ms = ms.min(u64::from(MAX_WAIT_MS)) as u32;
                        gloo_timers::future::TimeoutFuture::new(ms).await;
                        attempt += 1;
                    }
                    None => return Err(e),
                },
            }
        }
    }

    async fn attempt(&self, name: &str, body: &str) -> Result<Value, ClientError> {
        let token = self.bearer().await?;
        let headers = Object::new();
        set(&headers, "apikey", &self.anon_key);
        set(&headers, "Authorization", &format!("Bearer {token}"));
        set(&headers, "Content-Type", "application/json");
        set(&headers, "Content-Profile", "public");
        set(
            &headers,
            "X-Client-Info",
            concat!("fs-sync-client/", env!("CARGO_PKG_VERSION")),
        );
        let init = Object::new();
        set(&init, "method", "POST");
        set(&init, "body", body);
        // Setting a key on a fresh plain object cannot fail.
        let _ = Reflect::set(&init, &"headers".into(), &headers);
        let url = format!("{}{name}", self.rpc_url);
        let response = self
            .fetch
            .call2(&self.fetch_this, &JsValue::from_str(&url), &init)
            .map_err(network)?;
        let response = JsFuture::from(Promise::resolve(&response))
            .await
            .map_err(network)?;
        // A fetch that resolves to something else is the caller's bug: not retried.
        let status = Reflect::get(&response, &"status".into())
            .ok()
            .and_then(|s| s.as_f64())
            .ok_or_else(|| args::expected("options.fetch", "resolve to a Response", &response))?
            as u16;
        let text = method(&response, "text")?;
        let text = JsFuture::from(Promise::resolve(&text))
            .await
            .map_err(network)?
            .as_string()
            .unwrap_or_default();
        if (200..300).contains(&status) {
            if text.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text)
                .map_err(|e| server(&format!("{name} answered invalid JSON: {e}")));
        }
        Err(ClientError::from_response(status, &text))
    }

    async fn bearer(&self) -> Result<String, ClientError> {
        match &self.token {
            TokenSource::Fixed(t) => Ok(t.clone()),
            TokenSource::Anon => Ok(self.anon_key.clone()),
            TokenSource::Callback(f) => {
                let v = f.call0(&JsValue::NULL).map_err(auth)?;
                let v = JsFuture::from(Promise::resolve(&v)).await.map_err(auth)?;
                // Signed out (no session) is a state, not a bug: no token means unauthorized.
                if v.is_undefined() || v.is_null() || v.as_string().is_some_and(|t| t.is_empty()) {
                    return Err(ClientError::local(
                        ErrorKind::Unauthorized,
                        "getAccessToken() returned no token",
                        Value::Null,
                    ));
                }
                v.as_string()
                    .ok_or_else(|| args::expected("options.getAccessToken", "return a string", &v))
            }
        }
    }
}

fn set(obj: &Object, key: &str, value: &str) {
    let _ = Reflect::set(obj, &key.into(), &value.into());
}

fn method(target: &JsValue, name: &str) -> Result<JsValue, ClientError> {
    let f: Function = Reflect::get(target, &name.into())
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or_else(|| {
            args::invalid(
                "options.fetch",
                format!("resolved to a Response without {name}()"),
            )
        })?;
    f.call0(target).map_err(network)
}

fn network(e: JsValue) -> ClientError {
    ClientError::local(
        ErrorKind::Network,
        format!("request failed: {}", args::describe(&e)),
        Value::Null,
    )
}

fn auth(e: JsValue) -> ClientError {
    ClientError::local(
        ErrorKind::Unauthorized,
        format!("getAccessToken() failed: {}", args::describe(&e)),
        Value::Null,
    )
}

fn server(message: &str) -> ClientError {
    ClientError::local(ErrorKind::Server, message, Value::Null)
}
