//! Access through the real binary: a token and a share link made by `pulseboard token|link
//! create` on a stopped store open what they say on the running server; the store is
//! locked while it runs (the command says what to do); and the server's log, at its most
//! verbose (Pulseboard's and its HTTP stack's trace), never holds a token, a link id or a
//! session cookie, however they were sent (header, query, cookie, sign-in) and when revoked.

use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use pulseboard_testkit::net::{poll_until, request};

use crate::util::*;

fn cli(data: &str, args: &[&str]) -> Result<std::process::Output> {
    Command::new(env!("CARGO_BIN_EXE_pulseboard"))
        .args(["--data-dir", data])
        .args(args)
        .output()
        .context("running pulseboard")
}

fn first_line(out: &std::process::Output) -> Result<String> {
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_links_made_on_the_command_line_open_what_they_say() -> Result<()> {
    let dir = data_dir();
    let data = path_str(&dir.path().join("data"));
    let viewer = first_line(&cli(
        &data,
        &["token", "create", "--role", "viewer", "--name", "lobby-tv"],
    )?)?;
    ensure!(viewer.starts_with("pbt_") && viewer.len() == 47, "{viewer}");
    let link = first_line(&cli(
        &data,
        &[
            "link",
            "create",
            "--view",
            "kiosk",
            "--filter",
            "type:pageview",
            "--site",
            "shop.example",
            "--range",
            "1h",
            "--name",
            "lobby",
        ],
    )?)?;
    ensure!(link.starts_with("/s/"), "{link}");
    let listed = String::from_utf8_lossy(&cli(&data, &["token", "list"])?.stdout).into_owned();
    ensure!(
        listed.contains("lobby-tv") && listed.contains("role=viewer"),
        "{listed}"
    );
    ensure!(!listed.contains(&viewer), "a list shows no secret");

    let admin = "admin-secret-0123456789";
    let app = spawn_child_with_env(
        &["--data-dir", &data, "--token", admin, "--demo-rate", "20"],
        // Everything Pulseboard and its HTTP stack say, at the most verbose level.
        &[(
            "RUST_LOG",
            "debug,pulseboard=trace,tower_http=trace,axum=trace,librdkafka=warn,rdkafka=warn",
        )],
    )?;
    let addr = app.addr;
    let bearer = format!("Bearer {viewer}");
    let status = |path: &'static str, headers: Vec<(&'static str, String)>| async move {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        request(addr, "GET", path, &h, b"").await.map(|r| r.status)
    };
    poll_until(
        Duration::from_secs(60),
        "the status as a viewer",
        || async {
            (status("/api/v1/status", vec![("authorization", bearer.clone())])
                .await
                .ok()?
                == 200)
                .then_some(())
        },
    )
    .await?;
    ensure!(
        status("/api/v1/status", vec![]).await? == 401,
        "no credential: 401"
    );
    let write = request(
        addr,
        "POST",
        "/api/v1/annotations",
        &[("authorization", &bearer)],
        br#"{"ts": 1, "text": "x"}"#,
    )
    .await?;
    ensure!(
        write.status == 403,
        "a viewer does not write: {}",
        write.status
    );
    let opened = request(addr, "GET", &link, &[], b"").await?;
    ensure!(opened.status == 303, "{}", opened.status);
    let head = opened.head.to_ascii_lowercase();
    ensure!(
        head.contains("location: /kiosk?filter=type%3apageview&site=shop.example&range=1h"),
        "{head}"
    );
    let cookie = opened
        .head
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .and_then(|c| c.split(';').next())
        .context("a session cookie")?
        .to_owned();
    let session = request(addr, "GET", "/api/v1/session", &[("cookie", &cookie)], b"").await?;
    ensure!(
        session.status == 200 && session.body.contains(r#""role":"link""#),
        "{}",
        session.body
    );
    let other = request(
        addr,
        "GET",
        "/api/v1/now?filter=type:click",
        &[("cookie", &cookie)],
        b"",
    )
    .await?;
    ensure!(other.status == 403, "another segment: {}", other.status);
    // The demo's two sites: the link reads its own, and no other, nor all of them.
    let own = request(addr, "GET", "/api/v1/summary", &[("cookie", &cookie)], b"").await?;
    ensure!(
        own.status == 200 && own.body.contains(r#""site":{"site":"shop.example""#),
        "{}",
        own.body
    );
    let blog = request(
        addr,
        "GET",
        "/api/v1/summary?site=blog.example",
        &[("cookie", &cookie)],
        b"",
    )
    .await?;
    ensure!(blog.status == 403, "another site: {}", blog.status);

    // The store is the server's while it runs.
    let locked = cli(
        &data,
        &["token", "create", "--role", "viewer", "--name", "x"],
    )?;
    ensure!(!locked.status.success(), "a locked store is an error");
    let said = String::from_utf8_lossy(&locked.stderr);
    ensure!(
        said.contains("POST /api/v1/tokens"),
        "says what to do: {said}"
    );

    // Secrets where a log would print them: in the query, wrong ones, a sign-in, revoked.
    let admin_bearer = format!("Bearer {admin}");
    for (method, path, headers, body) in [
        (
            "GET",
            format!("/kiosk?token={viewer}"),
            vec![],
            String::new(),
        ),
        (
            "GET",
            format!("/api/v1/status?token={viewer}"),
            vec![],
            String::new(),
        ),
        (
            "GET",
            "/?token=wrong-token-0000000000".to_owned(),
            vec![],
            String::new(),
        ),
        (
            "GET",
            "/api/v1/status".to_owned(),
            vec![(
                "authorization",
                "Bearer pbt_wrong-0000000000000000".to_owned(),
            )],
            String::new(),
        ),
        ("GET", format!("{link}x"), vec![], String::new()),
    ] {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        request(addr, method, &path, &h, body.as_bytes()).await?;
    }
    let signed = request(
        addr,
        "POST",
        "/api/v1/session",
        &[],
        format!(r#"{{"token": "{admin}"}}"#).as_bytes(),
    )
    .await?;
    ensure!(signed.status == 204, "sign-in: {}", signed.status);
    let admin_cookie = signed
        .head
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: pb_session=")
                .or_else(|| l.strip_prefix("Set-Cookie: pb_session="))
        })
        .and_then(|c| c.split(';').next())
        .context("the sign-in's cookie")?
        .to_owned();
    let listed = request(
        addr,
        "GET",
        "/api/v1/links",
        &[("authorization", &admin_bearer)],
        b"",
    )
    .await?;
    let links: serde_json::Value = serde_json::from_str(&listed.body)?;
    let key = links[0]["key"]
        .as_str()
        .context("the link's key")?
        .to_owned();
    let revoked = request(
        addr,
        "DELETE",
        &format!("/api/v1/links/{key}"),
        &[("authorization", &admin_bearer)],
        b"",
    )
    .await?;
    ensure!(revoked.status == 200, "revoke: {}", revoked.status);
    let after = request(addr, "GET", "/api/v1/status", &[("cookie", &cookie)], b"").await?;
    ensure!(
        after.status == 401,
        "a revoked link's cookie: {}",
        after.status
    );

    // The log as written so far (it goes with the child's temporary directory): the child
    // writes it as it goes, so the revocation's line may come a moment after the answer.
    let path = app.log.clone().context("a log")?;
    let log = poll_until(Duration::from_secs(10), "the revocation in the log", || {
        let log = std::fs::read_to_string(&path).unwrap_or_default();
        async move { log.contains("revoked").then_some(log) }
    })
    .await
    .unwrap_or_else(|_| std::fs::read_to_string(&path).unwrap_or_default());
    app.terminate()?;
    ensure!(
        log.contains("the dashboard needs a token"),
        "the start says who may read"
    );
    ensure!(log.contains("revoked"), "the log says what happened");
    ensure!(
        log.contains("request refused"),
        "the refusals' debug lines are in it"
    );
    let id = link.trim_start_matches("/s/");
    let session_value = cookie.trim_start_matches("pb_session=");
    for secret in [
        admin,
        viewer.as_str(),
        id,
        session_value,
        admin_cookie.as_str(),
    ] {
        ensure!(!log.contains(secret), "{secret} is in the server's log");
    }
    Ok(())
}
