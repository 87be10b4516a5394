//! Serving a filesystem over FUSE: the kernel's file requests answered by
//! ebsim's own ext4 and XFS file layers, so real tools (`cp`, `tar`, `dd`,
//! `fallocate`, editors) work on an image without loop devices.
//!
//! - [`volume`]: what is served: an image or one partition of it, held as
//!   the kernel holds a mounted device (an exclusive lock while read-write,
//!   a shared one while read-only), and the online grow.
//! - [`server`]: the FUSE operations over any [`FileSystem`] (a
//!   [`Backing`]), committing in batches as a journal does.
//! - [`kernel`]: `/dev/fuse`, `mount(2)`, unmount, the mount table.
//! - [`partitions`]: a read-only filesystem of the partitions of disk
//!   images, one file per partition (the guest's partition nodes).
//! - [`control`]: the Unix socket beside the image through which the
//!   tools reach the server (`grow`, `statfs`, `sync`, `unmount`,
//!   `info`), so nothing else ever writes a served image.
//!
//! [`mount`] puts them together: it mounts, answers the kernel's INIT,
//! binds the control socket and starts the commit timer; the caller then
//! runs the session ([`Mounted::run`]) on its thread of choice. This layer
//! knows nothing of instances or AWS.

pub mod control;
pub mod kernel;
pub mod partitions;
pub mod server;
pub mod volume;

pub use server::{Backing, CommitPolicy, FuseFs, Shared};
pub use volume::{GrowArgs, GrowReport, Volume, VolumeError, VolumeSpec};

use crate::fs::node::{FileSystem, NodeError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

/// What to mount and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountConfig {
    /// The mount point.
    pub mountpoint: PathBuf,
    /// Mount flags (read-only, allow_other, ...).
    pub flags: kernel::MountFlags,
    /// When the commit timer commits.
    pub policy: CommitPolicy,
    /// The image whose control socket to bind (None: no control channel).
    pub control_image: Option<PathBuf>,
    /// The partition served (reported by `info`).
    pub part: Option<u32>,
}

/// Why serving failed before the mount was live.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The kernel side.
    #[error(transparent)]
    Mount(#[from] kernel::MountError),
    /// The file layer failed at the start (removing parked files, reading
    /// the root).
    #[error("{0}")]
    Fs(#[from] NodeError),
    /// The FUSE handshake or the control socket.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A live mount: run its session, or unmount it.
pub struct Mounted {
    session: fuser::Session<FuseFs>,
    shared: Arc<Shared>,
    mountpoint: PathBuf,
    ended: Arc<(Mutex<bool>, Condvar)>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// This filesystem's place on its image's control channel (the
    /// channel closes with the last filesystem of the image).
    attached: Option<control::Attached>,
}

impl std::fmt::Debug for Mounted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mounted")
            .field("mountpoint", &self.mountpoint)
            .finish()
    }
}

/// A handle that outlives the session's thread: commit, unmount, wait.
#[derive(Clone, Debug)]
pub struct Handle {
    shared: Arc<Shared>,
    mountpoint: PathBuf,
    ended: Arc<(Mutex<bool>, Condvar)>,
}

impl Handle {
    /// Commits every staged change now.
    pub fn sync(&self) -> Result<(), NodeError> {
        self.shared.sync()
    }

    /// Unmounts (lazily when busy: the session then ends when the last
    /// user lets go).
    pub fn unmount(&self) -> nix::Result<()> {
        match kernel::unmount(&self.mountpoint, false) {
            Err(nix::errno::Errno::EBUSY) => kernel::unmount(&self.mountpoint, true),
            r => r,
        }
    }

    /// Waits until the session has ended and the final commit is made.
    pub fn wait(&self) {
        let (m, c) = &*self.ended;
        let mut done = m.lock().unwrap_or_else(|p| p.into_inner());
        while !*done {
            done = c.wait(done).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The shared server state.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

/// Mounts `backing` at `cfg.mountpoint` and answers the kernel's INIT.
/// When this returns the mount is live (requests queue until
/// [`Mounted::run`]).
pub fn mount(mut backing: Box<dyn Backing>, cfg: &MountConfig) -> Result<Mounted, ServeError> {
    let read_only = cfg.flags.read_only;
    if !read_only {
        // Files a crash left parked (open when unlinked) have no name.
        let fs = backing.fs_mut()?;
        if server::remove_parked(fs)? > 0 {
            fs.sync()?;
        }
    }
    let root_perm = {
        let fs: &dyn FileSystem = backing.fs()?;
        fs.getattr(fs.root())?.perm
    };
    let mut flags = cfg.flags.clone();
    flags.root_mode = 0o040000 | u32::from(root_perm);
    let shared = Shared::new(backing, read_only, cfg.policy);
    let ended = Arc::new((Mutex::new(false), Condvar::new()));
    // The control channel answers before the mount shows in the mount
    // table: a tool that sees the mount (growpart, resize2fs) must find
    // its server, or it would wait for the image's lock, which the server
    // holds until it is unmounted.
    let mut attached = None;
    if let Some(image) = &cfg.control_image {
        let image = std::path::absolute(image).unwrap_or_else(|_| image.clone());
        let mp = cfg.mountpoint.clone();
        let ended2 = ended.clone();
        let handle = Handle {
            shared: shared.clone(),
            mountpoint: mp.clone(),
            ended: ended.clone(),
        };
        let entry = control::Entry {
            shared: shared.clone(),
            part: cfg.part,
            mountpoint: mp,
            read_only,
            unmount: Box::new(move || handle.unmount().map_err(std::io::Error::from)),
            wait_end: Box::new(move || {
                let (m, c) = &*ended2;
                let mut done = m.lock().unwrap_or_else(|p| p.into_inner());
                while !*done {
                    done = c.wait(done).unwrap_or_else(|p| p.into_inner());
                }
            }),
        };
        match control::attach(&image, entry) {
            Ok(a) => attached = a,
            Err(source) => {
                shared.stop();
                return Err(ServeError::Io {
                    what: format!("control socket {}", control::socket_path(&image).display()),
                    source,
                });
            }
        }
    }
    let fd = match kernel::mount(&cfg.mountpoint, &flags) {
        Ok(fd) => fd,
        Err(e) => {
            shared.stop();
            drop(attached);
            return Err(e.into());
        }
    };
    let acl = if flags.allow_other {
        fuser::SessionACL::All
    } else {
        fuser::SessionACL::Owner
    };
    let mut fcfg = fuser::Config::default();
    fcfg.n_threads = Some(1);
    let session = match fuser::Session::from_fd(FuseFs::new(shared.clone()), fd, acl, fcfg) {
        Ok(s) => s,
        Err(source) => {
            shared.stop();
            drop(attached);
            let _ = kernel::unmount(&cfg.mountpoint, true);
            return Err(ServeError::Io {
                what: format!("FUSE handshake on {}", cfg.mountpoint.display()),
                source,
            });
        }
    };
    let mut threads = Vec::new();
    let timer = shared.clone();
    threads.push(std::thread::spawn(move || timer.commit_timer()));
    Ok(Mounted {
        session,
        shared,
        mountpoint: cfg.mountpoint.clone(),
        ended,
        threads,
        attached,
    })
}

impl Mounted {
    /// A handle to commit, unmount or wait from other threads.
    pub fn handle(&self) -> Handle {
        Handle {
            shared: self.shared.clone(),
            mountpoint: self.mountpoint.clone(),
            ended: self.ended.clone(),
        }
    }

    /// Serves requests until the filesystem is unmounted, then commits
    /// what is staged (the final commit) and returns; the error is the
    /// first commit failure, if any.
    pub fn run(self) -> Result<(), ServeError> {
        let r = self.session.run();
        // `destroy` made the final commit; make sure even when the loop
        // failed.
        self.shared.stop();
        let fin = self.shared.sync();
        {
            let (m, c) = &*self.ended;
            *m.lock().unwrap_or_else(|p| p.into_inner()) = true;
            c.notify_all();
        }
        // An `unmount` asked through the control channel gets its answer
        // before the process may end.
        self.shared.wait_reply(std::time::Duration::from_secs(10));
        drop(self.attached);
        let failure = self.shared.failure();
        // The image is free from here on (a control thread may outlive
        // the session).
        self.shared.close();
        drop(self.threads);
        r.map_err(|source| ServeError::Io {
            what: format!("FUSE session on {}", self.mountpoint.display()),
            source,
        })?;
        fin?;
        match failure {
            Some(m) => Err(ServeError::Fs(NodeError::with(
                crate::fs::node::ErrorKind::Io,
                m,
            ))),
            None => Ok(()),
        }
    }
}

/// The mount point as the kernel will record it.
pub fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}
