//! `cargo xtask soak [--kills N] [--fuzz-seconds S]`: the crash loop with N SIGKILLs, then
//! the decoder fuzzer for S seconds.

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
