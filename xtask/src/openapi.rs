//! `cargo xtask openapi [--out PATH]`: the server's OpenAPI description in a file, to read
//! without a server. `pulseboard openapi` (the debug build, run with `cargo run`) prints it
//! as pretty JSON with the token's security schemes; what it prints is written to PATH
//! (default `target/openapi.json`; a relative PATH is from the workspace root, like the
//! other commands' outputs) once it looks like an OpenAPI document, and PATH is printed.

use std::path::PathBuf;
use std::process::Stdio;

use crate::cmd::{cargo, flag_value, workspace_root};
use crate::timer::Timer;

/// Where the description goes without `--out` (from the workspace root).
const DEFAULT_OUT: &str = "target/openapi.json";

pub fn openapi(timer: &mut Timer, args: &[String]) -> Result<(), String> {
    let out = workspace_root().join(flag_value(
        args,
        "--out",
        PathBuf::from(DEFAULT_OUT),
        "a path",
    )?);
    let json = timer.step("pulseboard openapi (debug build)", || {
        let mut c = cargo();
        c.args([
            "run",
            "-p",
            "pulseboard",
            "--bin",
            "pulseboard",
            "--",
            "openapi",
        ])
        .stdin(Stdio::null())
        // Cargo's progress and the server's errors are shown; stdout is the description.
        .stderr(Stdio::inherit());
        let o = c
            .output()
            .map_err(|e| format!("pulseboard openapi: cannot start: {e}"))?;
        if !o.status.success() {
            return Err(format!("pulseboard openapi failed ({})", o.status));
        }
        String::from_utf8(o.stdout)
            .map_err(|e| format!("pulseboard openapi printed something not UTF-8: {e}"))
    })?;
    check_description(&json)?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    std::fs::write(&out, &json).map_err(|e| format!("writing {}: {e}", out.display()))?;
    println!("{}", out.display());
    Ok(())
}

/// Whether `text` looks like an OpenAPI document in JSON: one object (first and last
/// non-space characters `{` and `}`) with an `"openapi"` key. xtask has no JSON parser; the
/// server's own tests check the document itself.
fn check_description(text: &str) -> Result<(), String> {
    let body = text.trim();
    if !body.starts_with('{') || !body.ends_with('}') {
        return Err("pulseboard openapi did not print a JSON object".into());
    }
    if !body.contains("\"openapi\"") {
        return Err("pulseboard openapi printed JSON without an \"openapi\" key".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_openapi_object_passes() {
        assert!(check_description("{\n  \"openapi\": \"3.1.0\",\n  \"paths\": {}\n}\n").is_ok());
        assert!(check_description("").is_err());
        assert!(check_description("usage: pulseboard [OPTIONS]").is_err());
        assert!(check_description("{\"swagger\": \"2.0\"}").is_err());
        // Cut short: no closing brace.
        assert!(check_description("{\"openapi\": \"3.1.0\", \"paths\": {").is_err());
    }
}
