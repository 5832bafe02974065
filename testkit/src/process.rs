//! Child processes that never outlive the test or benchmark that started them.
//!
//! Every child (a Kafka broker, a Pulseboard, a peer) is spawned by one long-lived thread with
//! `PR_SET_PDEATHSIG = SIGKILL`: Linux kills the child when that thread dies, which happens
//! only when this process ends, however it ends (a failed assertion, a timeout, SIGKILL).
//! The signal follows the *thread* that forked, which is why a dedicated thread spawns them:
//! a test's own thread, or a runtime's blocking thread, may exit while the child should live.

use std::io;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

type Request = (Command, mpsc::Sender<io::Result<Child>>);

fn spawner() -> &'static Mutex<mpsc::Sender<Request>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("testkit-spawner".into())
            .spawn(move || {
                while let Ok((mut cmd, reply)) = rx.recv() {
                    let _ = reply.send(spawn_here(&mut cmd));
                }
                // Every sender is gone only when the process exits: park so the children
                // keep their parent thread until then.
                loop {
                    std::thread::park();
                }
            })
            .expect("spawning a thread only fails when the OS is out of resources");
        Mutex::new(tx)
    })
}

fn spawn_here(cmd: &mut Command) -> io::Result<Child> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    cmd.spawn()
}

/// Spawn `cmd` as a child that is killed when this process ends.
pub fn spawn(cmd: Command) -> Result<Child> {
    let what = format!("{:?}", cmd.get_program());
    let (tx, rx) = mpsc::channel();
    spawner()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((cmd, tx))
        .context("the spawner thread is gone")?;
    rx.recv()
        .context("the spawner thread is gone")?
        .with_context(|| format!("starting {what}"))
}

/// Send `signal` to a process.
pub fn signal(pid: u32, signal: i32) -> Result<()> {
    // SAFETY: kill(2) with a pid of our own child.
    let r = unsafe { libc::kill(pid as libc::pid_t, signal) };
    if r != 0 {
        bail!("kill -{signal} {pid}: {}", io::Error::last_os_error());
    }
    Ok(())
}

/// Wait for `child` to exit, at most `timeout` (polled every 20 ms); `None` if it did not.
pub fn wait_timeout(
    child: &mut Child,
    timeout: Duration,
) -> Result<Option<std::process::ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(Some(s));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM, wait at most `timeout`, then SIGKILL; reaps the child either way. Returns its
/// exit status if it stopped on SIGTERM (or had already exited), `None` if it was killed.
pub fn terminate(child: &mut Child, timeout: Duration) -> Result<Option<std::process::ExitStatus>> {
    if let Some(s) = child.try_wait()? {
        return Ok(Some(s));
    }
    signal(child.id(), libc::SIGTERM)?;
    if let Some(s) = wait_timeout(child, timeout)? {
        return Ok(Some(s));
    }
    child.kill()?;
    child.wait()?;
    Ok(None)
}

/// Peak resident set size (VmHWM) of a process, in MiB, from /proc.
pub fn peak_rss_mb(pid: u32) -> Option<f64> {
    proc_status_kb(pid, "VmHWM:").map(|kb| kb as f64 / 1024.0)
}

/// Current resident set size (VmRSS) of a process, in MiB, from /proc.
pub fn rss_mb(pid: u32) -> Option<f64> {
    proc_status_kb(pid, "VmRSS:").map(|kb| kb as f64 / 1024.0)
}

fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// CPU time (user + system) used by a process so far, from /proc.
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_name = stat.rsplit_once(')').map(|x| x.1).unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_millis(ticks * 1000 / hz))
}

/// The last `lines` lines of a log file, headed by its path, for an error message:
/// `"\nlast lines of PATH:\n..."`, or a note that the file cannot be read.
pub fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            let tail = all[all.len().saturating_sub(lines)..].join("\n");
            format!("\nlast lines of {}:\n{tail}", path.display())
        }
        Err(e) => format!("\n(cannot read {}: {e})", path.display()),
    }
}

/// Raise this process's soft limit of open files (RLIMIT_NOFILE) towards `want`, at most to
/// the hard limit; returns the soft limit now in force. Children inherit it.
pub fn raise_fd_limit(want: u64) -> Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable `struct rlimit` for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error()).context("getrlimit(RLIMIT_NOFILE)");
    }
    let target = (want as libc::rlim_t).min(lim.rlim_max);
    if lim.rlim_cur < target {
        let new = libc::rlimit {
            rlim_cur: target,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `new` is a valid `struct rlimit`; raising the soft limit up to the hard
        // limit needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } != 0 {
            return Err(io::Error::last_os_error()).context("setrlimit(RLIMIT_NOFILE)");
        }
        lim.rlim_cur = target;
    }
    Ok(lim.rlim_cur)
}
