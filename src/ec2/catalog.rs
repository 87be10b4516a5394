//! The built-in AMI catalog: the images ebsim can launch without any
//! setup, described as data (name, ids, architecture, root device and
//! volume, util-linux version of the guest, disk layout), and the
//! [`ImageBuilder`] that turns a layout into a disk image on first use.
//!
//! Layouts follow the real images (sector numbers for an 8 GiB disk as the
//! real AMIs have them; `end_lba: None` runs to the last usable sector):
//!
//! | flavour | table | partitions |
//! |---|---|---|
//! | Amazon Linux 2 | GPT | p1 XFS `/` (4096–end), p128 BIOS boot (2048–4095) |
//! | Amazon Linux 2023 | GPT | p1 XFS `/` (24576–end), p127 BIOS boot (22528–24575), p128 EFI (2048–22527) |
//! | Ubuntu 22.04 | GPT | p1 ext4 `/` (227328–end), p14 BIOS boot (2048–10239), p15 EFI (10240–227327) |
//! | CentOS 7 | MBR | p1 XFS `/` (2048–end) |

use super::release::{self, OsRelease};
use super::types::VolumeType;
use std::path::Path;

/// Partition table kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// GUID partition table.
    Gpt,
    /// MS-DOS table.
    Mbr,
}

/// What a partition is for (its GPT type GUID or MBR type byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartKind {
    /// GPT "Linux filesystem" 0FC63DAF-8483-4772-8E79-3D69D8477DE4.
    LinuxFs,
    /// GPT "BIOS boot" 21686148-6449-6E6F-744E-656564454649.
    BiosBoot,
    /// GPT "EFI System" C12A7328-F81F-11D2-BA4B-00A0C93EC93B.
    EfiSystem,
    /// MBR type 0x83.
    MbrLinux,
}

/// Filesystem kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    /// ext4 (mkfs.ext4 defaults of the distribution).
    Ext4,
    /// XFS.
    Xfs,
    /// FAT (the EFI partition).
    Vfat,
}

impl FsKind {
    /// The name `mount` and `df -T` show.
    pub fn name(self) -> &'static str {
        match self {
            FsKind::Ext4 => "ext4",
            FsKind::Xfs => "xfs",
            FsKind::Vfat => "vfat",
        }
    }
}

/// A filesystem to make in a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsSpec {
    /// Kind.
    pub kind: FsKind,
    /// Label.
    pub label: Option<&'static str>,
    /// Where the image's fstab mounts it.
    pub mount_point: Option<&'static str>,
    /// Mount options as /proc/mounts shows them.
    pub options: &'static str,
    /// ext4: bytes per inode (`mke2fs -i`), or the size class's default.
    pub inode_ratio: Option<u64>,
    /// ext4: reserved blocks percentage (`mke2fs -m`).
    pub reserved_percent: u8,
    /// ext4: `mke2fs -E resize=BLOCKS` (the growth the reserved GDT blocks
    /// make room for), or None for mke2fs's 1024× default.
    pub resize_max: Option<u64>,
}

/// One partition of a layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionSpec {
    /// Partition number (= GPT entry slot).
    pub number: u32,
    /// First sector (512 bytes).
    pub start_lba: u64,
    /// Last sector, or None for the last usable sector of the disk.
    pub end_lba: Option<u64>,
    /// Type.
    pub kind: PartKind,
    /// GPT partition name.
    pub name: &'static str,
    /// MBR boot flag.
    pub bootable: bool,
    /// The filesystem in it.
    pub fs: Option<FsSpec>,
}

/// A disk layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Table kind.
    pub table: TableKind,
    /// Partitions, in partition-number order.
    pub partitions: &'static [PartitionSpec],
}

impl Layout {
    /// The partition mounted at `/`.
    pub fn root_partition(&self) -> Option<&PartitionSpec> {
        self.partitions
            .iter()
            .find(|p| p.fs.and_then(|f| f.mount_point) == Some("/"))
    }
}

/// One catalog image.
#[derive(Debug, Clone, Copy)]
pub struct CatalogImage {
    /// The flavour key instances and volumes carry (`al2023`, ...).
    pub key: &'static str,
    /// AMI id.
    pub image_id: &'static str,
    /// The snapshot behind the root mapping.
    pub snapshot_id: &'static str,
    /// AMI name.
    pub name: &'static str,
    /// AMI description.
    pub description: &'static str,
    /// Owner account.
    pub owner_id: &'static str,
    /// Owner alias (`amazon`).
    pub owner_alias: Option<&'static str>,
    /// `x86_64` or `arm64`.
    pub architecture: &'static str,
    /// Root device API name.
    pub root_device_name: &'static str,
    /// Root volume size, GiB.
    pub root_size: u64,
    /// Root volume type.
    pub root_type: VolumeType,
    /// The OS release inside (its util-linux decides lsblk's and mount's
    /// output, its e2fsprogs and xfsprogs their banners).
    pub release: OsRelease,
    /// Creation date (wire format).
    pub creation_date: &'static str,
    /// Disk layout.
    pub layout: Layout,
}

const XFS_ROOT: FsSpec = FsSpec {
    kind: FsKind::Xfs,
    label: Some("/"),
    mount_point: Some("/"),
    options: "rw,noatime,attr2,inode64,logbufs=8,logbsize=32k,noquota",
    inode_ratio: None,
    reserved_percent: 5,
    resize_max: None,
};

const EFI_AMZN: FsSpec = FsSpec {
    kind: FsKind::Vfat,
    label: None,
    mount_point: Some("/boot/efi"),
    options: "rw,noatime,fmask=0077,dmask=0077,codepage=437,iocharset=ascii,shortname=winnt,errors=remount-ro",
    inode_ratio: None,
    reserved_percent: 5,
    resize_max: None,
};

const AL2_PARTS: &[PartitionSpec] = &[
    PartitionSpec {
        number: 1,
        start_lba: 4096,
        end_lba: None,
        kind: PartKind::LinuxFs,
        name: "Linux",
        bootable: false,
        fs: Some(XFS_ROOT),
    },
    PartitionSpec {
        number: 128,
        start_lba: 2048,
        end_lba: Some(4095),
        kind: PartKind::BiosBoot,
        name: "BIOS Boot Partition",
        bootable: false,
        fs: None,
    },
];

const AL2_ARM_PARTS: &[PartitionSpec] = &[
    PartitionSpec {
        number: 1,
        start_lba: 4096,
        end_lba: None,
        kind: PartKind::LinuxFs,
        name: "Linux",
        bootable: false,
        fs: Some(XFS_ROOT),
    },
    PartitionSpec {
        number: 128,
        start_lba: 2048,
        end_lba: Some(4095),
        kind: PartKind::EfiSystem,
        name: "EFI System Partition",
        bootable: false,
        fs: Some(EFI_AMZN),
    },
];

const AL2023_PARTS: &[PartitionSpec] = &[
    PartitionSpec {
        number: 1,
        start_lba: 24576,
        end_lba: None,
        kind: PartKind::LinuxFs,
        name: "Linux",
        bootable: false,
        fs: Some(XFS_ROOT),
    },
    PartitionSpec {
        number: 127,
        start_lba: 22528,
        end_lba: Some(24575),
        kind: PartKind::BiosBoot,
        name: "BIOS Boot Partition",
        bootable: false,
        fs: None,
    },
    PartitionSpec {
        number: 128,
        start_lba: 2048,
        end_lba: Some(22527),
        kind: PartKind::EfiSystem,
        name: "EFI System Partition",
        bootable: false,
        fs: Some(EFI_AMZN),
    },
];

const AL2023_ARM_PARTS: &[PartitionSpec] = &[
    PartitionSpec {
        number: 1,
        start_lba: 24576,
        end_lba: None,
        kind: PartKind::LinuxFs,
        name: "Linux",
        bootable: false,
        fs: Some(XFS_ROOT),
    },
    PartitionSpec {
        number: 128,
        start_lba: 2048,
        end_lba: Some(22527),
        kind: PartKind::EfiSystem,
        name: "EFI System Partition",
        bootable: false,
        fs: Some(EFI_AMZN),
    },
];

const UBUNTU_ROOT: FsSpec = FsSpec {
    kind: FsKind::Ext4,
    label: Some("cloudimg-rootfs"),
    mount_point: Some("/"),
    options: "rw,relatime,discard,errors=remount-ro",
    // livecd-rootfs makes the cloud image's root with
    // `mkfs.ext4 -b 4096 -i 8192 -m 0 -E resize=536870912` (room to grow
    // to 2 TiB: 255 reserved GDT blocks).
    inode_ratio: Some(8192),
    reserved_percent: 0,
    resize_max: Some(536_870_912),
};

const UBUNTU_EFI: FsSpec = FsSpec {
    kind: FsKind::Vfat,
    label: Some("UEFI"),
    mount_point: Some("/boot/efi"),
    options: "rw,relatime,fmask=0077,dmask=0077,codepage=437,iocharset=iso8859-1,shortname=mixed,errors=remount-ro",
    inode_ratio: None,
    reserved_percent: 5,
    resize_max: None,
};

const UBUNTU_PARTS: &[PartitionSpec] = &[
    PartitionSpec {
        number: 1,
        start_lba: 227_328,
        end_lba: None,
        kind: PartKind::LinuxFs,
        name: "",
        bootable: false,
        fs: Some(UBUNTU_ROOT),
    },
    PartitionSpec {
        number: 14,
        start_lba: 2048,
        end_lba: Some(10_239),
        kind: PartKind::BiosBoot,
        name: "",
        bootable: false,
        fs: None,
    },
    PartitionSpec {
        number: 15,
        start_lba: 10_240,
        end_lba: Some(227_327),
        kind: PartKind::EfiSystem,
        name: "",
        bootable: false,
        fs: Some(UBUNTU_EFI),
    },
];

const UBUNTU_ARM_PARTS: &[PartitionSpec] = &[
    PartitionSpec {
        number: 1,
        start_lba: 227_328,
        end_lba: None,
        kind: PartKind::LinuxFs,
        name: "",
        bootable: false,
        fs: Some(UBUNTU_ROOT),
    },
    PartitionSpec {
        number: 15,
        start_lba: 2048,
        end_lba: Some(227_327),
        kind: PartKind::EfiSystem,
        name: "",
        bootable: false,
        fs: Some(UBUNTU_EFI),
    },
];

const CENTOS7_PARTS: &[PartitionSpec] = &[PartitionSpec {
    number: 1,
    start_lba: 2048,
    end_lba: None,
    kind: PartKind::MbrLinux,
    name: "",
    bootable: true,
    fs: Some(FsSpec {
        kind: FsKind::Xfs,
        label: None,
        mount_point: Some("/"),
        options: "rw,relatime,attr2,inode64,noquota",
        inode_ratio: None,
        reserved_percent: 5,
        resize_max: None,
    }),
}];

/// Amazon's account (owner alias `amazon`).
pub const AMAZON_OWNER: &str = "137112412989";
/// Canonical's account.
pub const CANONICAL_OWNER: &str = "099720109477";
/// The CentOS project's account.
pub const CENTOS_OWNER: &str = "125523088429";

/// The catalog.
pub const CATALOG: &[CatalogImage] = &[
    CatalogImage {
        key: "amzn2",
        image_id: "ami-0a3c3a20c09d6f377",
        snapshot_id: "snap-0a5b1e4b1c9f6d7e2",
        name: "amzn2-ami-kernel-5.10-hvm-2.0.20240306.2-x86_64-gp2",
        description: "Amazon Linux 2 Kernel 5.10 AMI 2.0.20240306.2 x86_64 HVM gp2",
        owner_id: AMAZON_OWNER,
        owner_alias: Some("amazon"),
        architecture: "x86_64",
        root_device_name: "/dev/xvda",
        root_size: 8,
        root_type: VolumeType::Gp2,
        release: release::AMAZON_LINUX_2,
        creation_date: "2024-03-06T20:54:31.000Z",
        layout: Layout {
            table: TableKind::Gpt,
            partitions: AL2_PARTS,
        },
    },
    CatalogImage {
        key: "amzn2-arm64",
        image_id: "ami-0b6b0c8f0e5a1d2c3",
        snapshot_id: "snap-0b7c2f5c2d0a7e8f3",
        name: "amzn2-ami-kernel-5.10-hvm-2.0.20240306.2-arm64-gp2",
        description: "Amazon Linux 2 Kernel 5.10 AMI 2.0.20240306.2 arm64 HVM gp2",
        owner_id: AMAZON_OWNER,
        owner_alias: Some("amazon"),
        architecture: "arm64",
        root_device_name: "/dev/xvda",
        root_size: 8,
        root_type: VolumeType::Gp2,
        release: release::AMAZON_LINUX_2,
        creation_date: "2024-03-06T20:55:02.000Z",
        layout: Layout {
            table: TableKind::Gpt,
            partitions: AL2_ARM_PARTS,
        },
    },
    CatalogImage {
        key: "al2023",
        image_id: "ami-051f8a213df8bc089",
        snapshot_id: "snap-0c8d3a6d3e1b8f904",
        name: "al2023-ami-2023.4.20240401.1-kernel-6.1-x86_64",
        description: "Amazon Linux 2023 AMI 2023.4.20240401.1 x86_64 HVM kernel-6.1",
        owner_id: AMAZON_OWNER,
        owner_alias: Some("amazon"),
        architecture: "x86_64",
        root_device_name: "/dev/xvda",
        root_size: 8,
        root_type: VolumeType::Gp3,
        release: release::AMAZON_LINUX_2023,
        creation_date: "2024-04-01T21:51:06.000Z",
        layout: Layout {
            table: TableKind::Gpt,
            partitions: AL2023_PARTS,
        },
    },
    CatalogImage {
        key: "al2023-arm64",
        image_id: "ami-0c1f7b7eb05c17ca5",
        snapshot_id: "snap-0d9e4b7e4f2c9a015",
        name: "al2023-ami-2023.4.20240401.1-kernel-6.1-arm64",
        description: "Amazon Linux 2023 AMI 2023.4.20240401.1 arm64 HVM kernel-6.1",
        owner_id: AMAZON_OWNER,
        owner_alias: Some("amazon"),
        architecture: "arm64",
        root_device_name: "/dev/xvda",
        root_size: 8,
        root_type: VolumeType::Gp3,
        release: release::AMAZON_LINUX_2023,
        creation_date: "2024-04-01T21:51:40.000Z",
        layout: Layout {
            table: TableKind::Gpt,
            partitions: AL2023_ARM_PARTS,
        },
    },
    CatalogImage {
        key: "ubuntu-22.04",
        image_id: "ami-080e1f13689e07408",
        snapshot_id: "snap-0e0f5c8f5a3d0b126",
        name: "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240301",
        description: "Canonical, Ubuntu, 22.04 LTS, amd64 jammy image build on 2024-03-01",
        owner_id: CANONICAL_OWNER,
        owner_alias: None,
        architecture: "x86_64",
        root_device_name: "/dev/sda1",
        root_size: 8,
        root_type: VolumeType::Gp2,
        release: release::UBUNTU_22_04,
        creation_date: "2024-03-01T07:07:06.000Z",
        layout: Layout {
            table: TableKind::Gpt,
            partitions: UBUNTU_PARTS,
        },
    },
    CatalogImage {
        key: "ubuntu-22.04-arm64",
        image_id: "ami-0a55ba1c20b74fc30",
        snapshot_id: "snap-0f1a6d9a6b4e1c237",
        name: "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-arm64-server-20240301",
        description: "Canonical, Ubuntu, 22.04 LTS, arm64 jammy image build on 2024-03-01",
        owner_id: CANONICAL_OWNER,
        owner_alias: None,
        architecture: "arm64",
        root_device_name: "/dev/sda1",
        root_size: 8,
        root_type: VolumeType::Gp2,
        release: release::UBUNTU_22_04,
        creation_date: "2024-03-01T07:08:10.000Z",
        layout: Layout {
            table: TableKind::Gpt,
            partitions: UBUNTU_ARM_PARTS,
        },
    },
    CatalogImage {
        key: "centos7",
        image_id: "ami-002070d43b0a4f171",
        snapshot_id: "snap-01b2c7e0b7c5f2d48",
        name: "CentOS-7-2111-20220825_1.x86_64-d9a3032a-921c-4c6d-b150-bde168105e42",
        description: "CentOS-7-2111-20220825_1.x86_64",
        owner_id: CENTOS_OWNER,
        owner_alias: None,
        architecture: "x86_64",
        root_device_name: "/dev/sda1",
        root_size: 10,
        root_type: VolumeType::Gp2,
        release: release::CENTOS_7,
        creation_date: "2022-08-25T15:53:02.000Z",
        layout: Layout {
            table: TableKind::Mbr,
            partitions: CENTOS7_PARTS,
        },
    },
];

/// The catalog entry with this AMI id.
pub fn by_image_id(id: &str) -> Option<&'static CatalogImage> {
    CATALOG.iter().find(|c| c.image_id == id)
}

/// The catalog entry with this root snapshot id.
pub fn by_snapshot_id(id: &str) -> Option<&'static CatalogImage> {
    CATALOG.iter().find(|c| c.snapshot_id == id)
}

/// The public SSM parameters (`/aws/service/...`) that name the catalog's
/// AMIs, as Amazon and Canonical publish them: parameter → flavour key.
/// CentOS publishes none.
pub const SSM_PARAMETERS: &[(&str, &str)] = &[
    (
        "/aws/service/ami-amazon-linux-latest/amzn2-ami-kernel-5.10-hvm-x86_64-gp2",
        "amzn2",
    ),
    (
        "/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2",
        "amzn2",
    ),
    (
        "/aws/service/ami-amazon-linux-latest/amzn2-ami-kernel-5.10-hvm-arm64-gp2",
        "amzn2-arm64",
    ),
    (
        "/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-arm64-gp2",
        "amzn2-arm64",
    ),
    (
        "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
        "al2023",
    ),
    (
        "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64",
        "al2023",
    ),
    (
        "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
        "al2023-arm64",
    ),
    (
        "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-arm64",
        "al2023-arm64",
    ),
    (
        "/aws/service/canonical/ubuntu/server/22.04/stable/current/amd64/hvm/ebs-gp2/ami-id",
        "ubuntu-22.04",
    ),
    (
        "/aws/service/canonical/ubuntu/server/jammy/stable/current/amd64/hvm/ebs-gp2/ami-id",
        "ubuntu-22.04",
    ),
    (
        "/aws/service/canonical/ubuntu/server/22.04/stable/current/arm64/hvm/ebs-gp2/ami-id",
        "ubuntu-22.04-arm64",
    ),
    (
        "/aws/service/canonical/ubuntu/server/jammy/stable/current/arm64/hvm/ebs-gp2/ami-id",
        "ubuntu-22.04-arm64",
    ),
];

/// The catalog entry an SSM parameter names.
pub fn by_ssm_parameter(name: &str) -> Option<&'static CatalogImage> {
    SSM_PARAMETERS
        .iter()
        .find(|(p, _)| *p == name)
        .and_then(|(_, k)| by_key(k))
}

/// The catalog entry of a flavour key.
pub fn by_key(key: &str) -> Option<&'static CatalogImage> {
    CATALOG.iter().find(|c| c.key == key)
}

/// The user an image's cloud-init makes (the shell prompt's name):
/// `ubuntu`, `centos`, else `ec2-user`.
pub fn login_user(flavour: Option<&str>) -> &'static str {
    match flavour {
        Some(f) if f.starts_with("ubuntu") => "ubuntu",
        Some(f) if f.starts_with("centos") => "centos",
        _ => "ec2-user",
    }
}

/// The OS release of a flavour (Debian 12's tools for an unknown one).
pub fn release_of(flavour: Option<&str>) -> OsRelease {
    flavour
        .and_then(by_key)
        .map_or(release::DEBIAN_12, |c| c.release)
}

/// The version of what [`default_builder`] makes. Bump it when the builder
/// changes: catalog snapshots made by an older version are rebuilt at
/// their next use (5: the Amazon Linux and CentOS XFS roots populated;
/// 6: the EFI system partitions formatted and filled).
pub const BUILD_VERSION: u32 = 6;

/// Builds a catalog image's disk: partition table and filesystems, into a
/// new sparse file at `path` of `image.root_size` GiB. Implementations
/// write only through the blockdev layer's commit.
pub trait ImageBuilder: Send + Sync {
    /// Creates the disk image. `path` does not exist yet.
    fn build(&self, image: &CatalogImage, path: &Path) -> std::result::Result<(), String>;
}

/// Creates the sparse file of the right size and nothing in it, for tests
/// that want an empty disk quickly.
#[derive(Debug, Clone, Copy, Default)]
pub struct BlankImageBuilder;

impl ImageBuilder for BlankImageBuilder {
    fn build(&self, image: &CatalogImage, path: &Path) -> std::result::Result<(), String> {
        let len = image.root_size.saturating_mul(1 << 30);
        crate::blockdev::ImageFile::create(path, len)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Builds a catalog image with ebsim's own layers: the partition table by
/// the partition layer (the sfdisk-compatible writer), then each
/// partition's filesystem by its mkfs, with the image's label. GUIDs and
/// filesystem UUIDs are fixed per AMI, so every build of an image is the
/// same disk (as every volume made from one real AMI is).
/// The EFI system partitions get a FAT with what the AMI's has
/// ([`super::esp`]), written by the `fatfs` crate.
#[derive(Debug, Clone, Copy, Default)]
pub struct NativeImageBuilder;

/// GPT type GUIDs and MBR type bytes, as sfdisk scripts spell them.
fn type_code(kind: PartKind) -> &'static str {
    match kind {
        PartKind::LinuxFs => "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
        PartKind::BiosBoot => "21686148-6449-6E6F-744E-656564454649",
        PartKind::EfiSystem => "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
        PartKind::MbrLinux => "83",
    }
}

/// 16 bytes derived from `seed`, shaped as a version 4 UUID.
fn guid_bytes(seed: &str) -> [u8; 16] {
    use sha2::Digest;
    let h = sha2::Sha256::digest(seed.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0F) | 0x40;
    b[8] = (b[8] & 0x3F) | 0x80;
    b
}

/// The filesystem UUID the builder gives partition `number` of `image`
/// (fixed per AMI, as every volume of one real AMI shares its UUIDs).
pub fn fs_uuid(image: &CatalogImage, number: u32) -> [u8; 16] {
    guid_bytes(&format!("{}#{number}#fs", image.image_id))
}

/// The volume id of the FAT in partition `number` of `image`
/// (`XXXX-XXXX`), as blkid prints it and fstab names it: the first four
/// bytes of the partition's fixed filesystem UUID.
pub fn fat_volume_id(image: &CatalogImage, number: u32) -> String {
    let b = fs_uuid(image, number);
    format!("{:02X}{:02X}-{:02X}{:02X}", b[0], b[1], b[2], b[3])
}

/// A UUID as blkid and fstab write it (lower case, dashed).
pub fn uuid_text(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// A GUID derived from `seed`, uppercase as sfdisk prints it.
fn fixed_guid(seed: &str) -> String {
    let hex: String = guid_bytes(seed)
        .iter()
        .map(|x| format!("{x:02X}"))
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The last sector a partition may use on a disk of `sectors`.
fn last_usable(table: TableKind, sectors: u64) -> u64 {
    match table {
        TableKind::Gpt => sectors.saturating_sub(34),
        TableKind::Mbr => sectors.saturating_sub(1),
    }
}

/// The sfdisk script of a catalog image's table on a disk of `sectors`.
pub fn table_script(image: &CatalogImage, sectors: u64) -> crate::partition::script::Script {
    use crate::partition::script::{Script, ScriptPartition};
    let gpt = image.layout.table == TableKind::Gpt;
    let last = last_usable(image.layout.table, sectors);
    let mut headers = vec![(
        "label".to_string(),
        if gpt { "gpt" } else { "dos" }.to_string(),
    )];
    if gpt {
        headers.push(("label-id".into(), fixed_guid(image.image_id)));
        headers.push(("first-lba".into(), "34".into()));
    } else {
        let sig = &fixed_guid(image.image_id)[..8];
        headers.push(("label-id".into(), format!("0x{}", sig.to_lowercase())));
    }
    let partitions = image
        .layout
        .partitions
        .iter()
        .map(|p| {
            let end = p.end_lba.unwrap_or(last);
            ScriptPartition {
                device: format!("disk{}", p.number),
                partno: usize::try_from(p.number)
                    .ok()
                    .and_then(|n| n.checked_sub(1)),
                start: Some(p.start_lba),
                size: Some(end.saturating_sub(p.start_lba).saturating_add(1)),
                ptype: Some(type_code(p.kind).to_string()),
                uuid: gpt.then(|| fixed_guid(&format!("{}#{}", image.image_id, p.number))),
                name: (gpt && !p.name.is_empty()).then(|| p.name.to_string()),
                attrs: None,
                bootable: p.bootable,
                size_aligned: false,
            }
        })
        .collect();
    Script {
        headers,
        partitions,
    }
}

impl ImageBuilder for NativeImageBuilder {
    fn build(&self, image: &CatalogImage, path: &Path) -> std::result::Result<(), String> {
        use crate::blockdev::BlockDevice;
        use crate::partition::SECTOR;
        let len = image.root_size.saturating_mul(1 << 30);
        let mut img = crate::blockdev::ImageFile::create(path, len).map_err(|e| e.to_string())?;
        let sectors = len / SECTOR;
        let script = table_script(image, sectors);
        let applied =
            crate::partition::sfdisk::apply(&img, &script).map_err(|r| r.messages.join("; "))?;
        img.commit(&applied.batch).map_err(|e| e.to_string())?;
        for p in image.layout.partitions {
            let Some(fs) = p.fs else { continue };
            let end = p
                .end_lba
                .unwrap_or(last_usable(image.layout.table, sectors));
            let offset = p.start_lba.saturating_mul(SECTOR);
            let size = end
                .saturating_sub(p.start_lba)
                .saturating_add(1)
                .saturating_mul(SECTOR);
            make_fs(image, p, fs, &mut img, offset, size)?;
        }
        Ok(())
    }
}

/// Makes one partition's filesystem, through the partition's `Slice`.
pub fn make_fs(
    image: &CatalogImage,
    p: &PartitionSpec,
    fs: FsSpec,
    img: &mut crate::blockdev::ImageFile,
    offset: u64,
    size: u64,
) -> std::result::Result<(), String> {
    use crate::fs::ext4::geometry::{GeometryRequest, SizeType};
    use crate::fs::ext4::mkfs;
    match fs.kind {
        FsKind::Ext4 => {
            let mut slice =
                crate::blockdev::Slice::new(&mut *img, offset, size).map_err(|e| e.to_string())?;
            let mut label = [0u8; 16];
            let l = fs.label.unwrap_or("").as_bytes();
            let n = l.len().min(16);
            label[..n].copy_from_slice(&l[..n]);
            let seed = format!("{}#{}", image.image_id, p.number);
            let created = super::time::Millis::parse(image.creation_date).map_or(0, |t| t.0 / 1000);
            let mut profile = crate::fs::ext4::geometry::Profile::EXT4;
            if let Some(max) = fs.resize_max {
                let cx = crate::fs::ext4::mke2fs::ExtendedContext {
                    blocks: size / 4096,
                    block_size: 4096,
                    descs_per_block: 4096 / profile.desc_size(),
                    blocks_per_group: 4096 * 8,
                    discard: true,
                };
                let ext = crate::fs::ext4::mke2fs::extended(&[format!("resize={max}")], &cx)
                    .map_err(|e| format!("{e:?}"))?;
                profile.reserved_gdt = ext.reserved_gdt;
            }
            let opts = mkfs::MkfsOptions {
                geometry: GeometryRequest {
                    block_size: 4096,
                    blocks: size / 4096,
                    size_type: SizeType::for_bytes(size),
                    inodes: None,
                    inode_ratio: fs.inode_ratio,
                    reserved_ratio: f64::from(fs.reserved_percent),
                    profile,
                },
                uuid: fs_uuid(image, p.number),
                hash_seed: guid_bytes(&format!("{seed}#hash")),
                label,
                now: u64::try_from(created).unwrap_or(0),
                discard: true,
                tunables: Default::default(),
            };
            let plan = mkfs::plan(size, &opts).map_err(|e| e.to_string())?;
            mkfs::apply(&mut slice, &plan).map_err(|e| e.to_string())?;
            populate_root(image, fs, slice, created)
        }
        FsKind::Xfs => {
            use crate::fs::xfs::inode::{MkfsTimes, Timestamp};
            let mut slice =
                crate::blockdev::Slice::new(&mut *img, offset, size).map_err(|e| e.to_string())?;
            let created = super::time::Millis::parse(image.creation_date).map_or(0, |t| t.0 / 1000);
            let t = Timestamp {
                sec: created,
                nsec: 0,
            };
            let opts = crate::fs::xfs::mkfs::MkfsOptions {
                uuid: fs_uuid(image, p.number),
                label: fs.label.unwrap_or("").as_bytes().to_vec(),
                dblocks: None,
                times: MkfsTimes {
                    root: t,
                    rbm: t,
                    rsum: t,
                },
                features: None,
                ask: Default::default(),
            };
            let plan = crate::fs::xfs::mkfs::plan(&slice, &opts).map_err(|e| e.to_string())?;
            crate::fs::xfs::mkfs::apply(&mut slice, &plan).map_err(|e| e.to_string())?;
            populate_root(image, fs, slice, created)
        }
        FsKind::Vfat => {
            use crate::blockdev::BlockDevice;
            let mut slice =
                crate::blockdev::Slice::new(&mut *img, offset, size).map_err(|e| e.to_string())?;
            let created = super::time::Millis::parse(image.creation_date).map_or(0, |t| t.0 / 1000);
            let opts = super::esp::build_options(image, p.number, size, created);
            let batch = crate::fs::vfat::build(size, &opts).map_err(|e| e.to_string())?;
            slice.commit(&batch).map_err(|e| e.to_string())
        }
    }
}

/// Writes the root filesystem's files ([`super::rootfs`]) when `fs` is
/// the image's root and ebsim has its contents, as root at the image's
/// creation time.
fn populate_root<D: crate::blockdev::BlockDevice>(
    image: &CatalogImage,
    fs: FsSpec,
    dev: D,
    created: i64,
) -> std::result::Result<(), String> {
    use crate::fs::node::{Cred, Ctx, Timespec};
    if fs.mount_point != Some("/") {
        return Ok(());
    }
    let Some(spec) = super::rootfs::spec_for(image) else {
        return Ok(());
    };
    let ctx = Ctx {
        cred: Cred::ROOT,
        now: Timespec {
            sec: created,
            nsec: 0,
        },
    };
    let mut files: Box<dyn crate::fs::node::FileSystem> = match fs.kind {
        FsKind::Ext4 => {
            Box::new(crate::fs::ext4::files::Ext4Files::open(dev).map_err(|e| e.to_string())?)
        }
        FsKind::Xfs => {
            Box::new(crate::fs::xfs::files::XfsFiles::open(dev).map_err(|e| e.to_string())?)
        }
        FsKind::Vfat => return Ok(()),
    };
    super::rootfs::populate(files.as_mut(), ctx, &spec)
}

/// The builder ebsim uses ([`NativeImageBuilder`]).
pub fn default_builder() -> Box<dyn ImageBuilder> {
    Box::new(NativeImageBuilder)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_consistent() {
        let mut ids = std::collections::HashSet::new();
        for c in CATALOG {
            assert!(ids.insert(c.image_id), "{}", c.image_id);
            assert!(ids.insert(c.snapshot_id), "{}", c.snapshot_id);
            assert!(
                super::super::ids::well_formed(c.image_id, "ami"),
                "{}",
                c.image_id
            );
            assert!(
                super::super::ids::well_formed(c.snapshot_id, "snap"),
                "{}",
                c.snapshot_id
            );
            assert!(c.layout.root_partition().is_some(), "{}", c.key);
            // Partitions do not overlap on the smallest disk.
            let last = c.root_size * (1 << 30) / 512 - 34;
            let mut ranges: Vec<(u64, u64)> = c
                .layout
                .partitions
                .iter()
                .map(|p| (p.start_lba, p.end_lba.unwrap_or(last)))
                .collect();
            ranges.sort();
            for w in ranges.windows(2) {
                assert!(w[0].1 < w[1].0, "{}: overlap", c.key);
            }
        }
        assert_eq!(
            by_key("al2023").map(|c| c.release),
            Some(release::AMAZON_LINUX_2023)
        );
        assert_eq!(release_of(Some("amzn2")), release::AMAZON_LINUX_2);
        assert_eq!(release_of(None), release::DEBIAN_12);
    }

    #[test]
    fn tables_are_written_by_the_partition_layer() {
        let dir = tempfile::tempdir().unwrap();
        for c in CATALOG {
            let sectors = c.root_size * (1 << 30) / 512;
            let path = dir.path().join(format!("{}.img", c.key));
            NativeImageBuilder.build(c, &path).unwrap();
            let dev =
                crate::blockdev::ImageFile::open(&path, crate::blockdev::image::Access::ReadOnly)
                    .unwrap();
            let probe = crate::partition::probe(&dev).unwrap();
            let label = probe.label.unwrap();
            let want = if c.layout.table == TableKind::Gpt {
                "gpt"
            } else {
                "dos"
            };
            assert_eq!(label.kind(), want, "{}", c.key);
            let mut got = label.partitions();
            got.sort();
            let last = if want == "gpt" {
                sectors - 34
            } else {
                sectors - 1
            };
            let mut expect: Vec<(u32, u64, u64)> = c
                .layout
                .partitions
                .iter()
                .map(|p| {
                    (
                        p.number,
                        p.start_lba,
                        p.end_lba.unwrap_or(last) - p.start_lba + 1,
                    )
                })
                .collect();
            expect.sort();
            assert_eq!(got, expect, "{}", c.key);
            assert!(
                label.warnings().is_empty(),
                "{}: {:?}",
                c.key,
                label.warnings()
            );
            // Each filesystem partition holds the filesystem the AMI maps.
            for p in c.layout.partitions {
                let Some(fs) = p.fs else { continue };
                let (start, size) = label
                    .partitions()
                    .into_iter()
                    .find(|(n, _, _)| *n == p.number)
                    .map(|(_, s, n)| (s * 512, n * 512))
                    .unwrap();
                let part = crate::blockdev::Slice::new(&dev, start, size).unwrap();
                match fs.kind {
                    FsKind::Ext4 => assert!(crate::fs::ext4::probe(&part).unwrap(), "{}", c.key),
                    FsKind::Xfs => assert!(crate::fs::xfs::probe(&part).unwrap(), "{}", c.key),
                    FsKind::Vfat => {}
                }
            }
        }
    }
}
