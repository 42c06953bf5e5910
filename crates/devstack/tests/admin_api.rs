//! The local-only admin API: service role only, every route; bad bodies are 400s naming the field.

mod common;

use common::stack;
use serde_json::{json, Value};

#[tokio::test]
async fn admin_routes_need_the_service_role_key_and_name_bad_fields() {
    let s = stack().await;
    let (user, token) = s.user().await;
    let routes = [
        "/admin/v1/users",
        "/admin/v1/token",
        "/admin/v1/projects",
        "/admin/v1/members",
        "/admin/v1/faults/drop-websockets",
        "/admin/v1/faults/pause-delivery",
        "/admin/v1/faults/resume-delivery",
    ];
    // The anon key, a user's token with the anon key, and nothing at all are all refused, and
    // nothing runs: no user is created, delivery is never paused.
    for route in routes {
        for (apikey, bearer) in [
            (Some(s.anon()), None),
            (Some(s.anon()), Some(token.clone())),
            (None, None),
        ] {
            let mut req = s
                .http
                .post(s.url(route))
                .json(&json!({"email": "x@example.test"}));
            if let Some(k) = apikey {
                req = req.header("apikey", k);
            }
            if let Some(b) = bearer {
                req = req.bearer_auth(b);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 401, "{route}");
            let body: Value = r.json().await.unwrap();
            assert!(
                body["error"].as_str().unwrap().contains("service_role"),
                "{route}: {body}"
            );
        }
    }
    // The status route too (a GET).
    for apikey in [Some(s.anon()), None] {
        let mut req = s.http.get(s.url("/admin/v1/faults"));
        if let Some(k) = apikey {
            req = req.header("apikey", k);
        }
        assert_eq!(req.send().await.unwrap().status(), 401);
    }
    let users: i64 =
        s.db.admin()
            .query_one(
                "select count(*) from auth.users where email = 'x@example.test'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
    assert_eq!(users, 0);

    // With the key: malformed bodies and fields are 400s that say what was wrong.
    let post = |path: &'static str, body: &'static str| {
        s.http
            .post(s.url(path))
            .header("apikey", s.service())
            .bearer_auth(s.service())
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (path, body, says) in [
        ("/admin/v1/users", "{not json", "invalid JSON body"),
        ("/admin/v1/token", "{}", "user_id (a uuid) is required"),
        (
            "/admin/v1/token",
            r#"{"user_id": "nope"}"#,
            "user_id (a uuid) is required",
        ),
        (
            "/admin/v1/projects",
            r#"{"owner_id": 7}"#,
            "owner_id must be a uuid",
        ),
        (
            "/admin/v1/members",
            r#"{"project_id": "x"}"#,
            "project_id (a uuid) is required",
        ),
        (
            "/admin/v1/faults/pause-delivery",
            r#"{"mode": "later"}"#,
            "use \"hold\" or \"drop\"",
        ),
    ] {
        let r = post(path, body).await.unwrap();
        assert_eq!(r.status(), 400, "{path} {body}");
        let got: Value = r.json().await.unwrap();
        assert!(
            got["error"].as_str().unwrap().contains(says),
            "{path} {body}: {got}"
        );
    }
    let missing = post(
        "/admin/v1/token",
        r#"{"user_id": "00000000-0000-0000-0000-000000000001"}"#,
    )
    .await
    .unwrap();
    assert_eq!(missing.status(), 404);

    // An empty body reads as {} and the routes work.
    let fresh = s
        .admin(
            "/admin/v1/token",
            json!({"user_id": user, "expires_in": 60}),
        )
        .await;
    assert!(fresh["access_token"].as_str().unwrap().split('.').count() == 3);
    let r = post("/admin/v1/faults/pause-delivery", "").await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["mode"], "hold");
    assert_eq!(s.faults().await["mode"], "hold");
    let resumed = s.admin("/admin/v1/faults/resume-delivery", json!({})).await;
    assert_eq!(resumed, json!({"delivered": 0, "dropped": 0}));
    assert_eq!(s.faults().await["mode"], "live");

    s.dev.shutdown().await;
}
