//! A program driven through a pseudo-terminal, as a user at a terminal
//! drives it: what has appeared on the screen so far, typed lines, and
//! waits for text to appear.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A terminal session.
pub struct Session {
    screen: Arc<Mutex<Vec<u8>>>,
    pub master: std::fs::File,
    pub child: std::process::Child,
    n: usize,
}

impl Session {
    /// Starts `cmd` with a new pseudo-terminal as its stdin, stdout and
    /// stderr; a thread copies what it writes to the screen.
    pub fn spawn(cmd: &mut Command) -> Session {
        let pty = nix::pty::openpty(None, None).unwrap();
        let slave: OwnedFd = pty.slave;
        let child = cmd
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave))
            .spawn()
            .unwrap();
        let master = std::fs::File::from(pty.master);
        let screen = Arc::new(Mutex::new(Vec::new()));
        {
            let screen = Arc::clone(&screen);
            let mut reader = master.try_clone().unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = reader.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    screen.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
        Session {
            screen,
            master,
            child,
            n: 0,
        }
    }

    /// The screen so far, carriage returns dropped.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).replace('\r', "")
    }

    /// Waits up to `secs` until the screen shows `needle` `count` times.
    pub fn wait_for_count(&self, needle: &str, count: usize, secs: u64) {
        let t0 = Instant::now();
        while self.text().matches(needle).count() < count {
            assert!(
                t0.elapsed() < Duration::from_secs(secs),
                "timed out waiting for {needle:?} x{count}; screen:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `secs` for the program to end (the screen is shown if
    /// it does not).
    pub fn wait_exit(&mut self, secs: u64) -> std::process::ExitStatus {
        let t0 = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(secs),
                "still running after {secs} s; screen:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits up to `secs` until the screen shows `needle`.
    pub fn wait_for(&self, needle: &str, secs: u64) {
        self.wait_for_count(needle, 1, secs);
    }

    /// Types `line` and Enter.
    pub fn type_line(&mut self, line: &str) {
        self.master.write_all(line.as_bytes()).unwrap();
        self.master.write_all(b"\n").unwrap();
        self.master.flush().unwrap();
    }

    /// Types `line` (a shell command), then waits until it has finished
    /// (a marker echoed after it, which the terminal's echo of the typed
    /// line cannot match). Returns what the screen gained.
    pub fn run(&mut self, line: &str) -> String {
        self.n += 1;
        let before = self.text().len();
        self.type_line(&format!("{line}; echo __D\"\"ONE_{}__", self.n));
        let marker = format!("\n__DONE_{}__\n", self.n);
        self.wait_for(&marker, 180);
        let t = self.text();
        t[before.min(t.len())..].to_string()
    }
}
