//! The state store: `EBSIM_HOME/state.json`, one versioned JSON document,
//! and the layout of the files beside it.
//!
//! ```text
//! state.json                         the document
//! state.lock                         the lock (never replaced)
//! volumes/<vol-id>.img               a volume's image (+ .ebsim-undo while a write is in flight)
//! snapshots/<snap-id>.manifest       a snapshot's chunk list
//! snapshots/chunks/<ab>/<ab...>      a chunk, named by the SHA-256 of its bytes
//! staging/<txid>/...                 files a transaction is making (see sweep.rs)
//! ```
//!
//! Every path is derived from a resource id, and ids are checked against
//! their pattern (`vol-` and 8 or 17 hex digits, ...) when the document is
//! read: nothing in the document names a file, so no field can point
//! outside EBSIM_HOME. A volume image is opened without following a
//! symbolic link and only when it is a regular file (a FIFO is refused, not
//! waited on).
//!
//! Every command runs as one transaction: take the exclusive lock (`flock`
//! on `state.lock`), read the document, change it in memory, and, if
//! anything changed, write it to a temporary file, fsync it, rename it over
//! `state.json` and fsync the directory, all before letting go of the lock.
//! A process killed at any point therefore leaves either the old or the new
//! document, and two processes never interleave (none loses another's
//! update).
//!
//! A read-only EBSIM_HOME (a read-only mount, or no write permission) is
//! read under a shared lock instead: the clock's due transitions are
//! applied in memory only (what describe shows is what the next writable
//! transaction will save), and any change is refused with
//! [`Error::ReadOnlyHome`].
//!
//! The document carries `"format": "ebsim-state"` and a version. Version 2
//! is written; version 1 (which also kept each volume's image path) is read
//! by dropping that path, and its first writable transaction sweeps every
//! chunk no manifest names (older versions could leak them) before writing
//! it as version 2. Any other version, and any field this build does
//! not know, is refused with the version or the field named, and the
//! document is left untouched: nothing is silently dropped or rewritten.
//! A missing document is created only when the directory holds no ebsim
//! data yet; a damaged one is reported and never overwritten.
//!
//! Test hooks: `EBSIM_STATE_FAULT=N` makes the next state write stop after N
//! bytes of the temporary file, and `EBSIM_PUBLISH_FAULT=N` the publish of
//! staged files after a commit stop after N renames, as if the process died
//! there.

use super::clock::{ClockMode, real_now_ms};
use super::error::{Error, Result};
use super::ids;
use super::model::{STATE_FORMAT, STATE_VERSION, STATE_VERSION_OLDEST, State};
use super::time::Millis;
use crate::blockdev::image::{Access, ImageFile};
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The environment variable naming the state directory.
pub const HOME_ENV: &str = "EBSIM_HOME";
/// The fault-injection hook of the state writer.
pub const STATE_FAULT_ENV: &str = "EBSIM_STATE_FAULT";
/// The fault-injection hook of the publish after a commit.
pub const PUBLISH_FAULT_ENV: &str = "EBSIM_PUBLISH_FAULT";

/// `EBSIM_PUBLISH_FAULT=N`: the publish after the next commit stops after N
/// renames, as if the process died there.
pub(crate) fn publish_fault() -> Option<usize> {
    std::env::var(PUBLISH_FAULT_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
}

/// The state directory and the files in it.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// The state directory from the settings the caller read:
    /// `EBSIM_HOME`, else `$XDG_DATA_HOME/ebsim`, else
    /// `$HOME/.local/share/ebsim` (empty values count as unset).
    pub fn from_settings(
        ebsim_home: Option<std::ffi::OsString>,
        xdg_data_home: Option<std::ffi::OsString>,
        home: Option<std::ffi::OsString>,
    ) -> Result<Home> {
        let set = |v: Option<std::ffi::OsString>| v.filter(|v| !v.is_empty());
        if let Some(h) = set(ebsim_home) {
            return Ok(Home::at(PathBuf::from(h)));
        }
        if let Some(x) = set(xdg_data_home) {
            return Ok(Home::at(PathBuf::from(x).join("ebsim")));
        }
        match set(home) {
            Some(h) => Ok(Home::at(PathBuf::from(h).join(".local/share/ebsim"))),
            None => Err(Error::NoHome),
        }
    }

    /// A home at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Home {
        Home { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `state.json`.
    pub fn state_path(&self) -> PathBuf {
        self.root.join("state.json")
    }

    /// `state.lock`.
    pub fn lock_path(&self) -> PathBuf {
        self.root.join("state.lock")
    }

    /// Where volume images live.
    pub fn volumes_dir(&self) -> PathBuf {
        self.root.join("volumes")
    }

    /// Where snapshot manifests and chunks live.
    pub fn snapshots_dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    /// Where transactions make their files before the state names them.
    pub fn staging_dir(&self) -> PathBuf {
        self.root.join("staging")
    }

    /// The image of volume `id`: `volumes/<id>.img`. The id must be well
    /// formed (every id in a state document that was read is).
    pub fn volume_image(&self, id: &str) -> PathBuf {
        self.volumes_dir().join(format!("{}.img", safe_name(id)))
    }

    fn ensure_dirs(&self) -> std::io::Result<()> {
        for d in [self.root.clone(), self.volumes_dir(), self.snapshots_dir()] {
            std::fs::create_dir_all(&d)?;
        }
        Ok(())
    }
}

/// An id as a file name: ids are checked when the state is read, so this
/// only guards against a caller passing something else (a path separator
/// or a dot-dot could otherwise leave the directory).
pub(crate) fn safe_name(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Opens a volume image the safe way: never through a symbolic link, only
/// a regular file (or a segmented image's directory, for a volume larger
/// than the host lets a file be), and without blocking on a FIFO (the
/// check opens with `O_NOFOLLOW | O_NONBLOCK` and looks at the file type
/// before the image layer opens it).
pub fn open_volume_image(
    path: &Path,
    access: Access,
) -> std::result::Result<ImageFile, crate::blockdev::Error> {
    check_volume_image(path)?;
    ImageFile::open(path, access)
}

/// Fails unless `path` is a regular file, or a segmented image's directory,
/// reached without a symbolic link.
pub fn check_volume_image(path: &Path) -> std::result::Result<(), crate::blockdev::Error> {
    crate::blockdev::segmented::settle(path)?;
    let refuse = |what: String| {
        crate::blockdev::Error::io(
            path,
            "open",
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "{what}: ebsim opens a volume image only as a regular file, never through a link"
                ),
            ),
        )
    };
    let f = match OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(refuse("is a symbolic link".to_string()));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(crate::blockdev::Error::NotFound(path.to_path_buf()));
        }
        Err(e) => return Err(crate::blockdev::Error::io(path, "open", e)),
    };
    let meta = f
        .metadata()
        .map_err(|e| crate::blockdev::Error::io(path, "stat", e))?;
    let ft = meta.file_type();
    if ft.is_file() || (ft.is_dir() && crate::blockdev::segmented::is_segmented(path)) {
        return Ok(());
    }
    let what = if ft.is_dir() {
        "is a directory"
    } else if ft.is_fifo() {
        "is a FIFO"
    } else if ft.is_socket() {
        "is a socket"
    } else if ft.is_block_device() {
        "is a block device"
    } else if ft.is_char_device() {
        "is a character device"
    } else {
        "is not a regular file"
    };
    Err(refuse(what.to_string()))
}

/// A hold on the state, released when dropped: exclusive, or shared on a
/// read-only home.
pub struct Locked {
    home: Home,
    lock: Option<Flock<File>>,
    /// The document as read.
    pub state: State,
    /// The virtual now of this transaction.
    pub now: Millis,
    mode: ClockMode,
    real_ms: i64,
    read_only: Option<String>,
    /// The `publish` field of the document on disk (as read, then as
    /// last written): the one in memory is cleared once published.
    file_publish: Option<String>,
    /// Whether the document was taken from this process's cache (its own
    /// last commit, the file unchanged since) rather than read.
    from_cache: bool,
}

/// What identifies one version of `state.json` without reading it: the
/// device, inode and birth time (every write makes a new file and renames
/// it over the old one, so a new version is a new file; an inode number
/// freed by an older version and reused gets a new birth time), its size,
/// and its modification and change times in nanoseconds (a change in place
/// moves both, and nothing can set the change time back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    btime: Option<std::time::SystemTime>,
}

impl Fingerprint {
    /// The fingerprint of the file at `path` (None when it cannot be
    /// stat'ed: then nothing is taken from a cache).
    pub fn of(path: &Path) -> Option<Fingerprint> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(path).ok()?;
        if !m.file_type().is_file() {
            return None;
        }
        Some(Fingerprint {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
            btime: m.created().ok(),
        })
    }
}

/// A parsed document kept by a long-running process between
/// transactions, with the fingerprint of the file it equals: the next
/// transaction takes it instead of reading the file when the fingerprint
/// still matches under the lock (see [`Locked::acquire_cached`]).
pub struct Cached {
    fp: Fingerprint,
    state: State,
}

/// Whether an error means "this file system or directory cannot be
/// written".
fn is_read_only(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(nix::libc::EROFS) | Some(nix::libc::EACCES) | Some(nix::libc::EPERM)
    )
}

impl Locked {
    /// Takes the lock and reads the document (creating an empty one in a
    /// new home). A home that cannot be written is read under a shared
    /// lock (see the module documentation).
    pub fn acquire(home: &Home, mode: ClockMode) -> Result<Locked> {
        Locked::acquire_cached(home, mode, None)
    }

    /// [`Locked::acquire`], taking the document from `cache` instead of
    /// reading it when the file is, by its [`Fingerprint`], still the one
    /// the cache was made from (checked under the lock; a read-only home
    /// never uses it).
    pub fn acquire_cached(home: &Home, mode: ClockMode, cache: Option<Cached>) -> Result<Locked> {
        let lock_path = home.lock_path();
        let writable = home.ensure_dirs().and_then(|()| {
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
        });
        let (lock, read_only) = match writable {
            Ok(f) => {
                let l = Flock::lock(f, FlockArg::LockExclusive)
                    .map_err(|(_, errno)| Error::io(&lock_path, "flock", errno.into()))?;
                (Some(l), None)
            }
            Err(e) if is_read_only(&e) => {
                // Readers still wait for a writer that works through
                // another mount of the same directory.
                let l = match File::open(&lock_path) {
                    Ok(f) => Some(
                        Flock::lock(f, FlockArg::LockShared)
                            .map_err(|(_, errno)| Error::io(&lock_path, "flock", errno.into()))?,
                    ),
                    Err(_) => None,
                };
                (l, Some(e.to_string()))
            }
            Err(e) => return Err(Error::io(home.root(), "prepare", e)),
        };
        let real_ms = real_now_ms();
        let cached = match cache {
            Some(c) if read_only.is_none() && Fingerprint::of(&home.state_path()) == Some(c.fp) => {
                Some(c.state)
            }
            _ => None,
        };
        let from_cache = cached.is_some();
        let state = match cached {
            Some(s) => s,
            None => match read_state(home)? {
                Some(s) => s,
                None if read_only.is_some() => State::new(real_ms),
                None => {
                    // A new home: write the empty document now, so that from
                    // here on a missing state.json always means a lost one.
                    let s = State::new(real_ms);
                    write_state(home, &s)?;
                    s
                }
            },
        };
        let now = state.clock.now(mode, real_ms);
        Ok(Locked {
            home: home.clone(),
            lock,
            state,
            now,
            mode,
            real_ms,
            read_only,
            file_publish: None,
            from_cache,
        })
        .map(|mut l| {
            l.file_publish = l.state.publish.clone();
            l
        })
    }

    /// Gives the document back as a [`Cached`] for the next transaction,
    /// once this one is over: the state in memory equals the file's (it
    /// was read or written whole, and every change since marked the
    /// transaction dirty and was saved). Taken while the lock is still
    /// held, so the fingerprint is the committed file's. None on a
    /// read-only home.
    pub fn into_cache(mut self) -> Option<Cached> {
        if self.read_only.is_some() {
            return None;
        }
        let fp = Fingerprint::of(&self.home.state_path())?;
        let mut state = std::mem::replace(&mut self.state, State::new(0));
        state.publish = self.file_publish.take();
        state.upgraded = false;
        drop(self.lock.take());
        Some(Cached { fp, state })
    }

    /// The home.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// Whether the document is this process's own last commit, kept in
    /// memory (no other process wrote since, and this one is alive, so no
    /// crash came in between).
    pub fn from_cache(&self) -> bool {
        self.from_cache
    }

    /// The clock mode of this process.
    pub fn mode(&self) -> ClockMode {
        self.mode
    }

    /// Why the home cannot be written, when it cannot.
    pub fn read_only(&self) -> Option<&str> {
        self.read_only.as_deref()
    }

    /// The error for a change on a read-only home.
    pub fn read_only_error(&self) -> Option<Error> {
        self.read_only.as_ref().map(|r| Error::ReadOnlyHome {
            home: self.home.root().to_path_buf(),
            reason: r.clone(),
        })
    }

    /// Moves the virtual clock forward by `ms` (manual advance, waiters).
    pub fn advance(&mut self, ms: i64) {
        self.now = self.now.plus(ms.max(0));
    }

    /// Sets the virtual now (the clock reset).
    pub fn set_now(&mut self, now: Millis) {
        self.now = now;
    }

    /// The real time this transaction started at.
    pub fn real_ms(&self) -> i64 {
        self.real_ms
    }

    /// Reads the document again, dropping changes made in memory.
    pub fn reload(&mut self) -> Result<()> {
        self.state = match read_state(&self.home)? {
            Some(s) => s,
            None => State::new(self.real_ms),
        };
        self.file_publish = self.state.publish.clone();
        Ok(())
    }

    /// Writes the document: re-anchors the clock at this transaction's now,
    /// bumps the generation, then temp file + fsync + rename + fsync dir.
    pub fn save(&mut self) -> Result<()> {
        if let Some(e) = self.read_only_error() {
            return Err(e);
        }
        self.state.clock.virtual_ms = self.now;
        self.state.clock.real_ms = self.real_ms;
        self.state.generation = self.state.generation.wrapping_add(1);
        self.state.format = STATE_FORMAT.to_string();
        self.state.version = STATE_VERSION;
        write_state(&self.home, &self.state)?;
        self.file_publish = self.state.publish.clone();
        Ok(())
    }
}

/// Reads `state.json`: `Ok(None)` for a fresh home, an error for a missing
/// document in a home holding data, for a damaged one, for a version this
/// build does not read, and for a field it does not know.
pub fn read_state(home: &Home) -> Result<Option<State>> {
    let path = home.state_path();
    let raw = match std::fs::read(&path) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if holds_data(home) {
                return Err(Error::StateMissing {
                    path,
                    home: home.root().to_path_buf(),
                });
            }
            return Ok(None);
        }
        Err(e) => return Err(Error::io(&path, "read", e)),
    };
    parse_state(&path, &raw).map(Some)
}

/// Parses and checks a state document (see [`read_state`]).
pub fn parse_state(path: &Path, raw: &[u8]) -> Result<State> {
    let damaged = |reason: String| Error::StateDamaged {
        path: path.to_path_buf(),
        reason,
    };
    // The header first (format and version; serde skips the rest without
    // building it), so an unknown or newer document is named as such
    // rather than reported as a field error.
    #[derive(serde::Deserialize)]
    struct Header {
        format: Option<String>,
        version: Option<u64>,
    }
    let header: Header =
        serde_json::from_slice(raw).map_err(|e| damaged(format!("not valid JSON: {e}")))?;
    if header.format.as_deref() != Some(STATE_FORMAT) {
        return Err(damaged(format!("no \"format\": \"{STATE_FORMAT}\" field")));
    }
    let Some(version) = header.version else {
        return Err(damaged("no \"version\" field".to_string()));
    };
    if version > STATE_VERSION {
        return Err(Error::StateVersion {
            path: path.to_path_buf(),
            found: version,
            supported: STATE_VERSION,
        });
    }
    if version < STATE_VERSION_OLDEST {
        return Err(Error::StateVersionUnknown {
            path: path.to_path_buf(),
            found: version,
            oldest: STATE_VERSION_OLDEST,
            supported: STATE_VERSION,
        });
    }
    let unknown = |e: serde_json::Error| {
        let msg = e.to_string();
        if msg.starts_with("unknown field") {
            damaged(format!(
                "{msg}: a field this ebsim does not know (written by a newer ebsim, or edited by hand); nothing is dropped silently"
            ))
        } else {
            damaged(msg)
        }
    };
    let state: State = if version == STATE_VERSION {
        serde_json::from_slice(raw).map_err(unknown)?
    } else {
        // Version 1: each volume also named its image file. The name is
        // derived from the id now, so the field is dropped (whatever it
        // says, it is never used).
        let mut v: serde_json::Value = serde_json::from_slice(raw).map_err(unknown)?;
        if let Some(vols) = v.get_mut("volumes").and_then(|x| x.as_object_mut()) {
            for vol in vols.values_mut() {
                if let Some(o) = vol.as_object_mut() {
                    o.remove("image");
                }
            }
        }
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "version".to_string(),
                serde_json::Value::from(STATE_VERSION),
            );
        }
        let mut s: State = serde_json::from_value(v).map_err(unknown)?;
        s.upgraded = true;
        s
    };
    check_ids(&state).map_err(damaged)?;
    Ok(state)
}

/// Every resource id is well formed and matches its key: paths are made
/// from them.
fn check_ids(s: &State) -> std::result::Result<(), String> {
    fn each<T>(
        map: &std::collections::BTreeMap<String, T>,
        prefix: &str,
        what: &str,
        id_of: impl Fn(&T) -> &str,
    ) -> std::result::Result<(), String> {
        for (k, v) in map {
            if !ids::well_formed(k, prefix) {
                return Err(format!("{what} key {k:?} is not a {prefix}- id"));
            }
            if id_of(v) != k {
                return Err(format!("{what} {k} has id {:?}", id_of(v)));
            }
        }
        Ok(())
    }
    each(&s.volumes, "vol", "volume", |v| &v.id)?;
    each(&s.snapshots, "snap", "snapshot", |v| &v.id)?;
    each(&s.instances, "i", "instance", |v| &v.id)?;
    each(&s.images, "ami", "image", |v| &v.id)?;
    if let Some(p) = &s.publish {
        if p.is_empty() || !p.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("publish {p:?} is not a staging id"));
        }
    }
    Ok(())
}

/// True when the home holds volumes or snapshots.
fn holds_data(home: &Home) -> bool {
    let non_empty = |d: PathBuf| {
        std::fs::read_dir(d)
            .map(|mut it| it.next().is_some())
            .unwrap_or(false)
    };
    non_empty(home.volumes_dir()) || non_empty(home.snapshots_dir())
}

fn write_state(home: &Home, state: &State) -> Result<()> {
    let path = home.state_path();
    let bytes = serde_json::to_vec(state).map_err(|e| Error::StateDamaged {
        path: path.clone(),
        reason: format!("cannot serialise: {e}"),
    })?;
    let tmp = home
        .root()
        .join(format!("state.json.tmp.{}", std::process::id()));
    let fault: Option<usize> = std::env::var(STATE_FAULT_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok());
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| Error::io(&tmp, "create", e))?;
        if let Some(n) = fault {
            let n = n.min(bytes.len());
            f.write_all(&bytes[..n])
                .map_err(|e| Error::io(&tmp, "write", e))?;
            return Err(Error::InjectedFault(n));
        }
        f.write_all(&bytes)
            .map_err(|e| Error::io(&tmp, "write", e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, "fsync", e))
    })();
    if let Err(e) = written {
        // A failed write (a full disk) takes its temporary file with it;
        // the injected fault leaves it, as a dying process would.
        if !matches!(e, Error::InjectedFault(_)) {
            let _ = std::fs::remove_file(&tmp);
        }
        return Err(e);
    }
    if let Err(e) = std::fs::rename(&tmp, &path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(&path, "rename", e));
    }
    sync_dir(home.root())
}

/// fsyncs a directory so a rename or a new file in it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, "fsync directory", e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_from_ids_cannot_leave_the_directory() {
        let h = Home::at("/h");
        assert_eq!(
            h.volume_image("vol-0123456789abcdef0"),
            PathBuf::from("/h/volumes/vol-0123456789abcdef0.img")
        );
        assert_eq!(
            h.volume_image("../../etc/passwd"),
            PathBuf::from("/h/volumes/______etc_passwd.img")
        );
    }

    fn doc(version: &str, volume_extra: &str) -> String {
        format!(
            r#"{{"format":"ebsim-state",{version}"clock":{{"virtual_ms":0,"real_ms":0}},
            "volumes":{{"vol-0123456789abcdef0":{{"id":"vol-0123456789abcdef0","size":1,
            "volume_type":"gp2","az":"us-east-1a","state":"available","ready_at":0,
            "create_time":0{volume_extra}}}}}}}"#
        )
    }

    #[test]
    fn versions_and_fields() {
        let p = Path::new("state.json");
        // Version 1 with its image field: read, the field ignored.
        let s = parse_state(
            p,
            doc(r#""version":1,"#, r#","image":"../victim.txt""#).as_bytes(),
        )
        .unwrap();
        assert_eq!(s.volumes.len(), 1);
        // Version 2 with it: an unknown field, named.
        let e = parse_state(p, doc(r#""version":2,"#, r#","image":"x""#).as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `image`"), "{e}");
        let e = parse_state(p, doc(r#""version":2,"#, r#","colour":"red""#).as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `colour`"), "{e}");
        assert!(e.contains("left untouched"), "{e}");
        // Version 0, no version, a future version.
        let e = parse_state(p, doc(r#""version":0,"#, "").as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("state version 0 was never written by ebsim"),
            "{e}"
        );
        let e = parse_state(p, doc("", "").as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("no \"version\" field"), "{e}");
        let e = parse_state(p, doc(r#""version":3,"#, "").as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("state version 3 is newer"), "{e}");
        // A volume id that is not one.
        let bad = doc(r#""version":2,"#, "").replace("vol-0123456789abcdef0", "vol-../../x");
        let e = parse_state(p, bad.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("is not a vol- id"), "{e}");
    }
}
