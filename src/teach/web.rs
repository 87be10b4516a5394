//! The live web view (see `page` and `status`).
