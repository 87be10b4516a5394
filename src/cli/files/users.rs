//! User and group names as the guest's C library finds them: in the
//! guest's `/etc/passwd` and `/etc/group` (read through the VFS the first
//! time a name is needed), else ebsim's built-in pair (root, and the
//! default user with uid and gid 1000, as the AMIs have them).

use ebsim::guest::vfs::{OpenFlags, Vfs};
use std::collections::HashMap;

/// The guest's user and group names.
#[derive(Debug)]
pub struct Users {
    default_user: String,
    users: Option<HashMap<u32, String>>,
    groups: Option<HashMap<u32, String>>,
}

/// Reads a whole small guest file (at most 1 MiB); None when it cannot be
/// read.
pub fn read_small(vfs: &mut Vfs, path: &[u8]) -> Option<Vec<u8>> {
    let f = vfs.open(path, OpenFlags::read()).ok()?;
    let size = f.stat.attr.size.min(1 << 20) as usize;
    let mut buf = vec![0u8; size];
    let mut off = 0;
    while off < size {
        match vfs.read(f.stat.loc, off as u64, &mut buf[off..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => off += n,
        }
    }
    buf.truncate(off);
    Some(buf)
}

/// `name:x:id:...` lines: id → name (the first line of an id wins, as
/// getpwuid's scan does).
fn parse(text: &[u8]) -> HashMap<u32, String> {
    let mut out = HashMap::new();
    for line in text.split(|&b| b == b'\n') {
        let f: Vec<&[u8]> = line.split(|&b| b == b':').collect();
        if f.len() < 3 || f[0].is_empty() || f[0].starts_with(b"#") {
            continue;
        }
        if let Some(id) = std::str::from_utf8(f[2]).ok().and_then(|s| s.parse().ok()) {
            out.entry(id)
                .or_insert_with(|| String::from_utf8_lossy(f[0]).into_owned());
        }
    }
    out
}

impl Users {
    /// Names for an instance whose default user is `default_user`.
    pub fn new(default_user: &str) -> Users {
        Users {
            default_user: default_user.to_string(),
            users: None,
            groups: None,
        }
    }

    fn builtin(&self) -> HashMap<u32, String> {
        HashMap::from([(0, "root".to_string()), (1000, self.default_user.clone())])
    }

    fn load_users(&mut self, vfs: &mut Vfs) -> &HashMap<u32, String> {
        if self.users.is_none() {
            let m = read_small(vfs, b"/etc/passwd")
                .map(|t| parse(&t))
                .unwrap_or_else(|| self.builtin());
            self.users = Some(m);
        }
        self.users.get_or_insert_with(HashMap::new)
    }

    fn load_groups(&mut self, vfs: &mut Vfs) -> &HashMap<u32, String> {
        if self.groups.is_none() {
            let m = read_small(vfs, b"/etc/group")
                .map(|t| parse(&t))
                .unwrap_or_else(|| self.builtin());
            self.groups = Some(m);
        }
        self.groups.get_or_insert_with(HashMap::new)
    }

    /// The user's name, if the guest knows it.
    pub fn user(&mut self, vfs: &mut Vfs, uid: u32) -> Option<String> {
        self.load_users(vfs).get(&uid).cloned()
    }

    /// The group's name, if the guest knows it.
    pub fn group(&mut self, vfs: &mut Vfs, gid: u32) -> Option<String> {
        self.load_groups(vfs).get(&gid).cloned()
    }

    /// The user's name, or the number.
    pub fn user_or_id(&mut self, vfs: &mut Vfs, uid: u32) -> String {
        self.user(vfs, uid).unwrap_or_else(|| uid.to_string())
    }

    /// The group's name, or the number.
    pub fn group_or_id(&mut self, vfs: &mut Vfs, gid: u32) -> String {
        self.group(vfs, gid).unwrap_or_else(|| gid.to_string())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn first_entry_wins() {
        let m = super::parse(b"root:x:0:0:root:/root:/bin/bash\n#c:x:5:5\nu:x:1000:1000::/home/u:/bin/sh\nv:x:1000:1000::\n");
        assert_eq!(m.get(&0).map(String::as_str), Some("root"));
        assert_eq!(m.get(&1000).map(String::as_str), Some("u"));
        assert_eq!(m.len(), 2);
    }
}
