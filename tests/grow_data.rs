//! Data survives every grow: filesystems populated by ebsim itself (the
//! catalog's Ubuntu and Amazon Linux 2 roots, trees copied in with `ebsim
//! image`, 1 GiB preallocations) are recorded (path, type, size, mode,
//! owner, links, SHA-256 or target, mtime) through ebsim's reader and a
//! kernel mount, then grown — resize2fs and xfs_growfs offline on bare
//! images, growpart + resize2fs offline on a partition, growpart +
//! resize2fs or xfs_growfs online inside an instance after ModifyVolume,
//! resize2fs and xfs_growfs online on data volumes — and verified the same
//! way after, with the real checker silent.

mod common;
mod ec2_util;

use common::manifest::{Recorded, partition_range};
use common::{ebsim, require_mount, require_tools, run, stderr, stdout};
use ebsim::blockdev::image::Access;
use ebsim::blockdev::{ImageFile, Slice};
use ebsim::ec2::catalog::{ImageBuilder, NativeImageBuilder, by_key};
use ec2_util::Cloud;
use std::path::Path;

fn tools() -> bool {
    require_tools(&["e2fsck", "xfs_repair", "losetup", "sgdisk", "blkid"]) && require_mount()
}

fn image(args: &[&str]) {
    let o = run(ebsim("image").args(args));
    assert!(o.status.success(), "ebsim image {args:?}: {}", stderr(&o));
}

/// A tree of files worth keeping: nested directories, many entries,
/// sizes from 0 to 3 MiB, a sparse file, links, odd modes and owners.
fn tree(root: &Path) {
    let w = |p: &str, data: Vec<u8>| {
        let p = root.join(p);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, data).expect("write");
    };
    w("empty", Vec::new());
    w("etc/app.conf", b"listen = 0.0.0.0:8080\n".to_vec());
    w(
        "data/blob",
        (0..3 << 20)
            .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect(),
    );
    for i in 0..1500 {
        w(&format!("data/many/f{i:04}"), format!("{i}\n").into_bytes());
    }
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::create(root.join("data/sparse")).expect("create");
        f.write_all_at(b"tail", 100 << 20).expect("write");
    }
    std::os::unix::fs::symlink("data/blob", root.join("link")).expect("symlink");
    std::fs::hard_link(root.join("etc/app.conf"), root.join("data/app.conf")).expect("link");
    common::sh(&format!(
        "cd '{}' && chmod 600 data/blob && chown -R 1000:1000 data/many && chmod 1777 data",
        root.display()
    ));
}

/// Copies the tree into `at` (IMAGE[@N]:/dir) and preallocates 1 GiB
/// next to it, all with `ebsim image`.
fn populate(dir: &Path, at: &str) {
    let src = dir.join("tree");
    if !src.exists() {
        tree(&src);
    }
    image(&["mkdir", "-p", at]);
    image(&["cp", "-a", src.to_str().expect("utf8"), at]);
    image(&["fallocate", "-l", "1G", &format!("{at}/prealloc")]);
}

/// resize2fs offline on a bare image: 512 MiB → 6 GiB (new groups, new
/// flex groups, backup superblocks).
#[test]
fn resize2fs_offline() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("fs.img");
    std::fs::File::create(&img)
        .expect("create")
        .set_len(1536 << 20)
        .expect("size");
    let o = run(ebsim("mkfs.ext4").arg("-q").arg(&img));
    assert!(o.status.success(), "{}", stderr(&o));
    let img_s = img.to_str().expect("utf8");
    populate(dir.path(), &format!("{img_s}:/srv"));
    let before = Recorded::take(&img, None);
    let o = run(ebsim("resize2fs").arg(&img).arg("6G"));
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    before.verify(&img, None, "after resize2fs 6G");
}

/// The catalog's Ubuntu disk (its 1.5 GiB root written by ebsim) with a
/// tree added: the disk file grows to 12 GiB, growpart grows partition 1,
/// and resize2fs (offline, on the partition) grows the filesystem.
#[test]
fn growpart_and_resize2fs_offline_on_a_partition() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("disk.img");
    let ubuntu = by_key("ubuntu-22.04").expect("catalog");
    NativeImageBuilder.build(ubuntu, &img).expect("build");
    let img_s = img.to_str().expect("utf8");
    populate(dir.path(), &format!("{img_s}@1:/srv"));
    let before = Recorded::take(&img, Some(1));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&img)
        .expect("open")
        .set_len(12 << 30)
        .expect("grow the disk");
    let o = run(ebsim("growpart").arg(&img).arg("1"));
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let (off, len) = partition_range(&img, 1);
    {
        use ebsim::fs::ext4::grow::{self, GrowOutcome, GrowRequest};
        let mut dev = ImageFile::open(&img, Access::ReadWrite).expect("open");
        let fs = ebsim::fs::ext4::Ext4::open(Slice::new(&dev, off, len).expect("slice"))
            .expect("open ext4");
        let req = GrowRequest {
            size: None,
            force: false,
            online: false,
            image_file: false,
            now: 1_709_300_000,
            ..Default::default()
        };
        let GrowOutcome::Grow(plan) = grow::plan(&fs, &req).expect("plan") else {
            panic!("nothing to grow");
        };
        drop(fs);
        let mut part = Slice::new(&mut dev, off, len).expect("slice");
        grow::apply(&mut part, &plan.batch).expect("apply");
    }
    before.verify(&img, Some(1), "after growpart + resize2fs offline");
}

/// Inside an instance, as the runbook does it: ModifyVolume the root to
/// 16 GiB, `growpart /dev/xvda 1`, `resize2fs /dev/xvda1` online; and a
/// 2 GiB ext4 data volume mounted on /srv, grown to 6 GiB online.
#[test]
fn growpart_and_resize2fs_online_in_an_instance() {
    if !tools() {
        return;
    }
    let c = Cloud::on_tmpfs();
    let id = c.instance("ami-080e1f13689e07408", "t2.micro");
    let d = c.ok(&["describe-instances", "--instance-ids", &id]);
    let root = d["Reservations"][0]["Instances"][0]["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
        .as_str()
        .expect("root volume")
        .to_string();
    let root_img = c.image_of(&root);
    let scratch = tempfile::tempdir().expect("tempdir");
    let at = format!("{}@1:/srv", root_img.display());
    populate(scratch.path(), &at);
    let before_root = Recorded::take(&root_img, Some(1));
    // A data volume, made and mounted inside the guest, then filled from
    // the host.
    let data = c.volume(&["--size", "2"]);
    c.attach_and_settle(&data, &id, "/dev/sdg");
    let guest = |applet: &str, args: &[&str]| {
        let o = c.cmd(applet).args(args).output().expect("run");
        assert!(
            o.status.success(),
            "{applet} {args:?}: {}{}",
            stdout(&o),
            stderr(&o)
        );
    };
    guest("mkfs.ext4", &["-q", "/dev/xvdg"]);
    let data_img = c.image_of(&data);
    populate(scratch.path(), &format!("{}:/", data_img.display()));
    guest("mount", &["/dev/xvdg", "/srv"]);
    let before_data = Recorded::take(&data_img, None);
    for (vol, gib) in [(&root, "16"), (&data, "6")] {
        c.ok(&["modify-volume", "--volume-id", vol, "--size", gib]);
    }
    for _ in 0..200 {
        let m = c.ok(&[
            "describe-volumes-modifications",
            "--volume-ids",
            &root,
            &data,
        ]);
        let states: Vec<&str> = m["VolumesModifications"]
            .as_array()
            .expect("list")
            .iter()
            .map(|x| x["ModificationState"].as_str().unwrap_or(""))
            .collect();
        if states.iter().all(|s| *s != "modifying") {
            break;
        }
        c.advance("5s");
    }
    guest("growpart", &["/dev/xvda", "1"]);
    guest("resize2fs", &["/dev/xvda1"]);
    guest("resize2fs", &["/dev/xvdg"]);
    before_root.verify(&root_img, Some(1), "root after growpart + resize2fs online");
    before_data.verify(&data_img, None, "data volume after resize2fs online");
    // The filesystems did grow.
    let o = ebsim::imgio::open(&root_img, Some(1), false).expect("open");
    let st = o.fs.statfs().expect("statfs");
    assert!(st.blocks * st.frsize > 15 << 30, "{st:?}");
}

/// xfs_growfs offline on a bare image (ebsim's extension): 1.5 GiB → 6 GiB
/// (the short last group extended, new groups added).
#[test]
fn xfs_growfs_offline() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("fs.img");
    std::fs::File::create(&img)
        .expect("create")
        .set_len(1536 << 20)
        .expect("size");
    let o = run(ebsim("mkfs.xfs").arg("-q").arg(&img));
    assert!(o.status.success(), "{}", stderr(&o));
    let img_s = img.to_str().expect("utf8");
    populate(dir.path(), &format!("{img_s}:/srv"));
    let before = Recorded::take(&img, None);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&img)
        .expect("open")
        .set_len(6 << 30)
        .expect("grow the file");
    let o = run(ebsim("xfs_growfs").arg(&img));
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    before.verify(&img, None, "after xfs_growfs");
    let o = ebsim::imgio::open(&img, None, false).expect("open");
    let st = o.fs.statfs().expect("statfs");
    assert!(st.blocks * st.frsize > 5 << 30, "{st:?}");
}

/// Inside an Amazon Linux 2 instance (its XFS root written by ebsim):
/// ModifyVolume the root to 16 GiB, `growpart /dev/xvda 1`, `xfs_growfs -d
/// /` online; and a 2 GiB XFS data volume mounted on /data, grown to 6 GiB
/// online with `xfs_growfs /data`.
#[test]
fn growpart_and_xfs_growfs_online_in_an_instance() {
    if !tools() {
        return;
    }
    let c = Cloud::on_tmpfs();
    let amzn2 = by_key("amzn2").expect("catalog");
    let id = c.instance(amzn2.image_id, "t2.micro");
    let d = c.ok(&["describe-instances", "--instance-ids", &id]);
    let root = d["Reservations"][0]["Instances"][0]["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
        .as_str()
        .expect("root volume")
        .to_string();
    let root_img = c.image_of(&root);
    let scratch = tempfile::tempdir().expect("tempdir");
    populate(scratch.path(), &format!("{}@1:/srv", root_img.display()));
    let before_root = Recorded::take(&root_img, Some(1));
    // The catalog's files are among those recorded.
    assert!(before_root.manifest.contains_key("/etc/os-release"));
    assert!(before_root.manifest.contains_key("/home/ec2-user/.bashrc"));
    let data = c.volume(&["--size", "2"]);
    c.attach_and_settle(&data, &id, "/dev/sdg");
    let guest = |applet: &str, args: &[&str]| {
        let o = c.cmd(applet).args(args).output().expect("run");
        assert!(
            o.status.success(),
            "{applet} {args:?}: {}{}",
            stdout(&o),
            stderr(&o)
        );
    };
    guest("mkfs.xfs", &["-q", "/dev/xvdg"]);
    let data_img = c.image_of(&data);
    populate(scratch.path(), &format!("{}:/", data_img.display()));
    guest("mount", &["/dev/xvdg", "/data"]);
    let before_data = Recorded::take(&data_img, None);
    for (vol, gib) in [(&root, "16"), (&data, "6")] {
        c.ok(&["modify-volume", "--volume-id", vol, "--size", gib]);
    }
    for _ in 0..200 {
        let m = c.ok(&[
            "describe-volumes-modifications",
            "--volume-ids",
            &root,
            &data,
        ]);
        let states: Vec<&str> = m["VolumesModifications"]
            .as_array()
            .expect("list")
            .iter()
            .map(|x| x["ModificationState"].as_str().unwrap_or(""))
            .collect();
        if states.iter().all(|s| *s != "modifying") {
            break;
        }
        c.advance("5s");
    }
    guest("growpart", &["/dev/xvda", "1"]);
    guest("xfs_growfs", &["-d", "/"]);
    guest("xfs_growfs", &["/data"]);
    before_root.verify(
        &root_img,
        Some(1),
        "root after growpart + xfs_growfs online",
    );
    before_data.verify(&data_img, None, "data volume after xfs_growfs online");
    for (img, part, min) in [
        (&root_img, Some(1), 15u64 << 30),
        (&data_img, None, 5 << 30),
    ] {
        let o = ebsim::imgio::open(img, part, false).expect("open");
        let st = o.fs.statfs().expect("statfs");
        assert!(st.blocks * st.frsize > min, "{}: {st:?}", img.display());
    }
}
