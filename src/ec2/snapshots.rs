//! Snapshots: a content-addressed store of 512 KiB chunks
//! beside the state, one manifest per snapshot.
//!
//! ```text
//! snapshots/chunks/ab/ab12...ef     one chunk, named by its SHA-256
//! snapshots/snap-0123....manifest   which chunk holds each chunk index
//! ```
//!
//! Taking a snapshot reads only the image's data ranges (holes are never
//! read), skips chunks that are all zeros, and stores a chunk only when no
//! snapshot has stored the same bytes before: so a snapshot taken after a
//! small change adds only the changed chunks, as EBS's incremental
//! snapshots do. New chunks and the manifest are written under the
//! transaction's staging directory and published when the state commits
//! (`sweep.rs`); a chunk's reference count is the number of committed
//! manifests naming it, counted when a snapshot is deleted, before the
//! state changes, so that a damaged manifest stops the deletion instead of
//! being found after it.
//!
//! Every chunk read back is checked against its name (the SHA-256 of its
//! bytes) and its length: a damaged chunk fails the restore with the chunk,
//! the snapshot and the offset named, and the half-made volume goes with
//! the transaction.
//!
//! Restoring creates a new sparse image (under the staging directory) and
//! writes only the stored chunks into it (and of those only their non-zero
//! 4 KiB blocks), through `ImageFile::commit`.

use super::Txn;
use super::error::{ApiError, Error, Result};
use super::filter::{self, Filter};
use super::model::{OWNER_ID, SnapState, Snapshot, State, Tag, region_of};
use super::store::{Home, open_volume_image, safe_name, sync_dir};
use super::types::VolumeType;
use crate::blockdev::image::{Access, ImageFile};
use crate::blockdev::{BlockDevice, WriteBatch};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Bytes per chunk (EBS snapshots track 512 KiB blocks).
pub const CHUNK: u64 = 512 * 1024;
/// Chunks written per commit when restoring (64 MiB: fewer fsync barriers,
/// bounded memory).
const RESTORE_BATCH: usize = 128;
const MANIFEST_MAGIC: &str = "ebsim-snapshot-manifest 1";

/// A snapshot's content: image size and, per chunk index, the chunk hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Size of the source image in bytes.
    pub size: u64,
    /// Chunk index → SHA-256 (hex) of its bytes.
    pub chunks: BTreeMap<u64, String>,
}

/// What taking a snapshot stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// Bytes of non-zero chunks in the snapshot.
    pub data_bytes: u64,
    /// Bytes of chunks that were new to the store.
    pub new_bytes: u64,
}

/// A transaction's staging directory (`staging/<txid>`), laid out as the
/// files will be published.
#[derive(Debug, Clone)]
pub(crate) struct Stage {
    dir: PathBuf,
}

impl Stage {
    /// The stage at `dir`.
    pub(crate) fn at(dir: PathBuf) -> Stage {
        Stage { dir }
    }

    /// Where a new volume's image is made.
    pub(crate) fn volume_image(&self, id: &str) -> PathBuf {
        self.dir
            .join("volumes")
            .join(format!("{}.img", safe_name(id)))
    }

    /// Where a new manifest is written.
    pub(crate) fn manifest(&self, id: &str) -> PathBuf {
        self.dir
            .join("snapshots")
            .join(format!("{}.manifest", safe_name(id)))
    }

    /// Where a new chunk is written.
    pub(crate) fn chunk(&self, hash: &str) -> PathBuf {
        self.dir.join("chunks").join(safe_name(hash))
    }

    /// Scratch space (catalog builds), removed with the stage.
    pub(crate) fn scratch(&self, name: &str) -> PathBuf {
        self.dir.join("scratch").join(safe_name(name))
    }
}

/// The manifest file of a snapshot.
pub fn manifest_path(home: &Home, snap_id: &str) -> PathBuf {
    home.snapshots_dir()
        .join(format!("{}.manifest", safe_name(snap_id)))
}

/// The directory of chunks.
pub fn chunks_dir(home: &Home) -> PathBuf {
    home.snapshots_dir().join("chunks")
}

/// Where the chunk with this hash lives.
pub fn chunk_path(home: &Home, hash: &str) -> PathBuf {
    let sub = hash.get(..2).unwrap_or("00");
    chunks_dir(home).join(safe_name(sub)).join(safe_name(hash))
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn create_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create directory", e))
        }
        None => Ok(()),
    }
}

/// Copies the image at `image` into the chunk store, new chunks and the
/// manifest of `snap_id` into `stage`.
pub(crate) fn take(home: &Home, stage: &Stage, snap_id: &str, image: &Path) -> Result<Taken> {
    let (img, _still) = open_still(image)?;
    let size = img.size();
    let mut indexes: BTreeSet<u64> = BTreeSet::new();
    for r in img.data_ranges(0..size)? {
        if r.start >= r.end {
            continue;
        }
        let first = r.start / CHUNK;
        let last = (r.end - 1) / CHUNK;
        indexes.extend(first..=last);
    }
    let mut manifest = Manifest {
        size,
        chunks: BTreeMap::new(),
    };
    let mut taken = Taken {
        data_bytes: 0,
        new_bytes: 0,
    };
    let mut wrote = false;
    let mut buf = vec![0u8; usize::try_from(CHUNK).unwrap_or(1 << 19)];
    for idx in indexes {
        let off = idx * CHUNK;
        let len = usize::try_from(CHUNK.min(size - off)).unwrap_or(0);
        let data = &mut buf[..len];
        img.read_at(off, data)?;
        if is_zero(data) {
            continue;
        }
        let hash = hex(&Sha256::digest(&*data));
        taken.data_bytes += len as u64;
        let staged = stage.chunk(&hash);
        if !chunk_path(home, &hash).exists() && !staged.exists() {
            if !wrote {
                create_parent(&staged)?;
            }
            // Unsynced: one syncfs below covers every chunk.
            std::fs::write(&staged, &*data).map_err(|e| Error::io(&staged, "write chunk", e))?;
            wrote = true;
            taken.new_bytes += len as u64;
        }
        manifest.chunks.insert(idx, hash);
    }
    if wrote {
        // One syncfs makes every new chunk and its directory entry durable
        // (thousands of fsyncs would dominate the copy), before the
        // manifest that names them is written.
        let dir = stage.chunk("x");
        let dir = dir.parent().unwrap_or(&stage.dir);
        let f = std::fs::File::open(dir).map_err(|e| Error::io(dir, "open", e))?;
        nix::unistd::syncfs(&f).map_err(|e| Error::io(dir, "syncfs", e.into()))?;
    }
    let path = stage.manifest(snap_id);
    create_parent(&path)?;
    write_manifest(&path, &manifest)?;
    Ok(taken)
}

/// The image held still for a copy, so the copy is of a consistent image:
/// under its exclusive lock (which also rolls back a change a crash left
/// half done), or, while a guest has a filesystem of it mounted (its
/// server holds that lock for as long as the mount lasts), frozen by the
/// server after it commits what the guest wrote, as a snapshot of an
/// in-use EBS volume is taken while its instance runs. Waits up to the
/// image lock's bound for a writer that is neither.
fn open_still(image: &Path) -> Result<(ImageFile, Option<crate::fuse::control::Frozen>)> {
    use crate::blockdev::{Error as DevError, lock};
    use crate::fuse::control::{self, ControlError};
    let limit = lock::wait_limit();
    let t0 = std::time::Instant::now();
    loop {
        super::store::check_volume_image(image)?;
        match ImageFile::open_waiting(image, Access::ReadWrite, std::time::Duration::ZERO) {
            Ok(img) => return Ok((img, None)),
            Err(DevError::Busy { .. }) if t0.elapsed() < limit => {}
            Err(DevError::Busy { path, holder, .. }) => {
                return Err(DevError::Busy {
                    path,
                    holder,
                    waited: t0.elapsed(),
                }
                .into());
            }
            Err(e) => return Err(e.into()),
        }
        match control::freeze(image) {
            Ok(frozen) => {
                let img = open_volume_image(image, Access::ReadOnly)?;
                return Ok((img, Some(frozen)));
            }
            // Another writer (not a server): wait for it a while.
            Err(ControlError::NotServed(_)) => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => {
                return Err(Error::io(
                    image,
                    "freeze",
                    std::io::Error::other(e.to_string()),
                ));
            }
        }
    }
}

/// The runs of `block`-sized pieces of `data` holding a non-zero byte.
fn nonzero_runs(data: &[u8], block: usize) -> Vec<std::ops::Range<usize>> {
    let mut out: Vec<std::ops::Range<usize>> = Vec::new();
    for (i, b) in data.chunks(block).enumerate() {
        if is_zero(b) {
            continue;
        }
        let start = i * block;
        let end = start + b.len();
        match out.last_mut() {
            Some(last) if last.end == start => last.end = end,
            _ => out.push(start..end),
        }
    }
    out
}

/// Whether a buffer is all zeros (a slice comparison: memcmp, fast even in
/// debug builds).
fn is_zero(data: &[u8]) -> bool {
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    data.chunks(ZEROS.len()).all(|c| c == &ZEROS[..c.len()])
}

/// Writes a manifest, fsynced with its directory.
fn write_manifest(path: &Path, m: &Manifest) -> Result<()> {
    let mut body = format!("{MANIFEST_MAGIC}\nsize {}\nchunk {CHUNK}\n", m.size);
    for (idx, hash) in &m.chunks {
        body.push_str(&format!("{idx} {hash}\n"));
    }
    let crc = crc32fast::hash(body.as_bytes());
    body.push_str(&format!("end {} {crc:08x}\n", m.chunks.len()));
    {
        let mut f = std::fs::File::create(path).map_err(|e| Error::io(path, "create", e))?;
        f.write_all(body.as_bytes())
            .map_err(|e| Error::io(path, "write", e))?;
        f.sync_all().map_err(|e| Error::io(path, "fsync", e))?;
    }
    match path.parent() {
        Some(d) => sync_dir(d),
        None => Ok(()),
    }
}

/// Reads and checks a committed snapshot's manifest.
pub fn read_manifest(home: &Home, snap_id: &str) -> Result<Manifest> {
    read_manifest_at(&manifest_path(home, snap_id))
}

/// The manifest of `snap_id` as this transaction sees it: staged by it
/// (a catalog image built just now), else committed.
fn current_manifest(home: &Home, stage: &Stage, snap_id: &str) -> Result<Manifest> {
    let staged = stage.manifest(snap_id);
    if staged.exists() {
        read_manifest_at(&staged)
    } else {
        read_manifest(home, snap_id)
    }
}

fn read_manifest_at(path: &Path) -> Result<Manifest> {
    let raw = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))?;
    let bad = |reason: &str| Error::ChunkStore {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let end = raw.rfind("end ").ok_or_else(|| bad("no end line"))?;
    let (body, tail) = raw.split_at(end);
    let mut t = tail.split_whitespace().skip(1);
    let count: usize = t
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| bad("bad end line"))?;
    let crc = t
        .next()
        .and_then(|v| u32::from_str_radix(v, 16).ok())
        .ok_or_else(|| bad("bad end line"))?;
    if crc32fast::hash(body.as_bytes()) != crc {
        return Err(bad("checksum mismatch"));
    }
    let mut lines = body.lines();
    if lines.next() != Some(MANIFEST_MAGIC) {
        return Err(bad("not a manifest"));
    }
    let size: u64 = lines
        .next()
        .and_then(|l| l.strip_prefix("size "))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| bad("no size"))?;
    let chunk: u64 = lines
        .next()
        .and_then(|l| l.strip_prefix("chunk "))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| bad("no chunk size"))?;
    if chunk != CHUNK {
        return Err(bad("unsupported chunk size"));
    }
    let mut chunks = BTreeMap::new();
    for l in lines {
        let (i, h) = l.split_once(' ').ok_or_else(|| bad("bad chunk line"))?;
        let i: u64 = i.parse().map_err(|_| bad("bad chunk index"))?;
        if !super::sweep::is_hash(h) {
            return Err(bad("bad chunk hash"));
        }
        if i.checked_mul(CHUNK).is_none_or(|o| o >= size) {
            return Err(bad("chunk index past the end"));
        }
        chunks.insert(i, h.to_string());
    }
    if chunks.len() != count {
        return Err(bad("chunk count mismatch"));
    }
    Ok(Manifest { size, chunks })
}

/// Reads a chunk and checks it is what its name says.
fn read_chunk(
    home: &Home,
    stage: &Stage,
    snap_id: &str,
    idx: u64,
    hash: &str,
    len: u64,
) -> Result<Vec<u8>> {
    let committed = chunk_path(home, hash);
    let path = if committed.exists() {
        committed
    } else {
        stage.chunk(hash)
    };
    let damaged = |path: &Path, what: String| Error::ChunkStore {
        path: path.to_path_buf(),
        reason: format!(
            "{what}: the chunk at offset {} of {snap_id} is damaged, so {snap_id} cannot be restored",
            idx * CHUNK
        ),
    };
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(damaged(&chunk_path(home, hash), "missing".to_string()));
        }
        Err(e) => return Err(Error::io(&path, "read chunk", e)),
    };
    if data.len() as u64 != len {
        return Err(damaged(
            &path,
            format!("{} bytes where {len} were stored", data.len()),
        ));
    }
    if hex(&Sha256::digest(&data)) != hash {
        return Err(damaged(
            &path,
            "its bytes do not match its SHA-256 (the chunk's name)".to_string(),
        ));
    }
    Ok(data)
}

/// Creates a sparse image of `len` bytes at `path` holding the snapshot's
/// data: only stored (non-zero) chunks are written, each checked against
/// its hash first.
pub(crate) fn restore(
    home: &Home,
    stage: &Stage,
    snap_id: &str,
    path: &Path,
    len: u64,
) -> Result<()> {
    let m = current_manifest(home, stage, snap_id)?;
    create_parent(path)?;
    let mut img = ImageFile::create(path, len.max(m.size))?;
    let mut batch = WriteBatch::new();
    let mut n = 0usize;
    for (idx, hash) in &m.chunks {
        let expect = CHUNK.min(m.size - idx * CHUNK);
        let data = read_chunk(home, stage, snap_id, *idx, hash, expect)?;
        // Only the non-zero 4 KiB blocks of the chunk: the restored image
        // stays as sparse as the source was.
        for run in nonzero_runs(&data, 4096) {
            batch.write(idx * CHUNK + run.start as u64, data[run].to_vec());
        }
        n += 1;
        if n == RESTORE_BATCH {
            img.commit(&batch)?;
            batch = WriteBatch::new();
            n = 0;
        }
    }
    img.commit(&batch)?;
    Ok(())
}

/// The chunks only `deleted` uses, found before the state changes: every
/// other committed manifest must be readable (a damaged one would make a
/// shared chunk look unused), so a damaged one is an error here, naming it.
/// `Ok(None)`: the deleted snapshot's own manifest is missing or damaged,
/// and the chunks it named are found by a full sweep instead.
pub(crate) fn plan_free(home: &Home, state: &State, deleted: &str) -> Result<Option<Vec<String>>> {
    let mut live: HashSet<String> = HashSet::new();
    for id in state.snapshots.keys().filter(|id| id.as_str() != deleted) {
        match read_manifest(home, id) {
            Ok(m) => live.extend(m.chunks.into_values()),
            Err(e) => {
                return Err(Error::ChunkStore {
                    path: manifest_path(home, id),
                    reason: format!(
                        "cannot tell which chunks of {deleted} other snapshots still use, because the manifest of {id} cannot be read ({e}); nothing was deleted. Delete {id} first (it cannot be restored), or put its manifest back"
                    ),
                });
            }
        }
    }
    let Ok(gone) = read_manifest(home, deleted) else {
        return Ok(None);
    };
    let unique: BTreeSet<String> = gone.chunks.into_values().collect();
    Ok(Some(
        unique.into_iter().filter(|h| !live.contains(h)).collect(),
    ))
}

/// Removes a deleted snapshot's unshared chunks, then its manifest (last:
/// while it is there, the next transaction knows a removal was
/// interrupted). Best effort: what is left is swept later.
pub(crate) fn free(home: &Home, deleted: &str, chunks: &[String]) {
    for h in chunks {
        let _ = std::fs::remove_file(chunk_path(home, h));
    }
    let _ = std::fs::remove_file(manifest_path(home, deleted));
    let _ = sync_dir(&home.snapshots_dir());
}

/// Number and total bytes of the chunks in the store.
pub fn store_usage(home: &Home) -> (u64, u64) {
    let mut n = 0;
    let mut bytes = 0;
    if let Ok(rd) = std::fs::read_dir(chunks_dir(home)) {
        for sub in rd.flatten() {
            if let Ok(rd2) = std::fs::read_dir(sub.path()) {
                for c in rd2.flatten() {
                    if let Ok(m) = c.metadata() {
                        n += 1;
                        bytes += m.len();
                    }
                }
            }
        }
    }
    (n, bytes)
}

/// Filters of DescribeSnapshots.
pub const SNAPSHOT_FILTERS: &[&str] = &[
    "status",
    "volume-id",
    "snapshot-id",
    "owner-id",
    "owner-alias",
    "description",
    "volume-size",
    "encrypted",
    "progress",
    "start-time",
    "storage-tier",
    "transfer-type",
    "kms-key-id",
];

impl Txn<'_> {
    /// A snapshot of this region, or `InvalidSnapshot.NotFound`.
    pub fn snapshot(&self, id: &str) -> Result<&Snapshot> {
        super::volumes::check_id(id, "snap", "InvalidSnapshotID.Malformed")?;
        match self.state().snapshots.get(id) {
            Some(s) if region_of(&s.az) == self.region() => Ok(s),
            _ => Err(ApiError::snapshot_not_found(id).into()),
        }
    }

    /// A snapshot volumes can be made from (completed) [U for the
    /// pending message].
    pub(crate) fn usable_snapshot(&mut self, id: &str) -> Result<Snapshot> {
        self.ensure_catalog_snapshot(id)?;
        let s = self.snapshot(id)?.clone();
        if s.state != SnapState::Completed {
            return Err(ApiError::new(
                "IncorrectState",
                format!("Snapshot is in invalid state - {}", s.state.as_str()),
            )
            .into());
        }
        Ok(s)
    }

    /// The progress text at `now` ("" is only the create response's).
    pub fn snapshot_progress(&self, s: &Snapshot) -> String {
        match s.state {
            SnapState::Completed => "100%".to_string(),
            SnapState::Error => "0%".to_string(),
            SnapState::Pending => {
                let total = s.complete_at.since(s.start_time).max(1);
                let done = self.now().since(s.start_time).clamp(0, total);
                format!("{}%", (done * 100 / total).min(99))
            }
        }
    }

    /// CreateSnapshot: copies the volume now (point in time), then stays
    /// `pending` on the clock for a time that grows with the new data.
    pub fn create_snapshot(
        &mut self,
        volume_id: &str,
        description: Option<&str>,
        tags: Vec<Tag>,
        dry_run: bool,
    ) -> Result<Snapshot> {
        super::tags::check_new(&tags)?;
        let v = self.volume(volume_id)?.clone();
        let pending = self
            .state()
            .snapshots
            .values()
            .filter(|s| s.volume_id == volume_id && s.state == SnapState::Pending)
            .count();
        let limit = if matches!(v.volume_type, VolumeType::St1 | VolumeType::Sc1) {
            1
        } else {
            5
        };
        if pending >= limit {
            return Err(ApiError::new(
                "ConcurrentSnapshotLimitExceeded",
                format!(
                    "Maximum number of active snapshots in progress has been reached for volume '{volume_id}'."
                ),
            )
            .into());
        }
        if v.state == super::model::VolumeState::Creating {
            return Err(ApiError::new(
                "IncorrectState",
                format!("Volume '{volume_id}'is in the 'creating' state."),
            )
            .into());
        }
        if dry_run {
            return Err(ApiError::dry_run_ok().into());
        }
        let id = self.new_id("snap");
        let stage = self.stage()?;
        let image = self.home().volume_image(&v.id);
        let taken = take(self.home(), &stage, &id, &image)?;
        let now = self.now();
        let t = *self.timing();
        let gib = i64::try_from(taken.new_bytes.div_ceil(1 << 30)).unwrap_or(i64::MAX);
        let snap = Snapshot {
            id: id.clone(),
            volume_id: volume_id.to_string(),
            volume_size: v.size,
            description: description.unwrap_or("").to_string(),
            state: SnapState::Pending,
            start_time: now,
            complete_at: now.plus(t.snapshot_min.max(gib.saturating_mul(t.snapshot_per_gib))),
            owner_id: OWNER_ID.to_string(),
            owner_alias: None,
            encrypted: v.encrypted,
            tags,
            az: v.az.clone(),
            data_bytes: taken.data_bytes,
            new_bytes: taken.new_bytes,
            flavour: v.flavour.clone(),
            catalog_build: None,
            kms_key_id: v.kms_key_id.clone(),
        };
        self.state_mut().snapshots.insert(id, snap.clone());
        Ok(snap)
    }

    /// CopySnapshot: a new snapshot of this region with the content of
    /// `source_id` in `source_region` (a completed snapshot the account
    /// owns, or a public catalog one). The copy shares the source's chunks
    /// (nothing is written but its manifest) and is `pending` on the clock
    /// for the time its data takes to copy. It is encrypted when the
    /// source is or `encrypted` is asked, with `kms_key_id`, else the
    /// source's key, else the account's default key.
    #[allow(clippy::too_many_arguments)]
    pub fn copy_snapshot(
        &mut self,
        source_region: &str,
        source_id: &str,
        description: Option<&str>,
        encrypted: bool,
        kms_key_id: Option<&str>,
        tags: Vec<Tag>,
        dry_run: bool,
    ) -> Result<Snapshot> {
        super::tags::check_new(&tags)?;
        super::volumes::check_id(source_id, "snap", "InvalidSnapshotID.Malformed")?;
        self.ensure_catalog_snapshot(source_id)?;
        let src = match self.state().snapshots.get(source_id) {
            Some(s) if region_of(&s.az) == source_region => s.clone(),
            _ => return Err(ApiError::snapshot_not_found(source_id).into()),
        };
        if src.state != SnapState::Completed {
            return Err(ApiError::new(
                "IncorrectState",
                format!(
                    "Snapshot '{source_id}' is in the '{}' state and cannot be copied.",
                    src.state.as_str()
                ),
            )
            .into());
        }
        if kms_key_id.is_some() && !encrypted && !src.encrypted {
            return Err(ApiError::new(
                "InvalidParameterDependency",
                "The parameter KmsKeyId requires the parameter Encrypted to be set.",
            )
            .into());
        }
        if dry_run {
            return Err(ApiError::dry_run_ok().into());
        }
        let id = self.new_id("snap");
        let stage = self.stage()?;
        let manifest = current_manifest(self.home(), &stage, source_id)?;
        let path = stage.manifest(&id);
        create_parent(&path)?;
        write_manifest(&path, &manifest)?;
        let now = self.now();
        let t = *self.timing();
        let gib = i64::try_from(src.data_bytes.div_ceil(1 << 30)).unwrap_or(i64::MAX);
        let enc = encrypted || src.encrypted;
        let kms = if enc {
            Some(
                kms_key_id
                    .map(str::to_string)
                    .or_else(|| src.kms_key_id.clone())
                    .unwrap_or_else(|| {
                        format!(
                            "arn:aws:kms:{}:{OWNER_ID}:key/{}",
                            self.region(),
                            uuid::Uuid::new_v4()
                        )
                    }),
            )
        } else {
            None
        };
        let az = if region_of(&src.az) == self.region() {
            src.az.clone()
        } else {
            format!("{}a", self.region())
        };
        let desc = description
            .map(str::to_string)
            .unwrap_or_else(|| format!("[Copied {source_id} from {source_region}]"));
        let snap = Snapshot {
            id: id.clone(),
            volume_id: "vol-ffffffff".to_string(),
            volume_size: src.volume_size,
            description: desc,
            state: SnapState::Pending,
            start_time: now,
            complete_at: now.plus(t.snapshot_min.max(gib.saturating_mul(t.snapshot_per_gib))),
            owner_id: OWNER_ID.to_string(),
            owner_alias: None,
            encrypted: enc,
            tags,
            az,
            data_bytes: src.data_bytes,
            new_bytes: 0,
            flavour: src.flavour.clone(),
            catalog_build: None,
            kms_key_id: kms,
        };
        self.state_mut().snapshots.insert(id, snap.clone());
        Ok(snap)
    }

    /// DescribeSnapshots. Without ids or owners it lists the account's own
    /// snapshots; Amazon's catalog snapshots appear when named or with
    /// `--owner-ids amazon`.
    pub fn describe_snapshots(
        &mut self,
        ids: &[String],
        owners: &[String],
        filters: &[Filter],
    ) -> Result<Vec<Snapshot>> {
        filter::check_names(filters, SNAPSHOT_FILTERS)?;
        let mut picked = Vec::new();
        if ids.is_empty() {
            for s in self.state().snapshots.values() {
                if region_of(&s.az) != self.region() {
                    continue;
                }
                let owner_ok = if owners.is_empty() {
                    s.owner_id == OWNER_ID
                } else {
                    owners.iter().any(|o| {
                        o == &s.owner_id
                            || (o == "self" && s.owner_id == OWNER_ID)
                            || s.owner_alias.as_deref() == Some(o.as_str())
                    })
                };
                if owner_ok {
                    picked.push(s.clone());
                }
            }
        } else {
            for id in ids {
                self.ensure_catalog_snapshot(id)?;
                picked.push(self.snapshot(id)?.clone());
            }
        }
        let mut out = Vec::new();
        for s in picked {
            let progress = self.snapshot_progress(&s);
            let ok = filter::matches(filters, |name| {
                let one = |v: String| Some(vec![v]);
                match name {
                    "status" => one(s.state.as_str().to_string()),
                    "volume-id" => one(s.volume_id.clone()),
                    "snapshot-id" => one(s.id.clone()),
                    "owner-id" => one(s.owner_id.clone()),
                    "owner-alias" => Some(s.owner_alias.clone().into_iter().collect()),
                    "description" => one(s.description.clone()),
                    "volume-size" => one(s.volume_size.to_string()),
                    "encrypted" => one(s.encrypted.to_string()),
                    "progress" => one(progress.clone()),
                    "start-time" => one(s.start_time.whole_seconds().to_wire()),
                    "storage-tier" | "transfer-type" => one("standard".to_string()),
                    "kms-key-id" => Some(s.kms_key_id.clone().into_iter().collect()),
                    n => filter::tag_values(n, &s.tags),
                }
            })?;
            if ok {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// DeleteSnapshot: the snapshot goes now; its chunks that no other
    /// snapshot uses are freed once the state is written.
    pub fn delete_snapshot(&mut self, id: &str, dry_run: bool) -> Result<()> {
        let s = self.snapshot(id)?.clone();
        if let Some(img) = self
            .state()
            .images
            .values()
            .find(|i| i.bdm.iter().any(|b| b.snapshot_id == id))
        {
            return Err(ApiError::new(
                "InvalidSnapshot.InUse",
                format!("The snapshot {id} is currently in use by {}", img.id),
            )
            .into());
        }
        if s.owner_id != OWNER_ID {
            return Err(ApiError::new(
                "UnauthorizedOperation",
                "You are not authorized to perform this operation.",
            )
            .into());
        }
        if dry_run {
            return Err(ApiError::dry_run_ok().into());
        }
        // Every file is read before the state changes: an error here
        // leaves everything as it was.
        let chunks = plan_free(self.home(), self.state(), id)?;
        self.state_mut().snapshots.remove(id);
        self.free_after_commit(id.to_string(), chunks);
        Ok(())
    }
}
