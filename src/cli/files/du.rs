//! `du` (coreutils 9.1) inside an instance: -a, -s, -c, -h, -k, -m, -b,
//! -B SIZE, --apparent-size, -d/--max-depth, -L, -x, -l. Depth first in
//! readdir order (the kernel's), a directory after what it holds; files
//! with several links counted once; sizes rounded up.

use super::common::{Session, Stdout, start, strerror};
use super::opts::{self, Flag};
use crate::cli::error::{AppletError, finish};
use crate::cli::output::err;
use ebsim::compat::quote::{quote, quoteaf};
use ebsim::fs::node::FileType;
use ebsim::guest::df::{BlockSizeError, parse_block_size};
use ebsim::guest::human::{self, opts as hopts};
use std::collections::HashSet;
use std::ffi::OsString;

const HELP: &str = "Usage: du [OPTION]... [FILE]...
Shows the space each FILE of the instance uses, directories with all they
hold.

  -a, --all             show files too, not only directories
      --apparent-size   sizes, not the space used
  -B, --block-size=SIZE in units of SIZE
  -b, --bytes           --apparent-size --block-size=1
  -c, --total           a grand total
  -d, --max-depth=N     show only N levels down
  -h, --human-readable  sizes like 1K 234M 2G
  -k                    --block-size=1K
  -L, --dereference     follow every symlink
  -l, --count-links     count hard links every time
  -m                    --block-size=1M
  -s, --summarize       only a total for each FILE
  -x, --one-file-system skip other filesystems
      --help            show this help
      --version         show the version
";

struct Opts {
    all: bool,
    apparent: bool,
    /// gnulib `human_readable` options and block size, as `-h`, `-k`,
    /// `-m`, `-b` and `-B` set them.
    block: u64,
    human: u32,
    total: bool,
    max_depth: Option<usize>,
    deref: bool,
    count_links: bool,
    one_fs: bool,
    utf8: bool,
}

struct Du<'a> {
    s: &'a mut Session,
    o: Opts,
    seen: HashSet<(usize, u64)>,
    out: Stdout,
    code: i32,
}

/// `du`.
pub fn run(args: Vec<OsString>) -> i32 {
    finish(main(args), String::new)
}

fn main(args: Vec<OsString>) -> Result<i32, AppletError> {
    let prog = "du";
    let long = [
        Flag::flag("all", 'a'),
        Flag::flag("apparent-size", '\u{1}'),
        Flag::arg("block-size", 'B'),
        Flag::flag("bytes", 'b'),
        Flag::flag("total", 'c'),
        Flag::flag("dereference", 'L'),
        Flag::flag("count-links", 'l'),
        Flag::flag("human-readable", 'h'),
        Flag::arg("max-depth", 'd'),
        Flag::flag("summarize", 's'),
        Flag::flag("one-file-system", 'x'),
    ];
    let parsed = opts::parse(prog, &args, "aB:bcd:hHklLmsSxD", &long, HELP)?;
    let utf8 = super::common::utf8_locale();
    let mut o = Opts {
        all: false,
        apparent: false,
        block: 1024,
        human: 0,
        total: false,
        max_depth: None,
        deref: false,
        count_links: false,
        one_fs: false,
        utf8,
    };
    let mut summarize = false;
    for p in &parsed.opts {
        match p.val {
            'a' => o.all = true,
            '\u{1}' => o.apparent = true,
            'b' => {
                o.apparent = true;
                o.block = 1;
                o.human = 0;
            }
            'B' => {
                let a = p.arg.clone().unwrap_or_default();
                match parse_block_size(&a) {
                    Ok((h, b)) => {
                        o.human = h;
                        o.block = b;
                    }
                    Err(e) => {
                        // gnulib's xstrtol_fatal: the option as it was
                        // named (a long one in full), the argument in
                        // plain quotes.
                        let opt = p.spelling();
                        let msg = match e {
                            BlockSizeError::Invalid => format!("invalid {opt} argument '{a}'"),
                            BlockSizeError::InvalidSuffix => {
                                format!("invalid suffix in {opt} argument '{a}'")
                            }
                            BlockSizeError::Overflow => format!("{opt} argument '{a}' too large"),
                        };
                        return Err(AppletError::new(1, format!("{prog}: {msg}\n")));
                    }
                }
            }
            'c' => o.total = true,
            'd' => match p.arg.as_deref().and_then(|d| d.parse::<usize>().ok()) {
                Some(d) => o.max_depth = Some(d),
                None => {
                    return Err(AppletError::new(
                        1,
                        format!(
                            "{prog}: invalid maximum depth {}\n{}",
                            quote(p.arg.as_deref().unwrap_or("").as_bytes(), utf8),
                            super::common::try_help(prog)
                        ),
                    ));
                }
            },
            'h' => {
                o.human = hopts::AUTOSCALE | hopts::SI | hopts::BASE_1024;
                o.block = 1;
            }
            'k' => {
                o.block = 1024;
                o.human = 0;
            }
            'm' => {
                o.block = 1 << 20;
                o.human = 0;
            }
            'L' => o.deref = true,
            'l' => o.count_links = true,
            's' => summarize = true,
            'x' => o.one_fs = true,
            _ => {}
        }
    }
    if summarize {
        if o.all {
            return Err(opts::usage_error(
                prog,
                "cannot both summarize and show all entries",
                1,
            ));
        }
        if o.max_depth.is_some_and(|d| d > 0) {
            return Err(AppletError::new(
                1,
                format!(
                    "{prog}: warning: summarizing conflicts with --max-depth={}\n{}",
                    o.max_depth.unwrap_or(0),
                    super::common::try_help(prog)
                ),
            ));
        }
        o.max_depth = Some(0);
    }
    let mut s = start(prog, false)?;
    let operands = if parsed.operands.is_empty() {
        vec![b".".to_vec()]
    } else {
        super::common::arg_bytes(&parsed.operands)
    };
    let mut du = Du {
        s: &mut s,
        o,
        seen: HashSet::new(),
        out: Stdout::new(),
        code: 0,
    };
    let mut grand = 0u64;
    for op in &operands {
        let st = if du.o.deref {
            du.s.vfs.stat(op)
        } else {
            du.s.vfs.lstat(op)
        };
        match st {
            Ok(st) => {
                let dev = st.loc.dev;
                grand += du.walk(op, 0, dev);
            }
            Err(e) => {
                du.out.flush();
                err(&format!(
                    "{prog}: cannot access {}: {}\n",
                    quoteaf(op, utf8),
                    strerror(&e)
                ));
                du.code = 1;
            }
        }
    }
    if du.o.total {
        let line = format!("{}\ttotal\n", du.size_str(grand));
        du.out.str(&line);
    }
    let code = du.code;
    Ok(du.out.finish(prog, code))
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = dir.to_vec();
    if !p.ends_with(b"/") {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

impl Du<'_> {
    fn size_str(&self, bytes: u64) -> String {
        human::human_readable(bytes, self.o.human, 1, self.o.block)
    }

    fn print(&mut self, bytes: u64, path: &[u8]) {
        let mut line = self.size_str(bytes).into_bytes();
        line.push(b'\t');
        line.extend_from_slice(path);
        line.push(b'\n');
        self.out.bytes(&line);
    }

    /// The bytes under `path` (counted once per inode), printing as it
    /// goes.
    fn walk(&mut self, path: &[u8], depth: usize, top_dev: usize) -> u64 {
        let st = if self.o.deref {
            self.s.vfs.stat(path)
        } else {
            self.s.vfs.lstat(path)
        };
        let st = match st {
            Ok(st) => st,
            Err(e) => {
                self.out.flush();
                err(&format!(
                    "du: cannot access {}: {}\n",
                    quoteaf(path, self.o.utf8),
                    strerror(&e)
                ));
                self.code = 1;
                return 0;
            }
        };
        let key = (st.loc.dev, st.loc.ino);
        if (st.attr.nlink > 1 || st.attr.kind == FileType::Directory)
            && !self.seen.insert(key)
            && !self.o.count_links
        {
            return 0;
        }
        let own = if self.o.apparent {
            st.attr.size
        } else {
            st.attr.blocks.saturating_mul(512)
        };
        let show = self.o.max_depth.is_none_or(|d| depth <= d);
        if st.attr.kind != FileType::Directory {
            if (self.o.all || depth == 0) && show {
                self.print(own, path);
            }
            return own;
        }
        let mut total = own;
        if !(self.o.one_fs && st.loc.dev != top_dev) {
            match self.s.vfs.readdir(path) {
                Ok((_, entries)) => {
                    for e in entries {
                        total += self.walk(&join(path, &e.name), depth + 1, top_dev);
                    }
                }
                Err(e) => {
                    self.out.flush();
                    err(&format!(
                        "du: cannot read directory {}: {}\n",
                        quoteaf(path, self.o.utf8),
                        strerror(&e)
                    ));
                    self.code = 1;
                }
            }
        }
        if show {
            self.print(total, path);
        }
        total
    }
}
