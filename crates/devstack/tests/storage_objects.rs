//! /storage/v1/object: uploads under the caller's role, signed URLs, downloads, Storage errors.

mod common;

use common::{now, stack};
use serde_json::{json, Value};

async fn upload(
    s: &common::Stack,
    token: &str,
    path: &str,
    body: &'static [u8],
    content_type: &str,
    upsert: bool,
) -> (u16, Value) {
    let r = s
        .http
        .post(s.url(&format!("/storage/v1/object/{path}")))
        .header("apikey", s.anon())
        .bearer_auth(token)
        .header("content-type", content_type)
        .header("x-upsert", if upsert { "true" } else { "false" })
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn sign(s: &common::Stack, token: &str, path: &str, expires_in: i64) -> (u16, Value) {
    let r = s
        .http
        .post(s.url(&format!("/storage/v1/object/sign/{path}")))
        .header("apikey", s.anon())
        .bearer_auth(token)
        .json(&json!({"expiresIn": expires_in}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn upload_sign_download_with_policies() {
    let s = stack().await;
    let service = s.service();
    let (owner, owner_token) = s.user().await;
    let (_stranger, stranger_token) = s.user().await;
    let project = s.project(&owner).await;
    let key = format!("project-snapshots/{project}/snap.zip");

    // The service role writes snapshots (BYPASSRLS); the row records the caller.
    let (status, body) = upload(
        &s,
        &service,
        &key,
        b"PK\x03\x04zip",
        "application/zip",
        false,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Key"], key.as_str());
    assert!(body["Id"].as_str().unwrap().len() == 36);
    let row = s
        .db
        .admin()
        .query_one(
            "select metadata, owner_id from storage.objects where bucket_id = 'project-snapshots' and name = $1",
            &[&format!("{project}/snap.zip")],
        )
        .await
        .unwrap();
    let meta: Value = row.get(0);
    assert_eq!(meta["mimetype"], "application/zip");
    assert_eq!(meta["size"], 7);
    assert!(meta["eTag"].as_str().unwrap().starts_with('"'));
    assert_eq!(row.get::<_, Option<String>>(1), None);

    // Again without upsert: a duplicate (Storage's 409, sent as HTTP 400).
    let (status, body) = upload(
        &s,
        &service,
        &key,
        b"PK\x03\x04zip",
        "application/zip",
        false,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["statusCode"], "409");
    // With x-upsert it replaces.
    let (status, _) = upload(
        &s,
        &service,
        &key,
        b"PK\x03\x04zip2",
        "application/zip",
        true,
    )
    .await;
    assert_eq!(status, 200);

    // The bucket's allowed MIME types and size limit are enforced.
    let (status, body) = upload(
        &s,
        &service,
        &format!("project-snapshots/{project}/x.txt"),
        b"hi",
        "text/plain",
        false,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["statusCode"], "415");
    assert_eq!(body["code"], "InvalidMimeType");
    s.db.admin()
        .batch_execute(
            "insert into storage.buckets (id, name, file_size_limit) values ('tiny', 'tiny', 4)",
        )
        .await
        .unwrap();
    let (status, body) = upload(
        &s,
        &service,
        "tiny/a.bin",
        b"12345",
        "application/octet-stream",
        false,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"statusCode": "413", "code": "EntityTooLarge", "error": "EntityTooLarge",
               "message": "The object exceeded the maximum allowed size"})
    );

    // Members may not write these buckets (no INSERT policy): RLS refuses.
    let (status, body) = upload(
        &s,
        &owner_token,
        &format!("project-snapshots/{project}/mine.zip"),
        b"PK",
        "application/zip",
        false,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["statusCode"], "403");
    assert_eq!(
        body["message"],
        "new row violates row-level security policy"
    );

    // A member signs (SELECT passes); a stranger cannot see the object.
    let (status, body) = sign(&s, &owner_token, &key, 60).await;
    assert_eq!(status, 200, "{body}");
    let signed = body["signedURL"].as_str().unwrap().to_owned();
    assert!(signed.starts_with(&format!("/object/sign/{key}?token=")));
    let (status, body) = sign(&s, &stranger_token, &key, 60).await;
    assert_eq!((status, body["statusCode"].as_str()), (400, Some("404")));
    assert_eq!(body["code"], "NoSuchKey");

    // The signed URL needs no credentials.
    let r = s
        .http
        .get(s.url(&format!("/storage/v1{signed}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/zip");
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"PK\x03\x04zip2");

    // The token is a JWT {url, scope, iat, exp} signed with the project's secret.
    let token = signed.split("token=").nth(1).unwrap();
    let claims: Value = {
        use base64::Engine as _;
        let part = token.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(claims["url"], key.as_str());
    assert_eq!(claims["scope"], "download");
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() == 60);

    // Tampered, expired and wrong-object tokens.
    let get = |path: String, token: String| {
        let url = s.url(&format!("/storage/v1/object/sign/{path}?token={token}"));
        let http = s.http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let mut tampered = token.to_owned();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let (status, body) = get(key.clone(), tampered).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "InvalidSignature");
    assert_eq!(body["statusCode"], "400");
    let expired =
        s.sign(json!({"url": key, "scope": "download", "iat": now() - 120, "exp": now() - 60}));
    let (status, body) = get(key.clone(), expired).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "ExpiredToken");
    let (status, body) = get(
        format!("project-snapshots/{project}/other.zip"),
        token.to_owned(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "InvalidSignature");

    // Authenticated download under RLS.
    let r = s
        .http
        .get(s.url(&format!("/storage/v1/object/authenticated/{key}")))
        .header("apikey", s.anon())
        .bearer_auth(&owner_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"PK\x03\x04zip2");
    let r = s
        .http
        .get(s.url(&format!("/storage/v1/object/authenticated/{key}")))
        .header("apikey", s.anon())
        .bearer_auth(&stranger_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["statusCode"], "404");

    // Unknown bucket.
    let (status, body) = upload(&s, &service, "nope/a.zip", b"x", "application/zip", false).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("NoSuchBucket")));

    s.dev.shutdown().await;
}
