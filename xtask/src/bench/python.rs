//! CPython as a peer: a script run by `python3`, printing one `workload<TAB>median` line each.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The longest a peer's script may run: a hung peer (mpi4py's pool once hung at start here) is
/// killed, with its process group, and reported unavailable instead of stalling the bench.
const PEER_LIMIT: Duration = Duration::from_secs(20 * 60);

/// CPython's version string, or why it cannot be measured.
pub(crate) fn version() -> Result<String, String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import platform; print(platform.python_implementation(), platform.python_version())",
        ])
        .output()
        .map_err(|e| format!("python3 not found ({e})"))?;
    if !out.status.success() {
        return Err("python3 failed to start".to_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Runs `script` with `args`; returns `(workload, median)` pairs.
pub(crate) fn run(script: &str, args: &[String]) -> Result<Vec<(String, f64)>, String> {
    parse(output_within(
        Command::new("python3").arg("-c").arg(script).args(args),
        PEER_LIMIT,
    ))
}

/// `command`'s output, run in a process group of its own that is killed past `limit`.
fn output_within(command: &mut Command, limit: Duration) -> std::io::Result<Output> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    let pipes = (child.stdout.take(), child.stderr.take());
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = read(pipes.0.map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = read(pipes.1.map(|p| Box::new(p) as Box<dyn Read + Send>));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > limit {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("still running after {limit:?}: killed"),
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

fn parse(output: std::io::Result<std::process::Output>) -> Result<Vec<(String, f64)>, String> {
    let out = output.map_err(|e| format!("python3: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "python3 benchmark failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let (name, value) = line
                .split_once('\t')
                .ok_or_else(|| format!("bad line from python3: {line}"))?;
            let value = value
                .trim()
                .parse::<f64>()
                .map_err(|e| format!("bad number from python3 ({e}): {line}"))?;
            Ok((name.to_owned(), value))
        })
        .collect()
}

/// Like [`run`], for a script that must be a file (multiprocessing's `spawn` and `forkserver`
/// re-import the main module in each worker): written to `target/bench/<name>` first.
pub(crate) fn run_file(
    name: &str,
    script: &str,
    args: &[String],
) -> Result<Vec<(String, f64)>, String> {
    run_file_with_env(name, script, args, &[])
}

/// Like [`run_file`], with these variables added to the script's environment.
pub(crate) fn run_file_with_env(
    name: &str,
    script: &str,
    args: &[String],
    env: &[(&str, &std::ffi::OsStr)],
) -> Result<Vec<(String, f64)>, String> {
    let dir = crate::workspace_root().join("target").join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(name);
    std::fs::write(&path, script).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    parse(output_within(
        Command::new("python3")
            .arg(&path)
            .args(args)
            .envs(env.iter().copied()),
        PEER_LIMIT,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_past_its_limit_is_killed_with_its_process_group() {
        let file = std::env::temp_dir().join(format!("cf-xtask-peer-{}", std::process::id()));
        let script = format!("sleep 30 & echo $! > {}; wait", file.display());
        let outcome = output_within(
            Command::new("sh").args(["-c", &script]),
            Duration::from_millis(300),
        );
        let error = outcome.expect_err("killed past the limit");
        assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
        // The script's own child went too (reparented, then reaped, in the kernel's time).
        let pid = std::fs::read_to_string(&file).unwrap().trim().to_owned();
        let _ = std::fs::remove_file(&file);
        let gone = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map_or(true, |stat| stat.contains(") Z "))
        };
        let started = Instant::now();
        while !gone() && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(gone(), "the peer's child {pid} outlived the kill");
    }

    #[test]
    fn a_peer_within_its_limit_gives_its_output() {
        let out = output_within(
            Command::new("sh").args(["-c", "echo a; echo b >&2"]),
            Duration::from_secs(20),
        )
        .unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, b"a\n");
        assert_eq!(out.stderr, b"b\n");
    }
}
