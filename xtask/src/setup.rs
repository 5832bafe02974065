//! `cargo xtask setup`, and the part of it each command needs: which tools ([`Need`]),
//! installing them with every step timed ([`setup`]), and what a command hands its children
//! ([`Tools`]: paths; [`tool_path`], [`kafka_env`]). The steps are in the submodules, one per
//! way of installing: Rust tools, npm, Debian packages, the Kafka jars (Maven), Python venvs.

mod apt;
mod kafka_jars;
mod npm;
mod rust_tools;
mod venv;

use std::env;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use crate::cmd::{cache_dir, cargo_home};
use crate::timer::Timer;
use apt::{ensure_chromium, ensure_java_and_maven};
use kafka_jars::ensure_kafka_jars;
use npm::ensure_npm_tools;
pub use rust_tools::ensure_cargo_install;
use rust_tools::{ensure_trunk, ensure_wasm_bindgen, ensure_wasm_target, TRUNK_VERSION};
pub use venv::ensure_peer_venv;
use venv::ensure_schemathesis;

/// Which tools a command needs.
#[derive(Clone, Copy)]
pub struct Need {
    frontend: bool,
    browser: bool,
    kafka: bool,
    /// Schemathesis (a Python venv).
    api_fuzz: bool,
}

impl Need {
    pub const ALL: Need = Need {
        frontend: true,
        browser: true,
        kafka: true,
        api_fuzz: true,
    };
    /// `cargo xtask run`: the embedded default needs no Java and no browser.
    pub const FRONTEND: Need = Need {
        frontend: true,
        browser: false,
        kafka: false,
        api_fuzz: false,
    };
    pub const KAFKA: Need = Need {
        frontend: false,
        browser: false,
        kafka: true,
        api_fuzz: false,
    };
    pub const API_FUZZ: Need = Need {
        frontend: false,
        browser: false,
        kafka: false,
        api_fuzz: true,
    };
}

#[derive(Default)]
pub struct Tools {
    pub trunk: Option<PathBuf>,
    /// npm tools (wasm-opt, playwright-core) of `tests/e2e`.
    node_bin: Option<PathBuf>,
    pub chromium: Option<PathBuf>,
    /// The Apache Kafka broker's jars.
    kafka_libs: Option<PathBuf>,
    /// The `st` command of the Schemathesis venv.
    pub schemathesis: Option<PathBuf>,
}

/// Install what `need` asks for, each step timed. Steps that only download (apt, Maven)
/// run on threads beside the compiling ones.
pub fn setup(timer: &mut Timer, need: Need) -> Result<Tools, String> {
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
                tools.trunk = Some(timer.step(&format!("trunk {TRUNK_VERSION}"), ensure_trunk)?);
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

/// PATH with the pinned tools first.
pub fn tool_path(tools: &Tools) -> std::ffi::OsString {
    let mut dirs: Vec<PathBuf> = tools.node_bin.iter().cloned().collect();
    dirs.push(cargo_home().join("bin"));
    dirs.extend(env::split_paths(&env::var_os("PATH").unwrap_or_default()));
    env::join_paths(dirs).unwrap_or_default()
}

/// Where a child finds the Kafka broker's jars and the cache.
pub fn kafka_env(c: &mut Command, tools: &Tools) {
    if let Some(libs) = &tools.kafka_libs {
        c.env("PULSEBOARD_KAFKA_LIBS", libs);
    }
    c.env("PULSEBOARD_CACHE", cache_dir());
}
