//! Small helpers of every command: the workspace's folders (the clone, `CARGO_HOME`, the
//! cache, the target directory), `cargo` with that target directory, running a command to
//! its exit status, and the value of a flag.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

/// The clone: the parent of this crate's folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

pub fn cargo_home() -> PathBuf {
    env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"))
}

/// Pulseboard's caches outside the clone: `$PULSEBOARD_CACHE`, else `~/.cache/pulseboard`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = env::var_os("PULSEBOARD_CACHE") {
        return PathBuf::from(d);
    }
    env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache/pulseboard"))
        .unwrap_or_else(|| workspace_root().join("target/cache"))
}

/// `$CARGO_TARGET_DIR`, else `target` under the cache: shared by the clones of a machine.
pub fn target_dir() -> PathBuf {
    if let Some(d) = env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    cache_dir().join("target")
}

/// The `cargo` that runs this (`$CARGO`), as it is.
pub fn cargo_cmd() -> Command {
    Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// `cargo` in the clone, building into [`target_dir`].
pub fn cargo() -> Command {
    let mut c = cargo_cmd();
    c.current_dir(workspace_root());
    c.env("CARGO_TARGET_DIR", target_dir());
    c
}

/// Run `c` to its end (output shown); an error naming `what` unless it exits 0.
pub fn status(mut c: Command, what: &str) -> Result<(), String> {
    let s = c
        .status()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    if s.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({s})"))
    }
}

/// Whether a command runs and exits 0 (its output is not shown).
pub fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The value after `flag` in `args`, parsed, or `default`; an error says it `needs` (e.g.
/// "a whole number") when the value is missing or does not parse.
pub fn flag_value<T: FromStr>(
    args: &[String],
    flag: &str,
    default: T,
    needs: &str,
) -> Result<T, String> {
    match args.iter().position(|a| a == flag) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{flag} needs {needs}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_flag_value_is_parsed_or_defaults() {
        let a = args(&["--kills", "7", "--out", "x.json"]);
        assert_eq!(flag_value(&a, "--kills", 100, "a whole number"), Ok(7));
        assert_eq!(
            flag_value(&a, "--fuzz-seconds", 300, "a whole number"),
            Ok(300)
        );
        assert_eq!(
            flag_value(&a, "--out", PathBuf::from("d"), "a path"),
            Ok(PathBuf::from("x.json"))
        );
        assert_eq!(
            flag_value(&args(&["--kills"]), "--kills", 1u64, "a whole number"),
            Err("--kills needs a whole number".to_owned())
        );
        assert_eq!(
            flag_value(
                &args(&["--kills", "many"]),
                "--kills",
                1u64,
                "a whole number"
            ),
            Err("--kills needs a whole number".to_owned())
        );
    }
}
