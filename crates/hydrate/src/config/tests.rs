//! Flags and variables, their precedence and errors, and the refusal of service credentials.

use super::*;

fn jwt(payload: &str) -> String {
    let b = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!("{}.{}.sig", b(r#"{"alg":"HS256"}"#), b(payload))
}

fn env(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = [
        ("PROJECT_ID", "0F8FAD5B-D9CB-469F-A165-70867728950E"),
        ("SESSION_ID", "s1"),
        ("SNAPSHOT_URL", "http://127.0.0.1:1/snap.zip?token=t"),
        ("SNAPSHOT_SHA256", &"AB".repeat(32)),
        ("SUPABASE_URL", "http://127.0.0.1:2/"),
        ("SUPABASE_ANON_KEY", "anon"),
        ("REALTIME_TOKEN", "x.y.z"),
        ("TOKEN_EXPIRES_AT", "2030-01-01T00:00:00Z"),
        ("EDGE_URL", "http://127.0.0.1:3"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    v.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    v
}

#[test]
fn reads_the_design_env_and_flags() {
    let args = [
        "--target",
        "/tmp/x/proj",
        "--exec=npm run dev",
        "--metrics-addr",
        "off",
    ]
    .map(String::from);
    let c = Config::from_env_and_args(env(&[]), args).unwrap();
    assert_eq!(c.project_id, "0f8fad5b-d9cb-469f-a165-70867728950e");
    assert_eq!(c.supabase_url, "http://127.0.0.1:2");
    assert_eq!(c.snapshot_sha256.as_deref(), Some(&*"ab".repeat(32)));
    assert_eq!(c.state_dir, PathBuf::from("/tmp/x/.fs-sync-state"));
    assert_eq!(c.exec.as_deref(), Some("npm run dev"));
    assert_eq!(c.metrics_addr, None);
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("x.y.z") && !debug.contains("token=t"),
        "{debug}"
    );
    assert_eq!(
        c.token_expires_at,
        Some(UNIX_EPOCH + Duration::from_secs(1_893_456_000))
    );
    assert!(matches!(
        Config::from_env_and_args(env(&[]), ["--bogus".to_string()]),
        Err(ConfigError::Usage(_))
    ));
}

#[test]
fn every_flag_has_a_variable_and_the_flag_wins() {
    for arg in Flags::command()
        .get_arguments()
        .filter(|a| a.get_id() != "help")
    {
        let long = arg.get_long().unwrap();
        let var = format!("FS_SYNC_{}", long.to_uppercase().replace('-', "_"));
        assert_eq!(
            arg.get_env().and_then(|v| v.to_str()),
            Some(&*var),
            "--{long}"
        );
    }
    let vars = env(&[
        ("FS_SYNC_TARGET", "/srv/a/proj"),
        ("FS_SYNC_EXEC", "npm start"),
        ("FS_SYNC_METRICS_ADDR", "off"),
        ("FS_SYNC_STATE_DIR", "/var/state"),
        ("FS_SYNC_SYNC_INTERVAL", "2.5"),
        ("FS_SYNC_NO_PROGRESS", "1"),
        ("FS_SYNC_MAX_PROJECT_BYTES", "2048"),
        ("FS_SYNC_MAX_PROJECT_FILES", "9"),
        ("FS_SYNC_HEALTH_REALTIME_INTERVALS", "3"),
        ("FS_SYNC_HEALTH_MAX_BEHIND", "50"),
    ]);
    let c = Config::from_env_and_args(vars.clone(), Vec::<String>::new()).unwrap();
    assert_eq!((c.limits.max_total_bytes, c.limits.max_entries), (2048, 9));
    assert_eq!(c.target, PathBuf::from("/srv/a/proj"));
    assert_eq!(c.exec.as_deref(), Some("npm start"));
    assert_eq!(c.metrics_addr, None);
    assert_eq!(c.state_dir, PathBuf::from("/var/state"));
    assert_eq!(c.sync_interval, Duration::from_millis(2500));
    assert!(!c.progress);
    assert_eq!((c.health_realtime_intervals, c.health_max_behind), (3, 50));

    let args = [
        "--target=/t/p",
        "--metrics-addr",
        "127.0.0.1:0",
        "--sync-interval",
        "3",
        "--health-max-behind",
        "7",
    ]
    .map(String::from);
    let c = Config::from_env_and_args(vars, args).unwrap();
    assert_eq!(c.target, PathBuf::from("/t/p"));
    assert_eq!(c.metrics_addr, Some(SocketAddr::from(([127, 0, 0, 1], 0))));
    assert_eq!(c.sync_interval, Duration::from_secs(3));
    assert_eq!(c.state_dir, PathBuf::from("/var/state"));
    assert_eq!((c.health_realtime_intervals, c.health_max_behind), (3, 7));

    let c = Config::from_env_and_args(
        env(&[("FS_SYNC_NO_PROGRESS", "false")]),
        Vec::<String>::new(),
    )
    .unwrap();
    assert!(c.progress);
    // The snapshot limits default to the project caps the database enforces.
    assert_eq!(c.limits.max_total_bytes, fs_sync_core::MAX_PROJECT_BYTES);
    assert_eq!(c.limits.max_entries, fs_sync_core::MAX_PROJECT_FILES);
    assert_eq!(c.target, PathBuf::from("/app/project"));
    assert_eq!(c.sync_interval, Duration::from_secs(15));
    assert_eq!(
        (c.health_realtime_intervals, c.health_max_behind),
        (2, 1000)
    );
    assert!(matches!(
        Config::from_env_and_args(env(&[]), ["--health-realtime-intervals=0".to_string()]),
        Err(ConfigError::Usage(_))
    ));
    assert_eq!(
        c.metrics_addr,
        Some(SocketAddr::from(([127, 0, 0, 1], 9464)))
    );
}

#[test]
fn a_bad_value_is_named_by_where_it_came_from() {
    let name_of = |vars: &[(&str, &str)], args: &[&str]| match Config::from_env_and_args(
        env(vars),
        args.iter().map(|a| a.to_string()),
    ) {
        Err(ConfigError::Invalid { name, .. }) => name,
        other => panic!("{other:?}"),
    };
    let zero = [("FS_SYNC_SYNC_INTERVAL", "0")];
    assert_eq!(name_of(&zero, &[]), "FS_SYNC_SYNC_INTERVAL");
    assert_eq!(name_of(&[], &["--sync-interval", "inf"]), "--sync-interval");
    let fine = [("FS_SYNC_SYNC_INTERVAL", "1")];
    assert_eq!(name_of(&fine, &["--sync-interval=-1"]), "--sync-interval");
    let addr = [("FS_SYNC_METRICS_ADDR", "nope")];
    assert_eq!(name_of(&addr, &[]), "FS_SYNC_METRICS_ADDR");
    assert_eq!(name_of(&[], &["--target", "/"]), "--target");
    let err = Config::from_env_and_args(env(&[]), ["--sync-interval".to_string()]);
    assert!(
        matches!(&err, Err(ConfigError::Usage(m)) if m.contains("--sync-interval")),
        "{err:?}"
    );
}

#[test]
fn help_needs_no_container_env_and_lists_the_variables() {
    let no_env = Vec::<(String, String)>::new();
    let Err(ConfigError::Help(text)) = Config::from_env_and_args(no_env, ["--help".to_string()])
    else {
        panic!("--help is not an error of its own");
    };
    for word in [
        "--exec",
        "FS_SYNC_EXEC",
        "FS_SYNC_SYNC_INTERVAL",
        "REALTIME_TOKEN",
    ] {
        assert!(text.contains(word), "{word} in\n{text}");
    }
}

#[test]
fn refuses_service_credentials() {
    let service = jwt(r#"{"role":"service_role","exp":1}"#);
    let bearer = format!("Bearer {service}");
    for (name, value) in [
        ("SUPABASE_SERVICE_ROLE_KEY", "anything"),
        ("JWT_SECRET", "s3cret"),
        ("SUPABASE_JWT_SECRET", "s3cret"),
        ("SOME_TOKEN", service.as_str()),
        ("AUTH_HEADER", bearer.as_str()),
        ("KEY", "sb_secret_abc"),
    ] {
        let err =
            Config::from_env_and_args(env(&[(name, value)]), Vec::<String>::new()).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, ConfigError::SecretInEnv { .. }),
            "{name}: {msg}"
        );
        assert!(msg.contains(name), "{msg}");
        assert!(!msg.contains(value), "the value must not be printed: {msg}");
    }
    // An anon key or a container token is fine.
    let ok = [
        ("SUPABASE_ANON_KEY", jwt(r#"{"role":"anon"}"#)),
        (
            "REALTIME_TOKEN",
            jwt(r#"{"role":"fsync_container","exp":99}"#),
        ),
    ];
    let mut vars = env(&[]);
    vars.extend(ok.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let c = Config::from_env_and_args(vars, Vec::<String>::new()).unwrap();
    assert_eq!(
        c.token_expires_at,
        Some(UNIX_EPOCH + Duration::from_secs(1_893_456_000))
    );
}

#[test]
fn expiry_falls_back_to_the_token() {
    let vars: Vec<_> = env(&[])
        .into_iter()
        .filter(|(k, _)| k != "TOKEN_EXPIRES_AT" && k != "REALTIME_TOKEN")
        .chain([(
            "REALTIME_TOKEN".to_string(),
            jwt(r#"{"role":"fsync_container","exp":1700000000}"#),
        )])
        .collect();
    let c = Config::from_env_and_args(vars, Vec::<String>::new()).unwrap();
    assert_eq!(
        c.token_expires_at,
        Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
    );
    assert_eq!(
        parse_time("2026-11-26T08:00:00.123456Z"),
        Some(UNIX_EPOCH + Duration::from_nanos(1_795_680_000_123_456_000))
    );
}
