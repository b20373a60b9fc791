//! A non-blocking log sink: request tasks hand each formatted log line to a
//! bounded in-memory buffer, and one writer thread moves the buffer to the
//! real output (stderr) in batches. A request never waits for a `write(2)`;
//! when the buffer is full (the output is slower than the lines come), the
//! line is dropped and counted in [`dropped_lines`].
//!
//! The writer thread sleeps on a condition variable while there is nothing
//! to write and is woken only when the buffer goes from empty to non-empty.
//! After writing a batch it pauses for [`BATCH_PAUSE`] before taking the
//! next one, so under load it wakes at most once per pause, however many
//! lines arrive; a line reaches the output at most that much later.
//! Dropping the [`FlushGuard`] writes what is buffered and stops the thread.

use std::io::Write;
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;

/// Bytes buffered before lines are dropped.
pub const DEFAULT_CAPACITY: usize = 1 << 20;

/// Pause of the writer thread between two batches.
pub const BATCH_PAUSE: Duration = Duration::from_millis(2);

static DROPPED: LazyLock<Counter> = LazyLock::new(Counter::default);

/// Log lines dropped because the buffer was full (process-wide; exported as
/// `switchboard_log_lines_dropped_total`).
pub fn dropped_lines() -> Counter {
    DROPPED.clone()
}

#[derive(Default)]
struct State {
    buf: Vec<u8>,
    /// The writer thread waits for lines (a producer must wake it).
    idle: bool,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    capacity: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Hands out [`LineWriter`]s (a `tracing_subscriber` `MakeWriter`).
#[derive(Clone)]
pub struct NonBlocking {
    shared: Arc<Shared>,
}

/// Writes what is still buffered and stops the writer thread when dropped.
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the writer thread moving lines to `out`; lines beyond `capacity`
/// buffered bytes are dropped.
pub fn non_blocking<W: Write + Send + 'static>(
    out: W,
    capacity: usize,
) -> std::io::Result<(NonBlocking, FlushGuard)> {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        wake: Condvar::new(),
        capacity,
    });
    let thread = std::thread::Builder::new()
        .name("log-writer".into())
        // Formatting happens on the request tasks; this thread only copies bytes.
        .stack_size(64 * 1024)
        .spawn({
            let shared = shared.clone();
            move || write_loop(&shared, out)
        })?;
    Ok((
        NonBlocking {
            shared: shared.clone(),
        },
        FlushGuard {
            shared,
            thread: Some(thread),
        },
    ))
}

fn write_loop<W: Write>(shared: &Shared, mut out: W) {
    let mut batch = Vec::new();
    loop {
        let closed = {
            let mut state = shared.lock();
            while state.buf.is_empty() && !state.closed {
                state.idle = true;
                state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            state.idle = false;
            std::mem::swap(&mut batch, &mut state.buf);
            state.closed
        };
        // A failing output (closed stderr) loses the lines; there is nowhere to report it.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        if closed {
            return;
        }
        std::thread::sleep(BATCH_PAUSE);
    }
}

impl NonBlocking {
    /// Buffers one complete line, newline included (or drops and counts it
    /// when full).
    pub fn write_line(&self, line: &[u8]) {
        let wake = {
            let mut state = self.shared.lock();
            if state.buf.len() + line.len() > self.shared.capacity {
                drop(state);
                DROPPED.inc();
                return;
            }
            state.buf.extend_from_slice(line);
            std::mem::take(&mut state.idle)
        };
        if wake {
            self.shared.wake.notify_one();
        }
    }
}

/// One log event's writer: `tracing_subscriber` formats an event and writes
/// it with one `write_all`, which becomes one buffered line.
pub struct LineWriter<'a> {
    sink: &'a NonBlocking,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.sink.write_line(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for NonBlocking {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter { sink: self }
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output shared with the test.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn write_line(nb: &NonBlocking, line: &str) {
        use tracing_subscriber::fmt::MakeWriter as _;
        nb.make_writer().write_all(line.as_bytes()).unwrap();
    }

    #[test]
    fn every_line_is_written_in_order_by_the_time_the_guard_is_dropped() {
        let sink = Sink::default();
        let (nb, guard) = non_blocking(sink.clone(), DEFAULT_CAPACITY).unwrap();
        let lines: Vec<String> = (0..1000).map(|i| format!("line {i}\n")).collect();
        for l in &lines {
            write_line(&nb, l);
        }
        drop(guard);
        assert_eq!(
            String::from_utf8(sink.0.lock().unwrap().clone()).unwrap(),
            lines.concat()
        );
    }

    #[test]
    fn lines_from_many_threads_stay_whole() {
        let sink = Sink::default();
        let (nb, guard) = non_blocking(sink.clone(), DEFAULT_CAPACITY).unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let nb = nb.clone();
                s.spawn(move || {
                    for i in 0..200 {
                        write_line(&nb, &format!("thread {t} line {i} {}\n", "x".repeat(100)));
                    }
                });
            }
        });
        drop(guard);
        let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(out.lines().count(), 800);
        assert!(
            out.lines()
                .all(|l| l.starts_with("thread ") && l.ends_with(&"x".repeat(100)))
        );
    }

    /// An output that blocks until the test lets it go.
    struct Blocked {
        gate: Arc<Mutex<()>>,
        out: Sink,
    }

    impl Write for Blocked {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _open = self.gate.lock().unwrap();
            self.out.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_buffer_drops_and_counts_lines_instead_of_blocking() {
        let gate = Arc::new(Mutex::new(()));
        let closed = gate.lock().unwrap();
        let sink = Sink::default();
        let (nb, guard) = non_blocking(
            Blocked {
                gate: gate.clone(),
                out: sink.clone(),
            },
            64,
        )
        .unwrap();
        // The writer thread takes the first line or two and gets stuck in the
        // output; then the buffer holds two 30-byte lines and drops the rest.
        let before = dropped_lines().get();
        for i in 0..10 {
            write_line(&nb, &format!("{i:>29}\n"));
        }
        assert!(
            dropped_lines().get() - before >= 6,
            "lines beyond the capacity are dropped"
        );
        drop(closed);
        drop(guard);
        let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert!((2..=4).contains(&out.lines().count()), "{out}");
        assert!(out.starts_with(&format!("{:>29}\n", 0)));
    }
}
