//! `cargo xtask api-fuzz [--max-examples N]` (also a step of `cargo xtask test`):
//! Schemathesis against a live embedded `pulseboard`, from the description it serves.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::cmd::{cargo, flag_value, status, target_dir, workspace_root};
use crate::setup::Tools;
use crate::timer::Timer;

/// Cases per API operation and phase of the Schemathesis run (`--max-examples`).
pub const API_FUZZ_EXAMPLES: u64 = 50;
/// The Schemathesis run is stopped (and fails) after this long.
const API_FUZZ_TIMEOUT: Duration = Duration::from_secs(600);

/// `cargo xtask api-fuzz`: the debug `pulseboard` built, then [`api_fuzz`] with
/// `--max-examples N` cases per operation and phase.
pub fn command(timer: &mut Timer, tools: &Tools, args: &[String]) -> Result<(), String> {
    let examples = flag_value(args, "--max-examples", API_FUZZ_EXAMPLES, "a whole number")?;
    timer.step("build pulseboard (debug)", || {
        let mut c = cargo();
        c.args(["build", "-p", "pulseboard", "--bin", "pulseboard"]);
        status(c, "cargo build pulseboard")
    })?;
    api_fuzz(timer, tools, examples)
}

/// A running `pulseboard` child, killed when dropped.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The status code of `GET path` on `addr`, with a bearer token (plain HTTP/1.1, std only).
fn http_status(addr: &str, path: &str, token: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// `method path` with `headers` and `body` on `addr` (plain HTTP/1.1, std only): the
/// status, the response's head and its body.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> Option<(u16, String, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.get(9..12)?.parse().ok()?;
    Some((status, head.to_owned(), body.to_owned()))
}

/// The string after `"key":"` in a JSON text.
fn json_string(text: &str, key: &str) -> Option<String> {
    let at = text.find(&format!("\"{key}\":\""))? + key.len() + 4;
    Some(text[at..].split('"').next()?.to_owned())
}

/// The credentials Schemathesis runs with, one run each: as an admin (every operation,
/// writes included), as a viewer and as a share link (whose refusals, `403`, must be the
/// documented ones), and with none (`401`s).
fn credentials(addr: &str, admin: &str) -> Result<Vec<(&'static str, Option<String>)>, String> {
    let bearer = format!("Authorization: Bearer {admin}\r\n");
    let (status, _, body) = http(
        addr,
        "POST",
        "/api/v1/tokens",
        &bearer,
        r#"{"name":"fuzz-viewer","role":"viewer"}"#,
    )
    .ok_or("creating a viewer token: no answer")?;
    let viewer = json_string(&body, "id")
        .filter(|_| status == 201)
        .ok_or_else(|| format!("creating a viewer token: {status} {body}"))?;
    let (status, _, body) = http(
        addr,
        "POST",
        "/api/v1/links",
        &bearer,
        r#"{"name":"fuzz-link","view":"dashboard","range":"1h"}"#,
    )
    .ok_or("creating a share link: no answer")?;
    let url = json_string(&body, "url")
        .filter(|_| status == 201)
        .ok_or_else(|| format!("creating a share link: {status} {body}"))?;
    let (status, head, _) =
        http(addr, "GET", &url, "", "").ok_or("opening the share link: no answer")?;
    let cookie = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie:")
                .then(|| l["set-cookie:".len()..].trim().to_owned())
        })
        .and_then(|c| c.split(';').next().map(str::to_owned))
        .filter(|_| status == 303)
        .ok_or_else(|| format!("opening the share link: {status} without a cookie"))?;
    Ok(vec![
        ("none", None),
        ("share link", Some(format!("Cookie: {cookie}"))),
        ("viewer", Some(format!("Authorization: Bearer {viewer}"))),
        ("admin", Some(format!("Authorization: Bearer {admin}"))),
    ])
}

/// The number after `"key": ` in a JSON text (the report's counters; xtask has no JSON parser).
fn json_number(text: &str, key: &str) -> Option<u64> {
    let at = text.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = text[at..].trim_start().strip_prefix(':')?.trim_start();
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Schemathesis against a live embedded `pulseboard` (the debug binary), from the
/// description it serves. See the crate docs.
pub fn api_fuzz(timer: &mut Timer, tools: &Tools, examples: u64) -> Result<(), String> {
    let st = tools
        .schemathesis
        .clone()
        .ok_or_else(|| "schemathesis is not set up".to_owned())?;
    let out = workspace_root().join("target/schemathesis");
    let data = out.join("data");
    let _ = std::fs::remove_dir_all(&data);
    let report = out.join("report");
    let _ = std::fs::remove_dir_all(&report);
    std::fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    let log_path = out.join("pulseboard.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| format!("creating {}: {e}", log_path.display()))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let token = format!("st-{}-{nanos}", std::process::id());
    let (addr, server) = timer.step("start pulseboard (embedded, --demo-rate 50)", || {
        let mut c = Command::new(target_dir().join("debug/pulseboard"));
        c.current_dir(workspace_root())
            .args(["--demo-rate", "50", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .args(["--token", &token])
            // Schemathesis sends many wrong tokens and link ids: the limit on guesses would
            // answer everything with 429 after the first twenty.
            .args(["--guesses-per-minute", "1000000"])
            .env("NO_COLOR", "1")
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        let server = Server(c.spawn().map_err(|e| format!("starting pulseboard: {e}"))?);
        // It prints `Pulseboard on http://ADDR` once it listens; then wait until it is ready.
        let started = Instant::now();
        let mut addr = None;
        while started.elapsed() < Duration::from_secs(120) {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            addr = addr.or_else(|| {
                text.split("Pulseboard on http://")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .map(str::to_owned)
            });
            if let Some(a) = &addr {
                if http_status(a, "/readyz", &token) == Some(200) {
                    return Ok((a.clone(), server));
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!(
            "pulseboard was not ready within 2 minutes (log: {})",
            log_path.display()
        ))
    })?;
    // The description needs a reader; the run without a credential reads it from a file.
    let spec = out.join("openapi.json");
    let creds = credentials(&addr, &token).and_then(|c| {
        let (status, _, body) = http(
            &addr,
            "GET",
            "/api/v1/openapi.json",
            &format!("Authorization: Bearer {token}\r\n"),
            "",
        )
        .ok_or("reading the description: no answer")?;
        if status != 200 {
            return Err(format!("reading the description: {status}"));
        }
        std::fs::write(&spec, body).map_err(|e| format!("writing {}: {e}", spec.display()))?;
        Ok(c)
    });
    let mut result = creds.as_ref().map(|_| ()).map_err(Clone::clone);
    for (who, header) in creds.unwrap_or_default() {
        if result.is_err() {
            break;
        }
        let report = report.join(who.replace(' ', "-"));
        // The admin run covers every operation fully; the others check the refusals.
        let examples = if who == "admin" {
            examples
        } else {
            examples.div_ceil(5)
        };
        result = timer.step(
        &format!("API fuzzing as {who} (Schemathesis, {examples} cases per operation and phase)"),
        || {
            let mut c = Command::new(&st);
            c.current_dir(&out)
                .arg("run")
                .arg(&spec)
                .args(["--url", &format!("http://{addr}")])
                .args(header.iter().flat_map(|h| ["--header", h.as_str()]))
                .args([
                    "--checks",
                    "not_a_server_error,status_code_conformance,content_type_conformance,\
                     response_schema_conformance",
                ])
                .args(["--max-examples", &examples.to_string()])
                // The socket is not request/response; `tests/live.rs` tests it.
                .args(["--exclude-path", "/ws"])
                // One worker: `POST /collect` stays near its rate limit (429 is documented
                // and checked, but a run of nothing else says little), and Hypothesis on
                // CPython 3.11 < 3.11.8 can fail in threads ("AST constructor recursion depth
                // mismatch", cpython#106905).
                .args(["--workers", "1"])
                .args(["--report", "json", "--report-dir"])
                .arg(&report)
                .args(["--output-truncate", "true"])
                .env("SCHEMATHESIS_TELEMETRY", "false")
                .env("NO_COLOR", "1");
            let mut child = c.spawn().map_err(|e| format!("starting {}: {e}", st.display()))?;
            let started = Instant::now();
            let code = loop {
                if let Some(code) = child.try_wait().map_err(|e| e.to_string())? {
                    break code;
                }
                if started.elapsed() > API_FUZZ_TIMEOUT {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "schemathesis did not finish within {} s",
                        API_FUZZ_TIMEOUT.as_secs()
                    ));
                }
                std::thread::sleep(Duration::from_millis(200));
            };
            let json = std::fs::read_dir(&report)
                .ok()
                .and_then(|d| {
                    d.filter_map(Result::ok)
                        .map(|e| e.path())
                        .find(|p| p.extension().is_some_and(|x| x == "json"))
                })
                .and_then(|p| std::fs::read_to_string(p).ok())
                .unwrap_or_default();
            let count = |k: &str| json_number(&json, k).map_or("?".into(), |n| n.to_string());
            eprintln!(
                "xtask: schemathesis as {who}: {} cases, {} with failures ({} unique), {} errored; report in {}",
                count("generated"),
                count("with_failures"),
                count("unique_failures"),
                count("errored"),
                report.display()
            );
            if code.success() {
                Ok(())
            } else {
                Err(format!("schemathesis found problems ({code}); server log: {}", log_path.display()))
            }
        },
    );
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
    result
}
