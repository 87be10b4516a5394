//! What a filesystem tool's argument names: a file of this machine (an
//! image), or a device or mount point of the instance. One rule for every
//! tool; what varies is only whether the tool itself resolves `UUID=` and
//! `LABEL=` (resize2fs does, through blkid; mke2fs, mkfs.xfs and growpart
//! take a path).

/// Where a tool's device argument points.
///
/// A regular file of this machine is an image even under `/dev/` (a file in
/// `/dev/shm` is an ordinary place for a scratch image), except inside an
/// instance, whose `/dev` holds its disks as files.
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
    /// Classifies `arg`; `tags`: the tool resolves `UUID=`/`LABEL=`;
    /// `in_instance`: the command runs inside an instance. Looks at this
    /// machine's filesystem (a stat) to tell an image file from a guest path.
    pub fn of(arg: &str, tags: bool, in_instance: bool) -> Target {
        let is_file = || std::fs::metadata(arg).is_ok_and(|m| m.is_file());
        if tags && (arg.starts_with("UUID=") || arg.starts_with("LABEL=")) {
            return Target::Device;
        }
        if arg.starts_with("/dev/") {
            return if !in_instance && is_file() {
                Target::Host
            } else {
                Target::Device
            };
        }
        if arg.starts_with('/') && !is_file() {
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
        assert_eq!(Target::of("/dev/xvda1", false, false), Target::Device);
        assert_eq!(Target::of("UUID=x", true, false), Target::Device);
        assert_eq!(Target::of("UUID=x", false, false), Target::Host);
        assert_eq!(Target::of("disk.img", false, false), Target::Host);
        assert_eq!(
            Target::of("/var/lib/no-such-dir-here", false, false),
            Target::Path
        );
        let f = std::env::current_exe().map(|p| p.display().to_string());
        if let Ok(f) = f {
            assert_eq!(Target::of(&f, false, false), Target::Host);
        }
        // A scratch image in /dev/shm is the host's; inside an instance a
        // file in /dev is one of its disks.
        let dir = std::path::Path::new("/dev/shm");
        if dir.is_dir() {
            let img = tempfile::Builder::new().suffix(".img").tempfile_in(dir);
            if let Ok(img) = img {
                let p = img.path().display().to_string();
                assert_eq!(Target::of(&p, false, false), Target::Host);
                assert_eq!(Target::of(&p, false, true), Target::Device);
            }
        }
    }
}
