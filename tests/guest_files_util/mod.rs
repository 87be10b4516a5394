//! The rig of the file-command differential tests: an Ubuntu instance
//! with a 1 GiB ext4 data volume mounted (in the model) on a host path
//! that the kernel's loop mount uses too, so absolute paths in commands
//! and messages are the same on both sides. Each case starts both sides
//! from the same populated image: the real command runs on a loop mount
//! of a copy, ebsim's applet inside the instance on the volume; then the
//! outputs, exit codes and the trees (a manifest read through the kernel)
//! are compared, and `e2fsck -fn` must pass on both images.
#![allow(dead_code)]

use crate::common::{run, sh, stderr, stdout};
use crate::ec2_util::Cloud;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const UBUNTU: &str = "ami-080e1f13689e07408";

/// Who runs a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// root (the real command as root; ebsim's through `sudo`).
    Root,
    /// uid/gid 1000 (the real command through setpriv; ebsim's as the
    /// instance's default user).
    User,
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub out: String,
    pub err: String,
    pub code: i32,
    pub tree: String,
}

/// A loop device mounted on a given directory; unmounted and detached on
/// drop. It holds `common::mount_lock()` from before the attach to after
/// the detach, and only then: the rest of a case (copies, ebsim's
/// applets, fsck) runs unlocked, beside another test's mount. (The lock is
/// a flock on a fresh descriptor, so a test must not hold it itself while
/// making one of these.)
pub struct MountAt {
    dev: String,
    dir: PathBuf,
    _lock: crate::common::MountLock,
}

impl MountAt {
    pub fn new(img: &Path, dir: &Path, opts: &str) -> MountAt {
        let lock = crate::common::mount_lock();
        let o = run(Command::new("losetup").args(["-f", "--show"]).arg(img));
        assert!(o.status.success(), "losetup: {}", stderr(&o));
        let dev = stdout(&o).trim().to_string();
        let o = run(Command::new("mount").arg("-o").arg(opts).arg(&dev).arg(dir));
        if !o.status.success() {
            let _ = Command::new("losetup").arg("-d").arg(&dev).output();
            panic!("mount: {}", stderr(&o));
        }
        MountAt {
            dev,
            dir: dir.to_path_buf(),
            _lock: lock,
        }
    }
}

impl Drop for MountAt {
    // The fields (the lock) are dropped after this: the lock is released
    // once the device is gone.
    fn drop(&mut self) {
        // A busy mount (something still has a file of it open) is retried,
        // then detached lazily: it must not stay under the next mount at
        // the same place.
        let umounted = (0..20).any(|_| {
            let ok = Command::new("umount")
                .arg(&self.dir)
                .output()
                .is_ok_and(|o| o.status.success());
            if !ok {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            ok
        });
        if !umounted {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).output();
        }
        crate::common::detach_loop(&self.dev);
    }
}

/// The manifest of a tree: one line per entry, sorted by path: type,
/// mode, uid, gid, links, and the size and a SHA-256 of the contents
/// (regular files, with st_blocks; `common::raw_content_hash`: equal
/// exactly when the bytes are) or the target (symlinks).
pub fn manifest(root: &Path) -> String {
    let mut lines = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut names: Vec<_> = std::fs::read_dir(&d)
            .unwrap_or_else(|e| panic!("read_dir {}: {e}", d.display()))
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let ft = m.file_type();
            let head = format!(
                "{rel} {:o} {}:{} n{}",
                m.mode(),
                m.uid(),
                m.gid(),
                m.nlink()
            );
            if ft.is_dir() {
                lines.push(format!("{head} dir"));
                stack.push(p);
            } else if ft.is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                lines.push(format!("{head} -> {}", t.display()));
            } else if ft.is_file() {
                // The contents' hash reads only the data the filesystem
                // reports (SEEK_DATA): a full-disk case's 1 GiB
                // preallocated filler (unwritten extents, zeros) is not
                // read and hashed at every case.
                let h = crate::common::raw_content_hash(&p);
                lines.push(format!(
                    "{head} size {} blocks {} sha {}",
                    m.len(),
                    m.blocks(),
                    &h[..16]
                ));
            } else {
                lines.push(format!("{head} special {}", m.rdev()));
            }
        }
    }
    lines.sort();
    lines.join("\n")
}

/// The filesystem of the rig's volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fs {
    Ext4,
    Xfs,
}

impl Fs {
    /// ebsim's mkfs for it.
    fn mkfs(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Fs::Ext4 => ("mkfs.ext4", &["-q"]),
            Fs::Xfs => ("mkfs.xfs", &["-q"]),
        }
    }

    /// Options of a read-only loop mount that replays nothing.
    fn ro(self) -> &'static str {
        match self {
            Fs::Ext4 => "ro,noload",
            Fs::Xfs => "ro,norecovery",
        }
    }
}

/// `e2fsck -fn` must pass.
pub fn fsck_clean(img: &Path, what: &str) {
    fsck_clean_fs(Fs::Ext4, img, what);
}

/// `e2fsck -fn` / `xfs_repair -n` must pass, silently for XFS.
pub fn fsck_clean_fs(fs: Fs, img: &Path, what: &str) {
    let o = match fs {
        Fs::Ext4 => run(Command::new("e2fsck").args(["-fn"]).arg(img)),
        Fs::Xfs => run(Command::new("xfs_repair").args(["-n", "-f"]).arg(img)),
    };
    assert_eq!(
        o.status.code(),
        Some(0),
        "{what}: {fs:?} check: {}{}",
        stdout(&o),
        stderr(&o)
    );
}

/// The instance, its data volume and the shared mount path.
pub struct Rig {
    pub cloud: Cloud,
    pub id: String,
    pub vol: String,
    pub image: PathBuf,
    pub pristine: PathBuf,
    pub kernel_img: PathBuf,
    pub mnt: PathBuf,
    pub fs: Fs,
    _dir: tempfile::TempDir,
}

impl Rig {
    /// An Ubuntu instance with a `gib` GiB ext4 volume on `/dev/xvdf`,
    /// mounted on a fresh host path, populated by `script` (run by `sh` as
    /// root in the kernel's mount of it), and the guest's /etc/passwd and
    /// /etc/group copied from the host's (so names match).
    pub fn new(gib: u32, script: &str) -> Rig {
        Rig::on(Fs::Ext4, gib, script)
    }

    /// [`Rig::new`] with the volume's filesystem `fs`.
    pub fn on(fs: Fs, gib: u32, script: &str) -> Rig {
        let cloud = Cloud::on_tmpfs();
        let id = cloud.instance(UBUNTU, "t2.micro");
        let vol = cloud.volume(&["--size", &gib.to_string()]);
        cloud.ok(&[
            "attach-volume",
            "--volume-id",
            &vol,
            "--instance-id",
            &id,
            "--device",
            "/dev/sdf",
        ]);
        for _ in 0..100 {
            if cloud.describe_volume(&vol)["Attachments"][0]["State"] == "attached" {
                break;
            }
            cloud.advance("1s");
        }
        let dir = tempfile::Builder::new()
            .prefix("ebsim-gf-")
            .tempdir_in("/tmp")
            .unwrap();
        let mnt = dir.path().join("m");
        std::fs::create_dir(&mnt).unwrap();
        let image = cloud.image_of(&vol);
        let rig = Rig {
            pristine: dir.path().join("pristine.img"),
            kernel_img: dir.path().join("kernel.img"),
            cloud,
            id,
            vol,
            image,
            mnt,
            fs,
            _dir: dir,
        };
        let (mkfs, opts) = fs.mkfs();
        let mut args = opts.to_vec();
        args.push("/dev/xvdf");
        rig.ok(Who::Root, mkfs, &args);
        let m = rig.mnt.to_str().unwrap().to_string();
        rig.ok(Who::Root, "mount", &["/dev/xvdf", &m]);
        rig.ok(Who::Root, "mkdir", &["-p", "/etc"]);
        for f in ["/etc/passwd", "/etc/group"] {
            let host = std::fs::read(f).unwrap();
            let o = rig.ebsim(Who::Root, "tee", &[f], Some(&host));
            assert_eq!(o.code, 0, "tee {f}: {o:?}");
        }
        {
            let _m = MountAt::new(&rig.image, &rig.mnt, "rw");
            let o = run(Command::new("sh")
                .arg("-c")
                .arg(script)
                .current_dir(&rig.mnt));
            assert!(o.status.success(), "fixture: {}{}", stdout(&o), stderr(&o));
        }
        fsck_clean_fs(fs, &rig.image, "fixture");
        sh(&format!(
            "cp --sparse=always '{}' '{}'",
            rig.image.display(),
            rig.pristine.display()
        ));
        rig
    }

    /// The shared mount path as text.
    pub fn m(&self) -> String {
        self.mnt.to_str().unwrap().to_string()
    }

    /// Runs an ebsim applet in the instance (root: through `sudo`), with
    /// the guest working directory `cwd` (default: the mount).
    pub fn ebsim_in(
        &self,
        who: Who,
        cwd: Option<&str>,
        applet: &str,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Outcome {
        let mut c = match who {
            Who::Root => {
                let mut c = self.cloud.cmd("sudo");
                c.arg(applet);
                c
            }
            Who::User => self.cloud.cmd(applet),
        };
        c.args(args)
            .env("EBSIM_INSTANCE", &self.id)
            .env(
                "EBSIM_GUEST_CWD",
                cwd.map_or_else(|| self.m(), str::to_string),
            )
            .env("LC_ALL", "C.UTF-8")
            .env("TZ", "UTC")
            .env_remove("COLUMNS")
            .env_remove("EBSIM_GUEST_USER");
        finish(c, stdin)
    }

    pub fn ebsim(&self, who: Who, applet: &str, args: &[&str], stdin: Option<&[u8]>) -> Outcome {
        self.ebsim_in(who, None, applet, args, stdin)
    }

    /// Runs and expects success.
    pub fn ok(&self, who: Who, applet: &str, args: &[&str]) -> String {
        let o = self.ebsim(who, applet, args, None);
        assert_eq!(o.code, 0, "{applet} {args:?}: {o:?}");
        o.out
    }

    /// The real commands, one after the other, on a loop mount of a copy
    /// of the pristine image: their outcomes and the tree after them.
    pub fn kernel_seq(&self, who: Who, cwd: &str, steps: &[Step<'_>]) -> (Vec<Outcome>, String) {
        // A fresh file each time: a guest namespace another test starts
        // meanwhile copies the host's mounts, which keeps the last loop
        // mount's filesystem alive after our umount; its final write-back
        // must land in the old copy, not in this one.
        let _ = std::fs::remove_file(&self.kernel_img);
        sh(&format!(
            "cp --sparse=always '{}' '{}'",
            self.pristine.display(),
            self.kernel_img.display()
        ));
        let (outs, tree) = {
            let _m = MountAt::new(&self.kernel_img, &self.mnt, "rw");
            let mut outs = Vec::new();
            for (argv, stdin) in steps {
                let mut c = match who {
                    Who::Root => Command::new(argv[0]),
                    Who::User => {
                        let mut c = Command::new("setpriv");
                        c.args(["--reuid=1000", "--regid=1000", "--clear-groups", argv[0]]);
                        c
                    }
                };
                c.args(&argv[1..])
                    .current_dir(cwd)
                    .env("LC_ALL", "C.UTF-8")
                    .env("TZ", "UTC")
                    .env_remove("COLUMNS");
                outs.push(finish(c, *stdin));
            }
            (outs, manifest(&self.mnt))
        };
        fsck_clean_fs(
            self.fs,
            &self.kernel_img,
            &format!("kernel after {steps:?}"),
        );
        (outs, tree)
    }

    /// ebsim's applets, one after the other, on the volume restored to the
    /// pristine image, and the tree after them (read through a read-only
    /// loop mount).
    pub fn ebsim_seq(&self, who: Who, cwd: &str, steps: &[Step<'_>]) -> (Vec<Outcome>, String) {
        // A fresh file, as in `kernel_seq`: a late write-back of the
        // fixture's mount must not reach the copy ebsim works on.
        let _ = std::fs::remove_file(&self.image);
        sh(&format!(
            "cp --sparse=always '{}' '{}'",
            self.pristine.display(),
            self.image.display()
        ));
        let outs: Vec<Outcome> = steps
            .iter()
            .map(|(argv, stdin)| self.ebsim_in(who, Some(cwd), argv[0], &argv[1..], *stdin))
            .collect();
        fsck_clean_fs(self.fs, &self.image, &format!("ebsim after {steps:?}"));
        let _m = MountAt::new(&self.image, &self.mnt, self.fs.ro());
        (outs, manifest(&self.mnt))
    }

    /// Both sides of a sequence; asserts the same stdout, stderr and exit
    /// code at each step and the same tree at the end.
    pub fn same_seq(&self, who: Who, cwd: &str, steps: &[Step<'_>]) -> Vec<Outcome> {
        let (k, kt) = self.kernel_seq(who, cwd, steps);
        let (e, et) = self.ebsim_seq(who, cwd, steps);
        for (i, ((kk, ee), (argv, _))) in k.iter().zip(&e).zip(steps).enumerate() {
            assert_eq!(
                ee.err, kk.err,
                "stderr of step {i} {argv:?} as {who:?} in {cwd}"
            );
            assert_eq!(
                ee.out, kk.out,
                "stdout of step {i} {argv:?} as {who:?} in {cwd}"
            );
            assert_eq!(
                ee.code, kk.code,
                "exit code of step {i} {argv:?} as {who:?} in {cwd}"
            );
        }
        assert_eq!(et, kt, "tree after {steps:?} as {who:?} in {cwd}");
        k
    }

    /// A sequence on both sides, the outputs passed through `norm` first
    /// (for what legitimately differs: times, device numbers).
    pub fn same_norm(
        &self,
        who: Who,
        cwd: &str,
        steps: &[Step<'_>],
        norm: &dyn Fn(&str) -> String,
    ) -> Vec<Outcome> {
        let (k, kt) = self.kernel_seq(who, cwd, steps);
        let (e, et) = self.ebsim_seq(who, cwd, steps);
        for (i, ((kk, ee), (argv, _))) in k.iter().zip(&e).zip(steps).enumerate() {
            assert_eq!(
                norm(&ee.err),
                norm(&kk.err),
                "stderr of step {i} {argv:?} as {who:?}"
            );
            assert_eq!(
                norm(&ee.out),
                norm(&kk.out),
                "stdout of step {i} {argv:?} as {who:?}"
            );
            assert_eq!(
                ee.code, kk.code,
                "exit code of step {i} {argv:?} as {who:?}"
            );
        }
        assert_eq!(et, kt, "tree after {steps:?} as {who:?} in {cwd}");
        e
    }

    /// One command on both sides (see [`Rig::same_seq`]).
    pub fn same(&self, who: Who, cwd: &str, argv: &[&str], stdin: Option<&[u8]>) -> Outcome {
        let mut v = self.same_seq(who, cwd, &[(argv, stdin)]);
        v.remove(0)
    }
}

/// One command and its standard input.
pub type Step<'a> = (&'a [&'a str], Option<&'a [u8]>);

fn finish(mut c: Command, stdin: Option<&[u8]>) -> Outcome {
    use std::io::Write;
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap_or_else(|e| panic!("spawn {c:?}: {e}"));
    if let Some(data) = stdin {
        let mut i = child.stdin.take().unwrap();
        let data = data.to_vec();
        std::thread::spawn(move || {
            let _ = i.write_all(&data);
        });
    }
    let o = child.wait_with_output().unwrap();
    Outcome {
        out: stdout(&o),
        err: stderr(&o),
        code: o.status.code().unwrap_or(-1),
        tree: String::new(),
    }
}
