//! `ebsim demo`: the README's first command. Walks the EBS expansion runbook
//! on an embedded default: a sparse 8 GiB GPT disk with one partition, the
//! volume grown to 16 GiB, growpart run dry and for real, and the result.
//! (Later: the full runbook with instances, filesystems, lsblk and df.)

use super::output::out;
use ebsim::blockdev::image::Access;
use ebsim::blockdev::{BlockDevice, ImageFile};
use ebsim::partition::grow::{self, DiskView, GrowOptions, Outcome};
use ebsim::partition::{self, script, sfdisk};
use std::ffi::OsString;

const GIB: u64 = 1 << 30;

/// The embedded default disk: an 8 GiB GPT like an EC2 root volume, with a
/// BIOS boot partition and the root partition filling the rest.
const DEFAULT_TABLE: &str = "label: gpt
label-id: 6F6D6B2E-1E2B-4C55-9B4A-7C3D2A1B0E0F
first-lba: 2048

disk1 : start=4096, size=16773087, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=2C8D1E8A-5B3F-4E1D-8F2A-9C7B6A5D4E3F, name=\"root\"
disk14 : start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649, uuid=A1B2C3D4-E5F6-4711-8899-AABBCCDDEEFF, name=\"bios\"
";

fn step(n: u32, text: &str) {
    out(&format!("\n== Step {n}: {text}\n"));
}

fn fail(msg: String) -> i32 {
    super::output::err(&format!("ebsim demo: {msg}\n"));
    1
}

/// Runs the demo.
pub fn run(args: Vec<OsString>) -> i32 {
    let keep = args.iter().skip(1).any(|a| a == "--keep");
    let dir = std::env::temp_dir().join(format!("ebsim-demo-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return fail(format!("{}: {e}", dir.display()));
    }
    let code = match demo(&dir) {
        Ok(()) => 0,
        Err(e) => fail(e),
    };
    if keep {
        out(&format!("\n(the image is kept in {})\n", dir.display()));
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    code
}

fn show_table(img: &ImageFile, name: &str) -> Result<(), String> {
    let probe = partition::probe(img).map_err(|e| e.to_string())?;
    let label = probe.label.ok_or("no partition table")?;
    out(&format!("$ sfdisk --dump {name}\n"));
    out(&script::render(&script::dump(&label, name)));
    Ok(())
}

fn demo(dir: &std::path::Path) -> Result<(), String> {
    let path = dir.join("vol.img");
    let name = "vol.img";
    out("ebsim demo: growing an EBS root volume end to end on a sparse image file.\n");
    out(&format!("(working in {})\n", dir.display()));

    step(
        1,
        "the volume: an 8 GiB sparse image with a GPT (BIOS boot + root)",
    );
    let mut img = ImageFile::create(&path, 8 * GIB).map_err(|e| e.to_string())?;
    let table = script::parse(DEFAULT_TABLE).map_err(|e| e.what)?;
    let batch = sfdisk::apply(&img, &table).map_err(|r| r.messages.join("; "))?;
    img.commit(&batch).map_err(|e| e.to_string())?;
    show_table(&img, name)?;
    out(&format!(
        "allocated on the host: {} KiB of {} GiB\n",
        img.allocated_bytes().map_err(|e| e.to_string())? / 1024,
        img.size() / GIB
    ));

    step(
        2,
        "ModifyVolume 8 -> 16 GiB: the disk grows, the partition does not",
    );
    img.set_len(16 * GIB).map_err(|e| e.to_string())?;
    out(&format!(
        "the disk is now {} GiB; partition 1 still ends where it did\n",
        img.size() / GIB
    ));

    step(3, "growpart -N (dry run): what would change");
    let sector0 = img.read_vec(0, 512).map_err(|e| e.to_string())?;
    let probe = partition::probe(&img).map_err(|e| e.to_string())?;
    let label = probe.label.ok_or("no partition table")?;
    let view = DiskView {
        name,
        size_bytes: img.size(),
        sector0: &sector0,
        label: &label,
    };
    let plan = match grow::plan_grow(&view, "1", &GrowOptions::default()) {
        Ok(Outcome::Grow(p)) => p,
        Ok(Outcome::NoChange(n)) => return Err(format!("NOCHANGE: {}", n.message)),
        Err(f) => return Err(format!("FAILED: {}", f.message)),
    };
    out(&format!(
        "$ growpart -N {name} 1\nCHANGE: {}\n",
        plan.change_info()
    ));

    step(
        4,
        "growpart: rewrite the table (backup GPT moved to the new end)",
    );
    let writes = plan.writes.clone().map_err(|r| r.messages.join("; "))?;
    drop(img);
    let mut img = ImageFile::open(&path, Access::ReadWrite).map_err(|e| e.to_string())?;
    grow::apply(&mut img, &writes).map_err(|e| e.to_string())?;
    out(&format!(
        "$ growpart {name} 1\nCHANGED: {}\n",
        plan.change_info()
    ));
    show_table(&img, name)?;

    step(5, "growpart again: nothing left to grow");
    let sector0 = img.read_vec(0, 512).map_err(|e| e.to_string())?;
    let label = partition::probe(&img)
        .map_err(|e| e.to_string())?
        .label
        .ok_or("no partition table")?;
    let view = DiskView {
        name,
        size_bytes: img.size(),
        sector0: &sector0,
        label: &label,
    };
    match grow::plan_grow(&view, "1", &GrowOptions::default()) {
        Ok(Outcome::NoChange(n)) => out(&format!("$ growpart {name} 1\nNOCHANGE: {}\n", n.message)),
        _ => return Err("expected NOCHANGE on the second run".into()),
    }
    out(&format!(
        "\nThe partition now spans the grown disk; the filesystem inside it is grown\n\
         separately (resize2fs / xfs_growfs). Allocated on the host: {} KiB.\n",
        img.allocated_bytes().map_err(|e| e.to_string())? / 1024
    ));
    Ok(())
}
