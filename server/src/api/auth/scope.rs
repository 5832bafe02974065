//! A share link's scope, held on every request it makes: [`confine`] checks the query
//! against the link's [`Scope`] and rewrites it to exactly what was checked, so that the
//! handler reads nothing else (a parameter the check did not see cannot reach it).
//!
//! Rules: the segment is the link's (`filter` absent: the link's is put in; another:
//! `403`), and so is the site (`site`, the same way); nothing before the link's range (`from`, `at`, `range` reaching further back
//! than `range` before now, give or take a tenth for the pages' alignment: `403`); no
//! `compare` (`403`); on the socket, only `since` and `every` are kept beside the filter.

use axum::http::uri::{PathAndQuery, Uri};
use pulseboard_model::time::parse_duration_ms;

use crate::access::Scope;
use crate::api::error::ApiError;
use crate::api::params::{resolve_range, time_param, RangeParams};

fn refuse(parameter: &'static str, message: String) -> ApiError {
    ApiError::Refused {
        status: axum::http::StatusCode::FORBIDDEN,
        parameter: Some(parameter),
        message,
    }
}

/// The query `route` may be called with under `scope` at `now_ms`, rewritten, or why not.
pub fn confine(uri: &Uri, route: &str, scope: &Scope, now_ms: i64) -> Result<Uri, ApiError> {
    let query = uri.query().unwrap_or_default();
    let mut out = form_urlencoded::Serializer::new(String::new());
    if route == "/ws" {
        let mut seen = Vec::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            if seen.contains(&k) {
                return Err(refuse("query", format!("{k} is given more than once")));
            }
            match k.as_ref() {
                "since" | "every" => {
                    out.append_pair(&k, &v);
                }
                "filter" if !v.is_empty() => check_filter(Some(&v), scope)?,
                "site" if !v.is_empty() => check_site(Some(&v), scope)?,
                _ => {}
            }
            seen.push(k);
        }
        if let Some(f) = &scope.filter {
            out.append_pair("filter", f);
        }
        if let Some(s) = &scope.site {
            out.append_pair("site", s);
        }
        return with_query(uri, &out.finish());
    }
    let mut p = RangeParams::parse(query)?;
    let given = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    check_filter(p.filter.as_deref().filter(|s| !s.is_empty()), scope)?;
    check_site(p.site.as_deref().filter(|s| !s.is_empty()), scope)?;
    if given(&p.compare) {
        return Err(refuse(
            "compare",
            "a share link shows its range only, without a comparison".into(),
        ));
    }
    let range_ms = scope.range_ms();
    let earliest = now_ms - range_ms - (range_ms / 10).max(60_000);
    if let Some(r) = p.range.as_deref().filter(|s| !s.is_empty()) {
        if parse_duration_ms(r).is_ok_and(|ms| ms > range_ms + range_ms / 10) {
            return Err(refuse(
                "range",
                format!("range={r}: this link shows at most {}", scope.range),
            ));
        }
    }
    if matches!(
        route,
        "/api/v1/windows" | "/api/v1/summary" | "/api/v1/export" | "/api/v1/annotations"
    ) {
        if !given(&p.from) && !given(&p.range) {
            p.range = Some(scope.range.clone());
        }
        let (from, _) = resolve_range(&p, range_ms)?;
        if from < earliest {
            return Err(refuse(
                "from",
                format!("this link shows the last {} only", scope.range),
            ));
        }
    }
    if time_param("at", &p.at)?.is_some_and(|at| at < earliest) {
        return Err(refuse(
            "at",
            format!("this link shows the last {} only", scope.range),
        ));
    }
    p.filter = scope.filter.clone();
    p.site = scope.site.clone();
    for (k, v) in [
        ("from", &p.from),
        ("to", &p.to),
        ("limit", &p.limit),
        ("top", &p.top),
        ("range", &p.range),
        ("filter", &p.filter),
        ("site", &p.site),
        ("at", &p.at),
        ("step", &p.step),
        ("property", &p.property),
        ("format", &p.format),
        ("dimension", &p.dimension),
    ] {
        if let Some(v) = v.as_deref().filter(|s| !s.is_empty()) {
            out.append_pair(k, v);
        }
    }
    with_query(uri, &out.finish())
}

fn check_filter(asked: Option<&str>, scope: &Scope) -> Result<(), ApiError> {
    let own = scope.filter.as_deref();
    check_pinned(
        "filter",
        asked,
        own,
        ("the segment", "all traffic, not a segment of it"),
    )
}

fn check_site(asked: Option<&str>, scope: &Scope) -> Result<(), ApiError> {
    let own = scope.site.as_deref();
    check_pinned(
        "site",
        asked,
        own,
        ("the site", "every site, not one of them"),
    )
}

/// `asked` (the query's `parameter`) is the link's own value (`own`; none: none may be
/// asked), or a `403` saying what the link shows: `{one} {own} only`, or `{all}`.
fn check_pinned(
    parameter: &'static str,
    asked: Option<&str>,
    own: Option<&str>,
    (one, all): (&str, &str),
) -> Result<(), ApiError> {
    match asked {
        Some(a) if Some(a) != own => Err(refuse(
            parameter,
            match own {
                Some(own) => format!("this link shows {one} {own} only"),
                None => format!("this link shows {all}"),
            },
        )),
        _ => Ok(()),
    }
}

fn with_query(uri: &Uri, query: &str) -> Result<Uri, ApiError> {
    let pq = if query.is_empty() {
        uri.path().to_owned()
    } else {
        format!("{}?{query}", uri.path())
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::try_from(pq).map_err(|e| ApiError::BadParam {
        parameter: "query",
        message: format!("the query cannot be rewritten: {e}"),
    })?);
    Uri::from_parts(parts).map_err(|e| ApiError::BadParam {
        parameter: "query",
        message: format!("the query cannot be rewritten: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::View;

    const NOW: i64 = 1_700_000_000_000;

    fn scope(filter: Option<&str>) -> Scope {
        Scope {
            view: View::Kiosk,
            panel: None,
            filter: filter.map(str::to_owned),
            site: None,
            range: "1h".into(),
        }
    }

    fn run(uri: &str, route: &str, filter: Option<&str>) -> Result<String, (u16, String)> {
        let uri: Uri = uri.parse().expect("uri");
        confine(&uri, route, &scope(filter), NOW)
            .map(|u| u.to_string())
            .map_err(|e| {
                let r = axum::response::IntoResponse::into_response(e);
                (r.status().as_u16(), format!("{r:?}"))
            })
    }

    #[test]
    fn the_links_segment_is_put_in_and_no_other_gets_through() {
        let de = Some("country:DE");
        assert_eq!(
            run("/api/v1/summary?range=15m", "/api/v1/summary", de).as_deref(),
            Ok("/api/v1/summary?range=15m&filter=country%3ADE")
        );
        assert_eq!(
            run("/api/v1/now", "/api/v1/now", de).as_deref(),
            Ok("/api/v1/now?filter=country%3ADE")
        );
        assert_eq!(
            run("/api/v1/now?filter=country:DE", "/api/v1/now", de).as_deref(),
            Ok("/api/v1/now?filter=country%3ADE")
        );
        for escape in [
            "/api/v1/now?filter=country:FR",
            "/api/v1/now?filter=country%3AFR",
            "/api/v1/now?fil%74er=country:FR",
            "/api/v1/now?filter=country:DE&filter=country:FR",
            "/api/v1/now?filter=Country:DE",
        ] {
            let r = run(escape, "/api/v1/now", de);
            assert!(matches!(r, Err((400 | 403, _))), "{escape}: {r:?}");
        }
        // A link for all traffic reads no segment.
        assert!(matches!(
            run("/api/v1/now?filter=country:DE", "/api/v1/now", None),
            Err((403, _))
        ));
        assert_eq!(
            run("/api/v1/status?token=x&junk=1", "/api/v1/status", None).as_deref(),
            Ok("/api/v1/status")
        );
    }

    #[test]
    fn the_links_site_is_put_in_and_no_other_gets_through() {
        let shop = Scope {
            site: Some("shop.example".into()),
            ..scope(None)
        };
        let go = |uri: &str, route: &str, scope: &Scope| {
            confine(&uri.parse().expect("uri"), route, scope, NOW).map(|u| u.to_string())
        };
        assert_eq!(
            go("/api/v1/summary?range=15m", "/api/v1/summary", &shop)
                .ok()
                .as_deref(),
            Some("/api/v1/summary?range=15m&site=shop.example")
        );
        assert_eq!(
            go("/ws?since=4&site=shop.example", "/ws", &shop)
                .ok()
                .as_deref(),
            Some("/ws?since=4&site=shop.example")
        );
        assert_eq!(
            go("/ws", "/ws", &shop).ok().as_deref(),
            Some("/ws?site=shop.example")
        );
        for escape in [
            "/api/v1/summary?site=blog.example",
            "/api/v1/summary?site=%62log.example",
            "/api/v1/summary?site=shop.example&site=blog.example",
            "/api/v1/summary?site=(other%20sites)",
            "/api/v1/summary?site=Shop.example",
        ] {
            let r = go(escape, "/api/v1/summary", &shop);
            assert!(r.is_err(), "{escape}: {r:?}");
        }
        assert!(go("/ws?site=blog.example", "/ws", &shop).is_err());
        // A link of every site reads no one site (nor "(other sites)").
        let all = scope(None);
        for escape in [
            "/api/v1/now?site=shop.example",
            "/api/v1/now?site=(other%20sites)",
        ] {
            assert!(go(escape, "/api/v1/now", &all).is_err(), "{escape}");
        }
        assert!(go("/ws?site=shop.example", "/ws", &all).is_err());
    }

    #[test]
    fn nothing_older_than_the_links_range_and_no_comparison() {
        let hour_ago = NOW - 3_600_000;
        let ok = format!("/api/v1/windows?from={hour_ago}&to={NOW}&limit=10000");
        assert_eq!(
            run(&ok, "/api/v1/windows", None).as_deref(),
            Ok(format!("/api/v1/windows?from={hour_ago}&to={NOW}&limit=10000").as_str())
        );
        assert_eq!(
            run("/api/v1/windows", "/api/v1/windows", None).as_deref(),
            Ok("/api/v1/windows?range=1h")
        );
        let day_ago = NOW - 86_400_000;
        for escape in [
            format!("/api/v1/windows?from={day_ago}"),
            format!("/api/v1/windows?to={hour_ago}"),
            "/api/v1/summary?range=24h".to_owned(),
            "/api/v1/summary?range=15m&compare=1d".to_owned(),
            "/api/v1/windows?from=2023-11-13T00:00:00Z".to_owned(),
            format!("/api/v1/now?at={day_ago}"),
            format!("/api/v1/annotations?from={day_ago}&to={NOW}"),
        ] {
            let route = escape.split('?').next().unwrap_or_default().to_owned();
            let r = run(&escape, &route, None);
            assert!(matches!(r, Err((403, _))), "{escape}: {r:?}");
        }
    }

    #[test]
    fn the_socket_keeps_its_resume_and_pace_and_takes_the_links_segment() {
        assert_eq!(
            run("/ws?since=5&every=500&token=t", "/ws", Some("country:DE")).as_deref(),
            Ok("/ws?since=5&every=500&filter=country%3ADE")
        );
        assert!(matches!(
            run("/ws?filter=country:FR", "/ws", Some("country:DE")),
            Err((403, _))
        ));
        assert!(matches!(
            run("/ws?since=1&since=2", "/ws", None),
            Err((403, _))
        ));
        assert_eq!(run("/ws", "/ws", None).as_deref(), Ok("/ws"));
    }
}
