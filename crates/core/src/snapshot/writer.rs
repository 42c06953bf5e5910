//! Deterministic snapshot writer.

use std::io::Write;

use flate2::write::DeflateEncoder;
use flate2::Compression;

use super::format::{self, EntryHeader, FLAG_UTF8, METHOD_DEFLATE, METHOD_STORE};
use super::SnapshotError;
use crate::filetype::is_precompressed;
use crate::hash::content_hash;
use crate::manifest::{Manifest, MANIFEST_PATH};

/// Files smaller than this are stored: deflate cannot win enough to pay for itself.
const STORE_BELOW: usize = 64;

/// How a [`SnapshotWriter`] compresses.
#[derive(Clone, Copy, Debug)]
pub struct WriteOptions {
    /// Deflate level 0–9 for compressible files (default 6, zlib's default).
    pub level: u32,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions { level: 6 }
    }
}

/// What a finished snapshot looks like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotSummary {
    /// [`Manifest::snapshot_id`] of the manifest written first.
    pub snapshot_id: String,
    /// Archive size in bytes.
    pub bytes: u64,
    /// Number of project files (the manifest entry excluded).
    pub files: usize,
}

/// Streams a snapshot zip to any [`Write`].
///
/// The manifest goes first; files follow in manifest order (sorted by path), each given whole, so
/// memory stays bounded by the largest file rather than the archive. Every entry carries the same
/// fixed timestamp and mode, so one project state always produces the same bytes.
///
/// ```
/// use fs_sync_core::{content_hash, Manifest, ManifestEntry, SnapshotWriter, WriteOptions};
///
/// let body = b"export default 1;\n";
/// let manifest = Manifest::new("00000000-0000-0000-0000-000000000001", 5, vec![ManifestEntry {
///     content_hash: content_hash(body),
///     file_type: "typescript".into(),
///     path: "src/a.ts".into(),
///     size: body.len() as u64,
///     version: 2,
/// }])?;
/// let mut writer = SnapshotWriter::new(Vec::new(), manifest, WriteOptions::default())?;
/// writer.add_file("src/a.ts", body)?;
/// let (zip, summary) = writer.finish()?;
/// assert_eq!(summary.files, 1);
/// assert_eq!(zip.len() as u64, summary.bytes);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SnapshotWriter<W: Write> {
    out: W,
    offset: u64,
    manifest: Manifest,
    next: usize,
    central: Vec<u8>,
    entries: usize,
    level: Compression,
    scratch: Vec<u8>,
    header: Vec<u8>,
}

impl<W: Write> SnapshotWriter<W> {
    /// Starts an archive for `manifest` and writes the manifest entry.
    pub fn new(out: W, manifest: Manifest, options: WriteOptions) -> Result<Self, SnapshotError> {
        manifest.validate()?;
        if manifest.files.len() + 1 > format::MAX_ENTRIES {
            return Err(SnapshotError::TooManyEntries {
                limit: format::MAX_ENTRIES - 1,
                actual: manifest.files.len(),
            });
        }
        let mut writer = SnapshotWriter {
            out,
            offset: 0,
            next: 0,
            central: Vec::new(),
            entries: 0,
            level: Compression::new(options.level.min(9)),
            scratch: Vec::new(),
            header: Vec::new(),
            manifest,
        };
        let json = writer.manifest.to_canonical_json();
        writer.write_entry(MANIFEST_PATH, &json, true)?;
        Ok(writer)
    }

    /// Adds the next file. Files must come in manifest order and match its size and hash.
    pub fn add_file(&mut self, path: &str, content: &[u8]) -> Result<(), SnapshotError> {
        let Some(expected) = self.manifest.files.get(self.next) else {
            return Err(SnapshotError::NotInManifest {
                path: path.to_owned(),
            });
        };
        if expected.path != path {
            return Err(SnapshotError::OutOfOrder {
                expected: expected.path.clone(),
                actual: path.to_owned(),
            });
        }
        if expected.size != content.len() as u64 {
            return Err(SnapshotError::SizeMismatch {
                path: path.to_owned(),
                expected: expected.size,
                actual: content.len() as u64,
            });
        }
        let hash = content_hash(content);
        if hash != expected.content_hash {
            return Err(SnapshotError::HashMismatch {
                path: path.to_owned(),
                expected: expected.content_hash.clone(),
                actual: hash,
            });
        }
        self.next += 1;
        let compress = content.len() >= STORE_BELOW && !is_precompressed(path);
        self.write_entry(path, content, compress)
    }

    /// The manifest this archive is being written for.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Writes the central directory and returns the sink with a summary.
    ///
    /// Fails if a file of the manifest was never added.
    pub fn finish(mut self) -> Result<(W, SnapshotSummary), SnapshotError> {
        if let Some(missing) = self.manifest.files.get(self.next) {
            return Err(SnapshotError::Missing {
                path: missing.path.clone(),
            });
        }
        let central_offset = self.checked_u32(self.offset)?;
        let central_size = self.checked_u32(self.central.len() as u64)?;
        let mut end = Vec::with_capacity(format::END_LEN);
        format::encode_end(self.entries as u16, central_size, central_offset, &mut end);
        self.out.write_all(&self.central)?;
        self.out.write_all(&end)?;
        self.out.flush()?;
        let bytes = self.offset + self.central.len() as u64 + end.len() as u64;
        let summary = SnapshotSummary {
            snapshot_id: self.manifest.snapshot_id(),
            bytes,
            files: self.manifest.files.len(),
        };
        Ok((self.out, summary))
    }

    fn write_entry(
        &mut self,
        name: &str,
        content: &[u8],
        compress: bool,
    ) -> Result<(), SnapshotError> {
        let mut method = METHOD_STORE;
        if compress {
            self.scratch.clear();
            let mut enc = DeflateEncoder::new(std::mem::take(&mut self.scratch), self.level);
            enc.write_all(content)?;
            self.scratch = enc.finish()?;
            if self.scratch.len() < content.len() {
                method = METHOD_DEFLATE;
            }
        }
        let data: &[u8] = if method == METHOD_DEFLATE {
            &self.scratch
        } else {
            content
        };
        let header = EntryHeader {
            name: name.to_owned(),
            method,
            flags: if name.is_ascii() { 0 } else { FLAG_UTF8 },
            crc32: crc32fast::hash(content),
            compressed_size: self.checked_u32(data.len() as u64)?,
            size: self.checked_u32(content.len() as u64)?,
        };
        let local_offset = self.checked_u32(self.offset)?;
        header.encode_central(local_offset, &mut self.central);
        self.header.clear();
        header.encode_local(&mut self.header);
        self.out.write_all(&self.header)?;
        self.out.write_all(data)?;
        self.offset += (self.header.len() + data.len()) as u64;
        self.entries += 1;
        Ok(())
    }

    fn checked_u32(&self, v: u64) -> Result<u32, SnapshotError> {
        u32::try_from(v).map_err(|_| SnapshotError::TooLarge {
            limit: u64::from(u32::MAX),
            actual: v,
        })
    }
}
