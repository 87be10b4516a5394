//! `mkfs` (util-linux 2.38): `mkfs [-V] [-t TYPE] [fs-options] device
//! [size]` runs `mkfs.TYPE` with the remaining arguments. Only the types
//! ebsim implements (ext4, xfs) are dispatched.

use super::error::{AppletError, finish};
use super::output::out;
use std::ffi::OsString;

pub fn run(args: Vec<OsString>) -> i32 {
    let argv: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut fstype: Option<String> = None;
    let mut verbose = 0;
    let mut i = 1;
    // getopt_long("Vt:h") stopping at the first option it does not know.
    while i < argv.len() {
        let a = argv[i].as_str();
        match a {
            "-V" | "--verbose" => verbose += 1,
            "-t" | "--type" => {
                i += 1;
                match argv.get(i) {
                    Some(t) => fstype = Some(t.clone()),
                    None => break,
                }
            }
            "-h" | "--help" => {
                out(
                    "\nUsage:\n mkfs [options] [-t <type>] [fs-options] <device> [<size>]\n\n\
                     Make a Linux filesystem.\n\n\
                     Options:\n -t, --type=<type>  filesystem type; when unspecified, ext2 is used\n     \
                     fs-options     parameters for the real filesystem builder\n     \
                     <device>       path to the device to be used\n     \
                     <size>         number of blocks to be used on the device\n \
                     -V, --verbose      explain what is being done;\n                      \
                     specifying -V more than once will cause a dry-run\n \
                     -h, --help         display this help\n \
                     -V, --version      display version\n\n\
                     For more details see mkfs(8).\n",
                );
                return 0;
            }
            "--version" => {
                out("mkfs from util-linux 2.38.1\n");
                return 0;
            }
            _ if a.starts_with("--type=") => fstype = Some(a["--type=".len()..].to_string()),
            _ if a.starts_with("-t") && a.len() > 2 => fstype = Some(a[2..].to_string()),
            _ => break,
        }
        i += 1;
    }
    if i >= argv.len() {
        return finish(
            Err(AppletError::new(
                1,
                "mkfs: no device specified\nTry 'mkfs --help' for more information.\n",
            )),
            String::new,
        );
    }
    let fstype = fstype.unwrap_or_else(|| "ext2".to_string());
    let prog = format!("mkfs.{fstype}");
    let mut rest: Vec<OsString> = vec![OsString::from(&prog)];
    rest.extend(args[i..].iter().cloned());
    if verbose > 0 {
        out(&format!(
            "mkfs from util-linux 2.38.1\n{} \n",
            argv_line(&prog, &argv[i..])
        ));
        if verbose > 1 {
            return 0;
        }
    }
    match fstype.as_str() {
        "ext2" | "ext3" | "ext4" => super::mkfs_ext4::run(rest),
        "xfs" => super::mkfs_xfs::run(rest),
        _ => finish(
            Err(AppletError::prog(
                "mkfs",
                &format!("failed to execute {prog}: No such file or directory"),
            )),
            String::new,
        ),
    }
}

fn argv_line(prog: &str, rest: &[String]) -> String {
    let mut v = vec![prog.to_string()];
    v.extend(rest.iter().cloned());
    v.join(" ")
}
