//! Segmented images through the image layer: the same reads, writes,
//! punches, extent maps, undo logs and fault points as a file image.

use super::*;
use crate::blockdev::segmented::{MANIFEST, segment_name};

const S: u64 = 1 << 20;

/// Everything in a directory, read raw: each file's name, length, allocated
/// extents and their bytes (sorted by name).
type DirState = Vec<(String, u64, Vec<Range<u64>>, Vec<u8>)>;

fn raw_state(dir: &Path) -> DirState {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let p = dir.join(&n);
            let f = File::open(&p).unwrap();
            let len = f.metadata().unwrap().len();
            let mut ext = Vec::new();
            let mut bytes = Vec::new();
            let mut pos = 0;
            while let Seek::Data(d) = seek_file(&f, &p, pos).unwrap() {
                let mut b = vec![0u8; (d.end - d.start) as usize];
                f.read_exact_at(&mut b, d.start).unwrap();
                bytes.extend(b);
                pos = d.end;
                ext.push(d);
            }
            (n, len, ext, bytes)
        })
        .collect()
}

/// Copies an image directory, keeping holes.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap();
    for (name, len, ext, bytes) in raw_state(from) {
        let f = File::create(to.join(&name)).unwrap();
        f.set_len(len).unwrap();
        let mut at = 0usize;
        for r in ext {
            let n = (r.end - r.start) as usize;
            f.write_all_at(&bytes[at..at + n], r.start).unwrap();
            at += n;
        }
    }
}

fn injected(r: Result<(), Error>) -> bool {
    matches!(
        r,
        Err(Error::Commit { ref source, outcome: CommitOutcome::RollBackPending { .. } | CommitOutcome::RollForwardPending { .. } })
            if matches!(**source, Error::InjectedFault(_))
    )
}

fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The image's contents through the image layer (length, then every
/// byte), to compare with a model.
fn contents(p: &Path) -> Vec<u8> {
    let img = ImageFile::open(p, Access::ReadOnly).unwrap();
    img.read_vec(0, img.size() as usize).unwrap()
}

#[test]
fn segments_read_write_punch_and_map_as_one_device() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("s.img");
    let len = 3 * S + 3 * 4096;
    let mut img = ImageFile::create_segmented(&p, len, Some(S)).unwrap();
    assert_eq!(img.size(), len);
    assert_eq!(img.segment_paths().len(), 4);
    let mut model = vec![0u8; len as usize];
    let mut b = WriteBatch::new();
    for (off, n, seed) in [
        (S - 100, 200usize, 1u64),
        (2 * S - 4096, 8192, 2),
        (3 * S + 4096, 4096, 3),
        (10, 5, 4),
    ] {
        let bytes = noise(seed, n);
        model[off as usize..off as usize + n].copy_from_slice(&bytes);
        b.write(off, bytes);
    }
    img.commit(&b).unwrap();
    assert_eq!(img.read_vec(0, len as usize).unwrap(), model);
    // One extent across the boundary of segments 1 and 2.
    let map = img.data_ranges(0..len).unwrap();
    assert!(map.contains(&(2 * S - 4096..2 * S + 4096)), "{map:?}");
    assert!(map.iter().all(|r| r.start < r.end));
    // Reading a range that straddles three segments.
    assert_eq!(
        img.read_vec(S - 10, (2 * S) as usize).unwrap(),
        model[(S - 10) as usize..(3 * S - 10) as usize]
    );
    // A discard across a boundary punches in both segments.
    let mut b = WriteBatch::new();
    b.discard(2 * S - 4096..2 * S + 4096);
    img.commit(&b).unwrap();
    model[(2 * S - 4096) as usize..(2 * S + 4096) as usize].fill(0);
    assert_eq!(img.read_vec(0, len as usize).unwrap(), model);
    assert!(
        img.data_ranges(2 * S - 4096..2 * S + 4096)
            .unwrap()
            .is_empty()
    );
    assert!(img.allocated_bytes().unwrap() < 64 * 1024);
    assert!(img.read_vec(len - 1, 2).is_err());
    drop(img);
    assert!(!undo_log_path(&p).exists());
    assert_eq!(contents(&p), model);
}

/// Interrupts `plan` on a copy of `template` after every write step; each
/// time the next open must leave the image exactly (every file, byte and
/// extent) as before or as a clean commit leaves it. Returns the steps.
fn sweep(template: &Path, plan: &WriteBatch) -> u64 {
    let before = raw_state(template);
    let clean = tempfile::tempdir().unwrap();
    let cp = clean.path().join("s.img");
    copy_dir(template, &cp);
    let mut img = ImageFile::open(&cp, Access::ReadWrite).unwrap();
    img.writes_made = 0;
    img.commit(plan).unwrap();
    let steps = img.writes_made;
    drop(img);
    let after = raw_state(&cp);
    assert_ne!(before, after);
    let (mut back, mut forward) = (0, 0);
    for k in 0..steps {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("s.img");
        copy_dir(template, &p);
        {
            let mut img = ImageFile::open(&p, Access::ReadWrite).unwrap();
            img.fault_after = Some(k);
            assert!(injected(img.commit(plan)), "step {k} of {steps}");
        }
        assert!(undo_log_path(&p).exists(), "step {k}");
        drop(ImageFile::open(&p, Access::ReadOnly).unwrap());
        assert!(!undo_log_path(&p).exists(), "step {k}");
        let now = raw_state(&p);
        if now == before {
            back += 1;
        } else if now == after {
            forward += 1;
        } else {
            panic!("step {k} of {steps}: neither before nor after");
        }
    }
    assert!(back > 0);
    if !plan.discards().is_empty() {
        assert!(forward > 0);
    }
    steps
}

#[test]
fn a_segmented_grow_is_crash_safe_at_every_step() {
    let d = tempfile::tempdir().unwrap();
    let t = d.path().join("t.img");
    let old = 2 * S + S / 2;
    let mut img = ImageFile::create_segmented(&t, old, Some(S)).unwrap();
    let mut b = WriteBatch::new();
    b.write(0, noise(1, 3 * 4096));
    b.write(S - 4096, noise(2, 8192));
    b.write(old - 4096, noise(3, 4096));
    img.commit(&b).unwrap();
    drop(img);
    // Grows the last segment and adds two; writes across the old end and
    // a new boundary; discards old data.
    let mut plan = WriteBatch {
        new_len: Some(4 * S + 8192),
        ops: Vec::new(),
    };
    plan.write(S - 512, noise(4, 1024));
    plan.write(old - 2048, noise(5, 4096));
    plan.write(3 * S - 4096, noise(6, 8192));
    plan.write(4 * S + 4096, noise(7, 100));
    plan.discard(0..S / 2);
    let steps = sweep(&t, &plan);
    // The length change alone is 4 steps: the last segment, two new
    // segments, the manifest.
    assert!(steps >= 4 + 4 + 2, "{steps}");
}

#[test]
fn a_segmented_shrink_is_crash_safe_at_every_step() {
    let d = tempfile::tempdir().unwrap();
    let t = d.path().join("t.img");
    let mut img = ImageFile::create_segmented(&t, 4 * S, Some(S)).unwrap();
    let mut b = WriteBatch::new();
    for i in 0..4 {
        b.write(i * S + S - 8192, noise(i + 10, 8192));
    }
    img.commit(&b).unwrap();
    drop(img);
    let mut plan = WriteBatch {
        new_len: Some(S + S / 2),
        ops: Vec::new(),
    };
    plan.write(S - 100, noise(20, 200));
    sweep(&t, &plan);
}

#[test]
fn damaged_segmented_images_are_refused_and_left_alone() {
    let d = tempfile::tempdir().unwrap();
    let t = d.path().join("t.img");
    let mut img = ImageFile::create_segmented(&t, 3 * S, Some(S)).unwrap();
    let mut b = WriteBatch::new();
    b.write(S - 10, noise(1, 20));
    img.commit(&b).unwrap();
    drop(img);
    type Damage = fn(&Path);
    let cases: Vec<(&str, Damage, &str)> = vec![
        (
            "manifest edited",
            |p| {
                let m = std::fs::read_to_string(p.join(MANIFEST)).unwrap();
                std::fs::write(
                    p.join(MANIFEST),
                    m.replace("seg-00002 1048576", "seg-00002 1048577"),
                )
                .unwrap();
            },
            "manifest: the manifest's CRC32C is",
        ),
        (
            "manifest cut short",
            |p| {
                let m = std::fs::read(p.join(MANIFEST)).unwrap();
                std::fs::write(p.join(MANIFEST), &m[..m.len() / 2]).unwrap();
            },
            "cut short",
        ),
        (
            "manifest missing",
            |p| std::fs::remove_file(p.join(MANIFEST)).unwrap(),
            "is a directory",
        ),
        (
            "segment missing",
            |p| std::fs::remove_file(p.join(segment_name(1))).unwrap(),
            "seg-00001 is missing (the manifest lists it with 1048576 bytes)",
        ),
        (
            "segment truncated",
            |p| {
                let f = OpenOptions::new()
                    .write(true)
                    .open(p.join(segment_name(2)))
                    .unwrap();
                f.set_len(S / 2).unwrap();
            },
            "seg-00002 is 524288 bytes, the manifest says 1048576",
        ),
        (
            "segment longer",
            |p| {
                let f = OpenOptions::new()
                    .write(true)
                    .open(p.join(segment_name(0)))
                    .unwrap();
                f.set_len(2 * S).unwrap();
            },
            "seg-00000 is 2097152 bytes, the manifest says 1048576",
        ),
        (
            "segment beyond the manifest",
            |p| drop(File::create(p.join(segment_name(3))).unwrap()),
            "seg-00003 is not in the manifest, which lists 3 segments",
        ),
        (
            "segment a symlink",
            |p| {
                std::fs::rename(p.join(segment_name(1)), p.join("elsewhere")).unwrap();
                std::os::unix::fs::symlink("elsewhere", p.join(segment_name(1))).unwrap();
            },
            "seg-00001 is a symbolic link",
        ),
    ];
    for (what, damage, want) in cases {
        let w = tempfile::tempdir().unwrap();
        let p = w.path().join("s.img");
        copy_dir(&t, &p);
        damage(&p);
        let before = raw_state(&p);
        for access in [Access::ReadOnly, Access::ReadWrite] {
            let e = ImageFile::open(&p, access).unwrap_err();
            assert!(e.to_string().contains(want), "{what}: {e}");
            assert!(e.to_string().contains("s.img"), "{what}: {e}");
        }
        assert_eq!(raw_state(&p), before, "{what}: changed");
        assert_eq!(std::fs::read_dir(w.path()).unwrap().count(), 1, "{what}");
    }
}

#[test]
fn a_file_image_grown_past_the_host_limit_becomes_segmented() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("f.img");
    let big = 20u64 << 40;
    let mut img = ImageFile::create(&p, 1 << 30).unwrap();
    let mut b = WriteBatch::new();
    b.write(4096, noise(1, 8192));
    b.write((1 << 30) - 4096, noise(2, 4096));
    img.commit(&b).unwrap();
    let host_caps = !segmented::host_takes(&undo::real_path(&p), big).unwrap();
    let ino = std::fs::metadata(&p).unwrap().ino();
    img.set_len(big).unwrap();
    assert_eq!(img.size(), big);
    assert_eq!(img.read_vec(4096, 8192).unwrap(), noise(1, 8192));
    assert_eq!(
        img.read_vec((1 << 30) - 4096, 4096).unwrap(),
        noise(2, 4096)
    );
    assert!(img.allocated_bytes().unwrap() < 1 << 20);
    // Still locked and writable after the conversion.
    let mut b = WriteBatch::new();
    b.write(big - 4096, noise(3, 4096));
    img.commit(&b).unwrap();
    drop(img);
    let img = ImageFile::open(&p, Access::ReadWrite).unwrap();
    assert_eq!(img.read_vec(big - 4096, 4096).unwrap(), noise(3, 4096));
    assert_eq!(img.data_ranges(0..big).unwrap().len(), 3);
    match img.layout().unwrap() {
        segmented::Layout::Segmented { manifest, .. } => {
            assert!(host_caps, "segmented on a host that takes {big} bytes");
            // The old file is the first segment (grown like any last one).
            let seg0 = std::fs::metadata(p.join(segment_name(0))).unwrap();
            assert_eq!(seg0.ino(), ino);
            assert_eq!(manifest.segments[0], seg0.len());
            assert_eq!(manifest.length, big);
            assert!(p.is_dir());
        }
        segmented::Layout::File { .. } => assert!(!host_caps),
    }
    assert!(!undo_log_path(&p).exists());
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
}

#[test]
fn create_picks_a_file_or_segments_by_what_the_host_takes() {
    let d = tempfile::tempdir().unwrap();
    for (name, len) in [("small.img", 1u64 << 30), ("big.img", 64 << 40)] {
        let p = d.path().join(name);
        let takes = segmented::host_takes(&undo::real_path(&p), len).unwrap();
        let img = ImageFile::create(&p, len).unwrap();
        assert_eq!(img.size(), len);
        assert_eq!(p.is_dir(), !takes, "{name}");
        assert!(img.allocated_bytes().unwrap() < 1 << 20);
        assert!(img.data_ranges(0..len).unwrap().is_empty());
    }
}

#[test]
fn an_interrupted_conversion_is_finished_or_forgotten() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("c.img");
    let mut img = ImageFile::create(&p, 8 * S).unwrap();
    let mut b = WriteBatch::new();
    b.write(S, noise(9, 4096));
    img.commit(&b).unwrap();
    drop(img);
    let tmp = d.path().join("c.img.ebsim-seg");
    // Cut before the file moved: the directory is forgotten.
    {
        let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
        segmented::create(&tmp, 0, Some(S)).unwrap();
        std::fs::remove_file(tmp.join(segment_name(0))).unwrap();
        drop(f);
    }
    let img = ImageFile::open(&p, Access::ReadOnly).unwrap();
    assert!(!tmp.exists());
    assert!(p.is_file());
    drop(img);
    // Cut after the file moved, before the directory took its name: the
    // next open finishes it.
    {
        std::fs::create_dir(&tmp).unwrap();
        std::fs::rename(&p, tmp.join(segment_name(0))).unwrap();
        let m = format!(
            "ebsim segmented image 1\nlength {}\nsegment-size {S}\nseg-00000 {}\n",
            8 * S,
            8 * S
        );
        let crc = crc32c::crc32c(m.as_bytes());
        std::fs::write(tmp.join(MANIFEST), format!("{m}crc32c {crc:08x}\n")).unwrap();
    }
    let img = ImageFile::open(&p, Access::ReadOnly).unwrap();
    assert!(p.is_dir());
    assert!(!tmp.exists());
    assert_eq!(img.read_vec(S, 4096).unwrap(), noise(9, 4096));
}
