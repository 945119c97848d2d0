//! Where log lines go: standard error, with the lines below `warn` gathered for a few
//! milliseconds and written together.
//!
//! A delivery writes one INFO line, so under load a process writes thousands of lines a
//! second. Written one `write` each, every line is a system call on the thread that handles
//! the mail (`docs/BENCHMARKS.md`, "Rendering with a layout, and the delivery line").
//! Gathered, a busy second costs at most `1 / GATHER` writes on a thread of their own, each
//! carrying every line that came in meanwhile.
//!
//! A `warn` or `error` line is written at once, after every gathered line before it, so
//! the lines keep their order and the last line before an exit (a start that fails) is
//! never left in the buffer. [`Lines::flush`] writes what is left when the process stops.
//! A process killed outright loses at most the last `GATHER` of its info lines.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// How long the first gathered line waits for others before they are written.
const GATHER: Duration = Duration::from_millis(5);

/// Past this many bytes the line that adds to the buffer writes it out itself: a process
/// logging faster than standard error takes its lines slows down instead of growing.
const MAX_PENDING: usize = 256 * 1024;

/// The lines waiting, and where they go.
pub(crate) struct Shared {
    pending: Mutex<Vec<u8>>,
    /// Signalled when a line lands in an empty buffer.
    filled: Condvar,
    /// Standard error. Held for every write, so that a line written at once cannot pass
    /// gathered lines that were taken out but not yet written.
    sink: Mutex<Box<dyn Write + Send>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves nothing half-done that matters to a log.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Writes every gathered line, then `line`.
    fn write_out(&self, line: &[u8]) -> io::Result<()> {
        let mut sink = lock(&self.sink);
        let gathered = std::mem::take(&mut *lock(&self.pending));
        sink.write_all(&gathered)?;
        sink.write_all(line)?;
        sink.flush()
    }
}

/// The log layer's writer: a handle on the buffer and its writing thread.
#[derive(Clone)]
pub(crate) struct Lines {
    shared: Arc<Shared>,
    /// False when the writing thread could not start: every line is then written at once.
    gathers: bool,
}

impl Lines {
    /// Lines to standard error.
    pub(crate) fn to_stderr() -> Self {
        Self::start(Box::new(io::stderr()))
    }

    /// Starts the thread that writes gathered lines to `sink`.
    pub(crate) fn start(sink: Box<dyn Write + Send>) -> Self {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Vec::new()),
            filled: Condvar::new(),
            sink: Mutex::new(sink),
        });
        let writer = Arc::clone(&shared);
        let gathers = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || write_gathered(&writer))
            .is_ok();
        Self { shared, gathers }
    }

    /// Writes whatever is gathered; the process calls it before it ends.
    pub(crate) fn flush(&self) {
        let _ = self.shared.write_out(&[]);
    }
}

/// The writing thread: waits for a first line, lets others gather, writes them.
fn write_gathered(shared: &Shared) {
    loop {
        {
            let mut pending = lock(&shared.pending);
            while pending.is_empty() {
                pending = shared
                    .filled
                    .wait(pending)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
        std::thread::sleep(GATHER);
        let _ = shared.write_out(&[]);
    }
}

/// One event's writer, chosen by its level.
pub(crate) enum LineWriter<'a> {
    /// `info` and below: into the buffer.
    Gathered(&'a Shared),
    /// `warn` and `error`: out at once.
    Direct(&'a Shared),
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Self::Direct(shared) => shared.write_out(buf),
            Self::Gathered(shared) => {
                let mut pending = lock(&shared.pending);
                let was_empty = pending.is_empty();
                pending.extend_from_slice(buf);
                let full = pending.len() >= MAX_PENDING;
                drop(pending);
                if full {
                    shared.write_out(&[])
                } else {
                    if was_empty {
                        shared.filled.notify_one();
                    }
                    Ok(())
                }
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Lines {
    /// The writer of a line at `level`.
    fn writer_for(&self, level: Level) -> LineWriter<'_> {
        if !self.gathers || level <= Level::WARN {
            LineWriter::Direct(&self.shared)
        } else {
            LineWriter::Gathered(&self.shared)
        }
    }
}

impl<'a> MakeWriter<'a> for Lines {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter::Direct(&self.shared)
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        self.writer_for(*meta.level())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A sink the test reads back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            lock(&self.0).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(lock(&self.0).clone()).unwrap()
        }
    }

    /// Writes `text` as a line of `level` is written.
    fn write(lines: &Lines, level: Level, text: &str) {
        lines.writer_for(level).write_all(text.as_bytes()).unwrap();
    }

    /// Lines into a sink the test reads back.
    fn captured() -> (Lines, Captured) {
        let out = Captured::default();
        (Lines::start(Box::new(out.clone())), out)
    }

    #[test]
    fn info_lines_are_gathered_then_written_together_in_order() {
        let (lines, out) = captured();
        write(&lines, Level::INFO, "one\n");
        write(&lines, Level::INFO, "two\n");
        let start = Instant::now();
        while out.text().is_empty() {
            assert!(start.elapsed() < Duration::from_secs(5), "never written");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(out.text(), "one\ntwo\n");
    }

    #[test]
    fn a_warning_is_written_at_once_after_the_lines_before_it() {
        let (lines, out) = captured();
        write(&lines, Level::INFO, "info\n");
        write(&lines, Level::WARN, "warn\n");
        // No wait: the warning's own write carried the gathered line before it.
        assert_eq!(out.text(), "info\nwarn\n");
        write(&lines, Level::INFO, "later\n");
        lines.flush();
        assert_eq!(out.text(), "info\nwarn\nlater\n");
    }
}
