//! Helpers of the guest filesystem tests: sparse copies of a partition's
//! byte range for the real fsck tools, partition tables read by the real
//! sfdisk, and loop mounts of such copies (undone on drop).
#![allow(dead_code)]

use crate::common::{run, stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Copies `len` bytes of `img` from `off` into a new sparse file `dst`
/// (only the data ranges are written).
pub fn copy_range(img: &Path, off: u64, len: u64, dst: &Path) {
    use ebsim::blockdev::image::{Access, ImageFile};
    use ebsim::blockdev::{BlockDevice, Slice};
    use std::os::unix::fs::FileExt;
    let src = ImageFile::open(img, Access::ReadOnly).expect("open image");
    let s = Slice::new(src, off, len).expect("range inside the image");
    let f = std::fs::File::create(dst).expect("create copy");
    f.set_len(len).expect("size copy");
    for r in s.data_ranges(0..len).expect("data ranges") {
        let mut o = r.start;
        while o < r.end {
            let n = (r.end - o).min(8 << 20);
            let buf = s.read_vec(o, n as usize).expect("read");
            if buf.iter().any(|&b| b != 0) {
                f.write_all_at(&buf, o).expect("write");
            }
            o += n;
        }
    }
}

/// (start, length) in bytes of partition `n` of a disk image, as the real
/// sfdisk reads the table.
pub fn partition(img: &Path, n: u32) -> (u64, u64) {
    let o = run(Command::new("sfdisk").arg("-J").arg(img));
    assert!(o.status.success(), "sfdisk -J: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("sfdisk JSON");
    let node = format!("{}{n}", img.display());
    for p in v["partitiontable"]["partitions"]
        .as_array()
        .expect("partitions")
    {
        if p["node"].as_str() == Some(node.as_str()) {
            let start = p["start"].as_u64().expect("start");
            let size = p["size"].as_u64().expect("size");
            return (start * 512, size * 512);
        }
    }
    panic!("no partition {n} in {}", img.display());
}

/// `xfs_repair -n` on an image (or copy): (exit code, output).
pub fn xfs_repair(img: &Path) -> (i32, String) {
    let o = run(Command::new("xfs_repair").arg("-n").arg("-f").arg(img));
    (o.status.code().unwrap_or(-1), stdout(&o) + &stderr(&o))
}

/// `e2fsck -fn` on an image (or copy): (exit code, output).
pub fn e2fsck(img: &Path) -> (i32, String) {
    let o = run(Command::new("e2fsck").arg("-fn").arg(img));
    (o.status.code().unwrap_or(-1), stdout(&o) + &stderr(&o))
}

/// Checks the filesystem in `len` bytes of `img` at `off` with the real
/// fsck of its kind: clean, or the test fails with the tool's output.
pub fn assert_clean(img: &Path, off: u64, len: u64, xfs: bool, what: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("part.img");
    copy_range(img, off, len, &copy);
    let (rc, text) = if xfs {
        xfs_repair(&copy)
    } else {
        e2fsck(&copy)
    };
    assert_eq!(rc, 0, "{what}: fsck found problems:\n{text}");
}

/// A loop device over a file, mounted; unmounted and detached on drop
/// (also when the test fails).
pub struct LoopMount {
    pub dev: String,
    pub dir: tempfile::TempDir,
    mounted: bool,
}

impl LoopMount {
    /// Attaches `img` and mounts it with `opts` (`-o`), or only attaches
    /// it when `opts` is None.
    pub fn new(img: &Path, opts: Option<&str>) -> LoopMount {
        let o = run(Command::new("losetup").args(["-f", "--show"]).arg(img));
        assert!(o.status.success(), "losetup: {}", stderr(&o));
        let mut m = LoopMount {
            dev: stdout(&o).trim().to_string(),
            dir: tempfile::tempdir().expect("tempdir"),
            mounted: false,
        };
        if let Some(opts) = opts {
            let o = run(Command::new("mount")
                .arg("-o")
                .arg(opts)
                .arg(&m.dev)
                .arg(m.dir.path()));
            assert!(o.status.success(), "mount: {}", stderr(&o));
            m.mounted = true;
        }
        m
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(self.dir.path()).output();
        }
        crate::common::detach_loop(&self.dev);
    }
}
