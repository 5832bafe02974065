//! Integration, recovery and end-to-end tests, built into one binary.
//!
//! Tests that need a broker start Apache Kafka (KRaft, on free loopback ports) through the
//! dev-only test kit; `cargo xtask test` installs its jars.

mod util;

mod access;
mod alerts;
mod backbone;
mod catchup;
mod collect;
mod embedded;
mod export;
mod faults;
mod hardening;
mod history;
mod hostile;
mod live;
mod recovery;
mod scaleout;
mod segments;
mod tls;
mod track;
