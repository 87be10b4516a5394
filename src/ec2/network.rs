//! The default network every account has in every region, as EC2 shows it
//! on an instance: one default VPC (`172.31.0.0/16`), one default subnet
//! per availability zone (a `/20` each), the VPC's `default` security
//! group, and one network interface per instance holding its private IP.
//!
//! Nothing here is stored: every id is derived from what it belongs to (the
//! account and region, the zone, the instance id) by hashing, so it is the
//! same on every call, and an instance's interface needs no state field.

use super::model::{Instance, OWNER_ID, region_of};
use sha2::{Digest, Sha256};

/// `prefix-0` + 16 hex digits of SHA-256 over `what` (AWS's 17-digit id
/// shape, starting with 0 as `ids::random_id` does).
fn derived_id(prefix: &str, what: &str) -> String {
    let d = Sha256::digest(format!("ebsim {prefix} {what}").as_bytes());
    let hex: String = d.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{prefix}-0{hex}")
}

/// The default VPC of `region`.
pub fn vpc_id(region: &str) -> String {
    derived_id("vpc", &format!("{OWNER_ID} {region}"))
}

/// The default subnet of zone `az`.
pub fn subnet_id(az: &str) -> String {
    derived_id("subnet", &format!("{OWNER_ID} {az}"))
}

/// The default security group of `region`'s default VPC.
pub fn security_group_id(region: &str) -> String {
    derived_id("sg", &format!("{OWNER_ID} {region}"))
}

/// The name of the default security group.
pub const SECURITY_GROUP_NAME: &str = "default";

/// The primary network interface of instance `instance_id`.
pub fn eni_id(instance_id: &str) -> String {
    derived_id("eni", instance_id)
}

/// The attachment id of the primary interface.
pub fn eni_attachment_id(instance_id: &str) -> String {
    derived_id("eni-attach", instance_id)
}

/// The interface's MAC address: a locally administered unicast address
/// (`0e:` first byte, as EC2's are in practice), the rest from the id.
pub fn mac_address(instance_id: &str) -> String {
    let d = Sha256::digest(format!("ebsim mac {instance_id}").as_bytes());
    let mut s = String::from("0e");
    for b in d.iter().take(5) {
        s.push_str(&format!(":{b:02x}"));
    }
    s
}

/// The private DNS name of an address in `region`: `ip-172-31-5-9` under
/// `ec2.internal` in us-east-1 and `REGION.compute.internal` elsewhere.
pub fn private_dns_name(ip: &str, region: &str) -> String {
    let ip = ip.replace('.', "-");
    if region == "us-east-1" {
        format!("ip-{ip}.ec2.internal")
    } else {
        format!("ip-{ip}.{region}.compute.internal")
    }
}

/// The instance's private DNS name (empty once it is terminated, as AWS
/// shows it).
pub fn instance_dns_name(i: &Instance) -> String {
    if i.state == super::model::InstanceState::Terminated {
        String::new()
    } else {
        private_dns_name(&i.private_ip, region_of(&i.az))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_well_formed_and_distinct() {
        let v = vpc_id("us-east-1");
        assert_eq!(v, vpc_id("us-east-1"));
        assert_ne!(v, vpc_id("eu-west-1"));
        assert!(super::super::ids::well_formed(&v, "vpc"), "{v}");
        assert!(super::super::ids::well_formed(
            &subnet_id("us-east-1a"),
            "subnet"
        ));
        assert_ne!(subnet_id("us-east-1a"), subnet_id("us-east-1b"));
        assert!(super::super::ids::well_formed(
            &security_group_id("us-east-1"),
            "sg"
        ));
        assert!(super::super::ids::well_formed(&eni_id("i-1"), "eni"));
        assert_eq!(mac_address("i-1").len(), 17);
        assert_eq!(
            private_dns_name("172.31.5.9", "us-east-1"),
            "ip-172-31-5-9.ec2.internal"
        );
        assert_eq!(
            private_dns_name("172.31.5.9", "eu-west-1"),
            "ip-172-31-5-9.eu-west-1.compute.internal"
        );
    }
}
