//! What a store was filled from, so that one store never mixes two sources.
//!
//! Contract:
//! - `meta` key `source`: the [`Source`] the store was first filled from, as text: the
//!   embedded demo, or a Kafka cluster (its cluster id) and the input topics.
//! - [`Store::claim_source`] records it on a store that has none (a new store, or one of
//!   an earlier release), and refuses a store filled from another source with
//!   [`StoreError::SourceMismatch`], whose message names the flag to use (`--data-dir`):
//!   the demo's windows are never served as a real cluster's, nor one cluster's as
//!   another's.

use std::fmt;

use super::{Store, StoreError};

/// Where a store's events come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The embedded Kafka and its demo traffic.
    EmbeddedDemo,
    /// A Kafka cluster (by its cluster id) and the input topics read from it.
    Cluster { id: String, topics: Vec<String> },
}

impl Source {
    /// A cluster's source: its id and the topics, sorted (their order on the command line
    /// changes nothing).
    pub fn cluster(id: &str, topics: &[String]) -> Source {
        let mut topics = topics.to_vec();
        topics.sort();
        topics.dedup();
        Source::Cluster {
            id: id.to_owned(),
            topics,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::EmbeddedDemo => f.write_str("the embedded demo"),
            Source::Cluster { id, topics } => {
                write!(f, "Kafka cluster {id}, topics {}", topics.join(","))
            }
        }
    }
}

const KEY: &str = "source";

impl Store {
    /// Record `source` as this store's, or check it is the one recorded (see the module
    /// docs). `dir` names the store in the error.
    pub fn claim_source(&self, source: &Source, dir: &str) -> Result<(), StoreError> {
        let wanted = source.to_string();
        match self.meta.get(KEY)? {
            Some(v) if v.as_ref() == wanted.as_bytes() => Ok(()),
            Some(v) => Err(StoreError::SourceMismatch {
                dir: dir.to_owned(),
                stored: String::from_utf8_lossy(&v).into_owned(),
                wanted,
            }),
            None => {
                self.meta.insert(KEY, wanted.as_bytes())?;
                self.meta.flush()?;
                Ok(())
            }
        }
    }

    /// The source recorded, if any.
    pub fn source(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .meta
            .get(KEY)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_serves_the_source_it_was_filled_from_and_refuses_another() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 10_000).expect("store");
        assert_eq!(store.source().expect("read"), None);
        store
            .claim_source(&Source::EmbeddedDemo, "d")
            .expect("a new store takes its first source");
        store
            .claim_source(&Source::EmbeddedDemo, "d")
            .expect("the same source again");
        let cluster = Source::cluster("AbC", &["b".to_owned(), "a".to_owned()]);
        let err = store.claim_source(&cluster, "d").expect_err("refused");
        let text = err.to_string();
        assert!(text.contains("the embedded demo"), "{text}");
        assert!(text.contains("Kafka cluster AbC, topics a,b"), "{text}");
        assert!(text.contains("--data-dir"), "{text}");
        drop(store);
        // Kept across a restart; topics in another order are the same source.
        let dir2 = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir2.path(), 10_000).expect("store");
        store.claim_source(&cluster, "d2").expect("first");
        drop(store);
        let store = Store::open(dir2.path(), 10_000).expect("reopen");
        let same = Source::cluster("AbC", &["a".to_owned(), "b".to_owned(), "a".to_owned()]);
        store
            .claim_source(&same, "d2")
            .expect("same cluster and topics");
        let other = Source::cluster("XyZ", &["a".to_owned(), "b".to_owned()]);
        assert!(store.claim_source(&other, "d2").is_err(), "another cluster");
        assert!(store.claim_source(&Source::EmbeddedDemo, "d2").is_err());
    }
}
