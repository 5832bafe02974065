//! Integration, recovery and end-to-end tests, built into one binary.
//!
//! Tests that need a broker outliving a Pulseboard process start a standalone Tansu broker
//! on a free port (installed by `cargo xtask test`).

mod util;

mod backbone;
mod embedded;
mod faults;
mod hostile;
mod live;
mod recovery;
