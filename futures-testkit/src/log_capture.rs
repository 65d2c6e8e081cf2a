//! Captures `log` records so a test can assert that something was logged.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, Once};

static RECORDS: Mutex<Vec<Record>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();
/// The process that installed the logger. A worker forked from it keeps the logger but not the
/// threads, and [`RECORDS`]' lock may have been held by one of them at the fork: the worker
/// records nothing (its records are not the test's to read anyway), so that it never waits
/// for that lock.
static CAPTURING_PROCESS: AtomicU32 = AtomicU32::new(0);

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
        if CAPTURING_PROCESS.load(Ordering::Acquire) != std::process::id() {
            return;
        }
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
        CAPTURING_PROCESS.store(std::process::id(), Ordering::Release);
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
