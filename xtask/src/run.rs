//! `cargo xtask run` (the frontend built, then the release `pulseboard`) and `cargo xtask
//! kafka` (the test kit's `local-kafka`); [`build_frontend`] is also a step of the tests.

use std::process::Command;

use crate::cmd::{cargo, status, target_dir, workspace_root};
use crate::setup::{kafka_env, tool_path, Tools};
use crate::timer::Timer;

/// What the built frontend is made of: the frontend crate, the model crate it uses, the
/// style sheet, and the files that pin the build (Cargo.lock, Cargo.toml, Trunk.toml).
const FRONTEND_INPUTS: &[&str] = &[
    "frontend",
    "model",
    "static",
    "Cargo.lock",
    "Cargo.toml",
    "Trunk.toml",
];

/// The file (in the target dir, not served) that says which inputs `dist/` was built from.
const STAMP: &str = "frontend-inputs";

/// A fingerprint of [`FRONTEND_INPUTS`] (each file's path and bytes, in path order; FNV-1a,
/// 64 bits), with the trunk that builds them.
fn frontend_fingerprint(trunk: &std::path::Path) -> Result<String, String> {
    fn walk(path: &std::path::Path, out: &mut Vec<std::path::PathBuf>) -> Result<(), String> {
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.is_file() {
            out.push(path.to_path_buf());
        } else if meta.is_dir() {
            let entries =
                std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))?;
            for entry in entries {
                let entry = entry.map_err(|e| format!("{}: {e}", path.display()))?;
                if entry.file_name() != "target" {
                    walk(&entry.path(), out)?;
                }
            }
        }
        Ok(())
    }
    let root = workspace_root();
    let mut files = Vec::new();
    for input in FRONTEND_INPUTS {
        walk(&root.join(input), &mut files)?;
    }
    files.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    feed(trunk.display().to_string().as_bytes());
    for f in &files {
        let rel = f.strip_prefix(&root).unwrap_or(f);
        feed(rel.display().to_string().as_bytes());
        feed(&std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?);
    }
    Ok(format!("{h:016x}"))
}

/// `trunk build --release`: the frontend into `dist/`, unless `dist/` was built from the
/// same inputs ([`frontend_fingerprint`]: it says so and takes no time). Trunk never
/// downloads a tool here (`offline = true` in Trunk.toml); it uses the pinned ones on PATH.
pub fn build_frontend(timer: &mut Timer, tools: &Tools) -> Result<(), String> {
    let trunk = tools
        .trunk
        .clone()
        .ok_or_else(|| "trunk is not set up".to_owned())?;
    let dist = workspace_root().join("dist");
    let fingerprint = frontend_fingerprint(&trunk)?;
    let stamp = target_dir().join(STAMP);
    let built = std::fs::read_to_string(&stamp).unwrap_or_default();
    if built.trim() == fingerprint && dist.join("index.html").is_file() {
        timer.step("frontend unchanged since its last build (dist/)", || Ok(()))?;
        return Ok(());
    }
    timer.step("frontend (trunk build --release)", || {
        let mut c = Command::new(&trunk);
        c.current_dir(workspace_root())
            .args(["build", "--release"])
            .env("PATH", tool_path(tools))
            .env("TRUNK_SKIP_VERSION_CHECK", "true")
            .env("TRUNK_OFFLINE", "true")
            .env("CARGO_TARGET_DIR", target_dir());
        status(c, "trunk build")?;
        std::fs::write(&stamp, &fingerprint)
            .map_err(|e| format!("writing {}: {e}", stamp.display()))
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

/// `cargo xtask install [-- --root DIR]`: the frontend, then `pulseboard` (release) into
/// `DIR/bin` (default `~/.cargo`, whose `bin` rustup puts on PATH) with the frontend in
/// `DIR/share/pulseboard/dist`, where the installed binary finds it.
pub fn install(timer: &mut Timer, tools: &Tools, args: &[String]) -> Result<(), String> {
    let root = match args {
        [] => std::env::var_os("CARGO_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")))
            .ok_or_else(|| "neither CARGO_HOME nor HOME is set: give --root DIR".to_owned())?,
        [flag, dir] if flag == "--root" => std::path::PathBuf::from(dir),
        _ => return Err("usage: cargo xtask install [-- --root DIR]".to_owned()),
    };
    build_frontend(timer, tools)?;
    timer.step("install pulseboard (cargo install --locked)", || {
        let mut c = cargo();
        c.args(["install", "--locked", "--force", "--path"])
            .arg(workspace_root().join("server"))
            .args(["--bin", "pulseboard", "--root"])
            .arg(&root);
        status(c, "cargo install")
    })?;
    let share = root.join("share/pulseboard/dist");
    timer.step("install the frontend", || {
        let _ = std::fs::remove_dir_all(&share);
        copy_dir(&workspace_root().join("dist"), &share)
    })?;
    eprintln!(
        "xtask: installed {} (the frontend in {}); run `pulseboard` (with {} on PATH)",
        root.join("bin/pulseboard").display(),
        share.display(),
        root.join("bin").display()
    );
    Ok(())
}

/// Copy the directory `from` to `to`, files and folders.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("creating {}: {e}", to.display()))?;
    let entries = std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", from.display()))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| format!("copying {}: {e}", src.display()))?;
        }
    }
    Ok(())
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
