//! CPython as a peer: a script run by `python3`, printing one `workload<TAB>median` line each.

use std::process::Command;

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
    parse(
        Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(args)
            .output(),
    )
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
    parse(
        Command::new("python3")
            .arg(&path)
            .args(args)
            .envs(env.iter().copied())
            .output(),
    )
}
