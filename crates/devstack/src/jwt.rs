//! HS256/384/512 JSON Web Tokens: signing, and verification that reports failures the way
//! PostgREST classifies them (`PGRST301` decode errors, `PGRST303` claim errors).
//!
//! Hand-rolled on `hmac` + `sha2` rather than a JWT crate: every consumer here (PostgREST,
//! Realtime, Storage) words its failures differently, so the verifier returns the precise
//! failure and each surface renders it in its own words.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value};

/// JWT claims: always a JSON object.
pub(crate) type Claims = Map<String, Value>;

/// PostgREST's allowed clock skew for `exp`, `nbf` and `iat`, in seconds.
pub(crate) const CLOCK_SKEW_SECS: i64 = 30;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    /// An empty token.
    Empty,
    /// Not three dot-separated parts.
    Parts(usize),
    /// The header or claims are not base64url JSON.
    Malformed,
    /// An algorithm other than HS256/384/512.
    Algorithm(String),
    /// The signature does not verify.
    Signature,
    /// The claims are not a JSON object.
    ClaimsNotObject,
    /// `exp`, `nbf` or `iat` is not a number.
    ClaimNotNumber(&'static str),
    /// `exp` is in the past (beyond the skew); carries how many seconds ago.
    Expired(i64),
    /// `nbf` is in the future.
    NotYetValid,
    /// `iat` is in the future.
    IssuedInFuture,
}

impl JwtError {
    /// PostgREST's code for this failure.
    pub fn pgrst_code(&self) -> &'static str {
        match self {
            JwtError::Empty
            | JwtError::Parts(_)
            | JwtError::Malformed
            | JwtError::Algorithm(_)
            | JwtError::Signature => "PGRST301",
            _ => "PGRST303",
        }
    }

    /// PostgREST's message for this failure (`src/PostgREST/Error.hs`, `JwtError`).
    pub fn pgrst_message(&self) -> String {
        match self {
            JwtError::Empty => "Empty JWT is sent in Authorization header".into(),
            JwtError::Parts(n) => format!("Expected 3 parts in JWT; got {n}"),
            JwtError::Malformed | JwtError::Signature => {
                "JWT cryptographic operation failed".into()
            }
            JwtError::Algorithm(_) => "Wrong or unsupported encoding algorithm".into(),
            JwtError::ClaimsNotObject => "Parsing claims failed".into(),
            JwtError::ClaimNotNumber(c) => format!("The JWT '{c}' claim must be a number"),
            JwtError::Expired(_) => "JWT expired".into(),
            JwtError::NotYetValid => "JWT not yet valid".into(),
            JwtError::IssuedInFuture => "JWT issued at future".into(),
        }
    }
}

enum Alg {
    Hs256,
    Hs384,
    Hs512,
}

fn mac(alg: &Alg, secret: &[u8], data: &[u8]) -> Vec<u8> {
    macro_rules! run {
        ($d:ty) => {{
            let mut m = Hmac::<$d>::new_from_slice(secret).expect("HMAC takes any key length");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }};
    }
    match alg {
        Alg::Hs256 => run!(sha2::Sha256),
        Alg::Hs384 => run!(sha2::Sha384),
        Alg::Hs512 => run!(sha2::Sha512),
    }
}

/// Signs `claims` with HS256 and the header `{"alg":"HS256","typ":"JWT"}` (Realtime requires
/// `typ`).
pub(crate) fn sign(claims: &Value, secret: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{body}");
    let sig = URL_SAFE_NO_PAD.encode(mac(&Alg::Hs256, secret.as_bytes(), input.as_bytes()));
    format!("{input}.{sig}")
}

/// Checks the signature and returns the claims, without looking at any time claim.
pub(crate) fn decode(token: &str, secret: &str) -> Result<Claims, JwtError> {
    if token.is_empty() {
        return Err(JwtError::Empty);
    }
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(JwtError::Parts(parts.len()));
    }
    let header: Value = URL_SAFE_NO_PAD
        .decode(parts[0])
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwtError::Malformed)?;
    let alg = match header.get("alg").and_then(Value::as_str) {
        Some("HS256") => Alg::Hs256,
        Some("HS384") => Alg::Hs384,
        Some("HS512") => Alg::Hs512,
        other => return Err(JwtError::Algorithm(other.unwrap_or("none").to_owned())),
    };
    let sig = URL_SAFE_NO_PAD
        .decode(parts[2])
        .map_err(|_| JwtError::Signature)?;
    let input_len = parts[0].len() + 1 + parts[1].len();
    let expected = mac(&alg, secret.as_bytes(), &token.as_bytes()[..input_len]);
    if !constant_time_eq(&sig, &expected) {
        return Err(JwtError::Signature);
    }
    let claims: Value = URL_SAFE_NO_PAD
        .decode(parts[1])
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwtError::ClaimsNotObject)?;
    match claims {
        Value::Object(map) => Ok(map),
        _ => Err(JwtError::ClaimsNotObject),
    }
}

/// [`decode`], then PostgREST's time checks (`exp`, `nbf`, `iat`, each with `skew` seconds).
pub(crate) fn verify(token: &str, secret: &str, now: i64, skew: i64) -> Result<Claims, JwtError> {
    let claims = decode(token, secret)?;
    check_times(&claims, now, skew)?;
    Ok(claims)
}

/// The time checks alone.
pub(crate) fn check_times(claims: &Claims, now: i64, skew: i64) -> Result<(), JwtError> {
    if let Some(exp) = number_claim(claims, "exp")? {
        if now - skew > exp {
            return Err(JwtError::Expired(now - exp));
        }
    }
    if let Some(nbf) = number_claim(claims, "nbf")? {
        if now + skew < nbf {
            return Err(JwtError::NotYetValid);
        }
    }
    if let Some(iat) = number_claim(claims, "iat")? {
        if now + skew < iat {
            return Err(JwtError::IssuedInFuture);
        }
    }
    Ok(())
}

fn number_claim(claims: &Claims, key: &'static str) -> Result<Option<i64>, JwtError> {
    match claims.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(Some(
            n.as_i64()
                .or_else(|| n.as_f64().map(|f| f.floor() as i64))
                .unwrap_or(0),
        )),
        Some(_) => Err(JwtError::ClaimNotNumber(key)),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_and_failures() {
        let t = sign(&json!({"role": "anon", "exp": 2_000_000_000}), "s3cret");
        let c = verify(&t, "s3cret", 1_700_000_000, 30).unwrap();
        assert_eq!(c["role"], "anon");
        assert_eq!(verify(&t, "other", 0, 30), Err(JwtError::Signature));
        assert_eq!(verify("a.b", "s", 0, 30), Err(JwtError::Parts(2)));
        assert_eq!(verify("", "s", 0, 30), Err(JwtError::Empty));
        let old = sign(&json!({"role": "anon", "exp": 100}), "s");
        assert_eq!(verify(&old, "s", 200, 30), Err(JwtError::Expired(100)));
        // Within the skew it still passes.
        assert!(verify(&old, "s", 120, 30).is_ok());
        let bad = sign(&json!({"exp": "soon"}), "s");
        assert_eq!(
            verify(&bad, "s", 0, 30),
            Err(JwtError::ClaimNotNumber("exp"))
        );
    }
}
