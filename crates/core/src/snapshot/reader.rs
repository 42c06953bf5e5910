//! Streaming snapshot reader: checks every entry against the manifest while reading.
//!
//! Memory stays bounded whatever the archive holds: file data reaches the caller as a stream, so
//! nothing buffers a whole file, and an entry is never expanded past the size its manifest entry
//! declares.

use std::io::{self, BufRead, BufReader, Read};

use flate2::{Decompress, FlushDecompress, Status};

use super::format::{self, EntryHeader};
use super::SnapshotError;
use crate::hash::ContentHasher;
use crate::manifest::{Manifest, ManifestEntry, MANIFEST_PATH};
use crate::path::validate_path;
use crate::{MAX_PROJECT_BYTES, MAX_PROJECT_FILES};

/// Limits a reader enforces before expanding an archive.
///
/// Both totals are checked against what the manifest declares before the first file byte is
/// handed out, and every entry is held to its declared size as it inflates, so an accepted
/// archive never produces more than it declared. The defaults are the project caps the database
/// enforces ([`MAX_PROJECT_BYTES`], [`MAX_PROJECT_FILES`]): whatever the database accepts, a
/// reader with default limits extracts, however well it compresses.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Most uncompressed bytes across all files.
    pub max_total_bytes: u64,
    /// Most files (manifest entry excluded).
    pub max_entries: usize,
    /// Largest manifest entry, uncompressed.
    pub max_manifest_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_total_bytes: MAX_PROJECT_BYTES,
            max_entries: MAX_PROJECT_FILES,
            max_manifest_bytes: 64 << 20,
        }
    }
}

/// Reads a snapshot from `input`, calling `on_file` with each file's data as a stream.
///
/// Before `on_file` sees an entry, its name is checked (a safe path listed in the manifest, no
/// duplicate) and its header must declare the manifest's size. The stream yields the entry's
/// expanded bytes and fails (with an error that [`read_snapshot`] reports as the
/// [`SnapshotError`] at fault) the moment the data exceeds its declared size, and at its end
/// unless the size, CRC-32 and SHA-256 all match. Whatever `on_file` leaves unread is read and
/// verified after it returns. The central directory is checked last (links and directories are
/// only visible there), so what `on_file` wrote is provisional until this returns `Ok`;
/// [`super::extract_snapshot`] writes to a staging folder for that reason.
///
/// `accept` sees the manifest before any file: an error from it stops the read.
pub fn read_snapshot<R, F>(
    input: R,
    limits: &Limits,
    accept: impl FnOnce(&Manifest) -> Result<(), SnapshotError>,
    mut on_file: F,
) -> Result<Manifest, SnapshotError>
where
    R: Read,
    F: FnMut(&ManifestEntry, &mut dyn Read) -> io::Result<()>,
{
    let mut r = Counting {
        inner: BufReader::with_capacity(64 << 10, input),
        offset: 0,
        at_eof: false,
    };
    let mut seen: Vec<(EntryHeader, u32)> = Vec::new();
    let mut manifest: Option<Manifest> = None;
    let mut accept = Some(accept);
    let mut visited: Vec<bool> = Vec::new();
    // One inflate state for every entry, reset between them: allocating and clearing its window
    // per entry costs more than inflating a small file.
    let mut inflater = Decompress::new(false);
    loop {
        let entry_offset = r.offset;
        let sig = r.u32("the next entry's signature")?;
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
            let mut buf = Vec::with_capacity(header.size as usize);
            let mut data = EntryData::open(&mut r, &mut inflater, &header, None)?;
            data.read_to_end(&mut buf).map_err(unwrap_io)?;
            data.finish().map_err(unwrap_io)?;
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
            if let Some(accept) = accept.take() {
                accept(&parsed)?;
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
        // A name the manifest lists passed the path rules with the manifest; any other is refused,
        // for breaking them if it does.
        let Ok(index) = manifest
            .files
            .binary_search_by(|e| e.path.as_str().cmp(&name))
        else {
            if let Err(e) = validate_path(&name) {
                return Err(SnapshotError::UnsafePath {
                    name,
                    rule: e.rule,
                    detail: e.detail,
                });
            }
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
        let mut data =
            EntryData::open(&mut r, &mut inflater, &header, Some(&expected.content_hash))?;
        if let Err(e) = on_file(expected, &mut data) {
            return Err(match unwrap_io(e) {
                SnapshotError::Io(source) => SnapshotError::Write { path: name, source },
                verified => verified,
            });
        }
        data.finish().map_err(unwrap_io)?;
        seen.push((header, entry_offset as u32));
    }
}

/// Recovers the [`SnapshotError`] an [`EntryData`] stream carried through `io::Error`.
fn unwrap_io(e: io::Error) -> SnapshotError {
    e.downcast::<SnapshotError>()
        .unwrap_or_else(SnapshotError::Io)
}

fn read_local_header<R: Read>(r: &mut Counting<R>) -> Result<EntryHeader, SnapshotError> {
    let mut h = [0u8; format::LOCAL_HEADER_LEN - 4];
    r.exact(&mut h, "a local file header")?;
    let flags = format::get16(&h, 2);
    let method = format::get16(&h, 4);
    let name_len = format::get16(&h, 22) as usize;
    let extra_len = format::get16(&h, 24) as usize;
    let mut raw_name = vec![0u8; name_len];
    r.exact(&mut raw_name, "an entry name")?;
    r.skip(extra_len as u64, "an extra field")?;
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

/// One entry's expanded data, verified as it streams.
///
/// Reads fail with a [`SnapshotError`] (inside the `io::Error`) as soon as more than the declared
/// size comes out, and at the end unless size, CRC-32 and (for files) SHA-256 match.
struct EntryData<'a, R: Read> {
    source: Source<'a, R>,
    name: &'a str,
    declared: u64,
    compressed: u64,
    start: u64,
    produced: u64,
    crc: crc32fast::Hasher,
    expected_crc: u32,
    hasher: Option<(ContentHasher, &'a str)>,
    /// The end was reached and verified.
    done: bool,
}

enum Source<'a, R: Read> {
    Stored(io::Take<&'a mut Counting<R>>),
    Deflated(Inflating<'a, R>),
}

/// Raw deflate over an entry's compressed bytes, with the reader's shared inflate state.
struct Inflating<'a, R: Read> {
    input: io::Take<&'a mut Counting<R>>,
    state: &'a mut Decompress,
}

impl<R: Read> Read for Inflating<'_, R> {
    /// As flate2's own `bufread::DeflateDecoder` reads, with the same errors.
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        loop {
            let input = self.input.fill_buf()?;
            let eof = input.is_empty();
            let (before_in, before_out) = (self.state.total_in(), self.state.total_out());
            let flush = if eof {
                FlushDecompress::Finish
            } else {
                FlushDecompress::None
            };
            let status = self.state.decompress(input, dst, flush);
            let read = (self.state.total_out() - before_out) as usize;
            let consumed = (self.state.total_in() - before_in) as usize;
            self.input.consume(consumed);
            match status {
                // Nothing came out but more input is there: 0 would read as the end.
                Ok(Status::Ok | Status::BufError) if read == 0 && !eof && !dst.is_empty() => {}
                Ok(Status::Ok | Status::BufError) if read == 0 && eof && !dst.is_empty() => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "incomplete deflate stream",
                    ))
                }
                Ok(_) => return Ok(read),
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "corrupt deflate stream",
                    ))
                }
            }
        }
    }
}

impl<'a, R: Read> EntryData<'a, R> {
    fn open(
        r: &'a mut Counting<R>,
        inflater: &'a mut Decompress,
        header: &'a EntryHeader,
        content_hash: Option<&'a str>,
    ) -> Result<Self, SnapshotError> {
        let declared = u64::from(header.size);
        let compressed = u64::from(header.compressed_size);
        let start = r.offset;
        let limited = r.take(compressed);
        let source = if header.method == format::METHOD_STORE {
            if compressed != declared {
                return Err(SnapshotError::Malformed(format!(
                    "stored entry {:?} declares {compressed} bytes stored but {declared} uncompressed",
                    header.name
                )));
            }
            Source::Stored(limited)
        } else {
            inflater.reset(false);
            Source::Deflated(Inflating {
                input: limited,
                state: inflater,
            })
        };
        Ok(EntryData {
            source,
            name: &header.name,
            declared,
            compressed,
            start,
            produced: 0,
            crc: crc32fast::Hasher::new(),
            expected_crc: header.crc32,
            hasher: content_hash.map(|h| (ContentHasher::new(), h)),
            done: false,
        })
    }

    fn fail(&self, e: SnapshotError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    fn counting(&self) -> &Counting<R> {
        match &self.source {
            Source::Stored(t) => t.get_ref(),
            Source::Deflated(d) => d.input.get_ref(),
        }
    }

    fn truncated(&self) -> SnapshotError {
        let present = self.counting().offset - self.start;
        SnapshotError::Malformed(format!(
            "{:?} is truncated: {present} of {} compressed bytes present",
            self.name, self.compressed
        ))
    }

    /// Checks the finished entry: every compressed byte used, size, CRC-32 and hash as declared.
    fn verify_end(&mut self) -> Result<(), SnapshotError> {
        if let Source::Deflated(d) = &mut self.source {
            // Trailing bytes after the deflate stream still belong to this entry.
            io::copy(&mut d.input, &mut io::sink())?;
        }
        if self.counting().offset - self.start != self.compressed {
            return Err(self.truncated());
        }
        if self.produced != self.declared {
            return Err(SnapshotError::SizeMismatch {
                path: self.name.to_owned(),
                expected: self.declared,
                actual: self.produced,
            });
        }
        if std::mem::take(&mut self.crc).finalize() != self.expected_crc {
            return Err(SnapshotError::CrcMismatch {
                path: self.name.to_owned(),
            });
        }
        if let Some((hasher, expected)) = self.hasher.take() {
            let actual = hasher.finish();
            if actual != expected {
                return Err(SnapshotError::HashMismatch {
                    path: self.name.to_owned(),
                    expected: expected.to_owned(),
                    actual,
                });
            }
        }
        Ok(())
    }

    /// Reads what the caller left unread, then verifies the end.
    fn finish(&mut self) -> io::Result<()> {
        io::copy(self, &mut io::sink())?;
        Ok(())
    }
}

impl<R: Read> Read for EntryData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        // One byte past the declared size is enough to catch a header that lies, and it is
        // never handed out.
        let room = (self.declared - self.produced).saturating_add(1);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let read = match &mut self.source {
            Source::Stored(t) => t.read(&mut buf[..want]),
            Source::Deflated(d) => d.read(&mut buf[..want]),
        };
        let n = match read {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => {
                self.done = true;
                let failure = if self.counting().at_eof {
                    self.truncated()
                } else if e.get_ref().is_some() && matches!(self.source, Source::Deflated(_)) {
                    SnapshotError::Malformed(format!("{:?} does not inflate: {e}", self.name))
                } else {
                    SnapshotError::Io(e)
                };
                return Err(self.fail(failure));
            }
        };
        if n == 0 {
            self.done = true;
            return self.verify_end().map(|()| 0).map_err(|e| self.fail(e));
        }
        self.produced += n as u64;
        if self.produced > self.declared {
            self.done = true;
            return Err(self.fail(SnapshotError::SizeMismatch {
                path: self.name.to_owned(),
                expected: self.declared,
                actual: self.produced,
            }));
        }
        self.crc.update(&buf[..n]);
        if let Some((hasher, _)) = &mut self.hasher {
            hasher.update(&buf[..n]);
        }
        Ok(n)
    }
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
        r.exact(&mut h, "a central directory record")?;
        let made_by_host = (format::get16(&h, 0) >> 8) as u8;
        let name_len = format::get16(&h, 24) as usize;
        let extra_len = format::get16(&h, 26) as u64;
        let comment_len = format::get16(&h, 28) as u64;
        let external = format::get32(&h, 34);
        let local_offset = format::get32(&h, 38);
        let mut raw_name = vec![0u8; name_len];
        r.exact(&mut raw_name, "a central directory name")?;
        r.skip(extra_len + comment_len, "a central directory record")?;
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
        sig = r.u32("the central directory")?;
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
    r.exact(&mut end, "the end of central directory record")?;
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

/// A buffered reader that knows its position (offsets in the central directory are checked) and
/// whether its input ended (a truncated archive is named as such).
struct Counting<R> {
    inner: BufReader<R>,
    offset: u64,
    at_eof: bool,
}

impl<R: Read> Counting<R> {
    fn ends_early(&self, what: &str) -> SnapshotError {
        SnapshotError::Malformed(format!(
            "archive ends early at byte {}, inside {what}",
            self.offset
        ))
    }

    /// Fills `buf`; an early end names `what` was being read.
    fn exact(&mut self, buf: &mut [u8], what: &str) -> Result<(), SnapshotError> {
        self.read_exact(buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => self.ends_early(what),
            _ => SnapshotError::Io(e),
        })
    }

    fn u32(&mut self, what: &str) -> Result<u32, SnapshotError> {
        let mut b = [0u8; 4];
        self.exact(&mut b, what)?;
        Ok(u32::from_le_bytes(b))
    }

    fn skip(&mut self, n: u64, what: &str) -> Result<(), SnapshotError> {
        let copied = io::copy(&mut self.take(n), &mut io::sink())?;
        if copied != n {
            return Err(self.ends_early(what));
        }
        Ok(())
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.offset += n as u64;
        self.at_eof |= n == 0 && !buf.is_empty();
        Ok(n)
    }
}

impl<R: Read> BufRead for Counting<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let buf = self.inner.fill_buf()?;
        self.at_eof |= buf.is_empty();
        Ok(buf)
    }

    fn consume(&mut self, n: usize) {
        self.inner.consume(n);
        self.offset += n as u64;
    }
}
