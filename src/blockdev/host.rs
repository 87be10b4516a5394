//! Facts about this machine's block devices that a tool must check before
//! it writes to an image file: whether the kernel has the file attached to
//! a loop device (it may be mounted there, and writing under it would
//! corrupt it).

/// The loop device (if any) whose backing file is `path` (canonical),
/// from /sys/block/loop*/loop/backing_file: `/dev/loop3`.
pub fn loop_device_of(path: &std::path::Path) -> Option<String> {
    let entries = std::fs::read_dir("/sys/block").ok()?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("loop") {
            continue;
        }
        let Ok(backing) = std::fs::read_to_string(e.path().join("loop/backing_file")) else {
            continue;
        };
        if std::path::Path::new(backing.trim_end_matches('\n')) == path {
            return Some(format!("/dev/{name}"));
        }
    }
    None
}
