//! The tracking path: `POST /collect` into Kafka, what the server adds to browser events
//! (visitor id, country, device), and the tracking script `GET /pb.js`.

pub mod collect;
pub(crate) mod enrich;
pub(crate) mod tracker;
