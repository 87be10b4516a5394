//! Filesystem commands inside the emulated instance (issue 6): mount and
//! umount, mkfs, resize2fs, xfs_growfs and xfs_info on device names and
//! mount points, through the EBS expansion runbook on a Xen (t2.micro,
//! Ubuntu 22.04: xvda/xvdf) and a Nitro (t3.micro, AL2023: nvme0n1/nvme1n1)
//! instance. After every step that writes, the real `xfs_repair -n` or
//! `e2fsck -fn` checks a sparse copy of the partition's byte range.
//!
//! Expected texts: the real tools' on this machine (util-linux 2.38.1,
//! e2fsprogs 1.47.0, xfsprogs 6.1.0, kernel 6.18 loop mounts) where they
//! were measured, with the guest's differences taken from the sources of
//! the guest's versions (util-linux 2.37 prints no `dmesg(1)` hint; the
//! banner is the guest's e2fsprogs).

#![allow(clippy::unwrap_used)]

mod common;
mod ec2_util;
mod guest_fs_util;

use common::{stderr, stdout};
use ec2_util::Cloud;
use guest_fs_util::{LoopMount, assert_clean, copy_range, partition};
use std::process::Command;

const UBUNTU: &str = "ami-080e1f13689e07408";
const AL2023: &str = "ami-051f8a213df8bc089";

/// One instance of one cloud, and its applets.
struct Guest {
    c: Cloud,
    id: String,
}

/// An applet's result.
#[derive(Debug)]
struct Out {
    out: String,
    err: String,
    code: i32,
}

impl Guest {
    fn launch(image: &str, itype: &str) -> Guest {
        let c = Cloud::on_tmpfs();
        let id = c.instance(image, itype);
        Guest { c, id }
    }

    fn run(&self, applet: &str, args: &[&str]) -> Out {
        let o = self.c.cmd(applet).args(args).output().expect("run ebsim");
        Out {
            out: stdout(&o),
            err: stderr(&o),
            code: o.status.code().unwrap_or(-1),
        }
    }

    /// Runs and expects exit 0; returns stdout.
    fn ok(&self, applet: &str, args: &[&str]) -> String {
        let o = self.run(applet, args);
        assert_eq!(o.code, 0, "{applet} {args:?}: {o:?}");
        o.out
    }

    /// Asserts exact stdout, stderr and exit code.
    fn expect(&self, applet: &str, args: &[&str], out: &str, err: &str, code: i32) {
        let o = self.run(applet, args);
        assert_eq!(o.err, err, "stderr of {applet} {args:?}");
        assert_eq!(o.out, out, "stdout of {applet} {args:?}");
        assert_eq!(o.code, code, "exit code of {applet} {args:?}");
    }

    fn root_volume(&self) -> String {
        let d = self
            .c
            .ok(&["describe-instances", "--instance-ids", &self.id]);
        d["Reservations"][0]["Instances"][0]["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A new empty volume attached as `device` (API name).
    fn attach(&self, gib: u32, device: &str) -> String {
        let v = self.c.volume(&["--size", &gib.to_string()]);
        self.c.ok(&[
            "attach-volume",
            "--volume-id",
            &v,
            "--instance-id",
            &self.id,
            "--device",
            device,
        ]);
        for _ in 0..100 {
            let a = &self.c.describe_volume(&v)["Attachments"][0]["State"];
            if a == "attached" {
                return v;
            }
            self.c.advance("1s");
        }
        panic!("{v} stayed attaching");
    }

    /// ModifyVolume to `gib`; returns once the modification is still
    /// `modifying`, then `optimize` advances the clock until it is not.
    fn modify(&self, vol: &str, gib: u32) {
        self.c.ok(&[
            "modify-volume",
            "--volume-id",
            vol,
            "--size",
            &gib.to_string(),
        ]);
        assert_eq!(self.state(vol), "modifying");
    }

    fn state(&self, vol: &str) -> String {
        let d = self
            .c
            .ok(&["describe-volumes-modifications", "--volume-ids", vol]);
        d["VolumesModifications"][0]["ModificationState"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn optimize(&self, vol: &str) {
        for _ in 0..1000 {
            if self.state(vol) != "modifying" {
                return;
            }
            self.c.advance("5s");
        }
        panic!("{vol} stayed modifying");
    }

    fn complete(&self, vol: &str) {
        for _ in 0..1000 {
            if self.state(vol) == "completed" {
                return;
            }
            self.c.advance("1m");
        }
        panic!("{vol} never completed");
    }

    fn image(&self, vol: &str) -> std::path::PathBuf {
        self.c.image_of(vol)
    }
}

/// The geometry printout of a fresh 200 GiB XFS (mkfs.xfs 6.1 defaults),
/// as the real `xfs_growfs -d` printed it before growing the loop-mounted
/// 200 GiB file to 400 GiB (kernel 6.18), device name replaced.
fn geometry_200g(name: &str) -> String {
    format!(
        "meta-data={name:<22} isize=512    agcount=4, agsize=13107200 blks
         =                       sectsz=512   attr=2, projid32bit=1
         =                       crc=1        finobt=1, sparse=1, rmapbt=0
         =                       reflink=1    bigtime=1 inobtcount=1 nrext64=0
data     =                       bsize=4096   blocks=52428800, imaxpct=25
         =                       sunit=0      swidth=0 blks
naming   =version 2              bsize=4096   ascii-ci=0, ftype=1
log      =internal log           bsize=4096   blocks=25600, version=2
         =                       sectsz=512   sunit=0 blks, lazy-count=1
realtime =none                   extsz=4096   blocks=0, rtextents=0
"
    )
}

/// The last line of that real grow, 200 GiB → 400 GiB: four new full AGs.
const GREW_200_TO_400: &str = "data blocks changed from 52428800 to 104857600\n";

/// The real `mkfs.xfs -N` of a 200 GiB file, named as `name`: the
/// geometry ebsim's mkfs.xfs prints on a 200 GiB device.
fn real_mkfs_geometry_200g(name: &str) -> Option<String> {
    if !common::require_tools(&["mkfs.xfs"]) {
        return None;
    }
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("dev");
    std::fs::File::create(&f)
        .unwrap()
        .set_len(200 << 30)
        .unwrap();
    let o = common::run(
        Command::new("mkfs.xfs")
            .arg("-N")
            .arg("dev")
            .current_dir(d.path()),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    Some(stdout(&o).replacen(&format!("{:<22}", "dev"), &format!("{name:<22}"), 1))
}

/// util-linux 2.37's failure line for an unformatted device (libmount
/// `mnt_context_get_excode`, EINVAL; 2.38.1 measured here prints the same
/// line followed by the `dmesg(1)` hint, see
/// `mount_messages_match_real_util_linux`).
fn wrong_fs(target: &str, dev: &str) -> String {
    format!(
        "mount: {target}: wrong fs type, bad option, bad superblock on {dev}, missing codepage or helper program, or other error.\n"
    )
}

const XFS_MOUNT_OPTS: &str = "rw,relatime,attr2,inode64,logbufs=8,logbsize=32k,noquota";

#[test]
fn xen_ubuntu_runbook() {
    if !common::require_tools(&["xfs_repair", "e2fsck", "sfdisk", "resize2fs", "blkid"]) {
        return;
    }
    let g = Guest::launch(UBUNTU, "t2.micro");
    let root = g.root_volume();
    let root_img = g.image(&root);
    // The EFI system partition is mounted at boot, as the AMI's fstab says.
    g.expect(
        "mount",
        &[],
        "/dev/xvda1 on / type ext4 (rw,relatime,discard,errors=remount-ro)\n\
         /dev/xvda15 on /boot/efi type vfat (rw,relatime,fmask=0077,dmask=0077,codepage=437,iocharset=iso8859-1,shortname=mixed,errors=remount-ro)\n",
        "",
        0,
    );
    g.expect(
        "mount",
        &["-l", "-t", "ext4"],
        "/dev/xvda1 on / type ext4 (rw,relatime,discard,errors=remount-ro) [cloudimg-rootfs]\n",
        "",
        0,
    );
    // findmnt reads the guest's mount table, not the sandbox's FUSE mounts;
    // its layout is the real findmnt's on the same table (measured with
    // `findmnt -F` on a mountinfo file holding these mounts), and libmount
    // names the kernel's /dev/root by its device.
    const ESP_OPTS: &str = "rw,relatime,fmask=0077,dmask=0077,codepage=437,iocharset=iso8859-1,shortname=mixed,errors=remount-ro";
    g.expect(
        "findmnt",
        &[],
        &format!(
            "TARGET      SOURCE      FSTYPE OPTIONS\n\
             /           /dev/xvda1  ext4   rw,relatime,discard,errors=remount-ro\n\
             └─/boot/efi /dev/xvda15 vfat   {ESP_OPTS}\n"
        ),
        "",
        0,
    );
    g.expect("findmnt", &["-no", "SOURCE", "/"], "/dev/xvda1\n", "", 0);
    g.expect(
        "findmnt",
        &["-n", "-l"],
        &format!(
            "/         /dev/xvda1  ext4   rw,relatime,discard,errors=remount-ro\n\
             /boot/efi /dev/xvda15 vfat   {ESP_OPTS}\n"
        ),
        "",
        0,
    );
    g.expect(
        "findmnt",
        &["-T", "/etc/fstab", "-o", "TARGET,SOURCE"],
        "TARGET SOURCE\n/      /dev/xvda1\n",
        "",
        0,
    );
    g.expect("findmnt", &["-t", "xfs"], "", "", 0);
    g.expect("findmnt", &["/var/lib"], "", "", 1);
    g.expect(
        "findmnt",
        &["-r", "-S", "LABEL=UEFI", "-o", "TARGET,LABEL"],
        "TARGET LABEL\n/boot/efi UEFI\n",
        "",
        0,
    );

    // resize2fs -P of the mounted root: the real resize2fs's estimate on a
    // copy of the partition (forced: the copy is of a mounted filesystem).
    let (off, len) = partition(&root_img, 1);
    let copies = tempfile::tempdir().unwrap();
    let copy = copies.path().join("root.img");
    copy_range(&root_img, off, len, &copy);
    let real = common::run(Command::new("resize2fs").args(["-f", "-P"]).arg(&copy));
    assert!(real.status.success(), "{}", stderr(&real));
    let o = g.run("resize2fs", &["-P", "/dev/xvda1"]);
    assert_eq!(
        (o.out.as_str(), o.code),
        (stdout(&real).as_str(), 0),
        "{o:?}"
    );
    drop(copies);

    let data = g.attach(200, "/dev/sdf");
    let data_img = g.image(&data);

    // Bad input before there is a filesystem.
    g.expect(
        "mount",
        &["/dev/xvdf", "/var/lib"],
        "",
        &wrong_fs("/var/lib", "/dev/xvdf"),
        32,
    );
    g.expect(
        "mount",
        &["/dev/xvdz", "/mnt"],
        "",
        "mount: /mnt: special device /dev/xvdz does not exist.\n",
        32,
    );
    g.expect(
        "mount",
        &["/dev/xvda3", "/mnt"],
        "",
        "mount: /mnt: special device /dev/xvda3 does not exist.\n",
        32,
    );
    g.expect(
        "resize2fs",
        &["/dev/xvdz"],
        "",
        "resize2fs 1.46.5 (30-Dec-2021)\nopen: No such file or directory while opening /dev/xvdz\n",
        1,
    );
    g.expect(
        "resize2fs",
        &["/dev/xvda3"],
        "",
        "resize2fs 1.46.5 (30-Dec-2021)\nopen: No such file or directory while opening /dev/xvda3\n",
        1,
    );
    // Measured: `mkfs.ext4 /dev/xvdz` (e2fsprogs 1.47.0), banner aside.
    g.expect(
        "mkfs.ext4",
        &["/dev/xvdz"],
        "",
        "mke2fs 1.46.5 (30-Dec-2021)\nThe file /dev/xvdz does not exist and no size was specified.\n",
        1,
    );
    // Measured: `xfs_growfs /dev/xvdz` and `xfs_info /dev/xvdz`.
    g.expect(
        "xfs_growfs",
        &["/dev/xvdz"],
        "",
        "xfs_growfs: path resolution failed for /dev/xvdz: No such file or directory\n",
        1,
    );
    g.expect(
        "xfs_info",
        &["/dev/xvdz"],
        "",
        "/dev/xvdz: No such file or directory\n\nfatal error -- couldn't initialize XFS library\n",
        1,
    );
    // Measured: `xfs_info` on an unformatted device runs xfs_db.
    g.expect(
        "xfs_info",
        &["/dev/xvdf"],
        "",
        "xfs_info: /dev/xvdf is not a valid XFS filesystem (unexpected SB magic number 0x00000000)\nUse -F to force a read attempt.\n",
        1,
    );
    g.expect(
        "umount",
        &["/var/lib"],
        "",
        "umount: /var/lib: not mounted.\n",
        32,
    );
    g.expect(
        "umount",
        &["/dev/xvdf"],
        "",
        "umount: /dev/xvdf: not mounted.\n",
        32,
    );
    g.expect(
        "umount",
        &["/dev/xvdz"],
        "",
        "umount: /dev/xvdz: no mount point specified.\n",
        32,
    );
    g.expect("umount", &["/"], "", "umount: /: target is busy.\n", 32);

    // mkfs.xfs on the whole disk, checked against the real geometry.
    let made = g.ok("mkfs.xfs", &["/dev/xvdf"]);
    assert_eq!(made, geometry_200g("/dev/xvdf"));
    if let Some(real) = real_mkfs_geometry_200g("/dev/xvdf") {
        assert_eq!(made, real);
    }
    assert_clean(&data_img, 0, 200 << 30, true, "after mkfs.xfs /dev/xvdf");
    // Metadata only (the real mkfs also preallocates the 100 MiB log).
    let a = common::allocated(&data_img);
    assert!(a < 1 << 20, "mkfs.xfs allocated {a} bytes");
    g.expect(
        "mkfs.xfs",
        &["/dev/xvdf"],
        "",
        "mkfs.xfs: /dev/xvdf appears to contain an existing filesystem (xfs).\nmkfs.xfs: Use the -f option to force overwrite.\n",
        1,
    );

    // Mount it at /var/lib, by its API name (a link to xvdf).
    g.expect("mount", &["/dev/xvdf", "/var/lib"], "", "", 0);
    g.expect(
        "mount",
        &["-t", "xfs"],
        &format!("/dev/xvdf on /var/lib type xfs ({XFS_MOUNT_OPTS})\n"),
        "",
        0,
    );
    // Measured: the same device again on the same mount point (EBUSY).
    g.expect(
        "mount",
        &["/dev/xvdf", "/var/lib"],
        "",
        "mount: /var/lib: /dev/xvdf already mounted on /var/lib.\n",
        32,
    );
    // Measured: mkfs on a mounted device (the usage text follows mkfs.xfs's line).
    let o = g.run("mkfs.xfs", &["-f", "/dev/xvdf"]);
    assert!(
        o.err
            .starts_with("mkfs.xfs: /dev/xvdf contains a mounted filesystem\nUsage: mkfs.xfs\n"),
        "{o:?}"
    );
    assert_eq!((o.out.as_str(), o.code), ("", 1));
    g.expect(
        "mkfs.ext4",
        &["/dev/xvdf"],
        "",
        "mke2fs 1.46.5 (30-Dec-2021)\n/dev/xvdf is mounted; will not make a filesystem here!\n",
        1,
    );
    // Measured: a disk whose partition is mounted cannot be opened
    // exclusively.
    g.expect(
        "mkfs.ext4",
        &["/dev/xvda"],
        "",
        "mke2fs 1.46.5 (30-Dec-2021)\n/dev/xvda is apparently in use by the system; will not make a filesystem here!\n",
        1,
    );
    g.expect(
        "mkfs.xfs",
        &["/dev/xvda"],
        "",
        "mkfs.xfs: cannot open /dev/xvda: Device or resource busy\n",
        1,
    );
    // Measured: resize2fs on XFS, mounted or not.
    g.expect(
        "resize2fs",
        &["/dev/xvdf"],
        "Couldn't find valid filesystem superblock.\n",
        "resize2fs 1.46.5 (30-Dec-2021)\nresize2fs: Bad magic number in super-block while trying to open /dev/xvdf\n",
        1,
    );
    // Measured: resize2fs does not take a mount point.
    g.expect(
        "resize2fs",
        &["/var/lib"],
        "",
        "resize2fs 1.46.5 (30-Dec-2021)\nopen: Is a directory while opening /var/lib\n",
        1,
    );
    // Measured: xfs_growfs on an ext4 mount, and on its device.
    g.expect(
        "xfs_growfs",
        &["/"],
        "",
        "xfs_growfs: / is not a mounted XFS filesystem\n",
        1,
    );
    g.expect(
        "xfs_growfs",
        &["-d", "/dev/xvda1"],
        "",
        "xfs_growfs: /dev/xvda1 is not a mounted XFS filesystem\n",
        1,
    );
    // Measured: xfs_info on the device of a mounted ext4 (xfs_db refuses).
    g.expect(
        "xfs_info",
        &["/dev/xvda1"],
        "",
        "xfs_info: /dev/xvda1 contains a mounted filesystem\n\nfatal error -- couldn't initialize XFS library\n",
        1,
    );
    g.expect(
        "xfs_info",
        &["/var/lib/"],
        &geometry_200g("/dev/xvdf"),
        "",
        0,
    );
    g.expect(
        "xfs_info",
        &["/dev/xvdf"],
        &geometry_200g("/dev/xvdf"),
        "",
        0,
    );

    // Grow the root volume 8 → 16 GiB. While modifying, the disk keeps its
    // size: nothing to grow.
    g.modify(&root, 16);
    let o = g.run("growpart", &["/dev/xvda", "1"]);
    assert_eq!(o.code, 1, "growpart while modifying: {o:?}");
    assert!(o.out.starts_with("NOCHANGE:"), "{o:?}");
    g.optimize(&root);
    let o = g.run("growpart", &["/dev/xvda", "1"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.out
            .starts_with("CHANGED: partition=1 start=227328 old: size=16549855"),
        "{o:?}"
    );
    let (off, len) = partition(&root_img, 1);
    assert_eq!(len, 33_327_071 * 512);
    // The real offline resize2fs of the same filesystem gives the size the
    // online resize reaches (both take adjust_new_size's result).
    let d = tempfile::tempdir().unwrap();
    let copy = d.path().join("p1.img");
    copy_range(&root_img, off, len, &copy);
    let real = common::run(Command::new("resize2fs").arg("-f").arg(&copy));
    assert!(real.status.success(), "{}", stderr(&real));
    let blocks = len / 4096;
    assert!(stdout(&real).ends_with(&format!(
        "The filesystem on {} is now {blocks} (4k) blocks long.\n\n",
        copy.display()
    )));
    drop(d);
    g.expect(
        "resize2fs",
        &["/dev/xvda1"],
        &format!(
            "Filesystem at /dev/xvda1 is mounted on /; on-line resizing required\n\
             old_desc_blocks = 1, new_desc_blocks = 2\n\
             The filesystem on /dev/xvda1 is now {blocks} (4k) blocks long.\n\n"
        ),
        "resize2fs 1.46.5 (30-Dec-2021)\n",
        0,
    );
    assert_clean(&root_img, off, len, false, "after resize2fs /dev/xvda1");
    g.expect(
        "resize2fs",
        &["/dev/xvda1"],
        "",
        &format!(
            "resize2fs 1.46.5 (30-Dec-2021)\nThe filesystem is already {blocks} (4k) blocks long.  Nothing to do!\n\n"
        ),
        0,
    );

    // Grow the data volume 200 → 400 GiB and its XFS through /var/lib.
    g.modify(&data, 400);
    g.expect(
        "xfs_growfs",
        &["-d", "/var/lib"],
        &geometry_200g("/dev/xvdf"),
        "data size unchanged, skipping\n",
        0,
    );
    g.optimize(&data);
    g.expect(
        "xfs_growfs",
        &["-d", "/var/lib"],
        &format!("{}{GREW_200_TO_400}", geometry_200g("/dev/xvdf")),
        "",
        0,
    );
    assert_clean(
        &data_img,
        0,
        400 << 30,
        true,
        "after xfs_growfs -d /var/lib",
    );
    let a = common::allocated(&data_img);
    assert!(a < 2 << 20, "grown image allocates {a} bytes");
    let info = g.ok("xfs_info", &["/var/lib"]);
    assert!(
        info.starts_with(
            "meta-data=/dev/xvdf              isize=512    agcount=8, agsize=13107200 blks\n"
        ),
        "{info}"
    );
    assert!(info.contains("blocks=104857600, imaxpct=25"), "{info}");

    // Unmounted, the device is not a mounted XFS any more; xfs_info reads
    // it with xfs_db, under the name given.
    g.expect("umount", &["/var/lib"], "", "", 0);
    g.expect(
        "xfs_growfs",
        &["/dev/xvdf"],
        "",
        "xfs_growfs: /dev/xvdf is not a mounted XFS filesystem\n",
        1,
    );
    let info = g.ok("xfs_info", &["/dev/xvdf"]);
    assert!(
        info.starts_with("meta-data=/dev/xvdf              isize=512    agcount=8"),
        "{info}"
    );
    // By UUID, as fstab lines do; the kernel names the device.
    let uuid = blkid_uuid(&data_img);
    g.expect(
        "mount",
        &["-v", &format!("UUID={uuid}"), "/data"],
        "mount: /dev/xvdf mounted on /data.\n",
        "",
        0,
    );
    g.expect(
        "mount",
        &[],
        &format!(
            "/dev/xvda1 on / type ext4 (rw,relatime,discard,errors=remount-ro)\n\
             /dev/xvda15 on /boot/efi type vfat (rw,relatime,fmask=0077,dmask=0077,codepage=437,iocharset=iso8859-1,shortname=mixed,errors=remount-ro)\n\
             /dev/xvdf on /data type xfs ({XFS_MOUNT_OPTS})\n"
        ),
        "",
        0,
    );
    // Measured (loop-mounted XFS): a second mount of the device shares its
    // superblock; a read-only one cannot (EBUSY); a mount below another
    // keeps it busy; -R unmounts both.
    g.expect(
        "mount",
        &["-o", "noatime", "/dev/xvdf", "/data/sub"],
        "",
        "",
        0,
    );
    g.expect(
        "mount",
        &["-o", "ro", "/dev/xvdf", "/mnt"],
        "",
        "mount: /mnt: /dev/xvdf already mounted on /data.\n",
        32,
    );
    g.expect(
        "umount",
        &["/data"],
        "",
        "umount: /data: target is busy.\n",
        32,
    );
    g.expect(
        "mount",
        &["-t", "xfs"],
        "/dev/xvdf on /data type xfs (rw,relatime,attr2,inode64,logbufs=8,logbsize=32k,noquota)\n\
         /dev/xvdf on /data/sub type xfs (rw,noatime,attr2,inode64,logbufs=8,logbsize=32k,noquota)\n",
        "",
        0,
    );
    g.expect("umount", &["-R", "/data"], "", "", 0);
    g.expect(
        "umount",
        &["-R", "/data"],
        "",
        "umount: /data: not mounted\n",
        1,
    );
    g.expect("mount", &["-t", "xfs"], "", "", 0);
    // fstab knows / but not /data.
    g.expect(
        "mount",
        &["/data"],
        "",
        "mount: /data: can't find in /etc/fstab.\n",
        1,
    );
    g.expect(
        "mount",
        &["/"],
        "",
        "mount: /: /dev/xvda1 already mounted on /.\n",
        32,
    );
    g.expect("mount", &["-a"], "", "", 0);
    assert_clean(&root_img, off, len, false, "at the end");
}

/// The filesystem UUID of an image, as the real blkid reads it.
fn blkid_uuid(img: &std::path::Path) -> String {
    if !common::require_tools(&["blkid"]) {
        panic!("blkid missing");
    }
    let o = common::run(
        Command::new("blkid")
            .args(["-p", "-o", "value", "-s", "UUID"])
            .arg(img),
    );
    stdout(&o).trim().to_string()
}

#[test]
fn nitro_al2023_runbook() {
    if !common::require_tools(&["xfs_repair", "sfdisk"]) {
        return;
    }
    let g = Guest::launch(AL2023, "t3.micro");
    let root = g.root_volume();
    let root_img = g.image(&root);
    let root_opts = "rw,noatime,attr2,inode64,logbufs=8,logbsize=32k,noquota";
    g.expect(
        "mount",
        &[],
        &format!("/dev/nvme0n1p1 on / type xfs ({root_opts})\n/dev/nvme0n1p128 on /boot/efi type vfat (rw,noatime,fmask=0077,dmask=0077,codepage=437,iocharset=ascii,shortname=winnt,errors=remount-ro)\n"),
        "",
        0,
    );
    let data = g.attach(200, "/dev/sdf");
    let data_img = g.image(&data);
    g.expect(
        "mount",
        &["/dev/nvme1n1", "/var/lib"],
        "",
        &wrong_fs("/var/lib", "/dev/nvme1n1"),
        32,
    );
    assert_eq!(
        g.ok("mkfs.xfs", &["/dev/nvme1n1"]),
        geometry_200g("/dev/nvme1n1")
    );
    assert_clean(&data_img, 0, 200 << 30, true, "after mkfs.xfs /dev/nvme1n1");
    g.expect("mount", &["/dev/nvme1n1", "/var/lib"], "", "", 0);
    g.expect(
        "resize2fs",
        &["/dev/nvme1n1"],
        "Couldn't find valid filesystem superblock.\n",
        "resize2fs 1.46.5 (30-Dec-2021)\nresize2fs: Bad magic number in super-block while trying to open /dev/nvme1n1\n",
        1,
    );
    g.modify(&data, 400);
    g.optimize(&data);
    g.expect(
        "xfs_growfs",
        &["-d", "/var/lib"],
        &format!("{}{GREW_200_TO_400}", geometry_200g("/dev/nvme1n1")),
        "",
        0,
    );
    assert_clean(
        &data_img,
        0,
        400 << 30,
        true,
        "after xfs_growfs -d /var/lib",
    );

    // The root: 8 → 16 GiB, growpart, then xfs_growfs -d / (online).
    g.modify(&root, 16);
    g.optimize(&root);
    let o = g.run("growpart", &["/dev/nvme0n1", "1"]);
    assert_eq!(o.code, 0, "{o:?}");
    let (off, len) = partition(&root_img, 1);
    let real = real_kernel_growfs(&root_img, off, len, "/dev/nvme0n1p1");
    let o = g.run("xfs_growfs", &["-d", "/"]);
    assert_eq!((o.err.as_str(), o.code), ("", 0), "{o:?}");
    assert!(
        o.out
            .starts_with("meta-data=/dev/nvme0n1p1         isize=512"),
        "{o:?}"
    );
    let last = o.out.lines().last().unwrap();
    assert!(last.starts_with("data blocks changed from "), "{o:?}");
    if let Some(real) = real {
        assert_eq!(
            o.out, real,
            "ebsim vs the kernel's grow of the same filesystem"
        );
    }
    assert_clean(&root_img, off, len, true, "after xfs_growfs -d /");
    g.expect("umount", &["/dev/nvme1n1"], "", "", 0);
    g.expect("umount", &["/"], "", "umount: /: target is busy.\n", 32);
}

/// The real `xfs_growfs -d` of the XFS in `len` bytes of `img` at `off`,
/// on a loop-mounted sparse copy (kernel grow), with the loop device's
/// name replaced by `name`. None when loop devices are not usable here.
fn real_kernel_growfs(img: &std::path::Path, off: u64, len: u64, name: &str) -> Option<String> {
    if !common::require_mount() || !common::require_tools(&["xfs_growfs"]) {
        return None;
    }
    let _lock = common::mount_lock();
    let d = tempfile::tempdir().unwrap();
    let copy = d.path().join("p1.img");
    copy_range(img, off, len, &copy);
    // The catalog's filesystems share their UUID with every launch.
    let m = LoopMount::new(&copy, Some("nouuid"));
    let o = common::run(Command::new("xfs_growfs").arg("-d").arg(m.path()));
    assert!(o.status.success(), "{}", stderr(&o));
    Some(stdout(&o).replacen(&format!("{:<22}", m.dev), &format!("{name:<22}"), 1))
}

/// The line util-linux 2.38 adds after a failed mount system call.
const DMESG_HINT: &str =
    "       dmesg(1) may have more information after failed mount system call.\n";

/// Whether the real mount, umount and losetup can be compared against
/// (under CI they must).
fn real_mount_usable() -> bool {
    common::require_mount() && common::require_tools(&["mount", "umount", "losetup"])
}

/// mount's messages against the real util-linux 2.38.1 on loop devices:
/// the same line (2.37 is 2.38 without the `dmesg(1)` hint line).
#[test]
fn mount_messages_match_real_util_linux() {
    if !real_mount_usable() {
        return;
    }
    let hint = DMESG_HINT;
    let g = Guest::launch(UBUNTU, "t2.micro");
    g.attach(1, "/dev/sdf");
    let _lock = common::mount_lock();
    let d = tempfile::tempdir().unwrap();
    let blank = d.path().join("blank.img");
    std::fs::File::create(&blank)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let lo = LoopMount::new(&blank, None);
    let target = d.path().join("mnt");
    std::fs::create_dir(&target).unwrap();
    let t = target.to_str().unwrap();
    let real = |args: &[&str]| {
        let o = common::run(Command::new("mount").args(args));
        (stderr(&o), o.status.code().unwrap_or(-1))
    };
    // An unformatted device.
    let (e, code) = real(&[&lo.dev, t]);
    let ours = g.run("mount", &["/dev/xvdf", t]);
    assert_eq!(code, ours.code);
    assert_eq!(
        e.replace(&lo.dev, "/dev/xvdf"),
        format!("{}{hint}", ours.err)
    );
    // Unknown filesystem type.
    let (e, code) = real(&["-t", "foofs", &lo.dev, t]);
    let ours = g.run("mount", &["-t", "foofs", "/dev/xvdf", t]);
    assert_eq!((e, code), (format!("{}{hint}", ours.err), ours.code));
    // A device that does not exist.
    let (e, code) = real(&["/dev/xvdz", t]);
    let ours = g.run("mount", &["/dev/xvdz", t]);
    assert_eq!((e, code), (format!("{}{hint}", ours.err), ours.code));
    // Not in fstab (no system call, no hint).
    let (e, code) = real(&["/nonexistent-ebsim"]);
    let ours = g.run("mount", &["/nonexistent-ebsim"]);
    assert_eq!((e, code), (ours.err, ours.code));
    // umount of a path that is not mounted, of a device that is not, of a
    // device that does not exist.
    let real_u = |args: &[&str]| {
        let o = common::run(Command::new("umount").args(args));
        (stderr(&o), o.status.code().unwrap_or(-1))
    };
    let (e, code) = real_u(&[t]);
    let ours = g.run("umount", &[t]);
    assert_eq!((e, code), (ours.err, ours.code));
    let (e, code) = real_u(&[&lo.dev]);
    let ours = g.run("umount", &["/dev/xvdf"]);
    assert_eq!(
        (e.replace(&lo.dev, "/dev/xvdf"), code),
        (ours.err, ours.code)
    );
    let (e, code) = real_u(&["/dev/xvdz"]);
    let ours = g.run("umount", &["/dev/xvdz"]);
    assert_eq!((e, code), (ours.err, ours.code));
    let (e, code) = real_u(&["-R", t]);
    let ours = g.run("umount", &["-R", t]);
    assert_eq!((e, code), (ours.err, ours.code));
    // Usage errors.
    for args in [&["-z"][..], &["a", "b", "c"][..], &["-t"][..]] {
        let (e, code) = real(args);
        let ours = g.run("mount", args);
        assert_eq!((e, code), (ours.err, ours.code), "mount {args:?}");
    }
}

/// Flips one byte of a file (a damaged block: its CRC no longer matches).
fn flip_byte(img: &std::path::Path, off: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(img)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, off).unwrap();
    b[0] ^= 0x5a;
    f.write_all_at(&b, off).unwrap();
}

/// mount of an XFS whose AG headers the kernel's verifiers reject: ebsim's
/// mount refuses where the real kernel (a loop mount of a copy) refuses,
/// with util-linux's words and exit code, and mounts where it mounts. A
/// bad AGF fails a read-write mount (EIO, "can't read superblock") but not
/// a read-only one; a bad AGI of the root inode's AG fails every mount
/// (EUCLEAN); a bad AGFL mounts (the kernel fails its first allocation).
#[test]
fn mount_refuses_xfs_the_kernel_would_not_mount() {
    if !real_mount_usable() {
        return;
    }
    let hint = DMESG_HINT;
    let g = Guest::launch(UBUNTU, "t2.micro");
    let vol = g.attach(1, "/dev/sdf");
    g.ok("mkfs.xfs", &["/dev/xvdf"]);
    let img = g.image(&vol);
    let _lock = common::mount_lock();
    let d = tempfile::tempdir().unwrap();
    let target = d.path().join("mnt");
    std::fs::create_dir(&target).unwrap();
    let t = target.to_str().unwrap();
    // The real mount of a copy of the volume, its device named as ebsim's.
    let real = |opts: &str| {
        let copy = d.path().join("copy.img");
        copy_range(&img, 0, 1 << 30, &copy);
        let lo = LoopMount::new(&copy, None);
        let o = common::run(Command::new("mount").args(["-o", opts, &lo.dev, t]));
        let code = o.status.code().unwrap_or(-1);
        if code == 0 {
            let u = common::run(Command::new("umount").arg(t));
            assert!(u.status.success(), "umount: {}", stderr(&u));
        }
        (stderr(&o).replace(&lo.dev, "/dev/xvdf"), code)
    };
    // ebsim's mount (Ubuntu 22.04: util-linux 2.37, no dmesg(1) hint),
    // unmounted again when it succeeded.
    let ours = |opts: &str| {
        let o = g.run("mount", &["-o", opts, "/dev/xvdf", t]);
        if o.code == 0 {
            g.expect("umount", &[t], "", "", 0);
            (o.err, o.code)
        } else {
            (format!("{}{hint}", o.err), o.code)
        }
    };
    // Intact: both mount.
    assert_eq!(real("nouuid"), (String::new(), 0));
    assert_eq!(ours("nouuid"), (String::new(), 0));
    // AGF of AG 0 (sector 1): read while reserving per-AG space.
    flip_byte(&img, 512 + 0x40);
    let want = format!("mount: {t}: can't read superblock on /dev/xvdf.\n{hint}");
    assert_eq!(real("nouuid"), (want.clone(), 32));
    assert_eq!(ours("nouuid"), (want, 32));
    assert_eq!(real("nouuid,ro"), (String::new(), 0));
    assert_eq!(ours("nouuid,ro"), (String::new(), 0));
    flip_byte(&img, 512 + 0x40);
    // AGI of AG 0 (sector 2), the root inode's AG.
    flip_byte(&img, 1024 + 0x40);
    let want =
        format!("mount: {t}: mount(2) system call failed: Structure needs cleaning.\n{hint}");
    assert_eq!(real("nouuid"), (want.clone(), 32));
    assert_eq!(ours("nouuid"), (want.clone(), 32));
    assert_eq!(real("nouuid,ro"), (want.clone(), 32));
    assert_eq!(ours("nouuid,ro"), (want, 32));
    flip_byte(&img, 1024 + 0x40);
    // AGFL of AG 0 (sector 3): mounted; the first allocation there fails.
    flip_byte(&img, 1536 + 0x40);
    assert_eq!(real("nouuid"), (String::new(), 0));
    assert_eq!(ours("nouuid"), (String::new(), 0));
}

/// `ours` is what the real `mkfs` (mkfs.ext4, mkfs.ext3) prints for a
/// 2 GiB file named xvdg, its random UUID aside.
fn assert_mkfs_body_is_real(mkfs: &str, ours: &str) {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("xvdg");
    std::fs::File::create(&f).unwrap().set_len(2 << 30).unwrap();
    let real = common::run(Command::new(mkfs).arg("xvdg").current_dir(d.path()));
    assert!(real.status.success(), "{}", stderr(&real));
    let no_uuid = |s: &str| {
        s.lines()
            .filter(|l| !l.starts_with("Filesystem UUID: "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(no_uuid(ours), no_uuid(&stdout(&real)), "{mkfs}");
}

/// ext4 on a whole (unpartitioned) volume: mkfs.ext4 as the real mke2fs
/// prints it, mounted, grown online after ModifyVolume; sparse throughout.
#[test]
fn ext4_whole_volume_grows_online() {
    if !common::require_tools(&["e2fsck", "mkfs.ext4", "blkid"]) {
        return;
    }
    let g = Guest::launch(UBUNTU, "t2.micro");
    let v = g.attach(2, "/dev/sdg");
    let img = g.image(&v);
    let o = g.run("mkfs.ext4", &["/dev/xvdg"]);
    assert_eq!(
        (o.err.as_str(), o.code),
        ("mke2fs 1.46.5 (30-Dec-2021)\n", 0),
        "{o:?}"
    );
    // The real mke2fs 1.47.0 on a 2 GiB file prints the same body (its
    // random UUID aside).
    assert_mkfs_body_is_real("mkfs.ext4", &o.out);
    assert_clean(&img, 0, 2 << 30, false, "after mkfs.ext4 /dev/xvdg");
    assert!(
        common::allocated(&img) < 8 << 20,
        "mkfs wrote {} bytes",
        common::allocated(&img)
    );
    // Never mounted yet: an offline grow (a real one after a mount would
    // want an e2fsck first: the kernel stamps s_mtime, ebsim does not).
    g.modify(&v, 3);
    g.optimize(&v);
    g.expect(
        "resize2fs",
        &["/dev/xvdg"],
        "Resizing the filesystem on /dev/xvdg to 786432 (4k) blocks.\n\
         The filesystem on /dev/xvdg is now 786432 (4k) blocks long.\n\n",
        "resize2fs 1.46.5 (30-Dec-2021)\n",
        0,
    );
    assert_clean(&img, 0, 3 << 30, false, "after offline resize2fs /dev/xvdg");
    g.expect("mount", &["/dev/xvdg", "/srv"], "", "", 0);
    g.expect(
        "mount",
        &["-t", "ext4"],
        "/dev/xvda1 on / type ext4 (rw,relatime,discard,errors=remount-ro)\n\
         /dev/xvdg on /srv type ext4 (rw,relatime)\n",
        "",
        0,
    );
    let before = common::allocated(&img);
    g.complete(&v);
    g.modify(&v, 4);
    g.optimize(&v);
    // 4 GiB = 1048576 blocks = 32 groups: still one descriptor block.
    g.expect(
        "resize2fs",
        &["/dev/xvdg"],
        "Filesystem at /dev/xvdg is mounted on /srv; on-line resizing required\n\
         old_desc_blocks = 1, new_desc_blocks = 1\n\
         The filesystem on /dev/xvdg is now 1048576 (4k) blocks long.\n\n",
        "resize2fs 1.46.5 (30-Dec-2021)\n",
        0,
    );
    assert_clean(&img, 0, 4 << 30, false, "after resize2fs /dev/xvdg");
    assert!(
        common::allocated(&img) < before + (4 << 20),
        "the grow wrote too much"
    );
    // By UUID, resize2fs names the device blkid finds.
    let uuid = blkid_uuid(&img);
    g.expect(
        "resize2fs",
        &[&format!("UUID={uuid}")],
        "",
        "resize2fs 1.46.5 (30-Dec-2021)\nThe filesystem is already 1048576 (4k) blocks long.  Nothing to do!\n\n",
        0,
    );
    g.expect("umount", &["/srv"], "", "", 0);
}

/// ext3 on a whole volume: mkfs.ext3 (block-mapped journal) as the real
/// mke2fs prints it, mounted as ext3 (the kernel's ext4 driver serves the
/// type, blkid names it), written, grown online after ModifyVolume (no
/// flex_bg: each new group's tables in the group itself), e2fsck clean.
#[test]
fn ext3_whole_volume_grows_online() {
    if !common::require_tools(&["e2fsck", "mkfs.ext3", "blkid"]) {
        return;
    }
    let g = Guest::launch(UBUNTU, "t2.micro");
    let v = g.attach(2, "/dev/sdg");
    let img = g.image(&v);
    let o = g.run("mkfs.ext3", &["/dev/xvdg"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_mkfs_body_is_real("mkfs.ext3", &o.out);
    assert_clean(&img, 0, 2 << 30, false, "after mkfs.ext3 /dev/xvdg");
    let blkid = common::run(
        Command::new("blkid")
            .args(["-o", "value", "-s", "TYPE"])
            .arg(&img),
    );
    assert_eq!(stdout(&blkid), "ext3\n");
    g.expect("mount", &["/dev/xvdg", "/srv"], "", "", 0);
    g.expect(
        "mount",
        &["-t", "ext3"],
        "/dev/xvdg on /srv type ext3 (rw,relatime)\n",
        "",
        0,
    );
    let df = g.ok("df", &["-T", "/srv"]);
    assert!(df.lines().nth(1).unwrap().contains(" ext3 "), "{df}");
    let lsblk = g.ok("lsblk", &["-no", "FSTYPE", "/dev/xvdg"]);
    assert_eq!(lsblk, "ext3\n");
    g.modify(&v, 4);
    g.optimize(&v);
    g.expect(
        "resize2fs",
        &["/dev/xvdg"],
        "Filesystem at /dev/xvdg is mounted on /srv; on-line resizing required\n\
         old_desc_blocks = 1, new_desc_blocks = 1\n\
         The filesystem on /dev/xvdg is now 1048576 (4k) blocks long.\n\n",
        "resize2fs 1.46.5 (30-Dec-2021)\n",
        0,
    );
    g.expect("umount", &["/srv"], "", "", 0);
    assert_clean(&img, 0, 4 << 30, false, "after resize2fs of ext3 /dev/xvdg");
    let sb = common::run(Command::new("dumpe2fs").arg("-h").arg(&img));
    assert!(
        stdout(&sb).contains("Block count:              1048576"),
        "{}",
        stdout(&sb)
    );
}

/// Amazon Linux 2 (util-linux 2.30.2, e2fsprogs 1.42.9) and CentOS 7
/// (2.23.2): their mount and umount wording, from those releases'
/// sources, and their e2fsprogs banners.
#[test]
fn older_guests_speak_their_versions() {
    const AL2: &str = "ami-0a3c3a20c09d6f377";
    const CENTOS7: &str = "ami-002070d43b0a4f171";
    let g = Guest::launch(AL2, "t2.micro");
    g.expect(
        "mount",
        &[],
        "/dev/xvda1 on / type xfs (rw,noatime,attr2,inode64,logbufs=8,logbsize=32k,noquota)\n",
        "",
        0,
    );
    g.attach(1, "/dev/sdf");
    g.expect(
        "mount",
        &["/dev/xvdf", "/mnt"],
        "",
        &wrong_fs("/mnt", "/dev/xvdf"),
        32,
    );
    g.expect(
        "resize2fs",
        &["/dev/xvdf"],
        "Couldn't find valid filesystem superblock.\n",
        "resize2fs 1.42.9 (28-Dec-2013)\nresize2fs: Bad magic number in super-block while trying to open /dev/xvdf\n",
        1,
    );
    // mke2fs before 1.43 always shows the details (measured on a 1.42.9
    // built from the e2fsprogs sources), and no "Filesystem UUID".
    g.expect(
        "mkfs.ext4",
        &["-n", "/dev/xvdf"],
        "Filesystem label=\nOS type: Linux\nBlock size=4096 (log=2)\n\
         Fragment size=4096 (log=2)\nStride=0 blocks, Stripe width=0 blocks\n\
         65536 inodes, 262144 blocks\n13107 blocks (5.00%) reserved for the super user\n\
         First data block=0\nMaximum filesystem blocks=268435456\n8 block groups\n\
         32768 blocks per group, 32768 fragments per group\n8192 inodes per group\n\
         Superblock backups stored on blocks: \n\t32768, 98304, 163840, 229376\n\n",
        "mke2fs 1.42.9 (28-Dec-2013)\n",
        0,
    );
    g.ok("mkfs.xfs", &["-q", "/dev/xvdf"]);
    g.expect("mount", &["-r", "/dev/xvdf", "/mnt"], "", "", 0);
    // Before 2.36 libmount does not retry read-only: EBUSY.
    g.expect(
        "mount",
        &["/dev/xvdf", "/srv"],
        "",
        "mount: /srv: /dev/xvdf already mounted on /mnt.\n",
        32,
    );

    let g = Guest::launch(CENTOS7, "t2.micro");
    g.expect(
        "mount",
        &[],
        "/dev/xvda1 on / type xfs (rw,relatime,attr2,inode64,noquota)\n",
        "",
        0,
    );
    g.attach(1, "/dev/sdf");
    g.expect(
        "mount",
        &["/dev/xvdf", "/mnt"],
        "",
        "mount: wrong fs type, bad option, bad superblock on /dev/xvdf,\n       \
         missing codepage or helper program, or other error\n\n       \
         In some cases useful info is found in syslog - try\n       \
         dmesg | tail or so.\n",
        32,
    );
    g.expect(
        "mount",
        &["/dev/xvdz", "/mnt"],
        "",
        "mount: special device /dev/xvdz does not exist\n",
        32,
    );
    g.expect(
        "umount",
        &["/"],
        "",
        "umount: /: target is busy.\n        (In some cases useful info about processes that use\n         the device is found by lsof(8) or fuser(1))\n",
        32,
    );
    g.expect("umount", &["/mnt"], "", "umount: /mnt: not mounted\n", 32);
    g.expect(
        "umount",
        &["/dev/xvdz"],
        "",
        "umount: /dev/xvdz: mountpoint not found\n",
        32,
    );
    g.expect(
        "mount",
        &["/data"],
        "",
        "mount: can't find /data in /etc/fstab\n",
        1,
    );
    let o = g.run("mkfs.ext4", &["-q", "/dev/xvdf"]);
    assert_eq!(
        (o.out.as_str(), o.err.as_str(), o.code),
        ("", "", 0),
        "{o:?}"
    );
    g.expect("mount", &["/dev/xvdf", "/mnt"], "", "", 0);
    g.expect(
        "mount",
        &["-t", "ext4"],
        "/dev/xvdf on /mnt type ext4 (rw,relatime,data=ordered)\n",
        "",
        0,
    );
    g.expect(
        "mount",
        &["/dev/xvdf", "/mnt"],
        "",
        "mount: /dev/xvdf is already mounted or /mnt busy\n       /dev/xvdf is already mounted on /mnt\n",
        32,
    );
    g.expect(
        "resize2fs",
        &["/dev/xvdf"],
        "",
        "resize2fs 1.42.9 (28-Dec-2013)\nThe filesystem is already 262144 (4k) blocks long.  Nothing to do!\n\n",
        0,
    );
}

/// Runs `args` (applet first) in the guest while the test holds the lock
/// of `img`: the command resolves the device and makes its checks in one
/// state transaction, then waits for the image's lock (seen in
/// /proc/locks as a blocked request on the image's inode); `meanwhile`
/// runs then, and the lock is let go.
fn run_held(g: &Guest, img: &std::path::Path, args: &[&str], meanwhile: impl FnOnce()) -> Out {
    use nix::fcntl::{Flock, FlockArg};
    use std::os::unix::fs::MetadataExt;
    let held = Flock::lock(std::fs::File::open(img).unwrap(), FlockArg::LockExclusive).unwrap();
    let ino = std::fs::metadata(img).unwrap().ino();
    let child =
        g.c.cmd(args[0])
            .args(&args[1..])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    let waiting = |locks: &str| {
        locks
            .lines()
            .any(|l| l.contains("->") && l.contains(&format!(":{ino} ")))
    };
    let mut blocked = false;
    for _ in 0..600 {
        if waiting(&std::fs::read_to_string("/proc/locks").unwrap()) {
            blocked = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(blocked, "{args:?} never waited for the image's lock");
    meanwhile();
    drop(held);
    let o = child.wait_with_output().unwrap();
    Out {
        out: stdout(&o),
        err: stderr(&o),
        code: o.status.code().unwrap_or(-1),
    }
}

/// The race between a guest command's checks and its read-write open of
/// the image: another process detaches the volume, or mounts it, after
/// the command looked and before it holds the image. The command must
/// refuse and leave the image byte for byte as it was; with nothing
/// changed, the same held-up command goes through.
#[test]
fn device_changed_between_check_and_open_is_refused() {
    let g = Guest::launch(AL2023, "t3.micro");
    let vol = g.attach(1, "/dev/sdf");
    let img = g.image(&vol);

    // Detached meanwhile.
    let before = common::file_hash(&img);
    let o = run_held(&g, &img, &["mkfs.xfs", "/dev/nvme1n1"], || {
        g.c.ok(&["detach-volume", "--volume-id", &vol]);
        for _ in 0..100 {
            if g.c.describe_volume(&vol)["State"] == "available" {
                return;
            }
            g.c.advance("1s");
        }
        panic!("{vol} stayed attached");
    });
    assert_eq!(o.code, 1, "{o:?}");
    assert_eq!(
        o.err,
        format!(
            "mkfs.xfs: cannot open /dev/nvme1n1: /dev/nvme1n1 changed while the command was \
             starting ({vol} is no longer attached to {}); nothing was written, run it again\n",
            g.id
        )
    );
    assert_eq!(common::file_hash(&img), before, "the image was written");

    // Attached again, nothing changed while held: it goes through.
    g.c.ok(&[
        "attach-volume",
        "--volume-id",
        &vol,
        "--instance-id",
        &g.id,
        "--device",
        "/dev/sdf",
    ]);
    for _ in 0..100 {
        if g.c.describe_volume(&vol)["Attachments"][0]["State"] == "attached" {
            break;
        }
        g.c.advance("1s");
    }
    let o = run_held(&g, &img, &["mkfs.xfs", "-q", "/dev/nvme1n1"], || {});
    assert_eq!((o.code, o.err.as_str()), (0, ""), "{o:?}");
    assert_clean(&img, 0, 1 << 30, true, "after the held mkfs.xfs");

    // Mounted meanwhile (by the guest's own mount).
    let before = common::file_hash(&img);
    let o = run_held(&g, &img, &["mkfs.xfs", "-q", "-f", "/dev/nvme1n1"], || {
        g.expect("mount", &["/dev/nvme1n1", "/mnt"], "", "", 0);
    });
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.err
            .contains(&format!("(what is mounted from {vol} changed)")),
        "{o:?}"
    );
    assert_eq!(common::file_hash(&img), before, "the image was written");
}

/// resize2fs asked for more than the partition holds: resize2fs's two
/// lines and exit 1, and (as resize2fs has settled the RAID stride by
/// then) the primary superblock rewritten with a new write time.
#[test]
fn resize2fs_past_the_partition_refuses_and_closes_dirty() {
    if !common::require_tools(&["sfdisk", "mkfs.ext4", "dumpe2fs"]) {
        return;
    }
    let g = Guest::launch(UBUNTU, "t2.micro");
    let v = g.attach(2, "/dev/sdf");
    let img = g.image(&v);
    let p = img.to_str().unwrap();
    let o = common::run(Command::new("sh").arg("-c").arg(format!(
        "printf 'label: gpt\\nstart=2048, size=1G\\n' | sfdisk -q {p} && \
         E2FSPROGS_FAKE_TIME=1700000000 mkfs.ext4 -q -E offset=1048576 {p} 1G"
    )));
    assert!(o.status.success(), "{}", stderr(&o));
    let wtime = || {
        let o = common::run(
            Command::new("dumpe2fs")
                .arg("-h")
                .arg(format!("{p}?offset=1048576")),
        );
        stdout(&o)
            .lines()
            .find(|l| l.starts_with("Last write time:"))
            .unwrap_or_default()
            .to_string()
    };
    let before = wtime();
    g.expect(
        "resize2fs",
        &["/dev/xvdf1", "2G"],
        "",
        "resize2fs 1.46.5 (30-Dec-2021)\n\
         The containing partition (or device) is only 262144 (4k) blocks.\n\
         You requested a new size of 524288 blocks.\n\n",
        1,
    );
    assert_ne!(wtime(), before, "the superblock was not rewritten");
}
