//! Python venvs under the cache, one per pinned requirements file: the benchmark's Quix
//! Streams peer and Schemathesis.

use std::path::PathBuf;
use std::process::Command;

use crate::cmd::{cache_dir, status, workspace_root};

/// A venv under the cache with the packages pinned in `requirements` (a path in the
/// clone), reinstalled when that file changes; returns the venv's folder.
fn ensure_venv(name: &str, requirements: &str) -> Result<PathBuf, String> {
    let venv = cache_dir().join(name);
    let python = venv.join("bin/python");
    let wanted = std::fs::read_to_string(workspace_root().join(requirements))
        .map_err(|e| format!("reading {requirements}: {e}"))?;
    let marker = venv.join("requirements.installed");
    if python.exists() && std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str())
    {
        return Ok(venv);
    }
    eprintln!("xtask: installing {requirements} into {}", venv.display());
    let mut c = Command::new("python3");
    c.args(["-m", "venv"]).arg(&venv);
    status(c, "python3 -m venv")?;
    let mut c = Command::new(venv.join("bin/pip"));
    c.args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(workspace_root().join(requirements));
    status(c, &format!("pip install -r {requirements}"))?;
    std::fs::write(&marker, wanted).map_err(|e| format!("writing {}: {e}", marker.display()))?;
    Ok(venv)
}

/// A venv with the benchmark's Python peer (Quix Streams), as pinned in bench/requirements.txt.
pub fn ensure_peer_venv() -> Result<PathBuf, String> {
    Ok(ensure_venv("peer-venv", "bench/requirements.txt")?.join("bin/python"))
}

/// Schemathesis, as pinned in tests/schemathesis/requirements.txt; returns its `st` command.
pub fn ensure_schemathesis() -> Result<PathBuf, String> {
    Ok(ensure_venv("schemathesis-venv", "tests/schemathesis/requirements.txt")?.join("bin/st"))
}
