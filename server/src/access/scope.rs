//! What a share link opens and may read: its [`Scope`].

use pulseboard_model::time::parse_duration_ms;
use serde::{Deserialize, Serialize};

use super::AccessError;

/// The page a share link opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum View {
    /// The full-screen wall display, `/kiosk`.
    Kiosk,
    /// The dashboard, `/`.
    Dashboard,
    /// One panel, `/embed/<panel>`.
    Embed,
}

/// The panels an embed can show (`/embed/<panel>`).
pub const PANELS: &[&str] = &[
    "events",
    "totals",
    "now",
    "goals",
    "pages",
    "referrers",
    "countries",
    "devices",
    "types",
    "properties",
    "status",
];

/// The longest look back a link may give.
pub const MAX_RANGE_MS: i64 = 35 * 86_400_000;

/// A share link's view: the page it opens and what that page may read. The server holds
/// every request made with the link to it: the segment `filter` (none: all traffic, and no
/// other segment) of the `site` (none: every site, and no one of them), windows no older than `range` before now, no comparison with an earlier
/// period, and only the API the page needs (windows, summary, visitors now, what is
/// segmented, status, annotations, the socket).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Scope {
    pub view: View,
    /// The panel of an embed (one of [`PANELS`]).
    #[serde(default)]
    pub panel: Option<String>,
    /// The segment, as the API's `filter` (`DIMENSION:VALUE`); none: all traffic.
    #[serde(default)]
    pub filter: Option<String>,
    /// The site, as the API's `site`; none: every site (and no one site of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// How far back the link may look, e.g. `1h` (the page's range).
    pub range: String,
}

impl Scope {
    /// Check a scope as an admin gave it; the range must parse and be at most 35 days,
    /// an embed must name one of [`PANELS`] and nothing else may.
    pub fn validate(&self) -> Result<(), AccessError> {
        if let Some(s) = &self.site {
            if s.is_empty() || s.len() > pulseboard_model::event::MAX_FIELD_BYTES {
                return Err(AccessError::Invalid(
                    "site",
                    format!("{s:?}: a site's name, 1 to 2048 bytes"),
                ));
            }
        }
        let ms = parse_duration_ms(&self.range)
            .map_err(|e| AccessError::Invalid("range", format!("{:?}: {e}", self.range)))?;
        if ms <= 0 || ms > MAX_RANGE_MS {
            return Err(AccessError::Invalid(
                "range",
                format!("{:?}: must be more than 0 and at most 35d", self.range),
            ));
        }
        match (self.view, self.panel.as_deref()) {
            (View::Embed, Some(p)) if PANELS.contains(&p) => Ok(()),
            (View::Embed, p) => Err(AccessError::Invalid(
                "panel",
                format!("{p:?}: an embed shows one of {}", PANELS.join(", ")),
            )),
            (_, Some(_)) => Err(AccessError::Invalid(
                "panel",
                "only an embed names a panel".into(),
            )),
            (_, None) => Ok(()),
        }
    }

    /// The look back, ms (a scope read from the store was validated when made).
    pub fn range_ms(&self) -> i64 {
        parse_duration_ms(&self.range).unwrap_or(3_600_000)
    }

    /// The page the link opens: path and query (the filter and the range).
    pub fn page(&self) -> String {
        let path = match (self.view, self.panel.as_deref()) {
            (View::Kiosk, _) => "/kiosk".to_owned(),
            (View::Dashboard, _) => "/".to_owned(),
            (View::Embed, p) => format!("/embed/{}", p.unwrap_or("events")),
        };
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(f) = &self.filter {
            q.append_pair("filter", f);
        }
        if let Some(s) = &self.site {
            q.append_pair("site", s);
        }
        q.append_pair("range", &self.range);
        format!("{path}?{}", q.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(view: View, panel: Option<&str>, range: &str) -> Scope {
        Scope {
            view,
            panel: panel.map(str::to_owned),
            filter: Some("country:DE".into()),
            site: None,
            range: range.into(),
        }
    }

    #[test]
    fn a_scope_is_checked_and_opens_its_page() {
        assert!(scope(View::Kiosk, None, "1h").validate().is_ok());
        assert!(scope(View::Embed, Some("events"), "15m").validate().is_ok());
        for bad in [
            scope(View::Kiosk, None, "36d"),
            scope(View::Kiosk, None, "soon"),
            scope(View::Kiosk, Some("events"), "1h"),
            scope(View::Embed, None, "1h"),
            scope(View::Embed, Some("../x"), "1h"),
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        assert_eq!(
            scope(View::Kiosk, None, "1h").page(),
            "/kiosk?filter=country%3ADE&range=1h"
        );
        assert_eq!(
            scope(View::Embed, Some("status"), "24h").page(),
            "/embed/status?filter=country%3ADE&range=24h"
        );
        assert_eq!(scope(View::Kiosk, None, "1h").range_ms(), 3_600_000);
        let shop = Scope {
            site: Some("shop.example".into()),
            ..scope(View::Kiosk, None, "1h")
        };
        assert_eq!(
            shop.page(),
            "/kiosk?filter=country%3ADE&site=shop.example&range=1h"
        );
        for bad in ["", &"x".repeat(2049)] {
            let s = Scope {
                site: Some(bad.to_owned()),
                ..shop.clone()
            };
            assert!(s.validate().is_err(), "{bad:?}");
        }
    }
}
