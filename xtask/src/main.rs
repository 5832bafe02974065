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
//! - `cargo xtask soak [--kills N] [--fuzz-seconds S] [--kiosk-seconds K]`: the crash-loop
//!   test with N SIGKILLs (default 100), the decoder fuzzer (cargo fuzz) for S seconds
//!   (default 300), then a kiosk left running in Chromium for K seconds (default 600; heap
//!   and DOM must stay flat). 0 skips a part.
//! - `cargo xtask openapi [--out PATH]`: the server's OpenAPI description (`pulseboard
//!   openapi`, debug build: pretty JSON with the token's security schemes) written to PATH
//!   (default `target/openapi.json`; a relative PATH is from the workspace root); prints PATH.
//!
//! Builds go to `$CARGO_TARGET_DIR`, by default `~/.cache/pulseboard/target`, so a fresh
//! clone on a machine that built before reuses the compiled dependencies.
//!
//! # Layout
//! - `main.rs`: the commands' dispatch and usage; `timer.rs`: each step's time; `cmd.rs`: the
//!   workspace's folders, `cargo` with the target directory, exit statuses, flags.
//! - `setup.rs`: what each command needs installed, and installing it; its steps in
//!   `setup/`: `rust_tools.rs` (wasm32 target, Trunk, wasm-bindgen-cli, `cargo install`),
//!   `npm.rs`, `apt.rs` (Chromium, JDK, Maven), `kafka_jars.rs`, `venv.rs`.
//! - One file per command beyond setup: `run.rs` (`run`, `kafka`), `test.rs`, `api_fuzz.rs`,
//!   `bench.rs`, `soak.rs`, `openapi.rs`.

mod api_fuzz;
mod bench;
mod cmd;
mod openapi;
mod run;
mod setup;
mod soak;
mod test;
mod timer;

use std::env;
use std::process::ExitCode;

use crate::bench::bench;
use crate::openapi::openapi;
use crate::run::{kafka, run};
use crate::setup::{setup, Need};
use crate::soak::soak;
use crate::test::test;
use crate::timer::Timer;

/// What an unknown (or no) command prints, before exiting with 2.
const USAGE: &str =
    "usage: cargo xtask <setup|run|install|kafka|test|api-fuzz|soak|bench|openapi> [-- ARGS]";

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
        "install" => setup(&mut timer, Need::FRONTEND)
            .and_then(|tools| run::install(&mut timer, &tools, &rest)),
        "kafka" => setup(&mut timer, Need::KAFKA).and_then(|tools| kafka(&tools, &rest)),
        "test" => setup(&mut timer, Need::ALL).and_then(|tools| test(&mut timer, &tools, &rest)),
        "api-fuzz" => setup(&mut timer, Need::API_FUZZ)
            .and_then(|tools| api_fuzz::command(&mut timer, &tools, &rest)),
        "soak" => setup(&mut timer, Need::ALL).and_then(|tools| soak(&tools, &rest)),
        "bench" => {
            setup(&mut timer, Need::KAFKA).and_then(|tools| bench(&mut timer, &tools, &rest))
        }
        "openapi" => openapi(&mut timer, &rest),
        _ => {
            eprintln!("{USAGE}");
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
