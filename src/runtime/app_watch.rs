//! Whether this rank's application thread leaves its core free: how much CPU time it has used
//! lately, read from its thread CPU clock.
//!
//! A progress thread that shares a core with its application thread must not poll for other
//! ranks' requests while that thread computes or busy-waits (see the runtime's documentation).
//! But an application that sleeps (a blocking wait, a sleeping barrier, a thread that is done)
//! leaves the core idle, and then a request that finds the progress thread asleep pays a
//! wake-up for nothing, and its sender a signal (a system call) to wake it.

use std::time::{Duration, Instant};

/// How often the application thread's CPU time is read, at most (one system call).
const LOOK_EVERY: Duration = Duration::from_micros(100);

/// The application counts as leaving the core free while it uses less than this share of it.
const IDLE_SHARE: u32 = 10;

/// The CPU time of the application thread that last called (see `Driver::app_clock`), as the
/// progress thread last read it.
pub struct AppWatch {
    clock: Option<libc::clockid_t>,
    looked_at: Instant,
    cpu: Duration,
    idle: bool,
}

thread_local! {
    static THIS_THREAD_CLOCK: Option<libc::clockid_t> = {
        let mut clock: libc::clockid_t = 0;
        // SAFETY: pthread_self is the calling thread; clock is a valid out-parameter.
        (unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) } == 0).then_some(clock)
    };
}

/// The CPU clock of the calling thread, to hand to the progress thread.
pub fn this_thread_clock() -> Option<libc::clockid_t> {
    THIS_THREAD_CLOCK.with(|clock| *clock)
}

/// CPU time used so far by the thread of `clock`; `None` once that thread has ended.
fn cpu_time(clock: libc::clockid_t) -> Option<Duration> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid out-parameter; a clock of an ended thread gives an error.
    (unsafe { libc::clock_gettime(clock, &mut ts) } == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

impl AppWatch {
    /// Watches the thread of `clock`; with `None`, the application never counts as idle.
    pub fn new(clock: Option<libc::clockid_t>) -> AppWatch {
        let cpu = clock.and_then(cpu_time).unwrap_or_default();
        AppWatch { clock, looked_at: Instant::now(), cpu, idle: false }
    }

    /// Whether the application thread of `clock` (the one that last called) used less than a
    /// tenth of a core since the last look (an ended thread uses none); looks again at most
    /// every `LOOK_EVERY`. Another thread than at the last look starts the watch over, and
    /// counts as busy until the next look.
    pub fn idle(&mut self, now: Instant, clock: Option<libc::clockid_t>) -> bool {
        if clock != self.clock {
            *self = AppWatch::new(clock);
            return false;
        }
        let Some(clock) = self.clock else { return false };
        let wall = now.saturating_duration_since(self.looked_at);
        if wall < LOOK_EVERY {
            return self.idle;
        }
        match cpu_time(clock) {
            Some(cpu) => {
                self.idle = cpu.saturating_sub(self.cpu) * IDLE_SHARE < wall;
                self.cpu = cpu;
            }
            None => self.idle = true,
        }
        self.looked_at = now;
        self.idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A thread that sleeps counts as idle, one that computes does not, and one that has ended
    /// is idle too; the watch follows the thread it is given.
    #[test]
    fn a_sleeping_thread_is_idle_and_a_busy_one_is_not() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<bool>();
        let worker = std::thread::spawn(move || {
            tx.send(this_thread_clock()).unwrap();
            while let Ok(spin) = go_rx.recv() {
                let until = Instant::now() + Duration::from_millis(20);
                if spin {
                    while Instant::now() < until {
                        std::hint::spin_loop();
                    }
                } else {
                    std::thread::sleep(Duration::from_millis(20));
                }
                tx.send(None).unwrap();
            }
        });
        let clock = rx.recv().unwrap();
        assert!(clock.is_some(), "a thread has a CPU clock");
        let mut watch = AppWatch::new(clock);
        let after = |spin: bool, watch: &mut AppWatch| {
            go_tx.send(spin).unwrap();
            rx.recv().unwrap();
            watch.idle(Instant::now(), clock)
        };
        assert!(after(false, &mut watch), "20 ms of sleep");
        assert!(!after(true, &mut watch), "20 ms of computing");
        // Another thread calls now: busy until the first look at it.
        let this = this_thread_clock();
        assert_ne!(this, clock);
        assert!(!watch.idle(Instant::now(), this), "a thread not looked at yet");
        std::thread::sleep(Duration::from_millis(20));
        assert!(watch.idle(Instant::now(), this), "this thread slept since");
        drop(go_tx);
        worker.join().unwrap();
        // The ended thread calls "last" again: a new watch, busy until its first look.
        assert!(!watch.idle(Instant::now(), clock), "a thread not looked at yet");
        std::thread::sleep(LOOK_EVERY);
        assert!(watch.idle(Instant::now(), clock), "an ended thread");
    }
}
