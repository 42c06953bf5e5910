//! The app's own SHA-256, when it hands one in (`setDigest`): React Native apps can have a native
//! one (react-native-quick-crypto's, say) that beats any JavaScript on Hermes, which runs this
//! package translated to JavaScript. It must agree with core's content hash: it is checked on
//! fixed inputs before it is used, and it is used for `contentHash` (wasm-pkg/src/hash.js) and
//! for the client's no-op detection (`save`, `isDirty`).

use std::cell::RefCell;

use js_sys::{Function, JsString, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::args;
use crate::error::ClientError;

thread_local! {
    static DIGEST: RefCell<Option<Function>> = const { RefCell::new(None) };
}

/// Strings, as Rust text, or as UTF-16 code units where Rust has no such string (a lone
/// surrogate, hashed as U+FFFD), and bytes: across the SHA-256 block size and multi-byte UTF-8.
fn vectors() -> Vec<(String, JsValue, String)> {
    let mut out = Vec::new();
    for text in [
        String::new(),
        "abc".to_owned(),
        "héllo wörld ✓".to_owned(),
        "🚀 日本語\n".repeat(40),
        "x".repeat(1000),
    ] {
        let want = fs_sync_core::content_hash(text.as_bytes());
        let shown = format!("the string {:?}", ellipsis(&text));
        out.push((shown, JsValue::from_str(&text), want));
    }
    let lone: Vec<u16> = "lone ".encode_utf16().chain([0xd800]).collect();
    out.push((
        "a string with a lone surrogate".to_owned(),
        JsString::from_char_code(&lone).into(),
        fs_sync_core::content_hash("lone \u{fffd}".as_bytes()),
    ));
    for len in [0, 3, 200] {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + 255) as u8).collect();
        let want = fs_sync_core::content_hash(&bytes);
        out.push((
            format!("{len} bytes"),
            Uint8Array::from(&bytes[..]).into(),
            want,
        ));
    }
    out
}

fn ellipsis(text: &str) -> String {
    match text.char_indices().nth(16) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// Checks `digest` against core's hash on every vector, then installs it; `undefined` goes back
/// to the built-in hash.
#[wasm_bindgen(js_name = setDigest)]
pub fn set_digest(
    #[wasm_bindgen(unchecked_param_type = "((input: string | Uint8Array) => string) | undefined")]
    digest: JsValue,
) -> Result<(), JsValue> {
    let digest = args::optional(&digest, "digest", args::function).map_err(|e| e.to_js())?;
    if let Some(f) = &digest {
        check(f).map_err(|e| e.to_js())?;
    }
    DIGEST.set(digest);
    Ok(())
}

fn check(f: &Function) -> Result<(), ClientError> {
    for (shown, input, want) in vectors() {
        let got = f.call1(&JsValue::UNDEFINED, &input).map_err(|e| {
            args::invalid(
                "digest",
                format!("threw on {shown}: {}", args::describe(&e)),
            )
        })?;
        let got = got.as_string().ok_or_else(|| {
            args::expected(
                "digest",
                "return the hex digest as a string, synchronously",
                &got,
            )
        })?;
        if got != want {
            return Err(args::invalid(
                "digest",
                format!("disagrees with the built-in SHA-256 on {shown}: got {got:?}, want {want:?} (lowercase hex)"),
            ));
        }
    }
    Ok(())
}

/// The content hash of `content`, whose JS string is `text`: the installed digest's, else core's.
/// A digest that throws or answers oddly later is passed over for core's: the hash is the same.
pub(crate) fn content_hash(text: &JsValue, content: &str) -> String {
    let installed = DIGEST.with_borrow(|d| d.clone());
    installed
        .and_then(|f| f.call1(&JsValue::UNDEFINED, text).ok())
        .and_then(|h| h.as_string())
        .filter(|h| h.len() == 64)
        .unwrap_or_else(|| fs_sync_core::content_hash(content.as_bytes()))
}
