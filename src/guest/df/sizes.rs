//! df's sizes: `-B`/`--block-size` arguments as gnulib reads them, the
//! `N-blocks` header, the numbers of a row and Use% (rounded up).

use super::{HeaderMode, Options};
use crate::guest::human::{self, opts};

/// Why a `-B` argument was refused (gnulib `strtol_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockSizeError {
    /// `invalid -B argument 'x'`
    Invalid,
    /// `invalid suffix in -B argument 'x'`
    InvalidSuffix,
    /// `-B argument 'x' too large`
    Overflow,
}

/// Parses a `-B`/`--block-size` argument as gnulib `human_options` does:
/// returns the `human_readable` options and the block size.
pub fn parse_block_size(spec: &str) -> Result<(u32, u64), BlockSizeError> {
    let mut o = 0;
    let mut spec = spec;
    if let Some(rest) = spec.strip_prefix('\'') {
        o |= opts::GROUP_DIGITS;
        spec = rest;
    }
    // ARGMATCH against "human-readable" and "si": an exact name or a
    // prefix of only one.
    let names = [
        (
            "human-readable",
            opts::AUTOSCALE | opts::SI | opts::BASE_1024,
        ),
        ("si", opts::AUTOSCALE | opts::SI),
    ];
    let hits: Vec<u32> = names
        .iter()
        .filter(|(n, _)| n.starts_with(spec))
        .map(|&(_, v)| v)
        .collect();
    if let Some(&(_, v)) = names.iter().find(|(n, _)| *n == spec) {
        return Ok((o | v, 1));
    }
    if hits.len() == 1 {
        return Ok((o | hits[0], 1));
    }
    let trimmed = spec.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    if trimmed.starts_with('-') {
        return Err(BlockSizeError::Invalid);
    }
    const VALID: &str = "eEgGkKmMpPtTyYzZ0";
    // strtoumax(s, &end, 0) on the unsigned path of gnulib's xstrtol (a
    // leading '-' was refused before).
    let r = crate::compat::strtoull(spec, 0);
    let (mut val, used, mut overflow) = (r.value, r.end, r.overflow);
    let rest = &spec[used..];
    if used == 0 {
        match rest.chars().next() {
            Some(c) if VALID.contains(c) => val = 1,
            _ => return Err(BlockSizeError::Invalid),
        }
    }
    let mut bad_suffix = false;
    let mut suffix_len = 0;
    if let Some(c) = rest.chars().next() {
        if !VALID.contains(c) {
            bad_suffix = true;
        } else {
            let mut base: u64 = 1024;
            let mut n = 1;
            let next = &rest.as_bytes()[1..];
            if matches!(
                c,
                'E' | 'G' | 'g' | 'k' | 'K' | 'M' | 'm' | 'P' | 'T' | 't' | 'Y' | 'Z'
            ) {
                match next.first() {
                    Some(b'i') if next.get(1) == Some(&b'B') => n += 2,
                    Some(b'B') | Some(b'D') => {
                        base = 1000;
                        n += 1;
                    }
                    _ => {}
                }
            }
            let power = match c {
                'k' | 'K' => Some(1),
                'M' | 'm' => Some(2),
                'G' | 'g' => Some(3),
                'T' | 't' => Some(4),
                'P' => Some(5),
                'E' => Some(6),
                'Z' => Some(7),
                'Y' => Some(8),
                _ => None, // 'e', 'y', 'z', '0': valid but not a unit
            };
            match power {
                None => bad_suffix = true,
                Some(p) => {
                    for _ in 0..p {
                        match val.checked_mul(base) {
                            Some(x) => val = x,
                            None => {
                                overflow = true;
                                val = u64::MAX;
                            }
                        }
                    }
                    suffix_len = n;
                    if rest.len() > n {
                        bad_suffix = true;
                    }
                }
            }
        }
    }
    if val == 0 {
        return Err(BlockSizeError::Invalid);
    }
    if bad_suffix {
        return Err(BlockSizeError::InvalidSuffix);
    }
    if overflow {
        return Err(BlockSizeError::Overflow);
    }
    // A unit without a number shows the unit on every number.
    if used == 0 {
        o |= opts::SI;
        let last = rest.as_bytes()[suffix_len - 1];
        if last == b'B' {
            o |= opts::B;
        }
        if last != b'B' || (suffix_len >= 2 && rest.as_bytes()[suffix_len - 2] == b'i') {
            o |= opts::BASE_1024;
        }
    }
    Ok((o, val))
}

/// The `N-blocks` header (df.c get_header): `human_readable(block size)`
/// in the base that shows it more exactly.
pub(super) fn blocks_header(o: &Options) -> String {
    if o.header_mode == HeaderMode::Posix {
        return format!("{}-blocks", o.block_size);
    }
    let mut hopts = opts::SUPPRESS_POINT_ZERO
        | opts::AUTOSCALE
        | opts::SI
        | (o.human_opts & (opts::GROUP_DIGITS | opts::BASE_1024 | opts::B));
    let (mut q1000, mut q1024) = (o.block_size, o.block_size);
    let (mut d1000, mut d1024);
    loop {
        d1000 = q1000 % 1000 == 0;
        q1000 /= 1000;
        d1024 = q1024 % 1024 == 0;
        q1024 /= 1024;
        if !(d1000 && d1024) {
            break;
        }
    }
    if !d1000 && d1024 {
        hopts |= opts::BASE_1024;
    }
    if !d1024 && d1000 {
        hopts &= !opts::BASE_1024;
    }
    if hopts & opts::BASE_1024 == 0 {
        hopts |= opts::B;
    }
    format!(
        "{}-blocks",
        human::human_readable(o.block_size, hopts, 1, 1)
    )
}

/// `(100·used) / (used + avail)` rounded up, or `-`.
pub(super) fn percent(used: u128, avail: u128) -> String {
    if used + avail == 0 {
        "-".into()
    } else {
        format!("{}%", (100 * used).div_ceil(used + avail))
    }
}

/// Values of one row: (input units, total, used, available) for blocks and
/// (total, used, available) for inodes.
pub(super) struct Values {
    pub(super) unit: u64,
    pub(super) blocks: u64,
    pub(super) bused: u64,
    pub(super) bavail: u64,
    pub(super) files: u64,
    pub(super) iused: u64,
    pub(super) ifree: u64,
}
