//! The VFS on in-memory ext4 filesystems: a root, and a second filesystem
//! mounted on `/mnt/data` (whose `/mnt` the root lacks). The kernel is the
//! judge in tests/guest_files.rs; here the walk's and the checks' rules.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::blockdev::MemDevice;
use crate::fs::ext4::geometry::{GeometryRequest, SizeType};
use crate::fs::ext4::mkfs;
use crate::fs::node::{FileType, RenameFlags};

fn fresh(bytes: u64, seed: u8) -> MemDevice {
    let opts = mkfs::MkfsOptions {
        geometry: GeometryRequest {
            block_size: 1024,
            blocks: bytes / 1024,
            size_type: SizeType::Small,
            inodes: None,
            inode_ratio: None,
            reserved_ratio: 5.0,
            profile: crate::fs::ext4::geometry::Profile::EXT4,
        },
        uuid: [seed; 16],
        hash_seed: [seed + 1; 16],
        label: [0; 16],
        now: 1_700_000_000,
        discard: true,
        tunables: Default::default(),
    };
    let mut dev = MemDevice::new(bytes as usize);
    let plan = mkfs::plan(bytes, &opts).unwrap();
    mkfs::apply(&mut dev, &plan).unwrap();
    dev
}

fn spec(dev: MemDevice, minor: u32) -> DeviceSpec {
    DeviceSpec {
        major: 202,
        minor,
        opener: Box::new(move || {
            let (kind, fs) = crate::fs::open_files(dev, true)?;
            Ok(OpenedFs { kind, fs, fsid: 0 })
        }),
    }
}

const NOW: Timespec = Timespec {
    sec: 1_700_000_500,
    nsec: 0,
};

/// root at `/`, a data filesystem at `/mnt/data`, read-only `/ro`.
fn vfs(creds: Creds) -> Vfs {
    let mut v = Vfs::new(
        vec![
            spec(fresh(8 << 20, 1), 1),
            spec(fresh(8 << 20, 3), 80),
            spec(fresh(8 << 20, 5), 96),
        ],
        vec![
            MountSpec {
                target: "/".into(),
                device: 0,
                read_only: false,
            },
            MountSpec {
                target: "/mnt/data/".into(),
                device: 1,
                read_only: false,
            },
            MountSpec {
                target: "/ro".into(),
                device: 2,
                read_only: true,
            },
        ],
        Creds::root(),
        0o022,
        b"/",
        NOW,
    );
    // A tree made as root, then the caller's identity.
    v.mkdir(b"/home", 0o755).unwrap();
    v.mkdir(b"/home/u", 0o755).unwrap();
    v.chown(b"/home/u", Some(1000), Some(1000), true).unwrap();
    v.mkdir(b"/tmp", 0o777).unwrap();
    v.chmod(b"/tmp", 0o1777, true).unwrap();
    v.mkdir(b"/root", 0o700).unwrap();
    let f = v.open(b"/root/secret", OpenFlags::write_create()).unwrap();
    v.write(f.stat.loc, 0, b"hush").unwrap();
    v.creds = creds;
    v
}

fn kind(r: NodeResult<impl std::fmt::Debug>) -> ErrorKind {
    r.unwrap_err().kind()
}

fn user() -> Creds {
    Creds::user(1000, 1000, vec![])
}

#[test]
fn walks_across_mounts_and_back() {
    let mut v = vfs(Creds::root());
    let data = v.stat(b"/mnt/data").unwrap();
    assert_eq!((data.loc.dev, data.attr.ino), (1, 2));
    assert_eq!((data.major, data.minor), (202, 80));
    // `/mnt` is made up: the root filesystem has none.
    let mnt = v.stat(b"/mnt").unwrap();
    assert_eq!(mnt.loc.dev, VIRTUAL);
    assert_eq!(mnt.attr.kind, FileType::Directory);
    let (_, names) = v.readdir(b"/mnt").unwrap();
    assert_eq!(names.len(), 1);
    assert_eq!(names[0].name, b"data");
    let (_, root) = v.readdir(b"/").unwrap();
    assert!(root.iter().any(|e| e.name == b"mnt"));
    // `..` of a mount's root is the directory it is mounted on's parent.
    v.mkdir(b"/mnt/data/x", 0o755).unwrap();
    assert_eq!(
        v.realpath(b"/mnt/data/x/../../data/./x").unwrap(),
        b"/mnt/data/x"
    );
    let back = v.stat(b"/mnt/data/x/../../../home").unwrap();
    assert_eq!(back.loc.dev, 0);
    assert_eq!(v.realpath(b"/../../home/").unwrap(), b"/home");
    // Nothing can be made in a made-up directory.
    assert_eq!(kind(v.mkdir(b"/mnt/other", 0o755)), ErrorKind::ReadOnly);
}

#[test]
fn relative_paths_start_at_the_working_directory() {
    let mut v = vfs(Creds::root());
    v.chdir(b"/home/u").unwrap();
    let f = v.open(b"notes", OpenFlags::write_create()).unwrap();
    assert_eq!(v.stat(b"/home/u/notes").unwrap().loc, f.stat.loc);
    assert_eq!(v.realpath(b"../u/./notes").unwrap(), b"/home/u/notes");
    assert_eq!(kind(v.chdir(b"notes")), ErrorKind::NotADirectory);
    assert_eq!(kind(v.stat(b"")), ErrorKind::NotFound);
}

#[test]
fn symlinks_are_followed_as_the_kernel_does() {
    let mut v = vfs(Creds::root());
    v.symlink(b"/mnt/data", b"/d").unwrap();
    v.symlink(b"../home", b"/tmp/h").unwrap();
    v.mkdir(b"/d/sub", 0o755).unwrap();
    assert_eq!(v.realpath(b"/d/sub").unwrap(), b"/mnt/data/sub");
    assert_eq!(v.realpath(b"/tmp/h/u").unwrap(), b"/home/u");
    // lstat describes the link; a trailing slash follows it.
    assert_eq!(v.lstat(b"/d").unwrap().attr.kind, FileType::Symlink);
    assert_eq!(v.lstat(b"/d/").unwrap().attr.kind, FileType::Directory);
    // A loop, and a chain of exactly 40 links (allowed) and 41 (ELOOP).
    v.symlink(b"b", b"/tmp/a").unwrap();
    v.symlink(b"a", b"/tmp/b").unwrap();
    assert_eq!(kind(v.stat(b"/tmp/a")), ErrorKind::TooManySymlinks);
    v.open(b"/tmp/l0", OpenFlags::write_create()).unwrap();
    for i in 1..=41 {
        let t = format!("l{}", i - 1);
        v.symlink(t.as_bytes(), format!("/tmp/l{i}").as_bytes())
            .unwrap();
    }
    assert!(v.stat(b"/tmp/l40").is_ok());
    assert_eq!(kind(v.stat(b"/tmp/l41")), ErrorKind::TooManySymlinks);
    // O_CREAT through a dangling link creates its target; O_EXCL does not
    // follow; O_NOFOLLOW refuses.
    v.symlink(b"made", b"/tmp/dangling").unwrap();
    let o = v.open(b"/tmp/dangling", OpenFlags::write_create()).unwrap();
    assert!(o.created);
    assert_eq!(v.lstat(b"/tmp/made").unwrap().loc, o.stat.loc);
    let excl = OpenFlags {
        excl: true,
        ..OpenFlags::write_create()
    };
    assert_eq!(kind(v.open(b"/tmp/dangling", excl)), ErrorKind::Exists);
    let nofollow = OpenFlags {
        nofollow: true,
        ..OpenFlags::read()
    };
    assert_eq!(kind(v.open(b"/d", nofollow)), ErrorKind::TooManySymlinks);
    assert_eq!(kind(v.stat(b"/tmp/made/")), ErrorKind::NotADirectory);
}

#[test]
fn permissions_for_a_user() {
    let mut v = vfs(user());
    assert_eq!(kind(v.stat(b"/root/secret")), ErrorKind::PermissionDenied);
    assert_eq!(kind(v.readdir(b"/root")), ErrorKind::PermissionDenied);
    assert_eq!(
        kind(v.mkdir(b"/home/x", 0o755)),
        ErrorKind::PermissionDenied
    );
    assert_eq!(
        kind(v.open(b"/home/x", OpenFlags::write_create())),
        ErrorKind::PermissionDenied
    );
    // EEXIST comes before EACCES.
    assert_eq!(kind(v.mkdir(b"/home/u", 0o755)), ErrorKind::Exists);
    let f = v.open(b"/home/u/f", OpenFlags::write_create()).unwrap();
    assert_eq!((f.stat.attr.uid, f.stat.attr.gid), (1000, 1000));
    assert_eq!(f.stat.attr.perm, 0o644, "umask 022");
    // Only root gives files away; the owner may not.
    assert_eq!(
        kind(v.chown(b"/home/u/f", Some(0), None, true)),
        ErrorKind::NotPermitted
    );
    assert_eq!(
        kind(v.chmod(b"/home", 0o777, true)),
        ErrorKind::NotPermitted
    );
    assert_eq!(
        kind(v.utimens(b"/home", TimeSet::Now, TimeSet::Now, true)),
        ErrorKind::PermissionDenied
    );
    assert_eq!(
        kind(v.utimens(b"/tmp", TimeSet::At(NOW), TimeSet::Now, true)),
        ErrorKind::NotPermitted
    );
    // Writing to /tmp (1777) is fine; removing root's file there is not.
    v.creds = Creds::root();
    v.open(b"/tmp/roots", OpenFlags::write_create()).unwrap();
    v.creds = user();
    v.open(b"/tmp/mine", OpenFlags::write_create()).unwrap();
    assert_eq!(kind(v.unlink(b"/tmp/roots")), ErrorKind::NotPermitted);
    assert_eq!(
        kind(v.rename(b"/tmp/roots", b"/tmp/x", RenameFlags::default())),
        ErrorKind::NotPermitted
    );
    v.unlink(b"/tmp/mine").unwrap();
    // protected_hardlinks: not to a file the user may not write.
    assert_eq!(
        kind(v.link(b"/tmp/roots", b"/tmp/l")),
        ErrorKind::NotPermitted
    );
}

#[test]
fn root_passes_but_not_exec_of_a_file_without_x() {
    let mut v = vfs(Creds::root());
    assert!(v.stat(b"/root/secret").is_ok());
    let st = v.stat(b"/root/secret").unwrap();
    assert!(v.permitted(&st, perm::Want::READ_WRITE));
    assert!(!v.permitted(&st, perm::Want::EXEC));
}

#[test]
fn errnos_of_the_namespace_calls() {
    let mut v = vfs(Creds::root());
    v.mkdir(b"/a", 0o755).unwrap();
    v.mkdir(b"/a/b", 0o755).unwrap();
    v.open(b"/a/f", OpenFlags::write_create()).unwrap();
    assert_eq!(kind(v.mkdir(b"/a", 0o755)), ErrorKind::Exists);
    assert_eq!(kind(v.mkdir(b"/", 0o755)), ErrorKind::Exists);
    assert_eq!(kind(v.mkdir(b"/nope/x", 0o755)), ErrorKind::NotFound);
    assert_eq!(kind(v.mkdir(b"/a/f/x", 0o755)), ErrorKind::NotADirectory);
    assert_eq!(kind(v.rmdir(b"/a")), ErrorKind::DirectoryNotEmpty);
    assert_eq!(kind(v.rmdir(b"/a/f")), ErrorKind::NotADirectory);
    assert_eq!(kind(v.rmdir(b"/a/.")), ErrorKind::InvalidArgument);
    assert_eq!(kind(v.rmdir(b"/a/b/..")), ErrorKind::DirectoryNotEmpty);
    assert_eq!(kind(v.rmdir(b"/")), ErrorKind::Busy);
    assert_eq!(kind(v.rmdir(b"/mnt/data")), ErrorKind::Busy);
    assert_eq!(kind(v.unlink(b"/a/b")), ErrorKind::IsADirectory);
    assert_eq!(kind(v.unlink(b"/a/f/")), ErrorKind::NotADirectory);
    assert_eq!(kind(v.unlink(b"/a/none")), ErrorKind::NotFound);
    assert_eq!(
        kind(v.open(b"/a/b", OpenFlags::write_create())),
        ErrorKind::IsADirectory
    );
    assert_eq!(
        kind(v.open(b"/a/new/", OpenFlags::write_create())),
        ErrorKind::IsADirectory
    );
    let none = RenameFlags::default();
    assert_eq!(
        kind(v.rename(b"/a/f", b"/mnt/data/f", none)),
        ErrorKind::CrossDevice
    );
    assert_eq!(
        kind(v.link(b"/a/f", b"/mnt/data/f")),
        ErrorKind::CrossDevice
    );
    assert_eq!(
        kind(v.rename(b"/a", b"/a/b/c", none)),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        kind(v.rename(b"/a/b", b"/a/f", none)),
        ErrorKind::NotADirectory
    );
    assert_eq!(
        kind(v.rename(b"/a/f", b"/a/b", none)),
        ErrorKind::IsADirectory
    );
    assert_eq!(
        kind(v.rename(b"/a/f/", b"/a/g", none)),
        ErrorKind::NotADirectory
    );
    assert_eq!(kind(v.link(b"/a/b", b"/a/c")), ErrorKind::NotPermitted);
    // Renaming onto a hard link of itself does nothing.
    v.link(b"/a/f", b"/a/g").unwrap();
    v.rename(b"/a/f", b"/a/g", none).unwrap();
    assert!(v.lstat(b"/a/f").is_ok());
    v.rename(b"/a/f", b"/a/b/moved", none).unwrap();
    assert_eq!(v.stat(b"/a/b/moved").unwrap().attr.nlink, 2);
    // Read-only mounts refuse changes, and before ENOENT for unlink.
    assert_eq!(kind(v.unlink(b"/ro/x")), ErrorKind::ReadOnly);
    assert_eq!(kind(v.mkdir(b"/ro/x", 0o755)), ErrorKind::ReadOnly);
    assert_eq!(
        kind(v.open(b"/ro/x", OpenFlags::write_create())),
        ErrorKind::ReadOnly
    );
    v.sync().unwrap();
}

#[test]
fn writes_and_truncation() {
    let mut v = vfs(user());
    let f = v.open(b"/home/u/f", OpenFlags::write_create()).unwrap();
    assert_eq!(v.write(f.stat.loc, 0, b"hello world").unwrap(), 11);
    let again = v.open(b"/home/u/f", OpenFlags::write_create()).unwrap();
    assert!(!again.created);
    assert_eq!(again.stat.attr.size, 0, "O_TRUNC");
    v.fallocate(
        f.stat.loc,
        0,
        1 << 20,
        crate::fs::node::FallocateMode::Allocate { keep_size: false },
    )
    .unwrap();
    assert_eq!(v.stat(b"/home/u/f").unwrap().attr.size, 1 << 20);
    assert!(v.data_ranges(f.stat.loc).unwrap().is_empty());
    assert_eq!(v.ftruncate(f.stat.loc, 10).unwrap().attr.size, 10);
    // A setgid directory hands its group down.
    v.creds = Creds::root();
    v.mkdir(b"/srv", 0o775).unwrap();
    v.chown(b"/srv", None, Some(50), true).unwrap();
    v.chmod(b"/srv", 0o2777, true).unwrap();
    v.creds = user();
    let d = v.mkdir(b"/srv/d", 0o755).unwrap();
    assert_eq!((d.attr.gid, d.attr.perm), (50, 0o2755));
}
