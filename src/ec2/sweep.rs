//! Keeping the files under EBSIM_HOME exactly what the committed state
//! references, whatever a crash or a full disk interrupted.
//!
//! A transaction makes every new file (a volume image, a restored image, a
//! snapshot's chunks and manifest, a catalog build) under
//! `staging/<txid>/`, laid out as it will be published (`volumes/`,
//! `snapshots/`, `chunks/`), and fsyncs it. Committing the state document
//! records `"publish": "<txid>"` in the same atomic rename that makes the
//! new resources exist; the staged files are then renamed into place and
//! made durable before the lock is let go. Files the state no longer
//! references (a deleted volume's image, a deleted snapshot's manifest and
//! the chunks no other snapshot uses) are removed after the commit, the
//! manifest last.
//!
//! So after a crash (SIGKILL, power loss, ENOSPC halfway) the only
//! possible leftovers are: a staging directory (published if the committed
//! state names it, removed otherwise), files in `volumes/` or `snapshots/`
//! no committed resource owns (removed), temporary state files (removed),
//! and chunks no committed manifest names, which can only exist while an
//! unreferenced file is left in `snapshots/` (a manifest whose removal was
//! interrupted, or one a rebuild superseded): that file triggers a mark
//! (every committed manifest) and sweep (every chunk not marked), and is
//! removed only once the sweep is done. [`recover`] does all of this at the
//! start of every writable transaction, before anything else.
//!
//! The sweep removes only what ebsim makes: files, never directories it
//! did not create (a directory where an image should be is left alone and
//! reported by the operations that meet it), and never anything outside
//! `volumes/`, `snapshots/`, `staging/` and the temporary state files. An
//! undo log beside a referenced image is the image layer's, left for its
//! next open to roll back. If a committed manifest cannot be read, the
//! chunk sweep is skipped (it could not tell which chunks are live) and
//! the trigger stays for a later transaction.

use super::error::{Error, Result};
use super::model::State;
use super::snapshots::{chunk_path, chunks_dir, manifest_path, read_manifest};
use super::store::{Home, sync_dir};
use crate::blockdev::image::undo_log_path;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Brings the files in line with `state` (the committed document; the lock
/// is held). Publishes a staging directory the state names, removes every
/// other staged, unreferenced or temporary file, and sweeps unreferenced
/// chunks when something says there may be some.
pub(crate) fn recover(home: &Home, state: &mut State) -> Result<()> {
    if let Some(t) = state.publish.take() {
        publish(home, &t, None)?;
    }
    remove_tree_contents(&home.staging_dir());
    let _ = std::fs::remove_dir(home.staging_dir());
    // Temporary state files of writers that died (we hold the lock, so no
    // live writer owns one), and the scratch directory of older versions.
    if let Ok(rd) = std::fs::read_dir(home.root()) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("state.json.tmp.") {
                let _ = std::fs::remove_file(e.path());
            } else if name == "build" {
                remove_tree_contents(&e.path());
                let _ = std::fs::remove_dir(e.path());
            }
        }
    }
    // Images no volume owns, and anything else but the undo logs of the
    // images that are owned (named by the image layer: asked, not assumed).
    if let Ok(rd) = std::fs::read_dir(home.volumes_dir()) {
        let mut logs: Option<Vec<String>> = None;
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name
                .strip_suffix(".img")
                .is_some_and(|id| state.volumes.contains_key(id))
            {
                continue;
            }
            let logs = logs.get_or_insert_with(|| {
                state
                    .volumes
                    .keys()
                    .filter_map(|id| {
                        let log = undo_log_path(&home.volume_image(id));
                        let in_dir = log.parent() == Some(home.volumes_dir().as_path());
                        in_dir
                            .then(|| log.file_name().map(|n| n.to_string_lossy().into_owned()))
                            .flatten()
                    })
                    .collect()
            });
            // A log, or a file the image layer writes beside it.
            if logs.iter().any(|l| name.starts_with(l.as_str())) {
                continue;
            }
            // The control socket of an owned image's FUSE server (the
            // guest namespace serves the volumes): a live server's, or one
            // the next server replaces.
            let socket = |id: &str| {
                crate::fuse::control::socket_path(&home.volume_image(id))
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy() == name)
            };
            if state.volumes.keys().any(|id| socket(id)) {
                continue;
            }
            // An image no volume owns, segmented (a directory ebsim made);
            // other directories are left alone.
            if name.ends_with(".img") && crate::blockdev::segmented::is_segmented(&e.path()) {
                let _ = crate::blockdev::segmented::remove(&e.path());
                continue;
            }
            remove_unless_dir(&e);
        }
    }
    // Anything in snapshots/ but the committed manifests means a removal
    // was interrupted or a manifest superseded: sweep the chunks, then
    // remove those files.
    let mut extra: Vec<std::fs::DirEntry> = Vec::new();
    if let Ok(rd) = std::fs::read_dir(home.snapshots_dir()) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "chunks" {
                continue;
            }
            let owned = name
                .strip_suffix(".manifest")
                .is_some_and(|id| state.snapshots.contains_key(id));
            if !owned && !e.file_type().is_ok_and(|t| t.is_dir()) {
                extra.push(e);
            }
        }
    }
    if (!extra.is_empty() || state.upgraded) && sweep_chunks(home, state) {
        for e in &extra {
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok(())
}

/// Makes again the image of every committed volume made empty (no
/// snapshot) whose image is missing, or a regular file of length 0: a new
/// empty volume's image is made in place and not synced before the commit
/// that names it (its bytes follow from the state), so a crash can lose
/// its directory entry or its length. Nothing was ever written into such
/// an image (the image layer syncs the directory, with its undo log,
/// before any write), so an empty sparse file of the volume's size is
/// exactly what it held. Each one made is synced, and the directory once.
/// Anything else at an image path (a directory, a link) is left for the
/// operations to report.
pub(crate) fn restore_empty_images(home: &Home, state: &State) -> Result<()> {
    let mut made = false;
    for v in state.volumes.values().filter(|v| v.snapshot_id.is_none()) {
        let path = home.volume_image(&v.id);
        // Some(whether a file of length 0 is there) when the image is lost.
        let lost = match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_file() && m.len() == 0 => Some(true),
            Ok(_) => None,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(false),
            Err(e) => return Err(Error::io(&path, "stat", e)),
        };
        let Some(empty_file) = lost else {
            continue;
        };
        if v.size_bytes() == 0 {
            continue;
        }
        if empty_file {
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, "remove", e))?;
        }
        // Synced, and segmented if the host cannot hold a file that long.
        crate::blockdev::image::ImageFile::create(&path, v.size_bytes())?;
        made = true;
    }
    if made {
        sync_dir(&home.volumes_dir())?;
    }
    Ok(())
}

/// Removes every chunk (and stray file) under `snapshots/chunks` that no
/// committed manifest names. Returns false, removing nothing, when a
/// committed manifest cannot be read.
pub(crate) fn sweep_chunks(home: &Home, state: &State) -> bool {
    let mut live: HashSet<String> = HashSet::new();
    for id in state.snapshots.keys() {
        match read_manifest(home, id) {
            Ok(m) => live.extend(m.chunks.into_values()),
            Err(_) => return false,
        }
    }
    let Ok(rd) = std::fs::read_dir(chunks_dir(home)) else {
        return true;
    };
    for sub in rd.flatten() {
        if !sub.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::remove_file(sub.path());
            continue;
        }
        let Ok(rd2) = std::fs::read_dir(sub.path()) else {
            continue;
        };
        for c in rd2.flatten() {
            let name = c.file_name().to_string_lossy().into_owned();
            let at_home = chunk_path(home, &name) == c.path();
            if !(at_home && live.contains(&name)) {
                remove_unless_dir(&c);
            }
        }
        // Only removes it when empty.
        let _ = std::fs::remove_dir(sub.path());
    }
    true
}

/// Moves the files of `staging/<txid>` into place (chunks, then manifests,
/// then images), makes the moves durable and removes the directory. A
/// manifest replacing a committed one (a catalog image rebuilt) first moves
/// the old one aside as `<id>.manifest.superseded`, which makes the next
/// [`recover`] sweep the chunks only it used. Returns whether any was
/// superseded. Idempotent: a crash halfway is finished by running it again.
/// `fault`: stop after this many renames (the test hook).
pub(crate) fn publish(home: &Home, txid: &str, fault: Option<usize>) -> Result<bool> {
    let dir = home.staging_dir().join(super::store::safe_name(txid));
    if !dir.is_dir() {
        return Ok(false);
    }
    let mut superseded = false;
    let mut any_chunk = false;
    let mut renames = 0usize;
    let mut rename = |from: &Path, to: &Path| -> Result<()> {
        if fault == Some(renames) {
            return Err(Error::InjectedPublishFault(renames));
        }
        renames += 1;
        std::fs::rename(from, to).map_err(|e| Error::io(to, "rename into place", e))
    };
    let mut touched: Vec<PathBuf> = Vec::new();
    for e in entries(&dir.join("chunks")) {
        let name = e.file_name().to_string_lossy().into_owned();
        if !is_hash(&name) {
            continue;
        }
        let dest = chunk_path(home, &name);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|err| Error::io(parent, "create directory", err))?;
        }
        rename(&e.path(), &dest)?;
        any_chunk = true;
    }
    for e in entries(&dir.join("snapshots")) {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_suffix(".manifest") else {
            continue;
        };
        let dest = manifest_path(home, id);
        if dest.exists() {
            let mut aside = dest.clone().into_os_string();
            aside.push(".superseded");
            rename(&dest, Path::new(&aside))?;
            superseded = true;
        }
        rename(&e.path(), &dest)?;
        touched.push(home.snapshots_dir());
    }
    for e in entries(&dir.join("volumes")) {
        let dest = home.volumes_dir().join(e.file_name());
        rename(&e.path(), &dest)?;
        touched.push(home.volumes_dir());
    }
    // The moves must be durable before any later document (which no longer
    // names this directory) is written.
    if any_chunk {
        let d = chunks_dir(home);
        let f = std::fs::File::open(&d).map_err(|e| Error::io(&d, "open", e))?;
        nix::unistd::syncfs(&f).map_err(|e| Error::io(&d, "syncfs", e.into()))?;
    }
    touched.dedup();
    for d in touched {
        sync_dir(&d)?;
    }
    remove_tree_contents(&dir);
    let _ = std::fs::remove_dir(&dir);
    Ok(superseded)
}

/// Makes a stage's directory entries durable (the files in it were
/// fsynced, or synced together, by their writers) before the document
/// naming it is committed.
pub(crate) fn sync_stage(home: &Home, txid: &str) -> Result<()> {
    let dir = home.staging_dir().join(super::store::safe_name(txid));
    for sub in ["volumes", "snapshots", "chunks"] {
        let d = dir.join(sub);
        if d.is_dir() {
            sync_dir(&d)?;
        }
    }
    sync_dir(&dir)?;
    sync_dir(&home.staging_dir())
}

fn entries(dir: &Path) -> Vec<std::fs::DirEntry> {
    let mut v: Vec<std::fs::DirEntry> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.flatten().collect(),
        Err(_) => Vec::new(),
    };
    v.sort_by_key(|e| e.file_name());
    v
}

/// Whether a name is a SHA-256 in lower-case hex (a chunk's name).
pub(crate) fn is_hash(name: &str) -> bool {
    name.len() == 64
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn remove_unless_dir(e: &std::fs::DirEntry) {
    if !e.file_type().is_ok_and(|t| t.is_dir()) {
        let _ = std::fs::remove_file(e.path());
    }
}

/// Removes everything inside a directory ebsim owns (staging, build);
/// symbolic links are removed, never followed.
pub(crate) fn remove_tree_contents(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = std::fs::remove_dir_all(e.path());
            } else {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}
