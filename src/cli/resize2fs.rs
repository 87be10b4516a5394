//! `resize2fs`: see spec ext4.md §3.
use std::ffi::OsString;

pub fn run(_args: Vec<OsString>) -> i32 {
    super::output::err("resize2fs: not yet built\n");
    1
}
