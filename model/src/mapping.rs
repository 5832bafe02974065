//! Where the canonical event fields live in a payload: [`Field`], mapping rules
//! ([`MapRule`], `FIELD=/json/pointer`), schema presets ([`Schema`]) and the resulting
//! [`FieldMapping`].
//!
//! Contract:
//! - A [`FieldMapping`] gives each [`Field`] a list of RFC 6901 JSON pointers; the
//!   decoder takes the first whose value is present and not null (for string fields: and
//!   not the empty string).
//! - A schema supplies the default pointer lists; rules replace the list of their field,
//!   several rules for one field form a fallback list in the order given.
//! - The Segment schema reads `type` with Segment semantics (`page` → `pageview`, `track`
//!   → the `/event` name) unless a rule maps `type`.
//! - [`FieldMapping::is_canonical`] is true exactly when the mapping equals the canonical
//!   schema's, so the decoder may take its fast path.
//! - Parse errors ([`MappingError`]) say what was expected, with an example.

use std::fmt;
use std::str::FromStr;

/// Error for malformed field names, mapping rules and schema names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MappingError(pub String);

/// A canonical event field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// `ts`
    Ts,
    /// `type`
    Type,
    /// `visitor`
    Visitor,
    /// `session`
    Session,
    /// `url`
    Url,
    /// `referrer`
    Referrer,
    /// `country`
    Country,
    /// `device`
    Device,
    /// `site`
    Site,
    /// `props`: an object of custom properties (only the keys of `--property` are kept)
    Props,
}

impl Field {
    /// Every field, in canonical order.
    pub const ALL: [Field; 10] = [
        Field::Ts,
        Field::Type,
        Field::Visitor,
        Field::Session,
        Field::Url,
        Field::Referrer,
        Field::Country,
        Field::Device,
        Field::Site,
        Field::Props,
    ];

    /// The canonical JSON name of the field.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Ts => "ts",
            Field::Type => "type",
            Field::Visitor => "visitor",
            Field::Session => "session",
            Field::Url => "url",
            Field::Referrer => "referrer",
            Field::Country => "country",
            Field::Device => "device",
            Field::Site => "site",
            Field::Props => "props",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Field {
    type Err = MappingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Field::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                MappingError(format!(
                    "unknown field {s:?}: expected one of ts, type, visitor, session, url, \
                     referrer, country, device, site, props"
                ))
            })
    }
}

/// One mapping rule `FIELD=/json/pointer`, e.g. `url=/properties/path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapRule {
    /// Canonical field being filled.
    pub field: Field,
    /// RFC 6901 JSON pointer into the payload (starts with `/`).
    pub pointer: String,
}

impl FromStr for MapRule {
    type Err = MappingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (field, pointer) = s.split_once('=').ok_or_else(|| {
            MappingError(format!(
                "invalid mapping rule {s:?}: expected FIELD=/json/pointer, e.g. url=/properties/path"
            ))
        })?;
        let field: Field = field.trim().parse()?;
        let pointer = pointer.trim();
        if !pointer.starts_with('/') {
            return Err(MappingError(format!(
                "invalid mapping rule {s:?}: the JSON pointer must start with '/', \
                 e.g. {field}=/properties/{field}"
            )));
        }
        Ok(MapRule {
            field,
            pointer: pointer.to_owned(),
        })
    }
}

/// A preset describing where canonical fields live in the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Schema {
    /// Pulseboard's own flat schema (`/ts`, `/type`, `/visitor`, ...).
    #[default]
    Canonical,
    /// Segment `page`/`track` calls.
    Segment,
}

impl Schema {
    /// The lowercase preset name.
    pub fn as_str(self) -> &'static str {
        match self {
            Schema::Canonical => "canonical",
            Schema::Segment => "segment",
        }
    }
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Schema {
    type Err = MappingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "canonical" => Ok(Schema::Canonical),
            "segment" => Ok(Schema::Segment),
            _ => Err(MappingError(format!(
                "unknown schema {s:?}: expected \"canonical\" or \"segment\""
            ))),
        }
    }
}

fn default_pointers(schema: Schema, field: Field) -> &'static [&'static str] {
    match schema {
        Schema::Canonical => match field {
            Field::Ts => &["/ts"],
            Field::Type => &["/type"],
            Field::Visitor => &["/visitor"],
            Field::Session => &["/session"],
            Field::Url => &["/url"],
            Field::Referrer => &["/referrer"],
            Field::Country => &["/country"],
            Field::Device => &["/device"],
            Field::Site => &["/site"],
            Field::Props => &["/props"],
        },
        Schema::Segment => match field {
            Field::Ts => &["/timestamp", "/sentAt", "/receivedAt"],
            Field::Type => &["/type"],
            Field::Visitor => &["/anonymousId", "/userId"],
            Field::Session => &["/context/sessionId", "/properties/session_id"],
            Field::Url => &["/properties/path", "/context/page/path"],
            Field::Referrer => &["/properties/referrer", "/context/page/referrer"],
            Field::Country => &["/context/location/country"],
            Field::Device => &["/context/device/type"],
            // Segment's spec has no site: a property of that name, as the tracking
            // plans that send several sites to one source set it.
            Field::Site => &["/properties/site", "/context/site"],
            // A track or page call's properties are its custom properties.
            Field::Props => &["/properties"],
        },
    }
}

/// Where each canonical field is read from.
///
/// Rules replace the schema's pointer list for their field; several rules for
/// the same field form a fallback list in the order given.
#[derive(Debug, Clone)]
pub struct FieldMapping {
    pointers: [Vec<String>; 10],
    /// Segment `type` semantics (`page` → `pageview`, `track` → `/event`).
    segment_type: bool,
}

impl FieldMapping {
    /// Builds the mapping for `schema` with `rules` applied on top.
    pub fn new(schema: Schema, rules: &[MapRule]) -> Self {
        let mut pointers: [Vec<String>; 10] = Field::ALL.map(|f| {
            default_pointers(schema, f)
                .iter()
                .map(|p| (*p).to_owned())
                .collect()
        });
        let mut overridden = [false; 10];
        for rule in rules {
            let i = rule.field.index();
            if !overridden[i] {
                pointers[i].clear();
                overridden[i] = true;
            }
            pointers[i].push(rule.pointer.clone());
        }
        let segment_type = schema == Schema::Segment && !overridden[Field::Type.index()];
        FieldMapping {
            pointers,
            segment_type,
        }
    }

    /// True when the mapping is exactly the canonical schema, so the fast
    /// borrowed decoder applies.
    pub fn is_canonical(&self) -> bool {
        !self.segment_type
            && Field::ALL.into_iter().all(|f| {
                let defaults = default_pointers(Schema::Canonical, f);
                self.pointers[f.index()].len() == defaults.len()
                    && self.pointers[f.index()]
                        .iter()
                        .zip(defaults)
                        .all(|(a, b)| a == b)
            })
    }

    /// The pointer list used for `field`.
    pub fn pointers(&self, field: Field) -> &[String] {
        &self.pointers[field.index()]
    }

    /// True when `type` is read with Segment semantics (`page` → `pageview`, `track` → the
    /// `/event` name).
    pub(crate) fn segment_type(&self) -> bool {
        self.segment_type
    }
}

impl Default for FieldMapping {
    fn default() -> Self {
        FieldMapping::new(Schema::Canonical, &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_rules_keep_the_fast_path() {
        let rules = ["url=/url".parse::<MapRule>().unwrap()];
        assert!(FieldMapping::new(Schema::Canonical, &rules).is_canonical());
        assert!(FieldMapping::new(Schema::Canonical, &[]).is_canonical());
        assert!(!FieldMapping::new(Schema::Segment, &[]).is_canonical());
    }

    #[test]
    fn field_rule_and_schema_parse_errors_are_helpful() {
        assert_eq!("url".parse::<Field>(), Ok(Field::Url));
        assert_eq!("type".parse::<Field>(), Ok(Field::Type));
        let e = "path".parse::<Field>().unwrap_err().to_string();
        assert!(
            e.contains("path") && e.contains("visitor") && e.contains("device"),
            "{e}"
        );

        let r: MapRule = "url=/properties/path".parse().unwrap();
        assert_eq!(
            r,
            MapRule {
                field: Field::Url,
                pointer: "/properties/path".into()
            }
        );
        let e = "url/properties/path"
            .parse::<MapRule>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("FIELD=/json/pointer"), "{e}");
        let e = "url=properties.path"
            .parse::<MapRule>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("must start with '/'"), "{e}");
        let e = "uri=/x".parse::<MapRule>().unwrap_err().to_string();
        assert!(e.contains("unknown field"), "{e}");

        assert_eq!("segment".parse::<Schema>(), Ok(Schema::Segment));
        assert_eq!("canonical".parse::<Schema>(), Ok(Schema::Canonical));
        assert_eq!(Schema::default(), Schema::Canonical);
        let e = "rudder".parse::<Schema>().unwrap_err().to_string();
        assert!(e.contains("canonical") && e.contains("segment"), "{e}");
    }
}
