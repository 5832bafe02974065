//! `cargo xtask test`: the frontend, every Rust test (integration tests on Apache Kafka),
//! the browser tests in headless Chromium, the API fuzzing, then the benchmark's smoke run.

use std::process::Command;

use crate::api_fuzz::{api_fuzz, API_FUZZ_EXAMPLES};
use crate::bench::bench;
use crate::cmd::{cargo, status, target_dir, workspace_root};
use crate::run::build_frontend;
use crate::setup::{kafka_env, Tools};
use crate::timer::Timer;

/// Every test, each suite a timed step; the first failure stops the run.
pub fn test(timer: &mut Timer, tools: &Tools, args: &[String]) -> Result<(), String> {
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
    timer.step("browser tests (Chromium)", || e2e(tools, &[], &[]))?;
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

/// Browser end-to-end tests: node's test runner with Playwright driving headless Chromium
/// against the real binary (built by `cargo test` above) and the built frontend; `files`
/// (all when empty), with `envs` set.
pub fn e2e(tools: &Tools, files: &[&str], envs: &[(&str, String)]) -> Result<(), String> {
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
        .env("ARTIFACTS", target_dir().join("e2e-artifacts"))
        .args(files);
    for (k, v) in envs {
        c.env(k, v);
    }
    status(c, "browser tests")
}
