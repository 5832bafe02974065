//! Goals: which events count as a conversion, and what a window counts of them.
//!
//! Contract:
//! - A [`Goal`] is a name and a rule: an event type, a URL pattern, or both. [`Goal::parse`]
//!   reads the `--goal` syntax:
//!   - `signup`: the events of type `signup` (the name is the type);
//!   - `NAME=TYPE`: the events of type `TYPE`;
//!   - `NAME=type:TYPE,url:PATTERN,site:SITE` (any of the parts, in any order): events of
//!     that type on a URL the pattern matches, of that site; without `type:` a goal counts
//!     page views (type `pageview`), as a pageview goal does in Plausible.
//! - A [`UrlPattern`] matches the whole URL, `*` standing for any run of characters
//!   (`/pricing*`, `/docs/*/install`). Without a `?` the pattern is matched against the URL's
//!   path (query string and `#fragment` cut off), with one against the whole URL.
//! - Per window and goal, [`GoalCounts`] holds the completions (matching events, exact) and
//!   the converting visitors (a [`Hll`] of their visitors, at [`HLL_SUB_PRECISION`]: σ ≈
//!   1.6 %, see [`super::hll`]). The conversion rate over a window or a range is converting
//!   visitors ÷ unique visitors, both HyperLogLog estimates of the same range
//!   ([`conversion_rate`]). [`GoalCounts::merge`] is a commutative monoid, so over a range
//!   converting visitors are a merge, never a sum.
//! - At most [`MAX_GOALS`] goals; names are 1 to [`MAX_GOAL_NAME`] characters of letters,
//!   digits, `-`, `_` and `.`. Parse errors say what is wrong and how to write it.

use super::hll::{Hll, HLL_SUB_PRECISION};
use crate::event::Event;

/// Most goals a server counts (each adds a [`Hll`] to every window that has completions).
pub const MAX_GOALS: usize = 16;
/// Longest goal name.
pub const MAX_GOAL_NAME: usize = 64;

/// A `--goal` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("goal {spec:?}: {reason}; write `signup` (an event type), `NAME=TYPE`, or `NAME=type:TYPE,url:/path*` (and `,site:SITE` for one site)")]
pub struct GoalError {
    /// The goal as given.
    pub spec: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A URL pattern: literal text with `*` for any run of characters, matched against the whole
/// URL path (or the whole URL when the pattern has a `?`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlPattern {
    pattern: String,
    /// The literal pieces between the `*`s.
    pieces: Vec<String>,
    with_query: bool,
}

impl UrlPattern {
    /// A pattern; empty is an error.
    pub fn new(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty() {
            return Err("the URL pattern is empty".into());
        }
        Ok(UrlPattern {
            pattern: pattern.to_owned(),
            pieces: pattern.split('*').map(str::to_owned).collect(),
            with_query: pattern.contains('?'),
        })
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether `url` matches: anchored at both ends, `*` matching any run of characters.
    pub fn matches(&self, url: &str) -> bool {
        let subject = if self.with_query {
            url
        } else {
            url.split(['?', '#']).next().unwrap_or(url)
        };
        let (first, rest) = match self.pieces.split_first() {
            Some(x) => x,
            None => return subject.is_empty(),
        };
        let Some(mut tail) = subject.strip_prefix(first.as_str()) else {
            return false;
        };
        let Some((last, middle)) = rest.split_last() else {
            return tail.is_empty(); // no `*`: the whole subject is the literal
        };
        for piece in middle {
            match tail.find(piece.as_str()) {
                Some(i) => tail = &tail[i + piece.len()..],
                None => return false,
            }
        }
        tail.len() >= last.len() && tail.ends_with(last.as_str())
    }
}

/// A goal: what a conversion is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Goal {
    /// Its name (in the API and on the dashboard).
    pub name: String,
    /// The event type that completes it.
    pub kind: String,
    /// The URLs it is completed on (any when `None`).
    pub url: Option<UrlPattern>,
    /// The site it is completed on (any when `None`).
    pub site: Option<String>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_GOAL_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Goal {
    /// Reads a `--goal` (see the module docs for the forms).
    pub fn parse(spec: &str) -> Result<Goal, GoalError> {
        let err = |reason: &str| GoalError {
            spec: spec.to_owned(),
            reason: reason.to_owned(),
        };
        let spec_t = spec.trim();
        let (name, rule) = match spec_t.split_once('=') {
            Some((n, r)) => (n.trim(), Some(r.trim())),
            None => (spec_t, None),
        };
        if !valid_name(name) {
            return Err(err(&format!(
                "the name must be 1 to {MAX_GOAL_NAME} letters, digits, '-', '_' or '.'"
            )));
        }
        let Some(rule) = rule else {
            return Ok(Goal {
                name: name.to_owned(),
                kind: name.to_owned(),
                url: None,
                site: None,
            });
        };
        if rule.is_empty() {
            return Err(err("nothing after '='"));
        }
        if !["type:", "url:", "site:"]
            .iter()
            .any(|c| rule.starts_with(c))
        {
            // `NAME=TYPE`: the whole rule is the type.
            return Ok(Goal {
                name: name.to_owned(),
                kind: rule.to_owned(),
                url: None,
                site: None,
            });
        }
        let (mut kind, mut url, mut site) = (None, None, None);
        for part in rule.split(',') {
            let part = part.trim();
            let (key, value) = part.split_once(':').ok_or_else(|| {
                err(&format!(
                    "{part:?} is not `type:...`, `url:...` or `site:...`"
                ))
            })?;
            let value = value.trim();
            if value.is_empty() {
                return Err(err(&format!("`{key}:` has no value")));
            }
            match key.trim() {
                "type" if kind.is_none() => kind = Some(value.to_owned()),
                "url" if url.is_none() => url = Some(UrlPattern::new(value).map_err(|e| err(&e))?),
                "site" if site.is_none() => site = Some(value.to_owned()),
                "type" | "url" | "site" => return Err(err(&format!("`{key}:` is given twice"))),
                other => {
                    return Err(err(&format!(
                        "unknown condition `{other}:` (only `type:`, `url:` and `site:`)"
                    )))
                }
            }
        }
        Ok(Goal {
            name: name.to_owned(),
            kind: kind.unwrap_or_else(|| "pageview".to_owned()),
            url,
            site,
        })
    }

    /// Whether `ev` completes this goal.
    pub fn matches(&self, ev: &Event) -> bool {
        ev.kind == self.kind
            && self.url.as_ref().is_none_or(|p| p.matches(&ev.url))
            && self
                .site
                .as_ref()
                .is_none_or(|s| ev.site.as_deref() == Some(s.as_str()))
    }

    /// The rule in the `--goal` syntax: `type:signup`, `type:pageview,url:/pricing*`,
    /// `type:signup,site:shop.example`.
    pub fn rule(&self) -> String {
        let mut r = format!("type:{}", self.kind);
        if let Some(u) = &self.url {
            r.push_str(&format!(",url:{}", u.as_str()));
        }
        if let Some(s) = &self.site {
            r.push_str(&format!(",site:{s}"));
        }
        r
    }
}

/// Checks a list of goals: at most [`MAX_GOALS`], names unique.
pub fn check_goals(goals: &[Goal]) -> Result<(), GoalError> {
    if goals.len() > MAX_GOALS {
        return Err(GoalError {
            spec: goals
                .iter()
                .map(|g| g.name.as_str())
                .collect::<Vec<_>>()
                .join(";"),
            reason: format!("{} goals given, at most {MAX_GOALS}", goals.len()),
        });
    }
    for (i, g) in goals.iter().enumerate() {
        if goals[..i].iter().any(|h| h.name == g.name) {
            return Err(GoalError {
                spec: g.name.clone(),
                reason: "a goal of this name is given twice".into(),
            });
        }
    }
    Ok(())
}

/// One goal's counts in a window (or a merge of windows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoalCounts {
    /// Events that completed the goal.
    pub completions: u64,
    /// Distinct visitors among them (at [`HLL_SUB_PRECISION`]).
    pub visitors: Hll,
}

impl Default for GoalCounts {
    fn default() -> Self {
        GoalCounts {
            completions: 0,
            visitors: Hll::with_precision(HLL_SUB_PRECISION),
        }
    }
}

impl GoalCounts {
    /// Folds `other` into `self`.
    pub fn merge(&mut self, other: &GoalCounts) {
        self.completions = self.completions.saturating_add(other.completions);
        self.visitors.merge(&other.visitors);
    }
}

/// Converting visitors ÷ unique visitors, in `[0, 1]` (0 without visitors).
pub fn conversion_rate(converting: u64, visitors: u64) -> f64 {
    if visitors == 0 {
        0.0
    } else {
        (converting as f64 / visitors as f64).min(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, url: &str) -> Event {
        Event {
            kind: kind.into(),
            url: url.into(),
            visitor: "v".into(),
            ..Event::default()
        }
    }

    #[test]
    fn goal_forms_parse() {
        let g = Goal::parse("signup").expect("bare type");
        assert_eq!(
            (g.name.as_str(), g.kind.as_str(), g.url),
            ("signup", "signup", None)
        );
        let g = Goal::parse("trial=start_trial").expect("name=type");
        assert_eq!((g.name.as_str(), g.kind.as_str()), ("trial", "start_trial"));
        let g = Goal::parse("pricing=url:/pricing*").expect("url only");
        assert_eq!(g.kind, "pageview");
        assert_eq!(g.rule(), "type:pageview,url:/pricing*");
        let g = Goal::parse(" buy = url:/checkout , type:click ").expect("both, any order");
        assert_eq!(g.rule(), "type:click,url:/checkout");
        let g = Goal::parse("shop-signup=site:shop.example,type:signup").expect("a site's");
        assert_eq!(g.rule(), "type:signup,site:shop.example");
        let mut e = ev("signup", "/");
        assert!(!g.matches(&e), "an event of no site");
        e.site = Some("blog.example".into());
        assert!(!g.matches(&e), "another site's");
        e.site = Some("shop.example".into());
        assert!(g.matches(&e));
        assert!(Goal::parse("x=site:a,site:b").is_err());
        let g = Goal::parse("signed=type:Signed Up").expect("types may have spaces");
        assert_eq!(g.kind, "Signed Up");
    }

    #[test]
    fn bad_goals_say_what_is_wrong() {
        for (spec, says) in [
            ("", "name"),
            ("a b", "name"),
            ("x=", "nothing after"),
            ("x=type:", "no value"),
            ("x=type:a,type:b", "twice"),
            ("x=type:a,host:b", "unknown condition"),
            ("x=url:/a,nonsense", "is not"),
            (&"n".repeat(65), "name"),
        ] {
            let e = Goal::parse(spec).expect_err(spec).to_string();
            assert!(e.contains(says), "{spec:?}: {e}");
            assert!(e.contains("NAME=type:TYPE,url:/path*"), "{e}");
        }
        let two = [Goal::parse("a").unwrap(), Goal::parse("a=b").unwrap()];
        assert!(check_goals(&two).unwrap_err().to_string().contains("twice"));
        let many: Vec<Goal> = (0..=MAX_GOALS)
            .map(|i| Goal::parse(&format!("g{i}")).unwrap())
            .collect();
        assert!(check_goals(&many).is_err());
        assert!(check_goals(&many[..MAX_GOALS]).is_ok());
    }

    #[test]
    fn url_patterns_match_whole_paths_with_stars() {
        let p = |s: &str| UrlPattern::new(s).expect("pattern");
        assert!(p("/pricing").matches("/pricing"));
        assert!(p("/pricing").matches("/pricing?plan=pro"), "query cut off");
        assert!(p("/pricing").matches("/pricing#faq"));
        assert!(!p("/pricing").matches("/pricing/enterprise"));
        assert!(!p("/pricing").matches("/old/pricing"));
        assert!(p("/pricing*").matches("/pricing/enterprise"));
        assert!(p("/docs/*/install").matches("/docs/sdk/install"));
        assert!(!p("/docs/*/install").matches("/docs/sdk/install/more"));
        assert!(p("*").matches("/anything"));
        assert!(p("*/install").matches("/a/b/install"));
        assert!(!p("/a*a").matches("/a"), "pieces may not overlap");
        assert!(p("/a*a").matches("/aa"));
        assert!(
            p("/p?plan=*").matches("/p?plan=pro"),
            "with ? the query counts"
        );
        assert!(!p("/p?plan=*").matches("/p"));
        assert!(UrlPattern::new("").is_err());
    }

    #[test]
    fn goals_match_type_and_url() {
        let signup = Goal::parse("signup").unwrap();
        assert!(signup.matches(&ev("signup", "/signup")));
        assert!(!signup.matches(&ev("pageview", "/signup")));
        let pricing = Goal::parse("pricing=url:/pricing").unwrap();
        assert!(pricing.matches(&ev("pageview", "/pricing?x=1")));
        assert!(!pricing.matches(&ev("click", "/pricing")));
        assert_eq!(conversion_rate(0, 0), 0.0);
        assert_eq!(conversion_rate(1, 4), 0.25);
        assert_eq!(conversion_rate(5, 4), 1.0, "never above 1");
    }
}
