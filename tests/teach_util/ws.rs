//! A tiny WebSocket client (RFC 6455: the handshake, masked text frames
//! out, unmasked frames in) and a Chrome DevTools protocol session over it,
//! enough to drive headless Chromium from a test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub struct Ws {
    s: TcpStream,
    next_id: u64,
    /// Events received while waiting for answers.
    pub events: Vec<serde_json::Value>,
}

fn http_get(host: &str, path: &str) -> String {
    let Ok(mut s) = TcpStream::connect(host) else {
        return String::new();
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut len = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return String::new();
        }
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; len];
    let _ = r.read_exact(&mut body);
    String::from_utf8_lossy(&body).into_owned()
}

/// The page target's websocket URL of a DevTools endpoint `host:port`.
pub fn page_ws(host: &str) -> String {
    for _ in 0..100 {
        let list = http_get(host, "/json/list");
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&list) {
            if let Some(u) = v
                .as_array()
                .and_then(|a| a.iter().find(|t| t["type"] == "page"))
                .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            {
                return u.to_string();
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no page target at {host}");
}

impl Ws {
    pub fn connect(url: &str) -> Ws {
        let rest = url.strip_prefix("ws://").unwrap();
        let (host, path) = rest.split_at(rest.find('/').unwrap());
        let mut s = TcpStream::connect(host).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.contains(" 101 "), "handshake: {line}");
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
        }
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Ws {
            s,
            next_id: 1,
            events: Vec::new(),
        }
    }

    fn send_text(&mut self, text: &str) {
        let b = text.as_bytes();
        let mut f = vec![0x81u8];
        if b.len() < 126 {
            f.push(0x80 | b.len() as u8);
        } else if b.len() < 65536 {
            f.push(0x80 | 126);
            f.extend((b.len() as u16).to_be_bytes());
        } else {
            f.push(0x80 | 127);
            f.extend((b.len() as u64).to_be_bytes());
        }
        let mask = [1u8, 2, 3, 4];
        f.extend(mask);
        f.extend(b.iter().enumerate().map(|(i, x)| x ^ mask[i % 4]));
        self.s.write_all(&f).unwrap();
    }

    fn read_frame(&mut self) -> Vec<u8> {
        let mut msg = Vec::new();
        loop {
            let mut h = [0u8; 2];
            self.s.read_exact(&mut h).unwrap();
            let fin = h[0] & 0x80 != 0;
            let mut len = u64::from(h[1] & 0x7f);
            if len == 126 {
                let mut l = [0u8; 2];
                self.s.read_exact(&mut l).unwrap();
                len = u64::from(u16::from_be_bytes(l));
            } else if len == 127 {
                let mut l = [0u8; 8];
                self.s.read_exact(&mut l).unwrap();
                len = u64::from_be_bytes(l);
            }
            let mut data = vec![0u8; len as usize];
            self.s.read_exact(&mut data).unwrap();
            msg.extend(data);
            if fin {
                return msg;
            }
        }
    }

    /// Sends a DevTools command and returns its result; events received
    /// meanwhile are kept in `events`.
    pub fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        let id = self.next_id;
        self.next_id += 1;
        let req = serde_json::json!({"id": id, "method": method, "params": params});
        self.send_text(&req.to_string());
        loop {
            let f = self.read_frame();
            let v: serde_json::Value = serde_json::from_slice(&f).unwrap_or_default();
            if v["id"].as_u64() == Some(id) {
                return v;
            }
            self.events.push(v);
        }
    }
}
