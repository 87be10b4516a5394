//! The endpoint: a TCP listener, one thread per connection (bounded), the
//! Query protocol's routing (`Action` from the query string or the form
//! body, whatever the path), the region from the SigV4 credential scope,
//! and XML answers.
//!
//! Every request runs the same operations as the AWS CLI emulation
//! ([`super::ops::call`]) on an [`Ec2`] made for its region, so each one is
//! a transaction under the state's lock, exactly as a CLI command is:
//! concurrent clients, here or in other processes, never lose an update.
//!
//! A connection is served until the client closes it, asks to
//! (`Connection: close`), stays idle past [`Limits::idle`], or the server
//! stops; a request the parser refuses gets its status (400, 413, 431,
//! 501) and the connection is closed. [`Stopper::stop`] makes the server
//! finish the requests in flight, then [`Server::serve`] returns.

use super::http::{self, Parsed, Request};
use super::ops::{self, CallError};
use super::params::Params;
use super::xml;
use crate::ec2::Ec2;
use crate::ec2::model::OWNER_ID;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a waiting connection looks at the stop flag.
const POLL: Duration = Duration::from_millis(100);

/// The bounds of the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest request body (a larger one is answered 413 unread).
    pub max_body: usize,
    /// Connections served at once (more are answered 503 and closed).
    pub max_connections: usize,
    /// How long an idle keep-alive connection is kept.
    pub idle: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body: 1 << 20,
            max_connections: 256,
            idle: Duration::from_secs(60),
        }
    }
}

/// Makes the cloud of a region.
pub type Factory = dyn Fn(&str) -> crate::ec2::Result<Ec2> + Send + Sync;

/// Wipes the state (the moto-compatible reset endpoint).
pub type Reset = dyn Fn() -> Result<(), String> + Send + Sync;

/// What answers requests.
pub struct Service {
    factory: Box<Factory>,
    default_region: String,
    reset: Option<Box<Reset>>,
}

/// An answer: status, content type, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Content type.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
}

const XML_TYPE: &str = "text/xml;charset=UTF-8";

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// The HTTP status AWS answers an error code with.
pub fn error_status(code: &str) -> u16 {
    match code {
        "DryRunOperation" => 412,
        "AuthFailure" => 401,
        "RequestLimitExceeded" | "Unavailable" | "ServiceUnavailable" => 503,
        "InternalError" => 500,
        _ => 400,
    }
}

/// The region of a SigV4 `Authorization` header's credential scope
/// (`Credential=AKID/20240501/eu-west-1/ec2/aws4_request`).
pub fn credential_region(authorization: &str) -> Option<&str> {
    let start = authorization.find("Credential=")? + "Credential=".len();
    let cred = authorization[start..]
        .split([',', ' '])
        .next()
        .unwrap_or_default();
    let mut parts = cred.split('/');
    let _key = parts.next()?;
    let _date = parts.next()?;
    let region = parts.next()?;
    let valid = !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    valid.then_some(region)
}

impl Service {
    /// A service making each request's cloud with `factory`, in
    /// `default_region` when a request is unsigned.
    pub fn new(factory: Box<Factory>, default_region: &str) -> Service {
        Service {
            factory,
            default_region: default_region.to_string(),
            reset: None,
        }
    }

    /// Enables `POST /moto-api/reset`.
    pub fn with_reset(mut self, reset: Box<Reset>) -> Service {
        self.reset = Some(reset);
        self
    }

    fn error(code: &str, message: &str, request_id: &str) -> Answer {
        Answer {
            status: error_status(code),
            content_type: XML_TYPE,
            body: xml::error(code, message, request_id).into_bytes(),
        }
    }

    /// Answers one request.
    pub fn answer(&self, req: &Request) -> Answer {
        let rid = uuid::Uuid::new_v4().to_string();
        if req.path == "/moto-api/reset" {
            return match (&self.reset, req.method.as_str()) {
                (Some(reset), "POST") => match reset() {
                    Ok(()) => Answer {
                        status: 200,
                        content_type: "application/json",
                        body: b"{\"status\": \"ok\"}".to_vec(),
                    },
                    Err(e) => Self::error("InternalError", &e, &rid),
                },
                _ => Self::error("InvalidAction", "The reset endpoint takes POST.", &rid),
            };
        }
        let mut pairs = http::form_pairs(req.query.as_bytes());
        if req.method == "POST" {
            pairs.extend(http::form_pairs(&req.body));
        }
        let Some(action) = pairs
            .iter()
            .rev()
            .find(|(k, _)| k == "Action")
            .map(|(_, v)| v.clone())
        else {
            return Self::error(
                "MissingAction",
                "The request must contain the parameter Action.",
                &rid,
            );
        };
        let region = req
            .header("authorization")
            .and_then(credential_region)
            .unwrap_or(&self.default_region)
            .to_string();
        if action == "GetCallerIdentity" {
            return Answer {
                status: 200,
                content_type: XML_TYPE,
                body: caller_identity(req, &rid).into_bytes(),
            };
        }
        let ec2 = match (self.factory)(&region) {
            Ok(e) => e,
            Err(e) => return Self::error("InternalError", &e.to_string(), &rid),
        };
        let params = Params::from_query(&action, &pairs);
        match ops::call(&ec2, &action, &params) {
            Ok(doc) => Answer {
                status: 200,
                content_type: XML_TYPE,
                body: xml::response(&action, &rid, doc.as_ref()).into_bytes(),
            },
            Err(CallError::Param(e)) => Self::error("InvalidParameterValue", &e.to_string(), &rid),
            Err(e @ CallError::UnknownAction(_)) => {
                Self::error("InvalidAction", &e.to_string(), &rid)
            }
            Err(CallError::Ec2(e)) => match e.api() {
                Some(a) => Self::error(&a.code, &a.message, &rid),
                None => Self::error("InternalError", &e.to_string(), &rid),
            },
        }
    }
}

/// STS GetCallerIdentity: the account, and the access key as the user.
fn caller_identity(req: &Request, rid: &str) -> String {
    let key = req
        .header("authorization")
        .and_then(|a| {
            let start = a.find("Credential=")? + "Credential=".len();
            a[start..].split('/').next()
        })
        .unwrap_or("anonymous");
    let mut k = String::new();
    xml::escape(key, &mut k);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>arn:aws:iam::{OWNER_ID}:user/ebsim</Arn><UserId>{k}</UserId><Account>{OWNER_ID}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>{rid}</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
    )
}

/// What answers the requests of a [`Server`]: the EC2 endpoint
/// ([`Service`]) or another page on the same HTTP plumbing (the teaching
/// web view).
pub trait Handler: Send + Sync + 'static {
    /// Answers one request.
    fn answer(&self, req: &Request) -> Answer;

    /// Whether `req` asks for a stream of server-sent events: the
    /// connection then carries [`Handler::event`]s until the client goes
    /// or the server stops.
    fn is_stream(&self, _req: &Request) -> bool {
        false
    }

    /// The next event's data (one line) of a stream, asked every
    /// [`STREAM_POLL`]; None when there is nothing new since `last`, the
    /// data sent before.
    fn event(&self, _last: Option<&str>) -> Option<String> {
        None
    }
}

/// How often a stream of events asks its handler for news.
pub const STREAM_POLL: Duration = Duration::from_millis(250);

/// How long a stream stays silent before a comment line keeps proxies and
/// the client from taking it for dead.
const STREAM_KEEPALIVE: Duration = Duration::from_secs(15);

/// Serves a stream of server-sent events (`text/event-stream`) until the
/// client goes or the server stops (looked at every [`STREAM_POLL`]).
fn stream_events<H: Handler>(mut stream: TcpStream, service: &H, stop: &AtomicBool) {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nConnection: close\r\n\r\nretry: 1000\n\n";
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    let mut last: Option<String> = None;
    let mut quiet = Duration::ZERO;
    while !stop.load(Ordering::SeqCst) {
        let wrote = match service.event(last.as_deref()) {
            Some(data) => {
                // One line of data: a newline would end the field.
                let line = data.replace(['\r', '\n'], " ");
                let r = stream.write_all(format!("data: {line}\n\n").as_bytes());
                last = Some(data);
                quiet = Duration::ZERO;
                r
            }
            None if quiet >= STREAM_KEEPALIVE => {
                quiet = Duration::ZERO;
                stream.write_all(b": keep-alive\n\n")
            }
            None => Ok(()),
        };
        if wrote.is_err() {
            return;
        }
        std::thread::sleep(STREAM_POLL);
        quiet += STREAM_POLL;
    }
    let _ = stream.shutdown(Shutdown::Both);
}

impl Handler for Service {
    fn answer(&self, req: &Request) -> Answer {
        Service::answer(self, req)
    }
}

/// A bound listener, not yet serving.
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    limits: Limits,
}

/// Stops a running server (from another thread, e.g. a signal's).
#[derive(Clone)]
pub struct Stopper {
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
}

impl Stopper {
    /// Asks the server to stop: no new connection is taken, requests in
    /// flight are finished, then [`Server::serve`] returns.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept call.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

impl Server {
    /// Binds `addr` (port 0: any free port).
    pub fn bind(addr: SocketAddr, limits: Limits) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        Ok(Server {
            listener,
            addr,
            stop: Arc::new(AtomicBool::new(false)),
            limits,
        })
    }

    /// The address bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle that stops the server.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            stop: self.stop.clone(),
            addr: self.addr,
        }
    }

    /// Serves until stopped; returns once every connection has finished.
    pub fn serve<H: Handler>(self, service: Arc<H>) -> std::io::Result<()> {
        let active = Arc::new(AtomicUsize::new(0));
        let mut threads: Vec<JoinHandle<()>> = Vec::new();
        for conn in self.listener.incoming() {
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            let Ok(stream) = conn else {
                // A connection that failed before it was accepted (reset,
                // out of descriptors for a moment): the next one may work.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            threads.retain(|t| !t.is_finished());
            if active.load(Ordering::SeqCst) >= self.limits.max_connections {
                refuse_busy(stream);
                continue;
            }
            active.fetch_add(1, Ordering::SeqCst);
            let (svc, stop, act, limits) = (
                service.clone(),
                self.stop.clone(),
                active.clone(),
                self.limits,
            );
            let spawned = std::thread::Builder::new()
                .name("ebsim-serve".to_string())
                .spawn(move || {
                    connection(stream, svc.as_ref(), &stop, limits);
                    act.fetch_sub(1, Ordering::SeqCst);
                });
            match spawned {
                Ok(t) => threads.push(t),
                Err(_) => {
                    active.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }
        for t in threads {
            let _ = t.join();
        }
        Ok(())
    }
}

fn refuse_busy(mut stream: TcpStream) {
    let body = xml::error(
        "RequestLimitExceeded",
        "Too many connections.",
        &uuid::Uuid::new_v4().to_string(),
    );
    let bytes = http::response(503, reason(503), XML_TYPE, &[], body.as_bytes(), true);
    let _ = stream.write_all(&bytes);
}

/// Answers a refused request, then reads (and drops) what the client still
/// sends for a moment so that it sees the answer rather than a reset.
fn refuse(mut stream: TcpStream, r: http::Refusal) {
    let (status, phrase) = r.status();
    let body = xml::error(
        match r {
            http::Refusal::TooLarge => "RequestEntityTooLarge",
            _ => "InvalidRequest",
        },
        phrase,
        &uuid::Uuid::new_v4().to_string(),
    );
    let bytes = http::response(status, phrase, XML_TYPE, &[], body.as_bytes(), true);
    if stream.write_all(&bytes).is_err() {
        return;
    }
    let _ = stream.shutdown(Shutdown::Write);
    let until = Instant::now() + Duration::from_secs(2);
    let mut sink = [0u8; 16 * 1024];
    while Instant::now() < until {
        match stream.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {}
            Err(_) => break,
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

fn connection<H: Handler>(mut stream: TcpStream, service: &H, stop: &AtomicBool, limits: Limits) {
    if stream.set_read_timeout(Some(POLL)).is_err() {
        return;
    }
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::new();
    let mut idle = Duration::ZERO;
    let mut sent_continue = false;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        if !buf.is_empty() {
            match http::parse(&buf, limits.max_body) {
                Parsed::Done(req, used) => {
                    buf.drain(..used);
                    sent_continue = false;
                    if service.is_stream(&req) {
                        return stream_events(stream, service, stop);
                    }
                    let close = req.close || stop.load(Ordering::SeqCst);
                    let a = service.answer(&req);
                    let bytes = http::response(
                        a.status,
                        reason(a.status),
                        a.content_type,
                        &[],
                        &a.body,
                        close,
                    );
                    if stream.write_all(&bytes).is_err() || close {
                        return;
                    }
                    idle = Duration::ZERO;
                    continue;
                }
                Parsed::Refused(r) => return refuse(stream, r),
                Parsed::Partial { continue_body } => {
                    if continue_body && !sent_continue {
                        if stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err() {
                            return;
                        }
                        sent_continue = true;
                    }
                }
            }
        }
        if buf.is_empty() && stop.load(Ordering::SeqCst) {
            return;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                idle = Duration::ZERO;
            }
            Err(e) if is_timeout(&e) => {
                idle += POLL;
                // A request half sent when the server stops gets two
                // seconds more, not the idle limit.
                let grace = if stop.load(Ordering::SeqCst) {
                    Duration::from_secs(2)
                } else {
                    limits.idle
                };
                if idle >= grace {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn region_from_the_credential_scope() {
        let a = "AWS4-HMAC-SHA256 Credential=AKIDEBSIMTEST0000001/20261127/eu-west-1/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=31cd";
        assert_eq!(credential_region(a), Some("eu-west-1"));
        assert_eq!(
            credential_region("AWS4-HMAC-SHA256 Credential=AK/2026"),
            None
        );
        assert_eq!(credential_region("Credential=AK/d/../x"), None);
        assert_eq!(credential_region("nothing"), None);
    }
}
