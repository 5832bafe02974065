//! Guessing is rate-limited: a client (an IP address; IPv6 by its /64) that presents more
//! than [`PER_MINUTE`] wrong credentials or unknown link ids in a minute is refused until
//! the minute is over.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Wrong guesses a client may make in a minute.
pub const PER_MINUTE: u32 = 20;

/// Clients remembered at most; past it the table starts again (a flood of addresses costs
/// memory only up to here).
const CLIENTS: usize = 100_000;

/// Wrong guesses per client in the current minute.
#[derive(Default)]
pub struct Guesses {
    table: Mutex<(i64, HashMap<u128, u32>)>,
}

fn client(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        // A /64: one host of IPv6 has many addresses.
        IpAddr::V6(v6) => u128::from(v6) >> 64 | 1 << 127,
    }
}

impl Guesses {
    /// Seconds until `ip` may guess again, if it may not now.
    pub fn refused(&self, ip: IpAddr, now_ms: i64) -> Option<u64> {
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let minute = now_ms.div_euclid(60_000);
        if t.0 != minute {
            *t = (minute, HashMap::new());
        }
        (t.1.get(&client(ip)).copied().unwrap_or(0) >= PER_MINUTE)
            .then(|| u64::try_from(60_000 - now_ms.rem_euclid(60_000)).unwrap_or(60_000) / 1000 + 1)
    }

    /// Count a wrong guess of `ip`.
    pub fn wrong(&self, ip: IpAddr, now_ms: i64) {
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let minute = now_ms.div_euclid(60_000);
        if t.0 != minute || t.1.len() >= CLIENTS {
            *t = (minute, HashMap::new());
        }
        *t.1.entry(client(ip)).or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_refused_after_its_guesses_until_the_minute_ends() {
        let g = Guesses::default();
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let t0 = 28_333_334 * 60_000 + 40_000; // 40 s into a minute
        for _ in 0..PER_MINUTE {
            assert_eq!(g.refused(a, t0), None);
            g.wrong(a, t0);
        }
        assert_eq!(g.refused(a, t0), Some(21));
        assert_eq!(g.refused(b, t0), None, "another client is not affected");
        assert_eq!(g.refused(a, t0 + 20_000), None, "a new minute");
        // IPv6: the /64 is the client.
        let v6a: IpAddr = "2001:db8::1".parse().expect("ip");
        let v6b: IpAddr = "2001:db8::2".parse().expect("ip");
        for _ in 0..PER_MINUTE {
            g.wrong(v6a, t0 + 20_000);
        }
        assert!(g.refused(v6b, t0 + 20_000).is_some());
    }
}
