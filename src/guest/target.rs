//! What a filesystem tool's argument names: a file of this machine (an
//! image), or a device or mount point of the instance. One rule for every
//! tool; what varies is only whether the tool itself resolves `UUID=` and
//! `LABEL=` (resize2fs does, through blkid; mke2fs, mkfs.xfs and growpart
//! take a path).

/// Where a tool's device argument points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A name only the guest has: `/dev/...`, or `UUID=`/`LABEL=` for a
    /// tool that resolves them. It needs an instance.
    Device,
    /// An absolute path that is no regular file here: a mount point of the
    /// instance if it has one there, else the host's business.
    Path,
    /// A file (or relative path) of this machine.
    Host,
}

impl Target {
    /// Classifies `arg`; `tags`: the tool resolves `UUID=`/`LABEL=`. Looks
    /// at this machine's filesystem (a stat) to tell an image file from a
    /// guest path.
    pub fn of(arg: &str, tags: bool) -> Target {
        if arg.starts_with("/dev/")
            || (tags && (arg.starts_with("UUID=") || arg.starts_with("LABEL=")))
        {
            return Target::Device;
        }
        if arg.starts_with('/') && !std::fs::metadata(arg).is_ok_and(|m| m.is_file()) {
            return Target::Path;
        }
        Target::Host
    }
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn classification() {
        assert_eq!(Target::of("/dev/xvda1", false), Target::Device);
        assert_eq!(Target::of("UUID=x", true), Target::Device);
        assert_eq!(Target::of("UUID=x", false), Target::Host);
        assert_eq!(Target::of("disk.img", false), Target::Host);
        assert_eq!(Target::of("/var/lib/no-such-dir-here", false), Target::Path);
        let f = std::env::current_exe().map(|p| p.display().to_string());
        if let Ok(f) = f {
            assert_eq!(Target::of(&f, false), Target::Host);
        }
    }
}
