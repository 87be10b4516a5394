//! The OS release inside a guest image, as far as ebsim's output depends
//! on it: the versions of the tools it copies. util-linux decides lsblk's
//! columns and rounding, mount's wording and the kernel's mount options;
//! e2fsprogs and xfsprogs what their banners and `-V` print; xfsprogs
//! also mkfs.xfs's default features and log size and the layout of the
//! geometry block; cloud-utils growpart's arithmetic and wording.
//!
//! An instance records its util-linux version (the state keeps that
//! string); [`OsRelease::of_util_linux`] finds the release again. The
//! releases of the catalog's images:
//!
//! | release | util-linux | e2fsprogs | xfsprogs | growpart |
//! |---|---|---|---|---|
//! | CentOS 7 | 2.23.2 | 1.42.9 (28-Dec-2013) | 4.5.0 | 0.29 |
//! | Amazon Linux 2 | 2.30.2 | 1.42.9 (28-Dec-2013) | 5.0.0 (Amazon's build) | 0.31 |
//! | Ubuntu 22.04 | 2.37.2 | 1.46.5 (30-Dec-2021) | 5.13.0 | 0.32 |
//! | Amazon Linux 2023 | 2.37.4 | 1.46.5 (30-Dec-2021) | 5.18.0 | 0.31 |
//! | Debian 12 (the host, and images of unknown origin) | 2.38.1 | 1.47.0 (5-Feb-2023) | 6.1.0 | 0.33 |
//!
//! Amazon Linux 2 ships xfsprogs 5.0.0 (`xfsprogs-5.0.0-10.amzn2`, in the
//! AL2 column of Amazon's AL2023 release notes), not 4.5: its geometry
//! block has 5.x's layout, and Amazon's build prints `bigtime=` and
//! `inobtcount=` on the reflink line although upstream 5.0 does not know
//! them, so its printer is taken as 5.12's ([`OsRelease::xfs_report`]).

use crate::partition::grow::Compat;
use std::fmt;

/// A tool's version: `2.37.2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
    /// Patch level.
    pub patch: u32,
}

impl Version {
    /// `major.minor.patch`.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Version {
        Version {
            major,
            minor,
            patch,
        }
    }

    /// Reads `2.37.2` or `2.34` (patch 0); None when the first two parts
    /// are not numbers.
    pub fn parse(s: &str) -> Option<Version> {
        let mut it = s.trim().split('.');
        let major = it.next()?.parse().ok()?;
        let minor = it.next()?.parse().ok()?;
        let patch = match it.next() {
            Some(p) => p.parse().ok()?,
            None => 0,
        };
        Some(Version::new(major, minor, patch))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// e2fsprogs' version and the date its banners print
/// (`mke2fs 1.46.5 (30-Dec-2021)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct E2fsprogs {
    /// The version.
    pub version: Version,
    /// The release date as printed.
    pub date: &'static str,
}

/// A guest's OS release: the versions of the tools ebsim copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OsRelease {
    /// Its name (`Ubuntu 22.04`).
    pub name: &'static str,
    /// util-linux (lsblk, mount, umount, mkfs).
    pub util_linux: Version,
    /// e2fsprogs (mkfs.ext4, mke2fs, resize2fs).
    pub e2fsprogs: E2fsprogs,
    /// xfsprogs (mkfs.xfs, xfs_growfs, xfs_info): `-V` and mkfs.xfs's
    /// defaults.
    pub xfsprogs: Version,
    /// The xfsprogs version whose geometry block layout the tools print
    /// (`xfsprogs` but for a distribution's backport).
    pub xfs_report: Version,
    /// cloud-utils growpart.
    pub growpart: Compat,
}

const E2FSPROGS_1_42_9: E2fsprogs = E2fsprogs {
    version: Version::new(1, 42, 9),
    date: "28-Dec-2013",
};

const E2FSPROGS_1_46_5: E2fsprogs = E2fsprogs {
    version: Version::new(1, 46, 5),
    date: "30-Dec-2021",
};

/// CentOS 7 (kernel 3.10).
pub const CENTOS_7: OsRelease = OsRelease {
    name: "CentOS 7",
    util_linux: Version::new(2, 23, 2),
    e2fsprogs: E2FSPROGS_1_42_9,
    xfsprogs: Version::new(4, 5, 0),
    xfs_report: Version::new(4, 5, 0),
    growpart: Compat::V0_29,
};

/// Amazon Linux 2.
pub const AMAZON_LINUX_2: OsRelease = OsRelease {
    name: "Amazon Linux 2",
    util_linux: Version::new(2, 30, 2),
    e2fsprogs: E2FSPROGS_1_42_9,
    xfsprogs: Version::new(5, 0, 0),
    xfs_report: Version::new(5, 12, 0),
    growpart: Compat::V0_31,
};

/// Ubuntu 22.04.
pub const UBUNTU_22_04: OsRelease = OsRelease {
    name: "Ubuntu 22.04",
    util_linux: Version::new(2, 37, 2),
    e2fsprogs: E2FSPROGS_1_46_5,
    xfsprogs: Version::new(5, 13, 0),
    xfs_report: Version::new(5, 13, 0),
    growpart: Compat::V0_32,
};

/// Amazon Linux 2023.
pub const AMAZON_LINUX_2023: OsRelease = OsRelease {
    name: "Amazon Linux 2023",
    util_linux: Version::new(2, 37, 4),
    e2fsprogs: E2FSPROGS_1_46_5,
    xfsprogs: Version::new(5, 18, 0),
    xfs_report: Version::new(5, 18, 0),
    growpart: Compat::V0_31,
};

/// Debian 12: the tools ebsim copies by default (the host's, and those of
/// an image of unknown origin).
pub const DEBIAN_12: OsRelease = OsRelease {
    name: "Debian 12",
    util_linux: Version::new(2, 38, 1),
    e2fsprogs: E2fsprogs {
        version: Version::new(1, 47, 0),
        date: "5-Feb-2023",
    },
    xfsprogs: Version::new(6, 1, 0),
    xfs_report: Version::new(6, 1, 0),
    growpart: Compat::V0_33,
};

/// Every release ebsim knows, the default last.
pub const RELEASES: &[OsRelease] = &[
    CENTOS_7,
    AMAZON_LINUX_2,
    UBUNTU_22_04,
    AMAZON_LINUX_2023,
    DEBIAN_12,
];

impl OsRelease {
    /// The release whose util-linux is `version`, as an instance records
    /// it. Another version keeps Debian 12's e2fsprogs and xfsprogs with
    /// that util-linux (an unreadable one is Debian 12's).
    pub fn of_util_linux(version: &str) -> OsRelease {
        let Some(v) = Version::parse(version) else {
            return DEBIAN_12;
        };
        RELEASES
            .iter()
            .find(|r| r.util_linux == v)
            .copied()
            .unwrap_or(OsRelease {
                util_linux: v,
                ..DEBIAN_12
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_lookup() {
        assert_eq!(Version::parse("2.37.2"), Some(Version::new(2, 37, 2)));
        assert_eq!(Version::parse("2.34"), Some(Version::new(2, 34, 0)));
        assert_eq!(Version::parse("x"), None);
        assert_eq!(Version::new(2, 38, 1).to_string(), "2.38.1");
        assert_eq!(OsRelease::of_util_linux("2.37.4"), AMAZON_LINUX_2023);
        assert_eq!(OsRelease::of_util_linux(""), DEBIAN_12);
        let other = OsRelease::of_util_linux("2.36.1");
        assert_eq!(other.util_linux, Version::new(2, 36, 1));
        assert_eq!(other.xfsprogs, DEBIAN_12.xfsprogs);
    }
}
