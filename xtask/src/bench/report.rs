//! The table and the JSON rows.

use std::fmt::Write as _;
use std::path::PathBuf;

/// One measured workload on one system.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) workload: &'static str,
    pub(crate) system: String,
    pub(crate) median: f64,
    /// A time per operation: lower is better.
    pub(crate) unit: &'static str,
    pub(crate) n: usize,
    /// Whether this row measures our code (the others are peers).
    pub(crate) ours: bool,
    /// The target for our median, in the row's unit, if it sets one.
    pub(crate) target: Option<f64>,
}

/// Prints one table per suite: each workload, ours first, then each peer, with how many times
/// faster ours is than that peer.
pub(crate) fn print(suite: &str, rows: &[Row]) {
    println!("\nbench suite `{suite}` (median of repeated runs; ratio = peer time / our time)\n");
    println!(
        "{:<44} {:<16} {:>12} {:<10} {:>10} {:>9}  target",
        "workload", "system", "median", "unit", "ratio", "n"
    );
    let mut workloads: Vec<&str> = rows.iter().map(|r| r.workload).collect();
    workloads.dedup();
    for workload in workloads {
        let group: Vec<&Row> = rows.iter().filter(|r| r.workload == workload).collect();
        let ours = group.iter().find(|r| r.ours).map(|r| r.median);
        for row in group {
            let ratio = match ours {
                Some(_) if row.ours => "1.0x".to_owned(),
                Some(ours) => format!("{:.1}x", row.median / ours),
                None => "-".to_owned(),
            };
            let target = row.target.map_or(String::new(), |max| {
                let verdict = if row.median <= max { "met" } else { "NOT met" };
                format!("<= {max} {}: {verdict}", row.unit)
            });
            println!(
                "{:<44} {:<16} {:>12} {:<10} {:>10} {:>9}  {target}",
                row.workload,
                row.system,
                format_value(row.median),
                row.unit,
                ratio,
                row.n
            );
        }
    }
}

fn format_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// Writes `target/bench/<suite>.json`: an array of `{workload, system, median, unit, n}`.
pub(crate) fn write_json(suite: &str, rows: &[Row]) -> Result<PathBuf, String> {
    let dir = crate::workspace_root().join("target").join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut json = String::from("[\n");
    for (i, row) in rows.iter().enumerate() {
        let _ = write!(
            json,
            "  {{\"workload\": {}, \"system\": {}, \"median\": {}, \"unit\": {}, \"n\": {}}}",
            quote(row.workload),
            quote(&row.system),
            row.median,
            quote(row.unit),
            row.n
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
