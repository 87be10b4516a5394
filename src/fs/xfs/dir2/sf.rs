//! Short-form directories (`xfs_dir2_sf_hdr` + `xfs_dir2_sf_entry`): the
//! entries packed in the inode's data fork. Header `{count u8, i8count
//! u8, parent}`, then per entry `{namelen u8, offset be16, name, ftype
//! u8, inumber}`. Inode numbers take 4 bytes unless one of them (the
//! parent included) needs 8, which `i8count` counts; then all take 8.
//! `offset` is where the entry would sit in a data block; the kernel
//! insists they increase.

use super::{DirError, DirGeo, Entry};
use crate::bytes::{read_u16be, read_u32be, read_u64be, write_u16be, write_u32be, write_u64be};

/// The largest inode number a 4-byte field holds.
const MAX_SHORT_INUM: u64 = 0xffff_ffff;

/// Parses a short-form directory of `size` bytes from `fork`: its parent
/// and its entries in order.
pub fn parse(fork: &[u8], size: u64, geo: &DirGeo) -> Result<(u64, Vec<Entry>), DirError> {
    let bad = |s: String| DirError::ShortForm(s);
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    if size > fork.len() {
        return Err(bad(format!(
            "size {size} is larger than the {}-byte fork",
            fork.len()
        )));
    }
    let b = &fork[..size];
    if b.len() < 6 {
        return Err(bad(format!("only {} bytes", b.len())));
    }
    let count = usize::from(b[0]);
    let i8count = usize::from(b[1]);
    let wide = i8count > 0;
    let inosize = if wide { 8 } else { 4 };
    let hdr = 2 + inosize;
    if b.len() < hdr {
        return Err(bad("header does not fit".into()));
    }
    let read_ino = |at: usize| {
        if wide {
            read_u64be(b, at)
        } else {
            u64::from(read_u32be(b, at))
        }
    };
    let parent = read_ino(2);
    let mut big = usize::from(parent > MAX_SHORT_INUM);
    let mut pos = hdr;
    let mut min_offset = geo.data_first_offset();
    let mut entries = Vec::with_capacity(count);
    for i in 0..count {
        if pos + 3 > b.len() {
            return Err(bad(format!("entry {i} starts past the end")));
        }
        let namelen = usize::from(b[pos]);
        if namelen == 0 {
            return Err(bad(format!("entry {i} has an empty name")));
        }
        let offset = usize::from(read_u16be(b, pos + 1));
        let ft_len = usize::from(geo.has_ftype);
        let next = pos + 3 + namelen + ft_len + inosize;
        if next > b.len() {
            return Err(bad(format!("entry {i} runs past the end")));
        }
        if offset < min_offset {
            return Err(bad(format!(
                "entry {i} has offset {offset} below {min_offset}"
            )));
        }
        let name = b[pos + 3..pos + 3 + namelen].to_vec();
        let ftype = if geo.has_ftype {
            b[pos + 3 + namelen]
        } else {
            super::ftype::UNKNOWN
        };
        if ftype >= super::ftype::MAX {
            return Err(bad(format!("entry {i} has file type {ftype}")));
        }
        let ino = read_ino(pos + 3 + namelen + ft_len);
        big += usize::from(ino > MAX_SHORT_INUM);
        min_offset = offset + geo.entsize(namelen);
        entries.push(Entry { name, ino, ftype });
        pos = next;
    }
    if big != i8count {
        return Err(bad(format!(
            "i8count is {i8count} but {big} inode numbers need 8 bytes"
        )));
    }
    if pos != b.len() {
        return Err(bad(format!("entries end at {pos}, size is {}", b.len())));
    }
    Ok((parent, entries))
}

/// Whether the inode numbers need the 8-byte form.
fn wide(parent: u64, entries: &[&Entry]) -> usize {
    usize::from(parent > MAX_SHORT_INUM) + entries.iter().filter(|e| e.ino > MAX_SHORT_INUM).count()
}

/// Bytes a short-form directory with these entries takes.
pub fn size(parent: u64, entries: &[&Entry], geo: &DirGeo) -> usize {
    let inosize = if wide(parent, entries) > 0 { 8 } else { 4 };
    let per: usize = entries
        .iter()
        .map(|e| 3 + e.name.len() + usize::from(geo.has_ftype) + inosize)
        .sum();
    2 + inosize + per
}

/// Whether a short-form directory may hold this many entries at all (the
/// count is one byte; the verifier's "ought to be local" bound).
pub fn fits(parent: u64, entries: &[&Entry], geo: &DirGeo, fork_size: usize) -> bool {
    if entries.len() > 255 || size(parent, entries, geo) > fork_size {
        return false;
    }
    let last = geo.data_first_offset()
        + entries
            .iter()
            .map(|e| geo.entsize(e.name.len()))
            .sum::<usize>();
    last + (entries.len() + 2) * 8 + 8 <= geo.blksize
}

/// The bytes of a short-form directory (its size is the inode's
/// `di_size`).
pub fn build(parent: u64, entries: &[&Entry], geo: &DirGeo) -> Vec<u8> {
    let i8count = wide(parent, entries);
    let inosize = if i8count > 0 { 8 } else { 4 };
    let mut b = vec![0u8; size(parent, entries, geo)];
    b[0] = entries.len().min(255) as u8;
    b[1] = i8count.min(255) as u8;
    let put_ino = |b: &mut [u8], at: usize, ino: u64| {
        if inosize == 8 {
            write_u64be(b, at, ino);
        } else {
            write_u32be(b, at, ino as u32);
        }
    };
    put_ino(&mut b, 2, parent);
    let mut pos = 2 + inosize;
    let mut offset = geo.data_first_offset();
    for e in entries {
        let n = e.name.len();
        b[pos] = n as u8;
        write_u16be(&mut b, pos + 1, offset as u16);
        b[pos + 3..pos + 3 + n].copy_from_slice(&e.name);
        let mut at = pos + 3 + n;
        if geo.has_ftype {
            b[at] = e.ftype;
            at += 1;
        }
        put_ino(&mut b, at, e.ino);
        pos = at + inosize;
        offset += geo.entsize(n);
    }
    b
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test may panic
mod tests {
    use super::*;

    fn e(name: &str, ino: u64) -> Entry {
        Entry {
            name: name.as_bytes().to_vec(),
            ino,
            ftype: 1,
        }
    }

    #[test]
    fn round_trip_narrow_and_wide() {
        let g = DirGeo::new(4096, 0, true);
        let v = [e("a", 131), e("hello", 132)];
        let refs: Vec<&Entry> = v.iter().collect();
        let b = build(128, &refs, &g);
        assert_eq!(b.len(), 6 + 9 + 13);
        assert_eq!(&b[..6], &[2, 0, 0, 0, 0, 128]);
        assert_eq!(parse(&b, b.len() as u64, &g).unwrap(), (128, v.to_vec()));
        let w = [e("x", 1 << 33), e("y", 7)];
        let refs: Vec<&Entry> = w.iter().collect();
        let b = build(128, &refs, &g);
        assert_eq!(b[1], 1);
        assert_eq!(parse(&b, b.len() as u64, &g).unwrap(), (128, w.to_vec()));
        let b = build(1 << 40, &[], &g);
        assert_eq!(b.len(), 10);
        assert_eq!(parse(&b, 10, &g).unwrap(), (1 << 40, vec![]));
        // Wrong size, wrong i8count.
        let mut bad = build(128, &refs, &g);
        assert!(parse(&bad, bad.len() as u64 - 1, &g).is_err());
        bad[1] = 0;
        assert!(parse(&bad, bad.len() as u64, &g).is_err());
    }

    #[test]
    fn capacity() {
        let g = DirGeo::new(4096, 0, true);
        // 10-character names: 18 bytes each; 6 + 18n <= 336 -> 18 entries.
        let v: Vec<Entry> = (0..19)
            .map(|i| e(&format!("file{i:06}"), 200 + i))
            .collect();
        let refs: Vec<&Entry> = v.iter().collect();
        assert!(fits(128, &refs[..18], &g, 336));
        assert!(!fits(128, &refs, &g, 336));
    }
}
