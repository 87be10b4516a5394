//! Hints: after a growpart, resize2fs or xfs_growfs that changed nothing
//! or failed, one extra line naming the layer that limits growth and the
//! command that grows it. Off by default (the tools' own output stays
//! exactly theirs); the command line turns them on.

use super::layers::{DiskLayers, Layers};

/// The tools a hint may follow.
pub const TOOLS: &[&str] = &["growpart", "resize2fs", "xfs_growfs"];

/// The sizes that a growing command changes, to tell whether it did.
pub fn fingerprint(d: &DiskLayers) -> Vec<u64> {
    let mut v = vec![d.size, d.unallocated];
    for p in &d.partitions {
        v.extend([u64::from(p.number), p.start, p.end]);
        if let Some(f) = &p.filesystem {
            v.push(f.size);
        }
    }
    if let Some(f) = &d.filesystem {
        v.push(f.size);
    }
    v
}

/// The device argument of a tool's command line: growpart's DISK,
/// resize2fs's DEVICE, xfs_growfs's MOUNTPOINT (the first word that is
/// not an option or an option's value).
pub fn target_arg(tool: &str, args: &[String]) -> Option<String> {
    let takes_value: &[&str] = match tool {
        "growpart" => &["-u", "--update", "--fudge", "--free-percent"],
        "resize2fs" => &["-b", "-s", "-S", "-z"],
        "xfs_growfs" => &["-D", "-L", "-m", "-R", "-e", "-t"],
        _ => &[],
    };
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
            continue;
        }
        if takes_value.contains(&a.as_str()) {
            skip = true;
            continue;
        }
        if a.starts_with('-') && a.len() > 1 {
            continue;
        }
        return Some(a.clone());
    }
    None
}

/// The hint after a command on `arg`: `before` and `after` are the layers
/// around it. None when the command changed the disk and succeeded.
pub fn hint(before: &Layers, after: &Layers, arg: &str, status: i32) -> Option<String> {
    let a = after.disk_for(arg)?;
    let changed = before
        .disk_for(arg)
        .is_none_or(|b| fingerprint(b) != fingerprint(a));
    if changed && status == 0 {
        return None;
    }
    Some(format!("hint: {}\n", a.limit.sentence))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_arguments() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            target_arg("growpart", &s(&["-N", "/dev/xvda", "1"])).as_deref(),
            Some("/dev/xvda")
        );
        assert_eq!(
            target_arg("xfs_growfs", &s(&["-d", "/var/lib"])).as_deref(),
            Some("/var/lib")
        );
        assert_eq!(
            target_arg("resize2fs", &s(&["-b", "x", "/dev/xvda1", "16G"])).as_deref(),
            Some("/dev/xvda1")
        );
        assert_eq!(target_arg("resize2fs", &s(&["-f"])), None);
    }
}
