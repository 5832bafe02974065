//! Queries over time: reading a range across windows and roll-up buckets, segments and
//! goals over a range, and retention (rolling old windows up into history).

pub mod history;
pub mod properties;
pub mod retention;
pub mod segments;
