//! `ebsim serve`: the EC2 endpoint (`ebsim::api::server`) on the
//! environment's state, stopped by SIGTERM or SIGINT.
//!
//! The two signals are blocked in every thread (the mask is set before any
//! thread starts, and threads inherit it) and taken by one thread with
//! `sigwait`, which tells the server to stop: it finishes the requests in
//! flight and the process exits 0.

use super::commands::Serve;
use super::output::{err, out};
use ebsim::api::server::{Limits, Server, Service};
use ebsim::ec2::group::Group;
use nix::sys::signal::{SigSet, Signal};
use std::net::SocketAddr;
use std::sync::Arc;

/// Blocks SIGTERM and SIGINT in this thread (and so in every thread it
/// starts), for [`stop_on_signal`]; before any thread starts.
pub fn block_stop_signals(prog: &str) -> Result<SigSet, i32> {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    match signals.thread_block() {
        Ok(()) => Ok(signals),
        Err(e) => {
            err(&format!("{prog}: cannot block SIGTERM/SIGINT: {e}\n"));
            Err(1)
        }
    }
}

/// Starts the thread that takes the blocked signals with `sigwait` and
/// tells `server` to stop (it finishes the requests in flight).
pub fn stop_on_signal(server: &Server, signals: SigSet, prog: &str) -> Result<(), i32> {
    let stopper = server.stopper();
    std::thread::Builder::new()
        .name("ebsim-signals".to_string())
        .spawn(move || {
            if signals.wait().is_ok() {
                stopper.stop();
            }
        })
        .map(drop)
        .map_err(|e| {
            err(&format!("{prog}: {e}\n"));
            1
        })
}

/// Runs `ebsim serve`.
pub fn exec(s: &Serve) -> i32 {
    let signals = match block_stop_signals("ebsim serve") {
        Ok(s) => s,
        Err(code) => return code,
    };
    let factory = match super::env::ec2_factory() {
        Ok(f) => f,
        Err(e) => {
            err(&format!("ebsim serve: {e}\n"));
            return 1;
        }
    };
    // The state must be usable before the endpoint is announced.
    if let Err(e) = factory(&s.region).and_then(|ec2| ec2.transact(|_| Ok(()))) {
        err(&format!("ebsim serve: {e}\n"));
        return 1;
    }
    let server = match Server::bind(SocketAddr::new(s.bind, s.port), Limits::default()) {
        Ok(sv) => sv,
        Err(e) => {
            err(&format!(
                "ebsim serve: cannot listen on {}: {e}\n",
                SocketAddr::new(s.bind, s.port)
            ));
            return 1;
        }
    };
    if let Err(code) = stop_on_signal(&server, signals, "ebsim serve") {
        return code;
    }
    out(&format!("http://{}\n", server.local_addr()));
    let reset_home = match super::env::ec2_factory() {
        Ok(f) => f,
        Err(e) => {
            err(&format!("ebsim serve: {e}\n"));
            return 1;
        }
    };
    let region = s.region.clone();
    // POST /moto-api/reset: one transaction forgets every resource, the
    // next one sweeps their files.
    let reset = move || -> Result<(), String> {
        let ec2 = reset_home(&region).map_err(|e| e.to_string())?;
        ec2.transact(|t| {
            t.reset_resources();
            Ok(())
        })
        .and_then(|()| ec2.transact(|_| Ok(())))
        .map_err(|e| e.to_string())
    };
    // Concurrent requests share transactions (group commit), and the
    // parsed state stays in memory between them while the file is
    // unchanged.
    let group = Arc::new(Group::new(Box::new(factory)));
    let grouped = match super::env::ec2_factory() {
        Ok(f) => f,
        Err(e) => {
            err(&format!("ebsim serve: {e}\n"));
            return 1;
        }
    };
    let factory = move |region: &str| grouped(region).map(|e| e.with_group(group.clone()));
    let service = Service::new(Box::new(factory), &s.region).with_reset(Box::new(reset));
    match server.serve(Arc::new(service)) {
        Ok(()) => 0,
        Err(e) => {
            err(&format!("ebsim serve: {e}\n"));
            1
        }
    }
}
