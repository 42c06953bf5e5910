//! Checks on what JS passes to the exported functions.
//!
//! wasm-bindgen's glue trusts a parameter's Rust type: a `&str` or `String` given a number or an
//! object reaches its string copier with `length` undefined, which reallocates a pointer it never
//! allocated (`RuntimeError: memory access out of bounds`), and null or a Uint8Array make it throw
//! a TypeError. So every export takes `JsValue` (typed for TypeScript with
//! `unchecked_param_type`) and converts it here, refusing anything else with an `FsSyncError` of
//! kind `invalid` whose message starts with the argument's name (also in `details.argument`).

use std::ops::RangeInclusive;

use fs_sync_core::FileType;
use js_sys::{Array, ArrayBuffer, Function, JsString, Number, Reflect, RegExp};
use serde_json::json;
use wasm_bindgen::{JsCast, JsValue};

use crate::error::{ClientError, ErrorKind};

/// An `invalid` error about the argument `name`: "`name` `problem`".
pub(crate) fn invalid(name: &str, problem: impl std::fmt::Display) -> ClientError {
    ClientError::local(
        ErrorKind::Invalid,
        format!("{name} {problem}"),
        json!({ "argument": name }),
    )
}

/// "`name` must `what`, got <its type>".
pub(crate) fn expected(name: &str, what: &str, value: &JsValue) -> ClientError {
    invalid(name, format!("must {what}, got {}", type_name(value)))
}

/// What `value` is, for messages: its `typeof`, except `null`, `array`, and the constructor's
/// name for objects that are not plain (`Uint8Array`, `Map`, …).
pub(crate) fn type_name(value: &JsValue) -> String {
    if value.is_null() {
        return "null".into();
    }
    if Array::is_array(value) {
        return "array".into();
    }
    let of = value.js_typeof().as_string().unwrap_or_default();
    if of != "object" {
        return of;
    }
    // A throwing getter or proxy trap leaves it an object.
    Reflect::get(value, &"constructor".into())
        .and_then(|c| Reflect::get(&c, &"name".into()))
        .ok()
        .and_then(|n| n.as_string())
        .filter(|n| !n.is_empty() && n != "Object")
        .unwrap_or(of)
}

/// A string.
pub(crate) fn string(value: &JsValue, name: &str) -> Result<String, ClientError> {
    value
        .as_string()
        .ok_or_else(|| expected(name, "be a string", value))
}

thread_local! {
    /// Finds a lone surrogate: with the `u` flag a well-formed pair is one code point, outside
    /// the class. (Not `\p{Cs}`: Hermes 0.12 has no Unicode property escapes.)
    static LONE_SURROGATE: RegExp = RegExp::new("[\\uD800-\\uDFFF]", "u");
}

/// A path: a string without lone surrogates. Rust would receive one as U+FFFD, a different file
/// from the one named, which the database could not store as given either.
pub(crate) fn path(value: &JsValue, name: &str) -> Result<String, ClientError> {
    let text = value
        .dyn_ref::<JsString>()
        .ok_or_else(|| expected(name, "be a string", value))?;
    let at = LONE_SURROGATE.with(|re| text.search(re));
    if at >= 0 {
        return Err(invalid(
            name,
            format!("must be well-formed Unicode: a lone surrogate at index {at}"),
        ));
    }
    Ok(String::from(text))
}

/// One of the `FileType` names.
pub(crate) fn file_type(value: &JsValue, name: &str) -> Result<String, ClientError> {
    let s = string(value, name)?;
    if FileType::ALL.iter().any(|t| t.as_str() == s) {
        return Ok(s);
    }
    let names: Vec<_> = FileType::ALL.iter().map(|t| t.as_str()).collect();
    Err(invalid(
        name,
        format!("must be one of {}, got {s:?}", names.join(", ")),
    ))
}

/// A boolean.
pub(crate) fn boolean(value: &JsValue, name: &str) -> Result<bool, ClientError> {
    value
        .as_bool()
        .ok_or_else(|| expected(name, "be a boolean", value))
}

/// An integer in `range`: not NaN, infinite, fractional or out of range, which would otherwise
/// saturate or truncate silently on the way into Rust.
pub(crate) fn integer(
    value: &JsValue,
    name: &str,
    range: RangeInclusive<u32>,
) -> Result<u32, ClientError> {
    let what = format!("be an integer from {} to {}", range.start(), range.end());
    let n = value.as_f64().ok_or_else(|| expected(name, &what, value))?;
    if n.fract() == 0.0 && n >= f64::from(*range.start()) && n <= f64::from(*range.end()) {
        return Ok(n as u32);
    }
    let shown = Number::from(n)
        .to_string_with_radix(10)
        .map(String::from)
        .unwrap_or_default();
    Err(invalid(name, format!("must {what}, got {shown}")))
}

/// A function.
pub(crate) fn function(value: &JsValue, name: &str) -> Result<Function, ClientError> {
    value
        .dyn_ref::<Function>()
        .cloned()
        .ok_or_else(|| expected(name, "be a function", value))
}

/// An array.
pub(crate) fn array(value: &JsValue, name: &str) -> Result<Array, ClientError> {
    if Array::is_array(value) {
        Ok(value.clone().unchecked_into())
    } else {
        Err(expected(name, "be an array", value))
    }
}

/// An object with named fields: not null, a function, an array or a typed array.
pub(crate) fn record(value: &JsValue, name: &str) -> Result<JsValue, ClientError> {
    if value.is_object() && !Array::is_array(value) && !ArrayBuffer::is_view(value) {
        Ok(value.clone())
    } else {
        Err(expected(name, "be an object", value))
    }
}

/// Field `key` of the object argument `name`, checked by `parse` as `name.key`.
pub(crate) fn field<T>(
    object: &JsValue,
    name: &str,
    key: &str,
    parse: impl FnOnce(&JsValue, &str) -> Result<T, ClientError>,
) -> Result<T, ClientError> {
    let (value, name) = read(object, name, key)?;
    parse(&value, &name)
}

/// Field `key` and its name. Apart from `field` so that each parser does not get a copy.
fn read(object: &JsValue, name: &str, key: &str) -> Result<(JsValue, String), ClientError> {
    let name = format!("{name}.{key}");
    match Reflect::get(object, &key.into()) {
        Ok(value) => Ok((value, name)),
        Err(e) => Err(invalid(
            &name,
            format!("could not be read: {}", describe(&e)),
        )),
    }
}

/// An optional field: `undefined` (or absent) is `None`, anything else is checked by `parse`.
pub(crate) fn optional_field<T>(
    object: &JsValue,
    name: &str,
    key: &str,
    parse: impl FnOnce(&JsValue, &str) -> Result<T, ClientError>,
) -> Result<Option<T>, ClientError> {
    field(object, name, key, |value, name| {
        optional(value, name, parse)
    })
}

/// An optional argument: `undefined` is `None`, anything else is checked by `parse`.
pub(crate) fn optional<T>(
    value: &JsValue,
    name: &str,
    parse: impl FnOnce(&JsValue, &str) -> Result<T, ClientError>,
) -> Result<Option<T>, ClientError> {
    if value.is_undefined() {
        Ok(None)
    } else {
        parse(value, name).map(Some)
    }
}

/// A thrown JS value, for messages.
pub(crate) fn describe(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "unknown error".into())
}
