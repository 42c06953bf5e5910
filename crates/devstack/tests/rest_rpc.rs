//! /rest/v1/rpc shapes, argument matching, transaction settings and error mapping.

mod common;

use common::stack;
use serde_json::{json, Value};

const FUNCTIONS: &str = r#"
create table public.t_items (id int primary key, label text);
insert into public.t_items values (1, 'one'), (2, 'two'), (3, 'three');
grant select on public.t_items to anon, authenticated;

create function public.t_add(a int, b int default 10) returns int
  language sql immutable as $$ select a + b $$;
create function public.t_items_after(min_id int) returns setof public.t_items
  language sql stable as $$ select * from public.t_items where id > min_id order by id $$;
create function public.t_table(n int) returns table (k int, v text)
  language sql stable as $$ select g, 'v' || g from generate_series(1, n) g $$;
create function public.t_item(item_id int) returns public.t_items
  language sql stable as $$ select * from public.t_items where id = item_id $$;
create function public.t_nothing(x text) returns void
  language sql as $$ select $$;
create function public.t_scalars() returns setof text
  language sql stable as $$ values ('a'), ('b') $$;
create function public.t_echo(jsonb) returns jsonb
  language sql immutable as $$ select $1 $$;
create function public.t_settings() returns jsonb
  language sql stable as $$
    select jsonb_build_object(
      'role', current_user,
      'method', current_setting('request.method', true),
      'path', current_setting('request.path', true),
      'x_test', current_setting('request.headers', true)::jsonb ->> 'x-test',
      'sub', current_setting('request.jwt.claims', true)::jsonb ->> 'sub',
      'read_only', current_setting('transaction_read_only'),
      'search_path', current_setting('search_path'))
  $$;
create function public.t_write() returns int
  language sql volatile as $$ insert into public.t_items values (99, 'x') returning id $$;
create function public.t_raise(code text) returns void language plpgsql as $$
begin
  raise exception using errcode = code, message = 'refused: ' || code, detail = '{"k": 1}', hint = 'h';
end $$;
create function public.t_private() returns int language sql as $$ select 1 $$;
revoke execute on function public.t_private() from public, anon, authenticated;
"#;

async fn with_functions() -> common::Stack {
    let s = stack().await;
    s.db.admin().batch_execute(FUNCTIONS).await.unwrap();
    s
}

#[tokio::test]
async fn response_shapes() {
    let s = with_functions().await;

    // Scalar: a bare JSON value; optional parameters may be left out.
    let r = s.rpc("t_add", None, json!({"a": 1, "b": 2})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!(3));
    let r = s.rpc("t_add", None, json!({"a": 1})).await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!(11));

    // SETOF composite: an array of objects, with Content-Range.
    let r = s.rpc("t_items_after", None, json!({"min_id": 1})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-range"], "0-1/*");
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!([{"id": 2, "label": "two"}, {"id": 3, "label": "three"}])
    );
    let r = s.rpc("t_items_after", None, json!({"min_id": 9})).await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!([]));

    // RETURNS TABLE.
    let r = s.rpc("t_table", None, json!({"n": 2})).await;
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!([{"k": 1, "v": "v1"}, {"k": 2, "v": "v2"}])
    );

    // Single composite: an object, or null when there is no row.
    let r = s.rpc("t_item", None, json!({"item_id": 2})).await;
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"id": 2, "label": "two"})
    );
    let r = s.rpc("t_item", None, json!({"item_id": 42})).await;
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"id": null, "label": null})
    );

    // void: 204 with no Content-Type.
    let r = s.rpc("t_nothing", None, json!({"x": "y"})).await;
    assert_eq!(r.status(), 204);
    assert!(r.headers().get("content-type").is_none());
    assert_eq!(r.bytes().await.unwrap().len(), 0);

    // SETOF scalar.
    let r = s.rpc("t_scalars", None, json!({})).await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!(["a", "b"]));

    // A single unnamed jsonb parameter receives the whole body.
    let r = s
        .rpc("t_echo", None, json!({"any": [1, 2], "keys": true}))
        .await;
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"any": [1, 2], "keys": true})
    );

    // Accept: application/vnd.pgrst.object+json on a set.
    let r = s
        .http
        .post(s.url("/rest/v1/rpc/t_items_after"))
        .header("apikey", s.anon())
        .header("accept", "application/vnd.pgrst.object+json")
        .json(&json!({"min_id": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"id": 3, "label": "three"})
    );
    let r = s
        .http
        .post(s.url("/rest/v1/rpc/t_items_after"))
        .header("apikey", s.anon())
        .header("accept", "application/vnd.pgrst.object+json")
        .json(&json!({"min_id": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 406);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "PGRST116");

    s.dev.shutdown().await;
}

#[tokio::test]
async fn argument_matching_and_verbs() {
    let s = with_functions().await;

    // Unknown key: PGRST202 with PostgREST's wording.
    let r = s.rpc("t_add", None, json!({"a": 1, "zzz": 2})).await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["proxy-status"], "PostgREST; error=PGRST202");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "PGRST202");
    assert_eq!(
        body["message"],
        "Could not find the function public.t_add(a, zzz) in the schema cache"
    );
    assert_eq!(
        body["details"],
        "Searched for the function public.t_add with parameters a, zzz or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache."
    );
    // A missing required key, and an unknown function.
    let r = s.rpc("t_add", None, json!({"b": 1})).await;
    assert_eq!(r.status(), 404);
    let r = s.rpc("no_such_function", None, json!({})).await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap()["message"],
        "Could not find the function public.no_such_function without parameters in the schema cache"
    );

    // GET for a stable function, arguments from the query string, read-only.
    let r = s
        .http
        .get(s.url("/rest/v1/rpc/t_items_after?min_id=2"))
        .header("apikey", s.anon())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!([{"id": 3, "label": "three"}])
    );

    // Other verbs: 405 PGRST101.
    let r = s
        .http
        .put(s.url("/rest/v1/rpc/t_add"))
        .header("apikey", s.anon())
        .json(&json!({"a": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "PGRST101");
    assert_eq!(body["message"], "Cannot use the PUT method on RPC");

    // GET runs read-only: a volatile function that writes fails with 25006 → 405. (POST of a
    // stable function is read-only too: see transaction_settings_and_errors.)
    let r = s
        .http
        .get(s.url("/rest/v1/rpc/t_write"))
        .header("apikey", s.anon())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "25006");

    // Only the public schema is exposed.
    let r = s
        .http
        .post(s.url("/rest/v1/rpc/t_add"))
        .header("apikey", s.anon())
        .header("content-profile", "private")
        .json(&json!({"a": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 406);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "PGRST106");

    // Invalid JSON.
    let r = s
        .http
        .post(s.url("/rest/v1/rpc/t_add"))
        .header("apikey", s.anon())
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "PGRST102");

    s.dev.shutdown().await;
}

#[tokio::test]
async fn transaction_settings_and_errors() {
    let s = with_functions().await;
    let (uid, token) = s.user().await;

    let r = s
        .http
        .post(s.url("/rest/v1/rpc/t_settings"))
        .header("apikey", s.anon())
        .header("X-Test", "hello")
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["role"], "authenticated");
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/rpc/t_settings");
    assert_eq!(v["x_test"], "hello");
    assert_eq!(v["sub"], uid.as_str());
    assert_eq!(v["read_only"], "on");
    assert!(v["search_path"].as_str().unwrap().starts_with("\"public\""));

    // Settings are transaction-local: a later request on any connection does not see them.
    let r = s.rpc("t_settings", None, json!({})).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["role"], "anon");
    assert_eq!(v["sub"], Value::Null);

    // PTxyz → HTTP xyz; details and hint pass through.
    for (code, status) in [
        ("PT409", 409),
        ("PT422", 422),
        ("PT429", 429),
        ("P0001", 400),
        ("23505", 409),
        ("40001", 500),
    ] {
        let r = s.rpc("t_raise", None, json!({"code": code})).await;
        assert_eq!(r.status().as_u16(), status, "{code}");
        assert_eq!(
            r.headers()["proxy-status"],
            format!("PostgREST; error={code}").as_str()
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], code);
        assert_eq!(body["message"], format!("refused: {code}"));
        assert_eq!(body["details"], "{\"k\": 1}");
        assert_eq!(body["hint"], "h");
    }

    // 42501: 401 for anon, 403 for a signed-in user.
    let r = s.rpc("t_private", None, json!({})).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "42501");
    let r = s.rpc("t_private", Some(&token), json!({})).await;
    assert_eq!(r.status(), 403);

    s.dev.shutdown().await;
}

/// fs-sync's RPCs take the request body as one json argument and check it themselves: over HTTP
/// a bad argument is 422 PT422 naming the parameter and the rule, not a 400 with Postgres'
/// conversion error (22P05 for a NUL, 22003/22P02 for numbers), and nothing is stored.
#[tokio::test]
async fn fs_sync_rpcs_refuse_bad_arguments_with_422() {
    let s = stack().await;
    let (owner, token) = s.user().await;
    let project = s.project(&owner).await;
    let p = project.as_str();
    let upsert = |path: Value, content: Value, expected: Value| json!({"project_uuid": p, "p_file_path": path, "p_content": content, "expected_version": expected});
    let cases = [
        (
            "upsert_project_file",
            upsert(json!("a\u{0}.ts"), json!("x"), Value::Null),
            "p_file_path",
            "nul",
        ),
        (
            "upsert_project_file",
            upsert(json!("a.ts"), json!("x\u{0}y"), Value::Null),
            "p_content",
            "nul",
        ),
        (
            "upsert_project_file",
            upsert(json!("a.ts"), json!(42), Value::Null),
            "p_content",
            "string",
        ),
        (
            "upsert_project_file",
            upsert(json!("a.ts"), json!({"a": 1}), Value::Null),
            "p_content",
            "string",
        ),
        (
            "upsert_project_file",
            upsert(json!("a.ts"), json!(["x"]), Value::Null),
            "p_content",
            "string",
        ),
        (
            "upsert_project_file",
            upsert(json!("a.ts"), json!(false), Value::Null),
            "p_content",
            "string",
        ),
        (
            "upsert_project_file",
            upsert(json!("a.ts"), Value::Null, Value::Null),
            "p_content",
            "required",
        ),
        (
            "upsert_project_file",
            upsert(json!("a.ts"), json!("x"), json!(2147483648u64)),
            "expected_version",
            "integer",
        ),
        (
            "upsert_project_file",
            upsert(json!("a.ts"), json!("x"), json!(1.5)),
            "expected_version",
            "integer",
        ),
        (
            "upsert_project_file",
            upsert(json!("a.ts"), json!("x"), json!("abc")),
            "expected_version",
            "integer",
        ),
        (
            "upsert_project_file",
            upsert(json!("a.ts"), json!("x"), json!(-1)),
            "expected_version",
            "integer",
        ),
        (
            "delete_project_file",
            json!({"project_uuid": p, "p_file_path": "a\u{0}"}),
            "p_file_path",
            "nul",
        ),
        (
            "rename_project_file",
            json!({"project_uuid": p, "p_from_path": "a", "p_to_path": 1}),
            "p_to_path",
            "string",
        ),
        (
            "bulk_upsert_project_files",
            json!({"project_uuid": p, "files": [{"file_path": "a.ts", "content": "\u{0}"}]}),
            "files[0].content",
            "nul",
        ),
        (
            "get_project_files",
            json!({"project_uuid": p, "paths": ["a\u{0}"]}),
            "paths[0]",
            "nul",
        ),
        (
            "list_project_events",
            json!({"project_uuid": p, "after_seq": "abc"}),
            "after_seq",
            "integer",
        ),
        (
            "get_project_sync_state",
            json!({"project_uuid": "abc"}),
            "project_uuid",
            "uuid",
        ),
        (
            "upsert_project_file",
            json!({"project_uuid": p, "p_path": "x"}),
            "p_path",
            "unknown",
        ),
    ];
    for (rpc, body, param, rule) in cases {
        let r = s.rpc(rpc, Some(&token), body.clone()).await;
        assert_eq!(r.status(), 422, "{rpc} {body}");
        let err: Value = r.json().await.unwrap();
        assert_eq!(err["code"], "PT422", "{rpc} {body}: {err}");
        let details: Value = serde_json::from_str(err["details"].as_str().unwrap()).unwrap();
        assert_eq!(
            details,
            json!({"param": param, "rule": rule}),
            "{rpc} {body}"
        );
        assert!(
            err["message"].as_str().unwrap().contains(param),
            "{rpc}: {err}"
        );
    }
    let stored: i64 = s
        .db
        .admin()
        .query_one(
            "select (select count(*) from public.project_files) + (select count(*) from public.project_events)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0, "a refused call stores nothing");

    // The same call with valid arguments, as supabase-js sends it, works.
    let r = s
        .rpc(
            "upsert_project_file",
            Some(&token),
            upsert(json!("a.ts"), json!("x"), json!(0)),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["version"], 1);

    s.dev.shutdown().await;
}

/// A request is planned from the functions seen before and confirmed inside its own transaction:
/// when a function changed in between, nothing runs on the old plan and the request runs as the
/// function is now.
#[tokio::test]
async fn a_function_changed_between_requests_is_called_as_it_is_now() {
    let s = with_functions().await;
    let admin = s.db.admin();
    admin
        .batch_execute(
            "create table public.t_log (n int);
             grant select, insert on public.t_log to anon;
             create function public.t_log_call(n int) returns int
               language sql volatile as $$ insert into public.t_log values (n) returning n $$;",
        )
        .await
        .unwrap();
    for n in [1, 2] {
        let r = s.rpc("t_log_call", None, json!({"n": n})).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap(), json!(n));
    }

    // Another signature and return type under the same name: the old plan's call would still
    // resolve (to the new function, which writes 10 × n), in the old shape.
    admin
        .batch_execute(
            "drop function public.t_log_call(int);
             create function public.t_log_call(n int, tag text default 'x') returns setof text
               language sql volatile as $$ insert into public.t_log values (10 * n) returning tag || $1 $$;",
        )
        .await
        .unwrap();
    let r = s.rpc("t_log_call", None, json!({"n": 3})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!(["x3"]));
    let r = s.rpc("t_log_call", None, json!({"n": 4, "tag": "y"})).await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!(["y4"]));
    let logged: Vec<i32> = admin
        .query("select n from public.t_log order by n", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(logged, [1, 2, 30, 40], "each request wrote once");

    // Only the volatility changed: a read-only transaction for a stable function, read-write
    // once it is volatile.
    admin
        .batch_execute(
            "create function public.t_mode() returns text
               language sql stable as $$ select current_setting('transaction_read_only') $$;
             grant execute on function public.t_mode() to anon;",
        )
        .await
        .unwrap();
    let r = s.rpc("t_mode", None, json!({})).await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!("on"));
    admin
        .batch_execute("alter function public.t_mode() volatile")
        .await
        .unwrap();
    let r = s.rpc("t_mode", None, json!({})).await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!("off"));

    // Dropped: PostgREST's 404, not the old plan's error.
    admin
        .batch_execute("drop function public.t_mode()")
        .await
        .unwrap();
    let r = s.rpc("t_mode", None, json!({})).await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "PGRST202");
}
