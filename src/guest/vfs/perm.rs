//! Permission checks as Linux's `generic_permission`, `may_delete` (the
//! sticky bit) and the attribute-change rules of `setattr_prepare` apply
//! them (POSIX ACLs are not modelled: ebsim's filesystems carry none).

use crate::fs::node::{Attr, FileType};

/// Who a process is: effective uid and gid and its supplementary groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creds {
    /// Effective (and filesystem) user id.
    pub uid: u32,
    /// Effective (and filesystem) group id.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

impl Creds {
    /// root: every capability.
    pub fn root() -> Creds {
        Creds {
            uid: 0,
            gid: 0,
            groups: Vec::new(),
        }
    }

    /// A user with a primary group and supplementary groups.
    pub fn user(uid: u32, gid: u32, groups: Vec<u32>) -> Creds {
        Creds { uid, gid, groups }
    }

    /// uid 0 (ebsim gives it every capability, as a root shell has).
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// `in_group_p`: the primary group or a supplementary one.
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }

    /// Owns the inode, or is root (`inode_owner_or_capable`).
    pub fn owner_or_root(&self, a: &Attr) -> bool {
        self.is_root() || self.uid == a.uid
    }
}

/// The access asked for, as the kernel's `MAY_*` bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Want {
    /// `MAY_READ`
    pub read: bool,
    /// `MAY_WRITE`
    pub write: bool,
    /// `MAY_EXEC` (search, for a directory)
    pub exec: bool,
}

impl Want {
    /// Read.
    pub const READ: Want = Want {
        read: true,
        write: false,
        exec: false,
    };
    /// Write.
    pub const WRITE: Want = Want {
        read: false,
        write: true,
        exec: false,
    };
    /// Read and write.
    pub const READ_WRITE: Want = Want {
        read: true,
        write: true,
        exec: false,
    };
    /// Execute, or search a directory.
    pub const EXEC: Want = Want {
        read: false,
        write: false,
        exec: true,
    };
    /// Write and search: what creating or removing an entry needs of the
    /// directory.
    pub const WRITE_EXEC: Want = Want {
        read: false,
        write: true,
        exec: true,
    };
}

/// `generic_permission`: may `c` access `a` as `want` asks?
///
/// root may read and write anything, search any directory and execute a
/// file with at least one execute bit. Everyone else gets one class of
/// bits: the owner's when they own it (even when the group's or others'
/// bits would allow more), else the group's when they are in its group,
/// else the others'.
pub fn permitted(c: &Creds, a: &Attr, want: Want) -> bool {
    if c.is_root() {
        if want.exec && a.kind != FileType::Directory {
            return a.perm & 0o111 != 0;
        }
        return true;
    }
    let bits = if c.uid == a.uid {
        (a.perm >> 6) & 7
    } else if c.in_group(a.gid) {
        (a.perm >> 3) & 7
    } else {
        a.perm & 7
    };
    (!want.read || bits & 4 != 0) && (!want.write || bits & 2 != 0) && (!want.exec || bits & 1 != 0)
}

/// The sticky-bit rule (`check_sticky`): in a directory with `S_ISVTX`
/// only the file's owner, the directory's owner or root may remove or
/// rename an entry.
pub fn sticky_denies(c: &Creds, dir: &Attr, victim: &Attr) -> bool {
    dir.perm & 0o1000 != 0 && !c.is_root() && c.uid != victim.uid && c.uid != dir.uid
}

/// `fs.protected_hardlinks = 1` (the default of the distributions): a
/// user may hard-link only files they own, or regular files they may read
/// and write that are neither set-user-ID nor executable set-group-ID.
pub fn may_link(c: &Creds, a: &Attr) -> bool {
    if c.owner_or_root(a) {
        return true;
    }
    if a.kind != FileType::Regular {
        return false;
    }
    if a.perm & 0o4000 != 0 || a.perm & 0o2010 == 0o2010 {
        return false;
    }
    permitted(c, a, Want::READ_WRITE)
}

/// The mode bits a new inode gets in directory `dir`: `perm` less the
/// umask, and the group a creator in a set-group-ID directory inherits
/// (`inode_init_owner`): the directory's group, and for a new directory
/// the set-group-ID bit too. Returns (perm, gid).
pub fn new_owner(c: &Creds, dir: &Attr, perm: u16, is_dir: bool) -> (u16, u32) {
    if dir.perm & 0o2000 != 0 {
        let mut p = perm;
        if is_dir {
            p |= 0o2000;
        } else if p & 0o2010 == 0o2010 && !c.in_group(dir.gid) && !c.is_root() {
            p &= !0o2000;
        }
        (p, dir.gid)
    } else {
        (perm, c.gid)
    }
}

/// The mode `chmod` leaves: a caller outside the file's group (and not
/// root) loses the set-group-ID bit (`setattr_copy`).
pub fn chmod_bits(c: &Creds, a: &Attr, perm: u16) -> u16 {
    if !c.is_root() && !c.in_group(a.gid) {
        perm & !0o2000
    } else {
        perm
    }
}

/// After a change of owner or group of a non-directory, the set-user-ID
/// bit goes, and the set-group-ID bit when group execution is on (it then
/// means set-group-ID, not mandatory locking).
pub fn chown_kills(a: &Attr) -> Option<u16> {
    if a.kind == FileType::Directory {
        return None;
    }
    let mut p = a.perm & !0o4000;
    if p & 0o2010 == 0o2010 {
        p &= !0o2000;
    }
    (p != a.perm).then_some(p)
}

/// What a write by a non-root caller removes (`file_remove_privs`): the
/// set-user-ID bit, and the set-group-ID bit with group execute.
pub fn write_kills(c: &Creds, a: &Attr) -> Option<u16> {
    if c.is_root() {
        return None;
    }
    chown_kills(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::node::Timespec;

    fn attr(kind: FileType, perm: u16, uid: u32, gid: u32) -> Attr {
        Attr {
            ino: 12,
            kind,
            perm,
            nlink: 1,
            uid,
            gid,
            size: 0,
            blocks: 0,
            atime: Timespec::default(),
            mtime: Timespec::default(),
            ctime: Timespec::default(),
            crtime: Timespec::default(),
            rdev: 0,
            blksize: 4096,
        }
    }

    #[test]
    fn classes_are_exclusive() {
        let u = Creds::user(1000, 1000, vec![4]);
        // The owner gets only the owner's bits.
        let a = attr(FileType::Regular, 0o077, 1000, 1000);
        assert!(!permitted(&u, &a, Want::READ));
        // A group member gets the group's, even when others may.
        let a = attr(FileType::Regular, 0o007, 0, 4);
        assert!(!permitted(&u, &a, Want::READ));
        let a = attr(FileType::Regular, 0o040, 0, 4);
        assert!(permitted(&u, &a, Want::READ));
        assert!(!permitted(&u, &a, Want::WRITE));
        let a = attr(FileType::Regular, 0o004, 0, 0);
        assert!(permitted(&u, &a, Want::READ));
    }

    #[test]
    fn root_passes_but_exec_needs_a_bit() {
        let r = Creds::root();
        let f = attr(FileType::Regular, 0o000, 5, 5);
        assert!(permitted(&r, &f, Want::READ_WRITE));
        assert!(!permitted(&r, &f, Want::EXEC));
        assert!(permitted(
            &r,
            &attr(FileType::Regular, 0o001, 5, 5),
            Want::EXEC
        ));
        assert!(permitted(
            &r,
            &attr(FileType::Directory, 0o000, 5, 5),
            Want::EXEC
        ));
    }

    #[test]
    fn sticky_tmp() {
        let tmp = attr(FileType::Directory, 0o1777, 0, 0);
        let theirs = attr(FileType::Regular, 0o666, 1001, 1001);
        let u = Creds::user(1000, 1000, vec![]);
        assert!(sticky_denies(&u, &tmp, &theirs));
        assert!(!sticky_denies(
            &u,
            &tmp,
            &attr(FileType::Regular, 0o600, 1000, 1000)
        ));
        assert!(!sticky_denies(&Creds::root(), &tmp, &theirs));
        let open = attr(FileType::Directory, 0o777, 0, 0);
        assert!(!sticky_denies(&u, &open, &theirs));
    }

    #[test]
    fn setgid_directories_pass_their_group() {
        let u = Creds::user(1000, 1000, vec![]);
        let d = attr(FileType::Directory, 0o2775, 0, 50);
        assert_eq!(new_owner(&u, &d, 0o755, true), (0o2755, 50));
        assert_eq!(new_owner(&u, &d, 0o644, false), (0o644, 50));
        let plain = attr(FileType::Directory, 0o755, 0, 50);
        assert_eq!(new_owner(&u, &plain, 0o755, true), (0o755, 1000));
    }

    #[test]
    fn privilege_bits_go() {
        let a = attr(FileType::Regular, 0o6755, 1, 1);
        assert_eq!(chown_kills(&a), Some(0o0755));
        let a = attr(FileType::Regular, 0o2644, 1, 1);
        assert_eq!(chown_kills(&a), None);
        assert_eq!(
            write_kills(&Creds::root(), &attr(FileType::Regular, 0o4755, 1, 1)),
            None
        );
        let u = Creds::user(1000, 1000, vec![]);
        assert_eq!(
            chmod_bits(&u, &attr(FileType::Regular, 0, 1000, 7), 0o2755),
            0o0755
        );
        assert!(!may_link(&u, &attr(FileType::Regular, 0o644, 0, 0)));
        assert!(may_link(&u, &attr(FileType::Regular, 0o666, 0, 0)));
        assert!(!may_link(&u, &attr(FileType::Regular, 0o4666, 0, 0)));
    }
}
