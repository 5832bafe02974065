//! `cargo xtask`: set up what is missing, then run or test Pulseboard.
//!
//! - `cargo xtask setup`: install the pinned tools the tests need (idempotent).
//! - `cargo xtask run [-- ARGS]`: setup, then run `pulseboard` (release) on its embedded
//!   default, or with ARGS.
//! - `cargo xtask test`: setup, then run every test of the workspace.
//!
//! Builds go to `$CARGO_TARGET_DIR`, by default `~/.cache/pulseboard/target`, so a fresh
//! clone on a machine that built before reuses the compiled dependencies.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// Tansu: a standalone Kafka-compatible broker for tests that need a broker outliving a
/// Pulseboard process.
const TANSU_VERSION: &str = "0.6.0";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r.to_vec()),
        None => ("help", Vec::new()),
    };
    let result = match cmd {
        "setup" => setup().map(|_| ()),
        "run" => setup().and_then(|tools| run(&tools, &rest)),
        "test" => setup().and_then(|tools| test(&tools, &rest)),
        _ => {
            eprintln!("usage: cargo xtask <setup|run|test> [-- ARGS]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Tools {
    tansu: PathBuf,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo_home() -> PathBuf {
    env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"))
}

fn target_dir() -> PathBuf {
    if let Some(d) = env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache/pulseboard/target"))
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn cargo() -> Command {
    let mut c = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(workspace_root());
    c.env("CARGO_TARGET_DIR", target_dir());
    c
}

fn status(mut c: Command, what: &str) -> Result<(), String> {
    let s = c
        .status()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    if s.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({s})"))
    }
}

/// Versions of crates installed with `cargo install`, from `cargo install --list`.
fn installed_crate_version(name: &str) -> Option<String> {
    let out = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["install", "--list"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix(" v")?;
        Some(rest.trim_end_matches(':').to_owned())
    })
}

fn ensure_cargo_install(
    name: &str,
    version: &str,
    extra: &[&str],
    bin: &str,
) -> Result<PathBuf, String> {
    let path = cargo_home().join("bin").join(bin);
    if installed_crate_version(name).as_deref() == Some(version) && path.exists() {
        return Ok(path);
    }
    eprintln!("xtask: installing {name} {version} (one time; this takes a while)...");
    let t = Instant::now();
    let mut c = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.args(["install", "--locked", name, "--version", version])
        .args(extra);
    // Its own target dir: do not fight over the workspace's lock.
    c.env("CARGO_TARGET_DIR", target_dir().join("tools"));
    status(c, &format!("cargo install {name} {version}"))?;
    eprintln!(
        "xtask: installed {name} {version} in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    Ok(path)
}

fn setup() -> Result<Tools, String> {
    let tansu = ensure_cargo_install(
        "tansu",
        TANSU_VERSION,
        &["--features", "dynostore"],
        "tansu",
    )?;
    Ok(Tools { tansu })
}

fn run(_tools: &Tools, args: &[String]) -> Result<(), String> {
    let mut c = cargo();
    c.args([
        "run",
        "--release",
        "--package",
        "pulseboard",
        "--bin",
        "pulseboard",
        "--",
    ]);
    c.args(args.iter().skip_while(|a| *a == "--"));
    status(c, "pulseboard")
}

fn test(tools: &Tools, args: &[String]) -> Result<(), String> {
    let t = Instant::now();
    let mut c = cargo();
    c.args(["test", "--workspace", "--exclude", "xtask"]);
    c.args(args.iter().skip_while(|a| *a == "--"));
    c.env("PULSEBOARD_TANSU", &tools.tansu);
    let r = status(c, "cargo test");
    eprintln!("xtask: tests took {:.0} s", t.elapsed().as_secs_f64());
    r
}
