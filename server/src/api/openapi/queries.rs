//! The query and path parameters of the handlers, as the OpenAPI description gives them
//! (the handlers parse them by hand: see `crate::api::params`).

use pulseboard_model::proto;
use utoipa::{IntoParams, ToSchema};

use super::Instant;

/// Query of `GET /api/v1/windows`. As everywhere, a parameter given empty (`to=`) is the same
/// as one not given, and one given twice is a `400`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct WindowsQuery {
    /// Range start (inclusive). Default: `to` minus `range`.
    #[param(value_type = Option<Instant>)]
    from: Option<String>,
    /// Range end (exclusive). Default: now.
    #[param(value_type = Option<Instant>)]
    to: Option<String>,
    /// Length of the range when `from` is not given (default `1h`).
    #[param(pattern = "^([0-9]{1,9}(ms|s|m|h|d)){1,8}$", example = "1h")]
    range: Option<String>,
    /// Most windows in the answer; `next` is the `from` of the next page when it cut.
    #[param(minimum = 1, maximum = 10000, default = 1000)]
    limit: Option<u32>,
    /// Length of each top list.
    #[param(minimum = 1, maximum = 1000, default = 10)]
    top: Option<u32>,
    /// A segment: `DIMENSION:VALUE` for a dimension of `--segment-dimensions` (`country:DE`,
    /// `device:mobile`, `type:signup`, `referrer:news.ycombinator.com` or a referrer URL,
    /// `country:(other)` for the "other" bucket). The figures are that segment's, with a
    /// `segment` note saying whether they hold every event of the value.
    #[param(example = "country:DE")]
    filter: Option<String>,
    /// One site's figures alone (its events' `site`; `(other sites)`: beyond `--max-sites`).
    #[param(max_length = 2048, example = "shop.example")]
    site: Option<String>,
    /// Also return the same range one day (`1d`) or one week (`7d`) earlier, aligned to this
    /// one, with the percent change of the totals (`compare` in the answer).
    #[param(value_type = Option<proto::Compare>)]
    compare: Option<String>,
    /// Merge items narrower than this into epoch-aligned steps (for long ranges); at least
    /// the window width. Wider items (hour buckets) stay as they are.
    #[param(
        pattern = "^(1m|2m|5m|10m|15m|30m|1h|2h|3h|4h|6h|12h|1d)$",
        example = "30m"
    )]
    step: Option<String>,
}

/// Query of `GET /api/v1/summary`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct SummaryQuery {
    /// Range start (inclusive). Default: `to` minus `range`.
    #[param(value_type = Option<Instant>)]
    from: Option<String>,
    /// Range end (exclusive). Default: now.
    #[param(value_type = Option<Instant>)]
    to: Option<String>,
    /// Length of the range when `from` is not given (default `15m`).
    #[param(pattern = "^([0-9]{1,9}(ms|s|m|h|d)){1,8}$", example = "15m")]
    range: Option<String>,
    /// Length of each top list.
    #[param(minimum = 1, maximum = 1000, default = 10)]
    top: Option<u32>,
    /// A segment: `DIMENSION:VALUE` for a dimension of `--segment-dimensions` (`country:DE`,
    /// `device:mobile`, `type:signup`, `referrer:news.ycombinator.com` or a referrer URL,
    /// `country:(other)` for the "other" bucket). The figures are that segment's, with a
    /// `segment` note saying whether they hold every event of the value.
    #[param(example = "country:DE")]
    filter: Option<String>,
    /// One site's figures alone (its events' `site`; `(other sites)`: beyond `--max-sites`).
    #[param(max_length = 2048, example = "shop.example")]
    site: Option<String>,
    /// Also return the same range one day (`1d`) or one week (`7d`) earlier with the
    /// percent change of the totals (`compare` in the answer).
    #[param(value_type = Option<proto::Compare>)]
    compare: Option<String>,
    /// The one custom property (a key of `--property`) to list in `properties`; default all.
    #[param(max_length = 64, example = "plan")]
    property: Option<String>,
}

/// Query of `GET /api/v1/export`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ExportQuery {
    /// Range start (inclusive). Default: `to` minus `range`.
    #[param(value_type = Option<Instant>)]
    from: Option<String>,
    /// Range end (exclusive). Default: now.
    #[param(value_type = Option<Instant>)]
    to: Option<String>,
    /// Length of the range when `from` is not given (default `24h`).
    #[param(pattern = "^([0-9]{1,9}(ms|s|m|h|d)){1,8}$", example = "24h")]
    range: Option<String>,
    /// One row per `window` (default), `minute`, `hour` or `day`.
    #[param(pattern = "^(window|minute|hour|day)$", example = "hour")]
    step: Option<String>,
    /// `csv` (default) or `ndjson`.
    #[param(pattern = "^(csv|ndjson)$", example = "csv")]
    format: Option<String>,
    /// A breakdown: `pages`, `referrers`, `countries`, `devices`, `types` or `prop.KEY` (a key
    /// of `--property`): a row per bucket and key. Not with `filter`.
    #[param(max_length = 80, example = "pages")]
    dimension: Option<String>,
    /// Keys per bucket of a breakdown.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    top: Option<u32>,
    /// A segment, as for `GET /api/v1/summary`.
    #[param(example = "country:DE")]
    filter: Option<String>,
    /// One site's figures alone.
    #[param(max_length = 2048, example = "shop.example")]
    site: Option<String>,
}

/// Query of `GET /api/v1/now`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct NowQuery {
    /// The instant "now" is. Default: the server's wall clock.
    #[param(value_type = Option<Instant>)]
    at: Option<String>,
    /// Length of the lists of pages and sources.
    #[param(minimum = 1, maximum = 1000, default = 10)]
    top: Option<u32>,
    /// A segment: `DIMENSION:VALUE` for a dimension of `--segment-dimensions` (`country:DE`,
    /// `device:mobile`, `type:signup`, `referrer:news.ycombinator.com` or a referrer URL,
    /// `country:(other)` for the "other" bucket). The figures are that segment's, with a
    /// `segment` note saying whether they hold every event of the value.
    #[param(example = "country:DE")]
    filter: Option<String>,
    /// One site's figures alone (its events' `site`; `(other sites)`: beyond `--max-sites`).
    #[param(max_length = 2048, example = "shop.example")]
    site: Option<String>,
}

/// Query of `GET /api/v1/annotations`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AnnotationsQuery {
    /// Range start (inclusive). Default: `to` minus `range`.
    #[param(value_type = Option<Instant>)]
    from: Option<String>,
    /// Range end (exclusive). Default: now.
    #[param(value_type = Option<Instant>)]
    to: Option<String>,
    /// Length of the range when `from` is not given (default `7d`).
    #[param(pattern = "^([0-9]{1,9}(ms|s|m|h|d)){1,8}$", example = "7d")]
    range: Option<String>,
    /// Most annotations in the answer (the newest of the range).
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<u32>,
}

/// Body of `POST /api/v1/annotations`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct NewAnnotation {
    /// The time it marks (default: now), between 2000 and 2100.
    #[schema(value_type = Option<Instant>)]
    ts: Option<String>,
    /// What happened: 1 to 280 characters, one line.
    #[schema(min_length = 1, max_length = 280)]
    text: String,
}

/// Query of `GET /api/v1/dead-letters`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct DeadLettersQuery {
    /// Most dead letters in the answer, newest first.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<u32>,
}

/// Query of `GET /ws`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct WsQuery {
    /// Resume after this message (`seq` of the last one received): the messages after it
    /// when the server still holds them, else a fresh snapshot.
    #[param(minimum = 0)]
    since: Option<u64>,
    /// Follow a segment, `DIMENSION:VALUE` as in the API's `filter`: every window change
    /// carries the segment's windows whole (same sequence numbers), the snapshot echoes
    /// the filter. A filtered socket starts with a snapshot (`since` is not replayed).
    #[param(example = "country:DE")]
    filter: Option<String>,
    /// One site's figures alone (its events' `site`; `(other sites)`: beyond `--max-sites`).
    #[param(max_length = 2048, example = "shop.example")]
    site: Option<String>,
    /// Pace the socket to a display: at most one message per this many milliseconds, each
    /// holding everything the interval changed (0: every message, the default).
    #[param(minimum = 0, maximum = 10000, example = 500)]
    every: Option<u64>,
}

/// Path of `GET /embed/{panel}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct PanelPath {
    /// The panel: `events`, `totals`, `now`, `goals`, `pages`, `referrers`, `countries`,
    /// `devices`, `types`, `properties` or `status` (the page is served for any name; the app shows the
    /// panels it knows). `?filter=DIMENSION:VALUE` pins it to a segment, `?site=NAME` to a
    /// site.
    #[param(example = "events")]
    panel: String,
}
