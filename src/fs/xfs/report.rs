//! The geometry printout shared by mkfs.xfs, xfs_info and xfs_growfs
//! (libfrog `xfs_report_geom`), rendered from a superblock, in the layout
//! of the guest's xfsprogs version:
//!
//! | xfsprogs | lines | third line | fourth line |
//! |---|---|---|---|
//! | < 5.0 | 9 | `crc= finobt=N, sparse=N` (mkfs), `crc= finobt=N spinodes=N` (xfs_info, xfs_growfs) | none |
//! | 5.0 – 5.9 | 10 | `crc= finobt=N, sparse=N, rmapbt=N` | `reflink=N` |
//! | 5.10, 5.11 | 10 | same | `reflink=N    bigtime=N` |
//! | 5.12 – 5.18 | 10 | same | `reflink=N    bigtime=N inobtcount=N` |
//! | ≥ 5.19 | 10 | same | `... inobtcount=N nrext64=N` |
//!
//! Before 5.0 each tool had its own printer (mkfs's in `xfs_mkfs.c`,
//! xfs_info's and xfs_growfs's `report_info` in `xfs_growfs.c`): both
//! write `ascii-ci=N ftype=N` without a comma; mkfs names the log
//! `internal log`, xfs_growfs `internal`. From 5.0 on all three share
//! libfrog's printer (`ascii-ci=N, ftype=N`, `internal log`).

use super::superblock::{Superblock, features2, incompat, ro_compat, version};
use crate::ec2::release::Version;

/// Which tool prints the geometry (they differed before xfsprogs 5.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Printer {
    /// mkfs.xfs.
    Mkfs,
    /// xfs_info and xfs_growfs.
    Growfs,
}

/// `XFS_SB_VERSION_BORGBIT`: ASCII case-insensitive names.
const VERSION_BORG: u16 = 0x4000;
/// `XFS_SB_VERSION_ATTRBIT`: attr v1.
const VERSION_ATTR: u16 = 0x0010;

/// The geometry block of xfsprogs 6.1 (10 lines), `name` on the
/// `meta-data=` line (the path as given, or the device).
pub fn render(sb: &Superblock, name: &str) -> String {
    render_as(sb, name, Version::new(6, 1, 0), Printer::Growfs)
}

/// The geometry block as `printer` of xfsprogs `xfsprogs` prints it.
pub fn render_as(sb: &Superblock, name: &str, xfsprogs: Version, printer: Printer) -> String {
    let at_least = |major, minor| xfsprogs >= Version::new(major, minor, 0);
    let old = !at_least(5, 0);
    let flag = |b: bool| u32::from(b);
    let attr = if sb.features2 & features2::ATTR2 != 0 {
        2
    } else if sb.versionnum & VERSION_ATTR != 0 {
        1
    } else {
        0
    };
    let projid32 = flag(sb.features2 & features2::PROJID32 != 0);
    let crc = flag(sb.is_v5());
    let finobt = flag(sb.has_ro_compat(ro_compat::FINOBT));
    let sparse = flag(sb.has_incompat(incompat::SPINODES));
    let rmapbt = flag(sb.has_ro_compat(ro_compat::RMAPBT));
    let reflink = flag(sb.has_ro_compat(ro_compat::REFLINK));
    let bigtime = flag(sb.has_incompat(incompat::BIGTIME));
    let inobtcount = flag(sb.has_ro_compat(ro_compat::INOBTCNT));
    let nrext64 = flag(sb.has_incompat(incompat::NREXT64));
    let dirversion = if sb.versionnum & version::DIRV2 != 0 || sb.is_v5() {
        2
    } else {
        1
    };
    let dirblocksize = u64::from(sb.blocksize) << sb.dirblklog.min(16);
    let cimode = flag(sb.versionnum & VERSION_BORG != 0);
    let ftype = flag(sb.has_incompat(incompat::FTYPE) || sb.features2 & features2::FTYPE != 0);
    let logname = if sb.logstart.0 > 0 {
        if old && printer == Printer::Growfs {
            "internal"
        } else {
            "internal log"
        }
    } else {
        "external"
    };
    let logversion = if sb.versionnum & version::LOGV2 != 0 {
        2
    } else {
        1
    };
    let logsectsize = if sb.logsectsize == 0 {
        512
    } else {
        u32::from(sb.logsectsize)
    };
    let logsunit = sb.logsunit.checked_div(sb.blocksize).unwrap_or(0);
    let lazycount = flag(sb.features2 & features2::LAZYSBCOUNT != 0);
    let rtname = if sb.rblocks == 0 { "none" } else { "external" };
    let rtextsize = u64::from(sb.rextsize) * u64::from(sb.blocksize);
    let e = "";
    let mut s = String::new();
    s += &format!(
        "meta-data={name:<22} isize={:<6} agcount={}, agsize={} blks\n",
        sb.inodesize, sb.agcount, sb.agblocks
    );
    s += &format!(
        "         ={e:<22} sectsz={:<5} attr={attr}, projid32bit={projid32}\n",
        sb.sectsize
    );
    if !old {
        s += &format!(
            "         ={e:<22} crc={crc:<8} finobt={finobt}, sparse={sparse}, rmapbt={rmapbt}\n"
        );
        s += &if at_least(5, 19) {
            format!(
                "         ={e:<22} reflink={reflink:<4} bigtime={bigtime} \
                 inobtcount={inobtcount} nrext64={nrext64}\n"
            )
        } else if at_least(5, 12) {
            format!(
                "         ={e:<22} reflink={reflink:<4} bigtime={bigtime} \
                 inobtcount={inobtcount}\n"
            )
        } else if at_least(5, 10) {
            format!("         ={e:<22} reflink={reflink:<4} bigtime={bigtime}\n")
        } else {
            format!("         ={e:<22} reflink={reflink}\n")
        };
    } else if printer == Printer::Mkfs {
        s += &format!("         ={e:<22} crc={crc:<8} finobt={finobt}, sparse={sparse}\n");
    } else {
        s += &format!("         ={e:<22} crc={crc:<8} finobt={finobt} spinodes={sparse}\n");
    }
    s += &format!(
        "data     ={e:<22} bsize={:<6} blocks={}, imaxpct={}\n",
        sb.blocksize, sb.dblocks, sb.imax_pct
    );
    s += &format!(
        "         ={e:<22} sunit={:<6} swidth={} blks\n",
        sb.unit, sb.width
    );
    let comma = if old { "" } else { "," };
    s += &format!(
        "naming   =version {dirversion:<14} bsize={dirblocksize:<6} ascii-ci={cimode}{comma} \
         ftype={ftype}\n"
    );
    s += &format!(
        "log      ={logname:<22} bsize={:<6} blocks={}, version={logversion}\n",
        sb.blocksize, sb.logblocks
    );
    s += &format!(
        "         ={e:<22} sectsz={logsectsize:<5} sunit={logsunit} blks, \
         lazy-count={lazycount}\n"
    );
    s += &format!(
        "realtime ={rtname:<22} extsz={rtextsize:<6} blocks={}, rtextents={}\n",
        sb.rblocks, sb.rextents
    );
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test may panic
mod tests {
    use super::*;

    #[test]
    fn matches_growfs_example() {
        // What xfs_growfs 6.1 printed for a fresh 1 GiB filesystem.
        let sb = Superblock::from_bytes(&crate::fs::xfs::superblock::tests_sample(), 0).unwrap();
        let want = "\
meta-data=/dev/loop8             isize=512    agcount=4, agsize=65536 blks
         =                       sectsz=512   attr=2, projid32bit=1
         =                       crc=1        finobt=1, sparse=1, rmapbt=0
         =                       reflink=1    bigtime=1 inobtcount=1 nrext64=0
data     =                       bsize=4096   blocks=262144, imaxpct=25
         =                       sunit=0      swidth=0 blks
naming   =version 2              bsize=4096   ascii-ci=0, ftype=1
log      =internal log           bsize=4096   blocks=16384, version=2
         =                       sectsz=512   sunit=0 blks, lazy-count=1
realtime =none                   extsz=4096   blocks=0, rtextents=0
";
        assert_eq!(render(&sb, "/dev/loop8"), want);
        assert_eq!(
            render_as(&sb, "/dev/loop8", Version::new(6, 1, 0), Printer::Mkfs),
            want
        );
    }

    /// The layouts of the guests' versions, as their sources' format
    /// strings give them (xfsprogs `growfs/xfs_growfs.c` and
    /// `mkfs/xfs_mkfs.c` at v4.5.0, `libfrog/fsgeom.c` at v5.0.0, v5.13.0,
    /// v5.18.0), for the same superblock.
    #[test]
    fn each_version_has_its_layout() {
        let sb = Superblock::from_bytes(&crate::fs::xfs::superblock::tests_sample(), 0).unwrap();
        let tail = "\
data     =                       bsize=4096   blocks=262144, imaxpct=25
         =                       sunit=0      swidth=0 blks
";
        let end = concat!(
            "         =                       sectsz=512   sunit=0 blks, lazy-count=1\n",
            "realtime =none                   extsz=4096   blocks=0, rtextents=0\n"
        );
        let head = "\
meta-data=/dev/xvdf              isize=512    agcount=4, agsize=65536 blks
         =                       sectsz=512   attr=2, projid32bit=1
";
        let v5 = |fourth: &str| {
            format!(
                "{head}         =                       crc=1        finobt=1, sparse=1, rmapbt=0\n\
                 {fourth}{tail}\
                 naming   =version 2              bsize=4096   ascii-ci=0, ftype=1\n\
                 log      =internal log           bsize=4096   blocks=16384, version=2\n{end}"
            )
        };
        let cases = [
            (
                Version::new(4, 5, 0),
                Printer::Growfs,
                format!(
                    "{head}         =                       crc=1        finobt=1 spinodes=1\n\
                     {tail}\
                     naming   =version 2              bsize=4096   ascii-ci=0 ftype=1\n\
                     log      =internal               bsize=4096   blocks=16384, version=2\n{end}"
                ),
            ),
            (
                Version::new(4, 5, 0),
                Printer::Mkfs,
                format!(
                    "{head}         =                       crc=1        finobt=1, sparse=1\n\
                     {tail}\
                     naming   =version 2              bsize=4096   ascii-ci=0 ftype=1\n\
                     log      =internal log           bsize=4096   blocks=16384, version=2\n{end}"
                ),
            ),
            (
                Version::new(5, 0, 0),
                Printer::Growfs,
                v5("         =                       reflink=1\n"),
            ),
            (
                Version::new(5, 13, 0),
                Printer::Growfs,
                v5("         =                       reflink=1    bigtime=1 inobtcount=1\n"),
            ),
            (
                Version::new(5, 18, 0),
                Printer::Mkfs,
                v5("         =                       reflink=1    bigtime=1 inobtcount=1\n"),
            ),
        ];
        for (v, p, want) in cases {
            let got = render_as(&sb, "/dev/xvdf", v, p);
            assert_eq!(got, want, "{v} {p:?}");
            let lines = if v < Version::new(5, 0, 0) { 9 } else { 10 };
            assert_eq!(got.lines().count(), lines, "{v}");
        }
    }
}
