//! CreateTags: tags on volumes, snapshots, instances and images. Every
//! resource is checked first (`InvalidID` for one that is not there, by
//! its id's prefix), then DryRun answers, then the tags are set: a key
//! already there takes the new value.

use super::Txn;
use super::error::{ApiError, Result};
use super::model::Tag;

impl Txn<'_> {
    /// CreateTags on `resources`.
    pub fn create_tags(&mut self, resources: &[String], tags: &[Tag], dry_run: bool) -> Result<()> {
        for r in resources {
            let ok = if r.starts_with("vol-") {
                self.volume(r).is_ok()
            } else if r.starts_with("snap-") {
                self.snapshot(r).is_ok()
            } else if r.starts_with("i-") {
                self.instance(r).is_ok()
            } else if r.starts_with("ami-") {
                self.state().images.contains_key(r)
            } else {
                false
            };
            if !ok {
                return Err(
                    ApiError::new("InvalidID", format!("The ID '{r}' is not valid")).into(),
                );
            }
        }
        if dry_run {
            return Err(ApiError::dry_run_ok().into());
        }
        let st = self.state_mut();
        for r in resources {
            let list = if let Some(v) = st.volumes.get_mut(r) {
                &mut v.tags
            } else if let Some(s) = st.snapshots.get_mut(r) {
                &mut s.tags
            } else if let Some(i) = st.instances.get_mut(r) {
                &mut i.tags
            } else if let Some(i) = st.images.get_mut(r) {
                &mut i.tags
            } else {
                continue;
            };
            for tag in tags {
                match list.iter_mut().find(|x| x.key == tag.key) {
                    Some(x) => x.value = tag.value.clone(),
                    None => list.push(tag.clone()),
                }
            }
        }
        Ok(())
    }
}
