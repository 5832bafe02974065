//! Which page to show, read from the page URL, and the time ranges a viewer can pick.
//!
//! Contract: pure functions of the `pathname` and `search` strings of `window.location`
//! (tested on the host); no router crate.
//!
//! - `/` (anything else) → [`Route::Dashboard`]
//! - `/kiosk`, or any path with a `kiosk` query parameter → [`Route::Kiosk`]
//! - `/embed/<panel>` → [`Route::Embed`] for a [`Panel`] name, else
//!   [`Route::UnknownEmbed`] with the name asked for
//!
//! A path prefix before these is ignored, so the app also works behind a reverse proxy
//! that mounts it under a sub-path.
//!
//! Every page may be pinned to a segment with `?filter=DIMENSION:VALUE` ([`filter_of`]);
//! [`search_with_filter`] writes the query string of the same page with another filter.

use std::fmt;

use pulseboard_model::agg::Filter;

/// A page of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The interactive dashboard.
    Dashboard,
    /// The wall display.
    Kiosk,
    /// One panel alone, for an iframe.
    Embed(Panel),
    /// `/embed/<name>` with a name that is not a panel.
    UnknownEmbed(String),
}

/// A panel that can be embedded alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    /// Events per window (bar chart).
    Events,
    /// Totals for the range.
    Totals,
    /// Visitors now: the headline, active pages and sources.
    Now,
    /// Goals: completions, converting visitors, conversion rate.
    Goals,
    /// Top pages.
    Pages,
    /// Top referrers.
    Referrers,
    /// Events by country.
    Countries,
    /// Events by device.
    Devices,
    /// Events by type.
    Types,
    /// Custom properties: a key's top values.
    Properties,
    /// Pipeline status: broker, partitions, lag, dead letters.
    Status,
}

impl Panel {
    /// Every panel, in the order the dashboard shows them.
    pub const ALL: [Panel; 11] = [
        Panel::Events,
        Panel::Totals,
        Panel::Now,
        Panel::Goals,
        Panel::Pages,
        Panel::Referrers,
        Panel::Countries,
        Panel::Devices,
        Panel::Types,
        Panel::Properties,
        Panel::Status,
    ];

    /// The name used in `/embed/<name>` and in `data-testid="embed-<name>"`.
    pub fn name(self) -> &'static str {
        match self {
            Panel::Events => "events",
            Panel::Totals => "totals",
            Panel::Now => "now",
            Panel::Goals => "goals",
            Panel::Pages => "pages",
            Panel::Referrers => "referrers",
            Panel::Countries => "countries",
            Panel::Devices => "devices",
            Panel::Types => "types",
            Panel::Properties => "properties",
            Panel::Status => "status",
        }
    }

    /// The panel called `name`.
    pub fn from_name(name: &str) -> Option<Panel> {
        Panel::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Its heading.
    pub fn title(self) -> &'static str {
        match self {
            Panel::Events => "Events per window",
            Panel::Totals => "Totals",
            Panel::Now => "Visitors now",
            Panel::Goals => "Goals",
            Panel::Pages => "Top pages",
            Panel::Referrers => "Referrers",
            Panel::Countries => "Countries",
            Panel::Devices => "Devices",
            Panel::Types => "Event types",
            Panel::Properties => "Properties",
            Panel::Status => "Pipeline",
        }
    }
}

/// The page for a URL's `pathname` and `search` (with or without the leading `?`).
pub fn route(pathname: &str, search: &str) -> Route {
    let path = pathname.trim_end_matches('/');
    if let Some(i) = path.rfind("/embed/") {
        let name = &path[i + "/embed/".len()..];
        return match Panel::from_name(name) {
            Some(p) => Route::Embed(p),
            None => Route::UnknownEmbed(decode(name)),
        };
    }
    if path.ends_with("/embed") {
        return Route::UnknownEmbed(String::new());
    }
    if path == "/kiosk" || path.ends_with("/kiosk") || query_param(search, "kiosk").is_some() {
        return Route::Kiosk;
    }
    Route::Dashboard
}

/// The value of query parameter `name` in `search` (`?a=1&b`): `Some("")` for a bare
/// flag, percent- and `+`-decoded. The first occurrence wins.
pub fn query_param(search: &str, name: &str) -> Option<String> {
    let q = search.strip_prefix('?').unwrap_or(search);
    q.split('&').filter(|p| !p.is_empty()).find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k) == name).then(|| decode(v))
    })
}

/// The segment a page is pinned to: its `filter` parameter, when it reads as a filter
/// (`country:DE`); anything else is no filter (the server would refuse it).
pub fn filter_of(search: &str) -> Option<Filter> {
    query_param(search, "filter")
        .filter(|f| !f.is_empty())
        .and_then(|f| Filter::parse_registering(&f).ok())
}

/// The site a page is pinned to: its `site` parameter, when not empty.
pub fn site_of(search: &str) -> Option<String> {
    query_param(search, "site").filter(|s| !s.is_empty())
}

/// `search` (with or without `?`) with its `filter` parameter set to `filter`, or removed;
/// the other parameters stay as they are, in their order. Returns `""` or `?...`.
pub fn search_with_filter(search: &str, filter: Option<&Filter>) -> String {
    search_with(search, "filter", filter.map(ToString::to_string).as_deref())
}

/// `search` with its parameter `name` set to `value`, or removed (as
/// [`search_with_filter`]).
pub fn search_with(search: &str, name: &str, value: Option<&str>) -> String {
    let q = search.strip_prefix('?').unwrap_or(search);
    let mut parts: Vec<String> = q
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| decode(p.split('=').next().unwrap_or_default()) != name)
        .map(str::to_owned)
        .collect();
    if let Some(v) = value {
        parts.push(format!("{name}={}", encode(v)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// Percent-encodes what a query value cannot hold as it is (keeps `:`, `/` and `.` readable).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes and `+` (as a space); invalid escapes are kept as they are.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// A time range the viewer can pick; the range always ends now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Range {
    /// Last 5 minutes.
    M5,
    /// Last 15 minutes (the default, and the kiosk's fixed range).
    #[default]
    M15,
    /// Last hour.
    H1,
    /// Last 24 hours.
    H24,
    /// Last 7 days (history: 30-minute steps, then the last hour live).
    D7,
    /// Last 30 days (history: 2-hour steps, then the last hour live).
    D30,
}

/// How much of a stepped range (7d, 30d) is loaded at full resolution: the rest comes in
/// steps ([`Range::step`]).
pub const FINE_MS: i64 = 3_600_000;

impl Range {
    /// Every range, shortest first.
    pub const ALL: [Range; 6] = [
        Range::M5,
        Range::M15,
        Range::H1,
        Range::H24,
        Range::D7,
        Range::D30,
    ];

    /// Its length, ms.
    pub fn ms(self) -> i64 {
        match self {
            Range::M5 => 5 * 60_000,
            Range::M15 => 15 * 60_000,
            Range::H1 => 3_600_000,
            Range::H24 => 24 * 3_600_000,
            Range::D7 => 7 * 24 * 3_600_000,
            Range::D30 => 30 * 24 * 3_600_000,
        }
    }

    /// The `step` its history is loaded in (`/api/v1/windows?step=`), for the long ranges.
    pub fn step(self) -> Option<(&'static str, i64)> {
        match self {
            Range::D7 => Some(("30m", 1_800_000)),
            Range::D30 => Some(("2h", 7_200_000)),
            _ => None,
        }
    }

    /// The `step` of its comparison period (drawn as one line: steps as wide as the
    /// chart's bars at most).
    pub fn compare_step(self) -> Option<&'static str> {
        match self {
            Range::H24 => Some("5m"),
            r => r.step().map(|(s, _)| s),
        }
    }

    /// Its name in the API (`/api/v1/summary?range=`) and on buttons: `5m`, `15m`, `1h`, `24h`.
    pub fn label(self) -> &'static str {
        match self {
            Range::M5 => "5m",
            Range::M15 => "15m",
            Range::H1 => "1h",
            Range::H24 => "24h",
            Range::D7 => "7d",
            Range::D30 => "30d",
        }
    }

    /// The range called `label`.
    pub fn from_label(label: &str) -> Option<Range> {
        Range::ALL.into_iter().find(|r| r.label() == label)
    }

    /// How many windows of `window_ms` the client keeps for this range: the range itself
    /// plus a margin for open windows and the one being filled.
    pub fn keep(self, window_ms: i64) -> usize {
        let w = if window_ms > 0 { window_ms } else { 10_000 };
        match self.step() {
            Some((_, step)) => ((self.ms() / step) + (FINE_MS + step) / w) as usize + 16,
            None => (self.ms() / w) as usize + 16,
        }
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_route_to_pages() {
        assert_eq!(route("/", ""), Route::Dashboard);
        assert_eq!(route("", ""), Route::Dashboard);
        assert_eq!(route("/index.html", "?range=1h"), Route::Dashboard);
        assert_eq!(route("/kiosk", ""), Route::Kiosk);
        assert_eq!(route("/kiosk/", "?token=a"), Route::Kiosk);
        assert_eq!(route("/", "?kiosk"), Route::Kiosk);
        assert_eq!(route("/", "?token=a&kiosk=1"), Route::Kiosk);
        assert_eq!(route("/embed/pages", ""), Route::Embed(Panel::Pages));
        assert_eq!(
            route("/stats/embed/status/", ""),
            Route::Embed(Panel::Status)
        );
        assert_eq!(route("/embed/nope", ""), Route::UnknownEmbed("nope".into()));
        assert_eq!(route("/embed", ""), Route::UnknownEmbed(String::new()));
    }

    #[test]
    fn every_panel_round_trips_by_name() {
        for p in Panel::ALL {
            assert_eq!(Panel::from_name(p.name()), Some(p));
            assert_eq!(route(&format!("/embed/{}", p.name()), ""), Route::Embed(p));
        }
        assert_eq!(Panel::from_name("Pages"), None, "names are lowercase");
    }

    #[test]
    fn query_params_are_decoded() {
        assert_eq!(
            query_param("?token=a%2Bb+c&x=1", "token").as_deref(),
            Some("a+b c")
        );
        assert_eq!(query_param("token=xyz", "token").as_deref(), Some("xyz"));
        assert_eq!(query_param("?kiosk", "kiosk").as_deref(), Some(""));
        assert_eq!(query_param("?a=1&a=2", "a").as_deref(), Some("1"));
        assert_eq!(query_param("?tokens=1", "token"), None);
        assert_eq!(query_param("", "token"), None);
        assert_eq!(
            query_param("?t=%zz%4", "t").as_deref(),
            Some("%zz%4"),
            "bad escapes stay"
        );
    }

    #[test]
    fn a_page_is_pinned_to_a_segment_by_its_filter_parameter() {
        let f = filter_of("?token=x&filter=country%3ADE").expect("filter");
        assert_eq!(f.to_string(), "country:DE");
        assert_eq!(
            filter_of("?filter=country:DE&kiosk").map(|f| f.value),
            Some("DE".into())
        );
        assert_eq!(filter_of("?filter="), None);
        assert_eq!(filter_of("?filter=nonsense"), None);
        assert_eq!(filter_of(""), None);
        let de = Filter::parse("country:DE").expect("filter");
        assert_eq!(
            search_with_filter("?token=a%20b&filter=device:mobile&kiosk", Some(&de)),
            "?token=a%20b&kiosk&filter=country:DE"
        );
        assert_eq!(search_with_filter("?filter=country:DE", None), "");
        assert_eq!(
            site_of("?site=shop.example&kiosk").as_deref(),
            Some("shop.example")
        );
        assert_eq!(site_of("?site="), None);
        assert_eq!(
            search_with("?kiosk&site=a.example", "site", Some("b.example")),
            "?kiosk&site=b.example"
        );
        assert_eq!(search_with("?site=a.example", "site", None), "");
        assert_eq!(search_with_filter("", Some(&de)), "?filter=country:DE");
        let odd = Filter::parse("type:sign up&x").expect("filter");
        let s = search_with_filter("", Some(&odd));
        assert_eq!(s, "?filter=type:sign%20up%26x");
        assert_eq!(filter_of(&s), Some(odd), "round trip");
        assert_eq!(route("/embed/goals", ""), Route::Embed(Panel::Goals));
        assert_eq!(
            route("/embed/now", "?filter=country:DE"),
            Route::Embed(Panel::Now)
        );
    }

    #[test]
    fn ranges_have_labels_lengths_and_a_window_budget() {
        assert_eq!(Range::default(), Range::M15);
        for r in Range::ALL {
            assert_eq!(Range::from_label(r.label()), Some(r));
        }
        assert_eq!(Range::H1.ms(), 3_600_000);
        assert_eq!(
            Range::H24.keep(10_000),
            8_640 + 16,
            "24 h of 10 s windows fit"
        );
        assert_eq!(Range::M15.keep(0), 90 + 16, "unknown width assumes 10 s");
        assert_eq!(
            Range::D7.keep(10_000),
            336 + 540 + 16,
            "7 days of 30 min steps and the last hour (plus a step) of windows"
        );
        assert_eq!(
            Range::from_label("30d").and_then(Range::step),
            Some(("2h", 7_200_000))
        );
        assert_eq!(Range::H24.compare_step(), Some("5m"));
        assert_eq!(Range::M15.compare_step(), None);
    }
}
