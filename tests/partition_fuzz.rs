//! Property tests: no bytes in the first and last sectors of a disk may make
//! the GPT/MBR readers, growpart's planner or the sfdisk writer panic or
//! loop. Each case starts from a valid table (GPT or MBR with logicals) and
//! overwrites random bytes of the structures the readers look at.

use ebsim::blockdev::{BlockDevice, MemDevice};
use ebsim::partition::grow::{self, DiskView, GrowOptions, Resizer};
use ebsim::partition::{probe, script, sfdisk};
use proptest::prelude::*;

const SECTORS: u64 = 8192; // a 4 MiB disk

fn base_image(gpt: bool) -> MemDevice {
    let mut dev = MemDevice::new((SECTORS * 512) as usize);
    let text = if gpt {
        "label: gpt\nlabel-id: 296C2A53-2C4A-4B8E-9C1F-0D5E8C3A7B11\n\nd1 : start=2048, size=2048, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=ADFE2CE3-7C6F-4A5B-9A44-2D3B6F0E9C21, name=\"root\", attrs=\"LegacyBIOSBootable\"\nd2 : start=4096, size=1024, type=21686148-6449-6E6F-744E-656564454649\n"
    } else {
        "label: dos\nlabel-id: 0x12345678\n\nd1 : start=2048, size=1024, type=83, bootable\nd2 : start=3072, size=4096, type=5\nd5 : start=4096, size=1024, type=83\nd6 : start=6144, size=512, type=82\n"
    };
    let s = script::parse(text).unwrap();
    let batch = sfdisk::apply(&dev, &s).unwrap().batch;
    dev.commit(&batch).unwrap();
    dev
}

/// Offsets worth corrupting: sector 0, the primary header and entries, the
/// EBRs, and the backup at the end.
fn hot_offset() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..512 * 40,
        (3072 * 512u64)..(3072 * 512 + 512),
        (5120 * 512u64)..(5120 * 512 + 512),
        ((SECTORS - 40) * 512)..(SECTORS * 512),
    ]
}

fn exercise(dev: &MemDevice, grown_by: u64) {
    let mut dev = dev.clone();
    if grown_by > 0 {
        let b = ebsim::blockdev::WriteBatch {
            new_len: Some(dev.size() + grown_by * 512),
            ops: vec![],
        };
        dev.commit(&b).unwrap();
    }
    let Ok(p) = probe(&dev) else { return };
    let Some(label) = p.label else { return };
    let sector0 = dev.read_vec(0, 512).unwrap();
    let text = script::render(&script::dump(&label, "d", 1 << 21));
    let parsed = script::parse(&text).unwrap();
    let _ = sfdisk::apply(&dev, &parsed);
    for resizer in [Resizer::Sfdisk, Resizer::Sgdisk] {
        for part in ["1", "2", "5", "6", "128"] {
            let view = DiskView {
                name: "d",
                size_bytes: dev.size(),
                sector0: &sector0,
                label: &label,
            };
            let opts = GrowOptions {
                resizer,
                free_percent: Some(10),
                ..GrowOptions::default()
            };
            if let Ok(grow::Outcome::Grow(plan)) = grow::plan_grow(&view, part, &opts) {
                if let Ok(batch) = &plan.writes {
                    let mut copy = dev.clone();
                    copy.commit(batch).unwrap();
                    // What we wrote must read back.
                    assert!(probe(&copy).unwrap().label.is_some());
                }
            }
            let _ = grow::plan_grow(&view, part, &GrowOptions::default());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn corrupted_gpt_never_panics(
        edits in prop::collection::vec((hot_offset(), any::<u8>()), 1..24),
        grown_by in prop_oneof![Just(0u64), 1u64..5000],
    ) {
        let mut bytes = base_image(true).bytes().to_vec();
        for (off, b) in edits {
            bytes[off as usize] = b;
        }
        exercise(&MemDevice::from_bytes(bytes), grown_by);
    }

    #[test]
    fn corrupted_mbr_never_panics(
        edits in prop::collection::vec((hot_offset(), any::<u8>()), 1..24),
        grown_by in prop_oneof![Just(0u64), 1u64..5000],
    ) {
        let mut bytes = base_image(false).bytes().to_vec();
        for (off, b) in edits {
            bytes[off as usize] = b;
        }
        exercise(&MemDevice::from_bytes(bytes), grown_by);
    }

    #[test]
    fn random_sector_zero_never_panics(sector in prop::collection::vec(any::<u8>(), 512)) {
        let mut bytes = vec![0u8; 64 * 512];
        bytes[..512].copy_from_slice(&sector);
        bytes[510] = 0x55;
        bytes[511] = 0xAA;
        exercise(&MemDevice::from_bytes(bytes), 0);
    }

    #[test]
    fn scripts_never_panic(text in "[a-z0-9:=, \"\\\\x\n-]{0,200}") {
        if let Ok(s) = script::parse(&text) {
            let dev = MemDevice::new(64 * 512);
            let _ = sfdisk::apply(&dev, &s);
        }
    }
}
