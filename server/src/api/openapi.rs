//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 description of the HTTP surface, generated
//! from the handlers' `#[utoipa::path]` annotations and the wire types of
//! `pulseboard_model::proto` (their `openapi` feature).
//!
//! Contract:
//! - Every route of [`crate::api::router`] is described: [`crate::api::ROUTES`] lists them
//!   next to the router, and a test fails when the router, that list and this description
//!   disagree.
//! - Query parameters are described as the handlers parse them (by hand, so that errors
//!   name the parameter): instants are epoch milliseconds or RFC 3339, durations are like
//!   `15m`, counts have their bounds. Every error body is a [`proto::ApiError`].
//! - The description is served to readers like the rest of `/api/*`. It declares the two
//!   ways to present a credential (`Authorization: Bearer`, the `pb_session` cookie) on
//!   every operation that needs one, says in its description who may call it (the table
//!   of `crate::api::auth::rights`), and documents its `401`, `403` and `429`.
//! - `/ws` is described as the `GET` that upgrades to a WebSocket; its messages are the
//!   `ServerMsg` and `ClientMsg` schemas. `POST /collect` and the `/healthz` closure are
//!   described here, beside their code, so that their modules stay as they are.

use std::borrow::Cow;
use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use pulseboard_model::proto;
use utoipa::openapi::schema::{
    ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder};
use utoipa::openapi::security::{SecurityRequirement, SecurityScheme};
use utoipa::openapi::{OpenApi as Spec, RefOr};
use utoipa::{OpenApi, PartialSchema, ToSchema};

use axum::http::Method;

use crate::api::auth::rights::{need, Need};

/// The description as served (JSON).
pub fn spec_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        spec()
            .to_json()
            .unwrap_or_else(|e| format!(r#"{{"error":"the description did not serialize: {e}"}}"#))
    })
}

/// The description, with the security of every operation ([`crate::api::auth::rights`]).
pub fn spec() -> Spec {
    let mut spec = ApiDoc::openapi();
    // The state topic's records: Pulseboard's output for other systems, described here too.
    let components = spec.components.get_or_insert_with(Default::default);
    for (name, schema) in crate::store::record::schemas() {
        components.schemas.insert(name, schema);
    }
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "An admin or viewer token (`pulseboard token create`, or `--token`): \
                     `Authorization: Bearer <token>`.",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            crate::api::auth::COOKIE,
            "The browser session a share link (`/s/<id>`), a sign-in (`POST /api/v1/session`) \
             or a page opened with `?token=` gives. A write with it also sends \
             `X-CSRF-Token`.",
        ))),
    );
    let either = [
        SecurityRequirement::new("bearer", Vec::<String>::new()),
        SecurityRequirement::new("session", Vec::<String>::new()),
    ];
    for (path, item) in spec.paths.paths.iter_mut() {
        for (method, op) in [
            (Method::GET, &mut item.get),
            (Method::POST, &mut item.post),
            (Method::DELETE, &mut item.delete),
            (Method::OPTIONS, &mut item.options),
        ] {
            let Some(op) = op else { continue };
            let who = match need(&method, path) {
                Need::Open => continue,
                Need::Session => "any credential",
                Need::LinkRead => "a reader: viewer, admin, a share link (within its scope), or anyone with `--public-dashboard`",
                Need::Read => "a reader: viewer, admin, or anyone with `--public-dashboard` (not a share link)",
                Need::Admin => "an admin",
            };
            op.security = Some(either.to_vec());
            let d = op.description.get_or_insert_with(String::new);
            d.push_str(&format!("\n\n**Access**: {who}."));
            let error = |text: &str| {
                utoipa::openapi::ResponseBuilder::new()
                    .description(text)
                    .content(
                        "application/json",
                        utoipa::openapi::ContentBuilder::new()
                            .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                                "ApiError",
                            ))))
                            .build(),
                    )
                    .build()
            };
            let r = &mut op.responses.responses;
            r.entry("401".into()).or_insert_with(|| {
                error("No credential, or a wrong, revoked or expired one (`WWW-Authenticate: Bearer`).").into()
            });
            r.entry("403".into()).or_insert_with(|| {
                error("The credential does not give this (a viewer writing, a share link outside its scope, a cookie's write without `X-CSRF-Token`).").into()
            });
            r.entry("429".into()).or_insert_with(|| {
                error("Too many wrong credentials from this address: retry after `Retry-After` seconds.").into()
            });
        }
    }
    spec
}

/// This OpenAPI description.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    responses(
        (status = 200, description = "This description (OpenAPI 3.1).", content_type = "application/json", body = Object),
        (status = 401, description = "No credential, or a wrong, revoked or expired one.", body = proto::ApiError,
            headers(("www-authenticate" = String, description = "`Bearer`"))),
    )
)]
pub async fn handler() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], spec_json()).into_response()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Pulseboard",
        description = "Live clickstream analytics on Kafka: event-time windows, their figures \
                       over a range, the pipeline's status, and events over HTTP. Times are \
                       epoch milliseconds; windows are `[start, end)`. A bad parameter (one \
                       given twice included) gets `400` with `{\"error\": ..., \"parameter\": \
                       ...}`; a parameter given empty is the same as one not given.",
        license(name = "MIT", identifier = "MIT"),
    ),
    paths(
        crate::api::windows::windows,
        crate::api::windows::summary,
        crate::api::export::export,
        crate::api::segments::now,
        crate::api::segments::segments,
        crate::api::status::status,
        crate::api::status::dead_letters,
        crate::api::annotations::list,
        crate::api::annotations::create,
        crate::api::annotations::delete,
        crate::api::alerts::alerts,
        handler,
        collect,
        collect_preflight,
        tracking_script,
        websocket,
        healthz,
        crate::api::status::readyz,
        crate::api::metrics::metrics,
        page_root,
        page_kiosk,
        page_embed,
        crate::api::access::share,
        crate::api::access::session,
        crate::api::access::sign_in,
        crate::api::access::sign_out,
        crate::api::access::links,
        crate::api::access::create_link,
        crate::api::access::revoke_link,
        crate::api::access::tokens,
        crate::api::access::create_token,
        crate::api::access::revoke_token,
    ),
    components(schemas(
        Instant,
        proto::ApiError,
        proto::ServerMsg,
        proto::ClientMsg,
        proto::WebhookPayload,
        proto::Compare,
    )),
    tags(
        (name = "data", description = "Window figures, summaries and dead letters."),
        (name = "ops", description = "Status, health, readiness and metrics."),
        (name = "collect", description = "Events over HTTP into Kafka."),
        (name = "live", description = "The WebSocket push."),
        (name = "pages", description = "The dashboard's pages (HTML)."),
        (name = "meta", description = "This description."),
        (name = "access", description = "Share links, API tokens and the browser session."),
    )
)]
struct ApiDoc;

/// An instant as the API reads it: epoch milliseconds, or an RFC 3339 timestamp.
pub struct Instant;

impl PartialSchema for Instant {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some(
                "Epoch milliseconds (`1795515330123`), or RFC 3339 \
                 (`2026-11-24T10:15:30.123Z`, `2026-11-24T11:15:30+01:00`; a space for `T` and \
                 up to 9 fraction digits are accepted, sub-milliseconds are cut).",
            ))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                    .description(Some("Epoch milliseconds.")),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                    .description(Some("RFC 3339.")),
            )
            .into()
    }
}

impl ToSchema for Instant {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Instant")
    }
}

/// A duration such as `500ms`, `10s`, `15m`, `24h`, `1d` or `1h30m` (the `range` parameters
/// repeat it: the attribute takes only a literal). The server reads any number of parts of
/// any length up to an `i64` of milliseconds; the pattern keeps to what cannot overflow. A
/// zero duration (`0m`) matches it but is refused (`400`).
#[cfg(test)]
const DURATION_PATTERN: &str = "^([0-9]{1,9}(ms|s|m|h|d)){1,8}$";

mod queries;
pub use queries::*;

/// Body of `POST /collect`: one event object, or an array of them.
pub struct CollectBody;

impl PartialSchema for CollectBody {
    fn schema() -> RefOr<Schema> {
        let event = || {
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .description(Some(
                    "An event (see docs/events.md): `url` and `visitor` are needed to be \
                     counted; `ts` is replaced by the receive time. An event that cannot be \
                     counted is dead-lettered by the pipeline, not refused here.",
                ))
        };
        OneOfBuilder::new()
            .item(event())
            .item(
                ArrayBuilder::new()
                    .items(event())
                    .min_items(Some(1))
                    .max_items(Some(crate::site::collect::MAX_EVENTS)),
            )
            .into()
    }
}

impl ToSchema for CollectBody {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("CollectBody")
    }
}

/// Events over HTTP (handled by [`crate::site::collect::handler`]).
#[utoipa::path(
    post,
    path = "/collect",
    tag = "collect",
    description = "Events over HTTP, into the first input topic. Open (no token). CORS: any \
                   origin, or with `--site-origin` only those (another `Origin` gets 403). \
                   Events without a `visitor` (from `/pb.js`) get a cookieless daily visitor \
                   id, a country and a device; robots' are dropped. Each event's time is the server's receive time; what the \
                   client sent as `ts` is kept as `client_ts`. Rate-limited per client address \
                   (`--collect-rate`, default 20 requests/s, bursts of `--collect-burst`, \
                   default 40). At most 1 MiB and 10 000 events per request. The body is read \
                   as JSON whatever its content type: `text/plain` is what `navigator.sendBeacon` \
                   sends without a CORS preflight.",
    request_body(
        description = "One JSON event object, a JSON array of them, or newline-delimited objects.",
        content(
            (CollectBody = "application/json"),
            (String = "text/plain"),
        )
    ),
    responses(
        (status = 202, description = "Every event was delivered to Kafka.", body = proto::Accepted),
        (status = 400, description = "The body is not JSON objects, is empty, or holds more than 10 000 events; nothing of it was produced (`parameter`: `body`).", body = proto::ApiError),
        (status = 403, description = "With `--site-origin`: the request's `Origin` is not one of them; nothing was read or produced.", body = proto::ApiError),
        (status = 413, description = "The body is over 1 MiB; nothing of it was produced (`parameter`: `body`).", body = proto::ApiError),
        (status = 429, description = "This client is over its rate; refused before the body is read.", body = proto::ApiError,
            headers(("retry-after" = u64, description = "Seconds to wait."))),
        (status = 503, description = "Kafka did not take the events (some may have been delivered), or this server has no producer.", body = proto::ApiError),
    )
)]
#[allow(dead_code)]
fn collect() {}

/// The CORS preflight of `/collect` (handled by [`crate::site::collect::preflight`]).
#[utoipa::path(
    options,
    path = "/collect",
    tag = "collect",
    operation_id = "collect_preflight",
    description = "CORS preflight (only a non-simple content type needs one): `204` with \
                   `Access-Control-Allow-Methods: POST` for an allowed origin.",
    responses(
        (status = 204, description = "Allowed: the CORS headers say what may be sent."),
        (status = 403, description = "With `--site-origin`: the `Origin` is not one of them.", body = proto::ApiError),
    )
)]
#[allow(dead_code)]
fn collect_preflight() {}

/// The tracking script (handled by [`crate::site::tracker::script`]).
#[utoipa::path(
    get,
    path = "/pb.js",
    tag = "collect",
    operation_id = "tracking_script",
    description = "The tracking script for a site's pages: \
                   `<script defer src=\".../pb.js\" data-site=\"example.com\"></script>`. \
                   Open (no token); cached an hour, with an `ETag`.",
    responses(
        (status = 200, description = "The script.", body = String, content_type = "application/javascript"),
        (status = 304, description = "Not modified (`If-None-Match` matched the `ETag`)."),
    )
)]
#[allow(dead_code)]
fn tracking_script() {}

/// The live WebSocket (handled by [`crate::api::ws::handler`]).
#[utoipa::path(
    get,
    path = "/ws",
    tag = "live",
    operation_id = "websocket",
    description = "The live push: a WebSocket (`Connection: Upgrade`, `Upgrade: websocket`). \
                   The server sends text frames, each a JSON `ServerMsg`: a `snapshot`, then \
                   `changes` (the window and status fields that changed since message `after`), \
                   every one with a `seq` increasing by one. Frames are compressed \
                   (permessage-deflate, no context takeover) when the client offers it. \
                   A client may send only `ClientMsg` (`{\"type\":\"ping\"}`, at most 4 KiB). \
                   New sessions are paced (`--ws-connect-rate` a second, `--ws-connect-burst` \
                   at once): a session over the rate waits for its turn before the handshake \
                   is answered; one whose turn is more than `--ws-connect-max-wait` away gets \
                   `503` and should retry after `Retry-After` seconds, with jitter.",
    params(WsQuery),
    responses(
        (status = 101, description = "Switched to the WebSocket protocol; frames are `ServerMsg` (JSON)."),
        (status = 400, description = "A bad `since`, `every`, `site` or `filter` (JSON `ApiError`), or a request that is not a WebSocket upgrade (plain text).",
            content((proto::ApiError = "application/json"), (String = "text/plain"))),
        (status = 401, description = "No credential, or a wrong, revoked or expired one.", body = proto::ApiError,
            headers(("www-authenticate" = String, description = "`Bearer`"))),
        (status = 503, description = "Too many sessions are opening at once (or the server is stopping): retry later.", body = proto::ApiError,
            headers(("retry-after" = u64, description = "Seconds to wait before retrying."))),
    )
)]
#[allow(dead_code)]
fn websocket() {}

/// Liveness (a closure in the router).
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "ops",
    description = "Liveness: the process answers HTTP. Open (no token).",
    responses((status = 200, description = "`ok`", body = String, content_type = "text/plain", example = "ok\n"))
)]
#[allow(dead_code)]
fn healthz() {}

/// The dashboard (the frontend's pages are served by [`crate::api`]'s `page`).
#[utoipa::path(
    get,
    path = "/",
    tag = "pages",
    operation_id = "dashboard",
    description = "The dashboard (the frontend's `index.html`, or a plain page when it is not built). Open (no token).",
    responses((status = 200, description = "HTML", body = String, content_type = "text/html"))
)]
#[allow(dead_code)]
fn page_root() {}

/// The wall display.
#[utoipa::path(
    get,
    path = "/kiosk",
    tag = "pages",
    operation_id = "kiosk",
    description = "The wall display. Open (no token).",
    responses((status = 200, description = "HTML", body = String, content_type = "text/html"))
)]
#[allow(dead_code)]
fn page_kiosk() {}

/// One panel.
#[utoipa::path(
    get,
    path = "/embed/{panel}",
    tag = "pages",
    operation_id = "embed",
    description = "One panel alone, for an iframe (who may embed it: `--frame-ancestors`). Open (no token).",
    params(PanelPath),
    responses((status = 200, description = "HTML", body = String, content_type = "text/html"))
)]
#[allow(dead_code)]
fn page_embed() {}

#[cfg(test)]
mod tests;
