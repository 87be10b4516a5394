//! The guest's own `/etc/fstab`, read through the file layer (or the
//! guest's mounted root): what `mount -a` and a boot mount. Each line is
//! `SPEC FILE [TYPE [OPTIONS [FREQ [PASSNO]]]]` (fstab(5)); `#` starts a
//! comment. Entries ebsim cannot mount are left out: swap, `none`
//! targets, pseudo filesystems, FAT (ebsim formats none) and devices the
//! instance does not have (a real boot stops in emergency mode on those
//! unless `nofail`: the EC2 model's boot records it, see
//! `ec2::boot::fstab_failure`; `mount -a` skips them and says so through
//! the caller).

use super::instance::{self, GuestDisk};
use crate::ec2::model::Mount;

/// One fstab line, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The device (`UUID=…`, `LABEL=…`, `/dev/…`).
    pub spec: String,
    /// The mount point.
    pub file: String,
    /// The type (`auto` when absent).
    pub vfstype: String,
    /// The options (`defaults` when absent).
    pub options: String,
}

impl Entry {
    /// Whether `opt` is among the options.
    pub fn has(&self, opt: &str) -> bool {
        self.options.split(',').any(|o| o == opt)
    }
}

/// Undoes fstab's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                let v = d.iter().fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why an entry is left out: its device is not on this instance.
pub const NO_DEVICE: &str = "no such device on this instance";
/// Why an entry is left out: its device holds no filesystem ebsim knows.
pub const NO_FILESYSTEM: &str = "no filesystem found on the device";

/// The entries of fstab text, in order (malformed lines are skipped, as
/// libmount reports and skips them).
pub fn parse(text: &str) -> Vec<Entry> {
    let mut v = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut f = line.split_whitespace();
        let (Some(spec), Some(file)) = (f.next(), f.next()) else {
            continue;
        };
        v.push(Entry {
            spec: unescape(spec),
            file: unescape(file),
            vfstype: f.next().unwrap_or("auto").to_string(),
            options: f.next().unwrap_or("defaults").to_string(),
        });
    }
    v
}

/// The fstab's entries ebsim can mount on this instance's disks, as the
/// mounts they would record (marked `fstab`, so a reboot keeps them).
/// The second list is the entries left out, with why.
pub fn mounts(
    text: &str,
    disks: &[GuestDisk],
    links: &[(String, String)],
) -> (Vec<Mount>, Vec<(Entry, &'static str)>) {
    let mut ok = Vec::new();
    let mut skipped = Vec::new();
    for e in parse(text) {
        if !e.file.starts_with('/') || e.vfstype == "swap" {
            skipped.push((e, "not a mount point"));
            continue;
        }
        if matches!(
            e.vfstype.as_str(),
            "vfat" | "proc" | "sysfs" | "tmpfs" | "devpts" | "nfs" | "nfs4"
        ) {
            skipped.push((e, "a filesystem ebsim does not serve"));
            continue;
        }
        let Some(r) = instance::resolve(disks, &[], links, &e.spec) else {
            skipped.push((e, NO_DEVICE));
            continue;
        };
        let fstype = match e.vfstype.as_str() {
            "auto" => match r.probe() {
                Some(info) => info.kind.name().to_string(),
                None => {
                    skipped.push((e, NO_FILESYSTEM));
                    continue;
                }
            },
            t => t.to_string(),
        };
        ok.push(Mount {
            volume_id: r.disk.view.volume_id.clone(),
            partition: r.part.as_ref().map(|p| p.number),
            source: r.dev_path(),
            target: super::normalize_path(&e.file),
            fstype,
            options: e.options.clone(),
            fstab: true,
        });
    }
    (ok, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_comments_defaults_and_escapes() {
        let text = "# /etc/fstab\n\
                    UUID=1234-ab /data xfs defaults,nofail 0 2\n\
                    \n   LABEL=cloudimg-rootfs\t/\t ext4\tdiscard,errors=remount-ro\t0 1\n\
                    /dev/xvdg /mnt/my\\040dir\n\
                    lonely\n";
        let v = parse(text);
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].spec, "UUID=1234-ab");
        assert_eq!(v[0].file, "/data");
        assert!(v[0].has("nofail"));
        assert!(!v[0].has("noauto"));
        assert_eq!(v[1].vfstype, "ext4");
        assert_eq!(v[1].options, "discard,errors=remount-ro");
        assert_eq!(v[2].file, "/mnt/my dir");
        assert_eq!(v[2].vfstype, "auto");
        assert_eq!(v[2].options, "defaults");
    }

    #[test]
    fn unknown_devices_and_swap_are_left_out() {
        let text = "UUID=nope /data xfs defaults 0 2\n/swapfile none swap sw 0 0\n";
        let (ok, skipped) = mounts(text, &[], &[]);
        assert!(ok.is_empty());
        assert_eq!(skipped.len(), 2);
        assert_eq!(skipped[0].1, "no such device on this instance");
        assert_eq!(skipped[1].1, "not a mount point");
    }
}
