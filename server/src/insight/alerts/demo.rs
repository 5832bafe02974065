//! The built-in alert rules of embedded mode, as a rules file for [`super::parse_rules`].

/// The built-in rules of embedded mode (the demo generator at `rate` events/s): a spike
/// (a minute with 1.5× the usual events), a drop of traffic, dead letters above 1 % and a
/// lag of more than ten seconds of traffic.
pub fn demo_rules(rate: u32, window_ms: i64) -> String {
    let per_min = f64::from(rate) * 60.0;
    let window_s = window_ms / 1000;
    format!(
        "# Built-in rules of embedded mode (the demo generator at {rate} events/s).\n\
         [[rule]]\nname = \"Traffic spike\"\nkind = \"events_above\"\nthreshold = {}\nover = \"1m\"\nsuppress = \"2m\"\n\n\
         [[rule]]\nname = \"Traffic drop\"\nkind = \"events_below\"\nthreshold = {}\nover = \"1m\"\nsuppress = \"2m\"\n\n\
         [[rule]]\nname = \"Dead letters above 1 %\"\nkind = \"dead_letters\"\nthreshold = {}\nover = \"5m\"\n\n\
         [[rule]]\nname = \"Consumer lag\"\nkind = \"lag\"\nthreshold = {}\nover = \"{window_s}s\"\n",
        (per_min * 1.5).round(),
        (per_min * 0.3).round(),
        (per_min * 5.0 * 0.01).round().max(1.0),
        f64::from(rate) * 10.0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insight::alerts::parse_rules;

    #[test]
    fn the_demo_rules_are_a_valid_rules_file() {
        assert!(parse_rules(&demo_rules(200, 10_000), 10_000).is_ok());
    }
}
