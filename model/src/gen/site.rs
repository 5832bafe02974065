//! The simulated site: its pages (fixed top pages, then docs pages, then blog posts), and
//! the referrers, countries and devices of its visitors with their weights.
//!
//! Contract: everything here is fixed data or a pure function of its arguments; the
//! generator draws from it with its own seeded RNG. [`page_paths`] lists distinct paths,
//! `/` first; [`countries`] and [`referrers`] list the weighted ones below, cut or
//! lengthened to the number asked (more countries and referrers come with weight 1 each, a
//! long tail; the defaults, the lists' own lengths, give the lists unchanged).

const FIXED_PAGES: &[&str] = &[
    "/",
    "/pricing",
    "/docs/getting-started",
    "/features",
    "/blog",
    "/signup",
    "/login",
    "/docs",
    "/about",
    "/integrations",
    "/changelog",
    "/contact",
    "/careers",
    "/security",
    "/customers",
    "/docs/api",
    "/status",
    "/legal/privacy",
    "/legal/terms",
    "/enterprise",
];

const DOC_SECTIONS: &[&str] = &[
    "guides",
    "api",
    "sdk",
    "deploy",
    "reference",
    "tutorials",
    "concepts",
    "faq",
];
const DOC_TOPICS: &[&str] = &[
    "authentication",
    "webhooks",
    "rate-limits",
    "pagination",
    "errors",
    "dashboards",
    "alerts",
    "exports",
    "kafka",
    "retention",
    "sampling",
    "teams",
];
const BLOG_WORDS_A: &[&str] = &[
    "why",
    "how",
    "scaling",
    "building",
    "shipping",
    "measuring",
    "debugging",
    "rethinking",
    "understanding",
    "launching",
];
const BLOG_WORDS_B: &[&str] = &[
    "real-time-analytics",
    "event-pipelines",
    "hyperloglog",
    "watermarks",
    "rust-services",
    "dashboards",
    "kafka-consumers",
    "privacy-first-tracking",
    "product-metrics",
    "streaming-joins",
];

pub(super) const REFERRERS: &[(Option<&str>, u32)] = &[
    (None, 40),
    (Some("https://www.google.com/"), 28),
    (Some("https://news.ycombinator.com/"), 8),
    (Some("https://twitter.com/"), 6),
    (Some("https://github.com/"), 6),
    (Some("https://www.reddit.com/"), 4),
    (Some("https://www.bing.com/"), 3),
    (Some("https://duckduckgo.com/"), 2),
    (Some("https://www.linkedin.com/"), 2),
    (Some("https://t.co/"), 1),
];

pub(super) const COUNTRIES: &[(&str, u32)] = &[
    ("US", 32),
    ("DE", 10),
    ("GB", 9),
    ("FR", 6),
    ("IN", 8),
    ("BR", 5),
    ("JP", 4),
    ("CA", 5),
    ("NL", 3),
    ("ES", 3),
    ("AU", 3),
    ("SE", 2),
    ("PL", 2),
    ("IT", 3),
    ("KR", 2),
    ("MX", 3),
];

/// Real country codes the list above lacks: the long tail of [`countries`].
const MORE_COUNTRIES: &[&str] = &[
    "AR", "AT", "BE", "CH", "CL", "CN", "CO", "CZ", "DK", "EG", "FI", "GR", "HK", "HU", "ID", "IE",
    "IL", "KE", "MY", "NG", "NO", "NZ", "PE", "PH", "PK", "PT", "RO", "SA", "SG", "TH", "TR", "TW",
    "UA", "VN", "ZA", "AE", "BG", "HR", "LT", "LV", "EE", "SK", "SI", "RS", "IS", "LU", "MA", "TN",
    "UY", "EC", "BD", "LK", "NP", "KZ", "GE", "AM", "CR", "PA", "DO", "GT",
];

/// The first `n` of [`COUNTRIES`], then (beyond its length) the codes of `MORE_COUNTRIES`,
/// then numbered ones (`Q0`, `Q1`, ...), weight 1 each.
pub(super) fn countries(n: usize) -> Vec<(String, u32)> {
    let more = MORE_COUNTRIES
        .iter()
        .map(|c| (*c).to_owned())
        .chain((0..).map(|i| format!("Q{i}")));
    COUNTRIES
        .iter()
        .map(|(c, w)| ((*c).to_owned(), *w))
        .chain(more.map(|c| (c, 1)))
        .take(n.max(1))
        .collect()
}

/// The first `n` of [`REFERRERS`] (no referrer first), then more sites
/// (`https://www.site-<i>.example/`), weight 1 each.
pub(super) fn referrers(n: usize) -> Vec<(Option<String>, u32)> {
    let more = (0..).map(|i| (Some(format!("https://www.site-{i}.example/")), 1));
    REFERRERS
        .iter()
        .map(|(r, w)| (r.map(str::to_owned), *w))
        .chain(more)
        .take(n.max(1))
        .collect()
}

pub(super) const DEVICES: &[(&str, u32)] = &[("desktop", 55), ("mobile", 40), ("tablet", 5)];

pub(super) fn weighted<T>(items: &[(T, u32)], mut r: u32) -> &T {
    for (item, w) in items {
        if r < *w {
            return item;
        }
        r -= w;
    }
    &items[items.len() - 1].0
}

pub(super) fn total_weight<T>(items: &[(T, u32)]) -> u32 {
    items.iter().map(|(_, w)| w).sum()
}

/// Deterministic page list: fixed top pages, then docs pages, then blog posts.
pub(super) fn page_paths(n: usize) -> Vec<String> {
    let mut out: Vec<String> = FIXED_PAGES
        .iter()
        .take(n)
        .map(|s| (*s).to_owned())
        .collect();
    let mut i = 0usize;
    while out.len() < n {
        let path = if i % 3 == 2 {
            let j = i / 3;
            let a = BLOG_WORDS_A[j % BLOG_WORDS_A.len()];
            let b = BLOG_WORDS_B[(j / BLOG_WORDS_A.len()) % BLOG_WORDS_B.len()];
            let round = j / (BLOG_WORDS_A.len() * BLOG_WORDS_B.len());
            if round == 0 {
                format!("/blog/{a}-{b}")
            } else {
                format!("/blog/{a}-{b}-{round}")
            }
        } else {
            let j = i - i / 3;
            let s = DOC_SECTIONS[j % DOC_SECTIONS.len()];
            let t = DOC_TOPICS[(j / DOC_SECTIONS.len()) % DOC_TOPICS.len()];
            let round = j / (DOC_SECTIONS.len() * DOC_TOPICS.len());
            if round == 0 {
                format!("/docs/{s}/{t}")
            } else {
                format!("/docs/{s}/{t}-v{round}")
            }
        };
        out.push(path);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn page_paths_are_unique() {
        let p = page_paths(2_000);
        let set: HashSet<&String> = p.iter().collect();
        assert_eq!(set.len(), p.len());
        assert_eq!(p[0], "/");
    }

    #[test]
    fn the_default_lists_are_the_weighted_ones_and_more_are_distinct() {
        let c = countries(COUNTRIES.len());
        assert!(c
            .iter()
            .zip(COUNTRIES)
            .all(|(a, b)| a.0 == b.0 && a.1 == b.1));
        let r = referrers(REFERRERS.len());
        assert!(r
            .iter()
            .zip(REFERRERS)
            .all(|(a, b)| a.0.as_deref() == b.0 && a.1 == b.1));
        for n in [60, 200] {
            let set: HashSet<String> = countries(n).into_iter().map(|c| c.0).collect();
            assert_eq!(set.len(), n);
        }
        let set: HashSet<Option<String>> = referrers(40).into_iter().map(|r| r.0).collect();
        assert_eq!(set.len(), 40);
    }
}
