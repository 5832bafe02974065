//! The frontend's pages (`/`, `/kiosk`, `/embed/<panel>`): its `index.html`, or a plain page
//! saying how to build it, with a few figures and links to the API.

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};

use crate::api::AppState;

/// A page of the frontend: its `index.html`, or a plain page when it is not built.
pub(super) async fn page(State(st): State<AppState>) -> Response {
    if let Some(dir) = &st.static_dir {
        match tokio::fs::read_to_string(dir.join("index.html")).await {
            Ok(html) => return Html(html).into_response(),
            Err(e) => tracing::debug!(dir = %dir.display(), error = %e, "frontend not found"),
        }
    }
    fallback_index(&st).into_response()
}

fn fallback_index(st: &AppState) -> Html<String> {
    let s = st.progress.status();
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>Pulseboard</title><link rel=icon href=\"data:,\">\
         <h1>Pulseboard</h1><p>The dashboard is not built: run <code>cargo xtask run</code> (or point --static-dir at Trunk's output).</p>\
         <p>Broker: {} · events: {} · dead letters: {}</p>\
         <ul><li><a href=/api/v1/status>/api/v1/status</a><li><a href=/api/v1/windows>/api/v1/windows</a>\
         <li><a href=/api/v1/summary?range=5m>/api/v1/summary?range=5m</a><li><a href=/metrics>/metrics</a></ul>",
        html_escape(&s.broker),
        s.events_total,
        s.dead_letters_total
    ))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use crate::api::tests::{app, get_raw};

    #[tokio::test]
    async fn pages_get_the_frontend_and_files_stay_inside_their_folder() {
        let (app, _dir) = app();
        for page in ["/", "/kiosk", "/embed/events", "/kiosk?kiosk"] {
            let (status, body) = get_raw(&app, page).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            assert!(body.contains("<title>app</title>"), "{page}: {body}");
        }
        assert_eq!(get_raw(&app, "/app.css").await.0, StatusCode::OK);
        for escape in [
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/..%2fsecret.txt",
            "/nope.js",
        ] {
            let (status, body) = get_raw(&app, escape).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{escape}: {body}");
            assert!(!body.contains("secret"), "{escape}");
        }
    }

    #[tokio::test]
    async fn an_unknown_api_path_answers_404_in_json_naming_the_description() {
        let (app, _dir) = app();
        for path in [
            "/api/v1/nope",
            "/api/v2/windows",
            "/api",
            "/api/v1/windows/extra",
        ] {
            let (status, body) = get_raw(&app, path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
            let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            let error = json["error"].as_str().unwrap_or_default();
            assert!(error.contains(path), "{path}: {body}");
            assert!(error.contains("/api/v1/openapi.json"), "{body}");
        }
        // The API's own paths, and files, are as they were.
        assert_eq!(get_raw(&app, "/api/v1/status").await.0, StatusCode::OK);
        assert_eq!(get_raw(&app, "/app.css").await.0, StatusCode::OK);
    }
}
