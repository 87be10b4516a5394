//! The state store: `EBSIM_HOME/state.json`, one versioned JSON document.
//!
//! Every command runs as one transaction: take the exclusive lock
//! (`flock` on `state.lock`, a file that is never replaced), read the
//! document, change it in memory, and, if anything changed, write it to a
//! temporary file, fsync it, rename it over `state.json` and fsync the
//! directory, all before letting go of the lock. A process killed at any
//! point therefore leaves either the old or the new document, and two
//! processes never interleave (none loses another's update).
//!
//! A missing document is created only when the directory holds no ebsim
//! data yet; a damaged one is reported and never overwritten.
//!
//! Test hook: `EBSIM_STATE_FAULT=N` makes the next state write stop after N
//! bytes of the temporary file, as if the process died there.

use super::clock::{ClockMode, real_now_ms};
use super::error::{Error, Result};
use super::model::{STATE_FORMAT, STATE_VERSION, State};
use super::time::Millis;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The environment variable naming the state directory.
pub const HOME_ENV: &str = "EBSIM_HOME";
/// The fault-injection hook of the state writer.
pub const STATE_FAULT_ENV: &str = "EBSIM_STATE_FAULT";

/// The state directory and the files in it.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// `EBSIM_HOME`, else `$XDG_DATA_HOME/ebsim`, else
    /// `~/.local/share/ebsim`.
    pub fn from_env() -> Result<Home> {
        if let Some(h) = std::env::var_os(HOME_ENV).filter(|v| !v.is_empty()) {
            return Ok(Home::at(PathBuf::from(h)));
        }
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return Ok(Home::at(PathBuf::from(x).join("ebsim")));
        }
        match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
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

    /// Scratch space for building catalog images.
    pub fn build_dir(&self) -> PathBuf {
        self.root.join("build")
    }

    /// A path relative to the home (as kept in the state) made absolute.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn ensure_dirs(&self) -> Result<()> {
        for d in [self.root.clone(), self.volumes_dir(), self.snapshots_dir()] {
            std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, "create directory", e))?;
        }
        Ok(())
    }
}

/// An exclusive hold on the state, released when dropped.
pub struct Locked {
    home: Home,
    _lock: Flock<File>,
    /// The document as read.
    pub state: State,
    /// The virtual now of this transaction.
    pub now: Millis,
    mode: ClockMode,
    real_ms: i64,
}

impl Locked {
    /// Takes the lock and reads the document (creating an empty one in a
    /// new home).
    pub fn acquire(home: &Home, mode: ClockMode) -> Result<Locked> {
        home.ensure_dirs()?;
        let lock_path = home.lock_path();
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, "open", e))?;
        let lock = Flock::lock(f, FlockArg::LockExclusive)
            .map_err(|(_, errno)| Error::io(&lock_path, "flock", errno.into()))?;
        let real_ms = real_now_ms();
        let state = match read_state(home)? {
            Some(s) => s,
            None => {
                // A new home: write the empty document now, so that from
                // here on a missing state.json always means a lost one.
                let s = State::new(real_ms);
                write_state(home, &s)?;
                s
            }
        };
        let now = state.clock.now(mode, real_ms);
        Ok(Locked {
            home: home.clone(),
            _lock: lock,
            state,
            now,
            mode,
            real_ms,
        })
    }

    /// The home.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// The clock mode of this process.
    pub fn mode(&self) -> ClockMode {
        self.mode
    }

    /// Moves the virtual clock forward by `ms` (manual advance, waiters).
    pub fn advance(&mut self, ms: i64) {
        self.now = self.now.plus(ms.max(0));
    }

    /// Reads the document again, dropping changes made in memory.
    pub fn reload(&mut self) -> Result<()> {
        self.state = match read_state(&self.home)? {
            Some(s) => s,
            None => State::new(self.real_ms),
        };
        Ok(())
    }

    /// Writes the document: re-anchors the clock at this transaction's now,
    /// bumps the generation, then temp file + fsync + rename + fsync dir.
    pub fn save(&mut self) -> Result<()> {
        self.state.clock.virtual_ms = self.now;
        self.state.clock.real_ms = self.real_ms;
        self.state.generation = self.state.generation.wrapping_add(1);
        self.state.format = STATE_FORMAT.to_string();
        self.state.version = STATE_VERSION;
        write_state(&self.home, &self.state)
    }
}

/// Reads `state.json`: `Ok(None)` for a fresh home, an error for a missing
/// document in a home holding data, or for a damaged one.
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
    // The header first (format and version; serde skips the rest without
    // building it), so an unknown or newer document is named as such
    // rather than reported as a field error.
    #[derive(serde::Deserialize)]
    struct Header {
        format: Option<String>,
        version: Option<u64>,
    }
    let header: Header = serde_json::from_slice(&raw).map_err(|e| Error::StateDamaged {
        path: path.clone(),
        reason: format!("not valid JSON: {e}"),
    })?;
    if header.format.as_deref() != Some(STATE_FORMAT) {
        return Err(Error::StateDamaged {
            path,
            reason: format!("no \"format\": \"{STATE_FORMAT}\" field"),
        });
    }
    let version = header.version.unwrap_or(0);
    if version > STATE_VERSION {
        return Err(Error::StateVersion {
            path,
            found: version,
            supported: STATE_VERSION,
        });
    }
    let state: State = serde_json::from_slice(&raw).map_err(|e| Error::StateDamaged {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    Ok(Some(state))
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
    remove_stale_temps(home);
    let tmp = home
        .root()
        .join(format!("state.json.tmp.{}", std::process::id()));
    let fault: Option<usize> = std::env::var(STATE_FAULT_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok());
    {
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
        f.sync_all().map_err(|e| Error::io(&tmp, "fsync", e))?;
    }
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, "rename", e))?;
    sync_dir(home.root())
}

/// Removes temporary files left by writers that died (we hold the lock, so
/// no live writer owns one).
fn remove_stale_temps(home: &Home) {
    if let Ok(rd) = std::fs::read_dir(home.root()) {
        for e in rd.flatten() {
            if e.file_name()
                .to_string_lossy()
                .starts_with("state.json.tmp.")
            {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// fsyncs a directory so a rename or a new file in it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, "fsync directory", e))
}
