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
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .map_err(|e| format!("python3: {e}"))?;
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
