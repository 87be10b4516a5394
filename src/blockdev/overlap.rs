//! A plan's walk overlapped with what consumes it.
//!
//! The big writers generate their blocks while they are walked (bitmaps
//! rendered, descriptors checksummed), and a commit's consumers of those
//! writes are costly too: the undo log's pass computes a CRC32C of every
//! 4 KiB written, the apply pass copies every byte into the page cache.
//! [`for_each_coalesced_overlapped`] runs the two on the machine's two
//! cores: the walk (and the [`Coalescer`]) stays on the calling thread, and
//! once a walk has produced [`OVERLAP_AFTER`] bytes the consumer moves to a
//! second thread, fed the coalesced writes in order through a short queue
//! of owned buffers (recycled, so the queue's memory stays a few buffers).
//!
//! The consumer sees exactly the stream a serial [`for_each_coalesced`]
//! gives, in the same order and from one thread at a time, so nothing the
//! consumer guarantees changes: a write is made only after every write
//! before it, the fault-injection count is the same, and a failing
//! consumer stops the walk (the writes already queued behind the failure
//! are dropped, never made). Small commits (a partition table, a
//! superblock) never start a thread.
//!
//! Writing the file itself from two threads would not help: Linux takes
//! the inode's lock around each buffered write (tmpfs and ext4 alike), so
//! two writers to one file take turns.

use super::{Coalescer, Error, WritePlan};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// The queue's two ends the walk holds: full buffers out, empty ones back.
type Queue = (SyncSender<(u64, Vec<u8>)>, Receiver<Vec<u8>>);

/// Bytes a walk produces before its consumer moves to a second thread.
pub const OVERLAP_AFTER: u64 = 4 << 20;
/// Coalesced writes queued between the walk and the consumer.
const QUEUE: usize = 4;

/// Walks `plan` through a [`Coalescer`] and calls `consume` with each
/// coalesced write, in order; once the walk has produced
/// [`OVERLAP_AFTER`] bytes, `consume` runs on a second thread while the
/// walk goes on. Returns the consumer's first error (the walk stops
/// there), else the walk's.
pub fn for_each_coalesced_overlapped<F>(plan: &dyn WritePlan, consume: F) -> Result<(), Error>
where
    F: FnMut(u64, &[u8]) -> Result<(), Error> + Send,
{
    let mut consume = consume;
    std::thread::scope(|scope| {
        let mut inline: Option<&mut F> = Some(&mut consume);
        let mut queue: Option<Queue> = None;
        let mut worker = None;
        let mut produced = 0u64;
        let mut c_sink = |off: u64, bytes: &[u8]| -> Result<(), Error> {
            produced = produced.saturating_add(bytes.len() as u64);
            if produced > OVERLAP_AFTER
                && let Some(f) = inline.take()
            {
                let (tx, rx) = sync_channel::<(u64, Vec<u8>)>(QUEUE);
                let (back_tx, back_rx) = sync_channel::<Vec<u8>>(QUEUE + 2);
                let spawned = std::thread::Builder::new()
                    .name("ebsim-commit".into())
                    .spawn_scoped(scope, move || -> Result<(), Error> {
                        for (off, buf) in rx {
                            f(off, &buf)?;
                            // A full return queue only costs an allocation.
                            let _ = back_tx.try_send(buf);
                        }
                        Ok(())
                    });
                match spawned {
                    Ok(h) => {
                        worker = Some(h);
                        queue = Some((tx, back_rx));
                    }
                    // No thread to be had: the walk's own thread consumes.
                    Err(_) => return serial_fallback(),
                }
            }
            if let Some(f) = inline.as_mut() {
                return f(off, bytes);
            }
            let Some((tx, back)) = queue.as_ref() else {
                return Err(stopped());
            };
            let mut buf: Vec<u8> = back.try_recv().unwrap_or_default();
            buf.clear();
            buf.extend_from_slice(bytes);
            // Fails only when the consumer stopped on an error (returned
            // below, after the join).
            tx.send((off, buf)).map_err(|_| stopped())
        };
        let mut c = Coalescer::new(&mut c_sink);
        let walked = plan
            .for_each_write(&mut |off, bytes| c.write(off, bytes))
            .and_then(|()| c.flush());
        drop(c);
        // Closing the queue lets the consumer finish what is queued.
        drop(queue);
        let consumed = match worker {
            None => Ok(()),
            Some(h) => h.join().unwrap_or_else(|_| Err(stopped())),
        };
        consumed.and(walked)
    })
}

/// The walk's error when the consumer thread stopped (its own error is
/// the one returned).
fn stopped() -> Error {
    Error::Io {
        path: std::path::PathBuf::new(),
        op: "commit thread stopped".into(),
        source: std::io::Error::other("the thread consuming the writes ended"),
    }
}

/// When no second thread can be started the consumer was handed over
/// already; the walk fails cleanly (before the consumer saw anything past
/// [`OVERLAP_AFTER`]) instead of guessing.
fn serial_fallback() -> Result<(), Error> {
    Err(Error::Io {
        path: std::path::PathBuf::new(),
        op: "start commit thread".into(),
        source: std::io::Error::other("cannot start a thread"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blockdev::for_each_coalesced;

    /// A plan of `n` writes of `len` bytes, each at `stride`.
    struct Strided {
        n: u64,
        len: usize,
        stride: u64,
    }

    impl WritePlan for Strided {
        fn for_each_write(&self, sink: &mut crate::blockdev::Sink<'_>) -> Result<(), Error> {
            let mut b = vec![0u8; self.len];
            for i in 0..self.n {
                b.fill((i % 251) as u8);
                sink(i * self.stride, &b)?;
            }
            Ok(())
        }
    }

    /// 4 KiB writes 8 KiB apart; the walk fails at the write numbered .0.
    struct Failing(u64);

    impl WritePlan for Failing {
        fn for_each_write(&self, sink: &mut crate::blockdev::Sink<'_>) -> Result<(), Error> {
            let b = vec![7u8; 4096];
            for i in 0..self.0 {
                sink(i * 8192, &b)?;
            }
            Err(Error::OutOfRange {
                offset: self.0,
                len: 1,
                size: 0,
            })
        }
    }

    fn serial(plan: &dyn WritePlan) -> Vec<(u64, Vec<u8>)> {
        let mut got = Vec::new();
        for_each_coalesced(plan, &mut |o, b| {
            got.push((o, b.to_vec()));
            Ok(())
        })
        .unwrap();
        got
    }

    #[test]
    fn the_consumer_sees_the_serial_stream() {
        for plan in [
            // Touching 4 KiB writes (coalesced), past the threshold.
            Strided {
                n: 3000,
                len: 4096,
                stride: 4096,
            },
            // Separate writes larger than the coalescing limit.
            Strided {
                n: 40,
                len: 300 * 1024,
                stride: 1 << 20,
            },
            // A small plan that never starts a thread.
            Strided {
                n: 3,
                len: 512,
                stride: 8192,
            },
        ] {
            let mut got = Vec::new();
            let mut threads = std::collections::BTreeSet::new();
            for_each_coalesced_overlapped(&plan, |o, b| {
                threads.insert(format!("{:?}", std::thread::current().id()));
                got.push((o, b.to_vec()));
                Ok(())
            })
            .unwrap();
            assert_eq!(got, serial(&plan));
            let big = plan.n * plan.len as u64 > OVERLAP_AFTER + (256 << 10);
            assert_eq!(threads.len(), if big { 2 } else { 1 });
        }
    }

    #[test]
    fn a_failing_consumer_stops_the_walk_at_its_write() {
        let plan = Strided {
            n: 4000,
            len: 4096,
            stride: 8192,
        };
        let mut seen = 0u64;
        let r = for_each_coalesced_overlapped(&plan, |o, _| {
            if o == 3000 * 8192 {
                return Err(Error::OutOfRange {
                    offset: o,
                    len: 1,
                    size: 0,
                });
            }
            seen += 1;
            Ok(())
        });
        assert!(matches!(r, Err(Error::OutOfRange { offset, .. }) if offset == 3000 * 8192));
        assert_eq!(seen, 3000);
        // The walk's own error comes back when the consumer had none,
        // after the consumer made every write passed on before it (the
        // last, still gathered by the coalescer, is not, as in a serial
        // walk).
        let plan = Failing(3000);
        let mut seen = 0u64;
        let r = for_each_coalesced_overlapped(&plan, |_, _| {
            seen += 1;
            Ok(())
        });
        assert!(matches!(r, Err(Error::OutOfRange { offset: 3000, .. })));
        assert_eq!(seen, 2999);
    }
}
