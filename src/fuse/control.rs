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
use std::sync::Arc;
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

/// A request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// What is served where.
    Info,
    /// statfs of the served filesystem.
    Statfs,
    /// Commit every staged change.
    Sync,
    /// Grow the filesystem online.
    Grow {
        /// How.
        args: super::GrowArgs,
    },
    /// Commit and unmount.
    Unmount,
    /// Write a partition table change to the served partition's disk
    /// (growpart of a disk whose partition is mounted): byte offsets on the
    /// disk and the bytes.
    WriteTable {
        /// The writes.
        writes: Vec<(u64, Vec<u8>)>,
    },
}

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
        other => Ok(other),
    }
}

/// The server of `image`, if one answers.
pub fn info(image: &Path) -> Result<Option<Info>, ControlError> {
    match request(image, &Request::Info) {
        Ok(Response::Info(i)) => Ok(Some(*i)),
        Ok(_) => Err(ControlError::Protocol(socket_path(image))),
        Err(ControlError::NotServed(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Grows the filesystem served from `image`.
pub fn grow(image: &Path, args: super::GrowArgs) -> Result<super::GrowReport, ControlError> {
    match request(image, &Request::Grow { args })? {
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

/// What the listener needs to answer.
pub(crate) struct Served {
    pub(crate) shared: Arc<Shared>,
    pub(crate) image: PathBuf,
    pub(crate) part: Option<u32>,
    pub(crate) mountpoint: PathBuf,
    pub(crate) read_only: bool,
    /// Called (once) for `unmount`, after the commit: unmounts the mount
    /// point so the session ends.
    pub(crate) unmount: Box<dyn Fn() -> std::io::Result<()> + Send + Sync>,
    /// Waits until the session has ended and the final commit is made.
    pub(crate) wait_end: Box<dyn Fn() + Send + Sync>,
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
    let path = socket_path(image);
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
    /// Answers requests until the process ends (run it on its own
    /// thread).
    pub(crate) fn serve(&self, served: &Served) {
        for conn in self.listener.incoming() {
            let Ok(conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
            let stop = answer(served, conn);
            if stop {
                return;
            }
        }
    }
}

fn fail(e: &crate::fs::node::NodeError) -> Response {
    Response::Error {
        errno: e.errno(),
        message: e.to_string(),
    }
}

/// Answers one connection; true after an unmount.
fn answer(served: &Served, conn: UnixStream) -> bool {
    let mut line = String::new();
    if BufReader::new(&conn).read_line(&mut line).is_err() {
        return false;
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
            return false;
        }
    };
    let mut stop = false;
    let resp = match req {
        Request::Info => match served.shared.superblock() {
            Ok((fs_type, superblock)) => Response::Info(Box::new(Info {
                pid: std::process::id(),
                image: served.image.clone(),
                part: served.part,
                mountpoint: served.mountpoint.clone(),
                fs_type,
                read_only: served.read_only,
                superblock,
                device_size: served.shared.device_size(),
            })),
            Err(e) => fail(&e),
        },
        Request::Statfs => match served.shared.statfs() {
            Ok(s) => Response::Statfs(s),
            Err(e) => fail(&e),
        },
        Request::Sync => match served.shared.sync() {
            Ok(()) => Response::Done,
            Err(e) => fail(&e),
        },
        Request::WriteTable { writes } => match served.shared.write_table(&writes) {
            Ok(()) => Response::Done,
            Err(e) => fail(&e),
        },
        Request::Grow { args } => match served.shared.grow(args) {
            Ok(g) => Response::Grown(g),
            Err(e) => fail(&e),
        },
        Request::Unmount => match served
            .shared
            .sync()
            .map(|()| served.shared.set_reply_pending(true))
        {
            Err(e) => fail(&e),
            Ok(()) => match (served.unmount)() {
                Ok(()) => {
                    (served.wait_end)();
                    stop = true;
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
    stop
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
            serde_json::to_string(&Request::Sync).ok().as_deref(),
            Some(r#"{"op":"sync"}"#)
        );
        let g: Request = serde_json::from_str(
            r#"{"op":"grow","args":{"blocks":100,"force":true,"imaxpct":null}}"#,
        )
        .unwrap_or(Request::Info);
        assert_eq!(
            g,
            Request::Grow {
                args: super::super::GrowArgs {
                    blocks: Some(100),
                    force: true,
                    imaxpct: None,
                    now: 0,
                }
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
