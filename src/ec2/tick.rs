//! The clock's transitions: everything timed that is due at the
//! transaction's now is applied, in time order. Each transition is
//! idempotent on the files it touches, so a crash between growing an image
//! and writing the state only makes the next transaction grow it again to
//! the same size.

use super::Txn;
use super::error::Result;
use super::model::{AttachState, InstanceState, ModState, SnapState, VolumeState};
use super::store::open_volume_image;
use super::time::{DAY, Millis};
use crate::blockdev::image::Access;

/// One due transition.
#[derive(Debug, Clone)]
enum Event {
    VolumeReady(String),
    AttachDone(String, String),
    DetachDone(String, String),
    /// A forced detach waiting for the guest to unmount the volume.
    BusyDetach(String, String),
    ModOptimizing(usize),
    ModCompleted(usize),
    SnapshotDone(String),
    InstanceNext(String),
    InstanceGone(String),
    ImageReady(String),
}

impl Txn<'_> {
    /// Applies every transition due at the transaction's now.
    pub fn tick(&mut self) -> Result<()> {
        // Each round applies the transitions due from the current states;
        // a transition may make another one due (optimizing, then completed
        // in the same advance), hence the loop. Every event moves something
        // forward, so this ends.
        for _ in 0..10_000 {
            let mut due = self.due_events();
            if due.is_empty() {
                break;
            }
            due.sort_by_key(|(t, _)| *t);
            for (at, ev) in due {
                self.apply(at, ev)?;
            }
        }
        self.prune_modifications();
        Ok(())
    }

    /// Every timed transition still to come, due or not, in the order of
    /// the state (volumes and their attachments, modifications, snapshots,
    /// instances, images).
    fn scheduled(&self) -> Vec<(Millis, Event)> {
        let s = self.state();
        let mut out = Vec::new();
        for v in s.volumes.values() {
            if v.state == VolumeState::Creating {
                out.push((v.ready_at, Event::VolumeReady(v.id.clone())));
            }
            for a in &v.attachments {
                let ids = (v.id.clone(), a.instance_id.clone());
                match a.state {
                    AttachState::Attaching => out.push((a.until, Event::AttachDone(ids.0, ids.1))),
                    AttachState::Detaching => out.push((a.until, Event::DetachDone(ids.0, ids.1))),
                    AttachState::Busy => out.push((a.until, Event::BusyDetach(ids.0, ids.1))),
                    AttachState::Attached => {}
                }
            }
        }
        for (i, m) in s.modifications.iter().enumerate() {
            match m.state {
                ModState::Modifying => out.push((m.optimizing_at, Event::ModOptimizing(i))),
                ModState::Optimizing => out.push((m.completed_at, Event::ModCompleted(i))),
                _ => {}
            }
        }
        for sn in s.snapshots.values() {
            if sn.state == SnapState::Pending {
                out.push((sn.complete_at, Event::SnapshotDone(sn.id.clone())));
            }
        }
        for inst in s.instances.values() {
            match inst.state {
                InstanceState::Pending | InstanceState::Stopping | InstanceState::ShuttingDown => {
                    out.push((inst.until, Event::InstanceNext(inst.id.clone())));
                }
                InstanceState::Terminated => {
                    out.push((inst.until, Event::InstanceGone(inst.id.clone())));
                }
                _ => {}
            }
        }
        for img in s.images.values() {
            if img.state == "pending" {
                out.push((img.available_at, Event::ImageReady(img.id.clone())));
            }
        }
        out
    }

    fn due_events(&self) -> Vec<(Millis, Event)> {
        let now = self.now();
        let s = self.state();
        self.scheduled()
            .into_iter()
            .filter(|(at, ev)| {
                *at <= now
                    && match ev {
                        // Stuck until the guest unmounts it.
                        Event::BusyDetach(vid, iid) => !s
                            .instances
                            .get(iid)
                            .is_some_and(|i| i.mounts.iter().any(|m| m.volume_id == *vid)),
                        _ => true,
                    }
            })
            .collect()
    }

    /// The timed transitions still to come that a user waits for, soonest
    /// first, each with what it will do (`vol-1 modifying -> optimizing (16
    /// GiB visible)`): what `ebsim clock` shows.
    pub fn upcoming(&self) -> Vec<(Millis, String)> {
        let s = self.state();
        let mut v: Vec<(Millis, String)> = self
            .scheduled()
            .into_iter()
            .filter_map(|(at, ev)| {
                let what = match ev {
                    Event::VolumeReady(id) => format!("{id} creating -> available"),
                    Event::AttachDone(v, i) => format!("{v} attaching -> attached ({i})"),
                    Event::DetachDone(v, i) => format!("{v} detaching -> detached ({i})"),
                    Event::BusyDetach(v, i) => format!("{v} busy: still mounted in {i}"),
                    Event::ModOptimizing(k) => {
                        let m = s.modifications.get(k)?;
                        format!(
                            "{} modifying -> optimizing ({} GiB visible)",
                            m.volume_id, m.target_size
                        )
                    }
                    Event::ModCompleted(k) => {
                        format!(
                            "{} optimizing -> completed",
                            s.modifications.get(k)?.volume_id
                        )
                    }
                    Event::SnapshotDone(id) => format!("{id} pending -> completed"),
                    Event::InstanceNext(id) => {
                        let next = match s.instances.get(&id)?.state {
                            InstanceState::Pending => "pending -> running",
                            InstanceState::Stopping => "stopping -> stopped",
                            _ => "shutting-down -> terminated",
                        };
                        format!("{id} {next}")
                    }
                    Event::InstanceGone(_) | Event::ImageReady(_) => return None,
                };
                Some((at, what))
            })
            .collect();
        v.sort_by_key(|(at, _)| *at);
        v
    }

    fn apply(&mut self, at: Millis, ev: Event) -> Result<()> {
        match ev {
            Event::VolumeReady(id) => {
                if let Some(v) = self.state_mut().volumes.get_mut(&id) {
                    if v.state == VolumeState::Creating {
                        v.state = if v.attachments.is_empty() {
                            VolumeState::Available
                        } else {
                            VolumeState::InUse
                        };
                    }
                }
            }
            Event::AttachDone(vid, iid) => {
                if let Some(v) = self.state_mut().volumes.get_mut(&vid) {
                    for a in v.attachments.iter_mut().filter(|a| a.instance_id == iid) {
                        if a.state == AttachState::Attaching {
                            a.state = AttachState::Attached;
                        }
                    }
                }
            }
            Event::DetachDone(vid, iid) | Event::BusyDetach(vid, iid) => {
                self.finish_detach(&vid, &iid)
            }
            Event::ModOptimizing(i) => self.mod_optimizing(i, at)?,
            Event::ModCompleted(i) => {
                if let Some(m) = self.state_mut().modifications.get_mut(i) {
                    m.state = ModState::Completed;
                    m.end_time = Some(m.completed_at);
                }
            }
            Event::SnapshotDone(id) => {
                if let Some(sn) = self.state_mut().snapshots.get_mut(&id) {
                    sn.state = SnapState::Completed;
                }
            }
            Event::InstanceNext(id) => self.instance_next(&id, at)?,
            Event::InstanceGone(id) => {
                self.state_mut().instances.remove(&id);
            }
            Event::ImageReady(id) => {
                if let Some(img) = self.state_mut().images.get_mut(&id) {
                    img.state = "available".to_string();
                }
            }
        }
        Ok(())
    }

    /// Removes an attachment; the volume becomes available when it has no
    /// other, and the guest loses the disk and its mounts.
    pub(crate) fn finish_detach(&mut self, vid: &str, iid: &str) {
        let st = self.state_mut();
        let mut freed = None;
        if let Some(v) = st.volumes.get_mut(vid) {
            if let Some(pos) = v.attachments.iter().position(|a| a.instance_id == iid) {
                let a = v.attachments.remove(pos);
                freed = Some(a.guest.name);
            }
            if v.attachments.is_empty() && v.state == VolumeState::InUse {
                v.state = VolumeState::Available;
            }
        }
        if let (Some(inst), Some(name)) = (st.instances.get_mut(iid), freed) {
            inst.mounts.retain(|m| m.volume_id != vid);
            inst.free_blkext_minors(&name);
        }
    }

    /// The new size, type and performance take effect; the image grows.
    /// If the image cannot grow (the host filesystem's file size limit, a
    /// missing file), the modification ends `failed` with a status message
    /// and the volume keeps its configuration, as a failed modification
    /// does on AWS; the other transitions go on.
    fn mod_optimizing(&mut self, i: usize, at: Millis) -> Result<()> {
        let Some(m) = self.state().modifications.get(i).cloned() else {
            return Ok(());
        };
        let Some(v) = self.state().volumes.get(&m.volume_id).cloned() else {
            if let Some(m2) = self.state_mut().modifications.get_mut(i) {
                m2.state = ModState::Failed;
                m2.end_time = Some(at);
            }
            return Ok(());
        };
        let path = self.home().volume_image(&v.id);
        let want = m.target_size.saturating_mul(1 << 30);
        // A read-only home shows the transition without growing the image
        // (nothing is saved; the next writable transaction grows it).
        let grown = if self.read_only() {
            Ok(())
        } else if matches!(crate::fuse::control::info(&path), Ok(Some(_))) {
            // Served (a guest namespace has it mounted): its server holds
            // the image as the kernel holds a device, so the disk grows
            // under it as an EBS volume does under a running instance: the
            // file's new end is a hole, no byte is written; the server
            // reads the new size at its next grow.
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| {
                    if f.metadata()?.len() < want {
                        f.set_len(want)?;
                    }
                    Ok(())
                })
                .map_err(|e| crate::blockdev::Error::io(&path, "grow", e))
        } else {
            open_volume_image(&path, Access::ReadWrite).and_then(|mut img| {
                if crate::blockdev::BlockDevice::size(&img) < want {
                    img.set_len(want)?;
                }
                Ok(())
            })
        };
        let st = self.state_mut();
        match grown {
            Ok(()) => {
                if let Some(m2) = st.modifications.get_mut(i) {
                    m2.state = ModState::Optimizing;
                }
                if let Some(v) = st.volumes.get_mut(&m.volume_id) {
                    v.size = m.target_size;
                    v.volume_type = m.target_type;
                    v.iops = m.target_iops;
                    v.throughput = m.target_throughput;
                    v.multi_attach = m.target_multi_attach;
                }
            }
            Err(e) => {
                if let Some(m2) = st.modifications.get_mut(i) {
                    m2.state = ModState::Failed;
                    m2.end_time = Some(at);
                    m2.status_message =
                        Some(format!("ebsim could not grow the volume's image: {e}"));
                }
            }
        }
        Ok(())
    }

    /// pending → running, stopping → stopped, shutting-down → terminated.
    fn instance_next(&mut self, id: &str, at: Millis) -> Result<()> {
        let visible = self.timing().terminated_visible;
        let Some(state) = self.state().instances.get(id).map(|i| i.state) else {
            return Ok(());
        };
        match state {
            InstanceState::Pending => {
                if let Some(i) = self.state_mut().instances.get_mut(id) {
                    i.state = InstanceState::Running;
                    i.ever_running = true;
                    i.state_changed = at;
                }
                self.boot(id);
            }
            InstanceState::Stopping => {
                if let Some(i) = self.state_mut().instances.get_mut(id) {
                    i.state = InstanceState::Stopped;
                    i.state_changed = at;
                    // Mounts made by hand do not survive a stop; fstab ones
                    // come back at the next start.
                    i.mounts.retain(|m| m.fstab);
                }
            }
            InstanceState::ShuttingDown => self.terminate_now(id, at, visible)?,
            _ => {}
        }
        Ok(())
    }

    /// Detaches every volume, deletes those marked DeleteOnTermination
    /// (by default the root volume and the volumes a launch mapping marked),
    /// and marks the instance terminated.
    fn terminate_now(&mut self, id: &str, at: Millis, visible: i64) -> Result<()> {
        let attached: Vec<(String, bool)> = self
            .state()
            .attached_to(id)
            .iter()
            .map(|(v, a)| (v.id.clone(), a.delete_on_termination))
            .collect();
        for (vid, dot) in attached {
            self.finish_detach(&vid, id);
            if dot && self.state_mut().volumes.remove(&vid).is_some() {
                self.remove_image_after_commit(vid.clone());
            }
        }
        if let Some(i) = self.state_mut().instances.get_mut(id) {
            i.state = InstanceState::Terminated;
            i.state_changed = at;
            i.until = at.plus(visible);
            i.mounts.clear();
            i.blkext_minors.clear();
        }
        Ok(())
    }

    /// Keeps the last day of modifications (the rate rule's window) and the
    /// latest one of each volume.
    fn prune_modifications(&mut self) {
        let cutoff = self.now().plus(-DAY);
        let s = self.state();
        let mut keep = vec![false; s.modifications.len()];
        let mut seen = std::collections::HashSet::new();
        for (i, m) in s.modifications.iter().enumerate().rev() {
            let latest = seen.insert(m.volume_id.clone());
            let exists = s.volumes.contains_key(&m.volume_id);
            keep[i] =
                exists && (latest || m.start_time >= cutoff || m.state != ModState::Completed);
        }
        if keep.iter().all(|k| *k) {
            return;
        }
        let mut it = keep.into_iter();
        self.state_mut()
            .modifications
            .retain(|_| it.next().unwrap_or(true));
    }
}
