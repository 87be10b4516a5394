//! Segmented images: a volume larger than the host's filesystem lets one
//! file be (ext4 caps a file at 16 TiB − 4 KiB; EBS volumes reach 64 TiB),
//! kept as a directory of sparse files.
//!
//! An image is a single raw file wherever the host takes its length. Only
//! when `ftruncate` to the length fails with `EFBIG` does the image become
//! a directory at the same path holding:
//!
//! ```text
//! IMAGE/manifest      the checked description (below)
//! IMAGE/seg-00000     bytes 0 .. len0 of the volume, a sparse file
//! IMAGE/seg-00001     bytes len0 .. len0+len1, and so on
//! ```
//!
//! The manifest is text, one field a line, ending with a CRC32C of every
//! byte before its last line:
//!
//! ```text
//! ebsim segmented image 1
//! length 21990232555520
//! segment-size 8796093022208
//! seg-00000 8796093022208
//! seg-00001 8796093022208
//! seg-00002 4398046511104
//! crc32c 0a1b2c3d
//! ```
//!
//! `segment-size` is the most bytes a segment made by ebsim holds: the
//! largest power of two from 8 TiB down the host took when the image was
//! made. Each segment file is exactly as long as its line says; only the
//! last one grows (up to the larger of its length and `segment-size`), and
//! new segments follow it. A file image that must grow past the host's
//! limit is converted: its file becomes `seg-00000` (whatever its length),
//! under a directory built beside it as `IMAGE.ebsim-seg` and renamed into
//! place, so a crash leaves either the file or the directory; the next open
//! finishes a conversion that was cut short.
//!
//! Changing the length is crash safe with the image's undo log: growing
//! lengthens and creates segment files first and replaces the manifest
//! last; shrinking replaces the manifest first, then cuts and removes
//! files. The manifest rules: segment files longer than it says, or beyond
//! its count, are what an interrupted length change leaves, and only an
//! open that then replays the image's undo log trims them. Otherwise any
//! difference (a missing, shorter or longer segment, an unknown one, a
//! damaged or missing manifest) is refused, naming the file, and nothing is
//! touched.
//!
//! The undo log of a segmented image lives beside the directory, named
//! after it, and identifies it by the directory's `st_dev`/`st_ino` (the
//! manifest is replaced by each length change; the directory is not).
//! The exclusive `flock` is taken on the directory.

use super::Error;
use std::fs::{File, OpenOptions};
use std::ops::Range;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The manifest's file name inside an image directory.
pub const MANIFEST: &str = "manifest";
/// Where a new manifest is written before it replaces the old one.
const MANIFEST_TMP: &str = "manifest.tmp";
/// The manifest's first line.
const MAGIC_LINE: &str = "ebsim segmented image 1";
/// The largest segment ebsim makes.
pub const SEGMENT_MAX: u64 = 8 << 40;
/// The smallest segment size the probe settles for.
const SEGMENT_MIN: u64 = 1 << 30;
/// The most segments an image may have.
const MAX_SEGMENTS: usize = 1 << 16;
/// The longest manifest read.
const MANIFEST_MAX: u64 = 4 << 20;
/// Lengths and segment boundaries are multiples of this.
const ALIGN: u64 = 4096;

/// A segment's file name.
pub fn segment_name(i: usize) -> String {
    format!("seg-{i:05}")
}

/// The index of a segment file name (`seg-00003` → 3).
fn segment_index(name: &str) -> Option<usize> {
    let digits = name.strip_prefix("seg-")?;
    if digits.len() != 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// True when `path` is a directory holding a segmented image's manifest
/// (reached without following a link at the manifest).
pub fn is_segmented(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
        && std::fs::symlink_metadata(path.join(MANIFEST)).is_ok_and(|m| m.is_file())
}

/// The directory a conversion builds beside the image `real`.
fn conversion_dir(real: &Path) -> PathBuf {
    let mut name = real
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".ebsim-seg");
    real.with_file_name(name)
}

/// What a manifest says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The image's length.
    pub length: u64,
    /// The most bytes a new segment holds.
    pub segment_size: u64,
    /// Each segment's length, in order.
    pub segments: Vec<u64>,
}

impl Manifest {
    fn to_text(&self) -> String {
        let mut s = format!(
            "{MAGIC_LINE}\nlength {}\nsegment-size {}\n",
            self.length, self.segment_size
        );
        for (i, l) in self.segments.iter().enumerate() {
            s.push_str(&format!("{} {l}\n", segment_name(i)));
        }
        let crc = crc32c::crc32c(s.as_bytes());
        s.push_str(&format!("crc32c {crc:08x}\n"));
        s
    }

    /// Parses and checks a manifest's text; the error says what is wrong.
    fn parse(text: &[u8]) -> Result<Manifest, String> {
        let text = std::str::from_utf8(text).map_err(|_| "the manifest is not text".to_string())?;
        let body_end = text
            .trim_end_matches('\n')
            .rfind('\n')
            .map(|i| i + 1)
            .ok_or("the manifest is cut short")?;
        let (body, last) = text.split_at(body_end);
        let Some(crc) = last
            .strip_suffix('\n')
            .and_then(|l| l.strip_prefix("crc32c "))
        else {
            return Err("the manifest is cut short (no crc32c line at its end)".into());
        };
        let want = u32::from_str_radix(crc, 16).map_err(|_| format!("bad crc32c {crc:?}"))?;
        let got = crc32c::crc32c(body.as_bytes());
        if got != want {
            return Err(format!(
                "the manifest's CRC32C is {got:08x}, its last line says {want:08x}: it was \
                 changed or damaged"
            ));
        }
        let mut lines = body.lines();
        if lines.next() != Some(MAGIC_LINE) {
            return Err(format!("the first line is not {MAGIC_LINE:?}"));
        }
        let mut field = |key: &str| -> Result<u64, String> {
            let line = lines.next().unwrap_or("");
            line.strip_prefix(key)
                .and_then(|v| v.strip_prefix(' '))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| format!("expected \"{key} N\", found {line:?}"))
        };
        let length = field("length")?;
        let segment_size = field("segment-size")?;
        if segment_size == 0 || segment_size % ALIGN != 0 {
            return Err(format!(
                "segment-size {segment_size} is not a positive multiple of {ALIGN}"
            ));
        }
        let mut segments = Vec::new();
        for (i, line) in lines.enumerate() {
            let name = segment_name(i);
            let len = line
                .strip_prefix(name.as_str())
                .and_then(|v| v.strip_prefix(' '))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| format!("expected \"{name} N\", found {line:?}"))?;
            segments.push(len);
            if segments.len() > MAX_SEGMENTS {
                return Err(format!("more than {MAX_SEGMENTS} segments"));
            }
        }
        if segments.is_empty() {
            return Err("no segments".into());
        }
        let n = segments.len();
        for (i, &l) in segments.iter().enumerate() {
            if i + 1 < n && (l == 0 || l % ALIGN != 0) {
                return Err(format!(
                    "{} is {l} bytes: every segment but the last is a positive multiple of \
                     {ALIGN}",
                    segment_name(i)
                ));
            }
        }
        let sum = segments
            .iter()
            .try_fold(0u64, |a, &l| a.checked_add(l))
            .ok_or("the segments' lengths overflow")?;
        if sum != length {
            return Err(format!(
                "the segments hold {sum} bytes, the length line says {length}"
            ));
        }
        Ok(Manifest {
            length,
            segment_size,
            segments,
        })
    }

    /// The segment lengths after a change of the image's length to `len`.
    fn relaid(&self, len: u64) -> Vec<u64> {
        let mut lens = self.segments.clone();
        if len >= self.length {
            let mut extra = len - self.length;
            if let Some(last) = lens.last_mut() {
                let cap = self.segment_size.max(*last);
                let add = extra.min(cap - *last);
                *last += add;
                extra -= add;
            }
            while extra > 0 {
                let l = extra.min(self.segment_size);
                lens.push(l);
                extra -= l;
            }
            return lens;
        }
        let mut out = Vec::new();
        let mut start = 0u64;
        for l in lens {
            if start >= len && !out.is_empty() {
                break;
            }
            out.push(l.min(len.saturating_sub(start)));
            start += l;
        }
        out
    }
}

/// Called with a segment, an offset in it and the part of an access
/// that falls there.
type PieceFn<'a> = dyn FnMut(&Seg, u64, Range<usize>) -> std::io::Result<()> + 'a;

/// One segment file.
#[derive(Debug)]
struct Seg {
    start: u64,
    len: u64,
    file: File,
}

/// A segmented image, open.
#[derive(Debug)]
pub(crate) struct Segmented {
    dir: PathBuf,
    dir_file: File,
    manifest: Manifest,
    segs: Vec<Seg>,
    writable: bool,
}

fn seg_err(dir: &Path, problem: impl Into<String>) -> Error {
    Error::Segmented {
        path: dir.to_path_buf(),
        problem: problem.into(),
    }
}

/// Opens a file inside an image directory, never through a link.
fn open_in(dir: &Path, name: &str, write: bool) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(dir.join(name))
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, "fsync directory", e))
}

fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Reads and checks the manifest of the image directory `dir`.
pub fn read_manifest(dir: &Path) -> Result<Manifest, Error> {
    let f = match open_in(dir, MANIFEST, false) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(seg_err(dir, format!("{MANIFEST} is missing")));
        }
        Err(e) => return Err(Error::io(&dir.join(MANIFEST), "open", e)),
    };
    let meta = f
        .metadata()
        .map_err(|e| Error::io(&dir.join(MANIFEST), "stat", e))?;
    if !meta.is_file() {
        return Err(seg_err(dir, format!("{MANIFEST} is not a regular file")));
    }
    if meta.len() > MANIFEST_MAX {
        return Err(seg_err(
            dir,
            format!(
                "{MANIFEST} is {} bytes, more than a manifest can be",
                meta.len()
            ),
        ));
    }
    let mut text = vec![0u8; meta.len() as usize];
    f.read_exact_at(&mut text, 0)
        .map_err(|e| Error::io(&dir.join(MANIFEST), "read", e))?;
    Manifest::parse(&text).map_err(|p| seg_err(dir, format!("{MANIFEST}: {p}")))
}

/// Writes `m` as the manifest of `dir`: a temporary file, fsynced, renamed
/// over the old one, the directory fsynced.
fn write_manifest(dir: &Path, m: &Manifest) -> Result<(), Error> {
    let tmp = dir.join(MANIFEST_TMP);
    let _ = std::fs::remove_file(&tmp);
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(|e| Error::io(&tmp, "create", e))?;
    f.write_all_at(m.to_text().as_bytes(), 0)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io(&tmp, "write", e))?;
    std::fs::rename(&tmp, dir.join(MANIFEST))
        .map_err(|e| Error::io(&dir.join(MANIFEST), "replace", e))?;
    sync_dir(dir)
}

/// The largest power of two from [`SEGMENT_MAX`] down that a file in `dir`
/// may be long (probed with a scratch file `name`, removed after).
fn probe_segment_size(dir: &Path, name: &str) -> Result<u64, Error> {
    let p = dir.join(name);
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&p)
        .map_err(|e| Error::io(&p, "create", e))?;
    let mut size = SEGMENT_MAX;
    let r = loop {
        match f.set_len(size) {
            Ok(()) => break Ok(size),
            Err(e) if e.raw_os_error() == Some(nix::libc::EFBIG) && size > SEGMENT_MIN => {
                size /= 2;
            }
            Err(e) => break Err(Error::io(&p, format!("set length {size}"), e)),
        }
    };
    drop(f);
    let _ = std::fs::remove_file(&p);
    r
}

/// Whether a file in `dir` may be `len` bytes long (probed with a scratch
/// file beside the image, removed after).
pub(crate) fn host_takes(real: &Path, len: u64) -> Result<bool, Error> {
    let mut name = real
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".ebsim-probe");
    let p = real.with_file_name(name);
    let _ = std::fs::remove_file(&p);
    let Ok(f) = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&p)
    else {
        // No scratch file here (a directory the user may not write): the
        // image's own length change will tell.
        return Ok(true);
    };
    let r = match f.set_len(len) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(nix::libc::EFBIG) => Ok(false),
        Err(e) => Err(Error::io(&p, format!("set length {len}"), e)),
    };
    drop(f);
    let _ = std::fs::remove_file(&p);
    r
}

/// Creates a new segmented image of `len` bytes (all holes) at `dir`,
/// which must not exist. `segment_size`: the most bytes a segment holds
/// (`None`: probe the host from [`SEGMENT_MAX`] down).
pub(crate) fn create(dir: &Path, len: u64, segment_size: Option<u64>) -> Result<(), Error> {
    if let Some(s) = segment_size
        && (s == 0 || s % ALIGN != 0)
    {
        return Err(seg_err(
            dir,
            format!("segment size {s} is not a positive multiple of {ALIGN}"),
        ));
    }
    std::fs::create_dir(dir).map_err(|e| Error::io(dir, "create directory", e))?;
    let r = (|| {
        let segment_size = match segment_size {
            Some(s) => s,
            None => probe_segment_size(dir, &segment_name(0))?,
        };
        let empty = Manifest {
            length: 0,
            segment_size,
            segments: vec![0],
        };
        let lens = empty.relaid(len);
        if lens.len() > MAX_SEGMENTS {
            return Err(seg_err(
                dir,
                format!("{len} bytes need more than {MAX_SEGMENTS} segments"),
            ));
        }
        for (i, &l) in lens.iter().enumerate() {
            let p = dir.join(segment_name(i));
            let f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(&p)
                .map_err(|e| Error::io(&p, "create", e))?;
            f.set_len(l)
                .and_then(|()| f.sync_all())
                .map_err(|e| Error::io(&p, format!("set length {l}"), e))?;
        }
        write_manifest(
            dir,
            &Manifest {
                length: len,
                segment_size,
                segments: lens,
            },
        )?;
        sync_dir(&parent_of(dir))
    })();
    if r.is_err() {
        let _ = remove(dir);
    }
    r
}

/// Converts the raw image file `real` (open as `file`, `len` bytes, under
/// the caller's lock) into a segmented image at the same path whose first
/// segment is that file. Crash safe: see [`settle`].
pub(crate) fn convert(real: &Path, file: &File, len: u64) -> Result<(), Error> {
    if len % ALIGN != 0 {
        return Err(seg_err(
            real,
            format!(
                "the image is {len} bytes, not a multiple of {ALIGN}: it cannot become the \
                 first segment of a segmented image"
            ),
        ));
    }
    let tmp = conversion_dir(real);
    settle_stale(&tmp)?;
    std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, "create directory", e))?;
    let built = (|| {
        let segment_size = probe_segment_size(&tmp, "probe")?;
        write_manifest(
            &tmp,
            &Manifest {
                length: len,
                segment_size,
                segments: vec![len],
            },
        )?;
        file.sync_all().map_err(|e| Error::io(real, "fsync", e))?;
        sync_dir(&parent_of(real))
    })();
    if let Err(e) = built {
        let _ = remove(&tmp);
        return Err(e);
    }
    let seg0 = tmp.join(segment_name(0));
    std::fs::rename(real, &seg0).map_err(|e| Error::io(real, "move into a segmented image", e))?;
    sync_dir(&tmp)?;
    sync_dir(&parent_of(real))?;
    std::fs::rename(&tmp, real)
        .map_err(|e| Error::io(real, "put the segmented image in place", e))?;
    sync_dir(&parent_of(real))
}

/// Removes a conversion directory that never received its segment.
fn settle_stale(tmp: &Path) -> Result<(), Error> {
    if !std::fs::symlink_metadata(tmp).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    if std::fs::symlink_metadata(tmp.join(segment_name(0))).is_ok() {
        return Err(seg_err(
            tmp,
            "an interrupted conversion left the image's bytes here while another file has \
             the image's name; move one of them away",
        ));
    }
    for name in [MANIFEST, MANIFEST_TMP, "probe"] {
        let _ = std::fs::remove_file(tmp.join(name));
    }
    std::fs::remove_dir(tmp).map_err(|e| Error::io(tmp, "remove", e))
}

/// Finishes or forgets a conversion a crash cut short, for the image at
/// `path`: a conversion directory holding the image's first segment and a
/// valid manifest while nothing has the image's name is put in place; one
/// without its segment is removed.
pub fn settle(path: &Path) -> Result<(), Error> {
    let real = super::undo::real_path(path);
    let tmp = conversion_dir(&real);
    if !std::fs::symlink_metadata(&tmp).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    let image_there = std::fs::symlink_metadata(&real).is_ok();
    let has_seg = std::fs::symlink_metadata(tmp.join(segment_name(0))).is_ok_and(|m| m.is_file());
    if image_there || !has_seg {
        return settle_stale(&tmp);
    }
    read_manifest(&tmp)?;
    std::fs::rename(&tmp, &real).map_err(|e| Error::io(&real, "finish conversion", e))?;
    sync_dir(&parent_of(&real))
}

/// Removes a segmented image: its segments, its manifest, its directory
/// (which must then be empty; nothing else in it is removed).
pub fn remove(dir: &Path) -> Result<(), Error> {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let ours = segment_index(&name).is_some()
                || name == MANIFEST
                || name == MANIFEST_TMP
                || name == "probe";
            if ours && !e.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    std::fs::remove_dir(dir).map_err(|e| Error::io(dir, "remove", e))
}

/// The first data extent at or after a position, as `SEEK_DATA` and
/// `SEEK_HOLE` report it.
pub(crate) enum Seek {
    Data(Range<u64>),
    NoMore,
    Unsupported,
}

/// The first data extent of `file` at or after `pos`.
pub(crate) fn seek_file(file: &File, path: &Path, pos: u64) -> Result<Seek, Error> {
    use nix::unistd::{Whence, lseek};
    let Ok(ipos) = i64::try_from(pos) else {
        return Ok(Seek::NoMore);
    };
    let data = match lseek(file, ipos, Whence::SeekData) {
        Ok(d) => d,
        Err(nix::errno::Errno::ENXIO) => return Ok(Seek::NoMore),
        Err(nix::errno::Errno::EINVAL) => return Ok(Seek::Unsupported),
        Err(e) => return Err(Error::io(path, "seek data", e.into())),
    };
    let hole =
        lseek(file, data, Whence::SeekHole).map_err(|e| Error::io(path, "seek hole", e.into()))?;
    Ok(Seek::Data(data as u64..hole as u64))
}

impl Segmented {
    /// Opens the segmented image at `dir` (its directory open as
    /// `dir_file`, locked by the caller when `writable`). `repair`: an undo
    /// log is about to be replayed, so segment files an interrupted length
    /// change left longer than the manifest says, or beyond its count, are
    /// trimmed; otherwise they are refused.
    pub(crate) fn open(
        dir: &Path,
        dir_file: File,
        writable: bool,
        repair: bool,
    ) -> Result<Segmented, Error> {
        let manifest = read_manifest(dir)?;
        let n = manifest.segments.len();
        // Files past the manifest's count.
        let mut extra: Vec<usize> = Vec::new();
        let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, "read directory", e))?;
        for e in rd {
            let e = e.map_err(|e| Error::io(dir, "read directory", e))?;
            if let Some(i) = e.file_name().to_str().and_then(segment_index)
                && i >= n
            {
                extra.push(i);
            }
        }
        extra.sort_unstable();
        if let Some(&i) = extra.first()
            && !repair
        {
            return Err(seg_err(
                dir,
                format!(
                    "{} is not in the manifest, which lists {n} segment{}",
                    segment_name(i),
                    if n == 1 { "" } else { "s" }
                ),
            ));
        }
        let mut segs = Vec::with_capacity(n);
        let mut start = 0u64;
        for (i, &len) in manifest.segments.iter().enumerate() {
            let name = segment_name(i);
            let path = dir.join(&name);
            let file = match open_in(dir, &name, writable) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(seg_err(
                        dir,
                        format!("{name} is missing (the manifest lists it with {len} bytes)"),
                    ));
                }
                Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
                    return Err(seg_err(dir, format!("{name} is a symbolic link")));
                }
                Err(e) => return Err(Error::io(&path, "open", e)),
            };
            let meta = file.metadata().map_err(|e| Error::io(&path, "stat", e))?;
            if !meta.is_file() {
                return Err(seg_err(dir, format!("{name} is not a regular file")));
            }
            let have = meta.len();
            if have != len && !(repair && have > len) {
                return Err(seg_err(
                    dir,
                    format!("{name} is {have} bytes, the manifest says {len}"),
                ));
            }
            segs.push(Seg { start, len, file });
            start += len;
        }
        if repair {
            for s in &segs {
                let have = s.file.metadata().map(|m| m.len()).unwrap_or(s.len);
                if have > s.len {
                    s.file
                        .set_len(s.len)
                        .map_err(|e| Error::io(dir, "trim a segment to the manifest", e))?;
                }
            }
            for &i in &extra {
                let p = dir.join(segment_name(i));
                if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file()) {
                    std::fs::remove_file(&p).map_err(|e| Error::io(&p, "remove", e))?;
                }
            }
            let _ = std::fs::remove_file(dir.join(MANIFEST_TMP));
            sync_dir(dir)?;
        }
        Ok(Segmented {
            dir: dir.to_path_buf(),
            dir_file,
            manifest,
            segs,
            writable,
        })
    }

    /// The image's length.
    pub(crate) fn len(&self) -> u64 {
        self.manifest.length
    }

    /// What the manifest says.
    pub(crate) fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The image directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory, for its identity and lock.
    pub(crate) fn dir_file(&self) -> &File {
        &self.dir_file
    }

    /// Calls `f(segment, offset in it, range of the access)` for each piece
    /// of `offset..offset+len`.
    fn pieces(&self, offset: u64, len: usize, f: &mut PieceFn<'_>) -> std::io::Result<()> {
        let mut done = 0usize;
        let mut i = self.segs.partition_point(|s| s.start + s.len <= offset);
        while done < len {
            let pos = offset + done as u64;
            let Some(s) = self.segs.get(i) else {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
            };
            let local = pos - s.start;
            let n = ((s.len - local) as usize).min(len - done);
            if n == 0 {
                i += 1;
                continue;
            }
            f(s, local, done..done + n)?;
            done += n;
            i += 1;
        }
        Ok(())
    }

    pub(crate) fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let len = buf.len();
        self.pieces(offset, len, &mut |s, local, r| {
            s.file.read_exact_at(&mut buf[r], local)
        })
    }

    pub(crate) fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        if !self.writable {
            return Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        }
        self.pieces(offset, buf.len(), &mut |s, local, r| {
            s.file.write_all_at(&buf[r], local)
        })
    }

    /// Punches `offset..offset+len` (inside the image) in every segment it
    /// covers.
    pub(crate) fn punch(&self, offset: u64, len: u64) -> std::io::Result<()> {
        use nix::fcntl::{FallocateFlags, fallocate};
        let flags = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
        let end = offset.saturating_add(len).min(self.len());
        let first = self.segs.partition_point(|s| s.start + s.len <= offset);
        for s in self.segs[first..].iter().take_while(|s| s.start < end) {
            let a = offset.max(s.start) - s.start;
            let b = end.min(s.start + s.len) - s.start;
            if a >= b {
                continue;
            }
            let (Ok(a), Ok(n)) = (i64::try_from(a), i64::try_from(b - a)) else {
                return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
            };
            fallocate(&s.file, flags, a, n)?;
        }
        Ok(())
    }

    pub(crate) fn sync_all(&self) -> std::io::Result<()> {
        for s in &self.segs {
            s.file.sync_all()?;
        }
        self.dir_file.sync_all()
    }

    /// The first data extent at or after `pos` (cut at its segment's end).
    pub(crate) fn seek(&self, pos: u64) -> Result<Seek, Error> {
        let mut i = self.segs.partition_point(|s| s.start + s.len <= pos);
        while let Some(s) = self.segs.get(i) {
            let local = pos.saturating_sub(s.start);
            let path = self.dir.join(segment_name(i));
            match seek_file(&s.file, &path, local)? {
                Seek::Data(d) => {
                    let e = d.end.min(s.len);
                    if d.start < e {
                        return Ok(Seek::Data(s.start + d.start..s.start + e));
                    }
                }
                Seek::Unsupported => return Ok(Seek::Unsupported),
                Seek::NoMore => {}
            }
            i += 1;
        }
        Ok(Seek::NoMore)
    }

    /// Storage the image occupies: every segment's and the manifest's
    /// `st_blocks` × 512.
    pub(crate) fn allocated(&self) -> std::io::Result<u64> {
        let mut total = std::fs::symlink_metadata(self.dir.join(MANIFEST))?
            .blocks()
            .saturating_mul(512);
        for s in &self.segs {
            total = total.saturating_add(s.file.metadata()?.blocks().saturating_mul(512));
        }
        Ok(total)
    }

    /// Changes the image's length: growing lengthens the last segment and
    /// adds new ones, then replaces the manifest; shrinking replaces the
    /// manifest, then cuts and removes segments. `step` is called before
    /// each change of a file (the fault-injection hook). After a failure
    /// the image is read again as its manifest says.
    pub(crate) fn set_len(
        &mut self,
        len: u64,
        step: &mut dyn FnMut() -> Result<(), Error>,
    ) -> Result<(), Error> {
        if len == self.len() {
            return Ok(());
        }
        let r = self.set_len_steps(len, step);
        if r.is_err() {
            // What is on disk rules; an undo log, if any, was written by
            // the caller and will find it.
            if let Ok(f) = self.dir_file.try_clone()
                && let Ok(again) = Segmented::open(&self.dir, f, self.writable, true)
            {
                *self = again;
            }
        }
        r
    }

    fn set_len_steps(
        &mut self,
        len: u64,
        step: &mut dyn FnMut() -> Result<(), Error>,
    ) -> Result<(), Error> {
        let lens = self.manifest.relaid(len);
        if lens.len() > MAX_SEGMENTS {
            return Err(seg_err(
                &self.dir,
                format!("{len} bytes need more than {MAX_SEGMENTS} segments"),
            ));
        }
        let next = Manifest {
            length: len,
            segment_size: self.manifest.segment_size,
            segments: lens.clone(),
        };
        let dir = self.dir.clone();
        let io = |i: usize, op: &str, e: std::io::Error| {
            Error::io(&dir.join(segment_name(i)), op.to_string(), e)
        };
        if len > self.len() {
            let mut start = 0u64;
            let mut created = false;
            for (i, &l) in lens.iter().enumerate() {
                if let Some(s) = self.segs.get_mut(i) {
                    if s.len != l {
                        step()?;
                        s.file
                            .set_len(l)
                            .map_err(|e| io(i, &format!("set length {l}"), e))?;
                        s.len = l;
                    }
                } else {
                    step()?;
                    let p = self.dir.join(segment_name(i));
                    let file = OpenOptions::new()
                        .read(true)
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .custom_flags(nix::libc::O_NOFOLLOW)
                        .open(&p)
                        .map_err(|e| io(i, "create", e))?;
                    file.set_len(l)
                        .map_err(|e| io(i, &format!("set length {l}"), e))?;
                    self.segs.push(Seg {
                        start,
                        len: l,
                        file,
                    });
                    created = true;
                }
                start += l;
            }
            for s in &self.segs {
                s.file
                    .sync_all()
                    .map_err(|e| Error::io(&self.dir, "fsync", e))?;
            }
            if created {
                sync_dir(&self.dir)?;
            }
            step()?;
            write_manifest(&self.dir, &next)?;
        } else {
            step()?;
            write_manifest(&self.dir, &next)?;
            while self.segs.len() > lens.len() {
                step()?;
                let i = self.segs.len() - 1;
                self.segs.pop();
                let p = self.dir.join(segment_name(i));
                std::fs::remove_file(&p).map_err(|e| io(i, "remove", e))?;
            }
            let i = lens.len() - 1;
            if let (Some(s), Some(&l)) = (self.segs.get_mut(i), lens.last())
                && s.len != l
            {
                step()?;
                s.file
                    .set_len(l)
                    .map_err(|e| io(i, &format!("set length {l}"), e))?;
                s.len = l;
            }
            sync_dir(&self.dir)?;
        }
        self.manifest = next;
        Ok(())
    }
}

/// What a user is told about where an image's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// One raw file.
    File {
        /// Its length.
        length: u64,
        /// Bytes it occupies on the host.
        allocated: u64,
    },
    /// A directory of segment files.
    Segmented {
        /// The manifest.
        manifest: Manifest,
        /// Bytes they occupy on the host.
        allocated: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_and_is_checked() {
        let m = Manifest {
            length: (8 << 40) * 2 + (4 << 40),
            segment_size: 8 << 40,
            segments: vec![8 << 40, 8 << 40, 4 << 40],
        };
        let t = m.to_text();
        assert_eq!(Manifest::parse(t.as_bytes()).unwrap(), m);
        assert!(t.starts_with("ebsim segmented image 1\nlength 21990232555520\n"));
        // Any change of a byte is caught.
        let bad = t.replace("seg-00002 4398046511104", "seg-00002 4398046511105");
        assert!(
            Manifest::parse(bad.as_bytes())
                .unwrap_err()
                .contains("CRC32C")
        );
        // Cut short.
        let cut = &t[..t.len() - 20];
        assert!(
            Manifest::parse(cut.as_bytes())
                .unwrap_err()
                .contains("cut short")
        );
        assert!(Manifest::parse(b"").is_err());
    }

    #[test]
    fn relaying_grows_the_last_segment_then_adds() {
        let m = Manifest {
            length: 10,
            segment_size: 8,
            segments: vec![8, 2],
        };
        assert_eq!(m.relaid(30), vec![8, 8, 8, 6]);
        assert_eq!(m.relaid(10), vec![8, 2]);
        assert_eq!(m.relaid(8), vec![8]);
        assert_eq!(m.relaid(3), vec![3]);
        assert_eq!(m.relaid(0), vec![0]);
        // A converted first segment longer than the segment size stays.
        let c = Manifest {
            length: 20,
            segment_size: 8,
            segments: vec![20],
        };
        assert_eq!(c.relaid(30), vec![20, 8, 2]);
    }
}
