//! `sfdisk`, the parts the labs need: `--delete DEVICE PARTNO...` (remove
//! partitions), `-d`/`--dump DEVICE` (the script), and `-q DEVICE` with a
//! script on stdin (write a new table; dump lines, device-less named lines
//! and the positional shorthand such as `,,L`). On an image file here or on an
//! instance's disk (`/dev/xvdf`). The table is rewritten exactly as
//! `sfdisk` writes it (the library's `partition::sfdisk`, the model
//! growpart uses), through the blockdev commit. Other options are refused
//! by name.

use super::env;
use super::output::{err, out};
use ebsim::blockdev::image::Access;
use ebsim::blockdev::{BlockDevice, ImageFile};
use ebsim::partition::{self, SECTOR, script};
use std::ffi::OsString;
use std::io::Read;

enum Source {
    File,
    Guest(Box<ebsim::guest::Resolved>),
}

impl Source {
    fn open(&self, path: &str, access: Access) -> Result<Box<dyn BlockDevice>, String> {
        match self {
            Source::File => ImageFile::open(path, access)
                .map(|i| Box::new(i) as Box<dyn BlockDevice>)
                .map_err(|e| format!("cannot open {path}: {e}")),
            Source::Guest(r) => r
                .open(access)
                .map(|i| Box::new(i) as Box<dyn BlockDevice>)
                .map_err(|e| format!("cannot open {path}: {e}")),
        }
    }
}

fn source(dev: &str) -> Result<Source, String> {
    if super::env::target(dev, false) != ebsim::guest::Target::Device {
        return Ok(Source::File);
    }
    let ctx = env::context()?;
    match ctx.resolve(dev) {
        Some(r) if r.part.is_none() => Ok(Source::Guest(Box::new(r))),
        Some(_) => Err(format!("{dev}: not a whole disk")),
        None => Err(format!("cannot open {dev}: No such file or directory")),
    }
}

fn write(dev: &str, src: &Source, s: &script::Script) -> Result<(), String> {
    let img = src.open(dev, Access::ReadOnly)?;
    let batch = partition::sfdisk::apply(img.as_ref(), s)
        .map_err(|r| r.messages.join("\n"))?
        .batch;
    drop(img);
    let mut img = src.open(dev, Access::ReadWrite)?;
    img.commit(&batch).map_err(|e| format!("{dev}: {e}"))
}

fn altered(src: &Source) {
    out("\nThe partition table has been altered.\n");
    if matches!(src, Source::Guest(_)) {
        out("Calling ioctl() to re-read partition table.\n");
    }
    out("Syncing disks.\n");
}

/// The exit status, or a failure to print as `sfdisk: MESSAGE`.
fn run_inner(args: &[String]) -> Result<i32, String> {
    match args {
        [flag, dev, parts @ ..] if flag == "--delete" && !parts.is_empty() => {
            let src = source(dev)?;
            let img = src.open(dev, Access::ReadOnly)?;
            let label = partition::probe(img.as_ref())
                .ok()
                .and_then(|p| p.label)
                .ok_or_else(|| format!("{dev}: does not contain a recognized partition table"))?;
            let total = img.size() / SECTOR;
            drop(img);
            let mut s = script::dump(&label, dev, total);
            // As sfdisk does on a disk that grew: the table is written for
            // the disk's size now (its backup GPT at the new end).
            s.headers.retain(|(k, _)| k != "last-lba");
            for p in parts {
                let n: usize = p
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("failed to parse partition number '{p}'"))?;
                let before = s.partitions.len();
                s.partitions.retain(|x| x.partno != Some(n - 1));
                if s.partitions.len() == before {
                    return Err(format!("{dev}: partition {n}: partition does not exist"));
                }
            }
            write(dev, &src, &s)?;
            altered(&src);
            Ok(0)
        }
        [flag, dev] if flag == "-d" || flag == "--dump" => {
            let src = source(dev)?;
            let img = src.open(dev, Access::ReadOnly)?;
            let label = partition::probe(img.as_ref())
                .ok()
                .and_then(|p| p.label)
                .ok_or_else(|| format!("{dev}: does not contain a recognized partition table"))?;
            out(&script::render(&script::dump(&label, dev, img.size() / SECTOR)));
            Ok(0)
        }
        [flag, dev] if flag == "-q" || flag == "--quiet" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| format!("stdin: {e}"))?;
            let s = script::parse(&text).map_err(|e| format!("{e:?}"))?;
            let src = source(dev)?;
            let img = src.open(dev, Access::ReadOnly)?;
            match partition::sfdisk::apply(img.as_ref(), &s) {
                Ok(applied) => {
                    drop(img);
                    for w in &applied.warnings {
                        err(&format!("{w}\n"));
                    }
                    let mut img = src.open(dev, Access::ReadWrite)?;
                    img.commit(&applied.batch)
                        .map_err(|e| format!("{dev}: {e}"))?;
                    Ok(0)
                }
                Err(r) => {
                    // As `sfdisk -q` prints a refusal: the messages alone
                    // on stderr (its "Leaving." goes to the quiet stdout).
                    for m in r.messages.iter().filter(|m| *m != "Leaving.") {
                        err(&format!("{m}\n"));
                    }
                    Ok(1)
                }
            }
        }
        _ => Err(
            "ebsim's sfdisk supports only --delete DEVICE PARTNO..., --dump DEVICE and -q DEVICE < SCRIPT"
                .to_string(),
        ),
    }
}

/// Runs `sfdisk`.
pub fn run(args: Vec<OsString>) -> i32 {
    let words: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match run_inner(&words) {
        Ok(code) => code,
        Err(e) => {
            err(&format!("sfdisk: {e}\n"));
            1
        }
    }
}
