//! sfdisk's dump format (`sfdisk --dump`): rendering a label into it and
//! parsing it back as an sfdisk script. growpart works on this text (it
//! edits a dump and feeds it back to sfdisk), so ebsim does too.

use super::gpt::{self, GptLabel};
use super::mbr::DosLabel;
use super::{Label, SECTOR};

/// A dump / script: header lines and partition lines.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    /// `key: value` header lines, in order.
    pub headers: Vec<(String, String)>,
    /// Partition lines, in order.
    pub partitions: Vec<ScriptPartition>,
}

/// One partition line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScriptPartition {
    /// The device name before ` :`.
    pub device: String,
    /// 0-based partition number taken from the trailing digits of the name.
    pub partno: Option<usize>,
    /// `start=`
    pub start: Option<u64>,
    /// `size=`
    pub size: Option<u64>,
    /// `type=` (a GUID for GPT, hex code for DOS)
    pub ptype: Option<String>,
    /// `uuid=`
    pub uuid: Option<String>,
    /// `name=` (unquoted)
    pub name: Option<String>,
    /// `attrs=` (unquoted)
    pub attrs: Option<String>,
    /// `bootable`
    pub bootable: bool,
}

impl Script {
    /// The value of a header line.
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// libfdisk's partition naming: `DEV` + `N`, with a `p` between when the
/// device name ends in a digit (and `part` for a name ending in "disc").
pub fn partition_name(device: &str, number: u32) -> String {
    if let Some(stem) = device.strip_suffix("disc") {
        return format!("{stem}part{number}");
    }
    if device.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{device}p{number}")
    } else {
        format!("{device}{number}")
    }
}

/// Quotes a value as sfdisk does: `"..."`, with `"`, `\`, `` ` ``, `$`,
/// control and non-ASCII bytes written as `\xNN`.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for &b in s.as_bytes() {
        if matches!(b, b'"' | b'\\' | b'`' | b'$') || !(0x20..0x7f).contains(&b) {
            out.push_str(&format!("\\x{b:02x}"));
        } else {
            out.push(b as char);
        }
    }
    out.push('"');
    out
}

/// The dump sfdisk prints for `label` on `device` (the path as typed).
pub fn dump(label: &Label, device: &str) -> Script {
    match label {
        Label::Gpt(g) => dump_gpt(g, device),
        Label::Dos(d) => dump_dos(d, device),
    }
}

fn common_headers(label: &str, id: String, device: &str) -> Vec<(String, String)> {
    vec![
        ("label".into(), label.into()),
        ("label-id".into(), id),
        ("device".into(), device.into()),
        ("unit".into(), "sectors".into()),
    ]
}

fn dump_gpt(g: &GptLabel, device: &str) -> Script {
    let h = &g.primary;
    let mut headers = common_headers("gpt", h.disk_guid.to_string(), device);
    headers.push(("first-lba".into(), h.first_usable_lba.to_string()));
    headers.push(("last-lba".into(), h.last_usable_lba.to_string()));
    if h.num_partition_entries != gpt::DEFAULT_ENTRIES {
        headers.push(("table-length".into(), h.num_partition_entries.to_string()));
    }
    headers.push(("sector-size".into(), SECTOR.to_string()));
    let partitions = g
        .partitions()
        .map(|(n, e)| {
            let name = e.name_string();
            ScriptPartition {
                device: partition_name(device, n),
                partno: Some(n as usize - 1),
                start: Some(e.first_lba),
                size: Some(e.size()),
                ptype: Some(e.type_guid.to_string()),
                uuid: Some(e.unique_guid.to_string()),
                name: (!name.is_empty()).then_some(name),
                attrs: gpt::attrs_to_string(e.attributes),
                bootable: false,
            }
        })
        .collect();
    Script {
        headers,
        partitions,
    }
}

fn dump_dos(d: &DosLabel, device: &str) -> Script {
    let mut headers = common_headers("dos", format!("0x{:08x}", d.disk_id), device);
    headers.push(("sector-size".into(), SECTOR.to_string()));
    let partitions = d
        .partitions
        .iter()
        .map(|p| ScriptPartition {
            device: partition_name(device, p.number),
            partno: Some(p.number as usize - 1),
            start: Some(p.start),
            size: Some(p.size),
            ptype: Some(format!("{:x}", p.sys)),
            uuid: None,
            name: None,
            attrs: None,
            bootable: p.boot_ind == 0x80,
        })
        .collect();
    Script {
        headers,
        partitions,
    }
}

/// Renders the dump text exactly as `sfdisk --dump` prints it.
pub fn render(s: &Script) -> String {
    let mut out = String::new();
    for (k, v) in &s.headers {
        out.push_str(&format!("{k}: {v}\n"));
    }
    if s.partitions.is_empty() {
        return out;
    }
    out.push('\n');
    for p in &s.partitions {
        out.push_str(&format!("{} :", p.device));
        if let Some(start) = p.start {
            out.push_str(&format!(" start={start:>12}"));
        }
        if let Some(size) = p.size {
            out.push_str(&format!(", size={size:>12}"));
        }
        if let Some(t) = &p.ptype {
            out.push_str(&format!(", type={t}"));
        }
        if let Some(u) = &p.uuid {
            out.push_str(&format!(", uuid={u}"));
        }
        if let Some(n) = &p.name {
            out.push_str(&format!(", name={}", quote(n)));
        }
        if let Some(a) = &p.attrs {
            out.push_str(&format!(", attrs={}", quote(a)));
        }
        if p.bootable {
            out.push_str(", bootable");
        }
        out.push('\n');
    }
    out
}

/// Splits a partition line's value list on commas outside quotes; blanks
/// around keys and values do not count (`start=        2048`).
fn tokens(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|t| match t.split_once('=') {
            Some((k, v)) => format!("{}={}", k.trim(), v.trim()),
            None => t.trim().to_string(),
        })
        .filter(|t| !t.is_empty())
        .collect()
}

/// Removes quotes and decodes `\xNN` escapes.
fn unquote(v: &str) -> String {
    let v = v.strip_prefix('"').unwrap_or(v);
    let v = v.strip_suffix('"').unwrap_or(v);
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
            if let Some(byte) = v
                .get(i + 2..i + 4)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why a script line was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub what: String,
}

/// Parses a script in the dump format (the subset sfdisk writes).
pub fn parse(text: &str) -> Result<Script, ParseError> {
    let mut s = Script::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let err = |what: &str| ParseError {
            line: i + 1,
            what: what.to_string(),
        };
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((dev, rest)) = line.split_once(" :") {
            let mut p = ScriptPartition {
                device: dev.trim().to_string(),
                ..Default::default()
            };
            let digits: String = p
                .device
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_digit())
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            p.partno = digits.parse::<usize>().ok().and_then(|n| n.checked_sub(1));
            for t in tokens(rest) {
                let (k, v) = t.split_once('=').unwrap_or((t.as_str(), ""));
                let num = || {
                    v.trim()
                        .parse::<u64>()
                        .map_err(|_| err("unsupported number"))
                };
                match k {
                    "start" => p.start = Some(num()?),
                    "size" => p.size = Some(num()?),
                    "type" | "Id" => p.ptype = Some(v.to_string()),
                    "uuid" => p.uuid = Some(v.to_string()),
                    "name" => p.name = Some(unquote(v)),
                    "attrs" => p.attrs = Some(unquote(v)),
                    "bootable" => p.bootable = true,
                    _ => return Err(err(&format!("unsupported field '{k}'"))),
                }
            }
            s.partitions.push(p);
        } else if let Some((k, v)) = line.split_once(':') {
            s.headers.push((k.trim().to_string(), v.trim().to_string()));
        } else {
            return Err(err("unsupported command"));
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_libfdisk() {
        assert_eq!(partition_name("g1.img", 1), "g1.img1");
        assert_eq!(partition_name("img2", 1), "img2p1");
        assert_eq!(partition_name("/dev/nvme0n1", 1), "/dev/nvme0n1p1");
        assert_eq!(partition_name("/dev/xvda", 15), "/dev/xvda15");
    }

    #[test]
    fn render_and_parse_round_trip() {
        let text = "label: gpt\nlabel-id: 78E0D566-902F-4CE9-81F8-57221F52F510\ndevice: g1.img\nunit: sectors\nfirst-lba: 34\nlast-lba: 2097118\nsector-size: 512\n\ng1.img1 : start=        2048, size=     1024000, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=B539B1ED-79AC-48AC-9A03-51F038773E8F, name=\"a \\x22b\\x22, c\", attrs=\"LegacyBIOSBootable GUID:60\"\n";
        let s = parse(text).unwrap();
        assert_eq!(s.partitions[0].partno, Some(0));
        assert_eq!(s.partitions[0].name.as_deref(), Some("a \"b\", c"));
        assert_eq!(s.partitions[0].size, Some(1_024_000));
        assert_eq!(render(&s), text);
    }
}
