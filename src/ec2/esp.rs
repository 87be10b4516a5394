//! What a catalog image's EFI system partition holds, and how it is made.
//!
//! - Ubuntu 22.04: livecd-rootfs formats p15 (106 MiB) with
//!   `mkfs.vfat -F 32 -n UEFI` (FAT32, 512-byte clusters, label `UEFI`)
//!   and installs shim and GRUB: `EFI/BOOT/BOOTX64.EFI` (shim),
//!   `fbx64.efi`, `mmx64.efi`, and `EFI/ubuntu/` with `shimx64.efi`,
//!   `grubx64.efi`, `mmx64.efi`, `BOOTX64.CSV` and a `grub.cfg` that
//!   finds the root filesystem and loads its `/boot/grub/grub.cfg`. A
//!   fresh instance's `df -h` shows `105M 6.1M 99M 6% /boot/efi`.
//! - Amazon Linux 2023: p128 (10 MiB) is FAT16 with 2048-byte clusters
//!   and no label; `df -h` shows `10M 1.3M 8.7M 13% /boot/efi`.
//!
//! The binaries are modelled: files of zeros with the published sizes'
//! order of magnitude, so their clusters are allocated (df's used figure
//! matches the AMI's) while their blocks stay holes in the image. The
//! text files hold real text. The volume serial is the one the image's
//! fstab names (`UUID=XXXX-XXXX`, [`super::catalog::fat_volume_id`]).

use super::catalog::{CatalogImage, fs_uuid, uuid_text};
use crate::fs::vfat::{BuildOptions, Content, FatType};

/// The FAT to make in partition `number` (`size` bytes) of `image`.
pub fn build_options(image: &CatalogImage, number: u32, size: u64, created: i64) -> BuildOptions {
    let b = fs_uuid(image, number);
    let volume_id = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let tm = crate::compat::date::gmtime(created);
    let small = |v: u32| u16::try_from(v).unwrap_or(0);
    let time = (
        u16::try_from(tm.year).unwrap_or(1980),
        small(tm.month),
        small(tm.day),
        small(tm.hour),
        small(tm.min),
        small(tm.sec),
    );
    let ubuntu = image.key.starts_with("ubuntu");
    let x86 = !image.key.contains("arm");
    let (fat_type, cluster) = if size >= 64 << 20 {
        (FatType::Fat32, 512)
    } else if size >= 8 << 20 {
        (FatType::Fat16, 2048)
    } else {
        (FatType::Fat12, 512)
    };
    let mut dirs = vec!["EFI".to_string(), "EFI/BOOT".to_string()];
    let mut files: Vec<(String, Content)> = Vec::new();
    if ubuntu {
        dirs.push("EFI/ubuntu".into());
        let root = image
            .layout
            .root_partition()
            .map(|p| uuid_text(&fs_uuid(image, p.number)))
            .unwrap_or_default();
        let grub_cfg = format!(
            "search.fs_uuid {root} root\nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n"
        );
        // shim's boot entry list, UTF-16LE with a byte-order mark.
        let csv: Vec<u8> = std::iter::once(0xFEFFu16)
            .chain("shimx64.efi,ubuntu,,This is the boot entry for ubuntu\n".encode_utf16())
            .flat_map(u16::to_le_bytes)
            .collect();
        if x86 {
            files.extend([
                ("EFI/BOOT/BOOTX64.EFI".into(), Content::Zeros(955_656)),
                ("EFI/BOOT/fbx64.efi".into(), Content::Zeros(87_816)),
                ("EFI/BOOT/mmx64.efi".into(), Content::Zeros(856_232)),
                ("EFI/ubuntu/BOOTX64.CSV".into(), Content::Bytes(csv)),
                (
                    "EFI/ubuntu/grub.cfg".into(),
                    Content::Bytes(grub_cfg.into_bytes()),
                ),
                ("EFI/ubuntu/grubx64.efi".into(), Content::Zeros(2_670_264)),
                ("EFI/ubuntu/mmx64.efi".into(), Content::Zeros(856_232)),
                ("EFI/ubuntu/shimx64.efi".into(), Content::Zeros(955_656)),
            ]);
        } else {
            files.push((
                "EFI/ubuntu/grub.cfg".into(),
                Content::Bytes(grub_cfg.into_bytes()),
            ));
        }
    } else if x86 && size >= 8 << 20 {
        dirs.push("EFI/amzn".into());
        files.extend([
            ("EFI/BOOT/BOOTX64.EFI".into(), Content::Zeros(1_341_440)),
            (
                "EFI/amzn/grub.cfg".into(),
                Content::Bytes(
                    b"search --no-floppy --set prefix --file /boot/grub2/grub.cfg\nset prefix=($prefix)/boot/grub2\nconfigfile $prefix/grub.cfg\n"
                        .to_vec(),
                ),
            ),
        ]);
    }
    BuildOptions {
        fat_type,
        cluster,
        volume_id,
        label: if ubuntu { Some("UEFI".into()) } else { None },
        dirs,
        files,
        time,
    }
}
