//! [`ThreadProbe`]: tells when another thread is asleep in the kernel, so a test can act only
//! once a call it started has really blocked (Linux: reads `/proc/self/task/<tid>/stat`).

use std::fs;
use std::time::{Duration, Instant};

/// One thread, as the kernel sees it.
///
/// A test that must act while another thread is *blocked inside* a call — not merely about to
/// make it — makes a probe on that thread, hands it over, and calls
/// [`wait_until_sleeping`](ThreadProbe::wait_until_sleeping). No sleep orders the events: the
/// test waits for the state it needs.
///
/// # Examples
///
/// ```
/// use concurrent_futures_testkit::{Gate, ThreadProbe};
/// use std::sync::mpsc;
///
/// let gate = Gate::new();
/// let (tx, rx) = mpsc::channel();
/// let g = gate.clone();
/// let t = std::thread::spawn(move || {
///     tx.send(ThreadProbe::current()).unwrap();
///     g.wait();
/// });
/// let probe = rx.recv().unwrap();
/// probe.wait_until_sleeping(); // `t` is now blocked in `g.wait()`
/// gate.open();
/// t.join().unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadProbe {
    tid: u32,
}

/// How long [`ThreadProbe::wait_until_sleeping`] watches before it gives up with a panic.
const PROBE_LIMIT: Duration = Duration::from_secs(30);

impl ThreadProbe {
    /// A probe on the calling thread.
    pub fn current() -> ThreadProbe {
        // `/proc/thread-self` links to `<pid>/task/<tid>`.
        let link = fs::read_link("/proc/thread-self").expect("read /proc/thread-self");
        let tid = link
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.parse().ok())
            .unwrap_or_else(|| panic!("unexpected /proc/thread-self link {link:?}"));
        ThreadProbe { tid }
    }

    /// The thread's kernel state letter (`R` running, `S` sleeping, …), or `None` once the
    /// thread has exited.
    pub fn state(&self) -> Option<char> {
        let stat = fs::read_to_string(format!("/proc/self/task/{}/stat", self.tid)).ok()?;
        // The state follows the command name, which is in parentheses and may hold spaces.
        stat.rsplit_once(')')?.1.trim_start().chars().next()
    }

    /// Returns once the thread sleeps in the kernel (a blocking wait: a lock, a condition
    /// variable, a join, a read). Panics if it has exited, or is still awake after 30 s.
    pub fn wait_until_sleeping(&self) {
        let started = Instant::now();
        loop {
            match self.state() {
                Some('S') | Some('D') => return,
                Some(_) => {}
                None => panic!("thread {} exited before it blocked", self.tid),
            }
            assert!(
                started.elapsed() < PROBE_LIMIT,
                "thread {} never blocked (state {:?})",
                self.tid,
                self.state()
            );
            std::thread::yield_now();
        }
    }
}
