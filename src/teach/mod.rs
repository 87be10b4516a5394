//! The teaching side: the layers of a disk side by side ([`layers`],
//! drawn by [`render`]), the hint line after a command that changed
//! nothing ([`hint`]), the per-instance command log ([`log`]), checkpoints
//! of the whole state ([`checkpoint`]), labs that set up a world and grade
//! it ([`lab`]), and the live web view's page and JSON ([`web`]).

pub mod checkpoint;
pub mod hint;
pub mod lab;
pub mod layers;
pub mod log;
pub mod render;
pub mod web;
