//! `GET /pb.js`: the tracking script a site includes to send pageviews and custom events to
//! `POST /collect` (the script is `server/assets/pb.js`, embedded in the binary).
//!
//! Contract:
//! - Served as `application/javascript`, with `Cache-Control: public, max-age=3600` (a new
//!   version reaches browsers within an hour) and a strong `ETag` (the first 12 bytes of
//!   the script's SHA-256, in hex): `If-None-Match` with it (or `*`) gets `304` and no body.
//! - The script stays small: at most 2 KiB gzipped (a unit test measures it).
//! - What the script sends and when is documented in its own header and in docs/collect.md.

use std::sync::LazyLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The script, as served.
pub const SCRIPT: &str = include_str!("../../assets/pb.js");
/// The most the script may weigh gzipped (the unit test holds it to this).
#[cfg(test)]
const MAX_GZIP_BYTES: usize = 2048;

static ETAG: LazyLock<HeaderValue> = LazyLock::new(|| {
    let digest = Sha256::digest(SCRIPT.as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    HeaderValue::from_str(&format!("\"{hex}\"")).unwrap_or(HeaderValue::from_static("\"pb\""))
});

/// `GET /pb.js`.
pub async fn script(headers: HeaderMap) -> Response {
    let etag = ETAG.clone();
    let fresh = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == etag.to_str().unwrap_or("") || t.trim() == "*");
    let cache = [
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        ),
        (header::ETAG, etag),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/javascript; charset=utf-8"),
        )],
        cache,
        SCRIPT,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    /// `gzip -9` of `data` (the system's gzip: no compression crate is in the build).
    fn gzip_len(data: &[u8]) -> usize {
        let mut child = Command::new("gzip")
            .args(["-9", "-c"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("gzip must be installed to measure pb.js");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(data)
            .expect("write to gzip");
        let out = child.wait_with_output().expect("gzip output");
        assert!(out.status.success(), "gzip failed");
        out.stdout.len()
    }

    #[test]
    fn the_script_stays_under_two_kilobytes_gzipped() {
        let raw = SCRIPT.len();
        let gz = gzip_len(SCRIPT.as_bytes());
        println!("pb.js: {raw} bytes, {gz} bytes gzip -9");
        assert!(
            gz <= MAX_GZIP_BYTES,
            "pb.js is {gz} bytes gzipped, over {MAX_GZIP_BYTES}"
        );
        // No cookies, no storage, no other script.
        for banned in [
            "document.cookie",
            "localStorage",
            "sessionStorage",
            "indexedDB",
            "import(",
        ] {
            assert!(!SCRIPT.contains(banned), "pb.js uses {banned}");
        }
    }

    #[tokio::test]
    async fn the_script_is_javascript_cached_and_revalidated_by_etag() {
        let resp = script(HeaderMap::new()).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let h = resp.headers().clone();
        assert_eq!(
            h.get(header::CONTENT_TYPE).map(|v| v.as_bytes()),
            Some(&b"application/javascript; charset=utf-8"[..])
        );
        assert_eq!(
            h.get(header::CACHE_CONTROL).map(|v| v.as_bytes()),
            Some(&b"public, max-age=3600"[..])
        );
        let etag = h.get(header::ETAG).cloned().expect("etag");
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        assert_eq!(&body[..], SCRIPT.as_bytes());
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, etag);
        let resp = script(again).await;
        assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        assert!(body.is_empty());
    }
}
