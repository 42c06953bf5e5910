//! The subset of the zip format snapshots use: stored or deflated entries, no zip64, no data
//! descriptors, no encryption, fixed timestamps.

pub(crate) const LOCAL_SIG: u32 = 0x0403_4b50;
pub(crate) const CENTRAL_SIG: u32 = 0x0201_4b50;
pub(crate) const END_SIG: u32 = 0x0605_4b50;
pub(crate) const ZIP64_END_SIG: u32 = 0x0606_4b50;

pub(crate) const METHOD_STORE: u16 = 0;
pub(crate) const METHOD_DEFLATE: u16 = 8;

pub(crate) const FLAG_ENCRYPTED: u16 = 1 << 0;
pub(crate) const FLAG_DATA_DESCRIPTOR: u16 = 1 << 3;
pub(crate) const FLAG_UTF8: u16 = 1 << 11;

/// "Made by" Unix, spec 2.0, so readers honour the mode bits in the external attributes.
pub(crate) const MADE_BY_UNIX: u16 = (3 << 8) | 20;
pub(crate) const HOST_UNIX: u8 = 3;
/// Regular file, rw-r--r--.
pub(crate) const EXTERNAL_ATTR_FILE: u32 = 0o100644 << 16;
pub(crate) const S_IFMT: u32 = 0o170000;
pub(crate) const S_IFLNK: u32 = 0o120000;
pub(crate) const S_IFDIR: u32 = 0o040000;

/// 1980-01-01 00:00:00, the earliest DOS date: every entry gets it so equal states give equal bytes.
pub(crate) const DOS_TIME: u16 = 0;
pub(crate) const DOS_DATE: u16 = (1 << 5) | 1;

pub(crate) const LOCAL_HEADER_LEN: usize = 30;
pub(crate) const CENTRAL_HEADER_LEN: usize = 46;
pub(crate) const END_LEN: usize = 22;

/// Largest entry count without zip64.
pub(crate) const MAX_ENTRIES: usize = 0xFFFF;

/// Fields shared by a local header and its central directory record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EntryHeader {
    pub(crate) name: String,
    pub(crate) method: u16,
    pub(crate) flags: u16,
    pub(crate) crc32: u32,
    pub(crate) compressed_size: u32,
    pub(crate) size: u32,
}

impl EntryHeader {
    fn version_needed(&self) -> u16 {
        if self.method == METHOD_DEFLATE {
            20
        } else {
            10
        }
    }

    pub(crate) fn encode_local(&self, out: &mut Vec<u8>) {
        put32(out, LOCAL_SIG);
        put16(out, self.version_needed());
        put16(out, self.flags);
        put16(out, self.method);
        put16(out, DOS_TIME);
        put16(out, DOS_DATE);
        put32(out, self.crc32);
        put32(out, self.compressed_size);
        put32(out, self.size);
        put16(out, self.name.len() as u16);
        put16(out, 0);
        out.extend_from_slice(self.name.as_bytes());
    }

    pub(crate) fn encode_central(&self, local_offset: u32, out: &mut Vec<u8>) {
        put32(out, CENTRAL_SIG);
        put16(out, MADE_BY_UNIX);
        put16(out, self.version_needed());
        put16(out, self.flags);
        put16(out, self.method);
        put16(out, DOS_TIME);
        put16(out, DOS_DATE);
        put32(out, self.crc32);
        put32(out, self.compressed_size);
        put32(out, self.size);
        put16(out, self.name.len() as u16);
        put16(out, 0); // extra
        put16(out, 0); // comment
        put16(out, 0); // disk
        put16(out, 0); // internal attributes
        put32(out, EXTERNAL_ATTR_FILE);
        put32(out, local_offset);
        out.extend_from_slice(self.name.as_bytes());
    }
}

pub(crate) fn encode_end(entries: u16, central_size: u32, central_offset: u32, out: &mut Vec<u8>) {
    put32(out, END_SIG);
    put16(out, 0);
    put16(out, 0);
    put16(out, entries);
    put16(out, entries);
    put32(out, central_size);
    put32(out, central_offset);
    put16(out, 0);
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn get16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

pub(crate) fn get32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
