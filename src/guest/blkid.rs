//! blkid's view of block devices: the tags libblkid gives each device, in
//! its order, for the cache-based listing (`blkid`, `blkid DEV`) and the
//! low-level probe (`blkid -p`), and the text of blkid's output formats.
//!
//! Tags, as util-linux 2.38.1 measures them on loop devices:
//!
//! - ext4: `LABEL` (when set), `UUID`, `VERSION="1.0"` (-p only),
//!   `BLOCK_SIZE` (the block size), `TYPE`, `USAGE="filesystem"` (-p only).
//! - XFS: `LABEL`, `UUID`, `BLOCK_SIZE` (the *sector* size), `TYPE`, `USAGE`.
//! - FAT: `SEC_TYPE="msdos"` (FAT12/16), `LABEL_FATBOOT` (the boot
//!   sector's label, when the extended boot signature is 0x29 and it is not
//!   `NO NAME`), `LABEL` (the root directory's volume entry), `UUID` as
//!   `XXXX-XXXX`, `VERSION` (`FAT16`/`FAT32`, -p only), `BLOCK_SIZE` (the
//!   sector size), `TYPE="vfat"`, `USAGE`.
//! - swap: `LABEL`, `UUID`, `VERSION="1"` (-p), `TYPE="swap"`,
//!   `USAGE="other"` (-p); no BLOCK_SIZE.
//! - squashfs (Ubuntu's snap loops): `VERSION="4.0"` (-p), `TYPE`, `USAGE`.
//! - a partition, after its filesystem's tags: `PARTLABEL` (a GPT name,
//!   when set) and `PARTUUID` (GPT unique GUID, or an MBR's
//!   `DISKID-NN` with the disk id in 8 hex digits and the number in 2); with
//!   -p instead `PART_ENTRY_SCHEME`, `PART_ENTRY_NAME`, `PART_ENTRY_UUID`,
//!   `PART_ENTRY_TYPE` (GUID, or `0xNN`), `PART_ENTRY_FLAGS` (GPT attributes
//!   or the MBR boot byte, as `0x..`, when not zero), `PART_ENTRY_NUMBER`,
//!   `PART_ENTRY_OFFSET` and `PART_ENTRY_SIZE` (sectors) and
//!   `PART_ENTRY_DISK` (the disk's MAJ:MIN).
//! - a partitioned disk: `PTUUID` (the GPT disk GUID or the MBR id in 8 hex
//!   digits) and `PTTYPE` (`gpt`, `dos`).
//!
//! Older util-linux, from its source history: BLOCK_SIZE appeared in 2.35
//! (so CentOS 7's 2.23.2, Amazon Linux 2's 2.30.2 and Ubuntu 20.04's 2.34
//! print none); LABEL_FATBOOT in 2.33 (before it, a FAT's LABEL is the root
//! directory's label, or the boot sector's when that is missing or
//! `NO NAME`); PTUUID after 2.23 (CentOS 7 prints PTTYPE alone).
//!
//! Listing order: blkid 2.38 without a cache walks /sys/block in the
//! kernel's directory order (kernfs sorts a directory by a hash of the
//! name), takes each disk's partitions in the same order (skipping 1 KiB
//! extended partitions), and takes a whole disk only when it has no
//! partitions. [`sysfs_order`] computes that order; a real instance with an
//! older blkid cache file lists in the cache's order first.

use super::lsblk::UtilLinux;
use crate::blockdev::{BlockDevice, Slice};
use crate::fs::{self, FsInfo, FsKind};
use crate::partition::{self, Label, SECTOR};

/// A tag: NAME and value.
pub type Tag = (String, String);

/// One device blkid can show.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Probed {
    /// The name printed (`/dev/xvda1`, or a file name as given).
    pub path: String,
    /// Tags of the cache-based listing, in libblkid's order.
    pub tags: Vec<Tag>,
    /// Tags of the low-level probe (`-p`), in libblkid's order.
    pub low: Vec<Tag>,
    /// Where it is mounted (for `-o list`).
    pub mountpoint: Option<String>,
}

/// A disk's devices as [`probe_disk`] gives them: (kernel name, tags), the
/// disk first.
pub type Disk = Vec<(String, Probed)>;

/// A partition as the table describes it, for its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartEntry {
    /// `gpt` or `dos`.
    pub scheme: &'static str,
    /// GPT name (none when empty, or on MBR).
    pub name: Option<String>,
    /// PARTUUID.
    pub uuid: String,
    /// The type GUID or `0xNN`.
    pub kind: String,
    /// GPT attributes or the MBR boot byte.
    pub flags: u64,
    /// Partition number.
    pub number: u32,
    /// First sector.
    pub start: u64,
    /// Sectors.
    pub sectors: u64,
    /// Whether it is an MBR extended partition (blkid skips those).
    pub extended: bool,
}

fn tag(name: &str, value: impl Into<String>) -> Tag {
    (name.to_string(), value.into())
}

const NIL_UUID: &str = "00000000-0000-0000-0000-000000000000";

/// The tags of a filesystem: cache-based (`low` false) or `-p`.
pub fn fs_tags(info: &FsInfo, low: bool, v: UtilLinux) -> Vec<Tag> {
    let mut t = Vec::new();
    let label = info.label.trim_end();
    let block_size = |t: &mut Vec<Tag>| {
        if let (Some(b), true) = (info.block_size, v >= UtilLinux::V2_37) {
            t.push(tag("BLOCK_SIZE", b.to_string()));
        }
    };
    let uuid = |t: &mut Vec<Tag>| {
        if info.uuid != NIL_UUID && !info.uuid.is_empty() {
            t.push(tag("UUID", info.uuid.clone()));
        }
    };
    let version = |t: &mut Vec<Tag>| {
        if let (Some(ver), true) = (&info.version, low) {
            t.push(tag("VERSION", ver.clone()));
        }
    };
    match info.kind {
        FsKind::Ext4 | FsKind::Xfs | FsKind::Swap => {
            if !label.is_empty() {
                t.push(tag("LABEL", label));
            }
            uuid(&mut t);
            if let Some(s) = info.sec_type {
                t.push(tag("SEC_TYPE", s));
            }
            version(&mut t);
            block_size(&mut t);
        }
        FsKind::Vfat => {
            if let Some(s) = info.sec_type {
                t.push(tag("SEC_TYPE", s));
            }
            if v >= UtilLinux::V2_34 {
                if let Some(b) = &info.boot_label {
                    t.push(tag("LABEL_FATBOOT", b.trim_end()));
                }
                if !label.is_empty() {
                    t.push(tag("LABEL", label));
                }
            } else {
                let l = if label.is_empty() || label == "NO NAME" {
                    info.boot_label.as_deref().unwrap_or("").trim_end()
                } else {
                    label
                };
                if !l.is_empty() {
                    t.push(tag("LABEL", l));
                }
            }
            uuid(&mut t);
            version(&mut t);
            block_size(&mut t);
        }
    }
    t.push(tag("TYPE", info.type_name));
    if low {
        let usage = if info.kind == FsKind::Swap {
            "other"
        } else {
            "filesystem"
        };
        t.push(tag("USAGE", usage));
    }
    t
}

/// The tags of Ubuntu's snap squashfs loops.
pub fn squashfs_tags(low: bool) -> Vec<Tag> {
    if low {
        vec![
            tag("VERSION", "4.0"),
            tag("TYPE", "squashfs"),
            tag("USAGE", "filesystem"),
        ]
    } else {
        vec![tag("TYPE", "squashfs")]
    }
}

/// A partition's own tags (after its filesystem's). `disk`: the disk's
/// MAJ:MIN.
pub fn part_tags(p: &PartEntry, low: bool, disk: (u32, u32)) -> Vec<Tag> {
    let mut t = Vec::new();
    if !low {
        if let Some(n) = &p.name {
            t.push(tag("PARTLABEL", n.clone()));
        }
        t.push(tag("PARTUUID", p.uuid.clone()));
        return t;
    }
    t.push(tag("PART_ENTRY_SCHEME", p.scheme));
    if let Some(n) = &p.name {
        t.push(tag("PART_ENTRY_NAME", n.clone()));
    }
    t.push(tag("PART_ENTRY_UUID", p.uuid.clone()));
    t.push(tag("PART_ENTRY_TYPE", p.kind.clone()));
    if p.flags != 0 {
        t.push(tag("PART_ENTRY_FLAGS", format!("0x{:x}", p.flags)));
    }
    t.push(tag("PART_ENTRY_NUMBER", p.number.to_string()));
    t.push(tag("PART_ENTRY_OFFSET", p.start.to_string()));
    t.push(tag("PART_ENTRY_SIZE", p.sectors.to_string()));
    t.push(tag("PART_ENTRY_DISK", format!("{}:{}", disk.0, disk.1)));
    t
}

/// The partitions of a table, in number order.
pub fn entries(label: &Label) -> Vec<PartEntry> {
    let lower = |s: String| s.to_ascii_lowercase();
    let mut out = Vec::new();
    match label {
        Label::Gpt(g) => {
            for (n, e) in g.partitions() {
                let name = e.name_string();
                out.push(PartEntry {
                    scheme: "gpt",
                    name: (!name.is_empty()).then_some(name),
                    uuid: lower(e.unique_guid.to_string()),
                    kind: lower(e.type_guid.to_string()),
                    flags: e.attributes,
                    number: n,
                    start: e.first_lba,
                    sectors: e.size(),
                    extended: false,
                });
            }
        }
        Label::Dos(d) => {
            for p in &d.partitions {
                out.push(PartEntry {
                    scheme: "dos",
                    name: None,
                    uuid: format!("{:08x}-{:02x}", d.disk_id, p.number),
                    kind: format!("0x{:x}", p.sys),
                    flags: u64::from(p.boot_ind),
                    number: p.number,
                    start: p.start,
                    sectors: p.size,
                    extended: d.extended == Some(p.number),
                });
            }
        }
    }
    out.sort_by_key(|p| p.number);
    out
}

/// The disk's own tags: its table's, else its filesystem's.
pub fn disk_tags(
    label: Option<&Label>,
    info: Option<&FsInfo>,
    low: bool,
    v: UtilLinux,
) -> Vec<Tag> {
    match (label, info) {
        (Some(l), _) => {
            let (pttype, ptuuid) = match l {
                Label::Gpt(g) => ("gpt", g.primary.disk_guid.to_string().to_ascii_lowercase()),
                Label::Dos(d) => ("dos", format!("{:08x}", d.disk_id)),
            };
            let mut t = Vec::new();
            if v > UtilLinux::V2_23 {
                t.push(tag("PTUUID", ptuuid));
            }
            t.push(tag("PTTYPE", pttype));
            t
        }
        (None, Some(i)) => fs_tags(i, low, v),
        (None, None) => Vec::new(),
    }
}

/// What is on `dev` (None when nothing ebsim knows, or unreadable).
pub fn probe_fs<D: BlockDevice>(dev: D) -> Option<FsInfo> {
    fs::probe(dev).ok().flatten()
}

/// A disk and its partitions as blkid shows them: `name` is the disk's
/// kernel name (partitions are named after it as the kernel names them),
/// `devno` its MAJ:MIN, `mounted` where a device (by name) is mounted.
/// The disk comes first, then its partitions in number order (only those
/// inside the disk, as the kernel shows them; extended ones left out).
pub fn probe_disk<D: BlockDevice>(
    dev: &D,
    name: &str,
    devno: (u32, u32),
    v: UtilLinux,
    mounted: &dyn Fn(&str) -> Option<String>,
) -> Vec<(String, Probed)> {
    let size = dev.size();
    let label = partition::probe(dev).ok().and_then(|p| p.label);
    // A FAT boot sector ends in 0x55AA like an MBR: libblkid takes such a
    // sector for FAT, not for a DOS table (mkfs.vfat on a whole device).
    let label =
        label.filter(|l| !(matches!(l, Label::Dos(_)) && fs::vfat::probe(dev).unwrap_or(false)));
    let whole_fs = if label.is_none() { probe_fs(dev) } else { None };
    let mut out = vec![(
        name.to_string(),
        Probed {
            path: format!("/dev/{name}"),
            tags: disk_tags(label.as_ref(), whole_fs.as_ref(), false, v),
            low: disk_tags(label.as_ref(), whole_fs.as_ref(), true, v),
            mountpoint: mounted(name),
        },
    )];
    let Some(label) = label else {
        return out;
    };
    for p in entries(&label) {
        let (Some(off), Some(len)) = (p.start.checked_mul(SECTOR), p.sectors.checked_mul(SECTOR))
        else {
            continue;
        };
        if off.saturating_add(len) > size || p.extended {
            continue;
        }
        let pname = crate::ec2::guest::partition_name(name, p.number);
        let info = Slice::new(dev, off, len).ok().and_then(probe_fs);
        let mut tags = info
            .as_ref()
            .map(|i| fs_tags(i, false, v))
            .unwrap_or_default();
        tags.extend(part_tags(&p, false, devno));
        let mut low = info
            .as_ref()
            .map(|i| fs_tags(i, true, v))
            .unwrap_or_default();
        low.extend(part_tags(&p, true, devno));
        out.push((
            pname.clone(),
            Probed {
                path: format!("/dev/{pname}"),
                tags,
                low,
                mountpoint: mounted(&pname),
            },
        ));
    }
    out
}

/// The kernel's kernfs name hash (`kernfs_name_hash` without a namespace):
/// the order `readdir` gives a sysfs directory.
pub fn kernfs_hash(name: &str) -> u32 {
    const GOLDEN_RATIO_64: u64 = 0x61C8_8646_80B5_83EB;
    let mut h: u64 = 0;
    for &c in name.as_bytes() {
        let c = u64::from(c);
        h = h.wrapping_add(c << 4).wrapping_add(c >> 4).wrapping_mul(11);
    }
    // end_name_hash: hash_long(h, 32) on a 64-bit kernel.
    let mut x = (h.wrapping_mul(GOLDEN_RATIO_64) >> 32) as u32;
    x &= 0x7fff_ffff;
    if x < 2 {
        x += 2;
    }
    if x >= 0x7fff_ffff {
        x = 0x7fff_fffe;
    }
    x
}

/// The order blkid lists every device in without a cache: disks by
/// kernfs hash, each disk's partitions by kernfs hash, a disk itself only
/// without partitions. `disks`: each disk with its devices from
/// [`probe_disk`] (the disk first).
pub fn sysfs_order(disks: Vec<Disk>) -> Vec<Probed> {
    let key = |n: &str| (kernfs_hash(n), n.to_string());
    let mut disks: Vec<Disk> = disks.into_iter().filter(|d| !d.is_empty()).collect();
    disks.sort_by_key(|d| key(&d[0].0));
    let mut out = Vec::new();
    for mut d in disks {
        if d.len() == 1 {
            out.extend(d.into_iter().map(|(_, p)| p));
            continue;
        }
        let mut parts = d.split_off(1);
        parts.sort_by_key(|(n, _)| key(n));
        out.extend(parts.into_iter().map(|(_, p)| p));
    }
    out
}

/// Output formats (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// `DEV: NAME="value" ...` (the default; `-o full`).
    #[default]
    Full,
    /// One value a line.
    Value,
    /// The device name only.
    Device,
    /// `NAME=value` lines, shell-escaped, a blank line between devices.
    Export,
    /// udev's `ID_FS_*` lines.
    Udev,
    /// The deprecated table (`-o list`).
    List,
}

/// How tags are printed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Printer {
    /// The format.
    pub format: Format,
    /// `-s`: the tags to show (all when empty).
    pub show: Vec<String>,
    /// `-d`: no encoding of non-printing characters.
    pub raw_chars: bool,
    /// Whether something was printed in export/udev format already (the
    /// blank line between devices).
    pub printed: bool,
}

/// blkid's `safe_print`: non-printing bytes as `^X` and `M-`, the bytes of
/// `esc` behind a backslash.
fn safe(value: &str, esc: &str, raw: bool) -> String {
    let mut s = String::new();
    let mut bytes = Vec::new();
    for &b in value.as_bytes() {
        let mut ch = b;
        if !raw {
            if ch >= 128 {
                bytes.extend_from_slice(b"M-");
                ch -= 128;
            }
            if ch < 32 || ch == 0x7f {
                bytes.push(b'^');
                ch ^= 0x40;
            } else if esc.as_bytes().contains(&ch) {
                bytes.push(b'\\');
            }
        }
        bytes.push(ch);
    }
    s.push_str(&String::from_utf8_lossy(&bytes));
    s
}

fn utf8_seq_len(b: &[u8]) -> usize {
    let n = match b.first() {
        Some(c) if *c < 0x80 => return 1,
        Some(c) if c & 0xE0 == 0xC0 => 2,
        Some(c) if c & 0xF0 == 0xE0 => 3,
        Some(c) if c & 0xF8 == 0xF0 => 4,
        _ => return 0,
    };
    match b.get(..n).map(std::str::from_utf8) {
        Some(Ok(_)) => n,
        _ => 0,
    }
}

/// libblkid's `blkid_encode_string`: bytes other than alphanumerics,
/// `#+-.:=@_` and valid UTF-8 sequences as `\xNN`.
pub fn encode(value: &str) -> String {
    let b = value.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let n = utf8_seq_len(&b[i..]);
        if n > 1 {
            out.push_str(&String::from_utf8_lossy(&b[i..i + n]));
            i += n;
            continue;
        }
        let c = b[i];
        if c.is_ascii_alphanumeric() || b"#+-.:=@_".contains(&c) {
            out.push(char::from(c));
        } else {
            out.push_str(&format!("\\x{c:02x}"));
        }
        i += 1;
    }
    out
}

/// libblkid's `blkid_safe_string`: whitespace trimmed and runs of it made
/// one `_`, other unprintable bytes `_`.
pub fn safe_string(value: &str) -> String {
    let words: Vec<&str> = value
        .split(|c: char| c.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    let joined = words.join(" ");
    let b = joined.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c > 0x20 && c <= 0x7e {
            out.push(char::from(c));
            i += 1;
        } else if c == b' ' {
            out.push('_');
            i += 1;
        } else {
            let n = utf8_seq_len(&b[i..]);
            if n >= 1 {
                out.push_str(&String::from_utf8_lossy(&b[i..i + n]));
                i += n;
            } else {
                out.push('_');
                i += 1;
            }
        }
    }
    out
}

fn udev_line(name: &str, value: &str) -> String {
    const ENCODED: &[&str] = &[
        "TYPE",
        "VERSION",
        "SYSTEM_ID",
        "PUBLISHER_ID",
        "APPLICATION_ID",
        "BOOT_SYSTEM_ID",
        "VOLUME_ID",
        "LOGICAL_VOLUME_ID",
        "VOLUME_SET_ID",
        "DATA_PREPARER_ID",
    ];
    if ENCODED.contains(&name) {
        format!("ID_FS_{name}={}\n", encode(value))
    } else if name == "UUID" || name.starts_with("LABEL") || name == "UUID_SUB" {
        format!(
            "ID_FS_{name}={}\nID_FS_{name}_ENC={}\n",
            safe_string(value),
            encode(value)
        )
    } else if name == "PTUUID" {
        format!("ID_PART_TABLE_UUID={value}\n")
    } else if name == "PTTYPE" {
        format!("ID_PART_TABLE_TYPE={value}\n")
    } else if name == "PART_ENTRY_NAME" || name == "PART_ENTRY_TYPE" {
        format!("ID_{name}={}\n", encode(value))
    } else if name.starts_with("PART_ENTRY_") {
        format!("ID_{name}={value}\n")
    } else {
        format!("ID_FS_{name}={value}\n")
    }
}

impl Printer {
    fn shown<'a>(&self, tags: &'a [Tag]) -> Vec<&'a Tag> {
        tags.iter()
            .filter(|(n, _)| self.show.is_empty() || self.show.contains(n))
            .collect()
    }

    fn value(&self, out: &mut String, first: bool, dev: &str, (name, value): &Tag) {
        match self.format {
            Format::Value => {
                out.push_str(value);
                out.push('\n');
            }
            Format::Udev => out.push_str(&udev_line(name, value)),
            Format::Export => {
                if first {
                    out.push_str(&format!("DEVNAME={dev}\n"));
                }
                out.push_str(&format!(
                    "{name}={}\n",
                    safe(value, " \\\"'$`<>", self.raw_chars)
                ));
            }
            _ => {
                if first {
                    out.push_str(&format!("{dev}:"));
                }
                out.push_str(&format!(
                    " {name}=\"{}\"",
                    safe(value, "\"\\", self.raw_chars)
                ));
            }
        }
    }

    /// blkid's `print_tags`: one device of the cache-based listing.
    pub fn cache_device(&mut self, out: &mut String, d: &Probed) {
        match self.format {
            Format::List => {
                out.push_str(&list_line(
                    &d.path,
                    tag_value(&d.tags, "TYPE"),
                    tag_value(&d.tags, "LABEL"),
                    d.mountpoint.as_deref().unwrap_or("(not mounted)"),
                    tag_value(&d.tags, "UUID"),
                ));
                return;
            }
            Format::Device => {
                out.push_str(&d.path);
                out.push('\n');
                return;
            }
            _ => {}
        }
        let shown = self.shown(&d.tags);
        for (i, t) in shown.iter().enumerate() {
            if i == 0 && self.printed && matches!(self.format, Format::Udev | Format::Export) {
                out.push('\n');
            }
            self.value(out, i == 0, &d.path, t);
        }
        if !shown.is_empty() {
            if self.format == Format::Full {
                out.push('\n');
            }
            self.printed = true;
        }
    }

    /// blkid's `lowprobe_device` output for one device with tags.
    pub fn low_device(&mut self, out: &mut String, d: &Probed) {
        if d.low.is_empty() {
            return;
        }
        if self.printed && matches!(self.format, Format::Udev | Format::Export) {
            out.push('\n');
        }
        self.printed = true;
        if self.format == Format::Device {
            out.push_str(&d.path);
            out.push('\n');
            return;
        }
        let shown = self.shown(&d.low);
        for (i, t) in shown.iter().enumerate() {
            self.value(out, i == 0, &d.path, t);
        }
        if self.format == Format::Full {
            out.push('\n');
        }
    }
}

fn tag_value<'a>(tags: &'a [Tag], name: &str) -> &'a str {
    tags.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// blkid's `pretty_print_word`: the word, then spaces to `max` (a word
/// longer than the device column breaks the line).
fn word(out: &mut String, s: &str, max: usize, left: usize, overflow_nl: bool) -> usize {
    let mut len = s.len() + left;
    let mut ret = 0;
    out.push_str(s);
    if overflow_nl && len > max {
        out.push('\n');
        len = 0;
    } else if len > max {
        ret = len - max;
    }
    loop {
        out.push(' ');
        let more = len < max;
        len += 1;
        if !more {
            break;
        }
    }
    ret
}

/// One line of `-o list` at blkid's widths for an 80-column output (what
/// it assumes when stdout is not a terminal).
pub fn list_line(dev: &str, fs_type: &str, label: &str, mtpt: &str, uuid: &str) -> String {
    let mut out = String::new();
    let len = word(&mut out, dev, 10, 0, true);
    let len = word(&mut out, fs_type, 7, len, false);
    let len = word(&mut out, label, 8, len, false);
    word(&mut out, mtpt, 14, len, false);
    out.push_str(uuid);
    out.push('\n');
    out
}

/// The header of `-o list` (no rule under it when stdout is not a
/// terminal).
pub fn list_header() -> String {
    list_line("device", "fs_type", "label", "mount point", "UUID") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernfs_order_matches_sysfs() {
        // `ls -f /sys/block` and `ls -f /sys/block/loop0` on a 6.x kernel.
        let mut names = vec![
            "loop0", "loop1", "loop2", "loop3", "loop4", "loop5", "loop6", "loop7", "loop8", "vda",
            "zram0",
        ];
        names.sort_by_key(|n| kernfs_hash(n));
        assert_eq!(
            names,
            [
                "loop1", "loop8", "loop6", "loop4", "loop2", "loop0", "loop7", "zram0", "loop5",
                "vda", "loop3"
            ]
        );
        let mut parts = vec!["loop0p1", "loop0p127", "loop0p128"];
        parts.sort_by_key(|n| kernfs_hash(n));
        assert_eq!(parts, ["loop0p127", "loop0p1", "loop0p128"]);
    }

    #[test]
    fn list_lines() {
        assert_eq!(
            list_header(),
            "device     fs_type label    mount point    UUID\n\n"
        );
        assert_eq!(
            list_line("e4.img", "ext4", "my data", "(not mounted)", "dfa4b59d"),
            "e4.img     ext4    my data  (not mounted)  dfa4b59d\n"
        );
        assert_eq!(
            list_line("/dev/loop0p1", "ext4", "", "(not mounted)", "u"),
            "/dev/loop0p1\n           ext4             (not mounted)  u\n"
        );
    }

    #[test]
    fn encodings() {
        assert_eq!(encode("my data"), "my\\x20data");
        assert_eq!(safe_string("  my  data "), "my_data");
        assert_eq!(safe("a\"b\\c", "\"\\", false), "a\\\"b\\\\c");
        assert_eq!(safe("a b$", " \\\"'$`<>", false), "a\\ b\\$");
        assert_eq!(safe("\u{1}", "", false), "^A");
    }
}
