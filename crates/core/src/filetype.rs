//! File type inference from the extension, mirrored by `fsync.infer_file_type` in SQL.

use std::fmt;

/// What kind of content a project file holds, as stored in `project_files.file_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileType {
    /// `.ts .tsx .mts .cts`
    TypeScript,
    /// `.js .jsx .mjs .cjs`
    JavaScript,
    /// `.json .jsonc`
    Json,
    /// `.md .mdx .markdown`
    Markdown,
    /// `.sql`
    Sql,
    /// `.css .scss .sass .less`
    Css,
    /// `.html .htm`
    Html,
    /// `.yml .yaml`
    Yaml,
    /// `.xml .svg`
    Xml,
    /// Images, fonts, archives, media and other non-text formats; their content lives in Storage.
    Binary,
    /// Anything else.
    Text,
}

const TABLE: &[(FileType, &[&str])] = &[
    (FileType::TypeScript, &["ts", "tsx", "mts", "cts"]),
    (FileType::JavaScript, &["js", "jsx", "mjs", "cjs"]),
    (FileType::Json, &["json", "jsonc"]),
    (FileType::Markdown, &["md", "mdx", "markdown"]),
    (FileType::Sql, &["sql"]),
    (FileType::Css, &["css", "scss", "sass", "less"]),
    (FileType::Html, &["html", "htm"]),
    (FileType::Yaml, &["yml", "yaml"]),
    (FileType::Xml, &["xml", "svg"]),
    (
        FileType::Binary,
        &[
            "png", "jpg", "jpeg", "gif", "webp", "avif", "ico", "bmp", "tif", "tiff", "heic",
            "pdf", "zip", "gz", "tgz", "bz2", "xz", "7z", "rar", "tar", "woff", "woff2", "ttf",
            "otf", "eot", "mp3", "mp4", "m4a", "wav", "ogg", "webm", "mov", "avi", "wasm", "jar",
            "so", "dylib", "dll", "exe", "bin", "db", "sqlite",
        ],
    ),
];

/// Extensions whose content is already compressed, so a snapshot stores rather than deflates them.
const COMPRESSED: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "webp", "avif", "heic", "zip", "gz", "tgz", "bz2", "xz", "7z",
    "rar", "woff", "woff2", "mp3", "mp4", "m4a", "ogg", "webm", "mov", "avi", "jar",
];

impl FileType {
    /// Every file type, in a fixed order.
    pub const ALL: [FileType; 11] = [
        FileType::TypeScript,
        FileType::JavaScript,
        FileType::Json,
        FileType::Markdown,
        FileType::Sql,
        FileType::Css,
        FileType::Html,
        FileType::Yaml,
        FileType::Xml,
        FileType::Binary,
        FileType::Text,
    ];

    /// The name stored in the database and sent in events.
    pub fn as_str(self) -> &'static str {
        match self {
            FileType::TypeScript => "typescript",
            FileType::JavaScript => "javascript",
            FileType::Json => "json",
            FileType::Markdown => "markdown",
            FileType::Sql => "sql",
            FileType::Css => "css",
            FileType::Html => "html",
            FileType::Yaml => "yaml",
            FileType::Xml => "xml",
            FileType::Binary => "binary",
            FileType::Text => "text",
        }
    }

    /// The extensions that map to this type (empty for [`FileType::Text`], the fallback).
    pub fn extensions(self) -> &'static [&'static str] {
        TABLE
            .iter()
            .find(|(t, _)| *t == self)
            .map_or(&[], |(_, exts)| exts)
    }
}

impl fmt::Display for FileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The lowercased extension of the last path segment, if it has one.
///
/// A leading dot alone (`.env`, `.gitignore`) names a hidden file, not an extension.
pub fn extension(path: &str) -> Option<String> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let dot = name.rfind('.')?;
    if dot == 0 || dot + 1 == name.len() {
        return None;
    }
    Some(name[dot + 1..].to_ascii_lowercase())
}

/// Infers the file type of `path` from its extension.
pub fn infer_file_type(path: &str) -> FileType {
    let Some(ext) = extension(path) else {
        return FileType::Text;
    };
    TABLE
        .iter()
        .find(|(_, exts)| exts.contains(&ext.as_str()))
        .map_or(FileType::Text, |(t, _)| *t)
}

/// True when `path`'s extension names an already-compressed format.
pub fn is_precompressed(path: &str) -> bool {
    extension(path).is_some_and(|e| COMPRESSED.contains(&e.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn infers_by_extension() {
        let cases = [
            ("src/App.tsx", FileType::TypeScript),
            ("index.JS", FileType::JavaScript),
            ("package.json", FileType::Json),
            ("README.md", FileType::Markdown),
            ("db/001.sql", FileType::Sql),
            ("styles/app.scss", FileType::Css),
            ("public/index.html", FileType::Html),
            ("app.yaml", FileType::Yaml),
            ("icon.svg", FileType::Xml),
            ("assets/logo.PNG", FileType::Binary),
            ("fonts/a.woff2", FileType::Binary),
            ("Dockerfile", FileType::Text),
            (".env", FileType::Text),
            (".eslintrc.json", FileType::Json),
            ("notes.", FileType::Text),
            ("a.b/c", FileType::Text),
            ("LICENSE.txt", FileType::Text),
        ];
        for (p, want) in cases {
            assert_eq!(infer_file_type(p), want, "{p}");
        }
    }

    #[test]
    fn every_extension_maps_back_to_its_type() {
        for t in FileType::ALL {
            for ext in t.extensions() {
                assert_eq!(infer_file_type(&format!("x.{ext}")), t, "{ext}");
            }
        }
    }

    #[test]
    fn precompressed_formats_are_binary() {
        for ext in COMPRESSED {
            assert_eq!(
                infer_file_type(&format!("x.{ext}")),
                FileType::Binary,
                "{ext}"
            );
        }
        assert!(is_precompressed("a/b.PNG"));
        assert!(!is_precompressed("a/b.ts"));
    }
}
