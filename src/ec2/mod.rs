//! The cloud model (spec ebs.md): volumes and their types and rules,
//! ModifyVolume on a virtual clock, snapshots in a content-addressed chunk
//! store, instances with their guest device names, AMIs and the built-in
//! catalog, all kept in one state document under `EBSIM_HOME`.
//!
//! No bytes of images are parsed here: volumes are sparse image files that
//! this layer creates, grows (`ImageFile::set_len`), copies into snapshot
//! chunks and restores, through the blockdev layer's one write path.
//!
//! Every operation runs inside a transaction ([`Ec2::transact`]): the
//! state is locked and read, the clock is read, every timed transition
//! that is due is applied ([`Txn::tick`]), the operation runs, and the
//! state is written back if anything changed.

pub mod catalog;
pub mod clock;
mod error;
pub mod filter;
pub mod guest;
mod ids;
pub mod images;
pub mod instance_types;
pub mod instances;
pub mod model;
pub mod release;
pub mod snapshots;
pub mod store;
pub mod tags;
mod tick;
pub mod time;
pub mod types;
pub mod volumes;
pub mod wire;
pub mod zones;

pub use catalog::{BlankImageBuilder, ImageBuilder};
pub use clock::ClockMode;
pub use error::{ApiError, Error, Result};
pub use store::Home;

use model::State;
use std::path::PathBuf;
use store::Locked;
use time::{HOUR, MINUTE, Millis, SECOND};

/// The rate rule of ModifyVolume (spec §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatePolicy {
    /// Current AWS rule: the previous modification must be completed, and
    /// at most four modifications per volume in a rolling 24 hours.
    FourPer24h,
    /// The older rule: wait at least six hours after a modification.
    Cooldown6h,
}

/// The environment variable choosing the rate rule.
pub const RATE_ENV: &str = "EBSIM_MODIFY_RATE";

impl RatePolicy {
    /// Reads `EBSIM_MODIFY_RATE`: `4-per-24h` (default) or `cooldown-6h`.
    pub fn from_env() -> Result<RatePolicy> {
        match std::env::var(RATE_ENV) {
            Err(_) => Ok(RatePolicy::FourPer24h),
            Ok(v) => match v.trim() {
                "" | "4-per-24h" | "4_per_24h" | "current" => Ok(RatePolicy::FourPer24h),
                "cooldown-6h" | "cooldown_6h" | "6h" | "legacy" => Ok(RatePolicy::Cooldown6h),
                _ => Err(Error::BadSetting {
                    var: RATE_ENV.to_string(),
                    value: v.clone(),
                    reason: "expected 4-per-24h or cooldown-6h".to_string(),
                }),
            },
        }
    }
}

/// How long each timed state lasts, in virtual milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// `creating` of an empty volume.
    pub volume_create: i64,
    /// Extra `creating` per GiB of snapshot data restored.
    pub volume_create_per_gib: i64,
    /// `attaching`.
    pub attach: i64,
    /// `detaching`.
    pub detach: i64,
    /// `modifying` (until the new size is visible).
    pub modifying: i64,
    /// Shortest `optimizing`.
    pub optimizing_min: i64,
    /// `optimizing` per GiB of data on the volume (about 6 h per used TiB,
    /// spec §1.3).
    pub optimizing_per_gib: i64,
    /// Shortest snapshot `pending`.
    pub snapshot_min: i64,
    /// Snapshot `pending` per GiB of new data.
    pub snapshot_per_gib: i64,
    /// Instance `pending`.
    pub instance_pending: i64,
    /// Instance `stopping`.
    pub instance_stopping: i64,
    /// Instance `shutting-down`.
    pub instance_shutting_down: i64,
    /// How long a terminated instance stays visible.
    pub terminated_visible: i64,
    /// Image `pending` beyond its snapshots.
    pub image_pending: i64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            volume_create: 10 * SECOND,
            volume_create_per_gib: 2 * SECOND,
            attach: 5 * SECOND,
            detach: 10 * SECOND,
            modifying: 30 * SECOND,
            optimizing_min: MINUTE,
            optimizing_per_gib: 21 * SECOND,
            snapshot_min: 30 * SECOND,
            snapshot_per_gib: 10 * SECOND,
            instance_pending: 30 * SECOND,
            instance_stopping: 30 * SECOND,
            instance_shutting_down: 20 * SECOND,
            terminated_visible: HOUR,
            image_pending: 30 * SECOND,
        }
    }
}

/// The cloud: where the state lives, how the clock runs, which rules apply.
pub struct Ec2 {
    home: Home,
    mode: ClockMode,
    policy: RatePolicy,
    timing: Timing,
    region: String,
    builder: Box<dyn ImageBuilder>,
}

/// The default region.
pub const DEFAULT_REGION: &str = "us-east-1";

impl Ec2 {
    /// A cloud over `home`, with the default timing, the current rate rule
    /// and the default image builder.
    pub fn new(home: Home, mode: ClockMode, region: &str) -> Ec2 {
        Ec2 {
            home,
            mode,
            policy: RatePolicy::FourPer24h,
            timing: Timing::default(),
            region: region.to_string(),
            builder: catalog::default_builder(),
        }
    }

    /// The cloud as the environment sets it up: `EBSIM_HOME`,
    /// `EBSIM_CLOCK`, `EBSIM_MODIFY_RATE`.
    pub fn from_env(region: &str) -> Result<Ec2> {
        let mut e = Ec2::new(Home::from_env()?, ClockMode::from_env()?, region);
        e.policy = RatePolicy::from_env()?;
        Ok(e)
    }

    /// Uses another rate rule.
    pub fn with_policy(mut self, p: RatePolicy) -> Self {
        self.policy = p;
        self
    }

    /// Uses another image builder.
    pub fn with_builder(mut self, b: Box<dyn ImageBuilder>) -> Self {
        self.builder = b;
        self
    }

    /// The region requests act in.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The state directory.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// The clock mode.
    pub fn mode(&self) -> ClockMode {
        self.mode
    }

    /// Runs `f` as one transaction. The changes `f` makes are written when
    /// it returns `Ok`; the clock's due transitions are written either way.
    pub fn transact<T>(&self, f: impl FnOnce(&mut Txn<'_>) -> Result<T>) -> Result<T> {
        let locked = Locked::acquire(&self.home, self.mode)?;
        let mut txn = Txn {
            ec2: self,
            locked,
            dirty: false,
            after: Vec::new(),
            created: Vec::new(),
        };
        txn.tick()?;
        match f(&mut txn) {
            Ok(v) => match txn.commit() {
                Ok(()) => Ok(v),
                Err(e) => {
                    // The state was not written: the files made for it
                    // are nobody's.
                    txn.discard_created();
                    Err(e)
                }
            },
            Err(e) => {
                // Drop whatever `f` changed before failing: read the
                // document again (the lock is still held) and apply the
                // clock's transitions alone, which are idempotent (an image
                // already grown is grown to the same size again).
                txn.discard_created();
                txn.after.clear();
                txn.locked.reload()?;
                txn.dirty = false;
                txn.tick()?;
                txn.commit()?;
                Err(e)
            }
        }
    }
}

/// One transaction on the state.
pub struct Txn<'a> {
    ec2: &'a Ec2,
    locked: Locked,
    dirty: bool,
    after: Vec<After>,
    created: Vec<PathBuf>,
}

/// Work done once the state is written, still under the lock.
enum After {
    /// A file the state no longer references.
    Remove(PathBuf),
    /// A deleted snapshot: its manifest and the chunks no remaining
    /// snapshot uses.
    Sweep {
        snapshot: String,
        remaining: Vec<String>,
    },
}

impl<'a> Txn<'a> {
    /// The virtual now.
    pub fn now(&self) -> Millis {
        self.locked.now
    }

    /// The state (read only).
    pub fn state(&self) -> &State {
        &self.locked.state
    }

    /// The state, for a change that will be written (marks the transaction
    /// dirty).
    pub fn state_mut(&mut self) -> &mut State {
        self.dirty = true;
        &mut self.locked.state
    }

    /// Marks the transaction as changed, so the state is written.
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// The state directory.
    pub fn home(&self) -> &Home {
        self.locked.home()
    }

    /// The cloud's settings.
    pub fn ec2(&self) -> &Ec2 {
        self.ec2
    }

    /// The region of this request.
    pub fn region(&self) -> &str {
        &self.ec2.region
    }

    /// The timing table.
    pub fn timing(&self) -> &Timing {
        &self.ec2.timing
    }

    /// Moves the virtual clock forward and applies what became due.
    pub fn advance(&mut self, ms: i64) -> Result<()> {
        self.locked.advance(ms);
        self.dirty = true;
        self.tick()
    }

    /// Deletes `path` once the state is written (files the state no longer
    /// references).
    pub fn remove_after_commit(&mut self, path: PathBuf) {
        self.after.push(After::Remove(path));
    }

    /// Records a file made for this transaction (a new volume's image, a
    /// snapshot's manifest): removed again if the transaction fails.
    pub(crate) fn created(&mut self, path: PathBuf) {
        self.created.push(path);
    }

    fn discard_created(&mut self) {
        for p in self.created.drain(..) {
            let _ = std::fs::remove_file(crate::blockdev::image::undo_log_path(&p));
            let _ = std::fs::remove_file(&p);
        }
    }

    /// Frees a deleted snapshot's unshared chunks once the state is written.
    pub(crate) fn sweep_after_commit(&mut self, snapshot: String, remaining: Vec<String>) {
        self.after.push(After::Sweep {
            snapshot,
            remaining,
        });
    }

    fn commit(&mut self) -> Result<()> {
        if self.dirty {
            self.locked.save()?;
            self.dirty = false;
        }
        for a in std::mem::take(&mut self.after) {
            match a {
                After::Remove(p) => {
                    for f in [crate::blockdev::image::undo_log_path(&p), p] {
                        match std::fs::remove_file(&f) {
                            Ok(()) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                            Err(e) => return Err(Error::io(&f, "remove", e)),
                        }
                    }
                }
                After::Sweep {
                    snapshot,
                    remaining,
                } => {
                    snapshots::sweep(self.home(), &snapshot, &remaining)?;
                }
            }
        }
        Ok(())
    }

    /// A new id with this prefix, unused in the state.
    pub(crate) fn new_id(&self, prefix: &str) -> String {
        loop {
            let id = ids::random_id(prefix);
            let s = self.state();
            let taken = s.volumes.contains_key(&id)
                || s.snapshots.contains_key(&id)
                || s.instances.contains_key(&id)
                || s.images.contains_key(&id);
            if !taken {
                return id;
            }
        }
    }
}
