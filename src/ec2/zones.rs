//! A region's availability zones, as DescribeAvailabilityZones lists them:
//! six zones `REGION` + `a`..`f`, with zone ids `SHORT-azN` where SHORT
//! abbreviates the region's middle word (`us-east-1` → `use1-az1`).

use super::error::ApiError;
use super::volumes::check_zone;

/// One availability zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// `us-east-1a`.
    pub name: String,
    /// `use1-az1`.
    pub id: String,
    /// The region.
    pub region: String,
}

/// The zone id prefix of a region: `us-east-1` → `use1`.
fn short_name(region: &str) -> String {
    region
        .split('-')
        .enumerate()
        .map(|(i, p)| {
            if i == 1 {
                p.chars().next().map(String::from).unwrap_or_default()
            } else {
                p.to_string()
            }
        })
        .collect()
}

/// DescribeAvailabilityZones in `region`: every zone, or those of `want`
/// (`InvalidParameterValue` when one of them is not a zone of it).
pub fn describe_availability_zones(region: &str, want: &[String]) -> Result<Vec<Zone>, ApiError> {
    let short = short_name(region);
    let zones = ('a'..='f')
        .enumerate()
        .map(|(n, l)| Zone {
            name: format!("{region}{l}"),
            id: format!("{short}-az{}", n + 1),
            region: region.to_string(),
        })
        .filter(|z| want.is_empty() || want.contains(&z.name))
        .collect();
    for w in want {
        if check_zone(region, w).is_err() {
            return Err(ApiError::invalid_value(format!(
                "The zone '{w}' does not exist."
            )));
        }
    }
    Ok(zones)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_of_a_region() {
        let all = describe_availability_zones("us-east-1", &[]).unwrap_or_default();
        assert_eq!(all.len(), 6);
        assert_eq!(
            (all[0].name.as_str(), all[0].id.as_str()),
            ("us-east-1a", "use1-az1")
        );
        assert_eq!(all[5].id, "use1-az6");
        let one = describe_availability_zones("eu-west-2", &["eu-west-2b".into()]);
        assert_eq!(one.map(|z| z[0].id.clone()).as_deref(), Ok("euw2-az2"));
        assert!(describe_availability_zones("us-east-1", &["us-east-1z".into()]).is_err());
    }
}
