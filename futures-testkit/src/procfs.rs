//! What `/proc` says about processes, for tests that check that no process, zombie or
//! descriptor is left behind: [`descendants`], [`children_of`], [`is_gone`], [`open_fds`],
//! and [`wait_until`] for the outcomes the kernel delivers in its own time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Every process descended from this one, with its state letter (`Z` for a zombie), sorted.
///
/// ```
/// let child = std::process::Command::new("sleep").arg("100").spawn().unwrap();
/// let found = concurrent_futures_testkit::procfs::descendants();
/// assert!(found.iter().any(|&(pid, _)| pid == child.id()));
/// # let mut child = child;
/// # child.kill().unwrap();
/// # child.wait().unwrap();
/// ```
pub fn descendants() -> Vec<(u32, char)> {
    let mut parent_of = HashMap::new();
    let mut state_of = HashMap::new();
    for (pid, state, ppid) in processes() {
        parent_of.insert(pid, ppid);
        state_of.insert(pid, state);
    }
    let me = std::process::id();
    let mut found = Vec::new();
    for &pid in parent_of.keys() {
        let mut p = pid;
        while let Some(&parent) = parent_of.get(&p) {
            if parent == me {
                found.push((pid, state_of[&pid]));
                break;
            }
            p = parent;
        }
    }
    found.sort();
    found
}

/// The children of process `pid` (from each process's parent in `/proc/<pid>/stat`).
pub fn children_of(pid: u32) -> Vec<u32> {
    processes()
        .filter(|&(_, _, ppid)| ppid == pid)
        .map(|(child, ..)| child)
        .collect()
}

/// Whether process `pid` has ended: gone, or a zombie that its (new) parent has not reaped.
pub fn is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => state_and_parent(&stat).is_none_or(|(state, _)| state == 'Z'),
    }
}

/// How many descriptors this process has open.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

/// Polls until `done()` holds, panicking with `what` after 30 s: for outcomes the kernel
/// delivers in its own time (a process reparented and killed, a zombie reaped), which no gate
/// can announce. Use it under a watchdog.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "still waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Every process: pid, state letter, parent pid.
fn processes() -> impl Iterator<Item = (u32, char, u32)> {
    std::fs::read_dir("/proc")
        .expect("read /proc")
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_string_lossy().parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (state, ppid) = state_and_parent(&stat)?;
            Some((pid, state, ppid))
        })
}

/// `pid (comm) state ppid ...`; `comm` may hold spaces and parentheses, so split after the
/// last `)`.
fn state_and_parent(stat: &str) -> Option<(char, u32)> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}
