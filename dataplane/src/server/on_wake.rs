//! A future polled only when it asked to be.
//!
//! A connection task waits on its connection and, beside it, on rare events
//! (shutdown, drain, its timeout check). A `select!` polls every branch each
//! time the task wakes, and the task wakes several times per request for the
//! connection alone. [`PollOnWake`] wraps the rare side: it polls its future
//! on the first poll and then only after that future's own waker fired, so
//! the connection's wake-ups cost the rare side two atomic operations.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// The wake-up record shared by a [`PollOnWake`] and the waker it hands to
/// its future. Made once per task and reused by each [`PollOnWake`].
pub struct WakeSignal {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl WakeSignal {
    /// A signal and the waker that sets it.
    pub fn new() -> (Arc<Self>, Waker) {
        let signal = Arc::new(Self {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        let waker = Waker::from(signal.clone());
        (signal, waker)
    }
}

impl Wake for WakeSignal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// Polls `fut` on its first poll, then only once `fut`'s waker fired.
pub struct PollOnWake<'a, F> {
    fut: F,
    signal: &'a WakeSignal,
    waker: &'a Waker,
}

impl<'a, F: Future + Unpin> PollOnWake<'a, F> {
    /// Wraps `fut`; `signal` and `waker` come from one [`WakeSignal::new`].
    pub fn new(fut: F, signal: &'a Arc<WakeSignal>, waker: &'a Waker) -> Self {
        // A new future must be polled once to register its interest.
        signal.woken.store(true, Ordering::Release);
        Self { fut, signal, waker }
    }
}

impl<F: Future + Unpin> Future for PollOnWake<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        // Registered before the check: a wake-up between the two is seen.
        this.signal.task.register(cx.waker());
        if !this.signal.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        Pin::new(&mut this.fut).poll(&mut Context::from_waker(this.waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    /// Counts its polls, keeps the last waker and is ready once `ready` is set.
    #[derive(Default)]
    struct Probe {
        polls: AtomicUsize,
        waker: Mutex<Option<Waker>>,
        ready: AtomicBool,
    }

    struct ProbeFuture<'a>(&'a Probe);

    impl Future for ProbeFuture<'_> {
        type Output = &'static str;
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<&'static str> {
            self.0.polls.fetch_add(1, Ordering::SeqCst);
            *self.0.waker.lock().unwrap() = Some(cx.waker().clone());
            if self.0.ready.load(Ordering::SeqCst) {
                Poll::Ready("done")
            } else {
                Poll::Pending
            }
        }
    }

    /// A task waker that counts wake-ups.
    #[derive(Default)]
    struct TaskWakes(AtomicUsize);

    impl Wake for TaskWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_future_is_polled_first_then_only_after_its_own_wake_up() {
        let probe = Probe::default();
        let (signal, waker) = WakeSignal::new();
        let task = Arc::new(TaskWakes::default());
        let task_waker = Waker::from(task.clone());
        let mut cx = Context::from_waker(&task_waker);
        let mut fut = PollOnWake::new(ProbeFuture(&probe), &signal, &waker);

        assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
        assert_eq!(probe.polls.load(Ordering::SeqCst), 1);
        // The task woke for something else: the future is not polled.
        for _ in 0..5 {
            assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
        }
        assert_eq!(probe.polls.load(Ordering::SeqCst), 1);
        assert_eq!(task.0.load(Ordering::SeqCst), 0);

        // Its own waker fires: the task is woken and the next poll polls it.
        probe.ready.store(true, Ordering::SeqCst);
        probe.waker.lock().unwrap().take().unwrap().wake();
        assert_eq!(task.0.load(Ordering::SeqCst), 1);
        assert_eq!(Pin::new(&mut fut).poll(&mut cx), Poll::Ready("done"));
        assert_eq!(probe.polls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_new_wrapper_polls_its_future_once_even_on_a_reused_signal() {
        let (signal, waker) = WakeSignal::new();
        let task_waker = Waker::from(Arc::new(TaskWakes::default()));
        let mut cx = Context::from_waker(&task_waker);
        let first = Probe::default();
        {
            let mut fut = PollOnWake::new(ProbeFuture(&first), &signal, &waker);
            assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
        }
        let second = Probe::default();
        second.ready.store(true, Ordering::SeqCst);
        let mut fut = PollOnWake::new(ProbeFuture(&second), &signal, &waker);
        assert_eq!(Pin::new(&mut fut).poll(&mut cx), Poll::Ready("done"));
    }

    #[tokio::test]
    async fn a_wake_up_from_another_task_reaches_the_waiting_task() {
        let (signal, waker) = WakeSignal::new();
        let (tx, mut rx) = tokio::sync::oneshot::channel::<u8>();
        let fut = PollOnWake::new(&mut rx, &signal, &waker);
        tokio::spawn(async move {
            tokio::task::yield_now().await;
            let _ = tx.send(7);
        });
        assert_eq!(fut.await.unwrap(), 7);
    }
}
