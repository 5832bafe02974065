//! Pulseboard as a child process (the real binary), on port 0.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::process;

/// A running `pulseboard` child. Killed on drop.
pub struct PulseboardProcess {
    pub child: Child,
    pub addr: SocketAddr,
    /// The file that holds the child's stdout and stderr (its log).
    pub log: Option<PathBuf>,
    /// Holds the log of a child started without a log path of its own.
    _log_dir: Option<tempfile::TempDir>,
    /// The child was asked to panic (`PULSEBOARD_TEST_PANIC_AT`): panics in its log are
    /// expected, not a failure of [`kill9`](Self::kill9) or [`terminate`](Self::terminate).
    panics_expected: bool,
}

impl PulseboardProcess {
    /// Start `bin --listen 127.0.0.1:0 ARGS` with `RUST_LOG=info` and wait (at most 60 s)
    /// for it to print its address. Its log goes to a temporary file
    /// ([`log_tail`](Self::log_tail) shows the end, e.g. when a test fails).
    pub fn spawn(bin: &Path, args: &[&str]) -> Result<Self> {
        Self::spawn_with_env(bin, args, &[("RUST_LOG", "info")])
    }

    pub fn spawn_with_env(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("pulseboard-log-")
            .tempdir()?;
        let mut p = Self::start(bin, args, env, Some(&dir.path().join("pulseboard.log")))?;
        p._log_dir = Some(dir);
        Ok(p)
    }

    /// Like [`spawn_with_env`](Self::spawn_with_env), but the child's stdout and stderr both
    /// go to the file `log` (created or truncated), for a caller whose own output must stay
    /// readable (the benchmark); [`log_tail`](Self::log_tail) shows its end.
    pub fn spawn_logged(
        bin: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        log: &Path,
    ) -> Result<Self> {
        Self::start(bin, args, env, Some(log))
    }

    fn start(bin: &Path, args: &[&str], env: &[(&str, &str)], log: Option<&Path>) -> Result<Self> {
        let mut cmd = Command::new(bin);
        cmd.args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let mut copy = None;
        match log {
            Some(path) => {
                let file =
                    File::create(path).with_context(|| format!("creating {}", path.display()))?;
                copy = Some(file.try_clone()?);
                cmd.stderr(file);
            }
            None => {
                cmd.stderr(Stdio::inherit());
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = process::spawn(cmd).context("spawning pulseboard")?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        // Keep reading to the end, whatever the bytes: a child whose stdout pipe fills up
        // would block in its next log line.
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let line = String::from_utf8_lossy(&buf);
                if let Some(url) = line.trim_end().strip_prefix("Pulseboard on http://") {
                    let _ = tx.send(url.trim().to_owned());
                }
                if let Some(f) = copy.as_mut() {
                    let _ = f.write_all(&buf);
                }
            }
        });
        let log = log.map(Path::to_path_buf);
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a.parse()?,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait()?;
                let tail = log
                    .as_deref()
                    .map(|l| process::log_tail(l, 20))
                    .unwrap_or_default();
                bail!("pulseboard did not print its address within 60 s (it exited with {status}){tail}");
            }
        };
        Ok(PulseboardProcess {
            child,
            addr,
            log,
            _log_dir: None,
            panics_expected: env.iter().any(|(k, _)| *k == "PULSEBOARD_TEST_PANIC_AT"),
        })
    }

    /// The last `lines` lines of the log of a [`spawn_logged`](Self::spawn_logged) child, as
    /// text for an error message (empty for other children).
    pub fn log_tail(&self, lines: usize) -> String {
        self.log
            .as_deref()
            .map(|l| process::log_tail(l, lines))
            .unwrap_or_default()
    }

    /// `r`, its error followed by the last `lines` lines of the child's log: a test's
    /// failure then says what the child was doing.
    pub fn with_log<T>(&self, r: Result<T>, lines: usize) -> Result<T> {
        r.map_err(|e| anyhow!("{e}\n{}", self.log_tail(lines)))
    }

    /// The panics the child's log reports so far (each `panicked at PLACE:` line with the
    /// message after it): a panic that the process survived (a task that failed and was
    /// retried) is still a bug a test should see.
    pub fn panics(&self) -> Vec<String> {
        let Some(text) = self
            .log
            .as_deref()
            .and_then(|l| std::fs::read(l).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
        else {
            return Vec::new();
        };
        let lines: Vec<&str> = text.lines().collect();
        lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.contains(" panicked at "))
            .map(|(i, l)| format!("{l} {}", lines.get(i + 1).copied().unwrap_or_default()))
            .collect()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, and reap; an error if its log reports a panic (see [`panics`](Self::panics)).
    pub fn kill9(mut self) -> Result<()> {
        process::signal(self.child.id(), libc::SIGKILL)?;
        self.child.wait()?;
        self.no_panics()
    }

    /// SIGTERM and wait at most `timeout` for the exit; an error if it does not stop, or if
    /// its log reports a panic.
    pub fn terminate_within(mut self, timeout: Duration) -> Result<ExitStatus> {
        process::signal(self.child.id(), libc::SIGTERM)?;
        match process::wait_timeout(&mut self.child, timeout)? {
            Some(s) => self.no_panics().map(|()| s),
            None => bail!("pulseboard did not exit within {timeout:?} of SIGTERM"),
        }
    }

    /// An error listing the panics of the log, unless the child was asked to panic.
    fn no_panics(&self) -> Result<()> {
        let panics = self.panics();
        if self.panics_expected || panics.is_empty() {
            return Ok(());
        }
        bail!(
            "pulseboard (pid {}) panicked: {}{}",
            self.child.id(),
            panics.join("; "),
            self.log_tail(40)
        )
    }

    /// SIGTERM and wait (at most 60 s) for the exit status.
    pub fn terminate(self) -> Result<ExitStatus> {
        self.terminate_within(Duration::from_secs(60))
    }

    /// Freeze the process (SIGSTOP).
    pub fn pause(&self) -> Result<()> {
        process::signal(self.child.id(), libc::SIGSTOP)
    }

    /// Thaw the process (SIGCONT).
    pub fn resume(&self) -> Result<()> {
        process::signal(self.child.id(), libc::SIGCONT)
    }
}

impl Drop for PulseboardProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // PULSEBOARD_KEEP_LOGS=1 keeps the logs of children for a look after the run.
        if std::env::var_os("PULSEBOARD_KEEP_LOGS").is_some() {
            if let Some(dir) = self._log_dir.take() {
                eprintln!(
                    "pulseboard log kept: {}",
                    dir.keep().join("pulseboard.log").display()
                );
            }
        }
    }
}
