//! `/auth/v1`: GoTrue's admin user creation and deletion and the password grant, with GoTrue's
//! statuses and error bodies; passwords kept as bcrypt hashes.

mod common;

use common::{stack, Stack};
use serde_json::{json, Value};

/// The header supabase-js sends; with it GoTrue's errors are `{code, message}`.
const API_VERSION: (&str, &str) = ("x-supabase-api-version", "2024-01-01");

/// POST `path` with `apikey` and, if any, `bearer`; returns (status, body).
async fn post(
    s: &Stack,
    path: &str,
    apikey: Option<&str>,
    bearer: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut req = s
        .http
        .post(s.url(path))
        .header(API_VERSION.0, API_VERSION.1)
        .json(&body);
    if let Some(k) = apikey {
        req = req.header("apikey", k);
    }
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn create(s: &Stack, body: Value) -> (u16, Value) {
    let key = s.service();
    post(s, "/auth/v1/admin/users", Some(&key), Some(&key), body).await
}

async fn sign_in(s: &Stack, email: &str, password: &str) -> (u16, Value) {
    let anon = s.anon();
    post(
        s,
        "/auth/v1/token?grant_type=password",
        Some(&anon),
        None,
        json!({"email": email, "password": password}),
    )
    .await
}

async fn delete(s: &Stack, id: &str) -> (u16, Value) {
    let r = s
        .http
        .delete(s.url(&format!("/auth/v1/admin/users/{id}")))
        .header("apikey", s.service())
        .bearer_auth(s.service())
        .header(API_VERSION.0, API_VERSION.1)
        .json(&json!({"should_soft_delete": false}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn users_named(s: &Stack, email: &str) -> i64 {
    s.db.admin()
        .query_one(
            "select count(*) from auth.users where lower(email) = lower($1)",
            &[&email],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn create_sign_in_use_the_token_and_delete() {
    let s = stack().await;
    let (status, user) = create(
        &s,
        json!({"email": "Ada@Example.com", "password": "correct horse", "email_confirm": true,
               "user_metadata": {"name": "Ada"}}),
    )
    .await;
    assert_eq!(status, 200, "{user}");
    let id = user["id"].as_str().unwrap().to_owned();
    // GoTrue's user object: the address lower-cased, confirmed, metadata as given plus
    // email_verified, app_metadata naming the email provider, no last sign-in yet.
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["aud"], "authenticated");
    assert_eq!(user["role"], "authenticated");
    assert_eq!(
        user["user_metadata"],
        json!({"name": "Ada", "email_verified": true})
    );
    assert_eq!(
        user["app_metadata"],
        json!({"provider": "email", "providers": ["email"]})
    );
    assert!(user["email_confirmed_at"].as_str().unwrap().ends_with('Z'));
    assert!(user.get("last_sign_in_at").is_none(), "{user}");

    // Stored as GoTrue stores it: a bcrypt hash of cost 10 that verifies the password.
    let hash: String =
        s.db.admin()
            .query_one(
                "select encrypted_password from auth.users where id = $1::text::uuid",
                &[&id],
            )
            .await
            .unwrap()
            .get(0);
    assert!(hash.starts_with("$2a$10$"), "{hash}");
    assert!(bcrypt::verify("correct horse", &hash).unwrap());
    assert!(!bcrypt::verify("wrong horse", &hash).unwrap());

    // The address matches in any case, as GoTrue compares it.
    let (status, session) = sign_in(&s, "ADA@example.com", "correct horse").await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["token_type"], "bearer");
    assert_eq!(session["expires_in"], 3600);
    assert_eq!(session["user"]["id"], id.as_str());
    assert!(session["user"]["last_sign_in_at"].is_string(), "{session}");
    assert!(!session["refresh_token"].as_str().unwrap().is_empty());
    let expires_at = session["expires_at"].as_i64().unwrap();
    assert!(
        (expires_at - common::now() - 3600).abs() <= 5,
        "{expires_at}"
    );

    // The access token is the user's for PostgREST: auth.uid() is the new user.
    let token = session["access_token"].as_str().unwrap();
    let r = s
        .rpc(
            "create_project",
            Some(token),
            json!({"p_name": "from a password login"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let project: String = r.json().await.unwrap();
    let owner: String =
        s.db.admin()
            .query_one(
                "select owner_id::text from public.projects where id = $1::text::uuid",
                &[&project],
            )
            .await
            .unwrap()
            .get(0);
    assert_eq!(owner, id);

    // Deleted: 200 {}, the row gone (the project kept, its owner unset), no more sign-in.
    assert_eq!(delete(&s, &id).await, (200, json!({})));
    assert_eq!(users_named(&s, "ada@example.com").await, 0);
    let (status, body) = sign_in(&s, "ada@example.com", "correct horse").await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"code": "invalid_credentials", "message": "Invalid login credentials"})
        )
    );
    let (status, body) = delete(&s, &id).await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"code": "user_not_found", "message": "User not found"})
        )
    );
    let (status, body) = delete(&s, "not-a-uuid").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("validation_failed"))
    );
}

#[tokio::test]
async fn wrong_credentials_and_unconfirmed_addresses_are_refused_as_gotrue_refuses_them() {
    let s = stack().await;
    let (status, _) = create(
        &s,
        json!({"email": "bo@example.com", "password": "pw-of-bo", "email_confirm": true}),
    )
    .await;
    assert_eq!(status, 200);
    let invalid = json!({"code": "invalid_credentials", "message": "Invalid login credentials"});
    // A wrong password and an unknown address get the very same answer.
    assert_eq!(
        sign_in(&s, "bo@example.com", "not-bo").await,
        (400, invalid.clone())
    );
    assert_eq!(
        sign_in(&s, "nobody@example.com", "pw-of-bo").await,
        (400, invalid.clone())
    );
    // A user without a password (as /admin/v1/users makes them) cannot sign in with one.
    s.admin("/admin/v1/users", json!({"email": "nopw@example.com"}))
        .await;
    assert_eq!(sign_in(&s, "nopw@example.com", "").await, (400, invalid));

    // Created without email_confirm: the right password, but the address is not confirmed.
    create(
        &s,
        json!({"email": "cy@example.com", "password": "pw-of-cy"}),
    )
    .await;
    assert_eq!(
        sign_in(&s, "cy@example.com", "pw-of-cy").await,
        (
            400,
            json!({"code": "email_not_confirmed", "message": "Email not confirmed"})
        )
    );

    // Without the API-version header (older clients): GoTrue's initial error shape.
    let r = s
        .http
        .post(s.url("/auth/v1/token?grant_type=password"))
        .header("apikey", s.anon())
        .json(&json!({"email": "bo@example.com", "password": "not-bo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"code": 400, "error_code": "invalid_credentials", "msg": "Invalid login credentials"})
    );

    // Other grant types and bodies say what was wrong.
    let anon = s.anon();
    let (status, body) = post(
        &s,
        "/auth/v1/token?grant_type=refresh_token",
        Some(&anon),
        None,
        json!({"refresh_token": "x"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("grant_type=refresh_token is not supported"),
        "{body}"
    );
    for (body, code, says) in [
        (
            json!({"password": "x"}),
            "validation_failed",
            "missing email or phone",
        ),
        (
            json!({"phone": "+15550100", "password": "x"}),
            "phone_provider_disabled",
            "Phone logins are disabled",
        ),
        (
            json!({"email": 7, "password": "x"}),
            "bad_json",
            "email must be a string",
        ),
    ] {
        let (status, got) = post(
            &s,
            "/auth/v1/token?grant_type=password",
            Some(&anon),
            None,
            body,
        )
        .await;
        assert!(status == 400 || status == 422, "{got}");
        assert_eq!(got["code"], code, "{got}");
        assert!(got["message"].as_str().unwrap().contains(says), "{got}");
    }
}

#[tokio::test]
async fn the_admin_routes_need_a_service_role_token_behind_a_valid_api_key() {
    let s = stack().await;
    let (anon, service) = (s.anon(), s.service());
    // A service-role token of another project: signed with another secret.
    let foreign = {
        use jwt_compact::alg::{Hs256, Hs256Key};
        use jwt_compact::{AlgorithmExt as _, Claims, Header};
        let claims = Claims::new(json!({"role": "service_role", "exp": common::now() + 600}));
        Hs256
            .token(
                &Header::empty(),
                &claims,
                &Hs256Key::new("another project's secret"),
            )
            .unwrap()
    };
    let body = json!({"email": "eve@example.com", "password": "pw"});
    for (apikey, bearer, status, code, says) in [
        (
            Some(anon.as_str()),
            Some(anon.as_str()),
            403,
            "not_admin",
            "User not allowed",
        ),
        (
            Some(anon.as_str()),
            None,
            401,
            "no_authorization",
            "requires a Bearer token",
        ),
        (
            Some(service.as_str()),
            Some(foreign.as_str()),
            403,
            "bad_jwt",
            "signature is invalid",
        ),
    ] {
        let (got_status, got) =
            post(&s, "/auth/v1/admin/users", apikey, bearer, body.clone()).await;
        assert_eq!(got_status, status, "{got}");
        assert_eq!(got["code"], code, "{got}");
        assert!(got["message"].as_str().unwrap().contains(says), "{got}");
    }
    // The gateway refuses a missing or unknown key before Auth sees the request, on every route.
    for path in ["/auth/v1/admin/users", "/auth/v1/token?grant_type=password"] {
        let (status, got) = post(&s, path, None, Some(&service), body.clone()).await;
        assert_eq!(
            (status, got["message"].as_str()),
            (401, Some("No API key found in request"))
        );
        let (status, got) = post(&s, path, Some(&foreign), Some(&service), body.clone()).await;
        assert_eq!(
            (status, got["message"].as_str()),
            (401, Some("Invalid API key"))
        );
    }
    assert_eq!(users_named(&s, "eve@example.com").await, 0);
    // Deletion is refused the same way: the user stays.
    let (_, user) = create(&s, json!({"email": "eve@example.com"})).await;
    let r = s
        .http
        .delete(s.url(&format!(
            "/auth/v1/admin/users/{}",
            user["id"].as_str().unwrap()
        )))
        .header("apikey", &anon)
        .bearer_auth(&anon)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(users_named(&s, "eve@example.com").await, 1);
}

#[tokio::test]
async fn bad_user_requests_name_what_was_wrong_and_create_nothing() {
    let s = stack().await;
    let (status, _) = create(&s, json!({"email": "dup@example.com", "password": "pw"})).await;
    assert_eq!(status, 200);
    let long_password = "p".repeat(73);
    for (body, status, code, says) in [
        (
            json!({"email": "DUP@example.com", "password": "pw"}),
            422,
            "email_exists",
            "already been registered",
        ),
        (
            json!({"password": "pw"}),
            400,
            "validation_failed",
            "without either an email or phone",
        ),
        (
            json!({"email": "not an address"}),
            400,
            "validation_failed",
            "invalid format",
        ),
        (
            json!({"email": "long@example.com", "password": long_password}),
            400,
            "validation_failed",
            "exceeds 72 bytes",
        ),
        (
            json!({"email": "ph@example.com", "phone": "+15550100", "role": "admin"}),
            400,
            "validation_failed",
            "does not support role, phone",
        ),
        (
            json!({"email": "t@example.com", "email_confirm": "yes"}),
            400,
            "bad_json",
            "email_confirm must be a boolean",
        ),
        (
            json!({"email": "t@example.com", "user_metadata": [1]}),
            400,
            "bad_json",
            "user_metadata must be an object",
        ),
    ] {
        let (got_status, got) = create(&s, body.clone()).await;
        assert_eq!(got_status, status, "{body}: {got}");
        assert_eq!(got["code"], code, "{body}: {got}");
        assert!(
            got["message"].as_str().unwrap().contains(says),
            "{body}: {got}"
        );
    }
    let r = s
        .http
        .post(s.url("/auth/v1/admin/users"))
        .header("apikey", s.service())
        .bearer_auth(s.service())
        .header(API_VERSION.0, API_VERSION.1)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "bad_json");
    let total: i64 =
        s.db.admin()
            .query_one("select count(*) from auth.users", &[])
            .await
            .unwrap()
            .get(0);
    assert_eq!(total, 1, "only the first user was created");
}
