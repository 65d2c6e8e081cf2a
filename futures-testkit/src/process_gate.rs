//! Gates and arrival counters that work across processes, for tasks running in a process pool
//! (Python's tests use a `Manager().Event()` or an mp `Semaphore` for the same).
//!
//! * [`ProcessGate`] is a named pipe: a task waits by opening it for reading, which blocks
//!   until some process has it open for writing; [`ProcessGate::open`] does that and keeps it
//!   open for the gate's life.
//! * [`Arrivals`] is a bound Unix datagram socket: a task reports "I got here" by sending one
//!   datagram to its path; the test waits for N of them.
//!
//! Both travel to the task as a small serde key (a path), so they work with every start method.

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

fn fresh_path(kind: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("cf-{kind}-{}-{n}", std::process::id()))
}

/// A gate that tasks in any process can wait on; the test opens it once.
///
/// # Examples
///
/// ```
/// use concurrent_futures_testkit::ProcessGate;
///
/// let gate = ProcessGate::new();
/// let key = gate.key();
/// let waiter = std::thread::spawn(move || key.wait());
/// gate.open();
/// waiter.join().unwrap();
/// ```
#[derive(Debug)]
pub struct ProcessGate {
    key: GateKey,
    writer: Mutex<Option<File>>,
}

/// What a task needs to wait on a [`ProcessGate`]: its path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GateKey(PathBuf);

impl ProcessGate {
    /// A closed gate (a new named pipe in the temporary directory).
    pub fn new() -> ProcessGate {
        let path = fresh_path("gate");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        ProcessGate {
            key: GateKey(path),
            writer: Mutex::new(None),
        }
    }

    /// The key to hand to tasks.
    pub fn key(&self) -> GateKey {
        self.key.clone()
    }

    /// Opens the gate: every waiter, now or later, passes.
    pub fn open(&self) {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if writer.is_none() {
            // Read-write, so this open itself never blocks.
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&self.key.0);
            *writer = Some(file.expect("open the gate's pipe"));
        }
    }
}

impl Default for ProcessGate {
    fn default() -> Self {
        ProcessGate::new()
    }
}

impl Drop for ProcessGate {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.key.0);
    }
}

impl GateKey {
    /// Blocks until the gate is open (in any process).
    pub fn wait(&self) {
        drop(File::open(&self.0).expect("open the gate's pipe for reading"));
    }

    /// The pipe's path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

/// Counts arrivals reported from any process.
///
/// The socket queues only a few unread arrivals (the kernel's `max_dgram_qlen`, often 10);
/// beyond that a reporting task blocks until the test reads them, so a test whose tasks all
/// report should read them all.
///
/// # Examples
///
/// ```
/// use concurrent_futures_testkit::Arrivals;
///
/// let arrivals = Arrivals::new();
/// let key = arrivals.key();
/// std::thread::spawn(move || key.arrive());
/// arrivals.wait_for(1);
/// assert_eq!(arrivals.count_now(), 0, "each arrival is counted once");
/// ```
#[derive(Debug)]
pub struct Arrivals {
    key: ArrivalKey,
    socket: UnixDatagram,
}

/// What a task needs to report an arrival: the socket's path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArrivalKey(PathBuf);

impl Arrivals {
    /// A new counter (a bound datagram socket in the temporary directory).
    pub fn new() -> Arrivals {
        let path = fresh_path("arrivals");
        let socket = UnixDatagram::bind(&path).expect("bind the arrivals socket");
        Arrivals {
            key: ArrivalKey(path),
            socket,
        }
    }

    /// The key to hand to tasks.
    pub fn key(&self) -> ArrivalKey {
        self.key.clone()
    }

    /// Blocks until `n` more arrivals have been reported.
    pub fn wait_for(&self, n: usize) {
        let mut byte = [0u8; 1];
        for _ in 0..n {
            self.socket.recv(&mut byte).expect("receive an arrival");
        }
    }

    /// Takes, without blocking, the arrivals reported and not yet counted.
    pub fn count_now(&self) -> usize {
        self.socket.set_nonblocking(true).expect("set_nonblocking");
        let mut byte = [0u8; 1];
        let mut n = 0;
        while self.socket.recv(&mut byte).is_ok() {
            n += 1;
        }
        self.socket.set_nonblocking(false).expect("set_nonblocking");
        n
    }
}

impl Default for Arrivals {
    fn default() -> Self {
        Arrivals::new()
    }
}

impl Drop for Arrivals {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.key.0);
    }
}

impl ArrivalKey {
    /// Reports one arrival.
    pub fn arrive(&self) {
        let socket = UnixDatagram::unbound().expect("a datagram socket");
        socket.send_to(&[1], &self.0).expect("report an arrival");
    }
}
