//! mkfs.xfs 6.1's `-d size=` argument: xfsprogs' `cvtnum` (a C number with
//! a b/s/k/m/g/t/p/e suffix in either case; `b` is the block, `s` the
//! sector), `getnum`'s bounds (at least `XFS_AG_MIN_BYTES`),
//! and `calc_dev_size` (a multiple of 512 bytes; a length that is not a
//! multiple of the block size is truncated, with a warning).

use super::geometry::{AG_MIN_BYTES, Sizes};
use crate::compat::cvtnum;

/// Why `-d size=` was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SizeArgError {
    /// `Invalid value S for -d size option. REASON` (`getnum`).
    Illegal(&'static str),
    /// `illegal data length N, not a multiple of 512`.
    NotSectors(i64),
}

/// The data section size: blocks, and the byte length when it was
/// truncated to whole blocks (mkfs.xfs warns).
pub fn data_size(s: &str, sizes: &Sizes) -> Result<(u64, Option<i64>), SizeArgError> {
    let bs = i64::from(sizes.blocksize.max(1));
    let bytes = cvtnum(u64::from(sizes.blocksize), u64::from(sizes.sectsize), s)
        .ok_or(SizeArgError::Illegal("Not a valid value or illegal suffix"))?;
    // The range is XFS_AG_MIN_BYTES..=LLONG_MAX.
    if bytes < i64::try_from(AG_MIN_BYTES).unwrap_or(i64::MAX) {
        return Err(SizeArgError::Illegal("Value is too small."));
    }
    if bytes % 512 != 0 {
        return Err(SizeArgError::NotSectors(bytes));
    }
    let truncated = (bytes % bs != 0).then_some(bytes);
    Ok((u64::try_from(bytes / bs).unwrap_or(0), truncated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(data_size("1g", &Sizes::default()), Ok((262_144, None)));
        assert_eq!(data_size("262144b", &Sizes::default()), Ok((262_144, None)));
        assert_eq!(data_size("262144B", &Sizes::default()), Ok((262_144, None)));
        assert_eq!(
            data_size("0x40000000", &Sizes::default()),
            Ok((262_144, None))
        );
        assert_eq!(data_size("16781312", &Sizes::default()), Ok((4097, None)));
        assert_eq!(
            data_size("16779776", &Sizes::default()),
            Ok((4096, Some(16_779_776)))
        );
        assert_eq!(
            data_size("1m", &Sizes::default()),
            Err(SizeArgError::Illegal("Value is too small."))
        );
        assert!(data_size("1x", &Sizes::default()).is_err());
        assert_eq!(
            data_size("16777217", &Sizes::default()),
            Err(SizeArgError::NotSectors(16_777_217))
        );
    }
}
