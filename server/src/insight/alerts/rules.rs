//! Alert rules: the TOML file, parsed and validated into [`Rule`]s.
//!
//! Contract:
//! - The file ([`parse_rules`]) holds an optional `webhook = "https://..."` for every rule
//!   and `[[rule]]` tables: `name`, `kind` (`events_above`, `events_below`, `drop`,
//!   `spike`, `dead_letters`, `lag`), `threshold`, and optionally `over` (the span
//!   evaluated, default one window), `suppress` (default 5m), `vs` (`drop`/`spike`: how far
//!   back, default 7d), `min_baseline` (`drop`/`spike`: events the earlier span must have,
//!   default 100), `site` (the event rules: count that site's events only) and `webhook`. Unknown keys, duplicate names, bad durations or URLs are
//!   refused with the reason.

use pulseboard_model::time::parse_duration_ms;
use serde::Deserialize;

/// Errors in a rules file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RulesError {
    #[error("the alert rules are not valid TOML: {0}")]
    Toml(String),
    #[error("alert rule {rule:?}: {reason}")]
    Rule { rule: String, reason: String },
    #[error("cannot read the alert rules file {path}: {reason}")]
    Read { path: String, reason: String },
}

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    EventsAbove,
    EventsBelow,
    Drop,
    Spike,
    DeadLetters,
    Lag,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::EventsAbove,
        Kind::EventsBelow,
        Kind::Drop,
        Kind::Spike,
        Kind::DeadLetters,
        Kind::Lag,
    ];

    /// Its name in the file and the API.
    pub fn name(self) -> &'static str {
        match self {
            Kind::EventsAbove => "events_above",
            Kind::EventsBelow => "events_below",
            Kind::Drop => "drop",
            Kind::Spike => "spike",
            Kind::DeadLetters => "dead_letters",
            Kind::Lag => "lag",
        }
    }

    /// Whether it counts events (and may name a site).
    pub(super) fn counts_events(self) -> bool {
        matches!(
            self,
            Kind::EventsAbove | Kind::EventsBelow | Kind::Drop | Kind::Spike
        )
    }

    pub(super) fn needs_span(self) -> bool {
        !matches!(self, Kind::Lag)
    }
}

/// One rule, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub kind: Kind,
    pub threshold: f64,
    pub over_ms: i64,
    pub suppress_ms: i64,
    pub vs_ms: i64,
    pub min_baseline: u64,
    /// The site whose events it counts (the event rules); none: every event.
    pub site: Option<String>,
    pub webhook: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    webhook: Option<String>,
    #[serde(default, rename = "rule")]
    rules: Vec<RuleDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDoc {
    name: String,
    kind: String,
    threshold: f64,
    over: Option<String>,
    suppress: Option<String>,
    vs: Option<String>,
    min_baseline: Option<u64>,
    site: Option<String>,
    webhook: Option<String>,
}

/// Parse and validate a rules file for windows of `window_ms`.
pub fn parse_rules(text: &str, window_ms: i64) -> Result<Vec<Rule>, RulesError> {
    let doc: FileDoc = toml::from_str(text).map_err(|e| RulesError::Toml(e.to_string()))?;
    let mut out: Vec<Rule> = Vec::new();
    for r in doc.rules {
        let fail = |reason: String| RulesError::Rule {
            rule: r.name.clone(),
            reason,
        };
        if r.name.trim().is_empty() {
            return Err(fail("give it a name".into()));
        }
        if out.iter().any(|o| o.name == r.name) {
            return Err(fail("two rules have this name".into()));
        }
        let kind = Kind::ALL
            .into_iter()
            .find(|k| k.name() == r.kind)
            .ok_or_else(|| {
                fail(format!(
                    "kind {:?} is unknown: use one of {}",
                    r.kind,
                    Kind::ALL.map(Kind::name).join(", ")
                ))
            })?;
        if !r.threshold.is_finite() || r.threshold < 0.0 {
            return Err(fail(format!(
                "threshold {} must be a number of at least 0",
                r.threshold
            )));
        }
        let dur = |field: &str, v: &Option<String>, default: i64| -> Result<i64, RulesError> {
            match v {
                None => Ok(default),
                Some(s) => match parse_duration_ms(s) {
                    Ok(ms) if ms > 0 => Ok(ms),
                    _ => Err(fail(format!(
                        "{field} = {s:?} is not a duration such as 1m, 15m, 1h, 7d"
                    ))),
                },
            }
        };
        let over_ms = dur("over", &r.over, window_ms)?;
        if over_ms < window_ms {
            return Err(fail(format!(
                "over must be at least one window ({window_ms} ms)"
            )));
        }
        let suppress_ms = dur("suppress", &r.suppress, 5 * 60_000)?;
        let vs_ms = dur("vs", &r.vs, 7 * 86_400_000)?;
        let site = match r.site.as_deref() {
            None => None,
            Some(s) if s.is_empty() || s.len() > pulseboard_model::event::MAX_FIELD_BYTES => {
                return Err(fail(format!("site {s:?} must be a site's name")))
            }
            Some(_) if !kind.counts_events() => {
                return Err(fail(format!(
                    "site applies to rules on events, not to {}",
                    kind.name()
                )))
            }
            Some(s) => Some(s.to_owned()),
        };
        let webhook = r.webhook.clone().or_else(|| doc.webhook.clone());
        if let Some(url) = &webhook {
            if !(url.starts_with("http://") || url.starts_with("https://"))
                || reqwest::Url::parse(url).is_err()
            {
                return Err(fail(format!(
                    "webhook {url:?} is not an http:// or https:// URL"
                )));
            }
        }
        out.push(Rule {
            name: r.name.clone(),
            kind,
            threshold: r.threshold,
            over_ms,
            suppress_ms,
            vs_ms,
            min_baseline: r.min_baseline.unwrap_or(100),
            site,
            webhook,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rules_file_is_validated_with_reasons() {
        let ok = parse_rules(
            r#"webhook = "https://hooks.example/p"
[[rule]]
name = "spike"
kind = "events_above"
threshold = 100
over = "1m"
[[rule]]
name = "week"
kind = "drop"
threshold = 50
webhook = "http://127.0.0.1:9/x"
"#,
            10_000,
        )
        .expect("valid");
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].over_ms, 60_000);
        assert_eq!(ok[0].suppress_ms, 300_000);
        assert_eq!(ok[0].webhook.as_deref(), Some("https://hooks.example/p"));
        assert_eq!(ok[1].over_ms, 10_000, "one window by default");
        assert_eq!(ok[1].vs_ms, 7 * 86_400_000);
        assert_eq!(ok[1].webhook.as_deref(), Some("http://127.0.0.1:9/x"));
        for (bad, says) in [
            ("[[rule]]\nname='a'\nkind='nope'\nthreshold=1", "unknown"),
            ("[[rule]]\nname='a'\nkind='lag'\nthreshold=-1", "at least 0"),
            ("[[rule]]\nname='a'\nkind='lag'\nthreshold=1\nover='soon'", "not a duration"),
            ("[[rule]]\nname='a'\nkind='lag'\nthreshold=1\nover='1s'", "at least one window"),
            ("[[rule]]\nname='a'\nkind='lag'\nthreshold=1\nwebhook='ftp://x'", "not an http"),
            ("[[rule]]\nname='a'\nkind='lag'\nthreshold=1\ncolour='red'", "unknown field"),
            ("[[rule]]\nname='a'\nkind='lag'\nthreshold=1\n[[rule]]\nname='a'\nkind='lag'\nthreshold=2", "two rules"),
            ("[[rule]\n", "TOML"),
        ] {
            let err = parse_rules(bad, 10_000).expect_err(bad).to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
