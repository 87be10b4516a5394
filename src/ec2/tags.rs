//! Tags: EC2's rules for keys, values and how many a resource holds, for
//! CreateTags and for the tags given when a resource is created
//! (`--tag-specifications`).
//!
//! - a key is 1 to 128 characters, a value at most 256 (Unicode
//!   characters, not bytes; an empty value is a tag with no value);
//! - keys starting with `aws:` are AWS's own (case-sensitive: `AWS:x` is an
//!   ordinary key);
//! - a resource holds at most 50 tags, counted after the request's tags are
//!   merged with the ones it has (a key it already has replaces the value
//!   and adds nothing).
//!
//! Every tag is checked before anything is changed. Codes and messages:
//! `InvalidParameterValue` "Value ( '' ) for parameter Tag key is invalid.
//! Tag key cannot be null or empty." (EC2's answer to `Key=,Value=x`, as
//! reported by aws-cli users), `InvalidParameterValue` "Tag key exceeds the maximum length of 128
//! characters" / "Tag value exceeds the maximum length of 256 characters"
//! (the value's wording seen from EC2; the key's by the same pattern),
//! `InvalidParameterValue` "Tag keys starting with 'aws:' are reserved for
//! internal use" (seen from EC2), and `TagLimitExceeded` "The maximum
//! number of Tags for a resource has been reached." (the code is EC2's
//! documented one; the message is unverified).

use super::error::ApiError;
use super::filter::{self, Filter};
use super::model::{OWNER_ID, Tag, region_of};
use super::{Result, Txn};

/// Tags one resource can hold.
pub const MAX_TAGS: usize = 50;
/// Characters in a key.
pub const MAX_KEY: usize = 128;
/// Characters in a value.
pub const MAX_VALUE: usize = 256;
/// The prefix reserved for AWS.
pub const RESERVED_PREFIX: &str = "aws:";

/// Checks each tag's key and value.
pub fn check(tags: &[Tag]) -> std::result::Result<(), ApiError> {
    for t in tags {
        if t.key.is_empty() {
            return Err(ApiError::invalid_value(
                "Value ( '' ) for parameter Tag key is invalid. Tag key cannot be null or empty.",
            ));
        }
        if t.key.chars().count() > MAX_KEY {
            return Err(ApiError::invalid_value(format!(
                "Tag key exceeds the maximum length of {MAX_KEY} characters"
            )));
        }
        if t.value.chars().count() > MAX_VALUE {
            return Err(ApiError::invalid_value(format!(
                "Tag value exceeds the maximum length of {MAX_VALUE} characters"
            )));
        }
        if t.key.starts_with(RESERVED_PREFIX) {
            return Err(ApiError::invalid_value(
                "Tag keys starting with 'aws:' are reserved for internal use",
            ));
        }
    }
    Ok(())
}

/// Checks that `existing` merged with `new` stays within [`MAX_TAGS`].
pub fn check_count(existing: &[Tag], new: &[Tag]) -> std::result::Result<(), ApiError> {
    let mut keys: std::collections::BTreeSet<&str> =
        existing.iter().map(|t| t.key.as_str()).collect();
    keys.extend(new.iter().map(|t| t.key.as_str()));
    if keys.len() > MAX_TAGS {
        return Err(ApiError::new(
            "TagLimitExceeded",
            "The maximum number of Tags for a resource has been reached.",
        ));
    }
    Ok(())
}

/// The tags given when creating a resource: each checked, and no more
/// than one resource holds.
pub fn check_new(tags: &[Tag]) -> std::result::Result<(), ApiError> {
    check(tags)?;
    check_count(&[], tags)
}

/// Adds `new` to `list`, replacing the value of a key already there.
pub fn merge(list: &mut Vec<Tag>, new: &[Tag]) {
    for tag in new {
        match list.iter_mut().find(|x| x.key == tag.key) {
            Some(x) => x.value = tag.value.clone(),
            None => list.push(tag.clone()),
        }
    }
}

/// Filters of DescribeTags.
pub const TAG_FILTERS: &[&str] = &["key", "value", "resource-id", "resource-type"];

/// One tag of one resource, as DescribeTags lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagDescription {
    /// The resource.
    pub resource_id: String,
    /// `volume`, `snapshot`, `instance` or `image`.
    pub resource_type: &'static str,
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
}

impl Txn<'_> {
    /// CreateTags: checks every tag, that every resource exists, and that
    /// none would hold more than [`MAX_TAGS`], before tagging any.
    pub fn create_tags(&mut self, resources: &[String], tags: &[Tag], dry_run: bool) -> Result<()> {
        check(tags)?;
        self.check_resources(resources)?;
        if dry_run {
            return Err(ApiError::dry_run_ok().into());
        }
        for r in resources {
            check_count(self.tags_of(r), tags)?;
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
            merge(list, tags);
        }
        Ok(())
    }

    /// Every resource exists: a well-formed id of nothing is that type's
    /// NotFound, as AWS answers; anything else is not an id.
    fn check_resources(&self, resources: &[String]) -> Result<()> {
        for r in resources {
            let (known, not_found): (bool, fn(&str) -> ApiError) =
                if super::ids::well_formed(r, "vol") {
                    (self.volume(r).is_ok(), ApiError::volume_not_found)
                } else if super::ids::well_formed(r, "snap") {
                    (self.snapshot(r).is_ok(), ApiError::snapshot_not_found)
                } else if super::ids::well_formed(r, "i") {
                    (self.instance(r).is_ok(), ApiError::instance_not_found)
                } else if super::ids::well_formed(r, "ami") {
                    (
                        self.state().images.contains_key(r),
                        ApiError::image_not_found,
                    )
                } else {
                    return Err(
                        ApiError::new("InvalidID", format!("The ID '{r}' is not valid")).into(),
                    );
                };
            if !known {
                return Err(not_found(r).into());
            }
        }
        Ok(())
    }

    /// DeleteTags: for each resource, removes the tags with the keys given
    /// (only where the value matches, when a value is given: an empty
    /// value matches only an empty value), or every tag when no tag is
    /// given. Keys starting `aws:` cannot be removed.
    pub fn delete_tags(
        &mut self,
        resources: &[String],
        tags: &[(String, Option<String>)],
        dry_run: bool,
    ) -> Result<()> {
        if resources.is_empty() {
            return Err(ApiError::new(
                "MissingParameter",
                "The request must contain the parameter resourceIdSet",
            )
            .into());
        }
        if let Some((k, _)) = tags.iter().find(|(k, _)| k.starts_with("aws:")) {
            return Err(ApiError::invalid_value(format!(
                "Value ( {k} ) for parameter key is invalid. Tag keys starting with 'aws:' are reserved for internal use"
            ))
            .into());
        }
        self.check_resources(resources)?;
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
            if tags.is_empty() {
                list.retain(|t| t.key.starts_with("aws:"));
            } else {
                list.retain(|t| {
                    !tags
                        .iter()
                        .any(|(k, v)| *k == t.key && v.as_ref().is_none_or(|v| *v == t.value))
                });
            }
        }
        Ok(())
    }

    /// DescribeTags: every tag of the region's resources the account owns,
    /// by resource id then key (the order EC2 lists them in), filtered by `key`, `value`, `resource-id`,
    /// `resource-type` and `tag:KEY`.
    pub fn describe_tags(&self, filters: &[Filter]) -> Result<Vec<TagDescription>> {
        filter::check_names(filters, TAG_FILTERS)?;
        let st = self.state();
        let region = self.region();
        let mut all: Vec<(&str, &'static str, &[Tag])> = Vec::new();
        for v in st.volumes.values().filter(|v| region_of(&v.az) == region) {
            all.push((&v.id, "volume", &v.tags));
        }
        for s in st
            .snapshots
            .values()
            .filter(|s| region_of(&s.az) == region && s.owner_id == OWNER_ID)
        {
            all.push((&s.id, "snapshot", &s.tags));
        }
        for i in st.instances.values().filter(|i| region_of(&i.az) == region) {
            all.push((&i.id, "instance", &i.tags));
        }
        for i in st
            .images
            .values()
            .filter(|i| i.region == region && i.owner_id == OWNER_ID)
        {
            all.push((&i.id, "image", &i.tags));
        }
        all.sort_by(|a, b| a.0.cmp(b.0));
        let mut out = Vec::new();
        for (id, rt, tags) in all {
            let mut sorted: Vec<&Tag> = tags.iter().collect();
            sorted.sort_by(|a, b| a.key.cmp(&b.key));
            for t in sorted {
                let ok = filter::matches(filters, |name| {
                    let one = |v: &str| Some(vec![v.to_string()]);
                    match name {
                        "key" => one(&t.key),
                        "value" => one(&t.value),
                        "resource-id" => one(id),
                        "resource-type" => one(rt),
                        n => filter::tag_values(n, tags),
                    }
                })?;
                if ok {
                    out.push(TagDescription {
                        resource_id: id.to_string(),
                        resource_type: rt,
                        key: t.key.clone(),
                        value: t.value.clone(),
                    });
                }
            }
        }
        Ok(out)
    }

    fn tags_of(&self, id: &str) -> &[Tag] {
        let s = self.state();
        if let Some(v) = s.volumes.get(id) {
            &v.tags
        } else if let Some(v) = s.snapshots.get(id) {
            &v.tags
        } else if let Some(v) = s.instances.get(id) {
            &v.tags
        } else if let Some(v) = s.images.get(id) {
            &v.tags
        } else {
            &[]
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            key: k.to_string(),
            value: v.to_string(),
        }
    }

    #[test]
    fn limits() {
        let k128 = "é".repeat(128);
        let v256 = "é".repeat(256);
        assert!(check(&[tag(&k128, &v256)]).is_ok(), "characters, not bytes");
        let e = check(&[tag(&format!("{k128}x"), "")]).unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
        assert_eq!(
            e.message,
            "Tag key exceeds the maximum length of 128 characters"
        );
        let e = check(&[tag("k", &format!("{v256}x"))]).unwrap_err();
        assert_eq!(
            e.message,
            "Tag value exceeds the maximum length of 256 characters"
        );
        let e = check(&[tag("k", ""), tag("", "v")]).unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
        assert_eq!(
            e.message,
            "Value ( '' ) for parameter Tag key is invalid. Tag key cannot be null or empty."
        );
        assert!(check(&[tag("k", "")]).is_ok(), "an empty value is fine");
        let e = check(&[tag("aws:x", "")]).unwrap_err();
        assert_eq!(
            e.message,
            "Tag keys starting with 'aws:' are reserved for internal use"
        );
        assert!(check(&[tag("AWS:x", "")]).is_ok());
        let fifty: Vec<Tag> = (0..50).map(|i| tag(&format!("k{i}"), "")).collect();
        assert!(
            check_count(&fifty, &fifty).is_ok(),
            "replacing adds nothing"
        );
        assert_eq!(
            check_count(&fifty, &[tag("new", "")]).unwrap_err().code,
            "TagLimitExceeded"
        );
    }
}
