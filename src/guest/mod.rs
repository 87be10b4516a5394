//! What the instance sees: block devices with guest names and numbers, the
//! mount table, and lsblk/df rendering.

pub mod df;
pub mod human;
pub mod lsblk;
