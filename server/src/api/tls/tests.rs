//! The router over a [`TlsListener`] on 127.0.0.1, with certificates made here (rcgen),
//! and clients that trust only the one they are given.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use super::*;

/// A self-signed certificate for 127.0.0.1, as PEM: (certificate, key).
fn pem_pair() -> (String, String) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("rcgen");
    (made.cert.pem(), made.key_pair.serialize_pem())
}

/// The pair's files in a temporary directory.
struct Files {
    dir: tempfile::TempDir,
    /// Each write moves the files' modification time a second further, so a change is
    /// seen whatever the file system's clock granularity.
    writes: u64,
}

impl Files {
    fn new(cert: &str, key: &str) -> Files {
        let mut files = Files {
            dir: tempfile::tempdir().expect("tempdir"),
            writes: 0,
        };
        files.write(cert, key);
        files
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }

    fn write(&mut self, cert: &str, key: &str) {
        self.writes += 1;
        let at = SystemTime::now() + Duration::from_secs(self.writes);
        for (path, text) in [(self.cert(), cert), (self.key(), key)] {
            std::fs::write(&path, text).expect("write");
            std::fs::File::options()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_modified(at))
                .expect("set mtime");
        }
    }

    fn certificates(&self) -> Certificates {
        Certificates::load(&self.cert(), &self.key()).expect("load")
    }
}

/// The API's router (token `s3cret`) and `/peer`, which answers the `ConnectInfo` address.
fn app() -> (Router, tempfile::TempDir) {
    let (api, dir) = crate::api::tests::app();
    let peer = Router::new().route(
        "/peer",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
    );
    (api.merge(peer), dir)
}

/// A server on 127.0.0.1 (free port) until the token is cancelled.
struct Server {
    addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(certificates: Certificates, handshake_timeout: Duration) -> Server {
        let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = tcp.local_addr().expect("addr");
        let listener = TlsListener::new(tcp, certificates)
            .with_handshake_timeout(handshake_timeout)
            .with_connect_info();
        let (router, dir) = app();
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await
        });
        Server {
            addr,
            stop,
            task,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("graceful stop in time")
            .expect("join")
            .expect("serve");
    }
}

/// A client that trusts `cert` alone (and opens a new connection each time it is built).
fn client_trusting(cert: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert.as_bytes()).expect("pem"))
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// `GET path` with the token: the status and the body, or the error's text.
async fn get_text(client: &reqwest::Client, url: &str) -> Result<(u16, String), String> {
    let resp = client
        .get(url)
        .bearer_auth("s3cret")
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await.map_err(|e| e.to_string())?))
}

#[tokio::test]
async fn https_serves_the_router_with_the_peer_address_and_refuses_plain_http() {
    let (cert, key) = pem_pair();
    let files = Files::new(&cert, &key);
    let server = Server::start(files.certificates(), HANDSHAKE_TIMEOUT).await;
    let client = client_trusting(&cert);

    let (status, body) = get_text(&client, &server.url("/healthz"))
        .await
        .expect("https");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, body) = get_text(&client, &server.url("/api/v1/status"))
        .await
        .expect("https");
    assert_eq!(status, 200, "{body}");
    let (_, peer) = get_text(&client, &server.url("/peer"))
        .await
        .expect("https");
    let peer: SocketAddr = peer.parse().expect("a socket address");
    assert!(
        peer.ip().is_loopback() && peer.port() != server.addr.port(),
        "{peer}"
    );

    let plain = client_trusting(&cert);
    let http = format!("http://{}/healthz", server.addr);
    assert!(
        get_text(&plain, &http).await.is_err(),
        "plain HTTP answered"
    );
    let (other, _) = pem_pair();
    assert!(
        get_text(&client_trusting(&other), &server.url("/healthz"))
            .await
            .is_err(),
        "a client that does not trust the certificate got an answer"
    );
    // Neither failure hurt the server.
    assert_eq!(
        get_text(&client, &server.url("/healthz")).await,
        Ok((200, "ok\n".to_owned()))
    );
    server.stop().await;
}

#[tokio::test]
async fn a_silent_client_does_not_hold_up_others_and_is_dropped_at_the_timeout() {
    let (cert, key) = pem_pair();
    let files = Files::new(&cert, &key);
    // A handshake timeout far beyond the test's bounds: others are served because
    // handshakes run side by side, not because the silent one timed out.
    let server = Server::start(files.certificates(), Duration::from_secs(3600)).await;
    let silent = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    assert_eq!(
        get_text(&client_trusting(&cert), &server.url("/healthz")).await,
        Ok((200, "ok\n".to_owned()))
    );
    drop(silent);
    server.stop().await;

    let server = Server::start(files.certificates(), Duration::from_millis(100)).await;
    let mut silent = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(30), silent.read(&mut buf))
        .await
        .expect("closed within the bound");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "the server sent {read:?} to a client that never said hello"
    );
    assert_eq!(
        get_text(&client_trusting(&cert), &server.url("/healthz")).await,
        Ok((200, "ok\n".to_owned()))
    );
    server.stop().await;
}

#[tokio::test]
async fn the_socket_upgrades_over_tls() {
    let (cert, key) = pem_pair();
    let files = Files::new(&cert, &key);
    let server = Server::start(files.certificates(), HANDSHAKE_TIMEOUT).await;

    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(cert.as_bytes()) {
        roots.add(c.expect("pem")).expect("root");
    }
    let config = rustls::ClientConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let name = rustls::pki_types::ServerName::from(server.addr.ip());
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("tls");
    let url = format!("wss://{}/ws?token=s3cret", server.addr);
    let (mut socket, resp) = tokio_tungstenite::client_async(url, tls)
        .await
        .expect("websocket handshake");
    assert_eq!(resp.status(), 101);
    let first = tokio::time::timeout(Duration::from_secs(30), socket.next())
        .await
        .expect("a message within the bound")
        .expect("open")
        .expect("a frame");
    assert!(first.is_text(), "{first:?}");
    drop(socket);
    server.stop().await;
}

/// Look at the files until the watcher loads them (a change is loaded at the second look
/// that sees it unchanged): the outcome.
fn look_until_loaded(certs: &Certificates, files: &mut Watcher) -> Result<(), TlsError> {
    for _ in 0..3 {
        if let Some(outcome) = certs.look(files) {
            return outcome;
        }
    }
    panic!("the changed files were not loaded in three looks");
}

#[tokio::test]
async fn a_changed_pair_is_served_and_a_bad_one_keeps_the_last_good() {
    let (first, first_key) = pem_pair();
    let mut files = Files::new(&first, &first_key);
    let certs = files.certificates();
    let server = Server::start(certs.clone(), HANDSHAKE_TIMEOUT).await;
    let mut watcher = certs.watcher();
    assert!(certs.look(&mut watcher).is_none(), "nothing changed");

    let (second, second_key) = pem_pair();
    files.write(&second, &second_key);
    assert!(
        certs.look(&mut watcher).is_none(),
        "loaded before it settled"
    );
    look_until_loaded(&certs, &mut watcher).expect("the second pair loads");
    assert_eq!(
        get_text(&client_trusting(&second), &server.url("/healthz")).await,
        Ok((200, "ok\n".to_owned()))
    );
    assert!(get_text(&client_trusting(&first), &server.url("/healthz"))
        .await
        .is_err());

    // A certificate with another's key; then a key file with no key; then no files.
    let (third, _) = pem_pair();
    for (cert, key, names) in [
        (third.as_str(), first_key.as_str(), "--tls-cert"),
        (third.as_str(), "not a key", "--tls-key"),
    ] {
        files.write(cert, key);
        let err = look_until_loaded(&certs, &mut watcher).expect_err("a bad pair");
        assert!(err.to_string().contains(names), "{err}");
        assert!(
            certs.look(&mut watcher).is_none(),
            "a bad pair is tried once"
        );
        assert_eq!(
            get_text(&client_trusting(&second), &server.url("/healthz")).await,
            Ok((200, "ok\n".to_owned())),
            "the last good pair is served"
        );
    }
    std::fs::remove_file(files.cert()).expect("remove");
    let err = look_until_loaded(&certs, &mut watcher).expect_err("no file");
    assert!(
        matches!(
            err,
            TlsError::Read {
                flag: "tls-cert",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        get_text(&client_trusting(&second), &server.url("/healthz")).await,
        Ok((200, "ok\n".to_owned()))
    );

    // Good files again are taken up.
    let (fourth, fourth_key) = pem_pair();
    files.write(&fourth, &fourth_key);
    look_until_loaded(&certs, &mut watcher).expect("the fourth pair loads");
    assert_eq!(
        get_text(&client_trusting(&fourth), &server.url("/healthz")).await,
        Ok((200, "ok\n".to_owned()))
    );
    server.stop().await;
}

#[tokio::test]
async fn the_watch_task_reloads_and_stops_when_asked() {
    let (first, first_key) = pem_pair();
    let mut files = Files::new(&first, &first_key);
    let certs = files.certificates();
    let server = Server::start(certs.clone(), HANDSHAKE_TIMEOUT).await;
    let stop = CancellationToken::new();
    let watch = tokio::spawn(certs.watch(Duration::from_millis(10), stop.clone()));

    let (second, second_key) = pem_pair();
    files.write(&second, &second_key);
    let client = || client_trusting(&second);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while get_text(&client(), &server.url("/healthz")).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new certificate was not served within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(30), watch)
        .await
        .expect("the watch stops when cancelled")
        .expect("join");
    server.stop().await;
}

#[test]
fn a_missing_or_bad_pair_at_start_names_the_flag_and_the_file() {
    let (cert, key) = pem_pair();
    let files = Files::new(&cert, &key);
    let missing = files.dir.path().join("missing.pem");
    let load = |c: &Path, k: &Path| Certificates::load(c, k).expect_err("refused").to_string();

    let err = load(&missing, &files.key());
    assert!(
        err.starts_with("--tls-cert") && err.contains("missing.pem"),
        "{err}"
    );
    let err = load(&files.cert(), &missing);
    assert!(
        err.starts_with("--tls-key") && err.contains("missing.pem"),
        "{err}"
    );
    // The key as the certificate, the certificate as the key.
    let err = load(&files.key(), &files.key());
    assert!(
        err.starts_with("--tls-cert") && err.contains("no certificate"),
        "{err}"
    );
    let err = load(&files.cert(), &files.cert());
    assert!(
        err.starts_with("--tls-key") && err.contains("no private key"),
        "{err}"
    );
    let (_, other_key) = pem_pair();
    std::fs::write(files.key(), other_key).expect("write");
    let err = load(&files.cert(), &files.key());
    assert!(
        err.contains("--tls-cert") && err.contains("--tls-key") && err.contains("key.pem"),
        "{err}"
    );
}
