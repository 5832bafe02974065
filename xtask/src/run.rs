//! `cargo xtask run` (the frontend built, then the release `pulseboard`) and `cargo xtask
//! kafka` (the test kit's `local-kafka`); [`build_frontend`] is also a step of the tests.

use std::process::Command;

use crate::cmd::{cargo, status, target_dir, workspace_root};
use crate::setup::{kafka_env, tool_path, Tools};
use crate::timer::Timer;

/// `trunk build --release`: the frontend into `dist/`. Trunk never downloads a tool here
/// (`offline = true` in Trunk.toml); it uses the pinned ones on PATH.
pub fn build_frontend(timer: &mut Timer, tools: &Tools) -> Result<(), String> {
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

/// `cargo xtask run [-- ARGS]`: the frontend, then `pulseboard` (release) with ARGS.
pub fn run(timer: &mut Timer, tools: &Tools, args: &[String]) -> Result<(), String> {
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
pub fn kafka(tools: &Tools, args: &[String]) -> Result<(), String> {
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
