//! Instance types: the families ebsim knows, the hypervisor each runs on
//! (Xen for the older families, Nitro for the rest and for every metal
//! size), their architecture (Graviton families are arm64), and what
//! DescribeInstanceTypes says of them.

use super::error::ApiError;

/// Instance families of the Xen hypervisor (everything else is Nitro).
const XEN_FAMILIES: &[&str] = &[
    "t1", "t2", "m1", "m2", "m3", "m4", "c1", "c3", "c4", "r3", "r4", "x1", "x1e", "i2", "i3",
    "p2", "p3", "g2", "g3", "g3s", "d2", "h1", "f1", "cc2", "cr1", "hs1",
];

/// Nitro families (the 2023 user guide list plus later generations).
const NITRO_FAMILIES: &[&str] = &[
    "a1", "t3", "t3a", "t4g", "m5", "m5a", "m5ad", "m5d", "m5dn", "m5n", "m5zn", "m6a", "m6g",
    "m6gd", "m6i", "m6id", "m6idn", "m6in", "m7a", "m7g", "m7gd", "m7i", "m7i-flex", "m8g", "m8i",
    "c5", "c5a", "c5ad", "c5d", "c5n", "c6a", "c6g", "c6gd", "c6gn", "c6i", "c6id", "c6in", "c7a",
    "c7g", "c7gd", "c7gn", "c7i", "c7i-flex", "c8g", "r5", "r5a", "r5ad", "r5b", "r5d", "r5dn",
    "r5n", "r6a", "r6g", "r6gd", "r6i", "r6id", "r6idn", "r6in", "r7a", "r7g", "r7gd", "r7i",
    "r7iz", "r8g", "x2gd", "x2idn", "x2iedn", "x2iezn", "z1d", "d3", "d3en", "i3en", "i4g", "i4i",
    "i7ie", "im4gn", "is4gen", "g4ad", "g4dn", "g5", "g5g", "g6", "g6e", "inf1", "inf2", "p3dn",
    "p4d", "p4de", "p5", "trn1", "trn1n", "vt1", "dl1", "hpc6a", "hpc7g", "mac1", "mac2",
];

/// Graviton (arm64) families.
const ARM_FAMILIES: &[&str] = &[
    "a1", "t4g", "m6g", "m6gd", "m7g", "m7gd", "m8g", "c6g", "c6gd", "c6gn", "c7g", "c7gd", "c7gn",
    "c8g", "r6g", "r6gd", "r7g", "r7gd", "r8g", "x2gd", "i4g", "im4gn", "is4gen", "g5g", "hpc7g",
];

const SIZES: &[&str] = &[
    "nano",
    "micro",
    "small",
    "medium",
    "large",
    "xlarge",
    "2xlarge",
    "3xlarge",
    "4xlarge",
    "6xlarge",
    "8xlarge",
    "9xlarge",
    "10xlarge",
    "12xlarge",
    "16xlarge",
    "18xlarge",
    "24xlarge",
    "32xlarge",
    "48xlarge",
    "56xlarge",
    "112xlarge",
    "metal",
];

/// The hypervisor an instance type runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hypervisor {
    /// Xen: `xvd*` disks.
    Xen,
    /// Nitro: NVMe disks.
    Nitro,
}

/// The family and size of a known instance type, or None.
fn split_type(t: &str) -> Option<(&str, &str)> {
    let (fam, size) = t.split_once('.')?;
    let known = XEN_FAMILIES.contains(&fam) || NITRO_FAMILIES.contains(&fam);
    let size_ok = SIZES.contains(&size) || size.starts_with("metal-");
    (known && size_ok).then_some((fam, size))
}

/// Whether `t` is an instance type ebsim knows.
pub fn valid_instance_type(t: &str) -> bool {
    split_type(t).is_some()
}

/// The hypervisor of an instance type (metal sizes are Nitro).
pub fn hypervisor(t: &str) -> Hypervisor {
    match split_type(t) {
        Some((fam, size)) if XEN_FAMILIES.contains(&fam) && !size.starts_with("metal") => {
            Hypervisor::Xen
        }
        Some(_) => Hypervisor::Nitro,
        None => Hypervisor::Xen,
    }
}

/// `x86_64` or `arm64`.
pub fn architecture(t: &str) -> &'static str {
    match split_type(t) {
        Some((fam, _)) if ARM_FAMILIES.contains(&fam) => "arm64",
        _ => "x86_64",
    }
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

/// What DescribeInstanceTypes tells about one type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceTypeInfo {
    /// The type (`t3.micro`).
    pub name: String,
    /// Its hypervisor.
    pub hypervisor: Hypervisor,
    /// `x86_64` or `arm64`.
    pub architecture: &'static str,
}

/// DescribeInstanceTypes of `names`: each one's description, or
/// `InvalidInstanceType` for the first unknown.
pub fn describe_instance_types(names: &[String]) -> Result<Vec<InstanceTypeInfo>, ApiError> {
    names
        .iter()
        .map(|t| {
            if !valid_instance_type(t) {
                return Err(ApiError::new(
                    "InvalidInstanceType",
                    format!("The following supplied instance types do not exist: [{t}]"),
                ));
            }
            Ok(InstanceTypeInfo {
                name: t.clone(),
                hypervisor: hypervisor(t),
                architecture: architecture(t),
            })
        })
        .collect()
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
    }

    #[test]
    fn descriptions() {
        let d = describe_instance_types(&["t4g.small".to_string()]);
        assert_eq!(
            d.map(|v| v
                .into_iter()
                .map(|i| (i.hypervisor, i.architecture))
                .collect::<Vec<_>>()),
            Ok(vec![(Hypervisor::Nitro, "arm64")])
        );
        let e = describe_instance_types(&["t3.micro".into(), "q9.large".into()]);
        assert_eq!(
            e.map_err(|e| e.code),
            Err("InvalidInstanceType".to_string())
        );
    }
}
