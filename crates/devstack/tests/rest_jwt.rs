//! JWT failures on /rest/v1 answer as PostgREST (and the gateway in front of it) do.

mod common;

use common::{now, stack};
use serde_json::{json, Value};

async fn call(
    s: &common::Stack,
    apikey: Option<&str>,
    bearer: Option<&str>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = s.http.post(s.url("/rest/v1/rpc/whoami")).json(&json!({}));
    if let Some(k) = apikey {
        req = req.header("apikey", k);
    }
    if let Some(b) = bearer {
        req = req.header("authorization", format!("Bearer {b}"));
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, r.json().await.unwrap_or(Value::Null), headers)
}

async fn with_whoami() -> common::Stack {
    let s = stack().await;
    s.db.admin()
        .batch_execute(
            "create function public.whoami() returns text language sql stable
               as $$ select current_user::text $$;
             grant execute on function public.whoami() to anon, authenticated, service_role;",
        )
        .await
        .unwrap();
    s
}

#[tokio::test]
async fn jwt_failures_are_401_with_postgrest_codes() {
    let s = with_whoami().await;
    let anon = s.anon();

    // Missing API key: the gateway refuses before PostgREST.
    let (status, body, _) = call(&s, None, None).await;
    assert_eq!(status, 401);
    assert_eq!(body["message"], "No API key found in request");

    // An API key that is not one of the project's keys.
    let (status, body, _) = call(&s, Some("not-a-key"), None).await;
    assert_eq!(status, 401);
    assert_eq!(body["message"], "Invalid API key");

    // Bad signature.
    let forged = {
        let good = s.sign(json!({"role": "authenticated", "exp": now() + 60}));
        let (head, _) = good.rsplit_once('.').unwrap();
        format!("{head}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    };
    let (status, body, headers) = call(&s, Some(&anon), Some(&forged)).await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "PGRST301");
    assert_eq!(body["message"], "JWT cryptographic operation failed");
    assert_eq!(headers["proxy-status"], "PostgREST; error=PGRST301");
    assert_eq!(
        headers["www-authenticate"],
        "Bearer error=\"invalid_token\", error_description=\"JWT cryptographic operation failed\""
    );

    // Expired (beyond the 30 s skew).
    let expired = s.sign(json!({"role": "authenticated", "exp": now() - 120}));
    let (status, body, headers) = call(&s, Some(&anon), Some(&expired)).await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "PGRST303");
    assert_eq!(body["message"], "JWT expired");
    assert!(headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));

    // Expired by less than the skew: still accepted.
    let recent = s.sign(json!({"role": "authenticated", "exp": now() - 5}));
    let (status, body, _) = call(&s, Some(&anon), Some(&recent)).await;
    assert_eq!(status, 200);
    assert_eq!(body, "authenticated");

    // Not yet valid / issued in the future.
    let nbf = s.sign(json!({"role": "anon", "nbf": now() + 600}));
    let (status, body, _) = call(&s, Some(&anon), Some(&nbf)).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("PGRST303")));
    assert_eq!(body["message"], "JWT not yet valid");

    // Malformed.
    let (status, body, _) = call(&s, Some(&anon), Some("not-a-jwt")).await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "PGRST301");
    assert_eq!(body["message"], "Expected 3 parts in JWT; got 1");

    // exp that is not a number.
    let bad_exp = s.sign(json!({"role": "anon", "exp": "tomorrow"}));
    let (status, body, _) = call(&s, Some(&anon), Some(&bad_exp)).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("PGRST303")));
    assert_eq!(body["message"], "The JWT 'exp' claim must be a number");

    // A role that does not exist: PostgreSQL's 22023, which PostgREST maps to 401.
    let ghost = s.sign(json!({"role": "nobody_here", "exp": now() + 60}));
    let (status, body, headers) = call(&s, Some(&anon), Some(&ghost)).await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "22023");
    assert_eq!(body["message"], "role \"nobody_here\" does not exist");
    assert_eq!(headers["www-authenticate"], "Bearer");

    // No Authorization: the apikey's own JWT is used (anon), as supabase-js sends it.
    let (status, body, _) = call(&s, Some(&anon), None).await;
    assert_eq!((status, body), (200, json!("anon")));
    let service = s.service();
    let (status, body, _) = call(&s, Some(&anon), Some(&service)).await;
    assert_eq!((status, body), (200, json!("service_role")));
    // A token without a role claim runs as anon.
    let no_role = s.sign(json!({"sub": "x", "exp": now() + 60}));
    let (status, body, _) = call(&s, Some(&anon), Some(&no_role)).await;
    assert_eq!((status, body), (200, json!("anon")));

    s.dev.shutdown().await;
}
