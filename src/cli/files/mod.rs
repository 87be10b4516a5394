//! The file commands inside an instance (`ls`, `cat`, `cp`, `mv`, `rm`,
//! `mkdir`, `touch`, `tee`, `truncate`, `fallocate`, `dd`, `du`, `stat`,
//! `sha256sum`): coreutils 9.1 and util-linux 2.38 look-alikes acting on
//! the guest's filesystems through the library's VFS
//! ([`ebsim::guest::vfs`]).
//!
//! Who runs them: the instance's default user (uid and gid 1000: `ubuntu`,
//! `ec2-user` or `centos`), or root under ebsim's `sudo` (which sets
//! [`USER_ENV`] for the applet it runs). Where: the guest working
//! directory is [`CWD_ENV`] when set (the `cd` function of `ebsim shell`
//! keeps it), else the default user's home. When: the instance's virtual
//! clock. The umask is the calling process's. Names of users and groups
//! come from the guest's `/etc/passwd` and `/etc/group`, else root and the
//! default user. Dates print in UTC (an EC2 instance's zone), the locale's
//! quotes follow `LC_ALL`/`LC_MESSAGES`/`LANG` as the real tools do
//! (curly quotes in a UTF-8 locale such as the AMIs' `C.UTF-8`).
//!
//! Host paths inside the guest: `/dev/null`, `/dev/zero`, `/dev/urandom`
//! and `/dev/random` are the host's devices (harmless sources and sinks),
//! `-` is stdin or stdout; every other path is the guest's.

pub mod cat;
pub mod common;
pub mod cp;
pub mod dd;
pub mod du;
pub mod fallocate;
pub mod ls;
pub mod mkdir;
pub mod mode;
pub mod opts;
pub mod quote;
pub mod rm;
pub mod sha256sum;
pub mod stat;
pub mod tee;
pub mod time;
pub mod touch;
pub mod truncate;
pub mod users;

/// Set by ebsim's `sudo` for the guest command it runs: the guest user
/// (`root`).
pub const USER_ENV: &str = "EBSIM_GUEST_USER";

/// The guest working directory (an absolute guest path).
pub const CWD_ENV: &str = "EBSIM_GUEST_CWD";
