//! Deterministic snapshot writer.

use std::io::{self, Write};

use flate2::write::DeflateEncoder;
use flate2::Compression;

use super::format::{self, EntryHeader, FLAG_UTF8, METHOD_DEFLATE, METHOD_STORE};
use super::SnapshotError;
use crate::filetype::is_precompressed;
use crate::hash::{content_digest, ContentHasher};
use crate::manifest::{Manifest, ManifestEntry, MANIFEST_PATH};

/// Files smaller than this are stored: deflate cannot win enough to pay for itself.
const STORE_BELOW: u64 = 64;
/// Deflate is fed blocks of this size counted from a file's start, however the bytes arrive:
/// zlib's output depends on how its input is split, and one state must give one archive.
const BLOCK: usize = 64 << 10;

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
/// The manifest goes first; files follow in manifest order (sorted by path), each given whole
/// ([`add_file`](Self::add_file)) or, when too large to hold, in pieces over two passes
/// ([`begin_file`](Self::begin_file)). Every entry carries the same fixed timestamp and mode, so one
/// project state always produces the same bytes, whichever way its files were given.
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
    /// The file being given in pieces, between `begin_file` and `end_file`.
    piecewise: Option<Piecewise>,
    /// Hashed from the manifest entry as it is written, rather than serialized again at the end.
    snapshot_id: String,
}

/// A file given in pieces. Its header precedes its data and holds the data's CRC-32 and
/// compressed size, so the bytes come twice: measured first, then written.
enum Piecewise {
    Measuring {
        seen: Seen,
        /// Counts the deflated size; `None` when the file is stored whatever deflate would do.
        deflate: Option<Blocks<ByteCount>>,
    },
    Writing {
        seen: Seen,
        /// The header written for the first pass; the second must produce exactly its data.
        header: EntryHeader,
        local_offset: u32,
        deflate: Option<Blocks<Vec<u8>>>,
        written: u64,
        /// The data came out longer than measured (the bytes changed between the passes).
        overflow: bool,
    },
}

/// Size, CRC-32 and SHA-256 of the bytes of one pass.
#[derive(Default)]
struct Seen {
    size: u64,
    crc: crc32fast::Hasher,
    sha: ContentHasher,
}

impl Seen {
    fn add(&mut self, piece: &[u8]) {
        self.size += piece.len() as u64;
        self.crc.update(piece);
        self.sha.update(piece);
    }

    /// Adds `piece`, refusing it when the bytes so far exceed the `expected` size.
    fn update(&mut self, path: &str, expected: u64, piece: &[u8]) -> Result<(), SnapshotError> {
        self.add(piece);
        if self.size > expected {
            return Err(SnapshotError::SizeMismatch {
                path: path.to_owned(),
                expected,
                actual: self.size,
            });
        }
        Ok(())
    }

    /// The CRC-32, once size and SHA-256 are checked against `expected`.
    fn verify(self, expected: &ManifestEntry) -> Result<u32, SnapshotError> {
        if self.size != expected.size {
            return Err(SnapshotError::SizeMismatch {
                path: expected.path.clone(),
                expected: expected.size,
                actual: self.size,
            });
        }
        let hash = self.sha.finish();
        if hash != expected.content_hash {
            return Err(SnapshotError::HashMismatch {
                path: expected.path.clone(),
                expected: expected.content_hash.clone(),
                actual: hash,
            });
        }
        Ok(self.crc.finalize())
    }
}

/// A deflate stream fed in [`BLOCK`]s whatever the pieces its input arrives in.
struct Blocks<W: Write> {
    enc: DeflateEncoder<W>,
    /// The start of the next block, shorter than [`BLOCK`].
    pending: Vec<u8>,
}

impl<W: Write> Blocks<W> {
    fn new(out: W, level: Compression) -> Self {
        Blocks {
            enc: DeflateEncoder::new(out, level),
            pending: Vec::new(),
        }
    }

    fn feed(&mut self, mut piece: &[u8]) -> io::Result<()> {
        if !self.pending.is_empty() {
            let take = (BLOCK - self.pending.len()).min(piece.len());
            self.pending.extend_from_slice(&piece[..take]);
            piece = &piece[take..];
            if self.pending.len() < BLOCK {
                return Ok(());
            }
            self.enc.write_all(&self.pending)?;
            self.pending.clear();
        }
        let mut blocks = piece.chunks_exact(BLOCK);
        for block in &mut blocks {
            self.enc.write_all(block)?;
        }
        self.pending.extend_from_slice(blocks.remainder());
        Ok(())
    }

    fn finish(mut self) -> io::Result<W> {
        self.enc.write_all(&self.pending)?;
        self.enc.finish()
    }
}

/// A [`Write`] that hands every piece to a closure.
struct Pieces<F>(F);

impl<F: FnMut(&[u8]) -> io::Result<()>> Write for Pieces<F> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        (self.0)(data)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A [`Write`] that only counts.
#[derive(Default)]
struct ByteCount(u64);

impl Write for ByteCount {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0 += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Whether a file of `size` bytes at `path` is offered to deflate (else it is stored).
fn deflate_candidate(path: &str, size: u64) -> bool {
    size >= STORE_BELOW && !is_precompressed(path)
}

fn entry_header(
    name: &str,
    method: u16,
    crc32: u32,
    data_len: u64,
    size: u64,
) -> Result<EntryHeader, SnapshotError> {
    Ok(EntryHeader {
        name: name.to_owned(),
        method,
        flags: if name.is_ascii() { 0 } else { FLAG_UTF8 },
        crc32,
        compressed_size: checked_u32(data_len)?,
        size: checked_u32(size)?,
    })
}

fn checked_u32(v: u64) -> Result<u32, SnapshotError> {
    u32::try_from(v).map_err(|_| SnapshotError::TooLarge {
        limit: u64::from(u32::MAX),
        actual: v,
    })
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
        // The central directory's exact size, end record included: it grows with every entry, and
        // growing by doubling would hold up to twice its size (megabytes for a large project).
        let central = manifest
            .files
            .iter()
            .map(|f| f.path.len())
            .chain([MANIFEST_PATH.len()])
            .map(|name| format::CENTRAL_HEADER_LEN + name)
            .sum::<usize>()
            + format::END_LEN;
        let mut writer = SnapshotWriter {
            out,
            offset: 0,
            next: 0,
            central: Vec::with_capacity(central),
            entries: 0,
            level: Compression::new(options.level.min(9)),
            scratch: Vec::new(),
            header: Vec::new(),
            manifest,
            piecewise: None,
            snapshot_id: String::new(),
        };
        writer.write_manifest()?;
        Ok(writer)
    }

    /// Writes the manifest entry, serializing the manifest twice (measured, then written) rather
    /// than holding its canonical JSON: for a large project that is megabytes. The bytes are those
    /// [`add_file`](Self::add_file) would write for [`Manifest::to_canonical_json`].
    fn write_manifest(&mut self) -> Result<(), SnapshotError> {
        let mut seen = Seen::default();
        let mut deflate = Blocks::new(ByteCount::default(), self.level);
        serde_json::to_writer(
            Pieces(|piece: &[u8]| {
                seen.add(piece);
                deflate.feed(piece)
            }),
            &self.manifest,
        )
        .map_err(io::Error::from)?;
        let size = seen.size;
        let crc = seen.crc.finalize();
        self.snapshot_id = seen.sha.finish();
        let deflated = deflate.finish()?.0;
        let (method, data_len) = if deflated < size {
            (METHOD_DEFLATE, deflated)
        } else {
            (METHOD_STORE, size)
        };
        let header = entry_header(MANIFEST_PATH, method, crc, data_len, size)?;
        let local_offset = checked_u32(self.offset)?;
        self.write_local(&header)?;
        let out = &mut self.out;
        let mut deflate = (method == METHOD_DEFLATE).then(|| Blocks::new(Vec::new(), self.level));
        serde_json::to_writer(
            Pieces(|piece: &[u8]| match deflate.as_mut() {
                Some(deflate) => {
                    deflate.feed(piece)?;
                    out.write_all(deflate.enc.get_ref())?;
                    deflate.enc.get_mut().clear();
                    Ok(())
                }
                None => out.write_all(piece),
            }),
            &self.manifest,
        )
        .map_err(io::Error::from)?;
        if let Some(deflate) = deflate {
            self.out.write_all(&deflate.finish()?)?;
        }
        self.offset += data_len;
        header.encode_central(local_offset, &mut self.central);
        self.entries += 1;
        Ok(())
    }

    /// The manifest entry `path` must match: the next one.
    fn expect_next(&self, path: &str) -> Result<&ManifestEntry, SnapshotError> {
        assert!(
            self.piecewise.is_none(),
            "a file given in pieces is still open: end_file comes first"
        );
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
        Ok(expected)
    }

    /// Adds the next file. Files must come in manifest order and match its size and hash.
    ///
    /// # Panics
    ///
    /// While a file given in pieces is open (between [`begin_file`](Self::begin_file) and
    /// [`end_file`](Self::end_file)).
    pub fn add_file(&mut self, path: &str, content: &[u8]) -> Result<(), SnapshotError> {
        self.add_file_with_digest(path, content, &content_digest(content))
    }

    /// [`add_file`](Self::add_file) for a caller that has computed `content`'s SHA-256 itself,
    /// e.g. with the host's native SHA-256 (a Worker's `crypto.subtle.digest` is several times
    /// faster than SHA-256 compiled to Wasm). `sha256` must be the digest of exactly `content`;
    /// it is checked against the manifest as add_file checks its own.
    ///
    /// # Panics
    ///
    /// As [`add_file`](Self::add_file).
    pub fn add_file_with_digest(
        &mut self,
        path: &str,
        content: &[u8],
        sha256: &[u8; 32],
    ) -> Result<(), SnapshotError> {
        let expected = self.expect_next(path)?;
        if expected.size != content.len() as u64 {
            return Err(SnapshotError::SizeMismatch {
                path: path.to_owned(),
                expected: expected.size,
                actual: content.len() as u64,
            });
        }
        let hash = hex::encode(sha256);
        if hash != expected.content_hash {
            return Err(SnapshotError::HashMismatch {
                path: path.to_owned(),
                expected: expected.content_hash.clone(),
                actual: hash,
            });
        }
        self.next += 1;
        let compress = deflate_candidate(path, content.len() as u64);
        self.write_entry(path, content, compress)
    }

    /// Starts adding the next file in pieces, for a file too large to hold whole: memory stays
    /// bounded by a piece, whatever the file's size.
    ///
    /// A zip entry's header comes before its data and carries the data's CRC-32 and compressed
    /// size, so the file's bytes are given twice, in pieces of any size: first to
    /// [`measure`](Self::measure), which writes nothing; then, after
    /// [`write_header`](Self::write_header), to [`write_data`](Self::write_data), and
    /// [`end_file`](Self::end_file) closes the entry. The archive is byte for byte what
    /// [`add_file`](Self::add_file) would have written. Both passes are checked against the
    /// manifest's size and SHA-256, so bytes that change between them are refused.
    ///
    /// ```
    /// use fs_sync_core::{Manifest, ManifestEntry, SnapshotWriter, WriteOptions};
    ///
    /// let body = b"0123456789".repeat(1000);
    /// let entry = ManifestEntry::for_content("data.csv", &body, 1);
    /// let manifest = Manifest::new("00000000-0000-0000-0000-000000000001", 1, vec![entry])?;
    /// let mut writer = SnapshotWriter::new(Vec::new(), manifest.clone(), WriteOptions::default())?;
    /// writer.begin_file("data.csv")?;
    /// for piece in body.chunks(4096) {
    ///     writer.measure(piece)?;
    /// }
    /// writer.write_header()?;
    /// for piece in body.chunks(4096) {
    ///     writer.write_data(piece)?;
    /// }
    /// writer.end_file()?;
    /// let (zip, _) = writer.finish()?;
    ///
    /// let mut whole = SnapshotWriter::new(Vec::new(), manifest, WriteOptions::default())?;
    /// whole.add_file("data.csv", &body)?;
    /// assert_eq!(zip, whole.finish()?.0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Panics
    ///
    /// While another file given in pieces is open.
    pub fn begin_file(&mut self, path: &str) -> Result<(), SnapshotError> {
        let expected = self.expect_next(path)?;
        let deflate = deflate_candidate(path, expected.size)
            .then(|| Blocks::new(ByteCount::default(), self.level));
        self.piecewise = Some(Piecewise::Measuring {
            seen: Seen::default(),
            deflate,
        });
        Ok(())
    }

    /// The open file's next piece, first pass (see [`begin_file`](Self::begin_file)).
    ///
    /// # Panics
    ///
    /// Unless a file is open and [`write_header`](Self::write_header) was not called yet.
    pub fn measure(&mut self, piece: &[u8]) -> Result<(), SnapshotError> {
        let Some(Piecewise::Measuring { seen, deflate }) = &mut self.piecewise else {
            panic!("measure needs a file opened with begin_file and not yet past write_header");
        };
        let expected = &self.manifest.files[self.next];
        seen.update(&expected.path, expected.size, piece)?;
        if let Some(deflate) = deflate {
            deflate.feed(piece)?;
        }
        Ok(())
    }

    /// Ends the first pass over the open file: checks its size and SHA-256 against the manifest
    /// and writes its header. Its bytes follow through [`write_data`](Self::write_data).
    ///
    /// # Panics
    ///
    /// Unless a file is open and still in its first pass.
    pub fn write_header(&mut self) -> Result<(), SnapshotError> {
        let Some(Piecewise::Measuring { seen, deflate }) = self.piecewise.take() else {
            panic!("write_header needs a file opened with begin_file, in its first pass");
        };
        let expected = &self.manifest.files[self.next];
        let size = expected.size;
        let crc = seen.verify(expected)?;
        let deflated = match deflate {
            Some(deflate) => Some(deflate.finish()?.0),
            None => None,
        };
        let (method, data_len) = match deflated {
            Some(d) if d < size => (METHOD_DEFLATE, d),
            _ => (METHOD_STORE, size),
        };
        let header = entry_header(&expected.path, method, crc, data_len, size)?;
        let local_offset = checked_u32(self.offset)?;
        self.write_local(&header)?;
        self.piecewise = Some(Piecewise::Writing {
            seen: Seen::default(),
            local_offset,
            deflate: (method == METHOD_DEFLATE).then(|| Blocks::new(Vec::new(), self.level)),
            header,
            written: 0,
            overflow: false,
        });
        Ok(())
    }

    /// The open file's next piece, second pass: compressed as measured and written out.
    ///
    /// # Panics
    ///
    /// Unless a file is open and past [`write_header`](Self::write_header).
    pub fn write_data(&mut self, piece: &[u8]) -> Result<(), SnapshotError> {
        let Some(Piecewise::Writing {
            seen,
            header,
            deflate,
            written,
            overflow,
            ..
        }) = &mut self.piecewise
        else {
            panic!("write_data needs a file past write_header");
        };
        let expected = &self.manifest.files[self.next];
        seen.update(&expected.path, expected.size, piece)?;
        let (out, offset) = (&mut self.out, &mut self.offset);
        match deflate {
            Some(deflate) => {
                deflate.feed(piece)?;
                emit(
                    out,
                    offset,
                    header,
                    written,
                    overflow,
                    deflate.enc.get_ref(),
                )?;
                deflate.enc.get_mut().clear();
            }
            None => emit(out, offset, header, written, overflow, piece)?,
        }
        Ok(())
    }

    /// Ends the open file's second pass: the bytes must be the ones measured.
    ///
    /// # Panics
    ///
    /// Unless a file is open and past [`write_header`](Self::write_header).
    pub fn end_file(&mut self) -> Result<(), SnapshotError> {
        let Some(Piecewise::Writing {
            seen,
            header,
            local_offset,
            deflate,
            mut written,
            mut overflow,
        }) = self.piecewise.take()
        else {
            panic!("end_file needs a file past write_header");
        };
        if let Some(deflate) = deflate {
            let rest = deflate.finish()?;
            emit(
                &mut self.out,
                &mut self.offset,
                &header,
                &mut written,
                &mut overflow,
                &rest,
            )?;
        }
        let expected = &self.manifest.files[self.next];
        let crc = seen.verify(expected)?;
        if crc != header.crc32 || overflow || written != u64::from(header.compressed_size) {
            // Same SHA-256 as the first pass, yet other data: not the bytes' fault.
            return Err(SnapshotError::Io(io::Error::other(format!(
                "{:?}: the second pass produced other data than the first measured",
                expected.path
            ))));
        }
        header.encode_central(local_offset, &mut self.central);
        self.entries += 1;
        self.next += 1;
        Ok(())
    }

    /// The manifest this archive is being written for.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The smallest size the finished archive can have: what is written so far, plus every
    /// remaining file's headers and name, its bytes when it will be stored as they are (too small
    /// or already compressed), the central directory and its end record. Known before any file
    /// content is read, so an archive sure to be too large can be refused up front.
    pub fn min_size(&self) -> u64 {
        self.size_with(|f| {
            if deflate_candidate(&f.path, f.size) {
                0
            } else {
                f.size
            }
        })
    }

    /// The largest size the finished archive can have: as [`min_size`](Self::min_size), with
    /// every remaining file's bytes as they are (deflate is kept only where it makes an entry
    /// smaller). An archive within a limit by this bound fits it at any level.
    pub fn max_size(&self) -> u64 {
        self.size_with(|f| f.size)
    }

    /// What is written so far, plus the remaining files' headers and names and `data` of each,
    /// the central directory and its end record.
    fn size_with(&self, data: impl Fn(&ManifestEntry) -> u64) -> u64 {
        let rest: u64 = self.manifest.files[self.next..]
            .iter()
            .map(|f| {
                let headers = (format::LOCAL_HEADER_LEN + format::CENTRAL_HEADER_LEN) as u64;
                headers + 2 * f.path.len() as u64 + data(f)
            })
            .sum();
        self.offset + self.central.len() as u64 + rest + format::END_LEN as u64
    }

    /// The deflate level of the files added from now on.
    pub fn level(&self) -> u32 {
        self.level.level()
    }

    /// Sets the deflate level (0–9) of the files added from now on. One state still gives one
    /// archive as long as the level is chosen from the state alone (e.g. from
    /// [`max_size`](Self::max_size)).
    ///
    /// # Panics
    ///
    /// While a file given in pieces is open.
    pub fn set_level(&mut self, level: u32) {
        assert!(
            self.piecewise.is_none(),
            "a file given in pieces is still open: end_file comes first"
        );
        self.level = Compression::new(level.min(9));
    }

    /// Writes the central directory and returns the sink with a summary.
    ///
    /// Fails if a file of the manifest was never added (or given in pieces and not ended).
    pub fn finish(mut self) -> Result<(W, SnapshotSummary), SnapshotError> {
        if let Some(missing) = self.manifest.files.get(self.next) {
            return Err(SnapshotError::Missing {
                path: missing.path.clone(),
            });
        }
        let central_offset = checked_u32(self.offset)?;
        let central_size = checked_u32(self.central.len() as u64)?;
        // The end record joins the central directory (room was reserved): one write, so a sink
        // that buffers never grows a copy of the directory for 22 more bytes.
        format::encode_end(
            self.entries as u16,
            central_size,
            central_offset,
            &mut self.central,
        );
        self.out.write_all(&self.central)?;
        self.out.flush()?;
        let bytes = self.offset + self.central.len() as u64;
        let summary = SnapshotSummary {
            snapshot_id: self.snapshot_id,
            bytes,
            files: self.manifest.files.len(),
        };
        Ok((self.out, summary))
    }

    fn write_local(&mut self, header: &EntryHeader) -> Result<(), SnapshotError> {
        self.header.clear();
        header.encode_local(&mut self.header);
        self.out.write_all(&self.header)?;
        self.offset += self.header.len() as u64;
        Ok(())
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
            // In BLOCKs, as `Blocks` feeds a file given in pieces: the same bytes either way.
            for block in content.chunks(BLOCK) {
                enc.write_all(block)?;
            }
            self.scratch = enc.finish()?;
            if self.scratch.len() < content.len() {
                method = METHOD_DEFLATE;
            }
        }
        let data_len = if method == METHOD_DEFLATE {
            self.scratch.len()
        } else {
            content.len()
        };
        let header = entry_header(
            name,
            method,
            crc32fast::hash(content),
            data_len as u64,
            content.len() as u64,
        )?;
        let local_offset = checked_u32(self.offset)?;
        self.write_local(&header)?;
        let data: &[u8] = if method == METHOD_DEFLATE {
            &self.scratch
        } else {
            content
        };
        self.out.write_all(data)?;
        self.offset += data.len() as u64;
        header.encode_central(local_offset, &mut self.central);
        self.entries += 1;
        Ok(())
    }
}

/// Writes a piece of an entry's data, never past the size its header declared: whatever would
/// go beyond is dropped and flagged, and [`SnapshotWriter::end_file`] refuses the entry.
fn emit<W: Write>(
    out: &mut W,
    offset: &mut u64,
    header: &EntryHeader,
    written: &mut u64,
    overflow: &mut bool,
    data: &[u8],
) -> Result<(), SnapshotError> {
    let room = u64::from(header.compressed_size) - *written;
    let fits = data.len().min(usize::try_from(room).unwrap_or(usize::MAX));
    *overflow |= fits < data.len();
    out.write_all(&data[..fits])?;
    *written += fits as u64;
    *offset += fits as u64;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManifestEntry;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const PROJECT: &str = "00000000-0000-0000-0000-000000000001";

    /// Text that deflates well, bytes that do not, a tiny file and an already compressed one.
    fn files() -> Vec<(String, Vec<u8>)> {
        let mut noise = Vec::with_capacity(300_000);
        let mut x: u32 = 0x9e37_79b9;
        while noise.len() < 300_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            noise.extend_from_slice(&x.to_le_bytes());
        }
        let text: Vec<u8> = (0..20_000)
            .flat_map(|i| format!("export const v{i} = {};\n", i * 7).into_bytes())
            .collect();
        vec![
            ("a/text.ts".to_owned(), text),
            ("b/noise.bin".to_owned(), noise.clone()),
            ("c/tiny.txt".to_owned(), b"hi".to_vec()),
            ("d/photo.png".to_owned(), noise[..70_000].to_vec()),
            ("e/empty.md".to_owned(), Vec::new()),
            ("é.md".to_owned(), b"# caf\xc3\xa9\n".repeat(40)),
        ]
    }

    fn manifest(files: &[(String, Vec<u8>)]) -> Manifest {
        let entries = files
            .iter()
            .map(|(p, c)| ManifestEntry::for_content(p.as_str(), c, 1))
            .collect();
        Manifest::new(PROJECT, 3, entries).unwrap()
    }

    fn whole(files: &[(String, Vec<u8>)]) -> Vec<u8> {
        let mut w =
            SnapshotWriter::new(Vec::new(), manifest(files), WriteOptions::default()).unwrap();
        for (p, c) in files {
            w.add_file(p, c).unwrap();
        }
        w.finish().unwrap().0
    }

    fn in_pieces(w: &mut SnapshotWriter<Vec<u8>>, path: &str, content: &[u8], piece: usize) {
        w.begin_file(path).unwrap();
        for p in content.chunks(piece) {
            w.measure(p).unwrap();
        }
        w.write_header().unwrap();
        for p in content.chunks(piece) {
            w.write_data(p).unwrap();
        }
        w.end_file().unwrap();
    }

    #[test]
    fn pieces_give_the_same_bytes_as_whole_files() {
        let files = files();
        let expected = whole(&files);
        for piece in [3, 7, 4096, 65_536, 1 << 20] {
            let mut w =
                SnapshotWriter::new(Vec::new(), manifest(&files), WriteOptions::default()).unwrap();
            for (i, (p, c)) in files.iter().enumerate() {
                // Mixed: every other file whole, so both kinds follow each other.
                if i % 2 == 0 {
                    in_pieces(&mut w, p, c, piece);
                } else {
                    w.add_file(p, c).unwrap();
                }
            }
            let (zip, summary) = w.finish().unwrap();
            assert!(zip == expected, "pieces of {piece} bytes gave other bytes");
            assert_eq!(summary.bytes, zip.len() as u64);
            assert_eq!(summary.snapshot_id, manifest(&files).snapshot_id());
        }
    }

    /// Every level, not only the default one: a producer may pick another (fs-sync-edge does).
    #[test]
    fn every_level_gives_one_archive_per_state_whole_or_in_pieces() {
        let files = files();
        let build = |level: u32, piece: Option<usize>| {
            let options = WriteOptions { level };
            let mut w = SnapshotWriter::new(Vec::new(), manifest(&files), options).unwrap();
            for (p, c) in &files {
                match piece {
                    Some(piece) => in_pieces(&mut w, p, c, piece),
                    None => w.add_file(p, c).unwrap(),
                }
            }
            w.finish().unwrap().0
        };
        for level in 0..=9 {
            let zip = build(level, None);
            assert!(
                zip == build(level, None),
                "level {level}: two builds differ"
            );
            for piece in [4096, 65_537] {
                assert!(
                    zip == build(level, Some(piece)),
                    "level {level}: pieces of {piece} bytes gave other bytes"
                );
            }
        }
    }

    #[test]
    fn a_digest_given_by_the_caller_is_checked_like_its_own() {
        let files = files();
        let (path, content) = &files[0];
        let mut w =
            SnapshotWriter::new(Vec::new(), manifest(&files), WriteOptions::default()).unwrap();
        let mut wrong = content_digest(content);
        wrong[0] ^= 1;
        let e = w.add_file_with_digest(path, content, &wrong).unwrap_err();
        assert!(matches!(e, SnapshotError::HashMismatch { .. }), "{e}");
        // Refused before anything was written: the same file can still be added.
        for (p, c) in &files {
            w.add_file_with_digest(p, c, &content_digest(c)).unwrap();
        }
        assert!(w.finish().unwrap().0 == whole(&files));
    }

    #[test]
    fn the_manifest_entry_is_its_canonical_json_deflated_in_blocks() {
        let files: Vec<(String, Vec<u8>)> = (0..3000)
            .map(|i| (format!("src/f{i:05}.ts"), format!("// {i}\n").into_bytes()))
            .collect();
        let m = manifest(&files);
        let json = m.to_canonical_json();
        assert!(json.len() > 3 * BLOCK, "several blocks: {}", json.len());
        let mut enc = DeflateEncoder::new(Vec::new(), Compression::new(6));
        for block in json.chunks(BLOCK) {
            enc.write_all(block).unwrap();
        }
        let deflated = enc.finish().unwrap();
        let mut expected = Vec::new();
        entry_header(
            MANIFEST_PATH,
            METHOD_DEFLATE,
            crc32fast::hash(&json),
            deflated.len() as u64,
            json.len() as u64,
        )
        .unwrap()
        .encode_local(&mut expected);
        expected.extend_from_slice(&deflated);

        let w = SnapshotWriter::new(Vec::new(), m.clone(), WriteOptions::default()).unwrap();
        assert_eq!(w.snapshot_id, m.snapshot_id());
        assert!(w.out == expected);
    }

    #[test]
    fn the_central_directory_is_allocated_once_at_its_final_size() {
        let files = files();
        let mut w =
            SnapshotWriter::new(Vec::new(), manifest(&files), WriteOptions::default()).unwrap();
        let reserved = w.central.capacity();
        for (i, (p, c)) in files.iter().enumerate() {
            if i % 2 == 0 {
                in_pieces(&mut w, p, c, 4096);
            } else {
                w.add_file(p, c).unwrap();
            }
        }
        assert_eq!(w.central.capacity(), reserved);
        assert_eq!(reserved, w.central.len() + format::END_LEN);
    }

    #[test]
    fn each_pass_is_checked_against_the_manifest() {
        let files = vec![("a.csv".to_owned(), b"1,2,3\n".repeat(100))];
        let body = &files[0].1;
        let new = || SnapshotWriter::new(Vec::new(), manifest(&files), WriteOptions::default());

        // First pass: too long as soon as it is; other bytes at write_header.
        let mut w = new().unwrap();
        w.begin_file("a.csv").unwrap();
        w.measure(body).unwrap();
        assert!(matches!(
            w.measure(b"x"),
            Err(SnapshotError::SizeMismatch { actual: 601, .. })
        ));
        let mut w = new().unwrap();
        w.begin_file("a.csv").unwrap();
        let mut other = body.clone();
        other[10] = b'9';
        w.measure(&other).unwrap();
        assert!(matches!(
            w.write_header(),
            Err(SnapshotError::HashMismatch { .. })
        ));

        // Second pass with other bytes of the same size: refused at end_file, nothing written
        // past the header's declared size.
        let mut w = new().unwrap();
        w.begin_file("a.csv").unwrap();
        w.measure(body).unwrap();
        w.write_header().unwrap();
        let Some(Piecewise::Writing { header, .. }) = &w.piecewise else {
            unreachable!()
        };
        let (declared, before) = (u64::from(header.compressed_size), w.offset);
        let noise: Vec<u8> = (0..600u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        w.write_data(&noise).unwrap();
        assert!(matches!(
            w.end_file(),
            Err(SnapshotError::HashMismatch { .. })
        ));
        assert_eq!(w.offset - before, declared);

        // Short second pass; order and membership as for add_file; a file left open is missing.
        let mut w = new().unwrap();
        w.begin_file("a.csv").unwrap();
        w.measure(body).unwrap();
        w.write_header().unwrap();
        w.write_data(&body[..10]).unwrap();
        assert!(matches!(
            w.end_file(),
            Err(SnapshotError::SizeMismatch { actual: 10, .. })
        ));
        let mut w = new().unwrap();
        assert!(matches!(
            w.begin_file("b.csv"),
            Err(SnapshotError::OutOfOrder { .. })
        ));
        w.begin_file("a.csv").unwrap();
        assert!(matches!(w.finish(), Err(SnapshotError::Missing { .. })));
    }

    // wasm32 tests abort on a panic.
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    #[should_panic(expected = "end_file comes first")]
    fn whole_files_wait_for_the_open_one() {
        let files = vec![
            ("a.csv".to_owned(), b"1".to_vec()),
            ("b.csv".to_owned(), b"2".to_vec()),
        ];
        let mut w =
            SnapshotWriter::new(Vec::new(), manifest(&files), WriteOptions::default()).unwrap();
        w.begin_file("a.csv").unwrap();
        let _ = w.add_file("a.csv", b"1");
    }

    #[test]
    fn min_size_is_a_lower_bound_and_exact_for_stored_files() {
        let files = files();
        let zip = whole(&files);
        let w = SnapshotWriter::new(Vec::new(), manifest(&files), WriteOptions::default()).unwrap();
        assert!(w.min_size() <= zip.len() as u64);

        // Only stored files (small or already compressed): the bound is the size.
        let stored: Vec<_> = files
            .iter()
            .filter(|(p, c)| !deflate_candidate(p, c.len() as u64))
            .cloned()
            .collect();
        assert!(stored.iter().any(|(_, c)| c.len() > 1000));
        let mut w =
            SnapshotWriter::new(Vec::new(), manifest(&stored), WriteOptions::default()).unwrap();
        let bound = w.min_size();
        w.add_file(&stored[0].0, &stored[0].1).unwrap();
        assert_eq!(w.min_size(), bound, "written bytes replace their estimate");
        for (p, c) in &stored[1..] {
            w.add_file(p, c).unwrap();
        }
        assert_eq!(w.finish().unwrap().0.len() as u64, bound);
    }

    #[test]
    fn max_size_is_an_upper_bound_at_any_level() {
        let files = files();
        for level in [0, 2, 9] {
            let mut w =
                SnapshotWriter::new(Vec::new(), manifest(&files), WriteOptions::default()).unwrap();
            w.set_level(level);
            assert_eq!(w.level(), level);
            let bound = w.max_size();
            for (p, c) in &files {
                w.add_file(p, c).unwrap();
                assert!(w.max_size() <= bound);
            }
            // Nothing left to guess: the bound is the size.
            let exact = w.max_size();
            let zip = w.finish().unwrap().0;
            assert_eq!(zip.len() as u64, exact, "level {level}");
        }
    }
}
