//! The npm tools of `tests/e2e`: Playwright's driver and binaryen's wasm-opt.

use std::path::PathBuf;
use std::process::Command;

use crate::cmd::{status, workspace_root};

/// `npm ci` in tests/e2e: Playwright (driver only) and binaryen's wasm-opt, as locked.
pub fn ensure_npm_tools() -> Result<PathBuf, String> {
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
