//! The segment tables' rules: dimensions, referrer domains, filters, and which values keep a sub-aggregate.

use super::*;
use crate::agg::AggSpec;

#[test]
fn referrer_domains_are_hosts_without_www_port_or_case() {
    for (r, want) in [
        ("https://www.Google.com/search?q=x", Some("google.com")),
        (
            "https://news.ycombinator.com/item?id=1",
            Some("news.ycombinator.com"),
        ),
        ("http://user:pw@example.org:8080/a", Some("example.org")),
        (
            "android-app://com.google.android.gm/",
            Some("com.google.android.gm"),
        ),
        ("news.example/path", Some("news.example")),
        ("//cdn.example/x", Some("cdn.example")),
        ("https://[::1]:8443/", Some("[::1]")),
        ("https://[::1/", None),
        ("https://www./", Some("www")),
        ("https://example.com./", Some("example.com")),
        ("", None),
        ("https:///nohost", None),
    ] {
        assert_eq!(referrer_domain(r).as_deref(), want, "{r}");
    }
    assert!(matches!(
        referrer_domain("https://t.co/x"),
        Some(Cow::Borrowed("t.co"))
    ));
}

#[test]
fn filters_parse_and_print() {
    let f = Filter::parse("country:DE").expect("filter");
    assert_eq!((f.dimension, f.value.as_str()), (Dimension::Country, "DE"));
    assert_eq!(f.to_string(), "country:DE");
    let f = Filter::parse("referrer:https://www.reddit.com/r/rust").expect("url");
    assert_eq!(f.to_string(), "referrer:reddit.com");
    let f = Filter::parse("type:a:b").expect("colons in the value");
    assert_eq!(f.value, "a:b");
    assert!(Filter::parse("device:(other)").expect("other").is_other());
    assert_eq!(Filter::parse("DE"), Err(FilterError::Syntax("DE".into())));
    assert_eq!(
        Filter::parse("city:Berlin"),
        Err(FilterError::Dimension("city".into()))
    );
    assert_eq!(
        Filter::parse("country:"),
        Err(FilterError::EmptyValue(Dimension::Country))
    );
    assert!(Filter::parse(&format!("type:{}", "x".repeat(3000))).is_err());
    for d in Dimension::ALL {
        assert_eq!(Dimension::from_name(d.name()), Some(d));
    }
}

/// Events of `country` (one each), in order.
fn of_countries(countries: &[&str]) -> Vec<Event> {
    countries
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut e = crate::agg::tests::ev("pageview", &format!("v{i}"), None, "/", None);
            e.country = Some((*c).into());
            e
        })
        .collect()
}

fn members(a: &Aggregate) -> Vec<String> {
    a.segments
        .table(Dimension::Country)
        .map(|t| t.values().map(|(k, _)| k.to_owned()).collect())
        .unwrap_or_default()
}

#[test]
fn members_and_challengers_are_judged_by_their_counts_in_the_window_alike() {
    let spec = AggSpec {
        max_sites: 0,
        segments: SegmentSpec {
            dimensions: vec![Dimension::Country],
            top_n: 2,
        },
        goals: Vec::new(),
    };
    let mut a = Aggregate::new();
    for e in of_countries(&["A", "B", "C", "C", "C"]) {
        a.add_with(&e, &spec);
    }
    // C (3 in the window) took the place of the larger key of A and B (1 each).
    assert_eq!(members(&a), ["A", "C"]);
    for e in of_countries(&["D", "D", "D"]) {
        a.add_with(&e, &spec);
    }
    // D (3) takes A's place (1), not that of C, whose sub-aggregate is young (1 event)
    // but which has 3 in the window.
    assert_eq!(members(&a), ["C", "D"]);
    // Another value reaching 2 in the window is not enough against 3: it stays in "other".
    for e in of_countries(&["E", "E"]) {
        a.add_with(&e, &spec);
    }
    assert_eq!(members(&a), ["C", "D"]);
    let t = a.segments.table(Dimension::Country).expect("table");
    let held: u64 = t.values().map(|(_, s)| s.events).sum::<u64>() + t.other().events;
    assert_eq!(held, a.events, "every event in a member or in other");
}
