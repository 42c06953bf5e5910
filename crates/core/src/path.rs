//! Project file path rules.
//!
//! One implementation, mirrored by `fsync.path_error` in SQL; the rules are checked in the order of
//! [`PathRule`] so that both sides name the same rule for the same path.

use std::fmt;
use std::sync::OnceLock;

/// Longest path accepted, in UTF-8 bytes.
pub const MAX_PATH_BYTES: usize = 1024;
/// Most `/`-separated segments a path may have.
pub const MAX_SEGMENTS: usize = 64;
/// Longest segment (file or folder name) accepted, in UTF-8 bytes: Linux's `NAME_MAX`, so that a
/// container can create every path the database accepts.
pub const MAX_SEGMENT_BYTES: usize = 255;
/// Folder reserved for fs-sync's own files inside a snapshot or project tree.
pub const RESERVED_DIR: &str = ".fs-sync";

/// The rule a refused path broke, in the order the rules are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PathRule {
    /// The path is the empty string.
    Empty,
    /// Longer than [`MAX_PATH_BYTES`] bytes.
    TooLong,
    /// Holds a control character (U+0000–U+001F, U+007F–U+009F).
    ControlChar,
    /// Holds a backslash.
    Backslash,
    /// Starts with `/`.
    Absolute,
    /// Ends with `/`.
    TrailingSlash,
    /// Has an empty segment (`a//b`).
    EmptySegment,
    /// Has a `.` or `..` segment.
    DotSegment,
    /// More than [`MAX_SEGMENTS`] segments.
    TooManySegments,
    /// A segment longer than [`MAX_SEGMENT_BYTES`] bytes.
    SegmentTooLong,
    /// Not in Unicode normalization form C.
    NotNfc,
    /// Inside the reserved `.fs-sync` folder.
    Reserved,
}

impl PathRule {
    /// The rule's stable name, shared with SQL and error details.
    pub fn name(self) -> &'static str {
        match self {
            PathRule::Empty => "empty",
            PathRule::TooLong => "too_long",
            PathRule::ControlChar => "control_char",
            PathRule::Backslash => "backslash",
            PathRule::Absolute => "absolute",
            PathRule::TrailingSlash => "trailing_slash",
            PathRule::EmptySegment => "empty_segment",
            PathRule::DotSegment => "dot_segment",
            PathRule::TooManySegments => "too_many_segments",
            PathRule::SegmentTooLong => "segment_too_long",
            PathRule::NotNfc => "not_nfc",
            PathRule::Reserved => "reserved",
        }
    }
}

impl fmt::Display for PathRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A path that breaks one of the rules; the message names the rule and the offending part.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid path {}: {rule}: {detail}", Quoted(path))]
pub struct PathError {
    /// The refused path, as given.
    pub path: String,
    /// The first rule it breaks.
    pub rule: PathRule,
    /// What exactly is wrong, for people.
    pub detail: String,
}

/// Characters of an over-long segment that its refusal message shows (as SQL's does).
const SEGMENT_SHOWN_CHARS: usize = 32;

/// Checks `path` against the rules, returning the first one it breaks.
///
/// Paths are never normalised silently: a path that is not already valid is refused.
pub fn validate_path(path: &str) -> Result<(), PathError> {
    let refuse = |rule: PathRule, detail: String| {
        Err(PathError {
            path: path.to_owned(),
            rule,
            detail,
        })
    };
    if path.is_empty() {
        return refuse(
            PathRule::Empty,
            "a path needs at least one character".into(),
        );
    }
    if path.len() > MAX_PATH_BYTES {
        return refuse(
            PathRule::TooLong,
            format!("{} bytes, at most {MAX_PATH_BYTES} allowed", path.len()),
        );
    }
    if let Some(c) = path.chars().find(|c| c.is_control()) {
        return refuse(
            PathRule::ControlChar,
            format!("control character U+{:04X} is not allowed", c as u32),
        );
    }
    if path.contains('\\') {
        return refuse(
            PathRule::Backslash,
            "use '/' to separate folders; '\\' is not allowed".into(),
        );
    }
    if path.starts_with('/') {
        return refuse(
            PathRule::Absolute,
            "paths are relative to the project root and must not start with '/'".into(),
        );
    }
    if path.ends_with('/') {
        return refuse(
            PathRule::TrailingSlash,
            "a file path must not end with '/'".into(),
        );
    }
    if path.contains("//") {
        return refuse(
            PathRule::EmptySegment,
            "empty folder name ('//') is not allowed".into(),
        );
    }
    let mut segments = 0;
    for segment in path.split('/') {
        segments += 1;
        if segment == "." || segment == ".." {
            return refuse(
                PathRule::DotSegment,
                format!("'{segment}' segments are not allowed"),
            );
        }
    }
    if segments > MAX_SEGMENTS {
        return refuse(
            PathRule::TooManySegments,
            format!("{segments} segments, at most {MAX_SEGMENTS} allowed"),
        );
    }
    if let Some(segment) = path.split('/').find(|s| s.len() > MAX_SEGMENT_BYTES) {
        let start: String = segment.chars().take(SEGMENT_SHOWN_CHARS).collect();
        return refuse(
            PathRule::SegmentTooLong,
            format!(
                "segment {}… is {} bytes, at most {MAX_SEGMENT_BYTES} allowed",
                Quoted(&start),
                segment.len()
            ),
        );
    }
    if let Some(nfc) = nfc_form(path) {
        return refuse(
            PathRule::NotNfc,
            format!("not in Unicode NFC; write it as {}", Quoted(&nfc)),
        );
    }
    if path == RESERVED_DIR || path.starts_with(".fs-sync/") {
        return refuse(
            PathRule::Reserved,
            format!("'{RESERVED_DIR}/' is reserved for fs-sync"),
        );
    }
    Ok(())
}

/// Writes a string in double quotes, escaping quotes, backslashes and control characters.
///
/// Unlike `{:?}` it prints other characters as they are, which keeps Unicode's printable-character
/// tables out of the Wasm package.
pub(crate) struct Quoted<'a>(pub(crate) &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

static NFC: OnceLock<fn(&str) -> String> = OnceLock::new();

/// Makes the `not_nfc` rule use `to_nfc` (a function returning the NFC form of its input) instead
/// of the compiled-in Unicode tables. A host that has a normalizer already, such as a JS engine's
/// `String.prototype.normalize`, installs it and builds this crate without the default
/// `unicode-tables` feature, which keeps about 64 KB of tables out of its binary. Returns false
/// (and changes nothing) if a normalizer was installed before.
pub fn install_nfc(to_nfc: fn(&str) -> String) -> bool {
    NFC.set(to_nfc).is_ok()
}

/// The NFC form of `s` when `s` is not already in NFC.
fn nfc_form(s: &str) -> Option<String> {
    if s.is_ascii() {
        return None;
    }
    if let Some(to_nfc) = NFC.get() {
        let nfc = to_nfc(s);
        return (nfc != s).then_some(nfc);
    }
    tables_nfc_form(s)
}

#[cfg(feature = "unicode-tables")]
fn tables_nfc_form(s: &str) -> Option<String> {
    use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};
    match is_nfc_quick(s.chars()) {
        IsNormalized::Yes => None,
        IsNormalized::No | IsNormalized::Maybe => {
            let nfc: String = s.nfc().collect();
            (nfc != s).then_some(nfc)
        }
    }
}

#[cfg(not(feature = "unicode-tables"))]
fn tables_nfc_form(_: &str) -> Option<String> {
    panic!("fs-sync-core was built without `unicode-tables`: call fs_sync_core::install_nfc first")
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn rule(p: &str) -> Option<PathRule> {
        validate_path(p).err().map(|e| e.rule)
    }

    #[test]
    fn accepts_ordinary_paths() {
        for p in [
            "a",
            "src/App.tsx",
            ".env",
            ".gitignore",
            "a/.b/c..d/...",
            "assets/café.png",
            "日本語/ファイル.ts",
            "fs-sync/x",
            ".fs-syncx/a",
            "a/.fs-sync/b",
        ] {
            assert_eq!(rule(p), None, "{p}");
        }
        let longest = vec!["a".repeat(204); 5].join("/");
        assert_eq!(longest.len(), MAX_PATH_BYTES);
        assert_eq!(rule(&longest), None);
        assert_eq!(rule(&vec!["a"; MAX_SEGMENTS].join("/")), None);
    }

    /// Segments of exactly `MAX_SEGMENT_BYTES` and one byte more, ending in characters of each
    /// UTF-8 width so that the limit falls inside or right after a multi-byte character.
    fn segments_at_the_limit() -> Vec<(String, bool)> {
        let mut cases = Vec::new();
        for c in ['a', 'é', '日', '🚀'] {
            let width = c.len_utf8();
            let fill = |bytes: usize| {
                let mut s = "a".repeat(bytes % width);
                s.extend(std::iter::repeat_n(c, bytes / width));
                s
            };
            cases.push((fill(MAX_SEGMENT_BYTES), true));
            cases.push((fill(MAX_SEGMENT_BYTES + 1), false));
            // One more character than fits: over by up to three bytes.
            cases.push((c.to_string().repeat(MAX_SEGMENT_BYTES / width + 1), false));
        }
        cases
    }

    #[test]
    fn segments_are_limited_in_bytes() {
        for (segment, fits) in segments_at_the_limit() {
            assert_eq!(segment.len() <= MAX_SEGMENT_BYTES, fits, "{segment}");
            let want = (!fits).then_some(PathRule::SegmentTooLong);
            for path in [
                segment.clone(),
                format!("src/{segment}"),
                format!("{segment}/x.ts"),
            ] {
                assert_eq!(rule(&path), want, "{} bytes: {path}", segment.len());
            }
        }
        let err = validate_path(&format!("src/{}/a.ts", "x".repeat(300))).unwrap_err();
        assert_eq!(
            err.detail,
            format!(
                "segment \"{}\"… is 300 bytes, at most 255 allowed",
                "x".repeat(32)
            )
        );
    }

    #[test]
    fn segment_length_is_checked_after_the_count_and_before_nfc() {
        let long = "b".repeat(MAX_SEGMENT_BYTES + 1);
        let mut many = vec!["a"; MAX_SEGMENTS];
        many.push(&long);
        assert_eq!(rule(&many.join("/")), Some(PathRule::TooManySegments));
        assert_eq!(rule(&format!("../{long}")), Some(PathRule::DotSegment));
        // 86 decomposed "é" are 258 bytes; their NFC form would be 172.
        assert_eq!(rule(&"e\u{301}".repeat(86)), Some(PathRule::SegmentTooLong));
    }

    #[test]
    fn each_rule_is_named() {
        let cases = [
            ("", PathRule::Empty),
            ("a\0b", PathRule::ControlChar),
            ("a\nb", PathRule::ControlChar),
            ("a\u{7f}", PathRule::ControlChar),
            ("a\u{85}", PathRule::ControlChar),
            ("a\\b", PathRule::Backslash),
            ("/etc/passwd", PathRule::Absolute),
            ("src/", PathRule::TrailingSlash),
            ("a//b", PathRule::EmptySegment),
            ("./a", PathRule::DotSegment),
            ("a/../../b", PathRule::DotSegment),
            // Each rule is checked over the whole path before the next one.
            ("..//a", PathRule::EmptySegment),
            ("..", PathRule::DotSegment),
            ("cafe\u{301}.ts", PathRule::NotNfc),
            (".fs-sync", PathRule::Reserved),
            (".fs-sync/manifest.json", PathRule::Reserved),
        ];
        for (p, want) in cases {
            assert_eq!(rule(p), Some(want), "{p:?}");
        }
        assert_eq!(
            rule(&"a".repeat(MAX_PATH_BYTES + 1)),
            Some(PathRule::TooLong)
        );
        // Multi-byte characters count in bytes, not characters.
        assert_eq!(rule(&"é".repeat(513)), Some(PathRule::TooLong));
        assert_eq!(
            rule(&vec!["a"; MAX_SEGMENTS + 1].join("/")),
            Some(PathRule::TooManySegments)
        );
    }

    #[test]
    fn quoting_escapes_only_what_hides_the_text() {
        assert_eq!(Quoted("a\"b\\c\nd é").to_string(), r#""a\"b\\c\u{a}d é""#);
        let err = validate_path("a\u{1}b").unwrap_err();
        assert!(
            err.to_string().starts_with(r#"invalid path "a\u{1}b""#),
            "{err}"
        );
    }

    #[test]
    fn message_names_rule_and_path() {
        let err = validate_path("a/../b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid path \"a/../b\": dot_segment: '..' segments are not allowed"
        );
        let err = validate_path("cafe\u{301}").unwrap_err();
        assert!(err.to_string().contains("not_nfc"), "{err}");
        assert!(err.to_string().contains("café"), "{err}");
    }
}
