//! The EC2 Query protocol's XML, written from the same response documents
//! the AWS CLI output is rendered from (`ec2::wire`, keyed by the members'
//! names as botocore parses them).
//!
//! botocore's model gives each member an XML name (`locationName`): the
//! member name with a lower-case first letter (`VolumeId` → `volumeId`),
//! except where the table in [`element`] says otherwise (`State` of a
//! volume is `status`, `Volumes` is `volumeSet`, an instance's
//! `SecurityGroups` are its `groupSet`). A list is its element holding one
//! `<item>` per member; an empty list is an empty element (botocore reads
//! it as `[]`, and an absent one as no key at all). The parser ignores
//! element order and unknown elements, but names are case-sensitive and a
//! boolean is true only for the exact text `true`. Timestamps go out as
//! `2024-05-01T10:00:00.000Z`; the AWS CLI v1 prints them as sent.

use crate::ec2::time::Millis;
use crate::ec2::wire::json::J;

/// The namespace AWS writes (with its trailing slash).
pub const NAMESPACE: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// Escapes text for an element or attribute.
pub fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

/// The shape a response document's root is, for naming its members: the
/// operations whose output is one item rather than a wrapper.
fn root_context(action: &str) -> &'static str {
    match action {
        "CreateVolume" => "Volumes",
        "CreateSnapshot" => "Snapshots",
        "AttachVolume" | "DetachVolume" => "Attachments",
        _ => "",
    }
}

/// The XML name of member `key` in a structure reached through `parent`
/// (the member holding it, or the list it is an item of; "" for the
/// response root).
fn element(parent: &str, key: &str) -> String {
    let fixed = match (parent, key) {
        ("", "Volumes") => "volumeSet",
        ("", "Snapshots") => "snapshotSet",
        ("", "VolumesModifications") => "volumeModificationSet",
        ("", "Reservations") => "reservationSet",
        ("", "Images") => "imagesSet",
        ("", "AvailabilityZones") => "availabilityZoneInfo",
        ("", "InstanceTypes") => "instanceTypeSet",
        ("", "InstanceStatuses") => "instanceStatusSet",
        ("", "StartingInstances" | "StoppingInstances" | "TerminatingInstances") => "instancesSet",
        ("" | "Reservations", "Instances") => "instancesSet",
        ("" | "Reservations", "Groups") => "groupSet",
        ("", "BlockDeviceMappings") => "blockDeviceMapping",
        ("Volumes" | "Snapshots" | "Instances" | "Images" | "", "Tags") => "tagSet",
        ("Volumes", "Attachments") => "attachmentSet",
        ("Volumes" | "Attachments" | "Snapshots", "State") => "status",
        ("Snapshots", "StateMessage") => "statusMessage",
        ("Instances", "State") => "instanceState",
        ("Instances", "SecurityGroups") => "groupSet",
        ("Instances", "NetworkInterfaces") => "networkInterfaceSet",
        ("Instances", "PublicDnsName") => "dnsName",
        ("Instances", "PublicIpAddress") => "ipAddress",
        ("Instances", "StateTransitionReason") => "reason",
        ("Instances" | "Images", "BlockDeviceMappings") => "blockDeviceMapping",
        ("Instances" | "Images", "ProductCodes") => "productCodes",
        ("Images", "State") => "imageState",
        ("Images", "OwnerId") => "imageOwnerId",
        ("Images", "Public") => "isPublic",
        ("AvailabilityZones", "State") => "zoneState",
        ("AvailabilityZones", "Messages") => "messageSet",
        ("InstanceStatuses", "Events") => "eventsSet",
        ("Details", "Name") => "name",
        ("NetworkInterfaces", "Groups") => "groupSet",
        ("NetworkInterfaces", "PrivateIpAddresses") => "privateIpAddressesSet",
        ("NetworkInterfaces", "Ipv6Addresses") => "ipv6AddressesSet",
        ("", "KernelId") => "kernel",
        ("", "RamdiskId") => "ramdisk",
        ("", "DeleteSnapshotResults") => "deleteSnapshotResultSet",
        _ => "",
    };
    if !fixed.is_empty() {
        return fixed.to_string();
    }
    let mut c = key.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Members whose text is a timestamp (the documents carry the CLI's form).
fn is_timestamp(key: &str) -> bool {
    matches!(
        key,
        "CreateTime"
            | "AttachTime"
            | "StartTime"
            | "EndTime"
            | "LaunchTime"
            | "UsageOperationUpdateTime"
            | "CompletionTime"
    )
}

fn scalar(key: &str, v: &J, out: &mut String) {
    match v {
        J::Null => {}
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Int(n) => out.push_str(&n.to_string()),
        J::Float(f) => out.push_str(&f.to_string()),
        J::Str(s) => {
            if is_timestamp(key)
                && let Some(t) = Millis::parse(s)
            {
                out.push_str(&t.to_wire());
            } else {
                escape(s, out);
            }
        }
        J::Arr(_) | J::Obj(_) => {}
    }
}

fn members(context: &str, kv: &[(String, J)], out: &mut String) {
    for (k, v) in kv {
        if matches!(v, J::Null) {
            continue;
        }
        let name = element(context, k);
        out.push('<');
        out.push_str(&name);
        out.push('>');
        value(k, v, out);
        out.push_str("</");
        out.push_str(&name);
        out.push('>');
    }
}

/// The content of member `key` holding `v`.
fn value(key: &str, v: &J, out: &mut String) {
    match v {
        J::Obj(kv) => members(key, kv, out),
        J::Arr(items) => {
            for it in items {
                out.push_str("<item>");
                value(key, it, out);
                out.push_str("</item>");
            }
        }
        other => scalar(key, other, out),
    }
}

/// A success response of `action`: the document's members under
/// `<ActionResponse xmlns=...>` after the request id; `None` (operations
/// without output) is `<return>true</return>`.
pub fn response(action: &str, request_id: &str, doc: Option<&J>) -> String {
    let mut out = String::with_capacity(1024);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<");
    out.push_str(action);
    out.push_str("Response xmlns=\"");
    out.push_str(NAMESPACE);
    out.push_str("\"><requestId>");
    escape(request_id, &mut out);
    out.push_str("</requestId>");
    match doc {
        Some(J::Obj(kv)) => members(root_context(action), kv, &mut out),
        Some(other) => value("", other, &mut out),
        None => out.push_str("<return>true</return>"),
    }
    out.push_str("</");
    out.push_str(action);
    out.push_str("Response>");
    out
}

/// An error response: `<Response><Errors><Error>` with the code and
/// message, then `<RequestID>` (capital ID, unlike a success).
pub fn error(code: &str, message: &str, request_id: &str) -> String {
    let mut out =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>");
    escape(code, &mut out);
    out.push_str("</Code><Message>");
    escape(message, &mut out);
    out.push_str("</Message></Error></Errors><RequestID>");
    escape(request_id, &mut out);
    out.push_str("</RequestID></Response>");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ec2::wire::json::Obj;

    #[test]
    fn names_lists_booleans_and_times() {
        let doc = Obj::new()
            .put(
                "Volumes",
                J::Arr(vec![
                    Obj::new()
                        .put("VolumeId", "vol-1")
                        .put("State", "in-use")
                        .put("Encrypted", false)
                        .put("Size", 8u64)
                        .put("CreateTime", "2024-05-01T10:00:00+00:00")
                        .put("Attachments", J::Arr(Vec::new()))
                        .put(
                            "Tags",
                            J::Arr(vec![
                                Obj::new().put("Key", "a&b").put("Value", "<v>").done(),
                            ]),
                        )
                        .done(),
                ]),
            )
            .done();
        let x = response("DescribeVolumes", "rid", Some(&doc));
        assert_eq!(
            x,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeVolumesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>rid</requestId><volumeSet><item><volumeId>vol-1</volumeId><status>in-use</status><encrypted>false</encrypted><size>8</size><createTime>2024-05-01T10:00:00.000Z</createTime><attachmentSet></attachmentSet><tagSet><item><key>a&amp;b</key><value>&lt;v&gt;</value></item></tagSet></item></volumeSet></DescribeVolumesResponse>"
        );
        assert!(response("DeleteVolume", "r", None).contains("<return>true</return>"));
        assert_eq!(
            error("DryRunOperation", "it's <ok>", "r"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>DryRunOperation</Code><Message>it&apos;s &lt;ok&gt;</Message></Error></Errors><RequestID>r</RequestID></Response>"
        );
    }
}
