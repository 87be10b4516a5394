//! Group commit, for a process that answers many requests at once
//! (`ebsim serve`).
//!
//! Requests that arrive while others are running join one transaction
//! instead of each taking the lock, reading, writing and syncing the
//! document on its own. The first opens it (the exclusive `flock`, the
//! document, the crash recovery, the clock's due transitions, exactly as a
//! lone transaction does); each request then runs its operation on it in
//! turn; the last one in (no request waiting to join, or [`MAX_GROUP`]
//! reached) commits it: one document write, one set of fsyncs, one
//! publish. Every request is answered only after that commit is durable,
//! with its own result, or with the commit's error if the commit failed
//! (then none of the group's changes were saved). Requests of other
//! processes still wait for the lock, so nothing is lost between them.
//!
//! Operations check everything that can fail before they change the
//! state, so a failed one normally changed nothing and the group goes on
//! (files it staged are published with the group and, being nobody's,
//! removed by the next transaction's recovery). One that fails after
//! changing the state (or the clock, or the work queued after the
//! commit) is undone as a lone transaction's is, the document read again,
//! when it is the first in the group; otherwise its changes cannot be
//! told from the others', so the whole group is dropped unsaved and the
//! other requests in it are answered `Unavailable` (HTTP 503, which the
//! SDKs retry): none of them was applied. Copying the state before every
//! operation instead would cost as much as reading it.
//!
//! Between groups the parsed document is kept in memory with the
//! fingerprint of the file it equals ([`super::store::Cached`]); the next
//! group checks the fingerprint under the lock and reads the file again
//! only when another process (or anything else) replaced it.

use super::store::{Cached, Locked};
use super::{ApiError, Cloud, Ec2, Error, Result, Txn};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// The most requests in one group commit.
pub const MAX_GROUP: usize = 64;

/// Regions whose clouds are kept (past this the map starts again: a
/// region is only a name from the request).
const MAX_REGIONS: usize = 64;

/// Makes the cloud of a region, with the settings of the requests' own.
pub type MakeCloud = dyn Fn(&str) -> Result<Ec2> + Send + Sync;

/// The group commit of one state home in one process.
pub struct Group {
    make: Box<MakeCloud>,
    inner: Mutex<Inner>,
    changed: Condvar,
    /// Requests waiting for the mutex (they may join the open group).
    arriving: AtomicUsize,
}

struct Inner {
    /// The transaction of the group being formed (None between groups
    /// and while one is committing).
    open: Option<Txn<'static>>,
    /// Requests that ran in the open group.
    members: usize,
    /// Whether a group is committing (newcomers wait for the next).
    committing: bool,
    /// Requests waiting for the commit in progress to end.
    waiting: usize,
    /// The number of the open group.
    epoch: u64,
    /// Commits' outcomes not yet read by all their requests.
    outcomes: HashMap<u64, Outcome>,
    /// The document as last committed.
    cache: Option<Cached>,
    clouds: HashMap<String, Arc<Ec2>>,
}

/// A commit's outcome: whether boots are due, or its error.
type Committed = std::result::Result<bool, Arc<Error>>;

struct Outcome {
    result: Committed,
    left: usize,
}

impl Group {
    /// A group making the cloud of each region with `make`.
    pub fn new(make: Box<MakeCloud>) -> Group {
        Group {
            make,
            inner: Mutex::new(Inner {
                open: None,
                members: 0,
                committing: false,
                waiting: 0,
                epoch: 0,
                outcomes: HashMap::new(),
                cache: None,
                clouds: HashMap::new(),
            }),
            changed: Condvar::new(),
            arriving: AtomicUsize::new(0),
        }
    }

    // A request thread that panicked left nothing half-changed in
    // `Inner` that the next one cannot use (the transaction it held is
    // gone, its lock released): go on.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'g>(&self, g: MutexGuard<'g, Inner>) -> MutexGuard<'g, Inner> {
        self.changed.wait(g).unwrap_or_else(|p| p.into_inner())
    }

    fn cloud(&self, g: &mut Inner, region: &str) -> Result<Arc<Ec2>> {
        if let Some(c) = g.clouds.get(region) {
            return Ok(c.clone());
        }
        if g.clouds.len() >= MAX_REGIONS {
            g.clouds.clear();
        }
        let c = Arc::new((self.make)(region)?);
        g.clouds.insert(region.to_string(), c.clone());
        Ok(c)
    }

    /// Runs `f` in the open group (opening one if none is), then commits
    /// the group or waits for its commit; see the module documentation.
    pub(super) fn run<T>(
        &self,
        region: &str,
        f: impl FnOnce(&mut Txn<'_>) -> Result<T>,
    ) -> Result<(T, bool)> {
        self.arriving.fetch_add(1, Ordering::SeqCst);
        let mut g = self.lock();
        self.arriving.fetch_sub(1, Ordering::SeqCst);
        while g.committing {
            g.waiting += 1;
            g = self.wait(g);
            g.waiting -= 1;
        }
        let cloud = self.cloud(&mut g, region)?;
        let mut txn = match g.open.take() {
            Some(t) => t,
            None => {
                let cache = g.cache.take();
                let locked = Locked::acquire_cached(cloud.home(), cloud.mode(), cache)?;
                g.members = 0;
                Txn::open(Cloud::Shared(cloud.clone()), locked)?
            }
        };
        txn.ec2 = Cloud::Shared(cloud);
        txn.touched = false;
        let mine = f(&mut txn);
        if mine.is_err() && txn.touched {
            if g.members > 0 {
                // Its changes cannot be told from the others': the whole
                // group is dropped unsaved (its staged files and the lock
                // with it), the others told to try again.
                txn.discard_stage();
                drop(txn);
                let abandoned = Arc::new(Error::Api(ApiError::new(
                    "Unavailable",
                    "A request handled together with this one failed halfway, so none of them was applied. Try again.",
                )));
                let epoch = g.epoch;
                g.epoch = g.epoch.wrapping_add(1);
                let left = g.members;
                g.members = 0;
                g.outcomes.insert(
                    epoch,
                    Outcome {
                        result: Err(abandoned),
                        left,
                    },
                );
                drop(g);
                self.changed.notify_all();
                return mine.map(|v| (v, false));
            }
            if !txn.undo_failed() {
                // The state in memory is not the committed one and no
                // other request is in the group: end it unsaved (the lock
                // goes with it; the next transaction applies the clock's
                // transitions again).
                drop(txn);
                return mine.map(|v| (v, false));
            }
        }
        g.members += 1;
        let last =
            g.members >= MAX_GROUP || (self.arriving.load(Ordering::SeqCst) == 0 && g.waiting == 0);
        if !last {
            let epoch = g.epoch;
            g.open = Some(txn);
            loop {
                if let Some(o) = g.outcomes.get_mut(&epoch) {
                    o.left = o.left.saturating_sub(1);
                    let r = o.result.clone();
                    if o.left == 0 {
                        g.outcomes.remove(&epoch);
                    }
                    return finish(mine, r);
                }
                g = self.wait(g);
            }
        }
        // The last one in commits the group, the mutex let go meanwhile
        // (newcomers wait for the next group).
        let epoch = g.epoch;
        g.epoch = g.epoch.wrapping_add(1);
        let others = g.members - 1;
        g.members = 0;
        g.committing = true;
        drop(g);
        let committed = txn.commit_all();
        let cache = match committed {
            Ok(_) => txn.locked.into_cache(),
            Err(_) => None,
        };
        let committed = committed.map_err(Arc::new);
        let mut g = self.lock();
        g.cache = cache;
        g.committing = false;
        if others > 0 {
            g.outcomes.insert(
                epoch,
                Outcome {
                    result: committed.clone(),
                    left: others,
                },
            );
        }
        drop(g);
        self.changed.notify_all();
        finish(mine, committed)
    }
}

/// A request's answer: its own error, else the commit's, else its value.
fn finish<T>(mine: Result<T>, committed: Committed) -> Result<(T, bool)> {
    match (mine, committed) {
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(Error::Shared(e)),
        (Ok(v), Ok(due)) => Ok((v, due)),
    }
}
