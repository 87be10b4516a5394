//! The cloud model: volumes and their types and rules,
//! ModifyVolume on a virtual clock, snapshots in a content-addressed chunk
//! store, instances with their guest device names, AMIs and the built-in
//! catalog, all kept in one state document under `EBSIM_HOME`.
//!
//! Marks on the documented AWS texts and rules: [V] verified against AWS's
//! documentation or an error AWS really returned; [U] taken from another
//! emulator or inferred, to check against AWS before relying on it.
//!
//! No bytes of images are parsed here: volumes are sparse image files that
//! this layer creates, grows (`ImageFile::set_len`), copies into snapshot
//! chunks and restores, through the blockdev layer's one write path.
//!
//! Every operation runs inside a transaction ([`Ec2::transact`]): the
//! state is locked and read, whatever a crashed transaction left behind is
//! finished or removed (`sweep.rs`), the clock is read, every timed
//! transition that is due is applied ([`Txn::tick`]), the operation runs
//! (checking everything that can fail before it changes anything, and
//! making new files in a staging directory), and the state is written back
//! if anything changed, the staged files published right after.

pub mod boot;
pub mod catalog;
pub mod clock;
mod error;
mod esp;
pub mod filter;
pub mod group;
pub mod guest;
mod ids;
pub mod images;
pub mod instance_types;
pub mod instances;
pub mod model;
pub mod network;
pub mod release;
pub mod rootfs;
pub mod snapshots;
pub mod store;
mod sweep;
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
use store::Locked;
use time::{HOUR, MINUTE, Millis, SECOND};

/// The rate rule of ModifyVolume. AWS replaced the six-hour cooldown by
/// "four per rolling 24 hours, each after the previous one completed"; a
/// ModifyVolume that changes nothing still counts.
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
    /// The rule `EBSIM_MODIFY_RATE` sets (its value, read by the caller):
    /// `4-per-24h` (default) or `cooldown-6h`.
    pub fn from_setting(value: Option<&str>) -> Result<RatePolicy> {
        match value {
            None => Ok(RatePolicy::FourPer24h),
            Some(v) => match v.trim() {
                "" | "4-per-24h" | "4_per_24h" | "current" => Ok(RatePolicy::FourPer24h),
                "cooldown-6h" | "cooldown_6h" | "6h" | "legacy" => Ok(RatePolicy::Cooldown6h),
                _ => Err(Error::BadSetting {
                    var: RATE_ENV.to_string(),
                    value: v.to_string(),
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
    /// `optimizing` per GiB of data on the volume (AWS documents about
    /// 6 h for a fully used TiB).
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
    /// How long after reaching `running` the status checks stay
    /// `initializing` before they pass (DescribeInstanceStatus).
    pub status_initializing: i64,
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
            status_initializing: MINUTE,
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
    group: Option<std::sync::Arc<group::Group>>,
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
            group: None,
        }
    }

    /// Runs this cloud's transactions in `group`'s group commits (see
    /// [`group::Group`]): for a process that serves many requests at once.
    pub fn with_group(mut self, g: std::sync::Arc<group::Group>) -> Self {
        self.group = Some(g);
        self
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
    /// Before anything else, whatever a crashed transaction left is
    /// finished or removed (`sweep.rs`). On a read-only home the state is
    /// read under a shared lock, the due transitions are applied in memory
    /// only (describe shows them, nothing is saved), and `f` fails with
    /// [`Error::ReadOnlyHome`] if it changes anything.
    pub fn transact<T>(&self, f: impl FnOnce(&mut Txn<'_>) -> Result<T>) -> Result<T> {
        let (v, boots_due) = self.transact_one(f)?;
        if boots_due {
            self.run_boots();
        }
        Ok(v)
    }

    /// The boots the last transaction made due, claimed in a transaction
    /// of their own and run with the state unlocked (an image is opened
    /// read-write only outside the state lock). What a boot cannot do is
    /// what a real boot would log and go on from: nothing is reported.
    fn run_boots(&self) {
        let (jobs, booted) = match self.transact_one(|t| Ok(t.claim_boots())) {
            Ok((jobs, _)) => jobs,
            Err(_) => return,
        };
        for job in jobs {
            let _ = boot::run(&job);
        }
        // Then the guest's fstab, as systemd mounts it after the root.
        for id in booted {
            let failure = boot::fstab_failure(self, &id);
            let _ = self.transact_one(|t| {
                t.set_boot_failure(&id, failure);
                Ok(())
            });
        }
    }

    /// One transaction, alone or in this cloud's group commit.
    fn transact_one<T>(&self, f: impl FnOnce(&mut Txn<'_>) -> Result<T>) -> Result<(T, bool)> {
        match &self.group {
            Some(g) => g.run(&self.region, f),
            None => self.transact_once(f),
        }
    }

    /// One transaction; also says whether it left boots due (never on a
    /// read-only home, which cannot claim them).
    fn transact_once<T>(&self, f: impl FnOnce(&mut Txn<'_>) -> Result<T>) -> Result<(T, bool)> {
        let locked = Locked::acquire(&self.home, self.mode)?;
        let mut txn = Txn::open(Cloud::Borrowed(self), locked)?;
        match f(&mut txn) {
            Ok(v) => txn.commit_all().map(|due| (v, due)),
            Err(e) => {
                if txn.undo_failed() {
                    let _ = txn.commit();
                }
                Err(e)
            }
        }
    }
}

impl<'a> Txn<'a> {
    /// Starts a transaction on the locked state: whatever a crashed
    /// transaction left is finished or removed, then the clock's due
    /// transitions are applied.
    fn open(ec2: Cloud<'a>, mut locked: Locked) -> Result<Txn<'a>> {
        if locked.read_only().is_none() {
            let home = locked.home().clone();
            sweep::recover(&home, &mut locked.state)?;
            if !locked.from_cache() {
                // A process (or the machine) may have died since the last
                // commit: a new empty image it had not synced is made again.
                sweep::restore_empty_images(&home, &locked.state)?;
            }
        }
        let mut txn = Txn {
            ec2,
            locked,
            dirty: false,
            touched: false,
            after: Vec::new(),
            stage: None,
            fresh: Vec::new(),
        };
        txn.tick()?;
        if txn.read_only() {
            // Shown, not saved (nor the files they would remove): the next
            // writable transaction applies them.
            txn.dirty = false;
            txn.after.clear();
        } else if txn.locked.state.upgraded {
            // Written once in this version (its sweep is done).
            txn.dirty = true;
        }
        Ok(txn)
    }

    /// Commits; says whether boots are due (never on a read-only home,
    /// which cannot claim them). On failure the staged files go too.
    fn commit_all(&mut self) -> Result<bool> {
        let due = !self.read_only() && self.state().instances.values().any(|i| i.boot_due);
        match self.commit() {
            Ok(()) => Ok(due),
            Err(e) => {
                // The state was not written: the files made for it are
                // nobody's.
                self.discard_stage();
                Err(e)
            }
        }
    }

    /// After a failed operation: drops whatever it changed (its staged
    /// files, its work after the commit, and its changes to the document,
    /// read again; the lock is still held), then applies the clock's
    /// transitions again (they are idempotent: an image already grown is
    /// grown to the same size again), for the caller to commit. If the
    /// document cannot be read again, nothing is left to commit, and false
    /// says the state in memory is not the committed one.
    fn undo_failed(&mut self) -> bool {
        self.discard_stage();
        self.after.clear();
        if self.read_only() {
            return false;
        }
        self.dirty = false;
        if self.locked.reload().is_err() {
            return false;
        }
        if self.tick().is_err() {
            self.dirty = false;
            return false;
        }
        true
    }
}

/// One transaction on the state.
pub struct Txn<'a> {
    ec2: Cloud<'a>,
    locked: Locked,
    dirty: bool,
    /// Whether the operation running changed the state, the clock or the
    /// work queued after the commit (staged files do not count: a failed
    /// operation's are nobody's): a group commit undoes a failed
    /// operation's changes only then.
    touched: bool,
    after: Vec<After>,
    stage: Option<String>,
    /// Volumes whose empty image this transaction made in place
    /// ([`Txn::create_empty_image`]): removed if the state is not saved.
    fresh: Vec<String>,
}

/// The cloud a transaction acts for: the caller's, or (in a group commit,
/// where the transaction outlives each request) one the group keeps.
enum Cloud<'a> {
    Borrowed(&'a Ec2),
    Shared(std::sync::Arc<Ec2>),
}

impl Cloud<'_> {
    fn get(&self) -> &Ec2 {
        match self {
            Cloud::Borrowed(e) => e,
            Cloud::Shared(e) => e,
        }
    }
}

/// Work done once the state is written, still under the lock. It cannot
/// undo the commit, so it never fails the command: whatever it cannot do
/// is left for the next transaction's recovery.
enum After {
    /// A deleted volume's image and its undo log.
    RemoveImage(String),
    /// A deleted snapshot: the chunks no remaining snapshot uses (None:
    /// unknown, its manifest was damaged; a full sweep finds them), then
    /// its manifest.
    Free {
        snapshot: String,
        chunks: Option<Vec<String>>,
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
        self.touched = true;
        &mut self.locked.state
    }

    /// Forgets every resource of the account, in every region (the
    /// moto-compatible reset): volumes, modifications, snapshots,
    /// instances and images. The clock and Amazon's catalog snapshots
    /// stay. The files of what went are removed by the sweep at the start
    /// of the next writable transaction, exactly as after a crash.
    pub fn reset_resources(&mut self) {
        let st = self.state_mut();
        st.volumes.clear();
        st.modifications.clear();
        st.instances.clear();
        st.images.clear();
        st.snapshots.retain(|_, s| s.catalog_build.is_some());
    }

    /// Marks the transaction as changed, so the state is written.
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
        self.touched = true;
    }

    /// The state directory.
    pub fn home(&self) -> &Home {
        self.locked.home()
    }

    /// Whether EBSIM_HOME cannot be written (this transaction only reads).
    pub fn read_only(&self) -> bool {
        self.locked.read_only().is_some()
    }

    /// The cloud's settings.
    pub fn ec2(&self) -> &Ec2 {
        self.ec2.get()
    }

    /// The region of this request.
    pub fn region(&self) -> &str {
        &self.ec2.get().region
    }

    /// The timing table.
    pub fn timing(&self) -> &Timing {
        &self.ec2.get().timing
    }

    /// Moves the virtual clock forward and applies what became due. The
    /// clock stops at [`time::LATEST`] (the last instant AWS tools can
    /// print): an advance past it is refused and changes nothing.
    pub fn advance(&mut self, ms: i64) -> Result<()> {
        let ms = ms.max(0);
        let left = time::LATEST.since(self.now()).max(0);
        if ms > left {
            return Err(Error::ClockLimit {
                by: ms,
                now: self.now(),
                left,
            });
        }
        self.locked.advance(ms);
        self.dirty = true;
        self.touched = true;
        self.tick()
    }

    /// Brings the virtual clock back to the real time, moving every
    /// timestamp of the state by the same amount (pending transitions keep
    /// the time they have left). Returns the shift in milliseconds.
    pub fn reset_clock(&mut self) -> Result<i64> {
        let target = Millis(self.locked.real_ms()).min(time::LATEST);
        let shift = target.since(self.now());
        self.state_mut().shift_times(shift);
        self.locked.set_now(target);
        Ok(shift)
    }

    /// Removes a volume's image once the state no longer names it.
    pub(crate) fn remove_image_after_commit(&mut self, volume_id: String) {
        self.touched = true;
        self.after.push(After::RemoveImage(volume_id));
    }

    /// Frees a deleted snapshot's unshared chunks (as planned before the
    /// change) and its manifest once the state is written.
    pub(crate) fn free_after_commit(&mut self, snapshot: String, chunks: Option<Vec<String>>) {
        self.touched = true;
        self.after.push(After::Free { snapshot, chunks });
    }

    /// This transaction's staging directory, made on first use: every new
    /// file goes there and is published when the state commits.
    pub(crate) fn stage(&mut self) -> Result<snapshots::Stage> {
        if let Some(e) = self.locked.read_only_error() {
            return Err(e);
        }
        let id = match &self.stage {
            Some(t) => t.clone(),
            None => {
                let t = ids::random_hex();
                let dir = self.home().staging_dir().join(&t);
                std::fs::create_dir_all(&dir)
                    .map_err(|e| Error::io(&dir, "create directory", e))?;
                self.stage = Some(t.clone());
                t
            }
        };
        Ok(snapshots::Stage::at(self.home().staging_dir().join(id)))
    }

    /// Makes the image of a new volume that holds only zeros (no
    /// snapshot) in place, `volumes/<id>.img`: an empty sparse file of
    /// `len` bytes, neither staged nor synced. Its bytes follow from the
    /// state (the volume's size), so what makes it durable is the commit
    /// of the state naming the volume: if a crash loses the file (or its
    /// length), the next transaction makes it again
    /// ([`sweep::restore_empty_images`]), and nothing can have been written
    /// into it meanwhile (the image layer syncs the directory, with its
    /// undo log, before its first write). False when the host cannot hold
    /// a file that long (the caller makes a segmented image instead).
    pub(crate) fn create_empty_image(&mut self, id: &str, len: u64) -> Result<bool> {
        if let Some(e) = self.locked.read_only_error() {
            return Err(e);
        }
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.home().volume_image(id);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| Error::io(&path, "create", e))?;
        match f.set_len(len) {
            Ok(()) => {
                self.fresh.push(id.to_string());
                Ok(true)
            }
            Err(e) => {
                drop(f);
                let _ = std::fs::remove_file(&path);
                if e.raw_os_error() == Some(nix::libc::EFBIG) {
                    Ok(false)
                } else {
                    Err(Error::io(&path, "set length", e))
                }
            }
        }
    }

    fn discard_stage(&mut self) {
        for id in std::mem::take(&mut self.fresh) {
            let _ = std::fs::remove_file(self.home().volume_image(&id));
        }
        if let Some(t) = self.stage.take() {
            let dir = self.home().staging_dir().join(t);
            sweep::remove_tree_contents(&dir);
            let _ = std::fs::remove_dir(&dir);
            let _ = std::fs::remove_dir(self.home().staging_dir());
        }
    }

    fn commit(&mut self) -> Result<()> {
        if let Some(e) = self.locked.read_only_error() {
            if self.dirty || self.stage.is_some() || !self.after.is_empty() {
                return Err(e);
            }
            return Ok(());
        }
        if let Some(t) = &self.stage {
            // Staged files durable before the document that names them.
            sweep::sync_stage(self.home(), t)?;
            self.locked.state.publish = Some(t.clone());
            self.dirty = true;
        }
        if self.dirty {
            self.locked.save()?;
            self.dirty = false;
        }
        // Committed: from here on nothing fails the command.
        self.fresh.clear();
        self.locked.state.upgraded = false;
        let home = self.home().clone();
        if let Some(t) = self.stage.take() {
            match sweep::publish(&home, &t, store::publish_fault()) {
                Ok(superseded) => {
                    self.locked.state.publish = None;
                    let _ = std::fs::remove_dir(home.staging_dir());
                    if superseded {
                        let _ = sweep::recover(&home, &mut self.locked.state);
                    }
                }
                Err(e @ Error::InjectedPublishFault(_)) => return Err(e),
                Err(_) => {}
            }
        }
        for a in std::mem::take(&mut self.after) {
            match a {
                After::RemoveImage(id) => {
                    // The log's name is found while the image is there,
                    // and only a log inside volumes/ is removed (the image
                    // layer keeps a link's log beside its target).
                    let p = home.volume_image(&id);
                    let log = crate::blockdev::image::undo_log_path(&p);
                    if crate::blockdev::segmented::is_segmented(&p) {
                        let _ = crate::blockdev::segmented::remove(&p);
                    } else {
                        let _ = std::fs::remove_file(&p);
                    }
                    if log.parent() == Some(home.volumes_dir().as_path()) {
                        let _ = std::fs::remove_file(log);
                    }
                }
                After::Free {
                    snapshot,
                    chunks: Some(chunks),
                } => snapshots::free(&home, &snapshot, &chunks),
                After::Free { chunks: None, .. } => {
                    let _ = sweep::recover(&home, &mut self.locked.state);
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
