//! What each figure on a screen means: one definition per figure, shown on hover wherever
//! it appears (dashboard, kiosk, embeds), naming the API field it equals.
//!
//! Contract: plain text; a figure that counts "since start" says so, a figure of the range
//! says which range; the headline's events and the pipeline's events are two figures, with
//! two definitions.

/// Events of the selected range (the headline).
pub const RANGE_EVENTS: &str = "Events whose time falls in the range on screen, every partition, late ones included: GET /api/v1/summary's events for the same from and to";
/// Distinct visitors of the range.
pub const UNIQUE_VISITORS: &str = "Distinct visitors in the range, estimated once over the whole range (HyperLogLog, about 1 % off), never a sum of windows: /api/v1/summary's unique_visitors";
/// Distinct sessions of the range.
pub const UNIQUE_SESSIONS: &str = "Distinct sessions in the range (a visit: the tracking script's visitor with 30 minutes of inactivity ending it), estimated once over the range: /api/v1/summary's unique_sessions";
/// Late events since start.
pub const LATE_EVENTS: &str = "Events that arrived after their window was final, since this server started, all traffic: they are counted (their window is then revised) or, past the revision horizon, dead-lettered as too_late (/api/v1/status late_events_total)";
/// Dead letters since start.
pub const DEAD_LETTERS: &str = "Messages that could not be counted (not JSON, a missing field, too big, too late), since this server started, all traffic (/api/v1/status dead_letters_total; the reasons are listed in the pipeline panel)";
/// The pipeline's events since start.
pub const EVENTS_TOTAL: &str = "Events this server counted since it started, all traffic, whatever their time (/api/v1/status events_total): not the range's events of the headline";
/// Consumption rate.
pub const THROUGHPUT: &str =
    "Events counted per second over the last seconds (/api/v1/status events_per_sec)";
/// Kafka lag.
pub const LAG: &str =
    "Messages in Kafka not read yet, summed over the partitions (high watermark minus next offset)";
/// The global watermark.
pub const WATERMARK: &str =
    "Event time up to which every active partition has read: windows before it are final";
/// The first goal's conversion rate.
pub const CONVERSION: &str = "Visitors who completed the goal ÷ distinct visitors, both over the range (/api/v1/summary's goals conversion_rate)";
