//! `cp` and `mv` (coreutils 9.1) inside an instance.
//!
//! cp: -a -d -f -i -n -p -P -L -H -r/-R -t -T -u -v, --preserve[=LIST],
//! --no-preserve=LIST, --sparse=WHEN, --reflink=auto|never,
//! --remove-destination. Files are
//! copied as 9.1 copies them: a sparse source (fewer blocks than its size
//! needs) by its data ranges, leaving the holes; any other source whole,
//! its unwritten or unallocated ranges written as allocated zeros (the
//! kernel's `copy_file_range` would write zeros there; ebsim allocates
//! them without writing zero bytes into the image). A copy that fails
//! half way (no space left) leaves what was written, as cp does.
//!
//! Never a clone: 9.1 copies with `--reflink=auto` by default, so on an
//! XFS with reflink the kernel's copy shares the source's blocks (no
//! space used, even on a full disk); ebsim's XFS layer does not write the
//! refcount btree, so its copy always takes new blocks (as on ext4).
//! `--reflink=always` is refused for that reason.
//!
//! mv: -f -i -n -t -T -u -v. A rename within one filesystem; across two
//! (`EXDEV`) a copy that keeps everything (modes, owners, times, hard
//! links), then the removal of the source, as mv does.

use super::common::{Session, start, strerror};
use super::opts::{self, Flag};
use crate::cli::error::{AppletError, finish};
use crate::cli::output::{err, out};
use ebsim::compat::quote::quoteaf;
use ebsim::fs::node::{ErrorKind, FallocateMode, FileType, NodeError, RenameFlags};
use ebsim::guest::vfs::{Loc, OpenFlags, Stat, TimeSet};
use std::collections::HashMap;
use std::ffi::OsString;
use std::io::BufRead;

const CP_HELP: &str = "Usage: cp [OPTION]... SOURCE DEST
  or:  cp [OPTION]... SOURCE... DIRECTORY
  or:  cp [OPTION]... -t DIRECTORY SOURCE...
Copies files of the instance.

  -a, --archive               -dR --preserve=all
  -d                          --no-dereference --preserve=links
  -f, --force                 remove a destination that cannot be opened
  -i, --interactive           ask before overwriting
  -H                          follow symlinks given on the command line
  -L, --dereference           always follow symlinks
  -n, --no-clobber            never overwrite
  -P, --no-dereference        never follow symlinks
  -p                          --preserve=mode,ownership,timestamps
      --preserve[=LIST]       keep mode, ownership, timestamps, links, all
      --no-preserve=LIST      do not keep these
  -r, -R, --recursive         copy directories and what they hold
      --reflink[=WHEN]        auto or never (ebsim never clones blocks)
      --remove-destination    remove each destination first
      --sparse=WHEN           auto, always or never
  -t, --target-directory=DIR  copy into DIR
  -T, --no-target-directory   DEST is never a directory to copy into
  -u, --update                copy only when SOURCE is newer
  -v, --verbose               say what is copied
      --help                  show this help
      --version               show the version
";

const MV_HELP: &str = "Usage: mv [OPTION]... SOURCE DEST
  or:  mv [OPTION]... SOURCE... DIRECTORY
  or:  mv [OPTION]... -t DIRECTORY SOURCE...
Renames files of the instance, or moves them into DIRECTORY (across
filesystems: a copy that keeps everything, then the source is removed).

  -f, --force                 never ask
  -i, --interactive           ask before overwriting
  -n, --no-clobber            never overwrite
  -t, --target-directory=DIR  move into DIR
  -T, --no-target-directory   DEST is never a directory to move into
  -u, --update                move only when SOURCE is newer
  -v, --verbose               say what is done
      --help                  show this help
      --version               show the version
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deref {
    Never,
    Always,
    CommandLine,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sparse {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy)]
struct CopyOpts {
    prog: &'static str,
    recursive: bool,
    deref: Deref,
    mode: bool,
    owner: bool,
    times: bool,
    links: bool,
    force: bool,
    interactive: bool,
    no_clobber: bool,
    update: bool,
    verbose: bool,
    remove_first: bool,
    sparse: Sparse,
    /// Copying for mv: its verbose words, and everything kept.
    moving: bool,
}

struct Copier<'a> {
    s: &'a mut Session,
    o: CopyOpts,
    utf8: bool,
    /// Sources with several links already copied: (dev, ino) → copy.
    linked: HashMap<(usize, u64), Vec<u8>>,
}

fn q(p: &[u8], utf8: bool) -> String {
    quoteaf(p, utf8)
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = dir.to_vec();
    if !p.ends_with(b"/") {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

/// The last component of a path, trailing slashes ignored.
fn base(p: &[u8]) -> Vec<u8> {
    let mut e = p.len();
    while e > 1 && p[e - 1] == b'/' {
        e -= 1;
    }
    let t = &p[..e];
    match t.iter().rposition(|&b| b == b'/') {
        Some(i) if i + 1 < t.len() => t[i + 1..].to_vec(),
        _ => t.to_vec(),
    }
}

fn ask(question: &str) -> bool {
    err(question);
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim_start().chars().next(), Some('y' | 'Y'))
}

impl Copier<'_> {
    fn fail(&self, msg: String) -> bool {
        err(&format!("{}: {msg}\n", self.o.prog));
        false
    }

    fn say_copied(&self, src: &[u8], dst: &[u8]) {
        if self.o.verbose {
            if self.o.moving {
                out(&format!(
                    "copied {} -> {}\n",
                    q(src, self.utf8),
                    q(dst, self.utf8)
                ));
            } else {
                out(&format!("{} -> {}\n", q(src, self.utf8), q(dst, self.utf8)));
            }
        }
    }

    fn say_dir(&self, src: &[u8], dst: &[u8]) {
        if self.o.verbose {
            if self.o.moving {
                out(&format!("created directory {}\n", q(dst, self.utf8)));
            } else {
                out(&format!("{} -> {}\n", q(src, self.utf8), q(dst, self.utf8)));
            }
        }
    }

    /// Copies `src` to `dst` (the final name). `top`: a command-line
    /// operand.
    fn copy(&mut self, src: &[u8], dst: &[u8], top: bool) -> bool {
        let follow = match self.o.deref {
            Deref::Always => true,
            Deref::CommandLine => top,
            Deref::Never => false,
        };
        let sst = if follow {
            self.s.vfs.stat(src)
        } else {
            self.s.vfs.lstat(src)
        };
        let sst = match sst {
            Ok(s) => s,
            Err(e) => {
                return self.fail(format!(
                    "cannot stat {}: {}",
                    q(src, self.utf8),
                    strerror(&e)
                ));
            }
        };
        let dst_l = self.s.vfs.lstat(dst).ok();
        let dst_f = match &dst_l {
            Some(l) if l.attr.kind == FileType::Symlink => self.s.vfs.stat(dst).ok(),
            other => other.clone(),
        };
        if let Some(d) = &dst_f {
            if (follow || sst.attr.kind != FileType::Symlink) && d.loc == sst.loc {
                return self.fail(format!(
                    "{} and {} are the same file",
                    q(src, self.utf8),
                    q(dst, self.utf8)
                ));
            }
        }
        match sst.attr.kind {
            FileType::Directory => self.copy_dir(src, dst, &sst, dst_l.as_ref()),
            FileType::Symlink => self.copy_symlink(src, dst, &sst, dst_l.as_ref()),
            FileType::Regular => self.copy_file(src, dst, &sst, dst_l.as_ref(), dst_f.as_ref()),
            _ => self.fail(format!(
                "cannot create special file {}: {}",
                q(dst, self.utf8),
                ErrorKind::Unsupported.message()
            )),
        }
    }

    fn copy_dir(&mut self, src: &[u8], dst: &[u8], sst: &Stat, dst_l: Option<&Stat>) -> bool {
        if !self.o.recursive {
            return self.fail(format!(
                "-r not specified; omitting directory {}",
                q(src, self.utf8)
            ));
        }
        let existing = match dst_l {
            Some(d) => {
                let is_dir = d.attr.kind == FileType::Directory
                    || (d.attr.kind == FileType::Symlink
                        && self
                            .s
                            .vfs
                            .stat(dst)
                            .is_ok_and(|t| t.attr.kind == FileType::Directory));
                if !is_dir {
                    return self.fail(format!(
                        "cannot overwrite non-directory {} with directory {}",
                        q(dst, self.utf8),
                        q(src, self.utf8)
                    ));
                }
                true
            }
            None => false,
        };
        // Into itself?
        if let (Ok(rs), Ok(rd)) = (self.s.vfs.realpath(src), self.realpath_new(dst)) {
            let mut prefix = rs.clone();
            if !prefix.ends_with(b"/") {
                prefix.push(b'/');
            }
            if rd == rs || rd.starts_with(&prefix) {
                return self.fail(format!(
                    "cannot copy a directory, {}, into itself, {}",
                    q(src, self.utf8),
                    q(dst, self.utf8)
                ));
            }
        }
        let umask = self.s.vfs.umask();
        if !existing {
            // Made writable for the copy; its mode is set at the end.
            let perm = (sst.attr.perm & 0o777) | 0o700;
            if let Err(e) = self.s.vfs.mkdir(dst, perm) {
                return self.fail(format!(
                    "cannot create directory {}: {}",
                    q(dst, self.utf8),
                    strerror(&e)
                ));
            }
            self.say_dir(src, dst);
        }
        let entries = match self.s.vfs.readdir(src) {
            Ok((_, e)) => e,
            Err(e) => {
                return self.fail(format!(
                    "cannot access {}: {}",
                    q(src, self.utf8),
                    strerror(&e)
                ));
            }
        };
        let mut ok = true;
        for ent in entries {
            let (sp, dp) = (join(src, &ent.name), join(dst, &ent.name));
            if !self.copy(&sp, &dp, false) {
                ok = false;
            }
        }
        // The directory's own attributes, after its contents.
        if self.o.owner {
            let _ = self
                .s
                .vfs
                .chown(dst, Some(sst.attr.uid), Some(sst.attr.gid), true);
        }
        if self.o.mode {
            let _ = self.s.vfs.chmod(dst, sst.attr.perm, true);
        } else if !existing {
            let _ = self.s.vfs.chmod(dst, sst.attr.perm & 0o777 & !umask, true);
        }
        if self.o.times {
            let _ = self.s.vfs.utimens(
                dst,
                TimeSet::At(sst.attr.atime),
                TimeSet::At(sst.attr.mtime),
                true,
            );
        }
        ok
    }

    /// The physical path `p` will have (its parent resolved).
    fn realpath_new(&mut self, p: &[u8]) -> Result<Vec<u8>, NodeError> {
        if let Ok(r) = self.s.vfs.realpath(p) {
            return Ok(r);
        }
        let b = base(p);
        let parent_len = p.len().saturating_sub(b.len());
        let parent = if parent_len == 0 {
            &b"."[..]
        } else {
            &p[..parent_len]
        };
        let mut r = self.s.vfs.realpath(parent)?;
        if !r.ends_with(b"/") {
            r.push(b'/');
        }
        r.extend_from_slice(&b);
        Ok(r)
    }

    fn copy_symlink(&mut self, src: &[u8], dst: &[u8], sst: &Stat, dst_l: Option<&Stat>) -> bool {
        let target = match self.s.vfs.readlink(src) {
            Ok(t) => t,
            Err(e) => {
                return self.fail(format!(
                    "cannot read symbolic link {}: {}",
                    q(src, self.utf8),
                    strerror(&e)
                ));
            }
        };
        if let Some(d) = dst_l {
            if d.attr.kind == FileType::Directory {
                return self.fail(format!(
                    "cannot overwrite directory {} with non-directory",
                    q(dst, self.utf8)
                ));
            }
            if self.o.no_clobber {
                return true;
            }
            if let Err(e) = self.s.vfs.unlink(dst) {
                return self.fail(format!(
                    "cannot remove {}: {}",
                    q(dst, self.utf8),
                    strerror(&e)
                ));
            }
        }
        if let Err(e) = self.s.vfs.symlink(&target, dst) {
            return self.fail(format!(
                "cannot create symbolic link {}: {}",
                q(dst, self.utf8),
                strerror(&e)
            ));
        }
        if self.o.owner {
            let _ = self
                .s
                .vfs
                .chown(dst, Some(sst.attr.uid), Some(sst.attr.gid), false);
        }
        if self.o.times {
            let _ = self.s.vfs.utimens(
                dst,
                TimeSet::At(sst.attr.atime),
                TimeSet::At(sst.attr.mtime),
                false,
            );
        }
        self.say_copied(src, dst);
        true
    }

    fn copy_file(
        &mut self,
        src: &[u8],
        dst: &[u8],
        sst: &Stat,
        dst_l: Option<&Stat>,
        dst_f: Option<&Stat>,
    ) -> bool {
        if let Some(d) = dst_f {
            if d.attr.kind == FileType::Directory {
                return self.fail(format!(
                    "cannot overwrite directory {} with non-directory",
                    q(dst, self.utf8)
                ));
            }
        }
        // Hard links of one source stay links of one copy.
        if self.o.links && sst.attr.nlink > 1 {
            let key = (sst.loc.dev, sst.loc.ino);
            if let Some(first) = self.linked.get(&key).cloned() {
                if dst_l.is_some() {
                    let _ = self.s.vfs.unlink(dst);
                }
                return match self.s.vfs.link(&first, dst) {
                    Ok(()) => {
                        self.say_copied(src, dst);
                        true
                    }
                    Err(e) => self.fail(format!(
                        "cannot create hard link {} to {}: {}",
                        q(dst, self.utf8),
                        q(&first, self.utf8),
                        strerror(&e)
                    )),
                };
            }
            self.linked.insert(key, dst.to_vec());
        }
        let mut exists = dst_l.is_some();
        if exists {
            if self.o.no_clobber {
                return true;
            }
            if self.o.update && dst_f.is_some_and(|d| d.attr.mtime >= sst.attr.mtime) {
                return true;
            }
            if self.o.interactive
                && !ask(&format!(
                    "{}: overwrite {}? ",
                    self.o.prog,
                    q(dst, self.utf8)
                ))
            {
                return true;
            }
            if self.o.remove_first
                || dst_l.is_some_and(|d| d.attr.kind == FileType::Symlink && self.o.moving)
            {
                if let Err(e) = self.s.vfs.unlink(dst) {
                    return self.fail(format!(
                        "cannot remove {}: {}",
                        q(dst, self.utf8),
                        strerror(&e)
                    ));
                }
                exists = false;
            }
        }
        let src_open = match self.s.vfs.open(src, OpenFlags::read()) {
            Ok(o) => o,
            Err(e) => {
                return self.fail(format!(
                    "cannot open {} for reading: {}",
                    q(src, self.utf8),
                    strerror(&e)
                ));
            }
        };
        let mode = sst.attr.perm & 0o777;
        let dst_open = if exists {
            let flags = OpenFlags {
                write: true,
                trunc: true,
                ..OpenFlags::default()
            };
            match self.s.vfs.open(dst, flags) {
                Ok(o) => Ok(o),
                Err(e) if self.o.force => {
                    if let Err(u) = self.s.vfs.unlink(dst) {
                        return self.fail(format!(
                            "cannot remove {}: {}",
                            q(dst, self.utf8),
                            strerror(&u)
                        ));
                    }
                    let _ = e;
                    exists = false;
                    self.s.vfs.open(dst, create_excl(mode))
                }
                Err(e) => Err(e),
            }
        } else {
            self.s.vfs.open(dst, create_excl(mode))
        };
        let dst_open = match dst_open {
            Ok(o) => o,
            Err(e) => {
                return self.fail(format!(
                    "cannot create regular file {}: {}",
                    q(dst, self.utf8),
                    strerror(&e)
                ));
            }
        };
        let created = !exists;
        if let Err((writing, e)) = self.copy_data(src_open.stat.loc, dst_open.stat.loc, sst) {
            let (what, who) = if writing {
                ("writing", dst)
            } else {
                ("reading", src)
            };
            return self.fail(format!(
                "error {what} {}: {}",
                q(who, self.utf8),
                strerror(&e)
            ));
        }
        let dl = dst_open.stat.loc;
        if self.o.owner {
            let _ = self
                .s
                .vfs
                .fchown(dl, Some(sst.attr.uid), Some(sst.attr.gid));
        }
        if self.o.mode {
            let _ = self.s.vfs.fchmod(dl, sst.attr.perm);
        } else if created && sst.attr.perm & 0o7000 != 0 {
            // Never more than the source's permission bits.
        }
        if self.o.times {
            let _ =
                self.s
                    .vfs
                    .futimens(dl, TimeSet::At(sst.attr.atime), TimeSet::At(sst.attr.mtime));
        }
        self.say_copied(src, dst);
        true
    }

    /// The bytes of `src` into `dst` (opened and empty). Err(writing?, e).
    fn copy_data(&mut self, src: Loc, dst: Loc, sst: &Stat) -> Result<(), (bool, NodeError)> {
        let size = sst.attr.size;
        if size == 0 {
            return Ok(());
        }
        let ranges = self.s.vfs.data_ranges(src).map_err(|e| (false, e))?;
        // 9.1 takes a source as sparse when it holds fewer blocks than its
        // size needs; then only its data is copied.
        let sparse_src = sst.attr.blocks.saturating_mul(512) < size;
        let holes_kept = match self.o.sparse {
            Sparse::Never => false,
            Sparse::Always => true,
            Sparse::Auto => sparse_src,
        };
        let mut buf = vec![0u8; 1 << 20];
        let mut pos = 0u64;
        for r in ranges.iter().chain(std::iter::once(&(size..size))) {
            if r.start > pos && !holes_kept {
                // Zeros the kernel would write, allocated without bytes.
                self.s
                    .vfs
                    .fallocate(
                        dst,
                        pos,
                        r.start - pos,
                        FallocateMode::Allocate { keep_size: true },
                    )
                    .map_err(|e| (true, e))?;
            }
            let mut off = r.start;
            while off < r.end {
                let n = ((r.end - off) as usize).min(buf.len());
                let got = self
                    .s
                    .vfs
                    .read(src, off, &mut buf[..n])
                    .map_err(|e| (false, e))?;
                if got == 0 {
                    break;
                }
                let mut done = 0;
                while done < got {
                    let w = self
                        .s
                        .vfs
                        .write(dst, off + done as u64, &buf[done..got])
                        .map_err(|e| (true, e))?;
                    if w == 0 {
                        return Err((true, NodeError::new(ErrorKind::NoSpace)));
                    }
                    done += w;
                }
                off += got as u64;
            }
            pos = pos.max(r.end);
        }
        // The size, when the end is a hole.
        let now = self.s.vfs.getattr(dst).map_err(|e| (true, e))?;
        if now.attr.size != size {
            self.s.vfs.ftruncate(dst, size).map_err(|e| (true, e))?;
        }
        Ok(())
    }
}

/// A source and its final destination.
type Pair = (Vec<u8>, Vec<u8>);

fn create_excl(mode: u16) -> OpenFlags {
    OpenFlags {
        write: true,
        create: true,
        excl: true,
        mode,
        ..OpenFlags::default()
    }
}

/// Works out (source, final destination) pairs as cp and mv do. Err: the
/// exit status after the message.
fn targets(
    prog: &str,
    s: &mut Session,
    operands: &[Vec<u8>],
    target_dir: Option<&[u8]>,
    no_target_dir: bool,
    utf8: bool,
) -> Result<Vec<Pair>, AppletError> {
    if let Some(t) = target_dir {
        match s.vfs.stat(t) {
            Ok(st) if st.attr.kind == FileType::Directory => {}
            Ok(_) => {
                return Err(AppletError::new(
                    1,
                    format!(
                        "{prog}: target directory {} is not a directory\n",
                        quoteaf(t, utf8)
                    ),
                ));
            }
            Err(e) => {
                return Err(AppletError::new(
                    1,
                    format!(
                        "{prog}: target directory {}: {}\n",
                        quoteaf(t, utf8),
                        strerror(&e)
                    ),
                ));
            }
        }
        if operands.is_empty() {
            return Err(AppletError::new(
                1,
                format!(
                    "{prog}: missing file operand\n{}",
                    super::common::try_help(prog)
                ),
            ));
        }
        return Ok(operands
            .iter()
            .map(|o| (o.clone(), join(t, &base(o))))
            .collect());
    }
    match operands {
        [] => Err(AppletError::new(
            1,
            format!(
                "{prog}: missing file operand\n{}",
                super::common::try_help(prog)
            ),
        )),
        [one] => Err(AppletError::new(
            1,
            format!(
                "{prog}: missing destination file operand after {}\n{}",
                quoteaf(one, utf8),
                super::common::try_help(prog)
            ),
        )),
        [src, dst] if no_target_dir => Ok(vec![(src.clone(), dst.clone())]),
        _ if no_target_dir => Err(AppletError::new(
            1,
            format!(
                "{prog}: extra operand {}\n{}",
                quoteaf(&operands[2], utf8),
                super::common::try_help(prog)
            ),
        )),
        [src, dst] => {
            let is_dir = s
                .vfs
                .stat(dst)
                .is_ok_and(|st| st.attr.kind == FileType::Directory);
            if is_dir {
                Ok(vec![(src.clone(), join(dst, &base(src)))])
            } else {
                Ok(vec![(src.clone(), dst.clone())])
            }
        }
        _ => {
            // OK to unwrap: three operands or more.
            #[allow(clippy::unwrap_used)]
            let (dst, srcs) = operands.split_last().unwrap();
            match s.vfs.stat(dst) {
                Ok(st) if st.attr.kind == FileType::Directory => Ok(srcs
                    .iter()
                    .map(|o| (o.clone(), join(dst, &base(o))))
                    .collect()),
                Ok(_) => Err(AppletError::new(
                    1,
                    format!(
                        "{prog}: target {}: {}\n",
                        quoteaf(dst, utf8),
                        ErrorKind::NotADirectory.message()
                    ),
                )),
                Err(e) => Err(AppletError::new(
                    1,
                    format!("{prog}: target {}: {}\n", quoteaf(dst, utf8), strerror(&e)),
                )),
            }
        }
    }
}

/// What cp and mv share around their work on each (source, destination)
/// pair: the missing-operand check, the session, the pairs the operands
/// and `-t`/`-T` make, the exit status (1 if any pair failed), the sync.
fn each_pair(
    prog: &str,
    operands: &[Vec<u8>],
    target_dir: Option<&[u8]>,
    no_target: bool,
    utf8: bool,
    mut one: impl FnMut(&mut Session, &[u8], &[u8]) -> bool,
) -> Result<i32, AppletError> {
    // The operand count is checked before anything is opened, as cp does.
    match (operands, target_dir) {
        ([], None) => {
            return Err(AppletError::new(
                1,
                format!(
                    "{prog}: missing file operand\n{}",
                    super::common::try_help(prog)
                ),
            ));
        }
        ([one], None) => {
            return Err(AppletError::new(
                1,
                format!(
                    "{prog}: missing destination file operand after {}\n{}",
                    quoteaf(one, utf8),
                    super::common::try_help(prog)
                ),
            ));
        }
        _ => {}
    }
    let mut s = start(prog, true)?;
    let pairs = targets(prog, &mut s, operands, target_dir, no_target, utf8)?;
    let mut code = 0;
    for (src, dst) in &pairs {
        if !one(&mut s, src, dst) {
            code = 1;
        }
    }
    super::common::sync(prog, &mut s, code)
}

/// `cp`.
pub fn run_cp(args: Vec<OsString>) -> i32 {
    finish(main_cp(args), String::new)
}

fn main_cp(args: Vec<OsString>) -> Result<i32, AppletError> {
    let prog = "cp";
    let long = [
        Flag::flag("archive", 'a'),
        Flag::flag("force", 'f'),
        Flag::flag("interactive", 'i'),
        Flag::flag("dereference", 'L'),
        Flag::flag("no-clobber", 'n'),
        Flag::flag("no-dereference", 'P'),
        Flag::optional("preserve", '\u{1}'),
        Flag::arg("no-preserve", '\u{2}'),
        Flag::flag("recursive", 'r'),
        Flag::optional("reflink", '\u{5}'),
        Flag::flag("remove-destination", '\u{3}'),
        Flag::arg("sparse", '\u{4}'),
        Flag::arg("target-directory", 't'),
        Flag::flag("no-target-directory", 'T'),
        Flag::optional("update", 'u'),
        Flag::flag("verbose", 'v'),
    ];
    let parsed = opts::parse(prog, &args, "adfHiLnPprRt:Tuv", &long, CP_HELP)?;
    let utf8 = super::common::utf8_locale();
    let mut o = CopyOpts {
        prog: "cp",
        recursive: false,
        deref: Deref::CommandLine,
        mode: false,
        owner: false,
        times: false,
        links: false,
        force: false,
        interactive: false,
        no_clobber: false,
        update: false,
        verbose: false,
        remove_first: false,
        sparse: Sparse::Auto,
        moving: false,
    };
    let mut deref_given = false;
    let mut target_dir: Option<Vec<u8>> = None;
    let mut no_target = false;
    for p in &parsed.opts {
        match p.val {
            'a' => {
                o.recursive = true;
                o.deref = Deref::Never;
                deref_given = true;
                o.mode = true;
                o.owner = true;
                o.times = true;
                o.links = true;
            }
            'd' => {
                o.deref = Deref::Never;
                deref_given = true;
                o.links = true;
            }
            'f' => o.force = true,
            'i' => {
                o.interactive = true;
                o.no_clobber = false;
            }
            'H' => {
                o.deref = Deref::CommandLine;
                deref_given = true;
            }
            'L' => {
                o.deref = Deref::Always;
                deref_given = true;
            }
            'n' => {
                o.no_clobber = true;
                o.interactive = false;
            }
            'P' => {
                o.deref = Deref::Never;
                deref_given = true;
            }
            'p' => {
                o.mode = true;
                o.owner = true;
                o.times = true;
            }
            'r' | 'R' => o.recursive = true,
            'T' => no_target = true,
            't' => target_dir = p.arg.as_ref().map(|a| a.as_bytes().to_vec()),
            'u' => o.update = true,
            'v' => o.verbose = true,
            '\u{3}' => o.remove_first = true,
            '\u{4}' => {
                o.sparse = match p.arg.as_deref() {
                    Some("auto") => Sparse::Auto,
                    Some("always") => Sparse::Always,
                    Some("never") => Sparse::Never,
                    Some(w) => {
                        return Err(bad_arg(
                            prog,
                            w,
                            "--sparse",
                            &["never", "auto", "always"],
                            utf8,
                        ));
                    }
                    None => Sparse::Auto,
                }
            }
            '\u{5}' => match p.arg.as_deref() {
                // ebsim copies bytes: the copy never shares the source's
                // blocks (XFS with reflink would clone them; see the
                // module's notes).
                Some("auto") | Some("never") => {}
                None | Some("always") => {
                    return Err(AppletError::new(
                        1,
                        format!(
                            "{prog}: --reflink=always: ebsim cannot clone a file's blocks; use --reflink=auto or --reflink=never\n"
                        ),
                    ));
                }
                Some(w) => {
                    return Err(bad_arg(
                        prog,
                        w,
                        "--reflink",
                        &["auto", "always", "never"],
                        utf8,
                    ));
                }
            },
            '\u{1}' | '\u{2}' => {
                let on = p.val == '\u{1}';
                let list = p.arg.as_deref().unwrap_or("mode,ownership,timestamps");
                for item in list.split(',') {
                    match item {
                        "mode" => o.mode = on,
                        "ownership" => o.owner = on,
                        "timestamps" => o.times = on,
                        "links" => o.links = on,
                        "all" => {
                            o.mode = on;
                            o.owner = on;
                            o.times = on;
                            o.links = on;
                        }
                        "context" | "xattr" => {}
                        w => {
                            let name = if on { "--preserve" } else { "--no-preserve" };
                            return Err(bad_arg(
                                prog,
                                w,
                                name,
                                &[
                                    "mode",
                                    "timestamps",
                                    "ownership",
                                    "links",
                                    "context",
                                    "xattr",
                                    "all",
                                ],
                                utf8,
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if o.recursive && !deref_given {
        o.deref = Deref::Never;
    }
    let operands = super::common::arg_bytes(&parsed.operands);
    // Hard links already copied, across the operands.
    let mut linked = HashMap::new();
    each_pair(
        prog,
        &operands,
        target_dir.as_deref(),
        no_target,
        utf8,
        |s, src, dst| {
            let mut c = Copier {
                s,
                o,
                utf8,
                linked: std::mem::take(&mut linked),
            };
            let copied = c.copy(src, dst, true);
            linked = c.linked;
            copied
        },
    )
}

fn bad_arg(prog: &str, w: &str, opt: &str, valid: &[&str], utf8: bool) -> AppletError {
    let (l, r) = super::common::quote_marks(utf8);
    let mut m = format!(
        "{prog}: invalid argument {} for {l}{opt}{r}\nValid arguments are:\n",
        ebsim::compat::quote::quote(w.as_bytes(), utf8)
    );
    for v in valid {
        m.push_str(&format!("  - {l}{v}{r}\n"));
    }
    m.push_str(&super::common::try_help(prog));
    AppletError::new(1, m)
}

/// `mv`.
pub fn run_mv(args: Vec<OsString>) -> i32 {
    finish(main_mv(args), String::new)
}

fn main_mv(args: Vec<OsString>) -> Result<i32, AppletError> {
    let prog = "mv";
    let long = [
        Flag::flag("force", 'f'),
        Flag::flag("interactive", 'i'),
        Flag::flag("no-clobber", 'n'),
        Flag::arg("target-directory", 't'),
        Flag::flag("no-target-directory", 'T'),
        Flag::optional("update", 'u'),
        Flag::flag("verbose", 'v'),
    ];
    let parsed = opts::parse(prog, &args, "fint:Tuv", &long, MV_HELP)?;
    let utf8 = super::common::utf8_locale();
    let (mut interactive, mut no_clobber, mut update, mut verbose, mut no_target) =
        (false, false, false, false, false);
    let mut target_dir: Option<Vec<u8>> = None;
    for p in &parsed.opts {
        match p.val {
            'f' => {
                interactive = false;
                no_clobber = false;
            }
            'i' => {
                interactive = true;
                no_clobber = false;
            }
            'n' => {
                no_clobber = true;
                interactive = false;
            }
            't' => target_dir = p.arg.as_ref().map(|a| a.as_bytes().to_vec()),
            'T' => no_target = true,
            'u' => update = true,
            'v' => verbose = true,
            _ => {}
        }
    }
    let operands = super::common::arg_bytes(&parsed.operands);
    let o = CopyOpts {
        prog: "mv",
        recursive: true,
        deref: Deref::Never,
        mode: true,
        owner: true,
        times: true,
        links: true,
        force: true,
        interactive: false,
        no_clobber: false,
        update: false,
        verbose,
        remove_first: false,
        sparse: Sparse::Auto,
        moving: true,
    };
    each_pair(
        prog,
        &operands,
        target_dir.as_deref(),
        no_target,
        utf8,
        |s, src, dst| move_one(s, src, dst, o, interactive, no_clobber, update, utf8),
    )
}

#[allow(clippy::too_many_arguments)]
fn move_one(
    s: &mut Session,
    src: &[u8],
    dst: &[u8],
    o: CopyOpts,
    interactive: bool,
    no_clobber: bool,
    update: bool,
    utf8: bool,
) -> bool {
    let fail = |m: String| {
        err(&format!("mv: {m}\n"));
        false
    };
    let sst = match s.vfs.lstat(src) {
        Ok(st) => st,
        Err(e) => return fail(format!("cannot stat {}: {}", q(src, utf8), strerror(&e))),
    };
    let dst_l = s.vfs.lstat(dst).ok();
    if let Some(d) = &dst_l {
        if d.loc == sst.loc {
            return fail(format!(
                "{} and {} are the same file",
                q(src, utf8),
                q(dst, utf8)
            ));
        }
        if no_clobber {
            return true;
        }
        if update && d.attr.mtime >= sst.attr.mtime {
            return true;
        }
        if interactive && !ask(&format!("mv: overwrite {}? ", q(dst, utf8))) {
            return true;
        }
        let (sd, dd) = (
            sst.attr.kind == FileType::Directory,
            d.attr.kind == FileType::Directory,
        );
        if sd && !dd {
            return fail(format!(
                "cannot overwrite non-directory {} with directory {}",
                q(dst, utf8),
                q(src, utf8)
            ));
        }
        if !sd && dd {
            return fail(format!(
                "cannot overwrite directory {} with non-directory",
                q(dst, utf8)
            ));
        }
    }
    let r = s
        .vfs
        .rename(
            src,
            dst,
            RenameFlags {
                noreplace: true,
                exchange: false,
            },
        )
        .or_else(|e| {
            if e.kind() == ErrorKind::Exists {
                s.vfs.rename(src, dst, RenameFlags::default())
            } else {
                Err(e)
            }
        });
    match r {
        Ok(()) => {
            if o.verbose {
                out(&format!("renamed {} -> {}\n", q(src, utf8), q(dst, utf8)));
            }
            true
        }
        Err(e) if e.kind() == ErrorKind::CrossDevice => {
            // A copy keeping everything, then the source goes.
            let mut c = Copier {
                s,
                o,
                utf8,
                linked: HashMap::new(),
            };
            if let Some(d) = &dst_l {
                if d.attr.kind == FileType::Directory {
                    if let Err(e) = c.s.vfs.rmdir(dst) {
                        return fail(format!(
                            "inter-device move failed: {} to {}; unable to remove target: {}",
                            q(src, utf8),
                            q(dst, utf8),
                            strerror(&e)
                        ));
                    }
                }
            }
            if !c.copy(src, dst, true) {
                return false;
            }
            remove_tree(s, src, o.verbose, utf8)
        }
        Err(e) if e.kind() == ErrorKind::InvalidArgument => fail(format!(
            "cannot move {} to a subdirectory of itself, {}",
            q(src, utf8),
            q(dst, utf8)
        )),
        Err(e) => fail(format!(
            "cannot move {} to {}: {}",
            q(src, utf8),
            q(dst, utf8),
            strerror(&e)
        )),
    }
}

/// Removes a moved source, depth first (mv's `rm -r` after a copy).
fn remove_tree(s: &mut Session, p: &[u8], verbose: bool, utf8: bool) -> bool {
    let st = match s.vfs.lstat(p) {
        Ok(st) => st,
        Err(e) => {
            err(&format!(
                "mv: cannot remove {}: {}\n",
                q(p, utf8),
                strerror(&e)
            ));
            return false;
        }
    };
    if st.attr.kind == FileType::Directory {
        let entries = match s.vfs.readdir(p) {
            Ok((_, e)) => e,
            Err(e) => {
                err(&format!(
                    "mv: cannot remove {}: {}\n",
                    q(p, utf8),
                    strerror(&e)
                ));
                return false;
            }
        };
        let mut ok = true;
        for e in entries {
            if !remove_tree(s, &join(p, &e.name), verbose, utf8) {
                ok = false;
            }
        }
        if !ok {
            return false;
        }
        return match s.vfs.rmdir(p) {
            Ok(()) => {
                if verbose {
                    out(&format!("removed directory {}\n", q(p, utf8)));
                }
                true
            }
            Err(e) => {
                err(&format!(
                    "mv: cannot remove {}: {}\n",
                    q(p, utf8),
                    strerror(&e)
                ));
                false
            }
        };
    }
    match s.vfs.unlink(p) {
        Ok(()) => {
            if verbose {
                out(&format!("removed {}\n", q(p, utf8)));
            }
            true
        }
        Err(e) => {
            err(&format!(
                "mv: cannot remove {}: {}\n",
                q(p, utf8),
                strerror(&e)
            ));
            false
        }
    }
}
