//! The undo log of an image file: its name, its format, and streaming
//! reading and writing. [`super::image`] decides what goes in it and replays
//! it.
//!
//! The log of an image lives in the directory of the image's real file
//! (symlinks resolved), named `.<16 hex digits>.ebsim-undo` after a hash of
//! the real file's name, so a link and its target share one log and a
//! 255-byte image name still has a legal log name.
//!
//! ```text
//! header
//! 0x00  [u8; 8]  magic "EBSUNDO2"
//! 0x08  u32le    format version (2)
//! 0x0C  u32le    kind: 1 = undo (roll back), 2 = roll forward (finish discards)
//! 0x10  u64le    st_dev of the image
//! 0x18  u64le    st_ino of the image
//! 0x20  u64le    the image's length before the change
//! 0x28  u64le    the image's length after the change
//! 0x30  u32le    n, the length of the image's file name
//! 0x34  [u8; n]  the file name (of the real file)
//!       u32le    CRC32C of the header bytes before it
//! records, each
//!       u8       kind (below)
//!       u64le    offset
//!       u64le    length
//!       u64le×2  the range a rollback punches        (HOLE_NEW)
//!       [u32le]  CRC32C of the new bytes of each piece (the range split at
//!                every multiple of 4 KiB)            (*_NEW, WRITTEN)
//!       [u8]     the old bytes                       (DATA_NEW, DATA_CUT)
//! footer
//!       u8       0xFF
//!       u64le    number of records
//!       u32le    CRC32C of every byte before the footer
//! ```
//!
//! Record kinds: `DATA_NEW` a write over allocated bytes, `HOLE_NEW` a write
//! over a hole, `PAST_END_NEW` a write past the old end of the image,
//! `DATA_CUT`/`HOLE_CUT` the bytes a shorter length cuts off (data saved,
//! or a hole); in a roll-forward log, `WRITTEN` a write of the finished
//! change and `PUNCH` a discard still to make.

use super::Error;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// The magic at the start of every log.
pub(crate) const MAGIC: &[u8; 8] = b"EBSUNDO2";
/// The format version this code writes and reads.
pub(crate) const VERSION: u32 = 2;
/// The granularity of the new-content checksums.
pub(crate) const PIECE: u64 = 4096;
/// Fixed part of the header (before the name).
const HEADER_FIXED: usize = 0x34;
/// The longest file name a header may carry.
const MAX_NAME: usize = 4096;
/// The footer's size.
pub(crate) const FOOTER_LEN: u64 = 1 + 8 + 4;
/// Buffer size for streaming the log and the image.
pub(crate) const BUF: usize = 256 * 1024;

/// Log kinds.
pub(crate) const LOG_UNDO: u32 = 1;
pub(crate) const LOG_FORWARD: u32 = 2;

/// Record kinds.
pub(crate) const DATA_NEW: u8 = 1;
pub(crate) const HOLE_NEW: u8 = 2;
pub(crate) const PAST_END_NEW: u8 = 3;
pub(crate) const DATA_CUT: u8 = 4;
pub(crate) const HOLE_CUT: u8 = 5;
pub(crate) const WRITTEN: u8 = 6;
pub(crate) const PUNCH: u8 = 7;
const FOOTER: u8 = 0xFF;

/// True for record kinds followed by new-content checksums.
pub(crate) fn has_crcs(kind: u8) -> bool {
    matches!(kind, DATA_NEW | HOLE_NEW | PAST_END_NEW | WRITTEN)
}

/// The log of the image at `image`: beside its real file, named after a
/// hash of the real file's name. When the image does not exist the path is
/// resolved as far as it can be (its directory, else as given).
pub fn undo_log_path(image: &Path) -> PathBuf {
    log_path_for(&real_path(image))
}

/// The temporary name a roll-forward log is written under before it
/// replaces the undo log.
pub(crate) fn forward_tmp_path(log: &Path) -> PathBuf {
    let mut name = log
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push("-new");
    log.with_file_name(name)
}

/// `image` with symlinks resolved, as far as it exists.
pub(crate) fn real_path(image: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(image) {
        return p;
    }
    match (image.parent(), image.file_name()) {
        (Some(dir), Some(name)) => {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            match std::fs::canonicalize(dir) {
                Ok(d) => d.join(name),
                Err(_) => image.to_path_buf(),
            }
        }
        _ => image.to_path_buf(),
    }
}

/// The log path of a real (resolved) image path.
pub(crate) fn log_path_for(real: &Path) -> PathBuf {
    use sha2::Digest;
    let name = real.file_name().map(os_bytes).unwrap_or_default();
    let digest = sha2::Sha256::digest(&name);
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    real.with_file_name(format!(".{hex}.ebsim-undo"))
}

/// The bytes of a file name.
pub(crate) fn os_bytes(s: &std::ffi::OsStr) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    s.as_bytes().to_vec()
}

/// The identity and lengths a log is written for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub kind: u32,
    pub dev: u64,
    pub ino: u64,
    pub old_len: u64,
    pub new_len: u64,
    pub name: Vec<u8>,
}

/// What the start of a log file holds.
pub(crate) enum HeaderRead {
    /// A complete header, and its length in bytes.
    Valid(Header, u64),
    /// Fewer bytes than a header, all of them a header's start: the log
    /// was being created when the process stopped.
    Torn,
    /// Not an ebsim undo log of this format (the reason).
    Invalid(String),
}

impl Header {
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(HEADER_FIXED + self.name.len() + 4);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.extend_from_slice(&self.kind.to_le_bytes());
        b.extend_from_slice(&self.dev.to_le_bytes());
        b.extend_from_slice(&self.ino.to_le_bytes());
        b.extend_from_slice(&self.old_len.to_le_bytes());
        b.extend_from_slice(&self.new_len.to_le_bytes());
        b.extend_from_slice(&(self.name.len() as u32).to_le_bytes());
        b.extend_from_slice(&self.name);
        let crc = crc32c::crc32c(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// Reads the header at the start of `f`.
    pub(crate) fn read(f: &mut File) -> std::io::Result<HeaderRead> {
        let mut buf = Vec::new();
        f.seek(SeekFrom::Start(0))?;
        Read::by_ref(f)
            .take((HEADER_FIXED + MAX_NAME + 4) as u64)
            .read_to_end(&mut buf)?;
        let n = buf.len().min(MAGIC.len());
        if buf[..n] != MAGIC[..n] {
            return Ok(HeaderRead::Invalid("it is not an ebsim undo log".into()));
        }
        if buf.len() < HEADER_FIXED {
            return Ok(HeaderRead::Torn);
        }
        let u32_at = |o: usize| crate::bytes::read_u32le(&buf, o);
        let u64_at = |o: usize| crate::bytes::read_u64le(&buf, o);
        let version = u32_at(0x08);
        if version != VERSION {
            return Ok(HeaderRead::Invalid(format!(
                "format version {version}, this ebsim reads {VERSION}"
            )));
        }
        let name_len = u32_at(0x30) as usize;
        if name_len > MAX_NAME {
            return Ok(HeaderRead::Invalid(format!(
                "a file name of {name_len} bytes"
            )));
        }
        let end = HEADER_FIXED + name_len;
        if buf.len() < end + 4 {
            return Ok(HeaderRead::Torn);
        }
        if crc32c::crc32c(&buf[..end]) != u32_at(end) {
            return Ok(HeaderRead::Invalid("its header checksum is wrong".into()));
        }
        let kind = u32_at(0x0C);
        if kind != LOG_UNDO && kind != LOG_FORWARD {
            return Ok(HeaderRead::Invalid(format!("unknown log kind {kind}")));
        }
        Ok(HeaderRead::Valid(
            Header {
                kind,
                dev: u64_at(0x10),
                ino: u64_at(0x18),
                old_len: u64_at(0x20),
                new_len: u64_at(0x28),
                name: buf[HEADER_FIXED..end].to_vec(),
            },
            (end + 4) as u64,
        ))
    }
}

/// The pieces of `range`: split at every multiple of [`PIECE`].
pub(crate) fn pieces(range: Range<u64>) -> impl Iterator<Item = Range<u64>> {
    let mut pos = range.start;
    std::iter::from_fn(move || {
        if pos >= range.end {
            return None;
        }
        let next = (pos / PIECE + 1).saturating_mul(PIECE).min(range.end);
        let r = pos..next;
        pos = next;
        Some(r)
    })
}

/// The number of pieces of `range`.
pub(crate) fn piece_count(range: &Range<u64>) -> u64 {
    if range.start >= range.end {
        return 0;
    }
    (range.end - 1) / PIECE - range.start / PIECE + 1
}

/// A log being written: every byte goes through a bounded buffer and into a
/// running CRC; [`LogWriter::finish`] adds the footer and fsyncs.
pub(crate) struct LogWriter {
    path: PathBuf,
    out: BufWriter<File>,
    crc: u32,
    records: u64,
}

impl LogWriter {
    /// Creates the log at `path`, which must not exist, and writes `header`.
    pub(crate) fn create(path: &Path, header: &Header) -> Result<Self, Error> {
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| Error::io(path, "create undo log", e))?;
        let mut w = LogWriter {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(BUF, f),
            crc: 0,
            records: 0,
        };
        w.put(&header.to_bytes())?;
        Ok(w)
    }

    fn put(&mut self, b: &[u8]) -> Result<(), Error> {
        self.crc = crc32c::crc32c_append(self.crc, b);
        self.out
            .write_all(b)
            .map_err(|e| Error::io(&self.path, "write undo log", e))
    }

    /// Starts a record.
    pub(crate) fn record(&mut self, kind: u8, range: &Range<u64>) -> Result<(), Error> {
        self.records += 1;
        let mut h = [0u8; 17];
        h[0] = kind;
        h[1..9].copy_from_slice(&range.start.to_le_bytes());
        h[9..17].copy_from_slice(&(range.end - range.start).to_le_bytes());
        self.put(&h)
    }

    /// Appends record payload (old bytes).
    pub(crate) fn bytes(&mut self, b: &[u8]) -> Result<(), Error> {
        self.put(b)
    }

    /// Appends a u64.
    pub(crate) fn u64(&mut self, v: u64) -> Result<(), Error> {
        self.put(&v.to_le_bytes())
    }

    /// Appends the checksum of each piece of `new`, which is the content
    /// of `offset..offset + new.len()`.
    pub(crate) fn crcs(&mut self, offset: u64, new: &[u8]) -> Result<(), Error> {
        let mut out = [0u8; 4 * 64];
        let mut n = 0;
        for p in pieces(offset..offset + new.len() as u64) {
            let s = (p.start - offset) as usize;
            let e = (p.end - offset) as usize;
            out[n..n + 4].copy_from_slice(&crc32c::crc32c(&new[s..e]).to_le_bytes());
            n += 4;
            if n == out.len() {
                self.put(&out)?;
                n = 0;
            }
        }
        if n > 0 {
            self.put(&out[..n])?;
        }
        Ok(())
    }

    /// Writes the footer and makes the log durable (the caller syncs the
    /// directory).
    pub(crate) fn finish(mut self) -> Result<(), Error> {
        let mut f = [0u8; FOOTER_LEN as usize];
        f[0] = FOOTER;
        f[1..9].copy_from_slice(&self.records.to_le_bytes());
        f[9..13].copy_from_slice(&self.crc.to_le_bytes());
        self.out
            .write_all(&f)
            .map_err(|e| Error::io(&self.path, "write undo log", e))?;
        let file = self
            .out
            .into_inner()
            .map_err(|e| Error::io(&self.path, "write undo log", e.into_error()))?;
        file.sync_all()
            .map_err(|e| Error::io(&self.path, "fsync undo log", e))
    }
}

/// Whether the log in `f` ends with a valid footer: its CRC and record
/// count. Returns the offset where the footer starts.
pub(crate) fn check_footer(f: &mut File, path: &Path) -> Result<Option<(u64, u64)>, Error> {
    let len = f
        .metadata()
        .map_err(|e| Error::io(path, "stat undo log", e))?
        .len();
    if len < FOOTER_LEN {
        return Ok(None);
    }
    let body = len - FOOTER_LEN;
    f.seek(SeekFrom::Start(0))
        .map_err(|e| Error::io(path, "read undo log", e))?;
    let mut r = BufReader::with_capacity(BUF, Read::by_ref(f).take(len));
    let mut crc = 0u32;
    let mut left = body;
    let mut buf = vec![0u8; BUF.min(usize::try_from(body).unwrap_or(BUF)).max(1)];
    while left > 0 {
        let n = (left.min(buf.len() as u64)) as usize;
        r.read_exact(&mut buf[..n])
            .map_err(|e| Error::io(path, "read undo log", e))?;
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        left -= n as u64;
    }
    let mut foot = [0u8; FOOTER_LEN as usize];
    r.read_exact(&mut foot)
        .map_err(|e| Error::io(path, "read undo log", e))?;
    if foot[0] != FOOTER || crate::bytes::read_u32le(&foot, 9) != crc {
        return Ok(None);
    }
    Ok(Some((body, crate::bytes::read_u64le(&foot, 1))))
}

/// One record's head.
#[derive(Debug, Clone)]
pub(crate) struct RecordHead {
    pub kind: u8,
    pub range: Range<u64>,
}

/// Reads the records of a log whose footer was checked.
pub(crate) struct LogReader<'f> {
    path: PathBuf,
    r: BufReader<&'f mut File>,
    pos: u64,
    body_end: u64,
}

impl<'f> LogReader<'f> {
    /// Positions at the first record (after a header of `header_len`
    /// bytes); `body_end` is where the footer starts.
    pub(crate) fn new(
        f: &'f mut File,
        path: &Path,
        header_len: u64,
        body_end: u64,
    ) -> Result<Self, Error> {
        f.seek(SeekFrom::Start(header_len))
            .map_err(|e| Error::io(path, "read undo log", e))?;
        Ok(LogReader {
            path: path.to_path_buf(),
            r: BufReader::with_capacity(BUF, f),
            pos: header_len,
            body_end,
        })
    }

    fn corrupt(&self, why: &str) -> Error {
        Error::UndoLogCorrupt {
            path: self.path.clone(),
            reason: format!("{why} at byte {}", self.pos),
        }
    }

    /// Reads exactly `buf.len()` bytes of the current record.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> Result<(), Error> {
        if self.body_end - self.pos < buf.len() as u64 {
            return Err(self.corrupt("a record runs past the end"));
        }
        self.r
            .read_exact(buf)
            .map_err(|e| Error::io(&self.path, "read undo log", e))?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    /// Reads a u64.
    pub(crate) fn u64(&mut self) -> Result<u64, Error> {
        let mut b = [0u8; 8];
        self.read(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Reads the `n` piece checksums of a record.
    pub(crate) fn crcs(&mut self, n: u64) -> Result<Vec<u32>, Error> {
        if (self.body_end - self.pos) / 4 < n {
            return Err(self.corrupt("a record runs past the end"));
        }
        let mut out = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
        let mut b = [0u8; 4];
        for _ in 0..n {
            self.read(&mut b)?;
            out.push(u32::from_le_bytes(b));
        }
        Ok(out)
    }

    /// Skips `n` bytes of the current record.
    pub(crate) fn skip(&mut self, n: u64) -> Result<(), Error> {
        if self.body_end - self.pos < n {
            return Err(self.corrupt("a record runs past the end"));
        }
        let Ok(delta) = i64::try_from(n) else {
            return Err(self.corrupt("a record runs past the end"));
        };
        self.r
            .seek_relative(delta)
            .map_err(|e| Error::io(&self.path, "read undo log", e))?;
        self.pos += n;
        Ok(())
    }

    /// The next record's head, or `None` at the footer.
    pub(crate) fn next(&mut self) -> Result<Option<RecordHead>, Error> {
        if self.pos == self.body_end {
            return Ok(None);
        }
        let mut h = [0u8; 17];
        self.read(&mut h)?;
        let kind = h[0];
        let start = crate::bytes::read_u64le(&h, 1);
        let len = crate::bytes::read_u64le(&h, 9);
        let Some(end) = start.checked_add(len) else {
            return Err(self.corrupt("a record past 2^64"));
        };
        if !(DATA_NEW..=PUNCH).contains(&kind) {
            return Err(self.corrupt(&format!("unknown record kind {kind}")));
        }
        Ok(Some(RecordHead {
            kind,
            range: start..end,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_split_at_4k() {
        let v: Vec<_> = pieces(4000..12300).collect();
        assert_eq!(v, vec![4000..4096, 4096..8192, 8192..12288, 12288..12300]);
        assert_eq!(piece_count(&(4000..12300)), 4);
        assert_eq!(piece_count(&(0..4096)), 1);
        assert_eq!(piece_count(&(5..5)), 0);
    }

    #[test]
    fn log_name_is_fixed_length_and_follows_links() {
        let d = tempfile::tempdir().unwrap();
        let long = "x".repeat(255);
        let img = d.path().join(&long);
        std::fs::write(&img, b"").unwrap();
        let log = undo_log_path(&img);
        assert_eq!(log.file_name().unwrap().len(), 1 + 16 + ".ebsim-undo".len());
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&img, &link).unwrap();
        assert_eq!(undo_log_path(&link), log);
        assert_ne!(undo_log_path(&d.path().join("other")), log);
    }

    #[test]
    fn header_round_trip_and_torn() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log");
        let h = Header {
            kind: LOG_UNDO,
            dev: 1,
            ino: 2,
            old_len: 3,
            new_len: 4,
            name: b"d.img".to_vec(),
        };
        let bytes = h.to_bytes();
        std::fs::write(&p, &bytes).unwrap();
        let mut f = File::open(&p).unwrap();
        match Header::read(&mut f).unwrap() {
            HeaderRead::Valid(back, n) => {
                assert_eq!(back, h);
                assert_eq!(n, bytes.len() as u64);
            }
            _ => panic!("not valid"),
        }
        for cut in [0, 5, 20, bytes.len() - 1] {
            std::fs::write(&p, &bytes[..cut]).unwrap();
            let mut f = File::open(&p).unwrap();
            assert!(
                matches!(Header::read(&mut f).unwrap(), HeaderRead::Torn),
                "{cut}"
            );
        }
        std::fs::write(&p, b"hello").unwrap();
        let mut f = File::open(&p).unwrap();
        assert!(matches!(
            Header::read(&mut f).unwrap(),
            HeaderRead::Invalid(_)
        ));
    }
}
