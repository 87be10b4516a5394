//! Instance types: the list of types ebsim accepts (what run-instances
//! and modify-instance-attribute check, and what DescribeInstanceTypes
//! lists), each with its vCPUs, memory, hypervisor (Xen for the older
//! families, Nitro for the rest and for every metal size), architecture
//! (Graviton families are arm64) and generation.
//!
//! The list is a subset of what a region offers: the families the
//! tutorials, the AMIs and the labs use, with their sizes as EC2's
//! instance-type pages give them. Memory is EC2's `MemoryInfo.SizeInMiB`
//! (what the guest's tmpfs rows follow); vCPUs are
//! `VCpuInfo.DefaultVCpus`.

use super::error::ApiError;
use super::filter::Filter;

/// The hypervisor an instance type runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hypervisor {
    /// Xen: `xvd*` disks.
    Xen,
    /// Nitro: NVMe disks.
    Nitro,
}

/// How a family's sizes are given.
enum Sizes {
    /// Each size with its vCPUs and MiB.
    Each(&'static [(&'static str, u32, u64)]),
    /// vCPUs by the size's name (`medium` 1, `large` 2, `xlarge` 4,
    /// `Nxlarge` 4·N), memory a fixed MiB per vCPU; `metal` with the
    /// given vCPUs when the family has it.
    PerVcpu {
        mib_per_vcpu: u64,
        sizes: &'static [&'static str],
        metal_vcpus: Option<u32>,
    },
}

/// One family.
struct Family {
    name: &'static str,
    /// The virtualized sizes' hypervisor (metal sizes have none).
    xen: bool,
    arm: bool,
    /// 32-bit x86 also runs (the oldest families).
    i386: bool,
    current: bool,
    /// T instances (CPU credits).
    burstable: bool,
    sizes: Sizes,
}

const T_SIZES: &[(&str, u32, u64)] = &[
    ("nano", 2, 512),
    ("micro", 2, 1024),
    ("small", 2, 2048),
    ("medium", 2, 4096),
    ("large", 2, 8192),
    ("xlarge", 4, 16384),
    ("2xlarge", 8, 32768),
];

const GRAVITON_SIZES: &[&str] = &[
    "medium", "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge",
];
const TO_24X: &[&str] = &[
    "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge",
];
const TO_32X: &[&str] = &[
    "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge",
    "32xlarge",
];
const TO_48X: &[&str] = &[
    "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge",
    "32xlarge", "48xlarge",
];
const C5_SIZES: &[&str] = &[
    "large", "xlarge", "2xlarge", "4xlarge", "9xlarge", "12xlarge", "18xlarge", "24xlarge",
];

const fn fam(name: &'static str, xen: bool, arm: bool, current: bool, sizes: Sizes) -> Family {
    Family {
        name,
        xen,
        arm,
        i386: false,
        current,
        burstable: false,
        sizes,
    }
}

const fn per(mib_per_vcpu: u64, sizes: &'static [&'static str], metal: Option<u32>) -> Sizes {
    Sizes::PerVcpu {
        mib_per_vcpu,
        sizes,
        metal_vcpus: metal,
    }
}

/// Every family, in the order DescribeInstanceTypes lists them.
const FAMILIES: &[Family] = &[
    Family {
        name: "t2",
        xen: true,
        arm: false,
        i386: true,
        current: true,
        burstable: true,
        sizes: Sizes::Each(&[
            ("nano", 1, 512),
            ("micro", 1, 1024),
            ("small", 1, 2048),
            ("medium", 2, 4096),
            ("large", 2, 8192),
            ("xlarge", 4, 16384),
            ("2xlarge", 8, 32768),
        ]),
    },
    Family {
        name: "t3",
        xen: false,
        arm: false,
        i386: false,
        current: true,
        burstable: true,
        sizes: Sizes::Each(T_SIZES),
    },
    Family {
        name: "t3a",
        xen: false,
        arm: false,
        i386: false,
        current: true,
        burstable: true,
        sizes: Sizes::Each(T_SIZES),
    },
    Family {
        name: "t4g",
        xen: false,
        arm: true,
        i386: false,
        current: true,
        burstable: true,
        sizes: Sizes::Each(T_SIZES),
    },
    Family {
        name: "m1",
        xen: true,
        arm: false,
        i386: true,
        current: false,
        burstable: false,
        sizes: Sizes::Each(&[
            ("small", 1, 1740),
            ("medium", 1, 3840),
            ("large", 2, 7680),
            ("xlarge", 4, 15360),
        ]),
    },
    Family {
        name: "m3",
        xen: true,
        arm: false,
        i386: true,
        current: false,
        burstable: false,
        sizes: Sizes::Each(&[
            ("medium", 1, 3840),
            ("large", 2, 7680),
            ("xlarge", 4, 15360),
            ("2xlarge", 8, 30720),
        ]),
    },
    fam(
        "m4",
        true,
        false,
        true,
        Sizes::Each(&[
            ("large", 2, 8192),
            ("xlarge", 4, 16384),
            ("2xlarge", 8, 32768),
            ("4xlarge", 16, 65536),
            ("10xlarge", 40, 163840),
            ("16xlarge", 64, 262144),
        ]),
    ),
    fam("m5", false, false, true, per(4096, TO_24X, Some(96))),
    fam("m5a", false, false, true, per(4096, TO_24X, None)),
    fam("m6a", false, false, true, per(4096, TO_48X, Some(192))),
    fam(
        "m6g",
        false,
        true,
        true,
        per(4096, GRAVITON_SIZES, Some(64)),
    ),
    fam("m6i", false, false, true, per(4096, TO_32X, Some(128))),
    fam(
        "m7g",
        false,
        true,
        true,
        per(4096, GRAVITON_SIZES, Some(64)),
    ),
    fam("m7i", false, false, true, per(4096, TO_48X, None)),
    fam(
        "c4",
        true,
        false,
        true,
        Sizes::Each(&[
            ("large", 2, 3840),
            ("xlarge", 4, 7680),
            ("2xlarge", 8, 15360),
            ("4xlarge", 16, 30720),
            ("8xlarge", 36, 61440),
        ]),
    ),
    fam("c5", false, false, true, per(2048, C5_SIZES, Some(96))),
    fam(
        "c6g",
        false,
        true,
        true,
        per(2048, GRAVITON_SIZES, Some(64)),
    ),
    fam("c6i", false, false, true, per(2048, TO_32X, Some(128))),
    fam(
        "c7g",
        false,
        true,
        true,
        per(2048, GRAVITON_SIZES, Some(64)),
    ),
    fam(
        "r4",
        true,
        false,
        true,
        Sizes::Each(&[
            ("large", 2, 15616),
            ("xlarge", 4, 31232),
            ("2xlarge", 8, 62464),
            ("4xlarge", 16, 124928),
            ("8xlarge", 32, 249856),
            ("16xlarge", 64, 499712),
        ]),
    ),
    fam("r5", false, false, true, per(8192, TO_24X, Some(96))),
    fam(
        "r6g",
        false,
        true,
        true,
        per(8192, GRAVITON_SIZES, Some(64)),
    ),
    fam("r6i", false, false, true, per(8192, TO_32X, Some(128))),
    fam(
        "r7g",
        false,
        true,
        true,
        per(8192, GRAVITON_SIZES, Some(64)),
    ),
    fam(
        "i3",
        true,
        false,
        true,
        Sizes::Each(&[
            ("large", 2, 15616),
            ("xlarge", 4, 31232),
            ("2xlarge", 8, 62464),
            ("4xlarge", 16, 124928),
            ("8xlarge", 32, 249856),
            ("16xlarge", 64, 499712),
            ("metal", 72, 524288),
        ]),
    ),
];

/// What EC2 says of one instance type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceTypeInfo {
    /// The type (`t3.micro`).
    pub name: String,
    /// Its hypervisor (metal sizes: Nitro, as the guest sees NVMe disks;
    /// DescribeInstanceTypes names none for them).
    pub hypervisor: Hypervisor,
    /// `x86_64` or `arm64`: what an instance of this type runs.
    pub architecture: &'static str,
    /// Every architecture it supports (`i386` too on the oldest).
    pub architectures: Vec<&'static str>,
    /// `VCpuInfo.DefaultVCpus`.
    pub vcpus: u32,
    /// `MemoryInfo.SizeInMiB`.
    pub memory_mib: u64,
    /// A `metal` size.
    pub bare_metal: bool,
    /// `CurrentGeneration`.
    pub current_generation: bool,
    /// A T instance.
    pub burstable: bool,
    /// `FreeTierEligible` (t2.micro and t3.micro).
    pub free_tier: bool,
    /// Local instance-store disks (i3).
    pub instance_storage: bool,
}

/// vCPUs of a size of a `PerVcpu` family (`large` 2, `Nxlarge` 4·N).
fn vcpus_of_size(size: &str) -> Option<u32> {
    match size {
        "medium" => Some(1),
        "large" => Some(2),
        "xlarge" => Some(4),
        s => s
            .strip_suffix("xlarge")
            .and_then(|n| n.parse::<u32>().ok())
            .map(|n| n * 4),
    }
}

fn info(f: &Family, size: &str, vcpus: u32, mib: u64) -> InstanceTypeInfo {
    let name = format!("{}.{size}", f.name);
    let bare_metal = size == "metal";
    let mut architectures = Vec::new();
    if f.i386 {
        architectures.push("i386");
    }
    architectures.push(if f.arm { "arm64" } else { "x86_64" });
    InstanceTypeInfo {
        free_tier: name == "t2.micro" || name == "t3.micro",
        name,
        hypervisor: if f.xen && !bare_metal {
            Hypervisor::Xen
        } else {
            Hypervisor::Nitro
        },
        architecture: if f.arm { "arm64" } else { "x86_64" },
        architectures,
        vcpus,
        memory_mib: mib,
        bare_metal,
        current_generation: f.current,
        burstable: f.burstable,
        instance_storage: f.name == "i3",
    }
}

/// Every size of one family.
fn family_types(f: &Family) -> Vec<InstanceTypeInfo> {
    match &f.sizes {
        Sizes::Each(list) => list.iter().map(|(s, c, m)| info(f, s, *c, *m)).collect(),
        Sizes::PerVcpu {
            mib_per_vcpu,
            sizes,
            metal_vcpus,
        } => {
            let mut v: Vec<InstanceTypeInfo> = sizes
                .iter()
                .filter_map(|s| {
                    let c = vcpus_of_size(s)?;
                    Some(info(f, s, c, u64::from(c) * mib_per_vcpu))
                })
                .collect();
            if let Some(c) = metal_vcpus {
                v.push(info(f, "metal", *c, u64::from(*c) * mib_per_vcpu));
            }
            v
        }
    }
}

/// Every instance type ebsim accepts, in DescribeInstanceTypes' order.
pub fn all_instance_types() -> Vec<InstanceTypeInfo> {
    FAMILIES.iter().flat_map(family_types).collect()
}

/// The description of one type, or None when ebsim does not know it.
pub fn instance_type_info(t: &str) -> Option<InstanceTypeInfo> {
    let (fam, size) = t.split_once('.')?;
    let f = FAMILIES.iter().find(|f| f.name == fam)?;
    let _ = size;
    family_types(f).into_iter().find(|i| i.name == t)
}

/// The memory of an instance type in MiB (`MemoryInfo.SizeInMiB`), or
/// None for a type ebsim does not know.
pub fn memory_mib(t: &str) -> Option<u64> {
    instance_type_info(t).map(|i| i.memory_mib)
}

/// The vCPUs of an instance type, or None for a type ebsim does not know.
pub fn vcpus(t: &str) -> Option<u32> {
    instance_type_info(t).map(|i| i.vcpus)
}

/// Whether `t` is an instance type ebsim knows.
pub fn valid_instance_type(t: &str) -> bool {
    instance_type_info(t).is_some()
}

/// The hypervisor of an instance type (metal sizes are Nitro; an unknown
/// type, which no instance can have, Xen).
pub fn hypervisor(t: &str) -> Hypervisor {
    instance_type_info(t).map_or(Hypervisor::Xen, |i| i.hypervisor)
}

/// `x86_64` or `arm64`.
pub fn architecture(t: &str) -> &'static str {
    instance_type_info(t).map_or("x86_64", |i| i.architecture)
}

/// `InvalidParameterValue: Invalid value 't3.nano' for InstanceType.` [V
/// moto#1695, quoting AWS].
pub fn check_instance_type(t: &str) -> std::result::Result<(), ApiError> {
    if valid_instance_type(t) {
        Ok(())
    } else {
        Err(ApiError::invalid_value(format!(
            "Invalid value '{t}' for InstanceType."
        )))
    }
}

/// The filters of DescribeInstanceTypes that ebsim answers.
const FILTERS: &[&str] = &[
    "instance-type",
    "hypervisor",
    "current-generation",
    "bare-metal",
    "burstable-performance-supported",
    "free-tier-eligible",
    "instance-storage-supported",
    "memory-info.size-in-mib",
    "vcpu-info.default-vcpus",
    "processor-info.supported-architecture",
    "ebs-info.nvme-support",
    "ebs-info.ebs-optimized-support",
    "ebs-info.encryption-support",
    "supported-root-device-type",
    "supported-virtualization-type",
];

/// A filter's values for one type.
fn filter_values(i: &InstanceTypeInfo, name: &str) -> Option<Vec<String>> {
    let nitro = i.hypervisor == Hypervisor::Nitro;
    let one = |s: &str| Some(vec![s.to_string()]);
    match name {
        "instance-type" => one(&i.name),
        "hypervisor" if i.bare_metal => Some(Vec::new()),
        "hypervisor" => one(if nitro { "nitro" } else { "xen" }),
        "current-generation" => Some(vec![i.current_generation.to_string()]),
        "bare-metal" => Some(vec![i.bare_metal.to_string()]),
        "burstable-performance-supported" => Some(vec![i.burstable.to_string()]),
        "free-tier-eligible" => Some(vec![i.free_tier.to_string()]),
        "instance-storage-supported" => Some(vec![i.instance_storage.to_string()]),
        "memory-info.size-in-mib" => Some(vec![i.memory_mib.to_string()]),
        "vcpu-info.default-vcpus" => Some(vec![i.vcpus.to_string()]),
        "processor-info.supported-architecture" => {
            Some(i.architectures.iter().map(|a| a.to_string()).collect())
        }
        "ebs-info.nvme-support" => one(if nitro { "required" } else { "unsupported" }),
        "ebs-info.ebs-optimized-support" => one(ebs_optimized_support(i)),
        "ebs-info.encryption-support" => one("supported"),
        "supported-root-device-type" => Some(root_device_types(i)),
        "supported-virtualization-type" => Some(virtualization_types(i)),
        _ => None,
    }
}

/// `EbsInfo.EbsOptimizedSupport`: `default` on Nitro and the Xen
/// families built EBS-optimized (m4, c4, r4, i3), `supported` on t2 and
/// m3, `unsupported` on m1.
pub fn ebs_optimized_support(i: &InstanceTypeInfo) -> &'static str {
    let fam = i.name.split('.').next().unwrap_or_default();
    match fam {
        "t2" => "unsupported",
        "m1" | "m3" => "supported",
        _ => "default",
    }
}

/// `SupportedRootDeviceTypes`.
pub fn root_device_types(i: &InstanceTypeInfo) -> Vec<String> {
    let fam = i.name.split('.').next().unwrap_or_default();
    if matches!(fam, "m1" | "m3") {
        vec!["ebs".to_string(), "instance-store".to_string()]
    } else {
        vec!["ebs".to_string()]
    }
}

/// `SupportedVirtualizationTypes`.
pub fn virtualization_types(i: &InstanceTypeInfo) -> Vec<String> {
    let fam = i.name.split('.').next().unwrap_or_default();
    if matches!(fam, "m1" | "m3") {
        vec!["hvm".to_string(), "paravirtual".to_string()]
    } else {
        vec!["hvm".to_string()]
    }
}

/// DescribeInstanceTypes: the named types (`InvalidInstanceType` naming
/// the unknown ones), or every type when none is named; then the
/// filters (an unknown filter name is `InvalidParameterValue`).
pub fn describe_instance_types(
    names: &[String],
    filters: &[Filter],
) -> Result<Vec<InstanceTypeInfo>, ApiError> {
    for f in filters {
        if !FILTERS.contains(&f.name.as_str()) {
            return Err(super::filter::invalid_filter(&f.name));
        }
    }
    let list = if names.is_empty() {
        all_instance_types()
    } else {
        let unknown: Vec<&str> = names
            .iter()
            .filter(|t| !valid_instance_type(t))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            return Err(ApiError::new(
                "InvalidInstanceType",
                format!(
                    "The following supplied instance types do not exist: [{}]",
                    unknown.join(", ")
                ),
            ));
        }
        let mut seen = Vec::new();
        all_instance_types()
            .into_iter()
            .filter(|i| names.contains(&i.name))
            .filter(|i| {
                let new = !seen.contains(&i.name);
                seen.push(i.name.clone());
                new
            })
            .collect()
    };
    let mut out = Vec::new();
    for i in list {
        if super::filter::matches(filters, |n| filter_values(&i, n))? {
            out.push(i);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families() {
        assert_eq!(hypervisor("t2.micro"), Hypervisor::Xen);
        assert_eq!(hypervisor("m4.large"), Hypervisor::Xen);
        assert_eq!(hypervisor("t3.micro"), Hypervisor::Nitro);
        assert_eq!(hypervisor("i3.metal"), Hypervisor::Nitro);
        assert_eq!(architecture("t4g.small"), "arm64");
        assert_eq!(architecture("m5.large"), "x86_64");
        assert!(!valid_instance_type("t3.nano2"));
        assert!(!valid_instance_type("q9.large"));
        assert!(!valid_instance_type("m5.medium"));
        assert!(valid_instance_type("m1.small"));
    }

    #[test]
    fn memory_and_vcpus() {
        assert_eq!(memory_mib("t2.micro"), Some(1024));
        assert_eq!(memory_mib("t3.nano"), Some(512));
        assert_eq!(memory_mib("m5.large"), Some(8192));
        assert_eq!(memory_mib("c5.9xlarge"), Some(73728));
        assert_eq!(memory_mib("r5.metal"), Some(786432));
        assert_eq!(memory_mib("m6g.medium"), Some(4096));
        assert_eq!(memory_mib("m1.small"), Some(1740));
        assert_eq!(memory_mib("x9.large"), None);
        assert_eq!(vcpus("t2.micro"), Some(1));
        assert_eq!(vcpus("t3.micro"), Some(2));
        assert_eq!(vcpus("c5.18xlarge"), Some(72));
        assert_eq!(vcpus("m6i.metal"), Some(128));
        let all = all_instance_types();
        assert!(all.len() >= 200, "{}", all.len());
        let mut names: Vec<&str> = all.iter().map(|i| i.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
    }

    #[test]
    fn descriptions_and_filters() {
        let d = describe_instance_types(&["t4g.small".to_string()], &[]);
        assert_eq!(
            d.map(|v| v
                .into_iter()
                .map(|i| (i.hypervisor, i.architecture))
                .collect::<Vec<_>>()),
            Ok(vec![(Hypervisor::Nitro, "arm64")])
        );
        let e = describe_instance_types(&["t3.micro".into(), "q9.large".into()], &[]);
        assert_eq!(
            e.map_err(|e| (e.code, e.message)),
            Err((
                "InvalidInstanceType".to_string(),
                "The following supplied instance types do not exist: [q9.large]".to_string()
            ))
        );
        let f = |n: &str, v: &[&str]| Filter {
            name: n.to_string(),
            values: v.iter().map(|s| s.to_string()).collect(),
        };
        let xen = describe_instance_types(&[], &[f("hypervisor", &["xen"])]).unwrap_or_default();
        assert!(
            xen.iter()
                .all(|i| i.hypervisor == Hypervisor::Xen && !i.bare_metal)
        );
        assert!(xen.iter().any(|i| i.name == "t2.micro"));
        let t3 = describe_instance_types(
            &[],
            &[
                f("instance-type", &["t3.*"]),
                f("memory-info.size-in-mib", &["1024", "2048"]),
            ],
        )
        .unwrap_or_default();
        let names: Vec<&str> = t3.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["t3.micro", "t3.small"]);
        assert!(describe_instance_types(&[], &[f("bogus", &["x"])]).is_err());
    }
}
