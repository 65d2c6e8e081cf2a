//! What `/proc` says about processes, for tests that check that no process, zombie or
//! descriptor is left behind: [`descendants`], [`children_of`], [`is_gone`], [`open_fds`],
//! and [`wait_until`] for the outcomes the kernel delivers in its own time; and
//! [`describe_tree`], where every thread of a hung test waits, for the watchdog's report.

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

/// Where process `pid`, each of its threads and each of its descendants stand: a line per
/// process (pid, name, state) and per thread (tid, name, state, and the kernel function it
/// sleeps in, `wchan`), children indented under their parent. At most [`DESCRIBED_LINES`]
/// lines. For a hung test's report: a worker stuck on a lock, a pipe or a child shows where.
///
/// ```
/// let me = std::process::id();
/// let report = concurrent_futures_testkit::procfs::describe_tree(me);
/// assert!(report.starts_with(&format!("pid {me} ")), "{report}");
/// assert!(report.contains("thread"), "{report}");
/// ```
pub fn describe_tree(pid: u32) -> String {
    let mut lines = Vec::new();
    describe(pid, 0, &mut lines);
    if lines.len() > DESCRIBED_LINES {
        let more = lines.len() - DESCRIBED_LINES;
        lines.truncate(DESCRIBED_LINES);
        lines.push(format!("... {more} more lines"));
    }
    lines.join("\n")
}

/// The user-space stacks of every thread of process `pid` and of its descendants (at most
/// four processes), from `gdb` if it is installed (each attach bounded to 30 s); otherwise a
/// line that says it is not. For a hung test's report: `wchan` says a thread waits on a
/// futex, its stack says which lock.
pub fn stacks_of_tree(pid: u32) -> String {
    let mut pids = vec![pid];
    let mut next = 0;
    while next < pids.len() && pids.len() < 4 {
        let mut children = children_of(pids[next]);
        children.sort_unstable();
        pids.extend(children);
        next += 1;
    }
    pids.truncate(4);
    let mut report = Vec::new();
    for pid in pids {
        let attached = std::process::Command::new("timeout")
            .args(["30", "gdb", "-nx", "-batch", "-p", &pid.to_string()])
            .args(["-ex", "thread apply all bt 24"])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output();
        match attached {
            Ok(out) if !out.stdout.is_empty() => {
                let text = String::from_utf8_lossy(&out.stdout);
                let frames: Vec<&str> = text
                    .lines()
                    .filter(|line| line.starts_with('#') || line.starts_with("Thread "))
                    .take(STACK_LINES)
                    .collect();
                report.push(format!("stacks of pid {pid}:\n{}", frames.join("\n")));
            }
            _ => {
                report.push(format!("no stacks of pid {pid} (gdb missing or refused)"));
                break;
            }
        }
    }
    report.join("\n")
}

/// The most lines of stacks [`stacks_of_tree`] gives per process.
const STACK_LINES: usize = 150;

/// The most lines [`describe_tree`] gives.
pub const DESCRIBED_LINES: usize = 200;

/// Appends the lines of `pid` and its descendants, `depth` levels down.
fn describe(pid: u32, depth: usize, lines: &mut Vec<String>) {
    let indent = "  ".repeat(depth);
    let Some((name, state)) = name_and_state(&format!("/proc/{pid}")) else {
        lines.push(format!("{indent}pid {pid}: gone"));
        return;
    };
    lines.push(format!("{indent}pid {pid} ({name}) {state}"));
    let mut tids: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_string_lossy().parse().ok())
        .collect();
    tids.sort_unstable();
    for tid in tids {
        let dir = format!("/proc/{pid}/task/{tid}");
        let Some((name, state)) = name_and_state(&dir) else {
            continue;
        };
        let wchan = std::fs::read_to_string(format!("{dir}/wchan")).unwrap_or_default();
        let wchan = if wchan.is_empty() || wchan == "0" {
            "-"
        } else {
            wchan.trim()
        };
        lines.push(format!(
            "{indent}  thread {tid} ({name}) {state} in {wchan}"
        ));
    }
    // Bounded: a runaway tree is cut by the line limit, not by the stack.
    if depth < 8 {
        let mut children = children_of(pid);
        children.sort_unstable();
        for child in children {
            describe(child, depth + 1, lines);
        }
    }
}

/// The name and state letter in `dir/stat` (a process's or a thread's directory).
fn name_and_state(dir: &str) -> Option<(String, char)> {
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    let name = stat.split_once('(')?.1.rsplit_once(')')?.0.to_owned();
    let (state, _) = state_and_parent(&stat)?;
    Some((name, state))
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
