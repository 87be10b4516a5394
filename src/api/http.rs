//! HTTP/1.1 as the AWS SDKs speak it to an endpoint: one request at a time
//! per connection (keep-alive), a form body sized by `Content-Length` or
//! sent chunked, and responses with a `Content-Length`.
//!
//! The head is parsed with `httparse`; everything here is pure (bytes in,
//! a decision out), so the parser is tested without sockets.

/// The longest request head (request line and headers) accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// The most headers accepted.
pub const MAX_HEADERS: usize = 64;

/// A complete request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The query string (after `?`), undecoded.
    pub query: String,
    /// Headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// Whether the client asked to close the connection after this
    /// request (`Connection: close`, or HTTP/1.0 without keep-alive).
    pub close: bool,
}

impl Request {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request cannot be served; the connection is closed after the
/// answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not HTTP, or HTTP this server does not take (400).
    BadRequest,
    /// A body longer than the limit (413).
    TooLarge,
    /// A head longer than [`MAX_HEAD`] or with too many headers (431).
    HeadTooLarge,
    /// A transfer coding other than chunked (501).
    NotImplemented,
}

impl Refusal {
    /// The status code and reason phrase.
    pub fn status(self) -> (u16, &'static str) {
        match self {
            Refusal::BadRequest => (400, "Bad Request"),
            Refusal::TooLarge => (413, "Payload Too Large"),
            Refusal::HeadTooLarge => (431, "Request Header Fields Too Large"),
            Refusal::NotImplemented => (501, "Not Implemented"),
        }
    }
}

/// What the bytes received so far hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed. `continue_body`: the head is complete and
    /// asked for `100-continue`, which should be sent before waiting.
    Partial {
        /// Send `100 Continue` now.
        continue_body: bool,
    },
    /// A request, and how many bytes of the buffer it used.
    Done(Box<Request>, usize),
    /// The request cannot be served.
    Refused(Refusal),
}

enum Framing {
    None,
    Length(usize),
    Chunked,
}

/// Parses one request from the start of `buf`, refusing a body longer
/// than `max_body` as soon as its size is known (so a huge upload is never
/// buffered).
pub fn parse(buf: &[u8], max_body: usize) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() > MAX_HEAD {
                Parsed::Refused(Refusal::HeadTooLarge)
            } else {
                Parsed::Partial {
                    continue_body: false,
                }
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Parsed::Refused(Refusal::HeadTooLarge),
        Err(_) => return Parsed::Refused(Refusal::BadRequest),
    };
    if head_len > MAX_HEAD {
        return Parsed::Refused(Refusal::HeadTooLarge);
    }
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Parsed::Refused(Refusal::BadRequest);
    };
    let mut hs: Vec<(String, String)> = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let Ok(v) = std::str::from_utf8(h.value) else {
            return Parsed::Refused(Refusal::BadRequest);
        };
        hs.push((h.name.to_ascii_lowercase(), v.trim().to_string()));
    }
    let get = |n: &str| hs.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let framing = match get("transfer-encoding") {
        Some(te) if te.eq_ignore_ascii_case("chunked") => Framing::Chunked,
        Some(te) if te.eq_ignore_ascii_case("identity") => Framing::None,
        Some(_) => return Parsed::Refused(Refusal::NotImplemented),
        None => {
            let lengths: Vec<&str> = hs
                .iter()
                .filter(|(k, _)| k == "content-length")
                .map(|(_, v)| v.as_str())
                .collect();
            match lengths.as_slice() {
                [] => Framing::None,
                [one] => match one.parse::<u64>() {
                    Ok(n) if n > max_body as u64 => return Parsed::Refused(Refusal::TooLarge),
                    Ok(n) => Framing::Length(usize::try_from(n).unwrap_or(usize::MAX)),
                    Err(_) => return Parsed::Refused(Refusal::BadRequest),
                },
                _ => return Parsed::Refused(Refusal::BadRequest),
            }
        }
    };
    let connection = get("connection").unwrap_or("").to_ascii_lowercase();
    let close =
        connection.contains("close") || (version == 0 && !connection.contains("keep-alive"));
    let expect_continue = get("expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue"));
    let rest = &buf[head_len..];
    let (body, used) = match framing {
        Framing::None => (Vec::new(), 0),
        Framing::Length(n) => {
            if rest.len() < n {
                return Parsed::Partial {
                    continue_body: expect_continue && rest.is_empty(),
                };
            }
            (rest[..n].to_vec(), n)
        }
        Framing::Chunked => match dechunk(rest, max_body) {
            Chunks::Done(body, used) => (body, used),
            Chunks::Partial => {
                return Parsed::Partial {
                    continue_body: expect_continue && rest.is_empty(),
                };
            }
            Chunks::Refused(r) => return Parsed::Refused(r),
        },
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.to_string(), String::new()),
    };
    Parsed::Done(
        Box::new(Request {
            method: method.to_string(),
            path,
            query,
            headers: hs,
            body,
            close,
        }),
        head_len + used,
    )
}

enum Chunks {
    Done(Vec<u8>, usize),
    Partial,
    Refused(Refusal),
}

/// Decodes a chunked body (chunk extensions ignored, trailers skipped).
fn dechunk(buf: &[u8], max_body: usize) -> Chunks {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let Some(eol) = find_crlf(&buf[pos..]) else {
            // A size line is a few hex digits and an extension at most.
            return if buf.len() - pos > 1024 {
                Chunks::Refused(Refusal::BadRequest)
            } else {
                Chunks::Partial
            };
        };
        let line = &buf[pos..pos + eol];
        let size_text = line.split(|&b| b == b';').next().unwrap_or(&[]);
        let Ok(size_text) = std::str::from_utf8(size_text) else {
            return Chunks::Refused(Refusal::BadRequest);
        };
        let size_text = size_text.trim();
        if size_text.is_empty() || size_text.len() > 16 {
            return Chunks::Refused(Refusal::BadRequest);
        }
        let Ok(size) = u64::from_str_radix(size_text, 16) else {
            return Chunks::Refused(Refusal::BadRequest);
        };
        pos += eol + 2;
        if size == 0 {
            // Trailers up to an empty line.
            loop {
                let Some(e) = find_crlf(&buf[pos..]) else {
                    return if buf.len() - pos > MAX_HEAD {
                        Chunks::Refused(Refusal::HeadTooLarge)
                    } else {
                        Chunks::Partial
                    };
                };
                pos += e + 2;
                if e == 0 {
                    return Chunks::Done(body, pos);
                }
            }
        }
        if body.len() as u64 + size > max_body as u64 {
            return Chunks::Refused(Refusal::TooLarge);
        }
        // size <= max_body here, so it fits in usize.
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if buf.len() - pos < size + 2 {
            return Chunks::Partial;
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        pos += size;
        if &buf[pos..pos + 2] != b"\r\n" {
            return Chunks::Refused(Refusal::BadRequest);
        }
        pos += 2;
    }
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a
/// space, `%XX` a byte; the bytes are read as UTF-8 (invalid sequences
/// replaced). A `%` not followed by two hex digits is kept as it is.
pub fn form_decode(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `name=value` pairs of a form body or query string, decoded, in
/// order; empty pieces are skipped and a piece without `=` has an empty
/// value.
pub fn form_pairs(s: &[u8]) -> Vec<(String, String)> {
    s.split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|&b| b == b'=') {
            Some(i) => (form_decode(&p[..i]), form_decode(&p[i + 1..])),
            None => (form_decode(p), String::new()),
        })
        .collect()
}

/// A response's bytes: status line, `Content-Type`, `Content-Length`,
/// `Connection`, any extra headers, then the body.
pub fn response(
    status: u16,
    reason: &str,
    content_type: &str,
    extra: &[(&str, String)],
    body: &[u8],
    close: bool,
) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: {}\r\n",
        body.len(),
        if close { "close" } else { "keep-alive" }
    );
    for (k, v) in extra {
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn done(b: &[u8]) -> (Request, usize) {
        match parse(b, 1 << 20) {
            Parsed::Done(r, n) => (*r, n),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_lengths_chunks_and_keep_alive() {
        let raw = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nA=1&BPOST";
        let (r, n) = done(raw);
        assert_eq!(r.body, b"A=1&B");
        assert_eq!(n, raw.len() - 4);
        assert!(!r.close);
        let raw = b"POST /ec2?x=1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext\r\nA=1\r\n2\r\n&B\r\n0\r\nT: v\r\n\r\n";
        let (r, n) = done(raw);
        assert_eq!(r.body, b"A=1&B");
        assert_eq!((r.path.as_str(), r.query.as_str()), ("/ec2", "x=1"));
        assert_eq!(n, raw.len());
        let (r, _) = done(b"GET / HTTP/1.0\r\n\r\n");
        assert!(r.close);
        for cut in 0..raw.len() {
            assert!(matches!(
                parse(&raw[..cut], 1 << 20),
                Parsed::Partial { .. }
            ));
        }
        assert_eq!(
            parse(
                b"POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
                1 << 20
            ),
            Parsed::Refused(Refusal::TooLarge)
        );
        assert_eq!(
            parse(
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffff\r\n",
                1 << 20
            ),
            Parsed::Refused(Refusal::TooLarge)
        );
        assert_eq!(
            parse(b"\x00\x01garbage\r\n\r\n", 1 << 20),
            Parsed::Refused(Refusal::BadRequest)
        );
        assert_eq!(
            parse(
                b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
                9
            ),
            Parsed::Partial {
                continue_body: true
            }
        );
    }

    #[test]
    fn form_decoding() {
        assert_eq!(form_decode(b"a+b%2Fc%3Ad%C3%A9"), "a b/c:dé");
        assert_eq!(form_decode(b"%"), "%");
        assert_eq!(form_decode(b"%4"), "%4");
        assert_eq!(form_decode(b"%zz%41"), "%zzA");
        assert_eq!(
            form_pairs(b"A=1&&B&C=x%3Dy=z"),
            vec![
                ("A".into(), "1".into()),
                ("B".into(), String::new()),
                ("C".into(), "x=y=z".into())
            ]
        );
    }
}
