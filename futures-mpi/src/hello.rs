//! A worker's first message: who it is, so that the pool can watch it die.
//!
//! Layout: the pid as 4 little-endian bytes, then the host name in UTF-8.

use crate::Rank;

/// A worker as its hello describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    /// Its rank in the communicator the pool talks to it over: among the spawned workers
    /// (0..n) in spawn mode, in the world (1..N) under a launcher.
    pub rank: Rank,
    /// The host it runs on (`MPI_Get_processor_name`).
    pub host: String,
    /// Its process id on that host.
    pub pid: u32,
}

/// This process's hello.
pub(crate) fn encode(host: &str) -> Vec<u8> {
    let mut bytes = std::process::id().to_le_bytes().to_vec();
    bytes.extend_from_slice(host.as_bytes());
    bytes
}

/// The worker that sent `bytes` from `rank`, if they are a hello.
pub(crate) fn decode(rank: Rank, bytes: &[u8]) -> Option<WorkerInfo> {
    let (pid, host) = bytes.split_first_chunk::<4>()?;
    Some(WorkerInfo {
        rank,
        host: String::from_utf8(host.to_vec()).ok()?,
        pid: u32::from_le_bytes(*pid),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hello_carries_the_pid_and_host() {
        let info = decode(3, &encode("node-7")).expect("a hello");
        assert_eq!(
            info,
            WorkerInfo {
                rank: 3,
                host: "node-7".into(),
                pid: std::process::id()
            }
        );
    }

    #[test]
    fn a_message_shorter_than_a_pid_is_no_hello() {
        assert_eq!(decode(0, b"abc"), None);
    }
}
