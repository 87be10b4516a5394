//! Which mounts df shows: pseudo and remote filesystems, `-a`, `-l`,
//! `-t`, `-x`, one row per device, and the mount a FILE argument names.

use super::{Mount, Row, StatFs};
use crate::guest::{normalize_path, path_within};

/// gnulib's "dummy" filesystem types (mountlist.c `ME_DUMMY`): df hides
/// them unless `-a`.
pub fn is_dummy(fstype: &str) -> bool {
    matches!(
        fstype,
        "autofs"
            | "proc"
            | "subfs"
            | "debugfs"
            | "devpts"
            | "fusectl"
            | "fuse.portal"
            | "mqueue"
            | "rpc_pipefs"
            | "sysfs"
            | "devfs"
            | "kernfs"
            | "ignore"
            | "none"
    )
}

/// gnulib's `ME_REMOTE`: df -l hides these.
pub fn is_remote(source: &str, fstype: &str) -> bool {
    source.contains(':')
        || (source.starts_with("//") && matches!(fstype, "smbfs" | "smb3" | "cifs"))
        || matches!(
            fstype,
            "acfs" | "afs" | "coda" | "auristorfs" | "fhgfs" | "gpfs" | "ibrix" | "ocfs2" | "vxfs"
        )
        || source == "-hosts"
}

/// Which filesystems df shows: `-a`, `-l`, `-t`, `-x`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// `-a`
    pub all: bool,
    /// `-l`
    pub local: bool,
    /// `-t TYPE` (any of them; empty: all)
    pub types: Vec<String>,
    /// `-x TYPE`
    pub exclude: Vec<String>,
}

impl Selection {
    fn type_ok(&self, fstype: &str) -> bool {
        (self.types.is_empty() || self.types.iter().any(|t| t == fstype))
            && !self.exclude.iter().any(|t| t == fstype)
    }

    /// df.c get_dev's filters (`listed`: a FILE argument named it).
    fn shows(&self, m: &Mount, stat: Option<&StatFs>, listed: bool) -> bool {
        if self.local && is_remote(&m.source, &m.fstype) {
            return false;
        }
        if is_dummy(&m.fstype) && !self.all && !listed {
            return false;
        }
        if !self.type_ok(&m.fstype) {
            return false;
        }
        if !m.target.starts_with('/') {
            return false;
        }
        !(stat.is_some_and(|s| s.blocks == 0) && !self.all && !listed)
    }
}

/// The device a mount point shows now: the source of the last mount on
/// that target (what `stat(target).st_dev` finds). Mounts of a block device
/// are keyed by its name, others by their own position.
fn visible_key(mounts: &[Mount], target: &str) -> Option<(usize, String)> {
    mounts
        .iter()
        .enumerate()
        .rev()
        .find(|(_, m)| m.target == target)
        .map(|(i, m)| (i, m.source.clone()))
}

fn device_key(mounts: &[Mount], target: &str) -> String {
    match visible_key(mounts, target) {
        Some((_, s)) if s.starts_with('/') => format!("dev:{s}"),
        Some((i, _)) => format!("mount:{i}"),
        None => format!("target:{target}"),
    }
}

/// The rows of `df` without FILE arguments (df.c filter_mount_list and
/// get_all_entries): every mount in mount order, pseudo filesystems and
/// empty ones hidden unless `-a`, one row per device (the mount nearest the
/// root wins, in the place of the first), type filters applied.
pub fn select_all(mounts: &[Mount], sel: &Selection) -> Vec<Row> {
    if sel.all {
        // -a keeps every entry; an over-mounted one shows `-` values.
        return mounts
            .iter()
            .enumerate()
            .filter(|(_, m)| sel.shows(m, Some(&m.stat), false))
            .map(|(i, m)| {
                let hidden =
                    visible_key(mounts, &m.target).is_some_and(|(j, s)| j != i && s != m.source);
                let mut r = Row::of(m);
                if hidden {
                    r.fstype = "-".into();
                    r.stat = None;
                }
                r
            })
            .collect();
    }
    // (device key, index of the mount shown for it)
    let mut kept: Vec<(Option<String>, usize)> = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        let filtered = (sel.local && is_remote(&m.source, &m.fstype))
            || is_dummy(&m.fstype)
            || !sel.type_ok(&m.fstype);
        if filtered {
            kept.push((None, i));
            continue;
        }
        let key = device_key(mounts, &m.target);
        match kept
            .iter_mut()
            .find(|(k, _)| k.as_deref() == Some(key.as_str()))
        {
            None => kept.push((Some(key), i)),
            Some(slot) => {
                let seen = &mounts[slot.1];
                let new_wins = (m.source.contains('/') && !seen.source.contains('/'))
                    || seen.target.len() > m.target.len()
                    || (seen.source != m.source && seen.target == m.target);
                if new_wins {
                    slot.1 = i;
                }
            }
        }
    }
    kept.into_iter()
        .map(|(_, i)| &mounts[i])
        .filter(|m| sel.shows(m, Some(&m.stat), false))
        .map(Row::of)
        .collect()
}

/// df.c get_point: the mount holding `path` (the longest mount point that
/// is a prefix of it; among equal ones the last mounted; a pseudo
/// filesystem does not replace a real one).
pub fn mount_of_path<'a>(mounts: &'a [Mount], path: &str) -> Option<&'a Mount> {
    let resolved = normalize_path(path);
    let mut best: Option<&Mount> = None;
    let mut best_len = 0;
    for m in mounts {
        if m.fstype == "lofs" {
            continue;
        }
        if best.is_some_and(|b| !is_dummy(&b.fstype)) && is_dummy(&m.fstype) {
            continue;
        }
        let t = normalize_path(&m.target);
        let len = if t == "/" { 1 } else { t.len() };
        if best_len <= len && len <= resolved.len() && path_within(&resolved, &t) {
            best = Some(m);
            best_len = len;
        }
    }
    best
}

/// df.c get_device: the mount of block device `dev` (its mount nearest
/// the root that is not hidden by a later mount on the same point).
pub fn mount_of_device<'a>(mounts: &'a [Mount], dev: &str) -> Option<&'a Mount> {
    let dev = normalize_path(dev);
    let mut best: Option<&Mount> = None;
    for m in mounts {
        if normalize_path(&m.source) != dev {
            continue;
        }
        let eclipsed =
            visible_key(mounts, &m.target).is_some_and(|(_, s)| normalize_path(&s) != dev);
        if eclipsed {
            continue;
        }
        if m.target == "/" {
            return Some(m);
        }
        if best.is_none_or(|b| m.target.len() < b.target.len()) {
            best = Some(m);
        }
    }
    best
}

/// What one FILE argument gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileResult {
    /// A row (possibly filtered out by -t/-x/-l afterwards: `None`).
    Row(Option<Row>),
    /// `df: ARG: No such file or directory`
    NotFound,
    /// `df: cannot access ARG: over-mounted by another device`
    OverMounted,
}

/// The row for one FILE argument (df.c get_entry): a block device shows
/// the filesystem mounted from it, anything else the mount holding it.
/// `is_device` tells which arguments name a block device.
pub fn select_file(mounts: &[Mount], arg: &str, is_device: bool, sel: &Selection) -> FileResult {
    let found = if is_device {
        match mount_of_device(mounts, arg) {
            Some(m) => Some(m),
            None => {
                let n = normalize_path(arg);
                let hidden = mounts.iter().any(|m| normalize_path(&m.source) == n);
                if hidden {
                    return FileResult::OverMounted;
                }
                mount_of_path(mounts, arg)
            }
        }
    } else {
        mount_of_path(mounts, arg)
    };
    match found {
        None => FileResult::NotFound,
        Some(m) => {
            if !sel.shows(m, Some(&m.stat), true) {
                return FileResult::Row(None);
            }
            let mut r = Row::of(m);
            r.file = arg.to_string();
            FileResult::Row(Some(r))
        }
    }
}
