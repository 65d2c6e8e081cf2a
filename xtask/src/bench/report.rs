//! The table, the targets, and the JSON rows.

use std::fmt::Write as _;
use std::path::PathBuf;

/// One measured workload on one system (a peer that could not be measured has a NaN median:
/// printed as unavailable, and not counted by the targets).
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) workload: &'static str,
    pub(crate) system: String,
    pub(crate) median: f64,
    pub(crate) unit: &'static str,
    pub(crate) n: usize,
    /// Whether this row measures our code (the others are peers).
    pub(crate) ours: bool,
    /// CPU time (user + system, every thread of the process) per task over the timed region,
    /// in µs, where it was measured: what the wall time cost, spinning included.
    pub(crate) cpu_per_task: Option<f64>,
}

impl Row {
    pub(crate) fn ours(workload: &'static str, median: f64, unit: &'static str, n: usize) -> Row {
        Row {
            workload,
            system: "ours".to_owned(),
            median,
            unit,
            n,
            ours: true,
            cpu_per_task: None,
        }
    }

    pub(crate) fn peer(
        workload: &'static str,
        system: impl Into<String>,
        median: f64,
        unit: &'static str,
        n: usize,
    ) -> Row {
        Row {
            workload,
            system: system.into(),
            median,
            unit,
            n,
            ours: false,
            cpu_per_task: None,
        }
    }

    /// The same row, with the CPU time per task measured beside it (µs).
    pub(crate) fn with_cpu(mut self, cpu_per_task: f64) -> Row {
        self.cpu_per_task = Some(cpu_per_task);
        self
    }
}

/// Whether a bigger number is better, judged from the unit (`…/s` is a rate).
fn higher_is_better(unit: &str) -> bool {
    unit.ends_with("/s")
}

/// How many times better ours is than `peer` (above 1: ours is better).
fn advantage(ours: f64, peer: f64, unit: &str) -> f64 {
    if higher_is_better(unit) {
        ours / peer
    } else {
        peer / ours
    }
}

/// A target an issue sets for one workload.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    /// Our median must be at most this, in the row's unit.
    AtMost(&'static str, f64),
    /// Ours must be at least `min` times better than every measured peer whose system name
    /// starts with one of `peers` (so, than the best of them).
    BetterThan {
        workload: &'static str,
        peers: &'static [&'static str],
        min: f64,
    },
}

/// Prints each workload, ours first, then each peer, with how many times better ours is.
pub(crate) fn print(suite: &str, rows: &[Row], targets: &[Target]) {
    println!(
        "\nbench suite `{suite}` (median of repeated runs; ratio = how many times better ours is)\n"
    );
    println!(
        "{:<46} {:<28} {:>12} {:<11} {:>9} {:>13} {:>9}",
        "workload", "system", "median", "unit", "ratio", "cpu us/task", "n"
    );
    let mut workloads: Vec<&str> = rows.iter().map(|r| r.workload).collect();
    workloads.dedup();
    for workload in workloads {
        let group: Vec<&Row> = rows.iter().filter(|r| r.workload == workload).collect();
        let ours = group.iter().find(|r| r.ours).map(|r| r.median);
        for row in group {
            let ratio = match ours {
                _ if row.median.is_nan() => "-".to_owned(),
                Some(_) if row.ours => "1.0x".to_owned(),
                Some(ours) => format!("{:.1}x", advantage(ours, row.median, row.unit)),
                None => "-".to_owned(),
            };
            let cpu = row
                .cpu_per_task
                .map_or_else(|| "-".to_owned(), format_value);
            println!(
                "{:<46} {:<28} {:>12} {:<11} {:>9} {:>13} {:>9}",
                row.workload,
                row.system,
                format_value(row.median),
                row.unit,
                ratio,
                cpu,
                row.n
            );
        }
    }
    if !targets.is_empty() {
        println!("\ntargets:");
        for target in targets {
            println!("  {}", verdict(rows, target));
        }
    }
}

fn verdict(rows: &[Row], target: &Target) -> String {
    match *target {
        Target::AtMost(workload, max) => {
            match rows.iter().find(|r| r.ours && r.workload == workload) {
                Some(row) => {
                    let met = if row.median <= max { "met" } else { "NOT met" };
                    format!(
                        "{workload}: ours {} <= {max} {}: {met}",
                        format_value(row.median),
                        row.unit
                    )
                }
                None => format!("{workload}: not measured"),
            }
        }
        Target::BetterThan {
            workload,
            peers: prefixes,
            min,
        } => {
            let peer = prefixes.join("|");
            let Some(ours) = rows.iter().find(|r| r.ours && r.workload == workload) else {
                return format!("{workload}: not measured");
            };
            let peers = rows.iter().filter(|r| {
                !r.ours
                    && !r.median.is_nan()
                    && r.workload == workload
                    && prefixes.iter().any(|p| r.system.starts_with(p))
            });
            let best = peers
                .map(|r| advantage(ours.median, r.median, r.unit))
                .reduce(f64::min);
            match best {
                Some(ratio) => {
                    let met = if ratio >= min { "met" } else { "NOT met" };
                    format!("{workload}: vs best of [{peer}] >= {min}x: {ratio:.2}x {met}")
                }
                None => format!("{workload}: vs [{peer}] >= {min}x: peer not measured (skipped)"),
            }
        }
    }
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "unavailable".to_owned()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// Writes `target/bench/<suite>.json`: an array of
/// `{workload, system, median, unit, n, cpu_us_per_task}`.
pub(crate) fn write_json(suite: &str, rows: &[Row]) -> Result<PathBuf, String> {
    let dir = crate::workspace_root().join("target").join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut json = String::from("[\n");
    for (i, row) in rows.iter().enumerate() {
        let _ = write!(
            json,
            "  {{\"workload\": {}, \"system\": {}, \"median\": {}, \"unit\": {}, \"n\": {}, \"cpu_us_per_task\": {}}}",
            quote(row.workload),
            quote(&row.system),
            if row.median.is_nan() {
                "null".to_owned()
            } else {
                row.median.to_string()
            },
            quote(row.unit),
            row.n,
            row.cpu_per_task
                .map_or_else(|| "null".to_owned(), |c| c.to_string())
        );
        json.push_str(if i + 1 < rows.len() { ",\n" } else { "\n" });
    }
    json.push_str("]\n");
    let path = dir.join(format!("{suite}.json"));
    std::fs::write(&path, json).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
