//! What the MPI test binaries share: each is its own worker (`harness = false`, `main` calls
//! `bootstrap` first), runs itself as a plain program and under `mpirun` in a private `TMPDIR`,
//! and runs its cases under watchdogs.
// Each test binary uses a part of this.
#![allow(dead_code)]

use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The environment variable that says which part of the test a process plays.
pub(crate) const PART: &str = "CF_MPI_TEST";

/// Runs `f` as case `name`; past `seconds`, the whole run fails.
pub(crate) fn case(name: &str, seconds: u64, f: impl FnOnce()) {
    // `CF_MPI_ONLY=name` runs that case alone (for debugging one).
    if let Ok(only) = std::env::var("CF_MPI_ONLY")
        && only != name
    {
        return;
    }
    let (done, watched) = mpsc::channel::<()>();
    let label = name.to_string();
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) =
            watched.recv_timeout(Duration::from_secs(seconds))
        {
            eprintln!("test {label} ... TIMED OUT after {seconds} s");
            std::process::exit(3);
        }
    });
    eprintln!("test {name} ...");
    f();
    let _ = done.send(());
    eprintln!("test {name} ... ok");
}

/// `mpirun --oversubscribe -n 3` of this test binary, with or without `--enable-recovery`.
pub(crate) fn mpirun(recovery: bool) -> Command {
    mpirun_with(recovery, &[])
}

/// As [`mpirun`], with more of `mpirun`'s own options.
pub(crate) fn mpirun_with(recovery: bool, options: &[&str]) -> Command {
    let mut mpirun = Command::new("mpirun");
    mpirun.args(["--oversubscribe", "-n", "3"]);
    if recovery {
        mpirun.arg("--enable-recovery");
    }
    mpirun.args(options);
    mpirun.arg(std::env::current_exe().unwrap());
    // bootstrap put this in our environment; under mpirun it would make mpirun's exit status 0
    // whatever the ranks did.
    mpirun.env_remove("OMPI_MCA_orte_enable_recovery");
    mpirun
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    mpirun
}

/// Runs `command` as part `part` in a private `TMPDIR`, then removes that directory; its exit
/// status and standard output (also printed). Past 300 s it is killed.
pub(crate) fn outer(part: &str, mut command: Command) -> (ExitStatus, String) {
    let run = outer_run(
        part,
        command.stdout(Stdio::piped()),
        Duration::from_secs(300),
    );
    (run.status, run.stdout)
}

/// What an [`outer_within`] run printed, and how it ended.
pub(crate) struct Run {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// As [`outer`], killed past `limit`, with its standard error too (also printed).
pub(crate) fn outer_within(part: &str, mut command: Command, limit: Duration) -> Run {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let run = outer_run(part, &mut command, limit);
    eprint!("{}", run.stderr);
    run
}

fn outer_run(part: &str, command: &mut Command, limit: Duration) -> Run {
    let tmp = std::env::temp_dir().join(format!("cf-mpi-{part}-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    // No backtraces from Open MPI's signal handler when a worker aborts on purpose.
    command
        .env(PART, part)
        .env("TMPDIR", &tmp)
        .env("OMPI_MCA_opal_signal", "");
    let run = run_with_deadline(command, limit);
    let _ = std::fs::remove_dir_all(&tmp);
    print!("{}", run.stdout);
    run
}

/// Runs `command` to its end, killing it past `limit`; its status and what it printed where
/// piped.
fn run_with_deadline(command: &mut Command, limit: Duration) -> Run {
    let child = command.spawn().expect("start the test's own MPI run");
    let pid = child.id();
    let (done, watched) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = watched.recv_timeout(limit) {
            eprintln!("the MPI run (pid {pid}) took over {limit:?}: killing it");
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    });
    let output = child.wait_with_output().expect("wait for the MPI run");
    let _ = done.send(());
    Run {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// What `cargo test` runs: this binary as a plain program (part `spawn`), then as rank 0 of
/// `mpirun -n 3` (part `launcher`, which prints `launcher: ok` when its cases passed); each
/// must succeed.
///
/// Open MPI 4.1 over an external PMIx 4 (Debian's and Ubuntu's packages) hangs in
/// `MPI_Comm_spawn` now and then (openpmix issue 2735; seen here once in about 250 spawns),
/// which a pool reports as `SpawnTimedOut` after 30 s; the process cannot go on after that
/// (MPI cannot be finalized under the stuck call). When that is how the spawn part failed, it
/// runs once more: a second such failure, or any other, fails the test.
pub(crate) fn run_spawn_then_launcher_parts() {
    let spawn_part = || {
        outer_within(
            "spawn",
            Command::new(std::env::current_exe().unwrap()),
            Duration::from_secs(300),
        )
    };
    let mut run = spawn_part();
    if !run.status.success() && run.stderr.contains("SpawnTimedOut") {
        eprintln!("the spawn part met Open MPI's intermittent spawn hang: running it once more");
        run = spawn_part();
    }
    assert!(
        run.status.success(),
        "the spawn part failed: {}\n{}",
        run.status,
        run.stdout
    );
    let (status, stdout) = outer("launcher", mpirun(false));
    assert!(
        status.success(),
        "the launcher part failed: {status}\n{stdout}"
    );
    assert!(
        stdout.contains("launcher: ok"),
        "rank 0 did not finish: {stdout}"
    );
}

/// This host's name, as the kernel has it (and MPI reports it).
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

/// The pids of the processes running this test binary, other than this one and `except`.
pub(crate) fn others_running_this_program(except: &[u32]) -> Vec<u32> {
    let me = std::process::id();
    let exe = std::fs::read_link("/proc/self/exe").unwrap();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me || except.contains(&pid) {
            continue;
        }
        if std::fs::read_link(format!("/proc/{pid}/exe")).ok().as_ref() == Some(&exe) {
            pids.push(pid);
        }
    }
    pids
}
