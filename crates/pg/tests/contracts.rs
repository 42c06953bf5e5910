//! SQL mirrors fs-sync-core: the same hash, the same path rule, the same file type, for every input.

mod common;

use fs_sync_core::{
    content_hash, infer_file_type, validate_path, FileType, MAX_PROJECT_BYTES, MAX_PROJECT_FILES,
    MAX_SEGMENT_BYTES,
};
use fs_sync_pg::TestDb;

#[tokio::test]
async fn content_hash_agrees_with_core() {
    let db = TestDb::new().await.unwrap();
    let five_mib: String = "fs-sync ✓ 日本語 "
        .chars()
        .cycle()
        .take(5 * 1024 * 1024 / 3)
        .collect();
    let cases = [
        "",
        "hello",
        "export default () => null;\n",
        "héllo wörld ✓ 🚀 日本語",
        &five_mib,
    ];
    for case in cases {
        let sql: String = db
            .admin()
            .query_one(
                "select encode(sha256(convert_to($1, 'UTF8')), 'hex'), fsync.content_hash($1)",
                &[&case],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(sql, content_hash(case.as_bytes()), "{} bytes", case.len());
    }
}

/// Paths that probe every rule and its edges, plus pseudo-random strings.
fn path_corpus() -> Vec<String> {
    let mut corpus: Vec<String> = [
        "",
        "a",
        "src/App.tsx",
        ".env",
        "a//b",
        "/a",
        "a/",
        "./a",
        "a/./b",
        "a/../b",
        "..",
        ".",
        "a\\b",
        "a\tb",
        "a\u{7f}b",
        "a\u{85}b",
        "a\u{9f}",
        "a\u{a0}b",
        "cafe\u{301}",
        "café",
        "\u{1100}\u{1161}",
        "\u{ac00}",
        "Å",
        "A\u{30a}",
        "\u{212b}",
        ".fs-sync",
        ".fs-sync/x",
        ".fs-syncx",
        "x/.fs-sync/y",
        "日本語/ファイル.ts",
        "emoji/🚀.md",
        "...",
        "a/.../b",
        " ",
        "a /b",
        "\u{feff}bom",
        "\u{200b}zw",
        "\u{2028}",
        "ﬁ",
        "Ω",
        "\u{2126}",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    corpus.push("a".repeat(1024));
    corpus.push("a".repeat(1025));
    corpus.push("é".repeat(512));
    corpus.push("é".repeat(513));
    corpus.push(vec!["s"; 64].join("/"));
    corpus.push(vec!["s"; 65].join("/"));
    // Segments at the 255-byte limit and one byte over, ending inside or after a character of
    // each UTF-8 width.
    for c in ['a', 'é', '日', '🚀'] {
        let width = c.len_utf8();
        for bytes in [MAX_SEGMENT_BYTES, MAX_SEGMENT_BYTES + 1] {
            let segment = "a".repeat(bytes % width) + &c.to_string().repeat(bytes / width);
            corpus.push(format!("src/{segment}/x.ts"));
            corpus.push(segment);
        }
        corpus.push(c.to_string().repeat(MAX_SEGMENT_BYTES / width + 1));
    }
    corpus.push("e\u{301}".repeat(86));
    corpus.push(format!("{}/{}", vec!["s"; 64].join("/"), "b".repeat(300)));
    let long = "y".repeat(130);
    let pieces = [
        "a", "/", ".", "..", "\\", "e\u{301}", "é", "\u{1}", "日", ".fs-sync", "//", " ", &long,
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..3000 {
        let mut s = String::new();
        for _ in 0..(x % 6 + 1) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s.push_str(pieces[(x % pieces.len() as u64) as usize]);
        }
        corpus.push(s);
    }
    corpus
}

#[tokio::test]
async fn path_rules_agree_with_core() {
    let db = TestDb::new().await.unwrap();
    let corpus = path_corpus();
    let rows = db
        .admin()
        .query(
            "select p, (fsync.check_path(p)).rule from unnest($1::text[]) with ordinality as t(p, i) order by i",
            &[&corpus],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), corpus.len());
    for (row, path) in rows.iter().zip(&corpus) {
        let sql_rule: Option<String> = row.get(1);
        let core_rule = validate_path(path).err().map(|e| e.rule.name().to_owned());
        assert_eq!(sql_rule, core_rule, "path {path:?}");
    }
}

/// What the database accepts, a container can hold: the project caps default to fs-sync-core's
/// constants, through the settings and through fsync.project_caps()'s fallback when they are gone.
#[tokio::test]
async fn project_caps_default_to_core_constants() {
    let db = TestDb::new().await.unwrap();
    let caps = |sql: &'static str| {
        let db = &db;
        async move {
            let row = db.admin().query_one(sql, &[]).await.unwrap();
            (
                u64::try_from(row.get::<_, i64>(0)).unwrap(),
                usize::try_from(row.get::<_, i64>(1)).unwrap(),
            )
        }
    };
    let want = (MAX_PROJECT_BYTES, MAX_PROJECT_FILES);
    assert_eq!(
        caps("select (select (value #>> '{}')::bigint from fsync.settings where key = 'limits.max_project_bytes'),
                     (select (value #>> '{}')::bigint from fsync.settings where key = 'limits.max_project_files')")
            .await,
        want,
        "fsync.settings"
    );
    assert_eq!(
        caps("select max_bytes, max_files from fsync.project_caps()").await,
        want
    );
    db.admin()
        .execute(
            "delete from fsync.settings where key in ('limits.max_project_bytes', 'limits.max_project_files')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        caps("select max_bytes, max_files from fsync.project_caps()").await,
        want,
        "the fallback when the settings are missing"
    );
}

#[tokio::test]
async fn file_types_agree_with_core() {
    let db = TestDb::new().await.unwrap();
    let mut paths: Vec<String> = vec![
        "Dockerfile",
        ".env",
        ".eslintrc.json",
        "notes.",
        "a.b/c",
        "..hidden",
        "x.TSX",
        "dir.ts/file",
        "archive.tar.gz",
        "README",
        "a/b/c.Md",
        "x.unknown",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    for t in FileType::ALL {
        for ext in t.extensions() {
            paths.push(format!("src/file.{ext}"));
            paths.push(format!("src/FILE.{}", ext.to_uppercase()));
        }
    }
    let rows = db
        .admin()
        .query(
            "select fsync.infer_file_type(p) from unnest($1::text[]) with ordinality as t(p, i) order by i",
            &[&paths],
        )
        .await
        .unwrap();
    for (row, path) in rows.iter().zip(&paths) {
        assert_eq!(
            row.get::<_, String>(0),
            infer_file_type(path).as_str(),
            "{path}"
        );
    }
}

#[tokio::test]
async fn sql_refusal_messages_name_the_rule() {
    let db = TestDb::new().await.unwrap();
    let user = common::create_user(&db, "rules@example.test").await;
    let project = common::create_project(&db, user).await;
    let mut client = db.connect_as("authenticator").await.unwrap();
    let err = common::call(
        &mut client,
        &common::user_claims(user),
        common::UPSERT,
        &[&project, &"src/../etc/passwd", &"x", &None::<i32>],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "PT422");
    assert_eq!(err.detail["rule"], "dot_segment");
    assert!(
        err.message.contains("dot_segment") && err.message.contains("src/../etc/passwd"),
        "{}",
        err.message
    );
}
