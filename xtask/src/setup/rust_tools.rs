//! Rust tools: the wasm32 target, crates installed with `cargo install` at pinned versions
//! (Trunk; cargo-fuzz for the soak), and wasm-bindgen-cli at the version of Cargo.lock.

use std::path::PathBuf;
use std::process::Command;

use crate::cmd::{cargo_cmd, cargo_home, status, target_dir, workspace_root};

/// Trunk builds the wasm frontend. 0.22 needs a newer rustc than this toolchain.
pub const TRUNK_VERSION: &str = "0.21.14";
/// A `wasm-bindgen-cli` dependency pins `webpki-roots` to a version the registry here lacks.
const WEBPKI_ROOTS_FALLBACK: &str = "1.0.10";

/// Versions of crates installed with `cargo install`, from `cargo install --list`.
fn installed_crate_version(name: &str) -> Option<String> {
    let out = cargo_cmd().args(["install", "--list"]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix(" v")?;
        Some(rest.trim_end_matches(':').to_owned())
    })
}

/// `cargo install --locked name --version version` (with `extra`) unless that version is
/// installed; the path of its `bin`.
pub fn ensure_cargo_install(
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

/// Trunk, built without its default features (rustls instead of native TLS).
pub fn ensure_trunk() -> Result<PathBuf, String> {
    ensure_cargo_install(
        "trunk",
        TRUNK_VERSION,
        &["--debug", "--no-default-features", "--features", "rustls"],
        "trunk",
    )
}

pub fn ensure_wasm_target() -> Result<(), String> {
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
pub fn ensure_wasm_bindgen() -> Result<(), String> {
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
