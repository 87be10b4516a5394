//! The control channel of a served image: how the tools reach the owner of
//! a mounted filesystem instead of writing the image themselves (the role
//! of the kernel's resize ioctls and of `statfs`/`sync`/`umount` on a
//! mount point).
//!
//! A Unix stream socket beside the image, `IMAGE.ebsim-fuse`, mode 0600
//! (its owner and root may use it). One request per connection: a line of
//! JSON, answered by a line of JSON.
//!
//! ```text
//! {"op":"info"}                      -> {"info":{...}}
//! {"op":"statfs"}                    -> {"statfs":{"frsize":4096,...}}
//! {"op":"sync"}                      -> "done"
//! {"op":"grow","args":{"blocks":null,"force":false,"imaxpct":null}}
//!                                    -> {"grown":{"Ext4":{...}}}
//! {"op":"unmount"}                   -> "done" (after the final commit)
//! {"op":"freeze"}                    -> "done" (then held until the client
//!                                       closes the connection)
//! failures                           -> {"error":{"errno":28,"message":"..."}}
//! ```
//!
//! A socket left by a killed server refuses connections: clients take that
//! as "not served", and the next server of the image replaces it.

use super::server::Shared;
use crate::fs::StatFs;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The socket path of an image's control channel.
pub fn socket_path(image: &Path) -> PathBuf {
    let mut name = image
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".ebsim-fuse");
    image.with_file_name(name)
}

/// A request. `part` names the served filesystem of the image it is for
/// (one server serves every mounted partition of an image); without it,
/// the one mounted first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// What is served where.
    Info {
        /// Which partition.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        part: Option<u32>,
    },
    /// statfs of the served filesystem.
    Statfs {
        /// Which partition.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        part: Option<u32>,
    },
    /// Commit every staged change.
    Sync {
        /// Which partition.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        part: Option<u32>,
    },
    /// Grow the filesystem online.
    Grow {
        /// How.
        args: super::GrowArgs,
        /// Which partition.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        part: Option<u32>,
    },
    /// Commit and unmount.
    Unmount {
        /// Which partition.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        part: Option<u32>,
    },
    /// Write a partition table change to the served partitions' disk
    /// (growpart of a disk whose partition is mounted): byte offsets on the
    /// disk and the bytes; refused when one lies inside any partition
    /// served.
    WriteTable {
        /// The writes.
        writes: Vec<(u64, Vec<u8>)>,
    },
    /// Commit every filesystem served from the image, answer `done`, then
    /// hold them all still (each request on them waits) until the client
    /// closes the connection: the image is then, for the client to copy,
    /// exactly what the guest had written, as `fsfreeze` makes a device
    /// for a snapshot.
    Freeze,
}

/// How long a server holds its filesystems still for one `freeze` whose
/// client neither closes the connection nor dies (a dead client's socket
/// closes at once).
pub const FREEZE_LIMIT: Duration = Duration::from_secs(600);

/// What a server tells about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    /// The server's process id.
    pub pid: u32,
    /// The image (as given to the server, made absolute).
    pub image: PathBuf,
    /// The partition served, if not the whole image.
    pub part: Option<u32>,
    /// Where it is mounted.
    pub mountpoint: PathBuf,
    /// `ext4` or `xfs`.
    pub fs_type: String,
    /// Mounted read-only.
    pub read_only: bool,
    /// The primary superblock's bytes (ext4: the 1024 bytes at 1024; XFS:
    /// sector 0), as committed just now.
    pub superblock: Vec<u8>,
    /// Bytes of the device (the partition or the image) as they are now:
    /// what a grow to the device's end would fill.
    pub device_size: u64,
    /// Every filesystem of the image this server serves: the partition
    /// (None: the whole image) and its mount point, in mount order.
    #[serde(default)]
    pub served: Vec<(Option<u32>, PathBuf)>,
}

/// A reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// Answer to `info`.
    Info(Box<Info>),
    /// Answer to `statfs`.
    Statfs(StatFs),
    /// Answer to `grow`.
    Grown(super::GrowReport),
    /// Done (`sync`, `unmount`).
    Done,
    /// The request failed.
    Error {
        /// The errno the kernel would give.
        errno: i32,
        /// What went wrong.
        message: String,
    },
}

/// Failures of the client side.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Nothing serves this image (no socket, or nobody listening).
    #[error("{0}: not served by ebsim mount")]
    NotServed(PathBuf),
    /// The socket failed.
    #[error("{path}: control channel: {source}")]
    Io {
        /// The socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server's answer made no sense.
    #[error("{0}: control channel: unexpected answer")]
    Protocol(PathBuf),
    /// The server refused or failed the request.
    #[error("{message}")]
    Failed {
        /// Its errno.
        errno: i32,
        /// Its message.
        message: String,
    },
}

/// Sends one request to the server of `image` and waits for its answer
/// (a grow or unmount may take as long as it takes).
pub fn request(image: &Path, req: &Request) -> Result<Response, ControlError> {
    exchange(image, req).map(|(_, r)| r)
}

/// Sends one request and reads its answer, keeping the connection open.
fn exchange(image: &Path, req: &Request) -> Result<(UnixStream, Response), ControlError> {
    let path = socket_path(image);
    let mut s = match UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(ControlError::NotServed(image.to_path_buf()));
        }
        Err(source) => return Err(ControlError::Io { path, source }),
    };
    let io = |source| ControlError::Io {
        path: path.clone(),
        source,
    };
    let mut line = serde_json::to_string(req).map_err(|_| ControlError::Protocol(path.clone()))?;
    line.push('\n');
    s.write_all(line.as_bytes()).map_err(io)?;
    let mut answer = String::new();
    BufReader::new(&s).read_line(&mut answer).map_err(io)?;
    let r: Response = serde_json::from_str(answer.trim_end())
        .map_err(|_| ControlError::Protocol(path.clone()))?;
    match r {
        Response::Error { errno, message } => Err(ControlError::Failed { errno, message }),
        other => Ok((s, other)),
    }
}

/// The server of `image`, if one answers: what it tells of the
/// filesystem it mounted first.
pub fn info(image: &Path) -> Result<Option<Info>, ControlError> {
    info_of(image, None)
}

/// The server of `image` and what it tells of partition `part` (None: the
/// filesystem mounted first); None when the image, or that partition of
/// it, is not served.
pub fn info_of(image: &Path, part: Option<u32>) -> Result<Option<Info>, ControlError> {
    match request(image, &Request::Info { part }) {
        Ok(Response::Info(i)) => Ok(Some(*i)),
        Ok(_) => Err(ControlError::Protocol(socket_path(image))),
        Err(ControlError::NotServed(_)) => Ok(None),
        Err(ControlError::Failed { errno, .. }) if errno == nix::errno::Errno::ENOENT as i32 => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Grows the filesystem served from `image` (the one mounted first).
pub fn grow(image: &Path, args: super::GrowArgs) -> Result<super::GrowReport, ControlError> {
    grow_of(image, None, args)
}

/// Grows the filesystem of partition `part` served from `image`.
pub fn grow_of(
    image: &Path,
    part: Option<u32>,
    args: super::GrowArgs,
) -> Result<super::GrowReport, ControlError> {
    match request(image, &Request::Grow { args, part })? {
        Response::Grown(g) => Ok(g),
        _ => Err(ControlError::Protocol(socket_path(image))),
    }
}

/// Writes a partition table change to the disk whose partition is served
/// from `image`.
pub fn write_table(image: &Path, writes: Vec<(u64, Vec<u8>)>) -> Result<(), ControlError> {
    match request(image, &Request::WriteTable { writes })? {
        Response::Done => Ok(()),
        _ => Err(ControlError::Protocol(socket_path(image))),
    }
}

/// An image held still by its server ([`freeze`]) until dropped.
#[derive(Debug)]
pub struct Frozen {
    _conn: UnixStream,
}

/// Has the server of `image` commit every filesystem it serves from it and
/// hold them still until the returned guard is dropped (or this process
/// ends). [`ControlError::NotServed`] when no server answers.
pub fn freeze(image: &Path) -> Result<Frozen, ControlError> {
    let path = socket_path(image);
    let (conn, r) = exchange(image, &Request::Freeze)?;
    match r {
        Response::Done => Ok(Frozen { _conn: conn }),
        _ => Err(ControlError::Protocol(path)),
    }
}

/// One served filesystem as the control channel knows it.
pub(crate) struct Entry {
    pub(crate) shared: Arc<Shared>,
    pub(crate) part: Option<u32>,
    pub(crate) mountpoint: PathBuf,
    pub(crate) read_only: bool,
    /// Called (once) for `unmount`, after the commit: unmounts the mount
    /// point so the session ends.
    pub(crate) unmount: Box<dyn Fn() -> std::io::Result<()> + Send + Sync>,
    /// Waits until the session has ended and the final commit is made.
    pub(crate) wait_end: Box<dyn Fn() + Send + Sync>,
}

/// An image's control channel in this process: the socket's thread and
/// the filesystems of the image served here.
struct Channel {
    image: PathBuf,
    path: PathBuf,
    entries: Mutex<Vec<Arc<Entry>>>,
    closed: AtomicBool,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// The control channels this process serves.
static CHANNELS: Mutex<Vec<Arc<Channel>>> = Mutex::new(Vec::new());

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A filesystem's place on its image's control channel. Dropping it takes
/// the filesystem off; the last one closes the channel (its socket is
/// removed before the drop returns).
pub struct Attached {
    channel: Arc<Channel>,
    entry: Arc<Entry>,
}

impl std::fmt::Debug for Attached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attached")
            .field("image", &self.channel.image)
            .field("part", &self.entry.part)
            .finish()
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        let mut channels = locked(&CHANNELS);
        let last = {
            let mut entries = locked(&self.channel.entries);
            entries.retain(|e| !Arc::ptr_eq(e, &self.entry));
            entries.is_empty()
        };
        if !last {
            return;
        }
        channels.retain(|c| !Arc::ptr_eq(c, &self.channel));
        drop(channels);
        self.channel.closed.store(true, Ordering::SeqCst);
        // Wake the accept; the thread sees `closed` and removes the socket.
        let _ = UnixStream::connect(&self.channel.path);
        let thread = locked(&self.channel.thread).take();
        if let Some(t) = thread {
            let t0 = std::time::Instant::now();
            while !t.is_finished() && t0.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(5));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

/// Puts a served filesystem of `image` on the image's control channel:
/// joins the channel this process already serves for the image, or binds
/// its socket. None: another process's live server answers there (a
/// second read-only mount), so this one goes without.
pub(crate) fn attach(image: &Path, entry: Entry) -> std::io::Result<Option<Attached>> {
    let entry = Arc::new(entry);
    let mut channels = locked(&CHANNELS);
    if let Some(channel) = channels.iter().find(|c| c.image == image) {
        locked(&channel.entries).push(entry.clone());
        return Ok(Some(Attached {
            channel: channel.clone(),
            entry,
        }));
    }
    let Some(listener) = bind(image)? else {
        return Ok(None);
    };
    let channel = Arc::new(Channel {
        image: image.to_path_buf(),
        path: listener.path.clone(),
        entries: Mutex::new(vec![entry.clone()]),
        closed: AtomicBool::new(false),
        thread: Mutex::new(None),
    });
    let c2 = channel.clone();
    let t = std::thread::spawn(move || listener.serve(&c2));
    *locked(&channel.thread) = Some(t);
    channels.push(channel.clone());
    Ok(Some(Attached { channel, entry }))
}

/// A bound control socket; removed when dropped.
#[derive(Debug)]
pub struct Listener {
    listener: UnixListener,
    path: PathBuf,
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds the control socket of `image`, replacing one a dead server left.
/// None: another live server answers there (a second read-only mount), so
/// this one goes without.
pub fn bind(image: &Path) -> std::io::Result<Option<Listener>> {
    bind_at(socket_path(image))
}

/// Binds a Unix socket at `path` (mode 0600), replacing one a dead
/// process left there; None when a live listener answers there. The
/// socket file is removed when the [`Listener`] is dropped.
pub fn bind_at(path: PathBuf) -> std::io::Result<Option<Listener>> {
    if UnixStream::connect(&path).is_ok() {
        return Ok(None);
    }
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(Some(Listener { listener, path }))
}

impl Listener {
    /// The bound socket.
    pub fn socket(&self) -> &UnixListener {
        &self.listener
    }

    /// Answers requests until the channel closes (run it on its own
    /// thread).
    fn serve(&self, channel: &Channel) {
        for conn in self.listener.incoming() {
            if channel.closed.load(Ordering::SeqCst) {
                return;
            }
            let Ok(conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
            answer(channel, conn);
        }
    }
}

fn fail(e: &crate::fs::node::NodeError) -> Response {
    Response::Error {
        errno: e.errno(),
        message: e.to_string(),
    }
}

/// The served filesystem a request names: partition `part`, or the one
/// mounted first.
fn pick(channel: &Channel, part: Option<u32>) -> Result<Arc<Entry>, Response> {
    let entries = locked(&channel.entries);
    let found = match part {
        None => entries.first(),
        Some(n) => entries.iter().find(|e| e.part == Some(n)),
    };
    found.cloned().ok_or_else(|| Response::Error {
        errno: nix::errno::Errno::ENOENT as i32,
        message: match part {
            Some(n) => format!("{}: partition {n} is not served", channel.image.display()),
            None => format!("{}: nothing is served", channel.image.display()),
        },
    })
}

/// Answers a `freeze`: commits every filesystem served from the image and
/// holds each one's lock (so every FUSE request and the commit timer wait)
/// until the client closes the connection or [`FREEZE_LIMIT`] passes.
fn hold_still(channel: &Channel, conn: &UnixStream) {
    let entries: Vec<Arc<Entry>> = locked(&channel.entries).clone();
    let mut held = Vec::with_capacity(entries.len());
    for e in &entries {
        let mut st = e.shared.lock();
        if let Err(err) = st.commit() {
            reply(conn, &fail(&err));
            return;
        }
        held.push(st);
    }
    reply(conn, &Response::Done);
    let _ = conn.set_read_timeout(Some(FREEZE_LIMIT));
    let mut byte = [0u8; 1];
    let _ = std::io::Read::read(&mut &*conn, &mut byte);
    drop(held);
}

/// Answers one connection.
fn answer(channel: &Channel, conn: UnixStream) {
    let mut line = String::new();
    if BufReader::new(&conn).read_line(&mut line).is_err() {
        return;
    }
    let req: Request = match serde_json::from_str(line.trim_end()) {
        Ok(r) => r,
        Err(e) => {
            reply(
                &conn,
                &Response::Error {
                    errno: nix::errno::Errno::EINVAL as i32,
                    message: format!("bad request: {e}"),
                },
            );
            return;
        }
    };
    let part = match &req {
        Request::Freeze => None,
        Request::Info { part }
        | Request::Statfs { part }
        | Request::Sync { part }
        | Request::Grow { part, .. }
        | Request::Unmount { part } => *part,
        // The table is the disk's: any read-write partition served takes
        // it (each checks the writes against every partition served).
        Request::WriteTable { .. } => locked(&channel.entries)
            .iter()
            .find(|e| !e.read_only && e.part.is_some())
            .and_then(|e| e.part),
    };
    let served = match pick(channel, part) {
        Ok(e) => e,
        Err(resp) => {
            reply(&conn, &resp);
            return;
        }
    };
    let resp = match req {
        Request::Freeze => {
            hold_still(channel, &conn);
            return;
        }
        Request::Info { .. } => match served.shared.superblock() {
            Ok((fs_type, superblock)) => Response::Info(Box::new(Info {
                pid: std::process::id(),
                image: channel.image.clone(),
                part: served.part,
                mountpoint: served.mountpoint.clone(),
                fs_type,
                read_only: served.read_only,
                superblock,
                device_size: served.shared.device_size(),
                served: locked(&channel.entries)
                    .iter()
                    .map(|e| (e.part, e.mountpoint.clone()))
                    .collect(),
            })),
            Err(e) => fail(&e),
        },
        Request::Statfs { .. } => match served.shared.statfs() {
            Ok(s) => Response::Statfs(s),
            Err(e) => fail(&e),
        },
        Request::Sync { .. } => match served.shared.sync() {
            Ok(()) => Response::Done,
            Err(e) => fail(&e),
        },
        Request::WriteTable { writes } => match served.shared.write_table(&writes) {
            Ok(()) => Response::Done,
            Err(e) => fail(&e),
        },
        Request::Grow { args, .. } => match served.shared.grow(args) {
            Ok(g) => Response::Grown(g),
            Err(e) => fail(&e),
        },
        Request::Unmount { .. } => match served
            .shared
            .sync()
            .map(|()| served.shared.set_reply_pending(true))
        {
            Err(e) => fail(&e),
            Ok(()) => match (served.unmount)() {
                Ok(()) => {
                    (served.wait_end)();
                    match served.shared.failure() {
                        None => Response::Done,
                        Some(m) => Response::Error {
                            errno: nix::errno::Errno::EIO as i32,
                            message: m,
                        },
                    }
                }
                Err(e) => Response::Error {
                    errno: e.raw_os_error().unwrap_or(nix::errno::Errno::EIO as i32),
                    message: format!("unmount {}: {e}", served.mountpoint.display()),
                },
            },
        },
    };
    reply(&conn, &resp);
    served.shared.set_reply_pending(false);
}

fn reply(mut conn: &UnixStream, r: &Response) {
    if let Ok(mut s) = serde_json::to_string(r) {
        s.push('\n');
        let _ = conn.write_all(s.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_on_the_wire() {
        assert_eq!(
            serde_json::to_string(&Request::Sync { part: None })
                .ok()
                .as_deref(),
            Some(r#"{"op":"sync"}"#)
        );
        let g: Request = serde_json::from_str(
            r#"{"op":"grow","args":{"blocks":100,"force":true,"imaxpct":null}}"#,
        )
        .unwrap_or(Request::Info { part: None });
        assert_eq!(
            g,
            Request::Grow {
                args: super::super::GrowArgs {
                    blocks: Some(100),
                    force: true,
                    imaxpct: None,
                    now: 0,
                },
                part: None,
            }
        );
        assert_eq!(
            serde_json::to_string(&Response::Done).ok().as_deref(),
            Some(r#""done""#)
        );
        let e: Response = serde_json::from_str(r#"{"error":{"errno":28,"message":"full"}}"#)
            .unwrap_or(Response::Done);
        assert_eq!(
            e,
            Response::Error {
                errno: 28,
                message: "full".into()
            }
        );
    }

    #[test]
    fn socket_beside_the_image() {
        assert_eq!(
            socket_path(Path::new("/x/disk.img")),
            PathBuf::from("/x/disk.img.ebsim-fuse")
        );
    }

    #[test]
    fn nothing_served_is_not_an_error() {
        let dir = std::env::temp_dir().join(format!("ebsim-ctl-{}", std::process::id()));
        let image = dir.join("none.img");
        assert!(matches!(info(&image), Ok(None)));
        assert!(matches!(
            grow(&image, super::super::GrowArgs::default()),
            Err(ControlError::NotServed(_))
        ));
    }
}
