//! `cargo xtask`: set up what is missing, then run or test Pulseboard.
//!
//! - `cargo xtask setup`: install the pinned tools that building and testing need
//!   (idempotent): the wasm32 target, Trunk, wasm-bindgen-cli matching Cargo.lock, wasm-opt
//!   (binaryen from npm) and Playwright (npm), Debian's Chromium, and the Tansu broker.
//! - `cargo xtask run [-- ARGS]`: setup, build the frontend, run `pulseboard` (release) on
//!   its embedded default, or with ARGS.
//! - `cargo xtask test`: setup, build the frontend, run every Rust test, then the browser
//!   end-to-end tests in headless Chromium.
//! - `cargo xtask bench [--quick] [ARGS]`: the benchmark (server/benches/pipeline.rs)
//!   against a Tansu broker, with Quix Streams (pinned in bench/requirements.txt, installed
//!   into a venv) as the peer; prints a table and writes `target/bench/results.json`.
//!   `cargo xtask test` ends with its `--quick` run as a smoke test.
//! - `cargo xtask soak [--kills N] [--fuzz-seconds S]`: the crash-loop test with N SIGKILLs
//!   (default 100), then the decoder fuzzer (cargo fuzz) for S seconds (default 300).
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
/// Trunk builds the wasm frontend. 0.22 needs a newer rustc than this toolchain.
const TRUNK_VERSION: &str = "0.21.14";
/// A `wasm-bindgen-cli` dependency pins `webpki-roots` to a version the registry here lacks.
const WEBPKI_ROOTS_FALLBACK: &str = "1.0.10";
/// The fuzzer driver of the soak command.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

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
        "soak" => setup().and_then(|tools| soak(&tools, &rest)),
        "bench" => setup().and_then(|tools| bench(&tools, &rest)),
        _ => {
            eprintln!("usage: cargo xtask <setup|run|test|soak|bench> [-- ARGS]");
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
    trunk: PathBuf,
    /// npm tools (wasm-opt, playwright-core) of `tests/e2e`.
    node_bin: PathBuf,
    chromium: PathBuf,
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
    ensure_wasm_target()?;
    let tansu = ensure_cargo_install(
        "tansu",
        TANSU_VERSION,
        &["--features", "dynostore"],
        "tansu",
    )?;
    let trunk = ensure_cargo_install("trunk", TRUNK_VERSION, &[], "trunk")?;
    ensure_wasm_bindgen()?;
    let node_bin = ensure_npm_tools()?;
    let chromium = ensure_chromium()?;
    Ok(Tools {
        tansu,
        trunk,
        node_bin,
        chromium,
    })
}

fn ensure_wasm_target() -> Result<(), String> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| format!("rustup: {e}"))?;
    if String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == "wasm32-unknown-unknown")
    {
        return Ok(());
    }
    eprintln!("xtask: adding the wasm32-unknown-unknown target...");
    let mut c = Command::new("rustup");
    c.args(["target", "add", "wasm32-unknown-unknown"]);
    status(c, "rustup target add wasm32-unknown-unknown")
}

/// The version of a package in Cargo.lock.
fn locked_version(package: &str) -> Result<String, String> {
    let lock = std::fs::read_to_string(workspace_root().join("Cargo.lock"))
        .map_err(|e| format!("reading Cargo.lock: {e}"))?;
    let needle = format!("name = \"{package}\"\nversion = \"");
    let at = lock
        .find(&needle)
        .ok_or_else(|| format!("{package} is not in Cargo.lock"))?;
    let rest = &lock[at + needle.len()..];
    Ok(rest[..rest.find('"').unwrap_or(0)].to_owned())
}

/// wasm-bindgen-cli must match the wasm-bindgen crate in Cargo.lock exactly.
fn ensure_wasm_bindgen() -> Result<(), String> {
    let version = locked_version("wasm-bindgen")?;
    let bin = cargo_home().join("bin").join("wasm-bindgen");
    let current = Command::new(&bin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if current.split_whitespace().nth(1) == Some(version.as_str()) {
        return Ok(());
    }
    let name = "wasm-bindgen-cli";
    if ensure_cargo_install(name, &version, &[], "wasm-bindgen").is_ok() {
        return Ok(());
    }
    // Its lock file pins a webpki-roots the registry does not serve: install from a copy of
    // the downloaded source with that one dependency moved to a version that exists.
    eprintln!("xtask: retrying {name} {version} with webpki-roots {WEBPKI_ROOTS_FALLBACK}");
    let src = std::fs::read_dir(cargo_home().join("registry/src"))
        .map_err(|e| format!("reading the cargo registry: {e}"))?
        .filter_map(Result::ok)
        .map(|d| d.path().join(format!("{name}-{version}")))
        .find(|p| p.is_dir())
        .ok_or_else(|| format!("the source of {name} {version} was not downloaded"))?;
    let copy = target_dir().join("tools").join(format!("{name}-{version}"));
    let _ = std::fs::remove_dir_all(&copy);
    let mut cp = Command::new("cp");
    cp.arg("-r").arg(&src).arg(&copy);
    status(cp, "copying the wasm-bindgen-cli source")?;
    let mut up = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    up.current_dir(&copy).args([
        "update",
        "-p",
        "webpki-roots",
        "--precise",
        WEBPKI_ROOTS_FALLBACK,
    ]);
    status(up, "cargo update webpki-roots")?;
    let mut c = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.args(["install", "--locked", "--force", "--path"])
        .arg(&copy);
    c.env("CARGO_TARGET_DIR", target_dir().join("tools"));
    status(c, &format!("cargo install {name} {version} from source"))
}

/// `npm ci` in tests/e2e: Playwright (driver only) and binaryen's wasm-opt, as locked.
fn ensure_npm_tools() -> Result<PathBuf, String> {
    let dir = workspace_root().join("tests/e2e");
    let bin = dir.join("node_modules/.bin");
    let lock = std::fs::read_to_string(dir.join("package-lock.json")).unwrap_or_default();
    let installed =
        std::fs::read_to_string(dir.join("node_modules/.package-lock.json")).unwrap_or_default();
    fn versions(s: &str) -> Vec<&str> {
        let mut v: Vec<&str> = s
            .lines()
            .filter(|l| l.contains("\"version\""))
            .map(str::trim)
            .collect();
        v.sort_unstable();
        v
    }
    if bin.join("wasm-opt").exists()
        && !installed.is_empty()
        && versions(&lock) == versions(&installed)
    {
        return Ok(bin);
    }
    eprintln!("xtask: installing npm tools (playwright-core, binaryen) in tests/e2e...");
    let mut c = Command::new("npm");
    c.current_dir(&dir).args(["ci", "--no-audit", "--no-fund"]);
    status(c, "npm ci in tests/e2e")?;
    Ok(bin)
}

/// Debian's Chromium for the browser tests.
fn ensure_chromium() -> Result<PathBuf, String> {
    let path = PathBuf::from("/usr/bin/chromium");
    if path.exists() {
        return Ok(path);
    }
    eprintln!("xtask: installing Debian's chromium (apt-get)...");
    let mut update = Command::new("apt-get");
    update
        .arg("update")
        .env("DEBIAN_FRONTEND", "noninteractive");
    status(update, "apt-get update")?;
    let mut c = Command::new("apt-get");
    c.args(["install", "-y", "--no-install-recommends", "chromium"])
        .env("DEBIAN_FRONTEND", "noninteractive");
    status(c, "apt-get install chromium")?;
    Ok(path)
}

/// PATH with the pinned tools first.
fn tool_path(tools: &Tools) -> std::ffi::OsString {
    let mut dirs = vec![tools.node_bin.clone(), cargo_home().join("bin")];
    dirs.extend(env::split_paths(&env::var_os("PATH").unwrap_or_default()));
    env::join_paths(dirs).unwrap_or_default()
}

/// `trunk build --release`: the frontend into `dist/`. Trunk never downloads a tool here
/// (`offline = true` in Trunk.toml); it uses the pinned ones on PATH.
fn build_frontend(tools: &Tools) -> Result<(), String> {
    let t = Instant::now();
    let mut c = Command::new(&tools.trunk);
    c.current_dir(workspace_root())
        .args(["build", "--release"])
        .env("PATH", tool_path(tools))
        .env("TRUNK_SKIP_VERSION_CHECK", "true")
        .env("TRUNK_OFFLINE", "true")
        .env("CARGO_TARGET_DIR", target_dir());
    status(c, "trunk build")?;
    eprintln!(
        "xtask: frontend built in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
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
    build_frontend(tools)?;
    let mut c = cargo();
    c.args(["test", "--workspace", "--exclude", "xtask"]);
    c.args(args.iter().skip_while(|a| *a == "--"));
    c.env("PULSEBOARD_TANSU", &tools.tansu);
    status(c, "cargo test")?;
    eprintln!(
        "xtask: Rust tests done after {:.0} s",
        t.elapsed().as_secs_f64()
    );
    e2e(tools)?;
    // The benchmark's smoke run: it runs and writes its JSON (no timing is asserted).
    let out = workspace_root().join("target/bench/results-quick.json");
    let _ = std::fs::remove_file(&out);
    bench(
        tools,
        &["--quick".into(), "--out".into(), out.display().to_string()],
    )?;
    if !out.exists() {
        return Err(format!("the benchmark did not write {}", out.display()));
    }
    eprintln!("xtask: all tests took {:.0} s", t.elapsed().as_secs_f64());
    Ok(())
}

/// A venv with the benchmark's peer (Quix Streams), as pinned in bench/requirements.txt.
fn ensure_peer_venv() -> Result<PathBuf, String> {
    let venv = target_dir()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(target_dir)
        .join("peer-venv");
    let python = venv.join("bin/python");
    let wanted = std::fs::read_to_string(workspace_root().join("bench/requirements.txt"))
        .map_err(|e| format!("reading bench/requirements.txt: {e}"))?;
    let marker = venv.join("requirements.installed");
    if python.exists() && std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str())
    {
        return Ok(python);
    }
    eprintln!(
        "xtask: installing the benchmark peer (bench/requirements.txt) into {}",
        venv.display()
    );
    let mut c = Command::new("python3");
    c.args(["-m", "venv"]).arg(&venv);
    status(c, "python3 -m venv")?;
    let mut c = Command::new(venv.join("bin/pip"));
    c.args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(workspace_root().join("bench/requirements.txt"));
    status(c, "pip install -r bench/requirements.txt")?;
    std::fs::write(&marker, wanted).map_err(|e| format!("writing {}: {e}", marker.display()))?;
    Ok(python)
}

/// `cargo bench --bench pipeline` with the release binary, Tansu and the peer.
fn bench(tools: &Tools, args: &[String]) -> Result<(), String> {
    let mut c = cargo();
    c.args([
        "build",
        "--release",
        "-p",
        "pulseboard",
        "--bin",
        "pulseboard",
    ]);
    status(c, "building the release binary")?;
    let python = ensure_peer_venv()?;
    let mut args: Vec<String> = args.iter().skip_while(|a| *a == "--").cloned().collect();
    if !args.iter().any(|a| a == "--out") {
        // The bench binary may be shared by several clones through the target directory:
        // name this clone's output path rather than the one it was compiled in.
        args.push("--out".into());
        args.push(
            workspace_root()
                .join("target/bench/results.json")
                .display()
                .to_string(),
        );
    }
    let mut c = cargo();
    c.args(["bench", "-p", "pulseboard", "--bench", "pipeline", "--"])
        .args(&args)
        .env("PULSEBOARD_BIN", target_dir().join("release/pulseboard"))
        .env("PULSEBOARD_TANSU", &tools.tansu)
        .env("PULSEBOARD_PEER_PYTHON", python);
    status(c, "benchmark")
}

/// Browser end-to-end tests: node's test runner with Playwright driving headless Chromium
/// against the real binary (built by `cargo test` above) and the built frontend.
fn e2e(tools: &Tools) -> Result<(), String> {
    let root = workspace_root();
    let bin = target_dir().join("debug").join("pulseboard");
    let mut c = Command::new("node");
    c.current_dir(root.join("tests/e2e"))
        .args(["--test", "--test-concurrency=1", "--test-timeout=240000"])
        .env("PULSEBOARD_BIN", &bin)
        .env("PULSEBOARD_DIST", root.join("dist"))
        .env("CHROMIUM", &tools.chromium)
        .env("ARTIFACTS", target_dir().join("e2e-artifacts"));
    status(c, "browser tests")
}

/// The value after `flag` in `args`, parsed, or `default`.
fn flag_value(args: &[String], flag: &str, default: u64) -> Result<u64, String> {
    match args.iter().position(|a| a == flag) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{flag} needs a whole number")),
    }
}

/// The long versions of the fault tests: many SIGKILLs, then the decoder fuzzer.
fn soak(tools: &Tools, args: &[String]) -> Result<(), String> {
    let kills = flag_value(args, "--kills", 100)?;
    let fuzz_seconds = flag_value(args, "--fuzz-seconds", 300)?;
    let t = Instant::now();
    if kills > 0 {
        let mut c = cargo();
        c.args([
            "test",
            "-p",
            "pulseboard",
            "--test",
            "integration",
            "sigkill",
            "--",
            "--nocapture",
        ])
        .env("PULSEBOARD_TANSU", &tools.tansu)
        .env("PULSEBOARD_SOAK_KILLS", kills.to_string());
        status(c, &format!("crash loop with {kills} kills"))?;
        eprintln!(
            "xtask: {kills} kills survived in {:.0} s",
            t.elapsed().as_secs_f64()
        );
    }
    if fuzz_seconds == 0 {
        return Ok(());
    }
    let fuzz = ensure_cargo_install("cargo-fuzz", CARGO_FUZZ_VERSION, &[], "cargo-fuzz")?;
    let mut c = Command::new(fuzz);
    // cargo fuzz needs nightly flags (sanitizers); this toolchain is stable.
    c.current_dir(workspace_root().join("fuzz"))
        .args([
            "fuzz",
            "run",
            "decode",
            "--",
            &format!("-max_total_time={fuzz_seconds}"),
        ])
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_TARGET_DIR", target_dir().join("fuzz"));
    status(c, "fuzzing the decoder")?;
    eprintln!("xtask: soak done in {:.0} s", t.elapsed().as_secs_f64());
    Ok(())
}
