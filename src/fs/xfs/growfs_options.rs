//! xfs_growfs 6.1's options and what they ask for: which section each flag
//! names, what each implies, the defaults, and the steps its `main()` takes
//! for the data and log sections given the geometry and the device size.
//! The command line maps letters to [`GrowOption`]s and renders the
//! [`GrowSteps`]; the grow itself is [`growfs`](super::growfs).
//!
//! The rules, as xfs_growfs applies them:
//! - `-d` asks for the data section, `-D N` for it at N blocks (`strtoll`,
//!   so `1G` is 1); `-m P` for a new inode max percent, `-l` for the log,
//!   `-L N` for it at N blocks, `-i`/`-x` for the log turned internal or
//!   external (and so for the log); `-r`, `-R` and `-e` for the realtime
//!   section. `-i` with `-x` is a usage error.
//! - No section named: the data and log sections are both examined (the
//!   tool's `aflag`), quietly.
//! - The data size defaults to the whole device in blocks (its 512-byte
//!   sector count rounded down to even); `-m` alone keeps the data size;
//!   the inode max percent defaults to the current one.
//! - `-n` changes nothing; the geometry is still shown.

use super::superblock::Superblock;

/// One option as the command line read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrowOption {
    /// `-d` (None) or `-D N` (Some(N)): the data section.
    Data(Option<i64>),
    /// `-l` (None) or `-L N` (Some(N)): the log section.
    Log(Option<i64>),
    /// `-i`: convert the log to internal.
    LogInternal,
    /// `-x`: convert the log to external.
    LogExternal,
    /// `-r`, `-R N` or `-e N`: the realtime section.
    Realtime,
    /// `-m P`: a new inode max percent.
    MaxPct(i64),
    /// `-n`: show the geometry, change nothing.
    NoChange,
}

/// The options of one run, with each option's implications applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GrowOptions {
    data: bool,
    data_blocks: i64,
    log: bool,
    log_blocks: i64,
    log_internal: bool,
    log_external: bool,
    realtime: bool,
    max_pct: Option<i64>,
    no_change: bool,
}

/// What happens to the data section (and the inode max percent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataStep {
    /// Not asked for, or asked for with `-n`: nothing to say.
    Nothing,
    /// `data size N too large, maximum is M`; an error.
    TooLarge { blocks: i64, max: i64 },
    /// A size below the current one: xfsprogs before 5.12 refuses it
    /// ("data size N too small"); later ones say they try, and (unless
    /// `-n`, `run` false) ask the kernel to shrink with `imaxpct` (None: a
    /// percentage over 100, which the kernel refuses).
    Shrink {
        blocks: i64,
        current: i64,
        imaxpct: Option<u8>,
        run: bool,
    },
    /// Nothing changes; which of "data size unchanged, skipping" and
    /// "inode max pct unchanged, skipping" to print.
    Unchanged { data: bool, max_pct: bool },
    /// An inode max percent outside 0..=100: the kernel's grow ioctl
    /// answers EINVAL.
    BadMaxPct,
    /// Grow to `blocks` with `imaxpct`.
    Grow { blocks: u64, imaxpct: u8 },
}

/// What happens to the log section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStep {
    /// Not asked for, or nothing to say.
    Nothing,
    /// "log size unchanged, skipping".
    Unchanged,
    /// A change the kernel does not make (it neither resizes nor moves an
    /// internal log); an error.
    Unsupported,
}

/// The steps for the data and log sections, in xfs_growfs's order. The
/// log step is taken only when the data step did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrowSteps {
    pub data: DataStep,
    pub log: LogStep,
}

impl GrowOptions {
    /// Adds one option, with what it implies.
    pub fn set(&mut self, o: GrowOption) {
        match o {
            GrowOption::Data(n) => {
                self.data = true;
                if let Some(n) = n {
                    self.data_blocks = n;
                }
            }
            GrowOption::Log(n) => {
                self.log = true;
                if let Some(n) = n {
                    self.log_blocks = n;
                }
            }
            GrowOption::LogInternal => {
                self.log = true;
                self.log_internal = true;
            }
            GrowOption::LogExternal => {
                self.log = true;
                self.log_external = true;
            }
            GrowOption::Realtime => self.realtime = true,
            GrowOption::MaxPct(p) => self.max_pct = Some(p),
            GrowOption::NoChange => self.no_change = true,
        }
    }

    /// False when the options contradict each other (`-i` with `-x`): the
    /// tool prints its usage.
    pub fn consistent(&self) -> bool {
        !(self.log_internal && self.log_external)
    }

    /// True with `-n`: the filesystem is only read.
    pub fn read_only(&self) -> bool {
        self.no_change
    }

    /// True when the realtime section is named (an image has none).
    pub fn wants_realtime(&self) -> bool {
        self.realtime
    }

    /// No section named: data and log are examined quietly.
    fn all(&self) -> bool {
        !(self.data || self.log || self.realtime || self.max_pct.is_some())
    }

    /// The steps for a filesystem with geometry `geo` on a device of
    /// `dev_bytes` bytes.
    pub fn steps(&self, geo: &Superblock, dev_bytes: u64) -> GrowSteps {
        GrowSteps {
            data: self.data_step(geo, dev_bytes),
            log: self.log_step(geo),
        }
    }

    fn data_step(&self, geo: &Superblock, dev_bytes: u64) -> DataStep {
        let all = self.all();
        if !(self.data || self.max_pct.is_some() || all) {
            return DataStep::Nothing;
        }
        let bbs_per_block = i64::from(geo.blocksize / 512).max(1);
        let sectors = i64::try_from(dev_bytes / 512).unwrap_or(i64::MAX);
        let max = (sectors - sectors % 2) / bbs_per_block;
        let current = i64::try_from(geo.dblocks).unwrap_or(i64::MAX);
        let cur_pct = i64::from(geo.imax_pct);
        let max_pct = self.max_pct.unwrap_or(cur_pct);
        let blocks = if !self.data && !all {
            current
        } else if self.data_blocks == 0 {
            max
        } else if self.data_blocks > max {
            return DataStep::TooLarge {
                blocks: self.data_blocks,
                max,
            };
        } else {
            self.data_blocks
        };
        if blocks < current {
            return DataStep::Shrink {
                blocks,
                current,
                imaxpct: u8::try_from(max_pct).ok().filter(|p| *p <= 100),
                run: !self.no_change,
            };
        }
        if blocks == current && max_pct == cur_pct {
            return DataStep::Unchanged {
                data: self.data,
                max_pct: self.max_pct.is_some(),
            };
        }
        if self.no_change {
            return DataStep::Nothing;
        }
        match u8::try_from(max_pct).ok().filter(|p| *p <= 100) {
            Some(imaxpct) => DataStep::Grow {
                blocks: u64::try_from(blocks).unwrap_or(0),
                imaxpct,
            },
            None => DataStep::BadMaxPct,
        }
    }

    fn log_step(&self, geo: &Superblock) -> LogStep {
        if !(self.log || self.all()) {
            return LogStep::Nothing;
        }
        let current = i64::from(geo.logblocks);
        let blocks = if self.log_blocks == 0 {
            current
        } else {
            self.log_blocks
        };
        if blocks == current && !self.log_external {
            if self.log {
                LogStep::Unchanged
            } else {
                LogStep::Nothing
            }
        } else if self.no_change {
            LogStep::Nothing
        } else {
            LogStep::Unsupported
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geo() -> Superblock {
        let mut sb = crate::fs::xfs::superblock::tests::sample();
        sb.blocksize = 4096;
        sb.dblocks = 1000;
        sb.imax_pct = 25;
        sb.logblocks = 512;
        sb
    }

    fn steps(opts: &[GrowOption], dev_bytes: u64) -> GrowSteps {
        let mut o = GrowOptions::default();
        for x in opts {
            o.set(*x);
        }
        o.steps(&geo(), dev_bytes)
    }

    #[test]
    fn defaults_and_implications() {
        use DataStep as D;
        use GrowOption as O;
        use LogStep as L;
        let dev = 2000 * 4096 + 512; // an odd sector count rounds down
        // No flag: the whole device, the log examined quietly.
        assert_eq!(
            steps(&[], dev),
            GrowSteps {
                data: D::Grow {
                    blocks: 2000,
                    imaxpct: 25
                },
                log: L::Nothing
            }
        );
        assert_eq!(steps(&[O::NoChange], dev).data, D::Nothing);
        assert_eq!(
            steps(&[O::Data(Some(3000))], dev).data,
            D::TooLarge {
                blocks: 3000,
                max: 2000
            }
        );
        assert_eq!(
            steps(&[O::Data(Some(999))], dev).data,
            D::Shrink {
                blocks: 999,
                current: 1000,
                imaxpct: Some(25),
                run: true,
            }
        );
        // -m alone keeps the data size.
        assert_eq!(
            steps(&[O::MaxPct(25)], dev),
            GrowSteps {
                data: D::Unchanged {
                    data: false,
                    max_pct: true
                },
                log: L::Nothing
            }
        );
        assert_eq!(
            steps(&[O::MaxPct(30)], dev).data,
            D::Grow {
                blocks: 1000,
                imaxpct: 30
            }
        );
        assert_eq!(steps(&[O::MaxPct(101)], dev).data, D::BadMaxPct);
        assert_eq!(steps(&[O::Log(None)], dev).log, L::Unchanged);
        assert_eq!(steps(&[O::Log(None)], dev).data, D::Nothing);
        assert_eq!(steps(&[O::Log(Some(600))], dev).log, L::Unsupported);
        assert_eq!(steps(&[O::LogExternal], dev).log, L::Unsupported);
        assert_eq!(steps(&[O::LogInternal], dev).log, L::Unchanged);
        assert_eq!(steps(&[O::LogExternal, O::NoChange], dev).log, L::Nothing);
        let mut o = GrowOptions::default();
        o.set(O::LogInternal);
        assert!(o.consistent());
        o.set(O::LogExternal);
        assert!(!o.consistent());
        // Realtime names a section: data and log are left alone.
        assert_eq!(
            steps(&[O::Realtime], dev),
            GrowSteps {
                data: D::Nothing,
                log: L::Nothing
            }
        );
    }
}
