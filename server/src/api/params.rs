//! Query parameters, parsed by hand so that an error names the parameter at fault.
//!
//! Contract:
//! - A bad parameter gets `400` with `{"error": ..., "parameter": ...}`; one given twice is
//!   a bad parameter too, and one given empty is the same as one not given. Parameters of
//!   other names (`token`) are ignored.
//! - Instants are epoch milliseconds or RFC 3339; durations are like `15m`; counts have
//!   their bounds; `compare` is `1d` or `7d`; `step` one of the history's steps, at least a
//!   window.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use pulseboard_model::proto::Compare;
use pulseboard_model::time::{parse_duration_ms, parse_time_param};

use crate::api::error::ApiError;
use crate::now_ms;
use crate::query::history;

/// Raw query parameters: everything is parsed by hand so errors name the parameter. A
/// parameter given twice is a bad parameter too (a JSON `400` naming it, not the plain-text
/// rejection of axum's `Query`); parameters of other names (`token`) are ignored.
#[derive(Debug, Default)]
pub struct RangeParams {
    pub(crate) from: Option<String>,
    pub(crate) to: Option<String>,
    pub(crate) limit: Option<String>,
    pub(crate) top: Option<String>,
    pub(crate) range: Option<String>,
    pub(crate) filter: Option<String>,
    pub(crate) site: Option<String>,
    pub(crate) at: Option<String>,
    pub(crate) compare: Option<String>,
    pub(crate) step: Option<String>,
    pub(crate) property: Option<String>,
    pub(crate) format: Option<String>,
    pub(crate) dimension: Option<String>,
}

impl RangeParams {
    /// The parameters of a query string (`application/x-www-form-urlencoded`).
    pub fn parse(query: &str) -> Result<Self, ApiError> {
        let mut p = RangeParams::default();
        for pair in query.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (name, slot) = match String::from_utf8_lossy(&percent_decode(k)).as_ref() {
                "from" => ("from", &mut p.from),
                "to" => ("to", &mut p.to),
                "limit" => ("limit", &mut p.limit),
                "top" => ("top", &mut p.top),
                "range" => ("range", &mut p.range),
                "filter" => ("filter", &mut p.filter),
                "site" => ("site", &mut p.site),
                "at" => ("at", &mut p.at),
                "compare" => ("compare", &mut p.compare),
                "step" => ("step", &mut p.step),
                "property" => ("property", &mut p.property),
                "format" => ("format", &mut p.format),
                "dimension" => ("dimension", &mut p.dimension),
                _ => continue,
            };
            if slot.is_some() {
                return Err(ApiError::BadParam {
                    parameter: name,
                    message: format!("{name} is given more than once"),
                });
            }
            *slot = Some(String::from_utf8_lossy(&percent_decode(v)).into_owned());
        }
        Ok(p)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RangeParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        RangeParams::parse(parts.uri.query().unwrap_or_default())
    }
}

/// Percent-decoding of a query key or value (`+` is a space); a `%` without two hex digits
/// after it is kept as it is.
pub(super) fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

pub(crate) fn time_param(name: &'static str, v: &Option<String>) -> Result<Option<i64>, ApiError> {
    match v.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => parse_time_param(s).map(Some).ok_or_else(|| ApiError::BadParam {
            parameter: name,
            message: format!("{name}={s:?} is not a time: use epoch milliseconds or RFC 3339 (2026-11-24T10:15:30Z)"),
        }),
    }
}

pub(crate) fn int_param(
    name: &'static str,
    v: &Option<String>,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match v.as_deref() {
        None | Some("") => Ok(default),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::BadParam {
                parameter: name,
                message: format!("{name}={s:?} must be a whole number from 1 to {max}"),
            }),
        },
    }
}

/// Resolve `[from, to)`: explicit bounds, or `range` back from `to`/now, or `default_span`.
pub(crate) fn resolve_range(p: &RangeParams, default_span: i64) -> Result<(i64, i64), ApiError> {
    let to = time_param("to", &p.to)?.unwrap_or_else(now_ms);
    let span = match p.range.as_deref() {
        None | Some("") => default_span,
        Some(s) => match parse_duration_ms(s) {
            Ok(ms) if ms > 0 => ms,
            _ => {
                return Err(ApiError::BadParam {
                    parameter: "range",
                    message: format!("range={s:?} is not a duration: use e.g. 5m, 15m, 1h, 24h"),
                })
            }
        },
    };
    let from = time_param("from", &p.from)?.unwrap_or(to.saturating_sub(span));
    if from > to {
        return Err(ApiError::BadParam {
            parameter: "from",
            message: format!("from ({from}) is after to ({to})"),
        });
    }
    Ok((from, to))
}

/// `compare=1d|7d`: the period one day or one week earlier.
pub(super) fn compare_param(v: &Option<String>) -> Result<Option<Compare>, ApiError> {
    match v.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => Compare::from_label(s)
            .map(Some)
            .ok_or_else(|| ApiError::BadParam {
                parameter: "compare",
                message: format!(
                    "compare={s:?}: use 1d (the same range one day earlier) or 7d (one week earlier)"
                ),
            }),
    }
}

/// `step=`: merge items narrower than this (one of [`history::STEPS`], at least a window).
pub(super) fn step_param(v: &Option<String>, window_ms: i64) -> Result<Option<i64>, ApiError> {
    match v.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => match history::STEPS.iter().find(|(name, _)| *name == s) {
            Some((_, ms)) if *ms >= window_ms => Ok(Some(*ms)),
            _ => Err(ApiError::BadParam {
                parameter: "step",
                message: format!(
                    "step={s:?}: use one of {} (at least the window, {window_ms} ms)",
                    history::STEPS.map(|(n, _)| n).join(", ")
                ),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use crate::api::tests::{app, get};

    #[tokio::test]
    async fn bad_parameters_get_400_naming_the_parameter() {
        let (app, _dir) = app();
        for (uri, param) in [
            ("/api/v1/windows?from=yesterday", "from"),
            ("/api/v1/windows?to=12x", "to"),
            ("/api/v1/windows?limit=0", "limit"),
            ("/api/v1/windows?limit=-3", "limit"),
            ("/api/v1/windows?from=2000&to=1000", "from"),
            ("/api/v1/summary?range=forever", "range"),
            ("/api/v1/summary?top=abc", "top"),
            ("/api/v1/summary?top=1&top=2", "top"),
            ("/api/v1/dead-letters?limit=null&limit=null", "limit"),
            ("/api/v1/windows?from=1&%66rom=2", "from"),
            ("/api/v1/windows?filter=city:Berlin", "filter"),
            ("/api/v1/summary?filter=DE", "filter"),
            ("/api/v1/summary?filter=type:a&filter=type:b", "filter"),
            ("/api/v1/now?filter=country:", "filter"),
            ("/api/v1/now?at=soon", "at"),
            ("/api/v1/now?top=0", "top"),
            ("/api/v1/windows?compare=2d", "compare"),
            ("/api/v1/summary?compare=week", "compare"),
            ("/api/v1/windows?step=7s", "step"),
            ("/api/v1/windows?step=1m&step=1m", "step"),
            ("/api/v1/summary?compare=1w", "compare"),
        ] {
            let (status, body) = get(&app, uri).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
            assert_eq!(body["parameter"], param, "{uri}: {body}");
            assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
        }
    }
}
