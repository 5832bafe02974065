//! Share links made from the dashboard, for admins: the Share dialog's form and the body it
//! posts to `POST /api/v1/links` ([`ShareForm::body`]), the link's full address made from
//! the answer ([`share_url`], shown once), and the links `GET /api/v1/links` lists, as the
//! dialog describes them ([`SharedLink`]).
//!
//! Contract: pure, tested on the host. The dialog (`panels::share`) lays this out and the
//! requests go through `feeds::links`. What a link may open is the server's to decide
//! (`docs/access.md`, "Share links"): the form only refuses what it can tell is wrong
//! before asking (no name, a segment that does not read `DIMENSION:VALUE`) and otherwise
//! shows the server's `400` as it is.

use pulseboard_model::agg::Filter;
use serde::Deserialize;

use crate::{
    route::{Panel, Range},
    zone,
};

/// The page a share link opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LinkView {
    /// The dashboard (`/`), without the controls its scope refuses.
    #[default]
    Dashboard,
    /// The wall display (`/kiosk`).
    Kiosk,
    /// One panel alone (`/embed/<panel>`).
    Embed,
}

impl LinkView {
    /// Every view, in the order the form offers them.
    pub const ALL: [LinkView; 3] = [LinkView::Dashboard, LinkView::Kiosk, LinkView::Embed];

    /// Its name in the API (`view`): `dashboard`, `kiosk`, `embed`.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkView::Dashboard => "dashboard",
            LinkView::Kiosk => "kiosk",
            LinkView::Embed => "embed",
        }
    }

    /// The view called `name` in the API.
    pub fn from_name(name: &str) -> Option<LinkView> {
        LinkView::ALL.into_iter().find(|v| v.as_str() == name)
    }

    /// How the form names it.
    pub fn label(self) -> &'static str {
        match self {
            LinkView::Dashboard => "Dashboard",
            LinkView::Kiosk => "Wall display (kiosk)",
            LinkView::Embed => "One panel (embed)",
        }
    }
}

/// How long a new link works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expiry {
    /// Until revoked.
    #[default]
    Never,
    /// One day.
    Day,
    /// Seven days.
    Week,
    /// Thirty days.
    Month,
}

impl Expiry {
    /// Every choice, in the order the form offers them.
    pub const ALL: [Expiry; 4] = [Expiry::Never, Expiry::Day, Expiry::Week, Expiry::Month];

    /// The API's `expires_in` (`1d`, `7d`, `30d`); `None`: never.
    pub fn expires_in(self) -> Option<&'static str> {
        match self {
            Expiry::Never => None,
            Expiry::Day => Some("1d"),
            Expiry::Week => Some("7d"),
            Expiry::Month => Some("30d"),
        }
    }

    /// The value of its `<option>` (`never`, `1d`, `7d`, `30d`).
    pub fn value(self) -> &'static str {
        self.expires_in().unwrap_or("never")
    }

    /// The choice whose `<option>` value is `value`.
    pub fn from_value(value: &str) -> Option<Expiry> {
        Expiry::ALL.into_iter().find(|e| e.value() == value)
    }

    /// How the form names it.
    pub fn label(self) -> &'static str {
        match self {
            Expiry::Never => "Never",
            Expiry::Day => "In 1 day",
            Expiry::Week => "In 7 days",
            Expiry::Month => "In 30 days",
        }
    }
}

/// What the Share dialog's form holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareForm {
    /// Where the link is used (`lobby tv`); required.
    pub name: String,
    /// The page it opens.
    pub view: LinkView,
    /// The panel of an embed (ignored for the other views).
    pub panel: Panel,
    /// The segment, as typed (`country:DE`); empty: all traffic.
    pub filter: String,
    /// The site (`shop.example`); empty: every site.
    pub site: String,
    /// How far back it may look (the page opens at this range).
    pub range: Range,
    /// When it stops working.
    pub expiry: Expiry,
}

impl ShareForm {
    /// The form for what the admin is looking at: the page's segment and range, a
    /// dashboard, no expiry, no name yet.
    pub fn for_page(filter: Option<&Filter>, range: Range) -> ShareForm {
        ShareForm {
            name: String::new(),
            view: LinkView::default(),
            panel: Panel::Events,
            filter: filter.map(|f| f.to_string()).unwrap_or_default(),
            site: String::new(),
            range,
            expiry: Expiry::default(),
        }
    }

    /// The JSON body of `POST /api/v1/links`:
    /// `{"name","view","panel"?,"filter"?,"range","expires_in"?}`; `Err` says, for people,
    /// what to fix first.
    pub fn body(&self) -> Result<String, String> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err("Give the link a name, such as \"lobby tv\".".to_owned());
        }
        let filter = match self.filter.trim() {
            "" => None,
            f => Some(
                Filter::parse_registering(f)
                    .map_err(|e| format!("Segment: {e} (write DIMENSION:VALUE, or clear it)."))?
                    .to_string(),
            ),
        };
        let mut body = serde_json::json!({
            "name": name,
            "view": self.view.as_str(),
            "range": self.range.label(),
        });
        if self.view == LinkView::Embed {
            body["panel"] = self.panel.name().into();
        }
        if let Some(f) = filter {
            body["filter"] = f.into();
        }
        if !self.site.trim().is_empty() {
            body["site"] = self.site.trim().into();
        }
        if let Some(e) = self.expiry.expires_in() {
            body["expires_in"] = e.into();
        }
        Ok(body.to_string())
    }
}

/// The full address of a link from the page's `origin` (`https://stats.example.com`) and
/// the answer's `url` (`/s/<secret>`); a `url` that is already absolute stays as it is.
pub fn share_url(origin: &str, url: &str) -> String {
    if url.starts_with("http://") || url.starts_with("https://") {
        return url.to_owned();
    }
    let origin = origin.trim_end_matches('/');
    if url.starts_with('/') {
        format!("{origin}{url}")
    } else {
        format!("{origin}/{url}")
    }
}

/// `POST /api/v1/links`'s answer (`201`): the link, with its secret, shown once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CreatedLink {
    /// The secret (the link's id).
    pub id: String,
    /// Its path, `/s/<id>`.
    pub url: String,
    /// Its key, what it is listed and revoked by.
    pub key: String,
    /// Its name.
    pub name: String,
}

/// A link's scope as the list gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ListedScope {
    /// `kiosk`, `dashboard` or `embed`.
    pub view: String,
    /// The panel of an embed.
    pub panel: Option<String>,
    /// The segment (`country:DE`); none: all traffic.
    pub filter: Option<String>,
    /// The site; none: every site.
    pub site: Option<String>,
    /// How far back it may look (`1h`).
    pub range: String,
}

/// A row of `GET /api/v1/links` (newest first; no secret).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SharedLink {
    /// What it is revoked by (`DELETE /api/v1/links/<key>`).
    pub key: String,
    /// Its name.
    pub name: String,
    /// What it opens.
    pub scope: ListedScope,
    /// When it was made, ms since the epoch.
    pub created_ms: i64,
    /// When it stops working, if ever.
    pub expires_ms: Option<i64>,
    /// When it was revoked, if it was.
    pub revoked_ms: Option<i64>,
}

/// Whether a listed link still opens its view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// It works.
    Active,
    /// Its expiry has passed.
    Expired,
    /// It was revoked.
    Revoked,
}

impl SharedLink {
    /// Whether it still works at `now_ms`.
    pub fn state(&self, now_ms: i64) -> LinkState {
        if self.revoked_ms.is_some() {
            LinkState::Revoked
        } else if self.expires_ms.is_some_and(|e| e <= now_ms) {
            LinkState::Expired
        } else {
            LinkState::Active
        }
    }

    /// What it opens, for people: `Wall display · country = DE · 1h`,
    /// `Embed: events · all traffic · 15m`.
    pub fn opens(&self) -> String {
        let s = &self.scope;
        let view = match (LinkView::from_name(&s.view), s.panel.as_deref()) {
            (Some(LinkView::Embed), Some(p)) => format!("Embed: {p}"),
            (Some(LinkView::Kiosk), _) => "Wall display".to_owned(),
            (Some(v), _) => v.label().to_owned(),
            (None, _) => s.view.clone(),
        };
        let segment = match s.filter.as_deref().filter(|f| !f.is_empty()) {
            None => "all traffic".to_owned(),
            Some(f) => Filter::parse_registering(f)
                .map(|f| crate::figures::filter_label(&f))
                .unwrap_or_else(|_| f.to_owned()),
        };
        match s.site.as_deref().filter(|x| !x.is_empty()) {
            Some(site) => format!("{view} · {site} · {segment} · {}", s.range),
            None => format!("{view} · {segment} · {}", s.range),
        }
    }

    /// When it ends, for people, on a clock `offset_ms` ahead of UTC: `revoked`,
    /// `expired 7 Dec 14:05`, `expires 7 Dec 14:05`, `never expires`.
    pub fn expiry_text(&self, now_ms: i64, offset_ms: i64) -> String {
        let at = |ms: i64| {
            format!(
                "{} {}",
                zone::calendar_day(ms, offset_ms, false),
                zone::clock_time(ms, offset_ms, false)
            )
        };
        match (self.state(now_ms), self.expires_ms) {
            (LinkState::Revoked, _) => "revoked".to_owned(),
            (LinkState::Expired, Some(e)) => format!("expired {}", at(e)),
            (_, Some(e)) => format!("expires {}", at(e)),
            (_, None) => "never expires".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(s: &str) -> serde_json::Value {
        serde_json::from_str(s).expect("json")
    }

    #[test]
    fn the_form_starts_from_the_page_segment_and_range() {
        let de = Filter::parse("country:DE").expect("filter");
        let f = ShareForm::for_page(Some(&de), Range::H1);
        assert_eq!(f.filter, "country:DE");
        assert_eq!(f.range, Range::H1);
        assert_eq!(f.view, LinkView::Dashboard);
        assert_eq!(f.expiry, Expiry::Never);
        assert!(f.name.is_empty());
        assert_eq!(ShareForm::for_page(None, Range::M15).filter, "");
    }

    #[test]
    fn a_kiosk_link_body_holds_its_segment_range_and_expiry() {
        let de = Filter::parse("country:DE").expect("filter");
        let mut f = ShareForm::for_page(Some(&de), Range::H1);
        f.name = "  lobby tv ".into();
        f.view = LinkView::Kiosk;
        f.expiry = Expiry::Week;
        assert_eq!(
            json(&f.body().expect("body")),
            json(
                r#"{"name":"lobby tv","view":"kiosk","filter":"country:DE","range":"1h",
                    "expires_in":"7d"}"#
            )
        );
        f.site = " shop.example ".into();
        assert_eq!(
            json(&f.body().expect("body"))["site"],
            serde_json::json!("shop.example")
        );
    }

    #[test]
    fn only_an_embed_names_its_panel_and_no_segment_or_expiry_is_left_out() {
        let mut f = ShareForm::for_page(None, Range::M15);
        f.name = "intranet".into();
        f.view = LinkView::Embed;
        f.panel = Panel::Referrers;
        f.filter = "   ".into();
        assert_eq!(
            json(&f.body().expect("body")),
            json(r#"{"name":"intranet","view":"embed","panel":"referrers","range":"15m"}"#)
        );
        f.view = LinkView::Dashboard;
        assert_eq!(
            json(&f.body().expect("body")),
            json(r#"{"name":"intranet","view":"dashboard","range":"15m"}"#)
        );
    }

    #[test]
    fn a_link_needs_a_name_and_a_segment_that_reads() {
        let mut f = ShareForm::for_page(None, Range::H24);
        assert!(f.body().expect_err("no name").contains("name"));
        f.name = "x".into();
        f.filter = "nonsense".into();
        assert!(f.body().expect_err("bad filter").starts_with("Segment"));
        f.filter = "device:mobile".into();
        assert!(f.body().is_ok());
        // What the body carries is escaped JSON, whatever the name holds.
        f.name = "a \"b\" \\ c".into();
        assert_eq!(json(&f.body().expect("body"))["name"], "a \"b\" \\ c");
    }

    #[test]
    fn expiries_map_to_the_api_durations() {
        let got: Vec<_> = Expiry::ALL.iter().map(|e| e.expires_in()).collect();
        assert_eq!(got, [None, Some("1d"), Some("7d"), Some("30d")]);
        for e in Expiry::ALL {
            assert_eq!(Expiry::from_value(e.value()), Some(e));
        }
        for v in LinkView::ALL {
            assert_eq!(LinkView::from_name(v.as_str()), Some(v));
        }
    }

    #[test]
    fn the_full_url_joins_the_origin_and_the_path() {
        assert_eq!(
            share_url("http://127.0.0.1:8080", "/s/abc"),
            "http://127.0.0.1:8080/s/abc"
        );
        assert_eq!(
            share_url("https://stats.example.com/", "/s/abc"),
            "https://stats.example.com/s/abc"
        );
        assert_eq!(share_url("https://x.io", "s/abc"), "https://x.io/s/abc");
        assert_eq!(
            share_url("https://x.io", "https://y.io/s/abc"),
            "https://y.io/s/abc"
        );
    }

    #[test]
    fn listed_links_say_what_they_open_and_when_they_end() {
        let list: Vec<SharedLink> = serde_json::from_str(
            r#"[{"key":"k2","name":"intranet","scope":{"view":"embed","panel":"events",
                 "range":"15m"},"created_ms":5,"expires_ms":86400000},
                {"key":"k1","name":"lobby","scope":{"view":"kiosk","filter":"country:DE",
                 "range":"1h"},"created_ms":1,"revoked_ms":9},
                {"key":"k0","name":"old","scope":{"view":"dashboard","range":"24h"},
                 "created_ms":0}]"#,
        )
        .expect("list");
        assert_eq!(list[0].opens(), "Embed: events · all traffic · 15m");
        assert_eq!(list[1].opens(), "Wall display · country = DE · 1h");
        assert_eq!(list[2].opens(), "Dashboard · all traffic · 24h");

        assert_eq!(list[0].state(0), LinkState::Active);
        assert_eq!(list[0].expiry_text(0, 0), "expires 2 Jan 00:00");
        assert_eq!(list[0].expiry_text(0, 3_600_000), "expires 2 Jan 01:00");
        assert_eq!(list[0].state(86_400_000), LinkState::Expired);
        assert_eq!(list[0].expiry_text(86_400_000, 0), "expired 2 Jan 00:00");
        assert_eq!(list[1].state(0), LinkState::Revoked);
        assert_eq!(list[1].expiry_text(0, 0), "revoked");
        assert_eq!(list[2].expiry_text(0, 0), "never expires");
    }

    #[test]
    fn the_created_answer_reads_with_its_url() {
        let c: CreatedLink = serde_json::from_str(
            r#"{"id":"sec","url":"/s/sec","key":"0123456789abcdef","name":"lobby",
                "scope":{"view":"kiosk","range":"1h"},"created_ms":1}"#,
        )
        .expect("created");
        assert_eq!(c.url, "/s/sec");
        assert_eq!(c.key, "0123456789abcdef");
    }
}
