//! The command line: one binary, many applets.
//!
//! An applet is reached either through a link named after it (matched on
//! the exact file name of argv[0], so `mkfs.ext4` is not `mkfs`) or as
//! `ebsim APPLET ARGS...`. Both paths call the same `run` with the same
//! argument vector, whose first element is the applet's name. Each applet
//! owns its parsing (several real tools parse in ways clap cannot copy, and
//! their messages must match to the character), its wording and its exit
//! codes; the library below returns typed errors only.

mod blkid;
mod commands;
mod debug_fs;
mod demo;
mod df;
mod e2fs_util;
mod ec2;
mod env;
mod error;
mod files;
mod findmnt;
mod fuse_mount;
mod getopt;
mod growpart;
mod guest_ns;
mod image;
mod lsblk;
mod mkfs;
mod mkfs_ext4;
mod mkfs_xfs;
mod mkswap;
mod mount;
mod output;
mod resize2fs;
mod serve;
mod sfdisk;
mod shell;
mod teach;
mod umount;
mod xfs_growfs;
mod xfs_info;

use commands::{Command, Ebsim};
use std::ffi::OsString;
use std::process::ExitCode;

/// One applet of the multi-call binary.
pub struct Applet {
    /// The name it is called by (link name and subcommand).
    pub name: &'static str,
    /// One line for `ebsim --list`.
    pub about: &'static str,
    /// Runs it; `args[0]` is the name it was called by. Returns the exit code.
    pub run: fn(Vec<OsString>) -> i32,
    /// Who reports a failed write to stdout (see [`output::close_stdout`]).
    pub stdout: Stdout,
}

/// How an applet ends when writing to stdout failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdout {
    /// As coreutils and util-linux: `NAME: write error: REASON`, status 1.
    Checked(&'static str),
    /// As e2fsprogs, xfsprogs and growpart, which do not check: quiet, the
    /// status unchanged.
    Unchecked,
}

/// Every applet, in `--list` order.
pub const APPLETS: &[Applet] = &[
    Applet {
        name: "demo",
        about: "walk the EBS volume-expansion runbook on an embedded default",
        run: demo::run,
        stdout: Stdout::Checked("ebsim"),
    },
    Applet {
        name: "image",
        about: "read and write the files inside image files (IMAGE:/path, IMAGE@N:/path)",
        run: image::run,
        stdout: Stdout::Checked("ebsim image"),
    },
    Applet {
        name: "growpart",
        about: "grow a partition into the free space after it (cloud-utils growpart 0.33)",
        run: growpart::run,
        stdout: Stdout::Unchecked,
    },
    Applet {
        name: "sfdisk",
        about: "delete partitions, dump or write a partition table (util-linux sfdisk, in part)",
        run: sfdisk::run,
        stdout: Stdout::Checked("sfdisk"),
    },
    Applet {
        name: "mkfs.ext4",
        about: "make an ext4 filesystem (e2fsprogs 1.47.0 mke2fs)",
        run: mkfs_ext4::run,
        stdout: Stdout::Unchecked,
    },
    Applet {
        name: "mkfs.ext3",
        about: "make an ext3 filesystem (e2fsprogs 1.47.0 mke2fs)",
        run: mkfs_ext4::run,
        stdout: Stdout::Unchecked,
    },
    Applet {
        name: "mkfs.ext2",
        about: "make an ext2 filesystem (e2fsprogs 1.47.0 mke2fs)",
        run: mkfs_ext4::run,
        stdout: Stdout::Unchecked,
    },
    Applet {
        name: "mke2fs",
        about: "make an ext2, ext3 or ext4 filesystem (-t; ext2 by default) (e2fsprogs 1.47.0)",
        run: mkfs_ext4::run,
        stdout: Stdout::Unchecked,
    },
    Applet {
        name: "mkfs",
        about: "make a filesystem: mkfs -t TYPE dispatches to mkfs.TYPE (util-linux 2.38)",
        run: mkfs::run,
        stdout: Stdout::Checked("mkfs"),
    },
    Applet {
        name: "mkswap",
        about: "set up a Linux swap area (util-linux 2.38 mkswap)",
        run: mkswap::run,
        stdout: Stdout::Checked("mkswap"),
    },
    Applet {
        name: "lsblk",
        about: "list the instance's block devices (util-linux 2.38 lsblk)",
        run: lsblk::run,
        stdout: Stdout::Checked("lsblk"),
    },
    Applet {
        name: "blkid",
        about: "show the tags of the instance's block devices or of image files (util-linux 2.38 blkid)",
        run: blkid::run,
        stdout: Stdout::Checked("blkid"),
    },
    Applet {
        name: "df",
        about: "show the instance's mounted filesystems (coreutils 9.1 df)",
        run: df::run,
        stdout: Stdout::Checked("df"),
    },
    Applet {
        name: "resize2fs",
        about: "grow an ext4 filesystem offline (e2fsprogs 1.47.0)",
        run: resize2fs::run,
        stdout: Stdout::Unchecked,
    },
    Applet {
        name: "mkfs.xfs",
        about: "make an XFS filesystem (xfsprogs 6.1 defaults)",
        run: mkfs_xfs::run,
        stdout: Stdout::Unchecked,
    },
    Applet {
        name: "xfs_growfs",
        about: "grow an XFS filesystem (xfsprogs 6.1; offline on an image file)",
        run: xfs_growfs::run,
        stdout: Stdout::Unchecked,
    },
    Applet {
        name: "xfs_info",
        about: "show the geometry of an XFS filesystem (xfsprogs 6.1)",
        run: xfs_info::run,
        stdout: Stdout::Unchecked,
    },
    Applet {
        name: "shell",
        about: "open your shell inside an instance (guest commands first on PATH)",
        run: shell::run_shell,
        stdout: Stdout::Checked("ebsim"),
    },
    Applet {
        name: "exec",
        about: "run one command inside an instance: exec INSTANCE -- COMMAND...",
        run: shell::run_exec,
        stdout: Stdout::Checked("ebsim"),
    },
    Applet {
        name: "sudo",
        about: "run a command (inside an instance everything runs as root)",
        run: shell::run_sudo,
        stdout: Stdout::Unchecked,
    },
    Applet {
        name: "reboot",
        about: "reboot the instance from inside its guest (ends the session)",
        run: guest_ns::run_reboot,
        stdout: Stdout::Unchecked,
    },
    Applet {
        name: "mount",
        about: "mount a device inside the emulated instance, or list the mounts (util-linux)",
        run: mount::run,
        stdout: Stdout::Checked("mount"),
    },
    Applet {
        name: "findmnt",
        about: "find the instance's mounted filesystems (util-linux findmnt, in part)",
        run: findmnt::run,
        stdout: Stdout::Checked("findmnt"),
    },
    Applet {
        name: "umount",
        about: "unmount a filesystem inside the emulated instance (util-linux)",
        run: umount::run,
        stdout: Stdout::Checked("umount"),
    },
    Applet {
        name: "ec2",
        about: "the emulated EC2 API: `ebsim ec2 OPERATION` with the AWS CLI's flags and JSON",
        run: ec2::run,
        stdout: Stdout::Checked("ebsim"),
    },
    Applet {
        name: "aws",
        about: "the `aws ec2 ...` command line over the emulated EC2 (AWS CLI v2 output)",
        run: ec2::run_aws,
        stdout: Stdout::Checked("aws"),
    },
    Applet {
        name: "cat",
        about: "print files of the instance (coreutils 9.1 cat)",
        run: files::cat::run,
        stdout: Stdout::Checked("cat"),
    },
    Applet {
        name: "cp",
        about: "copy files of the instance (coreutils 9.1 cp)",
        run: files::cp::run_cp,
        stdout: Stdout::Checked("cp"),
    },
    Applet {
        name: "mv",
        about: "move or rename files of the instance (coreutils 9.1 mv)",
        run: files::cp::run_mv,
        stdout: Stdout::Checked("mv"),
    },
    Applet {
        name: "dd",
        about: "copy and convert data to and from files of the instance (coreutils 9.1 dd)",
        run: files::dd::run,
        stdout: Stdout::Unchecked,
    },
    Applet {
        name: "du",
        about: "show the space files of the instance use (coreutils 9.1 du)",
        run: files::du::run,
        stdout: Stdout::Checked("du"),
    },
    Applet {
        name: "fallocate",
        about: "preallocate or deallocate space in a file of the instance (util-linux 2.38)",
        run: files::fallocate::run,
        stdout: Stdout::Checked("fallocate"),
    },
    Applet {
        name: "ls",
        about: "list files of the instance (coreutils 9.1 ls)",
        run: files::ls::run,
        stdout: Stdout::Checked("ls"),
    },
    Applet {
        name: "mkdir",
        about: "make directories in the instance (coreutils 9.1 mkdir)",
        run: files::mkdir::run,
        stdout: Stdout::Checked("mkdir"),
    },
    Applet {
        name: "rm",
        about: "remove files of the instance (coreutils 9.1 rm)",
        run: files::rm::run,
        stdout: Stdout::Checked("rm"),
    },
    Applet {
        name: "sha256sum",
        about: "print or check SHA-256 sums of files of the instance (coreutils 9.1)",
        run: files::sha256sum::run,
        stdout: Stdout::Checked("sha256sum"),
    },
    Applet {
        name: "stat",
        about: "show the status of files of the instance (coreutils 9.1 stat)",
        run: files::stat::run,
        stdout: Stdout::Checked("stat"),
    },
    Applet {
        name: "tee",
        about: "copy standard input to files of the instance (coreutils 9.1 tee)",
        run: files::tee::run,
        stdout: Stdout::Unchecked,
    },
    Applet {
        name: "truncate",
        about: "set the size of files of the instance (coreutils 9.1 truncate)",
        run: files::truncate::run,
        stdout: Stdout::Checked("truncate"),
    },
    Applet {
        name: "touch",
        about: "make files or set their times in the instance (coreutils 9.1 touch)",
        run: files::touch::run,
        stdout: Stdout::Checked("touch"),
    },
    Applet {
        name: "clock",
        about: "show the virtual clock, or `clock advance DURATION` to move it",
        run: ec2::run_clock,
        stdout: Stdout::Checked("ebsim"),
    },
];

fn find(name: &str) -> Option<&'static Applet> {
    APPLETS.iter().find(|a| a.name == name)
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let code = dispatch(args);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Runs `applet` and reports a failed write to stdout as it would.
fn run_applet(applet: &Applet, args: Vec<OsString>) -> i32 {
    let around = teach::before(applet.name, &args);
    let code = (applet.run)(args);
    teach::after(around, code);
    match applet.stdout {
        Stdout::Checked(prog) => output::close_stdout(prog, code),
        Stdout::Unchecked => code,
    }
}

fn dispatch(args: Vec<OsString>) -> i32 {
    let invoked = args
        .first()
        .map(std::path::Path::new)
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("ebsim")
        .to_string();
    if let Some(applet) = find(&invoked) {
        return run_applet(applet, args);
    }
    // `ebsim APPLET ARGS...` with an applet clap would only pass on: run it
    // without building ebsim's own parser (its tree of commands costs about
    // 1 MB of resident memory, as much as some of the tools use).
    if let Some(applet) = args
        .get(1)
        .and_then(|a| a.to_str())
        .filter(|n| !commands::OWN.contains(n))
        .and_then(find)
    {
        return run_applet(applet, args[1..].to_vec());
    }
    // `ebsim [--list] COMMAND ...`: ebsim's own commands on clap, the
    // applets passed on.
    let cli = match commands::parse::<Ebsim>(&args) {
        Ok(c) => c,
        Err(code) => return output::close_stdout("ebsim", code),
    };
    if cli.list {
        let mut s = String::new();
        for a in APPLETS {
            s.push_str(&format!("{:<12} {}\n", a.name, a.about));
        }
        output::out(&s);
        return output::close_stdout("ebsim", 0);
    }
    let code = match cli.command {
        None => 0,
        Some(Command::Applet(args)) => {
            let name = args
                .first()
                .map(|a| a.to_string_lossy().into_owned())
                .unwrap_or_default();
            return match find(&name) {
                Some(applet) => run_applet(applet, args),
                // Hidden: a driver of the ext4 and XFS file layers for benchmarks
                // and crash tests (not listed, no link).
                None if name == "debug-fs" => debug_fs::run(args),
                // Hidden: the guest namespace's init and entry (guest_ns).
                None if name == "__guest-init" => guest_ns::run_init(),
                None if name == "__guest-enter" => guest_ns::run_enter(),
                None if name == "__guest-maps" => guest_ns::run_maps(args),
                None => {
                    output::err(&format!(
                        "ebsim: unknown applet '{name}' (try 'ebsim --list')\n"
                    ));
                    2
                }
            };
        }
        Some(Command::Demo(d)) => demo::exec(&d),
        Some(Command::Clock(c)) => ec2::clock(&c),
        Some(Command::Shell(s)) => shell::shell(&s),
        Some(Command::Exec(x)) => shell::exec(&x),
        Some(Command::Image(i)) => image::exec(&i),
        Some(Command::Serve(s)) => serve::exec(&s),
        Some(Command::Layers(l)) => teach::layers_cmd(&l),
        Some(Command::Checkpoint(c)) => teach::checkpoint_cmd(&c),
        Some(Command::Lab(c)) => teach::lab_cmd(&c),
        Some(Command::Web(c)) => teach::web_cmd(&c),
        Some(Command::Completions { shell }) => commands::completions(shell),
        Some(Command::Manpage) => commands::manpage(),
    };
    output::close_stdout("ebsim", code)
}
