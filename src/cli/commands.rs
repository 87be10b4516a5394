//! ebsim's own command line, on clap's derive: `ebsim [--list] COMMAND`,
//! with ebsim's own commands (demo, clock, shell, exec, image, and the hidden
//! completions and manpage generators) parsed here, and every emulated
//! applet passed on untouched (`ebsim growpart ...`): the applets keep the
//! glibc parser, because their messages are part of what they copy.
//!
//! A clap error or help is printed through [`super::output`], so a failed
//! write is reported as for any applet.

use super::output::{err, out};
use clap::{CommandFactory, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

/// `ebsim` itself.
#[derive(Debug, Parser)]
#[command(
    name = "ebsim",
    version,
    about = "Grow an AWS EBS volume end to end on sparse image files.",
    override_usage = "ebsim APPLET [ARGS...]\n       APPLET [ARGS...]   (through a link named after the applet)",
    arg_required_else_help = true,
    disable_help_subcommand = true,
    after_help = "Every other COMMAND is an applet (`ebsim --list` lists them): growpart, \
                  mkfs.ext4, resize2fs, mkfs.xfs, xfs_growfs, lsblk, df, mount, aws, ..."
)]
pub struct Ebsim {
    /// List the applets
    #[arg(long)]
    pub list: bool,
    /// The command
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The names of ebsim's own commands (clap's subcommands of [`Command`]):
/// every other first argument that names an applet is passed on as it is,
/// so the dispatcher runs such an applet without building this parser
/// (checked against clap's list in the tests).
pub const OWN: &[&str] = &[
    "demo",
    "clock",
    "shell",
    "exec",
    "image",
    "serve",
    "layers",
    "checkpoint",
    "lab",
    "web",
    "completions",
    "manpage",
];

/// ebsim's own commands, or an applet.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Walk the EBS volume-expansion runbook on an embedded default
    Demo(Demo),
    /// Show the virtual clock, or `clock advance DURATION` to move it
    Clock(Clock),
    /// Open your shell inside an instance (guest commands first on PATH)
    Shell(Shell),
    /// Run one command inside an instance
    Exec(Exec),
    /// Read and write the files inside image files (IMAGE:/path, IMAGE@N:/path)
    Image(super::image::ImageCmd),
    /// Serve the EC2 API (Query protocol) to the AWS CLI, boto3 and SDKs
    Serve(Serve),
    /// Show each disk's layers side by side and what limits growth
    Layers(super::teach::LayersCmd),
    /// Save and restore the whole state by name
    Checkpoint(super::teach::CheckpointCmd),
    /// Labs that set up a world and grade it
    Lab(super::teach::LabCmd),
    /// Serve a live page of the volumes and their layers on 127.0.0.1
    Web(super::teach::WebCmd),
    /// Print the shell completion script of ebsim's own commands
    #[command(hide = true)]
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// Print ebsim's man page (roff)
    #[command(hide = true)]
    Manpage,

    /// An applet: `ebsim APPLET ARGS...`
    #[command(external_subcommand)]
    Applet(Vec<OsString>),
}

/// `ebsim demo`: the README's runbook, end to end.
#[derive(Debug, Parser)]
#[command(
    name = "demo",
    about = "Walk the EBS volume-expansion runbook on an embedded default: an Ubuntu 22.04 \
             instance with an 8 GiB root and a 200 GiB XFS data volume, grown to 16 GiB and \
             400 GiB, on a private state directory and the manual clock"
)]
pub struct Demo {
    /// Run on t3.micro (Nitro: nvme0n1, nvme1n1) instead of t2.micro (Xen)
    #[arg(long)]
    pub nitro: bool,
    /// Keep the state directory and the volumes
    #[arg(long)]
    pub keep: bool,
    /// Use (and keep) DIR as the state directory
    #[arg(long, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Print only the commands and their outputs
    #[arg(long)]
    pub transcript: bool,
}

/// `ebsim serve`.
#[derive(Debug, Parser)]
#[command(
    name = "serve",
    about = "Serve the EC2 API (Query protocol over HTTP/1.1) on this state",
    long_about = "Serves the EC2 API as AWS does (the Query protocol: form-encoded requests,
XML answers) over HTTP/1.1, for the real AWS CLI, boto3 and any SDK, on the same
state as `ebsim aws ec2 ...` and the instances' commands (EBSIM_HOME, EBSIM_CLOCK,
EBSIM_MODIFY_RATE). Prints the endpoint URL once listening, then serves until
SIGTERM or SIGINT, finishing the requests in flight. Signatures are accepted
without being checked; the region is the one the request is signed for.

  aws --endpoint-url http://127.0.0.1:5000 ec2 describe-volumes
  boto3.client(\"ec2\", endpoint_url=\"http://127.0.0.1:5000\", region_name=\"us-east-1\")"
)]
pub struct Serve {
    /// TCP port (0: any free port)
    #[arg(long, default_value_t = 5000)]
    pub port: u16,
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
    /// Region of unsigned requests (--no-sign-request)
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
}

/// The help of the virtual clock.
pub const CLOCK_HELP: &str =
    "The clock: timed states (volume creating, attaching, detaching; a modification's
modifying -> optimizing -> completed; snapshot pending; instance pending, stopping,
shutting-down) run on ebsim's virtual clock, kept in the state. EBSIM_CLOCK sets how it
moves for a process:
  fast      (default) 10 virtual seconds per real second: a resize stays `modifying`
            3 seconds and `optimizing` at least 6, so each state can be seen
  realtime  1:1, durations as on AWS (modifying 30 s, optimizing 1 min or 21 s per GiB
            of data on the volume, about 6 h per used TiB)
  Nx        N virtual seconds per real second (e.g. 600x)
  manual    frozen; only `ebsim clock advance DURATION` and `aws ec2 wait` move it
`ebsim clock` shows the virtual time and what is due next. The clock stops at
9999-12-31T23:59:59.999Z (the last time AWS tools can print): `ebsim clock advance`
past it is refused. `ebsim clock reset` brings it back to the real time, moving every
timestamp in the state by the same amount (what is pending keeps the time it has left).
EBSIM_MODIFY_RATE: 4-per-24h (default, AWS's current rule: the previous modification
completed and at most 4 per volume in 24 h) or cooldown-6h (the older 6-hour rule).
EBSIM_HOME: where the state, volume images and snapshot chunks live
(default ~/.local/share/ebsim).
";

/// `ebsim clock`.
#[derive(Debug, Parser)]
#[command(
    name = "clock",
    about = "Show the virtual clock and the transitions due next, or move it",
    after_help = CLOCK_HELP
)]
pub struct Clock {
    /// What to do (nothing: show the clock)
    #[command(subcommand)]
    pub action: Option<ClockAction>,
}

/// What `ebsim clock` does.
#[derive(Debug, Subcommand)]
pub enum ClockAction {
    /// Move the virtual clock forward
    Advance {
        /// 90s, 5m, 6h, 1d, 1h30m (a bare number is seconds)
        #[arg(value_parser = duration)]
        duration: i64,
    },
    /// Bring the clock back to the real time, moving every timestamp in the
    /// state by the same amount
    Reset,
}

fn duration(s: &str) -> Result<i64, String> {
    ebsim::ec2::time::parse_duration(s).ok_or_else(|| format!("invalid duration '{s}'"))
}

/// `ebsim shell`.
#[derive(Debug, Parser)]
#[command(
    name = "shell",
    about = "Open a shell inside an emulated instance: the guest's own filesystems at / in \
             private namespaces",
    long_about = "Opens a shell inside an emulated instance. The shell runs in its own user, mount,
UTS and PID namespaces (as rootless containers do): / and every mount point
of the instance's mount table are the guest's own ext4 or XFS filesystems,
served by ebsim over FUSE from the volume images, so every real command
(cat /etc/os-release, vi /etc/fstab, cp, dd, fallocate, tar, python3) reads
and writes the guest. The host's programs (/usr, /bin, /lib*, /sbin) are
bound read-only so commands run; ebsim's applets come first on PATH for
the tools it emulates (lsblk, df, growpart, resize2fs, xfs_growfs, xfs_info,
mount, umount, mkfs.*, aws, sudo, reboot). /dev holds the guest's disks
(/dev/xvda is the volume's image; a partition such as /dev/xvda1 holds the
partition's bytes read-only: file -s, sha256sum and dd if= read it, a write
is refused with EROFS; it shows what is committed to the image, its size
follows the table after growpart), /dev/disk/by-uuid and by-label, and
/dev/sdX links on Amazon Linux; /proc is the namespace's own, with the
guest's /proc/partitions; the hostname is the instance's ip-172-31-...
name and the prompt the image's. You are root inside the namespace (sudo
runs any command) and nothing outside the guest's filesystems and the
state directory (EBSIM_HOME) is writable.

What the guest is not: a virtual machine. The kernel, the network, the
processes and the programs are the host's (uname shows the host's kernel;
the guest's own /usr is hidden behind the host's); /proc/mounts shows
fuse.ebsim mounts (ebsim's mount and df show the guest's table); /sys is
not the guest's. `mount`, `umount` and `mount -a` (reading the guest's
/etc/fstab) change the instance's mount table and the namespace's mounts;
`reboot` ends the session and reboots the instance, and the next shell
boots from the guest's /etc/fstab. Exiting (or SIGTERM/SIGHUP) commits
every filesystem and unmounts it; a SIGKILL loses at most what was not
committed yet, never consistency.

The guest needs user namespaces and /dev/fuse. Where the host forbids them
(no user namespaces; Ubuntu's kernel.apparmor_restrict_unprivileged_userns;
no or an unreadable /dev/fuse; not Linux) ebsim says what is missing and how
to enable it; --host-mode then runs your shell on the host with ebsim's
applets first on PATH, where every other command acts on the host."
)]
pub struct Shell {
    /// Run on the host with ebsim's applets first on PATH (every other
    /// command then acts on the host, not on the guest)
    #[arg(long)]
    pub host_mode: bool,
    /// The instance (default: $EBSIM_INSTANCE, else the only running one)
    pub instance: Option<String>,
}

/// `ebsim exec`.
#[derive(Debug, Parser)]
#[command(
    name = "exec",
    about = "Run one command inside an instance, in the guest namespace `ebsim shell` \
             builds, and exit with its status"
)]
pub struct Exec {
    /// Run on the host with ebsim's applets first on PATH (see `ebsim shell --help`);
    /// the banner saying so goes to stderr, stdout stays the command's
    #[arg(long)]
    pub host_mode: bool,
    /// The instance
    pub instance: String,
    /// The command and its arguments (after an optional `--`)
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<OsString>,
}

/// Parses `args` (with the program name first) as `T`, or prints clap's
/// help, version or error and returns the exit status.
pub fn parse<T: Parser>(args: &[OsString]) -> Result<T, i32> {
    T::try_parse_from(args).map_err(|e| {
        let text = e.render().to_string();
        if e.use_stderr() {
            err(&text);
        } else {
            out(&text);
        }
        e.exit_code()
    })
}

/// `ebsim completions SHELL`.
pub fn completions(shell: clap_complete::Shell) -> i32 {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Ebsim::command(), "ebsim", &mut buf);
    out(&String::from_utf8_lossy(&buf));
    0
}

/// `ebsim manpage`.
pub fn manpage() -> i32 {
    let mut buf = Vec::new();
    match clap_mangen::Man::new(Ebsim::command()).render(&mut buf) {
        Ok(()) => {
            out(&String::from_utf8_lossy(&buf));
            0
        }
        Err(e) => {
            err(&format!("ebsim: {e}\n"));
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Ebsim::command().debug_assert();
        Demo::command().debug_assert();
        Clock::command().debug_assert();
        Shell::command().debug_assert();
        Exec::command().debug_assert();
        super::super::image::ImageCmd::command().debug_assert();
    }

    #[test]
    fn own_commands_are_the_parsers_subcommands() {
        let mut names: Vec<String> = Vec::new();
        for c in Ebsim::command().get_subcommands() {
            names.push(c.get_name().to_string());
            names.extend(c.get_all_aliases().map(str::to_string));
        }
        names.sort();
        let mut own: Vec<String> = OWN.iter().map(|s| s.to_string()).collect();
        own.sort();
        assert_eq!(names, own);
        // An applet named as a first argument is what clap passes on.
        for a in super::super::APPLETS {
            if OWN.contains(&a.name) {
                continue;
            }
            match Ebsim::try_parse_from(["ebsim", a.name, "-x"]).map(|e| e.command) {
                Ok(Some(Command::Applet(v))) => assert_eq!(v, [a.name, "-x"]),
                other => panic!("{}: {other:?}", a.name),
            }
        }
    }

    #[test]
    fn applets_pass_through() {
        let e = Ebsim::try_parse_from(["ebsim", "growpart", "--help", "-v"]);
        match e.map(|e| e.command) {
            Ok(Some(Command::Applet(a))) => assert_eq!(a, ["growpart", "--help", "-v"]),
            other => panic!("{other:?}"),
        }
        let x = Exec::try_parse_from(["exec", "i-1", "--", "ls", "-l"]);
        assert_eq!(
            x.map(|x| x.command).ok(),
            Some(vec!["ls".into(), "-l".into()])
        );
        assert!(Clock::try_parse_from(["clock", "advance", "soon"]).is_err());
    }
}
