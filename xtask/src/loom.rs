//! `cargo xtask loom`: run every loom model and say how many ran and passed.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

/// The packages whose `tests/loom_*.rs` files are models, with their directories.
const MODELLED: &[(&str, &str)] = &[
    ("concurrent-futures-core", "futures-core"),
    ("concurrent-futures-wait", "futures-wait"),
    ("concurrent-futures-thread", "futures-thread"),
    ("concurrent-futures-process", "futures-process"),
];

/// Lines of a failing model's trace to print (the tail holds the failing interleaving).
const TRACE_TAIL_LINES: usize = 150;

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut preemptions = std::env::var("LOOM_MAX_PREEMPTIONS").unwrap_or_else(|_| "2".to_owned());
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--preemptions" => {
                preemptions = it.next().ok_or("--preemptions needs a number")?.clone();
                preemptions
                    .parse::<usize>()
                    .map_err(|_| format!("bad --preemptions {preemptions}"))?;
            }
            other => return Err(format!("cargo xtask loom: unknown argument {other}")),
        }
    }
    let root = crate::workspace_root();
    let mut expected = 0;
    let mut ran = 0;
    let mut passed = 0;
    let mut failed = Vec::new();
    for &(package, dir) in MODELLED {
        for target in loom_targets(&root.join(dir))? {
            let source = root.join(dir).join("tests").join(format!("{target}.rs"));
            expected += fs::read_to_string(&source)
                .map_err(|e| format!("{}: {e}", source.display()))?
                .matches("#[test]")
                .count();
            println!("loom: {package} --test {target} (LOOM_MAX_PREEMPTIONS={preemptions})");
            let output = loom_command(&root, package, &target, &preemptions, &[])
                .stderr(Stdio::inherit())
                .output()
                .map_err(|e| format!("cannot run cargo: {e}"))?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            for line in stdout.lines().filter(|l| {
                l.starts_with("test ")
                    && !l.starts_with("test result:")
                    && !l.contains("has been running")
            }) {
                println!("  {line}");
                if line.ends_with(" ok") {
                    ran += 1;
                    passed += 1;
                } else if line.ends_with(" FAILED") {
                    ran += 1;
                    let name = line
                        .trim_start_matches("test ")
                        .trim_end_matches(" ... FAILED");
                    failed.push((package, target.clone(), name.to_owned()));
                }
            }
            if !output.status.success() && failed.is_empty() {
                return Err(format!(
                    "loom: building or running {package} --test {target} failed\n{stdout}"
                ));
            }
        }
    }
    for (package, target, name) in &failed {
        print_interleaving(&root, package, target, name, &preemptions)?;
    }
    println!(
        "loom: {ran} of {expected} models ran, {passed} passed, {} failed (preemption bound {preemptions})",
        failed.len()
    );
    if failed.is_empty() && ran == expected && ran > 0 {
        Ok(())
    } else {
        Err("loom: some models failed or did not run".to_owned())
    }
}

/// The `loom_*` integration tests of a crate directory.
fn loom_targets(dir: &Path) -> Result<Vec<String>, String> {
    let tests = dir.join("tests");
    let mut names: Vec<String> = fs::read_dir(&tests)
        .map_err(|e| format!("cannot read {}: {e}", tests.display()))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("loom_") && name.ends_with(".rs"))
        .map(|name| name.trim_end_matches(".rs").to_owned())
        .collect();
    names.sort();
    Ok(names)
}

fn loom_command(
    root: &Path,
    package: &str,
    target: &str,
    preemptions: &str,
    extra: &[&str],
) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    cmd.current_dir(root)
        .args(["test", "--release", "--package", package, "--test", target])
        .arg("--target-dir")
        .arg(root.join("target").join("loom"))
        .args(["--", "--test-threads=1"])
        .args(extra)
        .env("RUSTFLAGS", "--cfg loom")
        .env("LOOM_MAX_PREEMPTIONS", preemptions);
    cmd
}

/// Re-runs one failing model with loom's trace on and prints the tail: the failing execution,
/// thread by thread, with source locations.
fn print_interleaving(
    root: &Path,
    package: &str,
    target: &str,
    name: &str,
    preemptions: &str,
) -> Result<(), String> {
    println!(
        "\nloom: {name} failed; its failing interleaving (loom trace, last {TRACE_TAIL_LINES} lines):"
    );
    let output = loom_command(
        root,
        package,
        target,
        preemptions,
        &["--exact", name, "--nocapture"],
    )
    .env("LOOM_LOG", "trace")
    .env("NO_COLOR", "1")
    .env("RUST_BACKTRACE", "0")
    .env("LOOM_LOCATION", "1")
    .output()
    .map_err(|e| format!("cannot run cargo: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines[lines.len().saturating_sub(TRACE_TAIL_LINES)..] {
        println!("  | {line}");
    }
    Ok(())
}
