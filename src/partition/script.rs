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
    /// `size=` in sectors; `None` (no size, or `size=+`) takes the free
    /// area up to its default end.
    pub size: Option<u64>,
    /// The size was written with a unit (`1G`, `512KiB`), not in sectors:
    /// sfdisk then aligns the partition's end to the 1 MiB grain.
    pub size_aligned: bool,
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

/// The dump sfdisk prints for `label` on `device` (the path as typed), a
/// disk of `total_sectors`.
pub fn dump(label: &Label, device: &str, total_sectors: u64) -> Script {
    let mut s = match label {
        Label::Gpt(g) => dump_gpt(g, device),
        Label::Dos(d) => dump_dos(d, device),
    };
    // libfdisk names its grain when it is not 1 MiB: on a disk of at most
    // 4 MiB it is one sector. The header goes before `sector-size`.
    if total_sectors <= 4 * 2048 {
        let at = s.headers.len() - 1;
        s.headers.insert(at, ("grain".into(), SECTOR.to_string()));
    }
    s
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
                size_aligned: false,
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
            size_aligned: false,
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

/// A number as sfdisk reads one: sectors, or bytes with a binary unit
/// (`K`, `KiB`, `M`, ... up to `E`) or a decimal one (`KB`, `MB`, ...).
/// Returns the sectors and whether a unit was given (a leading `+` is
/// allowed and changes nothing).
fn number(v: &str) -> Option<(u64, bool)> {
    let (n, unit) = size_with_unit(v)?;
    Some(if unit { (n / SECTOR, true) } else { (n, false) })
}

/// A size as libfdisk's `parse_size` reads one: a plain number, or bytes
/// with a unit as in [`number`] (the `grain:` header).
pub fn parse_size_bytes(v: &str) -> Option<u64> {
    size_with_unit(v).map(|(n, _)| n)
}

/// The number and whether a unit was given; with a unit, in bytes.
fn size_with_unit(v: &str) -> Option<(u64, bool)> {
    let v = v.trim();
    let v = v.strip_prefix('+').unwrap_or(v);
    let digits = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let n: u64 = v[..digits].parse().ok()?;
    let unit = &v[digits..];
    if unit.is_empty() {
        return Some((n, false));
    }
    let mut chars = unit.chars();
    let pow = match chars.next()?.to_ascii_uppercase() {
        'K' => 1,
        'M' => 2,
        'G' => 3,
        'T' => 4,
        'P' => 5,
        'E' => 6,
        _ => return None,
    };
    let base: u64 = match chars.as_str() {
        "" | "iB" | "IB" | "ib" => 1024,
        "B" | "b" => 1000,
        _ => return None,
    };
    Some((n.checked_mul(base.checked_pow(pow)?)?, true))
}

/// Splits a line of positional fields (`start, size, type, bootable`):
/// commas and semicolons separate fields and may leave them empty (`,,L`);
/// blanks separate them too.
fn positional(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    for f in line.split([',', ';']) {
        let f = f.trim();
        let mut words = f.split_whitespace();
        match words.next() {
            None => out.push(String::new()),
            Some(w) => {
                out.push(w.to_string());
                out.extend(words.map(str::to_string));
            }
        }
    }
    out
}

/// Parses a script: header lines, named-field partition lines with or
/// without a device name (`DEV : start=2048, size=1G` or
/// `start=2048, size=1G`), and the positional shorthand
/// (`start,size,type,bootable`, any field empty for its default: `,,L`,
/// `,+1G`, `;`).
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
        let eq = line.find('=');
        let colon = line.find(':');
        let named = eq.is_some();
        let with_device = matches!((colon, eq), (Some(c), Some(e)) if c < e);
        if named {
            let (dev, rest) = if with_device {
                line.split_once(':').unwrap_or(("", line))
            } else {
                ("", line)
            };
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
                let num = || number(v).ok_or_else(|| err("unsupported number"));
                match k {
                    "start" => p.start = Some(num()?.0),
                    "size" if v.trim() == "+" => p.size = None,
                    "size" => {
                        let (n, unit) = num()?;
                        p.size = Some(n);
                        p.size_aligned = unit;
                    }
                    "type" | "Id" => p.ptype = Some(v.to_string()),
                    "uuid" => p.uuid = Some(v.to_string()),
                    "name" => p.name = Some(unquote(v)),
                    "attrs" => p.attrs = Some(unquote(v)),
                    "bootable" => p.bootable = true,
                    _ => return Err(err(&format!("unsupported field '{k}'"))),
                }
            }
            s.partitions.push(p);
        } else if let (Some(c), true) = (colon, s.partitions.is_empty()) {
            let (k, v) = line.split_at(c);
            s.headers
                .push((k.trim().to_string(), v[1..].trim().to_string()));
        } else {
            let f = positional(line);
            let mut p = ScriptPartition::default();
            let field = |n: usize| f.get(n).map(String::as_str).filter(|v| !v.is_empty());
            if let Some(v) = field(0).filter(|v| *v != "-") {
                p.start = Some(number(v).ok_or_else(|| err("unsupported start"))?.0);
            }
            if let Some(v) = field(1).filter(|v| *v != "-" && *v != "+") {
                let (n, unit) = number(v).ok_or_else(|| err("unsupported size"))?;
                p.size = Some(n);
                p.size_aligned = unit;
            }
            if let Some(v) = field(2).filter(|v| *v != "-") {
                p.ptype = Some(v.to_string());
            }
            match field(3) {
                None | Some("-") => {}
                Some("*" | "+") => p.bootable = true,
                Some(_) => return Err(err("unsupported bootable field")),
            }
            if f.len() > 4 {
                return Err(err("too many fields"));
            }
            s.partitions.push(p);
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
