//! The background log writer: formatted lines are appended to a shared
//! buffer under a short lock, and one thread writes the buffer out in a
//! single write every [`FLUSH_EVERY`], or sooner once it holds
//! [`FLUSH_BYTES`].
//!
//! Why not a channel with a line per message (tracing-appender's
//! `non_blocking`): with the server on one core, every line woke the
//! writer thread, so each request paid for a thread switch and a write
//! call; the access log cost about a fifth of the throughput. Here a
//! request pays for a copy of its line, and a second of lines at 20k
//! requests a second costs ten writes.
//!
//! Bounded: when `limit` lines or [`MAX_PENDING_BYTES`] wait (the writer
//! is stuck, say stderr is a full pipe nobody reads), new lines are
//! dropped and counted, never waited for.

use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long a line waits at most before it is written.
pub(super) const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// A buffer this large is written at once, without waiting.
pub(super) const FLUSH_BYTES: usize = 64 * 1024;

/// The most bytes that wait, whatever the line limit: a client chooses its
/// path's length, so a count of lines alone would not bound memory while
/// the writer is stuck.
pub(super) const MAX_PENDING_BYTES: usize = 8 * 1024 * 1024;

thread_local! {
    /// Set while this thread logs a report of dropped lines: that line
    /// is kept even when `limit` lines wait, or the count it carries
    /// would be lost with it (one line per report interval at most).
    static BYPASS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `log` with its lines exempt from the limit (see `BYPASS`).
pub(super) fn beyond_limit(log: impl FnOnce()) {
    BYPASS.with(|bypass| bypass.set(true));
    log();
    BYPASS.with(|bypass| bypass.set(false));
}

/// Lines waiting to be written.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    lines: usize,
    stopping: bool,
    /// The writer was told that `bytes` is full and has not taken it yet:
    /// callers do not tell it again. Every `notify_one` is a system call,
    /// and the writer, on the same core as a busy server, may take a while
    /// to run: telling it on every line past the mark cost more than the
    /// lines themselves.
    told: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    limit: usize,
    dropped: AtomicUsize,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The [`MakeWriter`] the subscriber formats into: each event's line is
/// appended to the pending buffer (or dropped and counted when `limit`
/// lines wait).
#[derive(Clone)]
pub(super) struct BatchWriter {
    shared: Arc<Shared>,
}

/// How long dropping the [`Worker`] waits for the last lines to be
/// written: a stuck stderr must not keep the process from exiting.
const LAST_WRITE: Duration = Duration::from_secs(1);

/// The writer thread; dropping it writes what is pending (waiting
/// [`LAST_WRITE`] at most) and ends it.
pub(super) struct Worker {
    shared: Arc<Shared>,
    done: mpsc::Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the thread that writes into `out`.
pub(super) fn start<W: Write + Send + 'static>(
    mut out: W,
    limit: usize,
) -> io::Result<(BatchWriter, Worker)> {
    let shared = Arc::new(Shared {
        pending: Mutex::new(Pending::default()),
        wake: Condvar::new(),
        limit: limit.max(1),
        dropped: AtomicUsize::new(0),
    });
    let (finished, done) = mpsc::channel::<()>();
    let thread = {
        let shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("plume-log-writer".to_owned())
            .spawn(move || {
                let mut spare = Vec::new();
                loop {
                    let stopping = {
                        let mut pending = shared.lock();
                        if !pending.stopping && pending.bytes.len() < FLUSH_BYTES {
                            pending = shared
                                .wake
                                .wait_timeout(pending, FLUSH_EVERY)
                                .unwrap_or_else(PoisonError::into_inner)
                                .0;
                        }
                        // Take the lines and give the callers an empty
                        // buffer (last round's, so its memory is reused).
                        std::mem::swap(&mut pending.bytes, &mut spare);
                        pending.lines = 0;
                        pending.told = false;
                        pending.stopping
                    };
                    if !spare.is_empty() {
                        // A failed write loses these lines; there is
                        // nowhere to say so but the log itself.
                        let _ = out.write_all(&spare).and_then(|()| out.flush());
                        spare.clear();
                    }
                    if stopping {
                        let _ = finished.send(());
                        return;
                    }
                }
            })?
    };
    Ok((
        BatchWriter {
            shared: Arc::clone(&shared),
        },
        Worker {
            shared,
            done,
            thread: Some(thread),
        },
    ))
}

impl BatchWriter {
    /// The count of dropped lines, shared with the writer.
    pub(super) fn dropped(&self) -> DroppedCount {
        DroppedCount(Arc::clone(&self.shared))
    }
}

/// How many lines were dropped; cheap to clone.
#[derive(Clone)]
pub(super) struct DroppedCount(Arc<Shared>);

impl DroppedCount {
    /// Lines dropped so far.
    pub(super) fn get(&self) -> usize {
        self.0.dropped.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for DroppedCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("DroppedCount").field(&self.get()).finish()
    }
}

impl BatchWriter {
    /// Appends one line that `format` writes straight into the buffer, of
    /// at most `most` bytes; or drops and counts it, like
    /// [`write`](Write::write), when the buffer is full.
    pub(super) fn append(&self, most: usize, format: impl FnOnce(&mut Vec<u8>)) {
        let mut pending = self.shared.lock();
        let over =
            pending.lines >= self.shared.limit || pending.bytes.len() + most > MAX_PENDING_BYTES;
        if over && !BYPASS.with(std::cell::Cell::get) {
            drop(pending);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        format(&mut pending.bytes);
        pending.lines += 1;
        let tell = !pending.told && pending.bytes.len() >= FLUSH_BYTES;
        pending.told |= tell;
        drop(pending);
        if tell {
            self.shared.wake.notify_one();
        }
    }
}

impl Write for BatchWriter {
    /// One call per event: the subscriber formats the whole line first.
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        self.append(line.len(), |bytes| bytes.extend_from_slice(line));
        // Reported as written even when dropped: the caller must not
        // retry or fail.
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchWriter {
    type Writer = BatchWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.wake.notify_one();
        if self.done.recv_timeout(LAST_WRITE).is_ok()
            && let Some(thread) = self.thread.take()
        {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that never returns until the test ends.
    struct Stuck(mpsc::Receiver<()>);

    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _ = self.0.recv();
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn long_lines_are_bounded_by_bytes_not_only_by_lines() {
        let (release, stuck) = mpsc::channel();
        let (mut writer, worker) = start(Stuck(stuck), usize::MAX).unwrap();
        let line = vec![b'x'; 64 * 1024];
        // 64 MiB of lines offered while the writer is stuck in its first
        // write (or before it): at most the cap (plus that one batch)
        // is kept.
        for _ in 0..1024 {
            writer.write_all(&line).unwrap();
        }
        let pending = writer.shared.lock().bytes.len();
        assert!(pending <= MAX_PENDING_BYTES, "{pending}");
        assert!(writer.dropped().get() >= 1024 - 2 * MAX_PENDING_BYTES / line.len());
        drop(release);
        drop(worker);
    }
}
