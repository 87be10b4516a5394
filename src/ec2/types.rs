//! Volume types and their rules: size ranges,
//! IOPS and throughput ranges and ratios, which parameters each type takes.
//! Pure functions: they compute or refuse, and never touch the state.

use super::error::ApiError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An EBS volume type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeType {
    /// General Purpose SSD, burst bucket; IOPS follow the size.
    Gp2,
    /// General Purpose SSD, provisioned IOPS and throughput.
    Gp3,
    /// Provisioned IOPS SSD.
    Io1,
    /// Provisioned IOPS SSD (Block Express).
    Io2,
    /// Throughput Optimized HDD.
    St1,
    /// Cold HDD.
    Sc1,
    /// Magnetic (previous generation).
    Standard,
}

/// All types, in the order AWS lists them.
pub const ALL_TYPES: [VolumeType; 7] = [
    VolumeType::Standard,
    VolumeType::Io1,
    VolumeType::Io2,
    VolumeType::Gp2,
    VolumeType::Sc1,
    VolumeType::St1,
    VolumeType::Gp3,
];

/// The limits of one type (as the current EC2 API reference states them).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Smallest size, GiB.
    pub min_size: u64,
    /// Largest size, GiB.
    pub max_size: u64,
    /// Provisioned IOPS range, when IOPS can be set.
    pub iops: Option<(u64, u64)>,
    /// Largest IOPS per GiB, when IOPS can be set.
    pub iops_per_gib: Option<u64>,
    /// Throughput range in MiB/s, when throughput can be set (gp3 only).
    pub throughput: Option<(u64, u64)>,
    /// Whether IOPS must be given when creating.
    pub iops_required: bool,
    /// Whether the type can be a boot (root) volume.
    pub bootable: bool,
    /// Whether Multi-Attach is possible.
    pub multi_attach: bool,
}

/// gp3: 3,000 IOPS are allowed at any size.
pub const GP3_BASE_IOPS: u64 = 3000;
/// gp3 default throughput, MiB/s.
pub const GP3_BASE_THROUGHPUT: u64 = 125;
/// gp3: most MiB/s per provisioned IOPS.
pub const GP3_MAX_THROUGHPUT_PER_IOPS: f64 = 0.25;

impl VolumeType {
    /// Parses the API name (`gp2`, `io1`, ...).
    pub fn parse(s: &str) -> Option<VolumeType> {
        ALL_TYPES.iter().copied().find(|t| t.as_str() == s)
    }

    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            VolumeType::Gp2 => "gp2",
            VolumeType::Gp3 => "gp3",
            VolumeType::Io1 => "io1",
            VolumeType::Io2 => "io2",
            VolumeType::St1 => "st1",
            VolumeType::Sc1 => "sc1",
            VolumeType::Standard => "standard",
        }
    }

    /// This type's limits.
    pub fn limits(self) -> Limits {
        let none = Limits {
            min_size: 1,
            max_size: 16_384,
            iops: None,
            iops_per_gib: None,
            throughput: None,
            iops_required: false,
            bootable: true,
            multi_attach: false,
        };
        match self {
            VolumeType::Gp2 => none,
            VolumeType::Gp3 => Limits {
                max_size: 65_536,
                iops: Some((GP3_BASE_IOPS, 80_000)),
                iops_per_gib: Some(500),
                throughput: Some((GP3_BASE_THROUGHPUT, 2000)),
                ..none
            },
            VolumeType::Io1 => Limits {
                min_size: 4,
                iops: Some((100, 64_000)),
                iops_per_gib: Some(50),
                iops_required: true,
                multi_attach: true,
                ..none
            },
            VolumeType::Io2 => Limits {
                min_size: 4,
                max_size: 65_536,
                iops: Some((100, 256_000)),
                iops_per_gib: Some(1000),
                iops_required: true,
                multi_attach: true,
                ..none
            },
            VolumeType::St1 | VolumeType::Sc1 => Limits {
                min_size: 125,
                bootable: false,
                ..none
            },
            VolumeType::Standard => Limits {
                max_size: 1024,
                ..none
            },
        }
    }

    /// Whether describe-volumes reports an `Iops` for this type.
    pub fn reports_iops(self) -> bool {
        matches!(
            self,
            VolumeType::Gp2 | VolumeType::Gp3 | VolumeType::Io1 | VolumeType::Io2
        )
    }
}

impl fmt::Display for VolumeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// gp2's baseline IOPS: 3 per GiB, at least 100, at most 16,000.
pub fn gp2_iops(size_gib: u64) -> u64 {
    size_gib.saturating_mul(3).clamp(100, 16_000)
}

/// Parses a volume type parameter, with AWS's refusal for unknown names [U].
pub fn parse_type(s: &str) -> Result<VolumeType, ApiError> {
    VolumeType::parse(s).ok_or_else(|| {
        ApiError::invalid_value(format!(
            "Value ({s}) for parameter volumeType is invalid. Valid types: standard, io1, io2, gp2, sc1, st1, gp3"
        ))
    })
}

/// A volume's performance settings after defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Perf {
    /// Size in GiB.
    pub size: u64,
    /// Type.
    pub volume_type: VolumeType,
    /// Provisioned IOPS (gp3, io1, io2), None for the others.
    pub iops: Option<u64>,
    /// Provisioned throughput (gp3), None for the others.
    pub throughput: Option<u64>,
}

/// Refuses IOPS or throughput given for a type that does not take them, and
/// missing IOPS for io1/io2 (`InvalidParameterCombination`) [U].
pub fn check_params(
    t: VolumeType,
    iops_given: bool,
    throughput_given: bool,
    creating: bool,
) -> Result<(), ApiError> {
    let lim = t.limits();
    if iops_given && lim.iops.is_none() {
        return Err(ApiError::invalid_combination(format!(
            "The parameter iops is not supported for {t} volumes."
        )));
    }
    if creating && lim.iops_required && !iops_given {
        return Err(ApiError::invalid_combination(format!(
            "The parameter iops must be specified for {t} volumes."
        )));
    }
    if throughput_given && lim.throughput.is_none() {
        return Err(ApiError::invalid_combination(format!(
            "The throughput parameter is not supported for {t} volumes."
        )));
    }
    Ok(())
}

/// Checks size, IOPS and throughput against the type's ranges and ratios,
/// in AWS's order: size, IOPS range, IOPS per GiB, throughput range,
/// throughput per IOPS.
pub fn check_limits(p: &Perf) -> Result<(), ApiError> {
    let t = p.volume_type;
    let lim = t.limits();
    if p.size < lim.min_size {
        return Err(ApiError::invalid_value(format!(
            "The volume size is invalid for {t} volumes: {} GiB. {t} volumes must be at least {} GiB in size. Please specify a volume size above the minimum limit.",
            p.size, lim.min_size
        )));
    }
    if p.size > lim.max_size {
        return Err(ApiError::invalid_value(format!(
            "Volume of {}GiB is too large for volume type {t}; maximum is {}GiB",
            p.size, lim.max_size
        )));
    }
    if let (Some(iops), Some((lo, hi))) = (p.iops, lim.iops) {
        if iops < lo {
            return Err(ApiError::invalid_value(format!(
                "Volume iops of {iops} is too low; minimum is {lo}."
            )));
        }
        if iops > hi {
            return Err(ApiError::invalid_value(format!(
                "Volume iops of {iops} is too high; maximum is {hi}."
            )));
        }
        if let Some(per_gib) = lim.iops_per_gib {
            // gp3 may always have its 3,000 baseline.
            let free = t == VolumeType::Gp3 && iops <= GP3_BASE_IOPS;
            if !free && iops > per_gib.saturating_mul(p.size) {
                // Sizes are at most 65,536 and IOPS 256,000: exact in f64.
                let ratio = iops as f64 / p.size as f64;
                return Err(ApiError::invalid_value(format!(
                    "Iops to volume size ratio of {ratio:.6} is too high; maximum is {per_gib}"
                )));
            }
        }
    }
    if let (Some(tp), Some((lo, hi))) = (p.throughput, lim.throughput) {
        if tp < lo {
            return Err(ApiError::invalid_value(format!(
                "Volume throughput of {tp} is too low; minimum is {lo}."
            )));
        }
        if tp > hi {
            return Err(ApiError::invalid_value(format!(
                "Volume throughput of {tp} is too high; maximum is {hi}."
            )));
        }
        let iops = p.iops.unwrap_or(GP3_BASE_IOPS).max(1);
        let ratio = tp as f64 / iops as f64;
        if ratio > GP3_MAX_THROUGHPUT_PER_IOPS {
            return Err(ApiError::invalid_value(format!(
                "Throughput (MiBps) to iops ratio of {ratio:.6} is too high; maximum is {GP3_MAX_THROUGHPUT_PER_IOPS:.6} MiBps per iops"
            )));
        }
    }
    Ok(())
}

/// The performance of a new volume: checks the parameters and fills in
/// defaults (gp3: 3,000 IOPS, 125 MiB/s).
pub fn create_perf(
    size: u64,
    t: VolumeType,
    iops: Option<u64>,
    throughput: Option<u64>,
) -> Result<Perf, ApiError> {
    check_params(t, iops.is_some(), throughput.is_some(), true)?;
    let p = Perf {
        size,
        volume_type: t,
        iops: match t {
            VolumeType::Gp3 => Some(iops.unwrap_or(GP3_BASE_IOPS)),
            VolumeType::Io1 | VolumeType::Io2 => iops,
            _ => None,
        },
        throughput: match t {
            VolumeType::Gp3 => Some(throughput.unwrap_or(GP3_BASE_THROUGHPUT)),
            _ => None,
        },
    };
    check_limits(&p)?;
    Ok(p)
}

/// The target of a ModifyVolume, with AWS's defaults: size kept unless
/// given; IOPS kept on the same type, else 3,000 for gp3/io1/io2 (gp2 → gp3
/// keeps at least the gp2 baseline); throughput kept gp3 → gp3, else 125
/// (250 from a gp2 above 170 GiB) [U for the gp2 throughput rule].
pub fn modify_perf(
    current: &Perf,
    size: Option<u64>,
    t: Option<VolumeType>,
    iops: Option<u64>,
    throughput: Option<u64>,
) -> Result<Perf, ApiError> {
    let target_type = t.unwrap_or(current.volume_type);
    check_params(target_type, iops.is_some(), throughput.is_some(), false)?;
    let same = target_type == current.volume_type;
    let target_size = size.unwrap_or(current.size);
    let iops = match target_type {
        VolumeType::Gp3 | VolumeType::Io1 | VolumeType::Io2 => Some(match iops {
            Some(v) => v,
            None if same => current.iops.unwrap_or(GP3_BASE_IOPS),
            None if current.volume_type == VolumeType::Gp2 && target_type == VolumeType::Gp3 => {
                gp2_iops(current.size).max(GP3_BASE_IOPS)
            }
            None => GP3_BASE_IOPS,
        }),
        _ => None,
    };
    let throughput = match target_type {
        VolumeType::Gp3 => Some(match throughput {
            Some(v) => v,
            None if same => current.throughput.unwrap_or(GP3_BASE_THROUGHPUT),
            None if current.volume_type == VolumeType::Gp2 && current.size > 170 => 250,
            None => GP3_BASE_THROUGHPUT,
        }),
        _ => None,
    };
    let p = Perf {
        size: target_size,
        volume_type: target_type,
        iops,
        throughput,
    };
    check_limits(&p)?;
    Ok(p)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn err(r: Result<Perf, ApiError>) -> String {
        r.unwrap_err().message
    }

    #[test]
    fn gp2_baseline() {
        assert_eq!(gp2_iops(8), 100);
        assert_eq!(gp2_iops(100), 300);
        assert_eq!(gp2_iops(6000), 16_000);
    }

    #[test]
    fn create_defaults_and_refusals() {
        let p = create_perf(8, VolumeType::Gp3, None, None).unwrap();
        assert_eq!((p.iops, p.throughput), (Some(3000), Some(125)));
        assert_eq!(
            err(create_perf(8, VolumeType::Gp2, Some(300), None)),
            "The parameter iops is not supported for gp2 volumes."
        );
        assert_eq!(
            err(create_perf(8, VolumeType::Io1, None, None)),
            "The parameter iops must be specified for io1 volumes."
        );
        assert_eq!(
            err(create_perf(8, VolumeType::Gp2, None, Some(200))),
            "The throughput parameter is not supported for gp2 volumes."
        );
        assert_eq!(
            err(create_perf(20_000, VolumeType::Gp2, None, None)),
            "Volume of 20000GiB is too large for volume type gp2; maximum is 16384GiB"
        );
        assert_eq!(
            err(create_perf(100, VolumeType::St1, None, None)),
            "The volume size is invalid for st1 volumes: 100 GiB. st1 volumes must be at least 125 GiB in size. Please specify a volume size above the minimum limit."
        );
        assert_eq!(
            err(create_perf(10, VolumeType::Io1, Some(90), None)),
            "Volume iops of 90 is too low; minimum is 100."
        );
        assert_eq!(
            err(create_perf(8, VolumeType::Gp3, Some(6000), None)),
            "Iops to volume size ratio of 750.000000 is too high; maximum is 500"
        );
        assert_eq!(
            err(create_perf(100, VolumeType::Gp3, Some(3000), Some(1000))),
            "Throughput (MiBps) to iops ratio of 0.333333 is too high; maximum is 0.250000 MiBps per iops"
        );
        // 3,000 IOPS is allowed on a 1 GiB gp3.
        assert!(create_perf(1, VolumeType::Gp3, Some(3000), None).is_ok());
    }

    #[test]
    fn modify_defaults() {
        let gp2 = Perf {
            size: 500,
            volume_type: VolumeType::Gp2,
            iops: None,
            throughput: None,
        };
        let p = modify_perf(&gp2, None, Some(VolumeType::Gp3), None, None).unwrap();
        assert_eq!((p.iops, p.throughput), (Some(3000), Some(250)));
        let gp3 = Perf {
            size: 100,
            volume_type: VolumeType::Gp3,
            iops: Some(4000),
            throughput: Some(500),
        };
        let p = modify_perf(&gp3, Some(200), None, None, None).unwrap();
        assert_eq!((p.size, p.iops, p.throughput), (200, Some(4000), Some(500)));
        let p = modify_perf(&gp3, None, Some(VolumeType::Io2), None, None).unwrap();
        assert_eq!((p.iops, p.throughput), (Some(3000), None));
    }
}
