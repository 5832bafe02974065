//! `cargo xtask soak [--kills N] [--fuzz-seconds S] [--kiosk-seconds K]`: the crash loop
//! with N SIGKILLs, the decoder fuzzer for S seconds, then a kiosk in Chromium left running
//! for K seconds (`tests/e2e/kiosk-soak.test.mjs`: heap and DOM flat; 600 by default).

use std::process::Command;
use std::time::Instant;

use crate::cmd::{cargo, flag_value, status, target_dir, workspace_root};
use crate::setup::{ensure_cargo_install, kafka_env, Tools};

/// The fuzzer driver of the soak command.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// The long versions of the fault tests: many SIGKILLs, then the decoder fuzzer.
pub fn soak(tools: &Tools, args: &[String]) -> Result<(), String> {
    let kills = flag_value(args, "--kills", 100u64, "a whole number")?;
    let fuzz_seconds = flag_value(args, "--fuzz-seconds", 300u64, "a whole number")?;
    let kiosk_seconds = flag_value(args, "--kiosk-seconds", 600u64, "a whole number")?;
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
    if fuzz_seconds > 0 {
        fuzz(fuzz_seconds)?;
    }
    if kiosk_seconds > 0 {
        let mut c = cargo();
        c.args(["build", "-p", "pulseboard", "--bin", "pulseboard"]);
        status(c, "building pulseboard")?;
        crate::run::build_frontend(&mut crate::timer::Timer::default(), tools)?;
        crate::test::e2e(
            tools,
            &["kiosk-soak.test.mjs"],
            &[("SOAK_SECONDS", kiosk_seconds.to_string())],
        )?;
    }
    eprintln!("xtask: soak done in {:.0} s", t.elapsed().as_secs_f64());
    Ok(())
}

/// The decoder fuzzer for `fuzz_seconds`.
fn fuzz(fuzz_seconds: u64) -> Result<(), String> {
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
    status(c, "fuzzing the decoder")
}
