//! Streaming snapshot reader: checks every entry against the manifest while reading.

use std::io::{self, BufReader, Read};

use flate2::bufread::DeflateDecoder;

use super::format::{self, EntryHeader};
use super::SnapshotError;
use crate::hash::content_hash;
use crate::manifest::{Manifest, ManifestEntry, MANIFEST_PATH};
use crate::path::validate_path;

/// Limits a reader enforces before and while expanding an archive.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Most uncompressed bytes across all files.
    pub max_total_bytes: u64,
    /// Most files (manifest entry excluded).
    pub max_entries: usize,
    /// Largest manifest entry, uncompressed.
    pub max_manifest_bytes: u64,
    /// Highest uncompressed/compressed ratio for one entry of at least `ratio_min_size` bytes.
    pub max_ratio: u64,
    /// Entries smaller than this are exempt from the ratio check (small files can't hurt).
    pub ratio_min_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_total_bytes: 1 << 30,
            max_entries: 100_000,
            max_manifest_bytes: 64 << 20,
            max_ratio: 100,
            ratio_min_size: 1 << 20,
        }
    }
}

/// Reads a snapshot from `input`, calling `on_file` with each file's verified bytes.
///
/// Each entry is checked before `on_file` sees it: a safe name listed in the manifest, no duplicate,
/// within the limits, and matching the manifest's size and SHA-256. The central directory is checked
/// last (links and directories are only visible there), so what `on_file` wrote is provisional until
/// this returns `Ok`; [`super::extract_snapshot`] writes to a staging folder for that reason.
/// Memory stays bounded by the largest file.
pub fn read_snapshot<R, F>(
    input: R,
    limits: &Limits,
    mut on_file: F,
) -> Result<Manifest, SnapshotError>
where
    R: Read,
    F: FnMut(&ManifestEntry, &[u8]) -> io::Result<()>,
{
    let mut r = Counting {
        inner: BufReader::with_capacity(64 << 10, input),
        offset: 0,
    };
    let mut buf = Vec::new();
    let mut seen: Vec<(EntryHeader, u32)> = Vec::new();
    let mut manifest: Option<Manifest> = None;
    let mut visited: Vec<bool> = Vec::new();
    let mut total: u64 = 0;
    loop {
        let entry_offset = r.offset;
        let sig = r.u32()?;
        match sig {
            format::LOCAL_SIG => {}
            format::CENTRAL_SIG => {
                let manifest = manifest
                    .ok_or_else(|| SnapshotError::Malformed("archive has no entries".into()))?;
                check_central(&mut r, entry_offset, &seen)?;
                if let Some(i) = visited.iter().position(|v| !v) {
                    return Err(SnapshotError::Missing {
                        path: manifest.files[i].path.clone(),
                    });
                }
                return Ok(manifest);
            }
            format::END_SIG if seen.is_empty() => {
                return Err(SnapshotError::Malformed("archive has no entries".into()))
            }
            format::ZIP64_END_SIG => {
                return Err(SnapshotError::Unsupported {
                    name: "archive".into(),
                    feature: "zip64",
                })
            }
            other => {
                return Err(SnapshotError::Malformed(format!(
                    "unexpected signature {other:#010x} at byte {entry_offset}"
                )))
            }
        }
        let header = read_local_header(&mut r)?;
        let name = header.name.clone();

        let Some(manifest) = manifest.as_ref() else {
            if name != MANIFEST_PATH {
                return Err(SnapshotError::ManifestNotFirst { found: name });
            }
            if u64::from(header.size) > limits.max_manifest_bytes {
                return Err(SnapshotError::TooLarge {
                    limit: limits.max_manifest_bytes,
                    actual: header.size.into(),
                });
            }
            read_data(&mut r, &header, &mut buf)?;
            let parsed = Manifest::from_json(&buf)?;
            if parsed.files.len() > limits.max_entries {
                return Err(SnapshotError::TooManyEntries {
                    limit: limits.max_entries,
                    actual: parsed.files.len(),
                });
            }
            if parsed.total_size() > limits.max_total_bytes {
                return Err(SnapshotError::TooLarge {
                    limit: limits.max_total_bytes,
                    actual: parsed.total_size(),
                });
            }
            visited = vec![false; parsed.files.len()];
            manifest = Some(parsed);
            seen.push((header, entry_offset as u32));
            continue;
        };

        if name.ends_with('/') {
            return Err(SnapshotError::DirectoryEntry { name });
        }
        if name == MANIFEST_PATH {
            return Err(SnapshotError::Duplicate { path: name });
        }
        if let Err(e) = validate_path(&name) {
            return Err(SnapshotError::UnsafePath {
                name,
                rule: e.rule,
                detail: e.detail,
            });
        }
        let Ok(index) = manifest
            .files
            .binary_search_by(|e| e.path.as_str().cmp(&name))
        else {
            return Err(SnapshotError::NotInManifest { path: name });
        };
        if std::mem::replace(&mut visited[index], true) {
            return Err(SnapshotError::Duplicate { path: name });
        }
        let expected = &manifest.files[index];
        if u64::from(header.size) != expected.size {
            return Err(SnapshotError::SizeMismatch {
                path: name,
                expected: expected.size,
                actual: header.size.into(),
            });
        }
        total += expected.size;
        if total > limits.max_total_bytes {
            return Err(SnapshotError::TooLarge {
                limit: limits.max_total_bytes,
                actual: total,
            });
        }
        if expected.size >= limits.ratio_min_size {
            let ratio = expected.size / u64::from(header.compressed_size.max(1));
            if ratio > limits.max_ratio {
                return Err(SnapshotError::CompressionRatio {
                    path: name,
                    limit: limits.max_ratio,
                    ratio,
                });
            }
        }
        read_data(&mut r, &header, &mut buf)?;
        let hash = content_hash(&buf);
        if hash != expected.content_hash {
            return Err(SnapshotError::HashMismatch {
                path: name,
                expected: expected.content_hash.clone(),
                actual: hash,
            });
        }
        on_file(expected, &buf)?;
        seen.push((header, entry_offset as u32));
    }
}

fn read_local_header<R: Read>(r: &mut Counting<R>) -> Result<EntryHeader, SnapshotError> {
    let mut h = [0u8; format::LOCAL_HEADER_LEN - 4];
    r.read_exact(&mut h)?;
    let flags = format::get16(&h, 2);
    let method = format::get16(&h, 4);
    let name_len = format::get16(&h, 22) as usize;
    let extra_len = format::get16(&h, 24) as usize;
    let mut raw_name = vec![0u8; name_len];
    r.read_exact(&mut raw_name)?;
    r.skip(extra_len as u64)?;
    let name = String::from_utf8(raw_name).map_err(|e| SnapshotError::NonUtf8Name {
        name: String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })?;
    let unsupported = |feature| SnapshotError::Unsupported {
        name: name.clone(),
        feature,
    };
    if flags & format::FLAG_ENCRYPTED != 0 {
        return Err(unsupported("encryption"));
    }
    if flags & format::FLAG_DATA_DESCRIPTOR != 0 {
        return Err(unsupported("a data descriptor"));
    }
    if method != format::METHOD_STORE && method != format::METHOD_DEFLATE {
        return Err(unsupported(
            "a compression method other than store or deflate",
        ));
    }
    Ok(EntryHeader {
        method,
        flags,
        crc32: format::get32(&h, 10),
        compressed_size: format::get32(&h, 14),
        size: format::get32(&h, 18),
        name,
    })
}

/// Reads and expands one entry's data into `buf`, never past its declared size.
fn read_data<R: Read>(
    r: &mut Counting<R>,
    header: &EntryHeader,
    buf: &mut Vec<u8>,
) -> Result<(), SnapshotError> {
    let declared = u64::from(header.size);
    let compressed = u64::from(header.compressed_size);
    buf.clear();
    buf.reserve(declared as usize);
    let before = r.offset;
    let actual = if header.method == format::METHOD_STORE {
        if compressed != declared {
            return Err(SnapshotError::Malformed(format!(
                "stored entry {:?} declares {compressed} bytes stored but {declared} uncompressed",
                header.name
            )));
        }
        (&mut *r).take(compressed).read_to_end(buf)? as u64
    } else {
        let limited = BufReader::new((&mut *r).take(compressed));
        let mut decoder = DeflateDecoder::new(limited);
        // One byte past the declared size is enough to catch a header that lies.
        let n = (&mut decoder)
            .take(declared + 1)
            .read_to_end(buf)
            .map_err(|e| {
                SnapshotError::Malformed(format!("{:?} does not inflate: {e}", header.name))
            })? as u64;
        io::copy(&mut decoder.into_inner(), &mut io::sink())?;
        n
    };
    if r.offset - before != compressed {
        return Err(SnapshotError::Malformed(format!(
            "{:?} is truncated: {} of {compressed} compressed bytes present",
            header.name,
            r.offset - before
        )));
    }
    if actual != declared {
        return Err(SnapshotError::SizeMismatch {
            path: header.name.clone(),
            expected: declared,
            actual,
        });
    }
    if crc32fast::hash(buf) != header.crc32 {
        return Err(SnapshotError::CrcMismatch {
            path: header.name.clone(),
        });
    }
    Ok(())
}

/// Checks that the central directory lists exactly the entries read, as regular files.
fn check_central<R: Read>(
    r: &mut Counting<R>,
    central_offset: u64,
    seen: &[(EntryHeader, u32)],
) -> Result<(), SnapshotError> {
    let mismatch = |what: String| Err(SnapshotError::CentralMismatch(what));
    let mut sig = format::CENTRAL_SIG;
    let mut count = 0usize;
    while sig == format::CENTRAL_SIG {
        let mut h = [0u8; format::CENTRAL_HEADER_LEN - 4];
        r.read_exact(&mut h)?;
        let made_by_host = (format::get16(&h, 0) >> 8) as u8;
        let name_len = format::get16(&h, 24) as usize;
        let extra_len = format::get16(&h, 26) as u64;
        let comment_len = format::get16(&h, 28) as u64;
        let external = format::get32(&h, 34);
        let local_offset = format::get32(&h, 38);
        let mut raw_name = vec![0u8; name_len];
        r.read_exact(&mut raw_name)?;
        r.skip(extra_len + comment_len)?;
        let name = String::from_utf8_lossy(&raw_name).into_owned();
        let Some((local, offset)) = seen.get(count) else {
            return mismatch(format!("{name:?} has no local entry"));
        };
        if made_by_host == format::HOST_UNIX {
            match (external >> 16) & format::S_IFMT {
                format::S_IFLNK => return Err(SnapshotError::Symlink { name }),
                format::S_IFDIR => return Err(SnapshotError::DirectoryEntry { name }),
                _ => {}
            }
        }
        if external & 0x10 != 0 {
            return Err(SnapshotError::DirectoryEntry { name });
        }
        let same = local.name == name
            && *offset == local_offset
            && local.method == format::get16(&h, 6)
            && local.crc32 == format::get32(&h, 12)
            && local.compressed_size == format::get32(&h, 16)
            && local.size == format::get32(&h, 20);
        if !same {
            return mismatch(format!(
                "record {count} ({name:?}) differs from local entry {:?}",
                local.name
            ));
        }
        count += 1;
        sig = r.u32()?;
    }
    if count != seen.len() {
        return mismatch(format!("{count} records for {} local entries", seen.len()));
    }
    if sig == format::ZIP64_END_SIG {
        return Err(SnapshotError::Unsupported {
            name: "archive".into(),
            feature: "zip64",
        });
    }
    if sig != format::END_SIG {
        return Err(SnapshotError::Malformed(format!(
            "expected end of central directory, found signature {sig:#010x}"
        )));
    }
    let central_size = r.offset - 4 - central_offset;
    let mut end = [0u8; format::END_LEN - 4];
    r.read_exact(&mut end)?;
    let total = format::get16(&end, 6) as usize;
    let size = u64::from(format::get32(&end, 8));
    let offset = u64::from(format::get32(&end, 12));
    if total != count || size != central_size || offset != central_offset {
        return mismatch(format!(
            "end record says {total} entries, {size} bytes at {offset}; found {count}, {central_size} at {central_offset}"
        ));
    }
    Ok(())
}

/// A reader that knows its position, so offsets in the central directory can be checked.
struct Counting<R> {
    inner: R,
    offset: u64,
}

impl<R: Read> Counting<R> {
    fn u32(&mut self) -> Result<u32, SnapshotError> {
        let mut b = [0u8; 4];
        self.read_exact(&mut b).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                SnapshotError::Malformed(format!("archive ends early at byte {}", self.offset))
            }
            _ => SnapshotError::Io(e),
        })?;
        Ok(u32::from_le_bytes(b))
    }

    fn skip(&mut self, n: u64) -> io::Result<()> {
        let copied = io::copy(&mut self.take(n), &mut io::sink())?;
        if copied != n {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.offset += n as u64;
        Ok(n)
    }
}
