//! ebsim: grow an AWS EBS volume end to end on plain files.
//!
//! The library holds every layer but the command line (see ARCHITECTURE.md):
//!
//! - [`blockdev`]: sparse image files, partition slices, the one write path.
//! - [`partition`]: GPT and MBR tables as sfdisk reads and writes them, and
//!   growpart's planner.
//! - [`imgio`]: host-side access to the files inside image files
//!   (`IMAGE[@N]:/path`), behind `ebsim image`.
//!
//! The library never prints and never exits; it returns typed errors.
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod api;
pub mod blockdev;
pub mod bytes;
pub mod compat;
pub mod ec2;
pub mod fs;
pub mod fuse;
pub mod guest;
pub mod imgio;
pub mod partition;
pub mod teach;
