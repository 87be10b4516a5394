//! The AWS CLI's pagination of the Describe operations that have a
//! paginator (botocore's `PageIterator`, as awscli v1 drives it): the CLI
//! follows `NextToken` itself and prints one merged result, unless
//! `--no-paginate`, `--next-token` or `--max-results` is given (then one
//! call, and the service's `NextToken` is printed as is).
//!
//! - `--page-size N` sends `MaxResults=N` on every call; describe-volumes,
//!   and describe-snapshots with only owner or restorable-by ids, send
//!   `MaxResults=1000` without it (awscli's EC2 page-size injector).
//! - `--max-items N` stops after N items of the result key and prints a
//!   resume token as `NextToken`: base64 of the JSON `{"NextToken": T}`
//!   (T the service's token, `null` when there was none), with
//!   `"boto_truncate_amount": K` when it stopped inside a page (K items of
//!   that page were printed, counting those a starting token skipped).
//! - `--starting-token` takes such a token: the service token is sent and
//!   the first K items of the first page are skipped. The JSON's other
//!   members are set on every request as botocore sets them (so a member
//!   the operation lacks is its "Unknown parameter in input" refusal). A
//!   token that is not base64 of a JSON object is the service's own token
//!   (botocore's fallback), which the service then refuses as invalid.
//! - JSON output merges the pages, then applies `--query`; text output
//!   prints each page with `--query` applied to it, then the resume token
//!   as `NEXTTOKEN` (awscli's `TextFormatter`).

use super::args::{ArgError, Args};
use super::ops::{Fail, Op};
use ebsim::ec2::Ec2;
use ebsim::ec2::wire::json::J;
use serde_json::Value;

/// The member of the response that pages carry (botocore's
/// `result_key`), for the operations with a paginator.
pub fn result_key(api: &str) -> Option<&'static str> {
    Some(match api {
        "DescribeVolumes" => "Volumes",
        "DescribeSnapshots" => "Snapshots",
        "DescribeInstances" => "Reservations",
        "DescribeVolumesModifications" => "VolumesModifications",
        "DescribeImages" => "Images",
        "DescribeInstanceStatus" => "InstanceStatuses",
        "DescribeTags" => "Tags",
        "DescribeInstanceTypes" => "InstanceTypes",
        _ => return None,
    })
}

/// The paging options of one command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paging {
    /// `--page-size` (sent as `MaxResults`, whatever its sign).
    pub page_size: Option<i64>,
    /// `--max-items` (a value ≤ 0 is taken as botocore takes it, with the
    /// CLI's warning).
    pub max_items: Option<i64>,
    /// `--starting-token`.
    pub starting_token: Option<String>,
}

/// What a paginated command printed: the pages (for text output) and the
/// merged result (for JSON).
pub struct Paged {
    /// Each page as `{RESULT_KEY: [...]}`, truncated as printed.
    pub pages: Vec<J>,
    /// Each page as the service answered it (its `NextToken` too), the
    /// result key's items truncated as printed (what `yaml-stream` prints).
    pub raw: Vec<J>,
    /// The merged result, with `NextToken` (the resume token) last.
    pub full: J,
    /// The resume token.
    pub resume: Option<String>,
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648).
pub fn b64_encode(data: &[u8]) -> String {
    ebsim::ec2::boot::base64_encode(data)
}

fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for c in s.bytes() {
        let v = u32::try_from(B64.iter().position(|&b| b == c)?).ok()?;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

/// Python's `json.dumps` of a string (ASCII only, as `ensure_ascii`).
fn py_json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The resume token botocore prints for service token `next` and, when it
/// stopped inside a page, the items of that page already printed.
pub fn encode_token(next: Option<&str>, truncate: Option<i64>) -> String {
    let mut json = format!(
        "{{\"NextToken\": {}",
        next.map(py_json_str).unwrap_or_else(|| "null".to_string())
    );
    if let Some(k) = truncate {
        json.push_str(&format!(", \"boto_truncate_amount\": {k}"));
    }
    json.push('}');
    b64_encode(json.as_bytes())
}

/// A starting token as botocore reads it: the members it sets on the
/// request (`NextToken` and whatever else the JSON holds; a null or
/// `"None"` value sets nothing) and the items of the first page to skip.
/// A token that is not base64 of a JSON object is an older form:
/// `TOKEN___N`, else the service's own token as given.
pub fn decode_token(token: &str) -> (Vec<(String, Value)>, i64) {
    let decoded = b64_decode(token)
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| serde_json::from_str::<Value>(&s).ok());
    if let Some(Value::Object(m)) = decoded {
        let skip = m
            .get("boto_truncate_amount")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let members = m
            .into_iter()
            .filter(|(k, v)| {
                k != "boto_truncate_amount"
                    && k != "boto_encoded_keys"
                    && !v.is_null()
                    && v.as_str() != Some("None")
            })
            .collect();
        return (members, skip);
    }
    let parts: Vec<&str> = token.split("___").collect();
    if parts.len() == 2
        && let Ok(n) = parts[1].parse::<i64>()
    {
        let members = if parts[0] == "None" {
            Vec::new()
        } else {
            vec![("NextToken".to_string(), Value::from(parts[0]))]
        };
        return (members, n);
    }
    (vec![("NextToken".to_string(), Value::from(token))], 0)
}

fn items_of<'a>(doc: &'a J, key: &str) -> &'a [J] {
    match doc {
        J::Obj(kv) => match kv.iter().find(|(k, _)| k == key) {
            Some((_, J::Arr(a))) => a,
            _ => &[],
        },
        _ => &[],
    }
}

fn next_of(doc: &J) -> Option<String> {
    match doc {
        J::Obj(kv) => kv.iter().find_map(|(k, v)| match (k.as_str(), v) {
            ("NextToken", J::Str(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        }),
        _ => None,
    }
}

/// `doc` with its `key` member holding `items`.
fn with_items(doc: &J, key: &str, items: &[J]) -> J {
    match doc {
        J::Obj(kv) => J::Obj(
            kv.iter()
                .map(|(k, v)| {
                    if k == key {
                        (k.clone(), J::Arr(items.to_vec()))
                    } else {
                        (k.clone(), v.clone())
                    }
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The page size awscli injects: 1000 for describe-volumes without other
/// parameters, and describe-snapshots with only owner/restorable-by ids.
fn injected_page_size(op: &Op, a: &Args) -> Option<i64> {
    let allowed: &[&str] = match op.name {
        "describe-volumes" => &["dry-run"],
        "describe-snapshots" => &["owner-ids", "restorable-by-user-ids", "dry-run"],
        _ => return None,
    };
    a.vals.keys().all(|k| allowed.contains(k)).then_some(1000)
}

/// Python's `len` clamp of a slice bound `k` (`x[:k]`, `x[k:]`).
fn py_index(k: i64, len: usize) -> usize {
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    let i = if k < 0 { len_i + k } else { k };
    usize::try_from(i.clamp(0, len_i)).unwrap_or(len)
}

/// Runs a paginated operation as the CLI does, page by page.
pub fn run(op: &Op, ec2: &Ec2, a: &Args, key: &str, paging: &Paging) -> Result<Paged, Fail> {
    let page_size = paging.page_size.or_else(|| injected_page_size(op, a));
    if let Some(n) = page_size.filter(|n| *n < 0) {
        // The CLI sends it; the service refuses it as it refuses any
        // client's (the endpoint's answer to a member that is no count).
        let e = ebsim::api::params::ParamError {
            name: "MaxResults".into(),
            value: Value::from(n.to_string()),
            want: ebsim::api::params::Want::Int,
        };
        return Err(Fail::Api(ebsim::ec2::ApiError::new(
            "InvalidParameterValue",
            e.to_string(),
        )));
    }
    let (members, skip) = match &paging.starting_token {
        Some(t) => decode_token(t),
        None => (Vec::new(), 0),
    };
    // The token's members other than NextToken stay on every request, as
    // botocore keeps them in the operation's arguments; one the operation
    // does not have is botocore's validation error.
    let mut token: Option<String> = None;
    let mut kept: Vec<(String, Value)> = Vec::new();
    for (k, v) in members {
        match (k.as_str(), v) {
            ("NextToken", Value::String(t)) => token = Some(t),
            (_, v) => kept.push((k, v)),
        }
    }
    if let Some(shapes) = super::cli_input::shapes(op.api) {
        let unknown: Vec<String> = kept
            .iter()
            .filter(|(k, _)| !shapes.members.contains(&k.as_str()))
            .map(|(k, _)| {
                format!(
                    "Unknown parameter in input: \"{k}\", must be one of: {}",
                    shapes.members.join(", ")
                )
            })
            .collect();
        if !unknown.is_empty() {
            return Err(Fail::Arg(ArgError::Bad(format!(
                "Parameter validation failed:\n{}",
                unknown.join("\n")
            ))));
        }
    }
    let mut pages: Vec<J> = Vec::new();
    let mut raw: Vec<J> = Vec::new();
    let mut merged: Vec<J> = Vec::new();
    let mut total: i64 = 0;
    let mut resume: Option<String> = None;
    let mut first = true;
    let mut previous: Option<String> = None;
    loop {
        let mut extra: Vec<(&str, Value)> = Vec::new();
        if let Some(n) = page_size {
            extra.push(("MaxResults", Value::from(n)));
        }
        for (k, v) in &kept {
            extra.push((k.as_str(), v.clone()));
        }
        if let Some(t) = &token {
            extra.push(("NextToken", Value::from(t.clone())));
        }
        let doc = op.run_with(ec2, a, &extra)?.unwrap_or(J::Obj(Vec::new()));
        let mut items: Vec<J> = items_of(&doc, key).to_vec();
        // botocore slices as Python does: a negative amount counts from
        // the end.
        let starting = if first && paging.starting_token.is_some() {
            let start = py_index(skip, items.len());
            items.drain(..start);
            skip
        } else {
            0
        };
        first = false;
        let n = i64::try_from(items.len()).unwrap_or(i64::MAX);
        let over = paging
            .max_items
            .map(|m| total.saturating_add(n).saturating_sub(m))
            .unwrap_or(0);
        if over > 0 {
            let keep = n - over;
            items.truncate(py_index(keep, items.len()));
            resume = Some(encode_token(token.as_deref(), Some(keep + starting)));
            merged.extend(items.iter().cloned());
            raw.push(with_items(&doc, key, &items));
            pages.push(J::Obj(vec![(key.to_string(), J::Arr(items))]));
            break;
        }
        merged.extend(items.iter().cloned());
        raw.push(with_items(&doc, key, &items));
        pages.push(J::Obj(vec![(key.to_string(), J::Arr(items))]));
        total += n;
        let next = next_of(&doc);
        let Some(next) = next else { break };
        if paging.max_items == Some(total) {
            resume = Some(encode_token(Some(&next), None));
            break;
        }
        if previous.as_deref() == Some(next.as_str()) {
            return Err(Fail::Query(format!(
                "Error during pagination: The same next token was received twice: {{'NextToken': '{next}'}}"
            )));
        }
        previous = Some(next.clone());
        token = Some(next);
    }
    let mut full = vec![(key.to_string(), J::Arr(merged))];
    if let Some(r) = &resume {
        full.push(("NextToken".to_string(), J::Str(r.clone())));
    }
    Ok(Paged {
        pages,
        raw,
        full: J::Obj(full),
        resume,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_as_botocore_writes_them() {
        // base64 of {"NextToken": "tok-2"}, as the CLI printed it.
        assert_eq!(
            encode_token(Some("tok-2"), None),
            "eyJOZXh0VG9rZW4iOiAidG9rLTIifQ=="
        );
        let next = |t: &str| vec![("NextToken".to_string(), Value::from(t))];
        assert_eq!(
            decode_token("eyJOZXh0VG9rZW4iOiAidG9rLTIifQ=="),
            (next("tok-2"), 0)
        );
        let t = encode_token(None, Some(2));
        assert_eq!(
            String::from_utf8(b64_decode(&t).unwrap()).unwrap(),
            "{\"NextToken\": null, \"boto_truncate_amount\": 2}"
        );
        assert_eq!(decode_token(&t), (Vec::new(), 2));
        assert_eq!(decode_token("ebsim1.abcd"), (next("ebsim1.abcd"), 0));
        assert_eq!(decode_token("x___3"), (next("x"), 3));
        // Other members of the JSON are set on the request too.
        assert_eq!(
            decode_token(&b64_encode(br#"{"foo": 1}"#)),
            (vec![("foo".to_string(), Value::from(1))], 0)
        );
        for n in 0..5usize {
            let data: Vec<u8> = (0..n as u8).collect();
            assert_eq!(b64_decode(&b64_encode(&data)).unwrap(), data);
        }
    }
}
