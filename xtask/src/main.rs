//! `cargo xtask`: set up what is missing, then run or test Pulseboard.
//!
//! - `cargo xtask setup`: install the pinned tools that building and testing need
//!   (idempotent, every step timed): the wasm32 target, Trunk, wasm-bindgen-cli matching
//!   Cargo.lock, wasm-opt (binaryen from npm) and Playwright (npm), Debian's Chromium, a JDK
//!   and Maven (Debian) when missing, and the Apache Kafka broker jars (Maven Central, as
//!   pinned in `testkit/kafka/pom.xml`).
//! - `cargo xtask run [-- ARGS]`: set up the frontend tools, build the frontend, run
//!   `pulseboard` (release) on its embedded default (no Java needed), or with ARGS.
//! - `cargo xtask kafka [ARGS]`: a local Apache Kafka on a free port; prints the bootstrap
//!   address (`--nodes N`, `--topic NAME`, `--partitions P`).
//! - `cargo xtask test`: setup, build the frontend, run every Rust test (integration tests on
//!   Apache Kafka), then the browser end-to-end tests in headless Chromium, then the API
//!   fuzzing (below), then the benchmark's `--quick` smoke run.
//! - `cargo xtask api-fuzz [--max-examples N]`: Schemathesis (pinned in
//!   `tests/schemathesis/requirements.txt`, in a venv) against a live embedded `pulseboard`
//!   (debug build, `--demo-rate 50`, a free loopback port, a temporary data dir, a token), from
//!   its own `/api/v1/openapi.json`: every operation but `/ws`, N cases each (default 50) per
//!   phase, checking for server errors and that status codes, content types and bodies are
//!   the documented ones. Bounded to 10 minutes; its JSON report goes to `target/schemathesis/`.
//! - `cargo xtask bench [--quick] [ARGS]`: the benchmark (`bench/`) on Apache Kafka against
//!   its peers (Spark and Kafka Streams built with Maven, except with `--quick`; Quix Streams
//!   in a venv); prints a table and writes `target/bench/results.json`.
//! - `cargo xtask soak [--kills N] [--fuzz-seconds S]`: the crash-loop test with N SIGKILLs
//!   (default 100), then the decoder fuzzer (cargo fuzz) for S seconds (default 300).
//!
//! Builds go to `$CARGO_TARGET_DIR`, by default `~/.cache/pulseboard/target`, so a fresh
//! clone on a machine that built before reuses the compiled dependencies.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

/// Trunk builds the wasm frontend. 0.22 needs a newer rustc than this toolchain.
const TRUNK_VERSION: &str = "0.21.14";
/// A `wasm-bindgen-cli` dependency pins `webpki-roots` to a version the registry here lacks.
const WEBPKI_ROOTS_FALLBACK: &str = "1.0.10";
/// Cases per API operation and phase of the Schemathesis run (`--max-examples`).
const API_FUZZ_EXAMPLES: u64 = 50;
/// The Schemathesis run is stopped (and fails) after this long.
const API_FUZZ_TIMEOUT: Duration = Duration::from_secs(600);
/// The fuzzer driver of the soak command.
const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// The pom that pins the Apache Kafka broker of the tests (also read by the test kit).
const KAFKA_POM: &str = "testkit/kafka/pom.xml";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r.to_vec()),
        None => ("help", Vec::new()),
    };
    let rest: Vec<String> = rest.into_iter().skip_while(|a| a == "--").collect();
    let mut timer = Timer::default();
    let result = match cmd {
        "setup" => setup(&mut timer, Need::ALL).map(|_| ()),
        "run" => setup(&mut timer, Need::FRONTEND).and_then(|tools| run(&mut timer, &tools, &rest)),
        "kafka" => setup(&mut timer, Need::KAFKA).and_then(|tools| kafka(&tools, &rest)),
        "test" => setup(&mut timer, Need::ALL).and_then(|tools| test(&mut timer, &tools, &rest)),
        "api-fuzz" => setup(&mut timer, Need::API_FUZZ).and_then(|tools| {
            let examples = flag_value(&rest, "--max-examples", API_FUZZ_EXAMPLES)?;
            timer.step("build pulseboard (debug)", || {
                let mut c = cargo();
                c.args(["build", "-p", "pulseboard", "--bin", "pulseboard"]);
                status(c, "cargo build pulseboard")
            })?;
            api_fuzz(&mut timer, &tools, examples)
        }),
        "soak" => setup(&mut timer, Need::KAFKA).and_then(|tools| soak(&tools, &rest)),
        "bench" => {
            setup(&mut timer, Need::KAFKA).and_then(|tools| bench(&mut timer, &tools, &rest))
        }
        _ => {
            eprintln!("usage: cargo xtask <setup|run|kafka|test|api-fuzz|soak|bench> [-- ARGS]");
            return ExitCode::from(2);
        }
    };
    timer.print();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Every step timed, printed as it ends and again as a table at the end.
#[derive(Default)]
struct Timer {
    steps: Vec<(String, f64)>,
    started: Option<Instant>,
}

impl Timer {
    fn step<T>(&mut self, name: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
        self.started.get_or_insert_with(Instant::now);
        let t = Instant::now();
        let r = f();
        let secs = t.elapsed().as_secs_f64();
        eprintln!(
            "xtask: [{secs:7.1} s] {name}{}",
            if r.is_err() { " (failed)" } else { "" }
        );
        self.steps.push((name.to_owned(), secs));
        r
    }

    fn record(&mut self, name: &str, secs: f64) {
        self.steps.push((name.to_owned(), secs));
    }

    fn print(&self) {
        if self.steps.is_empty() {
            return;
        }
        eprintln!("xtask: steps and times");
        for (name, secs) in &self.steps {
            eprintln!("xtask:   {secs:8.1} s  {name}");
        }
        if let Some(t) = self.started {
            eprintln!("xtask:   {:8.1} s  in all", t.elapsed().as_secs_f64());
        }
    }
}

/// Which tools a command needs.
#[derive(Clone, Copy)]
struct Need {
    frontend: bool,
    browser: bool,
    kafka: bool,
    /// Schemathesis (a Python venv).
    api_fuzz: bool,
}

impl Need {
    const ALL: Need = Need {
        frontend: true,
        browser: true,
        kafka: true,
        api_fuzz: true,
    };
    /// `cargo xtask run`: the embedded default needs no Java and no browser.
    const FRONTEND: Need = Need {
        frontend: true,
        browser: false,
        kafka: false,
        api_fuzz: false,
    };
    const KAFKA: Need = Need {
        frontend: false,
        browser: false,
        kafka: true,
        api_fuzz: false,
    };
    const API_FUZZ: Need = Need {
        frontend: false,
        browser: false,
        kafka: false,
        api_fuzz: true,
    };
}

#[derive(Default)]
struct Tools {
    trunk: Option<PathBuf>,
    /// npm tools (wasm-opt, playwright-core) of `tests/e2e`.
    node_bin: Option<PathBuf>,
    chromium: Option<PathBuf>,
    /// The Apache Kafka broker's jars.
    kafka_libs: Option<PathBuf>,
    /// The `st` command of the Schemathesis venv.
    schemathesis: Option<PathBuf>,
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

/// Pulseboard's caches outside the clone: `$PULSEBOARD_CACHE`, else `~/.cache/pulseboard`.
fn cache_dir() -> PathBuf {
    if let Some(d) = env::var_os("PULSEBOARD_CACHE") {
        return PathBuf::from(d);
    }
    env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache/pulseboard"))
        .unwrap_or_else(|| workspace_root().join("target/cache"))
}

fn target_dir() -> PathBuf {
    if let Some(d) = env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    cache_dir().join("target")
}

fn cargo_cmd() -> Command {
    Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn cargo() -> Command {
    let mut c = cargo_cmd();
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

/// Whether a command runs and exits 0 (its output is not shown).
fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Versions of crates installed with `cargo install`, from `cargo install --list`.
fn installed_crate_version(name: &str) -> Option<String> {
    let out = cargo_cmd().args(["install", "--list"]).output().ok()?;
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
    eprintln!("xtask: installing {name} {version} (one time)...");
    let mut c = cargo_cmd();
    c.args(["install", "--locked", name, "--version", version])
        .args(extra);
    // Its own target dir: do not fight over the workspace's lock.
    c.env("CARGO_TARGET_DIR", target_dir().join("tools"));
    // A debug build without debug info: these tools spend their time in the programs they
    // start (cargo, wasm-bindgen, wasm-opt), and it compiles several times faster.
    c.env("CARGO_PROFILE_DEV_DEBUG", "0");
    status(c, &format!("cargo install {name} {version}"))?;
    Ok(path)
}

/// Install what `need` asks for, each step timed. Steps that only download (apt, Maven)
/// run on threads beside the compiling ones.
fn setup(timer: &mut Timer, need: Need) -> Result<Tools, String> {
    let mut tools = Tools::default();
    let setup_started = Instant::now();
    let background = std::thread::scope(|scope| -> Result<Vec<(String, f64)>, String> {
        let mut jobs = Vec::new();
        if need.browser {
            jobs.push(scope.spawn(
                || -> Result<(String, f64, Option<PathBuf>, Option<PathBuf>), String> {
                    let t = Instant::now();
                    let chromium = ensure_chromium()?;
                    Ok((
                        "Chromium (Debian)".into(),
                        t.elapsed().as_secs_f64(),
                        Some(chromium),
                        None,
                    ))
                },
            ));
        }
        if need.kafka {
            jobs.push(scope.spawn(
                || -> Result<(String, f64, Option<PathBuf>, Option<PathBuf>), String> {
                    let t = Instant::now();
                    ensure_java_and_maven()?;
                    let libs = ensure_kafka_jars()?;
                    Ok((
                        "JDK + Maven, Apache Kafka jars (Maven Central)".into(),
                        t.elapsed().as_secs_f64(),
                        None,
                        Some(libs),
                    ))
                },
            ));
        }
        let mut fg: Result<(), String> = Ok(());
        if need.frontend {
            fg = (|| {
                timer.step("rust target wasm32-unknown-unknown", ensure_wasm_target)?;
                tools.trunk = Some(timer.step(&format!("trunk {TRUNK_VERSION}"), || {
                    ensure_cargo_install(
                        "trunk",
                        TRUNK_VERSION,
                        &["--debug", "--no-default-features", "--features", "rustls"],
                        "trunk",
                    )
                })?);
                timer.step("wasm-bindgen-cli (= Cargo.lock)", ensure_wasm_bindgen)?;
                tools.node_bin =
                    Some(timer.step("npm tools (binaryen, playwright-core)", ensure_npm_tools)?);
                Ok(())
            })();
        }
        if need.api_fuzz && fg.is_ok() {
            fg = timer
                .step("Schemathesis venv (PyPI)", ensure_schemathesis)
                .map(|st| tools.schemathesis = Some(st));
        }
        let mut done = Vec::new();
        let mut first_err = fg.err();
        for job in jobs {
            match job.join() {
                Ok(Ok((name, secs, chromium, libs))) => {
                    if chromium.is_some() {
                        tools.chromium = chromium;
                    }
                    if libs.is_some() {
                        tools.kafka_libs = libs;
                    }
                    eprintln!("xtask: [{secs:7.1} s] {name} (beside the others)");
                    done.push((format!("{name} (in parallel)"), secs));
                }
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert("a setup thread panicked".into());
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(done),
        }
    })?;
    for (name, secs) in background {
        timer.record(&name, secs);
    }
    timer.record("setup, wall clock", setup_started.elapsed().as_secs_f64());
    Ok(tools)
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
    let mut up = cargo_cmd();
    up.current_dir(&copy).args([
        "update",
        "-p",
        "webpki-roots",
        "--precise",
        WEBPKI_ROOTS_FALLBACK,
    ]);
    status(up, "cargo update webpki-roots")?;
    let mut c = cargo_cmd();
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

/// `apt-get update` once per run, then install `packages`.
fn apt_install(packages: &[&str]) -> Result<(), String> {
    static UPDATED: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut updated = UPDATED.lock().unwrap_or_else(|e| e.into_inner());
    if !*updated {
        let mut update = Command::new("apt-get");
        update
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive");
        status(update, "apt-get update")?;
        *updated = true;
    }
    let mut c = Command::new("apt-get");
    c.args(["install", "-y", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive");
    status(c, &format!("apt-get install {}", packages.join(" ")))
}

/// Debian's Chromium for the browser tests.
fn ensure_chromium() -> Result<PathBuf, String> {
    let path = PathBuf::from("/usr/bin/chromium");
    if path.exists() {
        return Ok(path);
    }
    eprintln!("xtask: installing Debian's chromium (apt-get)...");
    apt_install(&["chromium"])?;
    Ok(path)
}

/// A JDK (17+) and Maven, from Debian's packages when missing.
fn ensure_java_and_maven() -> Result<(), String> {
    let java = runs("java", &["-version"]);
    let mvn = runs("mvn", &["-v"]);
    if java && mvn {
        return Ok(());
    }
    let mut packages = Vec::new();
    if !java {
        packages.push("openjdk-17-jdk-headless");
    }
    if !mvn {
        packages.push("maven");
    }
    eprintln!("xtask: installing {} (apt-get)...", packages.join(" "));
    apt_install(&packages)
}

/// `<kafka.version>` of the broker's pom.
fn kafka_version(pom: &str) -> Result<String, String> {
    pom.split_once("<kafka.version>")
        .and_then(|(_, rest)| rest.split_once("</kafka.version>"))
        .map(|(v, _)| v.trim().to_owned())
        .ok_or_else(|| format!("{KAFKA_POM} has no <kafka.version>"))
}

/// The Apache Kafka broker's jars, resolved from Maven Central by the pom into
/// `<cache>/kafka-<version>/libs`; redone only when the pom changes.
fn ensure_kafka_jars() -> Result<PathBuf, String> {
    let pom_path = workspace_root().join(KAFKA_POM);
    let pom =
        std::fs::read_to_string(&pom_path).map_err(|e| format!("reading {KAFKA_POM}: {e}"))?;
    let home = cache_dir().join(format!("kafka-{}", kafka_version(&pom)?));
    let libs = home.join("libs");
    let marker = home.join("pom.installed");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(pom.as_str()) && libs.is_dir() {
        return Ok(libs);
    }
    eprintln!("xtask: resolving the Apache Kafka broker jars with Maven...");
    let staging = home.join("libs.partial");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&home).map_err(|e| format!("creating {}: {e}", home.display()))?;
    let mut c = Command::new("mvn");
    c.args(["-q", "-B", "-f"])
        .arg(&pom_path)
        .arg("dependency:copy-dependencies")
        .arg(format!("-DoutputDirectory={}", staging.display()))
        .arg("-DincludeScope=runtime");
    status(c, "mvn dependency:copy-dependencies (Kafka broker)")?;
    let _ = std::fs::remove_dir_all(&libs);
    std::fs::rename(&staging, &libs)
        .map_err(|e| format!("moving the Kafka jars into place: {e}"))?;
    std::fs::write(&marker, &pom).map_err(|e| format!("writing {}: {e}", marker.display()))?;
    Ok(libs)
}

/// PATH with the pinned tools first.
fn tool_path(tools: &Tools) -> std::ffi::OsString {
    let mut dirs: Vec<PathBuf> = tools.node_bin.iter().cloned().collect();
    dirs.push(cargo_home().join("bin"));
    dirs.extend(env::split_paths(&env::var_os("PATH").unwrap_or_default()));
    env::join_paths(dirs).unwrap_or_default()
}

/// `trunk build --release`: the frontend into `dist/`. Trunk never downloads a tool here
/// (`offline = true` in Trunk.toml); it uses the pinned ones on PATH.
fn build_frontend(timer: &mut Timer, tools: &Tools) -> Result<(), String> {
    let trunk = tools
        .trunk
        .clone()
        .ok_or_else(|| "trunk is not set up".to_owned())?;
    timer.step("frontend (trunk build --release)", || {
        let mut c = Command::new(&trunk);
        c.current_dir(workspace_root())
            .args(["build", "--release"])
            .env("PATH", tool_path(tools))
            .env("TRUNK_SKIP_VERSION_CHECK", "true")
            .env("TRUNK_OFFLINE", "true")
            .env("CARGO_TARGET_DIR", target_dir());
        status(c, "trunk build")
    })
}

fn run(timer: &mut Timer, tools: &Tools, args: &[String]) -> Result<(), String> {
    build_frontend(timer, tools)?;
    timer.print();
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
    c.args(args);
    status(c, "pulseboard")
}

/// `cargo xtask kafka`: the test kit's `local-kafka`.
fn kafka(tools: &Tools, args: &[String]) -> Result<(), String> {
    let mut c = cargo();
    c.args([
        "run",
        "--quiet",
        "--package",
        "pulseboard-testkit",
        "--bin",
        "local-kafka",
        "--",
    ])
    .args(args);
    kafka_env(&mut c, tools);
    status(c, "local-kafka")
}

fn kafka_env(c: &mut Command, tools: &Tools) {
    if let Some(libs) = &tools.kafka_libs {
        c.env("PULSEBOARD_KAFKA_LIBS", libs);
    }
    c.env("PULSEBOARD_CACHE", cache_dir());
}

fn test(timer: &mut Timer, tools: &Tools, args: &[String]) -> Result<(), String> {
    build_frontend(timer, tools)?;
    timer.step("build the tests", || {
        let mut c = cargo();
        c.args(["test", "--workspace", "--exclude", "xtask", "--no-run"]);
        status(c, "cargo test --no-run")
    })?;
    timer.step("Rust tests (unit + integration on Apache Kafka)", || {
        let mut c = cargo();
        c.args(["test", "--workspace", "--exclude", "xtask"]);
        c.args(args);
        kafka_env(&mut c, tools);
        status(c, "cargo test")
    })?;
    timer.step("browser tests (Chromium)", || e2e(tools))?;
    // The debug `pulseboard` that `cargo test` built.
    api_fuzz(timer, tools, API_FUZZ_EXAMPLES)?;
    // The benchmark's smoke run: it runs and writes its JSON (no timing is asserted).
    let out = workspace_root().join("target/bench/results-quick.json");
    let _ = std::fs::remove_file(&out);
    bench(
        timer,
        tools,
        &["--quick".into(), "--out".into(), out.display().to_string()],
    )?;
    if !out.exists() {
        return Err(format!("the benchmark did not write {}", out.display()));
    }
    Ok(())
}

/// A venv under the cache with the packages pinned in `requirements` (a path in the
/// clone), reinstalled when that file changes; returns the venv's folder.
fn ensure_venv(name: &str, requirements: &str) -> Result<PathBuf, String> {
    let venv = cache_dir().join(name);
    let python = venv.join("bin/python");
    let wanted = std::fs::read_to_string(workspace_root().join(requirements))
        .map_err(|e| format!("reading {requirements}: {e}"))?;
    let marker = venv.join("requirements.installed");
    if python.exists() && std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str())
    {
        return Ok(venv);
    }
    eprintln!("xtask: installing {requirements} into {}", venv.display());
    let mut c = Command::new("python3");
    c.args(["-m", "venv"]).arg(&venv);
    status(c, "python3 -m venv")?;
    let mut c = Command::new(venv.join("bin/pip"));
    c.args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(workspace_root().join(requirements));
    status(c, &format!("pip install -r {requirements}"))?;
    std::fs::write(&marker, wanted).map_err(|e| format!("writing {}: {e}", marker.display()))?;
    Ok(venv)
}

/// A venv with the benchmark's Python peer (Quix Streams), as pinned in bench/requirements.txt.
fn ensure_peer_venv() -> Result<PathBuf, String> {
    Ok(ensure_venv("peer-venv", "bench/requirements.txt")?.join("bin/python"))
}

/// Schemathesis, as pinned in tests/schemathesis/requirements.txt; returns its `st` command.
fn ensure_schemathesis() -> Result<PathBuf, String> {
    Ok(ensure_venv("schemathesis-venv", "tests/schemathesis/requirements.txt")?.join("bin/st"))
}

/// A running `pulseboard` child, killed when dropped.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The status code of `GET path` on `addr`, with a bearer token (plain HTTP/1.1, std only).
fn http_status(addr: &str, path: &str, token: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// The number after `"key": ` in a JSON text (the report's counters; xtask has no JSON parser).
fn json_number(text: &str, key: &str) -> Option<u64> {
    let at = text.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = text[at..].trim_start().strip_prefix(':')?.trim_start();
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Schemathesis against a live embedded `pulseboard` (the debug binary), from the
/// description it serves. See the module docs.
fn api_fuzz(timer: &mut Timer, tools: &Tools, examples: u64) -> Result<(), String> {
    let st = tools
        .schemathesis
        .clone()
        .ok_or_else(|| "schemathesis is not set up".to_owned())?;
    let out = workspace_root().join("target/schemathesis");
    let data = out.join("data");
    let _ = std::fs::remove_dir_all(&data);
    let report = out.join("report");
    let _ = std::fs::remove_dir_all(&report);
    std::fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    let log_path = out.join("pulseboard.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| format!("creating {}: {e}", log_path.display()))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let token = format!("st-{}-{nanos}", std::process::id());
    let (addr, server) = timer.step("start pulseboard (embedded, --demo-rate 50)", || {
        let mut c = Command::new(target_dir().join("debug/pulseboard"));
        c.current_dir(workspace_root())
            .args(["--demo-rate", "50", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .args(["--token", &token])
            .env("NO_COLOR", "1")
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        let server = Server(c.spawn().map_err(|e| format!("starting pulseboard: {e}"))?);
        // It prints `Pulseboard on http://ADDR` once it listens; then wait until it is ready.
        let started = Instant::now();
        let mut addr = None;
        while started.elapsed() < Duration::from_secs(120) {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            addr = addr.or_else(|| {
                text.split("Pulseboard on http://")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .map(str::to_owned)
            });
            if let Some(a) = &addr {
                if http_status(a, "/readyz", &token) == Some(200) {
                    return Ok((a.clone(), server));
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!(
            "pulseboard was not ready within 2 minutes (log: {})",
            log_path.display()
        ))
    })?;
    let result = timer.step(
        &format!("API fuzzing (Schemathesis, {examples} cases per operation and phase)"),
        || {
            let mut c = Command::new(&st);
            c.current_dir(&out)
                .arg("run")
                .arg(format!("http://{addr}/api/v1/openapi.json"))
                .args(["--header", &format!("Authorization: Bearer {token}")])
                .args([
                    "--checks",
                    "not_a_server_error,status_code_conformance,content_type_conformance,\
                     response_schema_conformance",
                ])
                .args(["--max-examples", &examples.to_string()])
                // The socket is not request/response; `tests/live.rs` tests it.
                .args(["--exclude-path", "/ws"])
                // One worker: `POST /collect` stays near its rate limit (429 is documented
                // and checked, but a run of nothing else says little), and Hypothesis on
                // CPython 3.11 < 3.11.8 can fail in threads ("AST constructor recursion depth
                // mismatch", cpython#106905).
                .args(["--workers", "1"])
                .args(["--report", "json", "--report-dir"])
                .arg(&report)
                .args(["--output-truncate", "true"])
                .env("SCHEMATHESIS_TELEMETRY", "false")
                .env("NO_COLOR", "1");
            let mut child = c.spawn().map_err(|e| format!("starting {}: {e}", st.display()))?;
            let started = Instant::now();
            let code = loop {
                if let Some(code) = child.try_wait().map_err(|e| e.to_string())? {
                    break code;
                }
                if started.elapsed() > API_FUZZ_TIMEOUT {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "schemathesis did not finish within {} s",
                        API_FUZZ_TIMEOUT.as_secs()
                    ));
                }
                std::thread::sleep(Duration::from_millis(200));
            };
            let json = std::fs::read_dir(&report)
                .ok()
                .and_then(|d| {
                    d.filter_map(Result::ok)
                        .map(|e| e.path())
                        .find(|p| p.extension().is_some_and(|x| x == "json"))
                })
                .and_then(|p| std::fs::read_to_string(p).ok())
                .unwrap_or_default();
            let count = |k: &str| json_number(&json, k).map_or("?".into(), |n| n.to_string());
            eprintln!(
                "xtask: schemathesis: {} cases, {} with failures ({} unique), {} errored; report in {}",
                count("generated"),
                count("with_failures"),
                count("unique_failures"),
                count("errored"),
                report.display()
            );
            if code.success() {
                Ok(())
            } else {
                Err(format!("schemathesis found problems ({code}); server log: {}", log_path.display()))
            }
        },
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
    result
}

/// The JVM peers of the benchmark: their folders under `bench/peers/`.
const JVM_PEERS: [&str; 2] = ["spark", "kafka-streams"];

/// Whether the benchmark runs its JVM peers: as `pulseboard-bench` decides it (the last of
/// `--jvm-peers`/`--no-jvm-peers` wins; without either, on except with `--quick`).
fn bench_wants_jvm_peers(args: &[String]) -> bool {
    match args
        .iter()
        .rev()
        .find(|a| *a == "--jvm-peers" || *a == "--no-jvm-peers")
    {
        Some(flag) => flag == "--jvm-peers",
        None => !args.iter().any(|a| a == "--quick"),
    }
}

/// A JVM peer (`bench/peers/<name>`) built with Maven: `mvn package` (Maven skips what is up
/// to date) and its jar copied to `<cache>/peers/<name>/peer.jar`; its runtime dependencies
/// copied into `<cache>/peers/<name>/libs`, redone only when the pom changes.
fn ensure_jvm_peer(name: &str, peers_dir: &Path) -> Result<(), String> {
    let project = workspace_root().join("bench/peers").join(name);
    let pom_path = project.join("pom.xml");
    let pom = std::fs::read_to_string(&pom_path)
        .map_err(|e| format!("reading {}: {e}", pom_path.display()))?;
    let home = peers_dir.join(name);
    std::fs::create_dir_all(&home).map_err(|e| format!("creating {}: {e}", home.display()))?;
    let mut c = Command::new("mvn");
    c.args(["-q", "-B", "-Dstyle.color=never", "-f"])
        .arg(&pom_path)
        .arg("package");
    status(c, &format!("mvn package (bench/peers/{name})"))?;
    let target = project.join("target");
    let jar = std::fs::read_dir(&target)
        .map_err(|e| format!("reading {}: {e}", target.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jar"))
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .ok_or_else(|| format!("mvn package left no jar in {}", target.display()))?;
    std::fs::copy(&jar, home.join("peer.jar"))
        .map_err(|e| format!("copying {}: {e}", jar.display()))?;
    let libs = home.join("libs");
    let marker = home.join("pom.installed");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(pom.as_str()) && libs.is_dir() {
        return Ok(());
    }
    eprintln!("xtask: resolving the runtime jars of bench/peers/{name} with Maven...");
    let staging = home.join("libs.partial");
    let _ = std::fs::remove_dir_all(&staging);
    let mut c = Command::new("mvn");
    c.args(["-q", "-B", "-Dstyle.color=never", "-f"])
        .arg(&pom_path)
        .arg("dependency:copy-dependencies")
        .arg(format!("-DoutputDirectory={}", staging.display()))
        .arg("-DincludeScope=runtime");
    status(
        c,
        &format!("mvn dependency:copy-dependencies (bench/peers/{name})"),
    )?;
    let _ = std::fs::remove_dir_all(&libs);
    std::fs::rename(&staging, &libs)
        .map_err(|e| format!("moving the jars of {name} into place: {e}"))?;
    std::fs::write(&marker, &pom).map_err(|e| format!("writing {}: {e}", marker.display()))
}

/// The benchmark (`bench/`, package `pulseboard-bench`) with the release binary, Apache
/// Kafka, the Quix Streams venv and, when it runs them, the JVM peers.
fn bench(timer: &mut Timer, tools: &Tools, args: &[String]) -> Result<(), String> {
    // Two builds: one with both packages would unify their dependencies' features and give
    // a `pulseboard` that differs from (and rebuilds over) the one `cargo build` makes.
    timer.step("build the release binary", || {
        let mut c = cargo();
        c.args([
            "build",
            "--release",
            "-p",
            "pulseboard",
            "--bin",
            "pulseboard",
        ]);
        status(c, "building the release binary")
    })?;
    timer.step("build the benchmark (release)", || {
        let mut c = cargo();
        c.args(["build", "--release", "-p", "pulseboard-bench"]);
        status(c, "building the benchmark")
    })?;
    let python = timer.step("benchmark peer venv (Quix Streams)", ensure_peer_venv)?;
    let jvm_peers = bench_wants_jvm_peers(args);
    let peers_dir = cache_dir().join("peers");
    if jvm_peers {
        for name in JVM_PEERS {
            timer.step(&format!("benchmark peer {name} (Maven)"), || {
                ensure_jvm_peer(name, &peers_dir)
            })?;
        }
    }
    let mut args: Vec<String> = args.to_vec();
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
    timer.step("benchmark", || {
        let mut c = Command::new(target_dir().join("release/pulseboard-bench"));
        c.current_dir(workspace_root())
            .args(&args)
            .env("PULSEBOARD_BIN", target_dir().join("release/pulseboard"))
            .env("PULSEBOARD_PEER_PYTHON", &python);
        if jvm_peers {
            c.env("PULSEBOARD_PEERS_DIR", &peers_dir);
        }
        kafka_env(&mut c, tools);
        status(c, "benchmark")
    })
}

/// Browser end-to-end tests: node's test runner with Playwright driving headless Chromium
/// against the real binary (built by `cargo test` above) and the built frontend.
fn e2e(tools: &Tools) -> Result<(), String> {
    let root = workspace_root();
    let bin = target_dir().join("debug").join("pulseboard");
    let chromium = tools
        .chromium
        .clone()
        .ok_or_else(|| "chromium is not set up".to_owned())?;
    let mut c = Command::new("node");
    c.current_dir(root.join("tests/e2e"))
        .args(["--test", "--test-concurrency=1", "--test-timeout=240000"])
        .env("PULSEBOARD_BIN", &bin)
        .env("PULSEBOARD_DIST", root.join("dist"))
        .env("CHROMIUM", chromium)
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
        .env("PULSEBOARD_SOAK_KILLS", kills.to_string());
        kafka_env(&mut c, tools);
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
