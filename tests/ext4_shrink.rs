//! resize2fs shrinking an ext4 offline, differential against real
//! e2fsprogs 1.47.0: fresh filesystems (the journal moves), populated ones
//! (data, extent trees, indirect blocks and extended attribute blocks
//! move; inodes past the new groups are renumbered and the directories
//! naming them rewritten), `-M`, `-p`, and the refusals. Run whenever the
//! real tools are installed; they fail, not skip, under CI otherwise.

mod common;
mod ext4_util;

use common::{require_mount, require_tools, run, stderr, stdout};
use ext4_util::*;
use std::path::{Path, PathBuf};
use std::process::Output;

/// resize2fs (real or ebsim) with `opts`, the image, then `size` if any.
fn shrink(ebsim: bool, img: &Path, opts: &[&str], size: Option<&str>) -> Output {
    let mut c = if ebsim {
        common::ebsim("resize2fs")
    } else {
        tool("resize2fs")
    };
    c.current_dir(img.parent().expect("dir"))
        .env("E2FSPROGS_FAKE_TIME", GROW_TIME)
        .args(opts)
        .arg(img.file_name().expect("name"))
        .args(size);
    run(&mut c)
}

/// Shrinks copies of `src` (in `dir`) with real resize2fs and ebsim: the
/// same exit code, stdout (the `-p` meters included) and stderr; the image
/// files cut to the same length; the whole dumpe2fs and every non-hole
/// block equal but for the lifetime-writes statistic (ebsim counts its
/// batch's bytes when blocks move); e2fsck clean; no more allocated than
/// real; the files of `tree` read back by ebsim's reader. Returns the new
/// block count and the shared stdout.
fn shrink_differential(
    dir: &Path,
    src: &Path,
    opts: &[&str],
    size: Option<&str>,
    tree: Option<&Path>,
    what: &str,
) -> (u64, String) {
    std::fs::create_dir_all(dir.join("real")).expect("mkdir");
    std::fs::create_dir_all(dir.join("ebsim")).expect("mkdir");
    let real = dir.join("real/img");
    let ours = dir.join("ebsim/img");
    for p in [&real, &ours] {
        let _ = std::fs::remove_file(p);
        common::sparse_copy(src, p);
    }
    let r = shrink(false, &real, opts, size);
    let o = shrink(true, &ours, opts, size);
    assert_eq!(o.status.code(), r.status.code(), "{what}: {}", stderr(&o));
    assert_eq!(stdout(&o), stdout(&r), "{what}: stdout");
    assert_eq!(stderr(&o), stderr(&r), "{what}: stderr");
    assert_eq!(o.status.code(), Some(0), "{what}: {}", stderr(&r));
    let len = |p: &Path| std::fs::metadata(p).expect("stat").len();
    assert_eq!(len(&ours), len(&real), "{what}: image length");
    assert!(len(&ours) < len(src), "{what}: nothing shrank");
    let n = assert_metadata_equal(&real, &ours, Lifetime::Moved, what);
    assert_dumpe2fs_equal(
        &dumpe2fs(&real, false),
        &dumpe2fs(&ours, false),
        Lifetime::Moved,
        what,
    );
    assert_fsck_clean(&ours);
    let (a, b) = (allocated(&real), allocated(&ours));
    assert!(b <= a, "{what}: ebsim allocated {b} bytes, real {a}");
    if let Some(t) = tree {
        let files = assert_tree_matches(&ours, t);
        assert!(files > 60, "{what}: only {files} entries checked");
    }
    eprintln!("{what}: {n} blocks identical");
    (len(&ours) / BS, stdout(&o))
}

/// Fresh filesystems: the journal (in the middle group) moves block by
/// block and its extent ends as two (all but the last block, then the
/// last), the superblock's backup of its block map follows; `-M`, `-p`,
/// 1 KiB blocks, no resize inode (descriptor blocks freed), and ext3 (the
/// journal mapped by indirect blocks, which move with it).
#[test]
fn shrink_fresh_filesystems() {
    if !require_tools(TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src.img");
    for (mk, bytes, cases) in [
        (
            &[][..],
            4 * GIB,
            &[
                (&[][..], Some("1G")),
                (&["-M"][..], None),
                (&["-p"][..], Some("2G")),
                (&[][..], Some("3000M")),
            ][..],
        ),
        (&["-b", "1024"][..], GIB, &[(&["-p"][..], Some("300M"))][..]),
        (
            &["-O", "^resize_inode"][..],
            3 * GIB,
            &[(&[][..], Some("1G"))][..],
        ),
        (
            &["-t", "ext3"][..],
            3 * GIB,
            &[(&["-p"][..], Some("1G"))][..],
        ),
        (
            &["-O", "^metadata_csum,^64bit"][..],
            3 * GIB,
            &[(&["-M"][..], None)][..],
        ),
    ] {
        let _ = std::fs::remove_file(&src);
        sparse_file(&src, bytes);
        let o = real_mkfs(&src, mk);
        assert!(o.status.success(), "mkfs {mk:?}: {}", stderr(&o));
        for (opts, size) in cases {
            let what = format!("mkfs {mk:?} {bytes}: resize2fs {opts:?} {size:?}");
            shrink_differential(dir.path(), &src, opts, *size, None, &what);
        }
    }
    // The journal moved (the last case, -M): block by block, its one
    // extent became all but its last block, then the last.
    let o = run(tool("debugfs")
        .arg("-R")
        .arg("stat <8>")
        .arg(dir.path().join("ebsim/img")));
    let stat = stdout(&o);
    assert!(
        stat.contains("(0-16382):") && stat.contains(", (16383):"),
        "{stat}"
    );
}

/// A filesystem populated by debugfs (the shared tree: nested
/// directories, small files, a sparse file with data 1 GiB in, symlinks)
/// shrunk to its minimum: what lies past the new end moves, the sparse
/// file's far extent among it.
#[test]
fn shrink_debugfs_populated_to_minimum() {
    if !require_tools(TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("tree");
    make_tree(&tree);
    let src = dir.path().join("src.img");
    sparse_file(&src, 3 * GIB);
    real_mkfs(&src, &[]);
    populate_with_debugfs(&src, &tree);
    assert_fsck_clean(&src);
    let (blocks, _) = shrink_differential(dir.path(), &src, &["-M", "-p"], None, Some(&tree), "-M");
    assert!(blocks < 3 * GIB / BS / 4, "{blocks}");
}

/// The kernel writes the tree (its allocator spreads directories over the
/// groups), a directory of 1500 entries (an htree), hard links and an
/// extended attribute block; shrinking renumbers the inodes of the removed
/// groups, rewrites the directories naming them (and their checksums),
/// moves data, extent tree and attribute blocks. ext4 and ext3 (indirect
/// blocks), to a size and to the minimum.
#[test]
fn shrink_kernel_populated_moves_inodes() {
    if !require_tools(TOOLS) || !require_mount() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("tree");
    make_tree(&tree);
    std::fs::create_dir_all(tree.join("many")).expect("mkdir");
    for i in 0..1500 {
        std::fs::write(
            tree.join(format!("many/entry-with-a-longer-name-{i:05}")),
            format!("{i}\n"),
        )
        .expect("write");
    }
    for d in 0..12 {
        std::fs::create_dir_all(tree.join(format!("spread-{d}/sub"))).expect("mkdir");
        if d % 4 == 1 {
            // Big directories (htrees) where the top-level ones land.
            for i in 0..1200 {
                std::fs::write(tree.join(format!("spread-{d}/sub/n-{i:04}")), b"").expect("write");
            }
        }
        std::fs::write(
            tree.join(format!("spread-{d}/sub/data")),
            vec![d as u8 + 1; 40_000 * (d + 1)],
        )
        .expect("write");
    }
    for (mk, cases) in [
        (
            &[][..],
            &[(&["-p"][..], Some("1200M")), (&["-M"][..], None)][..],
        ),
        (&["-t", "ext3"][..], &[(&[][..], Some("1200M"))][..]),
    ] {
        // 8 GiB: four flex groups for the kernel's Orlov allocator to
        // spread the top-level directories over.
        let src = dir.path().join("src.img");
        let _ = std::fs::remove_file(&src);
        sparse_file(&src, 8 * GIB);
        let o = real_mkfs(&src, mk);
        assert!(o.status.success(), "mkfs: {}", stderr(&o));
        kernel_copy(&src, &tree);
        assert_fsck_clean(&src);
        for (opts, size) in cases {
            let what = format!("kernel-populated {mk:?}: resize2fs {opts:?} {size:?}");
            let (_, out) = shrink_differential(dir.path(), &src, opts, *size, Some(&tree), &what);
            if opts.contains(&"-p") {
                // Inodes past the new groups were renumbered: the pass
                // updating the references to them ran.
                assert!(out.contains("Begin pass 4"), "{what}: {out}");
            }
        }
    }
}

/// Loop-mounts `img`, copies `tree`'s contents in with `cp -a`, adds a
/// hard link and an extended attribute too big for the inode, unmounts,
/// and checks it with `e2fsck -fy`.
fn kernel_copy(img: &Path, tree: &Path) {
    let _lock = common::mount_lock();
    let m = tempfile::tempdir().expect("mount dir");
    let o = run(std::process::Command::new("mount")
        .args(["-o", "loop"])
        .arg(img)
        .arg(m.path()));
    assert!(o.status.success(), "mount: {}", stderr(&o));
    let mp = m.path().display().to_string();
    let o = run(std::process::Command::new("sh").arg("-c").arg(format!(
        "cp -a {}/. {mp}/ && ln -f {mp}/a/hello.txt {mp}/spread-3/hello-link && python3 -c \
         'import os, sys; os.setxattr(sys.argv[1], \"user.big\", b\"x\" * 3000)' {mp}/spread-5/sub/data",
        tree.display()
    )));
    let u = common::umount_retrying(m.path());
    common::sh("losetup -D");
    assert!(o.status.success(), "populate: {}", stderr(&o));
    assert!(u.status.success(), "umount: {}", stderr(&u));
    // Checked since mounted, as resize2fs wants it.
    let f = run(tool("e2fsck")
        .env("E2FSPROGS_FAKE_TIME", MKFS_TIME)
        .arg("-fy")
        .arg(img));
    assert!(f.status.success(), "e2fsck: {}", stdout(&f));
    // The tree read back must now show the link.
    let link: PathBuf = tree.join("spread-3/hello-link");
    if !link.exists() {
        std::fs::hard_link(tree.join("a/hello.txt"), &link).expect("link");
    }
}

/// What resize2fs refuses, as it does (a size below its minimum estimate,
/// exit 1), and what ebsim does not do (meta_bg): the image untouched.
#[test]
fn shrink_refusals() {
    if !require_tools(TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("img");
    sparse_file(&img, GIB);
    real_mkfs(&img, &[]);
    let before = image_digest(&img);
    let r = shrink(false, &img, &[], Some("10M"));
    let after_real = image_digest(&img);
    let o = shrink(true, &img, &[], Some("10M"));
    assert_eq!(o.status.code(), r.status.code());
    assert_eq!(stderr(&o), stderr(&r));
    assert!(
        stderr(&o).contains("New size smaller than minimum"),
        "{}",
        stderr(&o)
    );
    assert_eq!(image_digest(&img), after_real);
    assert_eq!(before, after_real);

    let _ = std::fs::remove_file(&img);
    sparse_file(&img, GIB);
    real_mkfs(&img, &["-O", "meta_bg,^resize_inode"]);
    let before = image_digest(&img);
    let o = shrink(true, &img, &[], Some("500M"));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("meta_bg"), "{}", stderr(&o));
    assert_eq!(image_digest(&img), before, "the image changed");

    // A directory with inline data whose inode has to be renumbered: 8
    // inodes a group, debugfs numbering them in turn, the early ones
    // removed again to make room.
    let _ = std::fs::remove_file(&img);
    sparse_file(&img, 128 << 20);
    real_mkfs(&img, &["-b", "1024", "-N", "64", "-O", "inline_data"]);
    let mut script: String = (0..45).map(|i| format!("write /dev/null f{i}\n")).collect();
    script.push_str("mkdir late\nwrite /dev/null late/x\n");
    script.extend((0..20).map(|i| format!("rm f{i}\n")));
    let sf = dir.path().join("script");
    std::fs::write(&sf, script).expect("script");
    let o = run(tool("debugfs").args(["-w", "-f"]).arg(&sf).arg(&img));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_fsck_clean(&img);
    // Contents, not allocation: debugfs left unwritten extents, which the
    // host reports as data once their pages are read.
    let before = content_digest(&img);
    let o = shrink(true, &img, &[], Some("48M"));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("inline_data"), "{}", stderr(&o));
    assert_eq!(content_digest(&img), before, "the image changed");
}
