//! What people add to the numbers: alert rules and their evaluation, annotations.

pub mod alerts;
pub mod annotations;
