//! Captures `log` records so a test can assert that something was logged.

use std::sync::{Mutex, Once};

static RECORDS: Mutex<Vec<Record>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();

/// One captured log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its level.
    pub level: log::Level,
    /// Its target (`concurrent_futures` for this project's records).
    pub target: String,
    /// The formatted message.
    pub message: String,
}

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let record = Record {
            level: record.level(),
            target: record.target().to_owned(),
            message: record.args().to_string(),
        };
        RECORDS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(record);
    }

    fn flush(&self) {}
}

/// Installs the capturing logger for this process (once; later calls do nothing). Fails if
/// another logger was installed first.
pub fn install() {
    INSTALL.call_once(|| {
        log::set_logger(&Capture).expect("no other logger installed");
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// The records captured so far whose message contains `needle` (tests run in parallel, so each
/// looks for text of its own).
pub fn records_containing(needle: &str) -> Vec<Record> {
    RECORDS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|r| r.message.contains(needle))
        .cloned()
        .collect()
}
