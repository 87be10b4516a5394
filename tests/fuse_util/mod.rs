//! Helpers of tests/fuse.rs: images, an `ebsim mount` served in a child
//! process and always unmounted (a guard), fsck verdicts, tree manifests.
#![allow(dead_code)]

use crate::common::{ebsim, ebsim_bin, run, stderr, stdout};
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The filesystems served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ext4,
    Xfs,
}

/// A sparse image of `size` bytes with the real mkfs's filesystem.
pub fn make_image(path: &Path, kind: Kind, size: u64) {
    let f = std::fs::File::create(path).expect("create image");
    f.set_len(size).expect("size image");
    let o = match kind {
        Kind::Ext4 => run(Command::new("mkfs.ext4").arg("-q").arg("-F").arg(path)),
        Kind::Xfs => run(Command::new("mkfs.xfs").arg("-q").arg("-f").arg(path)),
    };
    assert!(o.status.success(), "mkfs: {}", stderr(&o));
}

/// True when `dir` is a `fuse.ebsim` mount point now.
pub fn is_ebsim_mount(dir: &Path) -> bool {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines().any(|l| {
        let mut f = l.split(' ');
        let target = f.nth(4).unwrap_or("");
        Path::new(target) == dir && l.contains(" - fuse.ebsim ")
    })
}

/// An image served by `ebsim mount -f` in a child process. Dropping it
/// unmounts (through `ebsim umount`, else lazily) and reaps the server,
/// even when the test panicked.
pub struct Served {
    pub dir: PathBuf,
    pub image: PathBuf,
    child: Option<Child>,
}

impl Served {
    /// Mounts `spec` (an image, `IMAGE@N`) at `dir` with extra options.
    pub fn mount(spec: &str, dir: &Path, opts: &[&str]) -> Served {
        let image = PathBuf::from(spec.rsplit_once('@').map_or(spec, |(i, _)| i));
        let mut c = Command::new(ebsim_bin());
        c.arg("mount").arg("-f");
        for o in opts {
            c.arg("-o").arg(o);
        }
        c.arg(spec)
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let child = c.spawn().expect("start ebsim mount -f");
        let mut s = Served {
            dir: dir.to_path_buf(),
            image,
            child: Some(child),
        };
        let start = Instant::now();
        while !is_ebsim_mount(dir) {
            if let Some(ch) = s.child.as_mut() {
                if let Ok(Some(st)) = ch.try_wait() {
                    let mut msg = String::new();
                    if let Some(mut e) = ch.stderr.take() {
                        use std::io::Read;
                        let _ = e.read_to_string(&mut msg);
                    }
                    s.child = None;
                    panic!("ebsim mount exited with {st} before mounting: {msg}");
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the mount did not appear at {}",
                dir.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        s
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// Kills the server with SIGKILL (no final commit), detaches the dead
    /// mount and reaps the process.
    pub fn kill9(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH);
    }

    /// Waits for the server to exit on its own (after a signal).
    pub fn wait_exit(mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("a server");
        let start = Instant::now();
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                return st;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the server did not exit"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Unmounts with `ebsim umount` (the final commit is made when it
    /// returns) and checks the server exited 0.
    pub fn unmount(mut self) {
        let o = run(ebsim("umount").arg(&self.dir));
        assert!(
            o.status.success(),
            "ebsim umount: {}{}",
            stdout(&o),
            stderr(&o)
        );
        if let Some(mut c) = self.child.take() {
            let st = c.wait().expect("wait for the server");
            let mut msg = String::new();
            if let Some(mut e) = c.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut msg);
            }
            assert!(st.success(), "the server exited with {st}: {msg}");
        }
        assert!(!is_ebsim_mount(&self.dir), "still mounted after umount");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if self.child.is_none() && !is_ebsim_mount(&self.dir) {
            return;
        }
        if is_ebsim_mount(&self.dir) {
            let _ = run(ebsim("umount").arg(&self.dir));
        }
        if is_ebsim_mount(&self.dir) {
            let _ = nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH);
        }
        if let Some(mut c) = self.child.take() {
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(20) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A read-only kernel loop mount, undone on drop.
pub struct LoopMount {
    pub dir: PathBuf,
}

impl LoopMount {
    pub fn new(image: &Path, dir: &Path) -> LoopMount {
        let o = run(Command::new("mount")
            .arg("-o")
            .arg("loop,ro")
            .arg(image)
            .arg(dir));
        assert!(o.status.success(), "loop mount: {}", stderr(&o));
        LoopMount {
            dir: dir.to_path_buf(),
        }
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        // umount of a loop mount made with -o loop detaches the device.
        let o = run(Command::new("umount").arg(&self.dir));
        if !o.status.success() {
            let _ = run(Command::new("umount").arg("-l").arg(&self.dir));
        }
    }
}

/// The fsck of the image: clean or a panic with its report.
pub fn assert_fsck_clean(image: &Path, kind: Kind) {
    let o = match kind {
        Kind::Ext4 => run(Command::new("e2fsck").arg("-fn").arg(image)),
        Kind::Xfs => run(Command::new("xfs_repair").arg("-n").arg(image)),
    };
    assert!(
        o.status.success(),
        "fsck of {} (rc {:?}):\n{}{}",
        image.display(),
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
}

/// One entry of a tree as [`manifest`] describes it, holding a regular
/// file's bytes rather than their hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Type letter, permission bits, size, link count, owner.
    pub head: String,
    /// A symlink's target, a device's number; empty otherwise.
    pub extra: String,
    /// A regular file's contents.
    pub data: Option<Vec<u8>>,
    /// The modification time (nanoseconds), when asked for.
    pub mtime: Option<String>,
}

/// A tree read whole: per relative path, its [`Entry`]. Two trees are equal
/// exactly when their manifests are, without hashing a byte: a test that
/// compares trees after every step compares the bytes directly (hashing
/// them was nearly all of its time).
pub type Tree = BTreeMap<String, Entry>;

/// Reads the tree under `root` (see [`manifest`]).
pub fn tree(root: &Path, times: bool) -> Tree {
    let mut m = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").file_name())
            .collect();
        names.sort();
        for n in names {
            let r = rel.join(&n);
            if r == Path::new("lost+found") {
                continue;
            }
            let p = root.join(&r);
            let md = std::fs::symlink_metadata(&p).expect("lstat");
            let ft = md.file_type();
            let mut data = None;
            let (t, extra) = if ft.is_dir() {
                stack.push(r.clone());
                ("d", String::new())
            } else if ft.is_symlink() {
                let t = std::fs::read_link(&p).expect("readlink");
                ("l", t.display().to_string())
            } else if ft.is_file() {
                data = Some(std::fs::read(&p).expect("read"));
                ("f", String::new())
            } else if ft.is_fifo() {
                ("p", String::new())
            } else if ft.is_char_device() || ft.is_block_device() {
                ("c", format!("{:x}", md.rdev()))
            } else {
                ("s", String::new())
            };
            let size = if ft.is_dir() { 0 } else { md.size() };
            let head = format!(
                "{t} {:o} size={size} nlink={} {}:{}",
                md.mode() & 0o7777,
                md.nlink(),
                md.uid(),
                md.gid()
            );
            let mtime =
                (times && !ft.is_dir()).then(|| format!("{}.{:09}", md.mtime(), md.mtime_nsec()));
            m.insert(
                r.display().to_string(),
                Entry {
                    head,
                    extra,
                    data,
                    mtime,
                },
            );
        }
    }
    m
}

/// A tree's manifest (see [`manifest`]).
pub fn lines(tree: &Tree) -> BTreeMap<String, String> {
    use sha2::{Digest, Sha256};
    tree.iter()
        .map(|(k, e)| {
            let extra = match &e.data {
                Some(d) => Sha256::digest(d)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect(),
                None => e.extra.clone(),
            };
            let mut line = format!("{} {extra}", e.head);
            if let Some(t) = &e.mtime {
                line.push_str(&format!(" mtime={t}"));
            }
            (k.clone(), line)
        })
        .collect()
}

/// What a tree holds, per relative path: type, permission bits, size,
/// link count, owner, symlink target, content hash; `times` adds the
/// modification time (nanoseconds). `lost+found` is left out.
pub fn manifest(root: &Path, times: bool) -> BTreeMap<String, String> {
    lines(&tree(root, times))
}

/// The differences of two manifests, for a readable failure.
pub fn diff(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (k, v) in a {
        match b.get(k) {
            None => out.push_str(&format!("only in first: {k} {v}\n")),
            Some(w) if w != v => out.push_str(&format!("{k}:\n  {v}\n  {w}\n")),
            _ => {}
        }
    }
    for (k, v) in b {
        if !a.contains_key(k) {
            out.push_str(&format!("only in second: {k} {v}\n"));
        }
    }
    out
}

/// Runs `script` with `sh -c` in `dir`; panics when it fails.
pub fn sh_in(dir: &Path, script: &str) -> String {
    let o = run(Command::new("sh").arg("-c").arg(script).current_dir(dir));
    assert!(
        o.status.success(),
        "`{script}` in {} failed: {}{}",
        dir.display(),
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}
