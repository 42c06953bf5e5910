//! HS256/384/512 JSON Web Tokens: signing, and verification that reports failures the way
//! PostgREST classifies them (`PGRST301` decode errors, `PGRST303` claim errors). Every consumer
//! here (PostgREST, Realtime, Storage) words its failures differently, so the verifier returns
//! the precise failure and each surface renders it in its own words.
//!
//! `jwt-compact` parses the token (base64url parts, the header and its `alg`), signs, and checks
//! the HMAC in constant time. Two checks stay here because the library cannot express them:
//!
//! - the part count: jwt-compact reports any other shape as one "invalid token structure", while
//!   PostgREST names the count (`Expected 3 parts in JWT; got 2`);
//! - the claims, read as plain JSON once the signature checked out rather than as jwt-compact's
//!   typed `Claims`: PostgREST passes them on verbatim (`request.jwt.claims`), names a time claim
//!   that is not a number, checks `iat` too and allows its skew on each, whereas the typed claims
//!   refuse a non-numeric `exp` before the signature is even checked. For the same reason the
//!   signature is checked with the algorithm's `verify_signature`, not jwt-compact's validator
//!   (which parses the typed claims first).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_compact::alg::{Hs256, Hs256Key, Hs384, Hs384Key, Hs512, Hs512Key};
use jwt_compact::{Algorithm, AlgorithmExt as _, AlgorithmSignature as _, Header, UntrustedToken};
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
    /// A part is not base64url, or the header is not JSON naming an `alg`.
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

/// Signs `claims` (a JSON object) with HS256 and the header `{"alg":"HS256","typ":"JWT"}`
/// (Realtime requires `typ`).
pub(crate) fn sign(claims: &Value, secret: &str) -> String {
    Hs256
        .token(
            &Header::empty().with_token_type("JWT"),
            &jwt_compact::Claims::new(claims),
            &Hs256Key::new(secret),
        )
        .expect("JWT claims are a JSON object")
}

/// Checks the signature and returns the claims, without looking at any time claim.
pub(crate) fn decode(token: &str, secret: &str) -> Result<Claims, JwtError> {
    if token.is_empty() {
        return Err(JwtError::Empty);
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [_, claims, _] = parts[..] else {
        return Err(JwtError::Parts(parts.len()));
    };
    let untrusted = UntrustedToken::new(token).map_err(|_| JwtError::Malformed)?;
    let verified = match untrusted.algorithm() {
        "HS256" => verifies(Hs256, &Hs256Key::new(secret), &untrusted, token),
        "HS384" => verifies(Hs384, &Hs384Key::new(secret), &untrusted, token),
        "HS512" => verifies(Hs512, &Hs512Key::new(secret), &untrusted, token),
        other => return Err(JwtError::Algorithm(other.to_owned())),
    };
    if !verified {
        return Err(JwtError::Signature);
    }
    match URL_SAFE_NO_PAD
        .decode(claims)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
    {
        Some(Value::Object(map)) => Ok(map),
        _ => Err(JwtError::ClaimsNotObject),
    }
}

/// Whether `token` carries `alg`'s signature, with `key`, over its header and claims.
fn verifies<A: Algorithm>(
    alg: A,
    key: &A::VerifyingKey,
    untrusted: &UntrustedToken<'_>,
    token: &str,
) -> bool {
    let signature = untrusted.signature_bytes();
    // An HMAC signature of the wrong length makes `try_from_slice` panic; jwt-compact's own
    // validator checks the length first too.
    if A::Signature::LENGTH.is_some_and(|n| n.get() != signature.len()) {
        return false;
    }
    let signed = token.rsplit_once('.').map_or(token, |(signed, _)| signed);
    A::Signature::try_from_slice(signature)
        .is_ok_and(|sig| alg.verify_signature(&sig, key, signed.as_bytes()))
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

    /// `header.claims` signed with `alg` and `key`, the parts as given (any JSON, any header).
    fn forge<A: Algorithm>(alg: A, key: &A::SigningKey, header: &str, claims: &str) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let sig = alg.sign(key, input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_bytes()))
    }

    #[test]
    fn every_hs_algorithm_verifies_and_others_are_refused() {
        let claims = r#"{"role":"anon","exp":2000000000.7}"#;
        for token in [
            forge(Hs256, &Hs256Key::new("k"), r#"{"alg":"HS256"}"#, claims),
            forge(Hs384, &Hs384Key::new("k"), r#"{"alg":"HS384"}"#, claims),
            forge(Hs512, &Hs512Key::new("k"), r#"{"alg":"HS512"}"#, claims),
        ] {
            let c = verify(&token, "k", 1_700_000_000, 30).unwrap();
            // The claims pass through as sent (PostgREST hands them to the database verbatim).
            assert_eq!(
                Value::Object(c),
                json!({"role": "anon", "exp": 2000000000.7})
            );
            assert_eq!(decode(&token, "other"), Err(JwtError::Signature));
        }
        // The header names HS384 but the signature is HS256's (a shorter MAC): refused, no panic.
        let short = forge(Hs256, &Hs256Key::new("k"), r#"{"alg":"HS384"}"#, claims);
        assert_eq!(decode(&short, "k"), Err(JwtError::Signature));
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(claims)
        );
        assert_eq!(decode(&none, "k"), Err(JwtError::Algorithm("none".into())));
        assert_eq!(
            JwtError::Algorithm("none".into()).pgrst_message(),
            "Wrong or unsupported encoding algorithm"
        );
    }

    #[test]
    fn shape_and_claims_failures_map_to_postgrest() {
        let key = Hs256Key::new("k");
        assert_eq!(decode("a.b.c.d", "k"), Err(JwtError::Parts(4)));
        assert_eq!(
            JwtError::Parts(4).pgrst_message(),
            "Expected 3 parts in JWT; got 4"
        );
        assert_eq!(decode("!!.e30.AA", "k"), Err(JwtError::Malformed));
        let not_json = format!("{}.e30.AA", URL_SAFE_NO_PAD.encode("{alg"));
        assert_eq!(decode(&not_json, "k"), Err(JwtError::Malformed));
        for e in [
            JwtError::Empty,
            JwtError::Parts(1),
            JwtError::Malformed,
            JwtError::Signature,
        ] {
            assert_eq!(e.pgrst_code(), "PGRST301", "{e:?}");
        }
        assert_eq!(
            JwtError::Malformed.pgrst_message(),
            "JWT cryptographic operation failed"
        );

        // Signed, but the claims are not an object: a claims error, found after the signature.
        let array = forge(Hs256, &key, r#"{"alg":"HS256"}"#, "[1]");
        assert_eq!(decode(&array, "k"), Err(JwtError::ClaimsNotObject));
        assert_eq!(decode(&array, "other"), Err(JwtError::Signature));
        // A non-numeric time claim under a bad signature is a signature failure first.
        let bad_nbf = forge(Hs256, &key, r#"{"alg":"HS256"}"#, r#"{"nbf":"later"}"#);
        assert_eq!(verify(&bad_nbf, "other", 0, 30), Err(JwtError::Signature));
        assert_eq!(
            verify(&bad_nbf, "k", 0, 30),
            Err(JwtError::ClaimNotNumber("nbf"))
        );
        let e = JwtError::ClaimNotNumber("iat");
        assert_eq!(
            (e.pgrst_code(), e.pgrst_message().as_str()),
            ("PGRST303", "The JWT 'iat' claim must be a number")
        );
    }

    #[test]
    fn time_claims_allow_the_skew() {
        let nbf = sign(&json!({"nbf": 1000}), "s");
        assert!(verify(&nbf, "s", 970, 30).is_ok());
        assert_eq!(verify(&nbf, "s", 969, 30), Err(JwtError::NotYetValid));
        let iat = sign(&json!({"iat": 1000, "exp": null}), "s");
        assert!(verify(&iat, "s", 970, 30).is_ok());
        assert_eq!(verify(&iat, "s", 969, 30), Err(JwtError::IssuedInFuture));
        assert_eq!(
            JwtError::IssuedInFuture.pgrst_message(),
            "JWT issued at future"
        );
        assert_eq!(JwtError::NotYetValid.pgrst_code(), "PGRST303");
    }

    #[test]
    fn signed_tokens_carry_the_header_realtime_needs() {
        let t = sign(&json!({"role": "anon"}), "s");
        let header = URL_SAFE_NO_PAD
            .decode(t.split('.').next().unwrap())
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&header).unwrap(),
            json!({"alg": "HS256", "typ": "JWT"})
        );
    }
}
