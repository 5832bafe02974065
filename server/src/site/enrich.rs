//! What a browser cannot know about its own events, filled in by the server for
//! `POST /collect` events that come without a visitor (those of the tracking script
//! `pb.js`): a cookieless visitor id, the country, the device class; and which user agents
//! are robots, whose events are dropped.
//!
//! Contract:
//! - Visitor id: the first 8 bytes, in hex, of SHA-256 over the salt of the UTC day, the
//!   site, the client's IP address and its user agent (each length-prefixed). The salt is 32
//!   bytes from the OS's random generator, one per UTC day, kept in the store's `salts` tree
//!   and deleted once the day is over ([`Salts`], [`Store::salt_of_day`]): the same browser
//!   on the same site has one id all day and an unrelated one the next day, and without the
//!   salt an id cannot be linked back to an address. The IP address itself is never
//!   stored, logged or produced.
//! - Country: ISO 3166-1 alpha-2 from the `iptocc` crate's embedded table (the Regional
//!   Internet Registries' delegation statistics: the country a block is registered to,
//!   which agrees with commercial geolocation for about 95 % of IPv4 addresses). Private,
//!   loopback and unallocated addresses have none.
//! - Device: from the user agent (`woothee`), refined by the script's screen class:
//!   iPad → `tablet`; phone user agents → `mobile`, or `tablet` when the screen class says
//!   so (Android tablets send phone-like user agents); desktop user agents → `desktop`, or
//!   `tablet` when the screen class says so (iPadOS sends a desktop Safari user agent);
//!   anything else (TVs, consoles, unknown) → the screen class, if any.
//! - Robots: [`robot`] names why a user agent is not a person (`bot`: woothee's crawler
//!   category or a name from [`ROBOT_MARKS`]; `no_user_agent`: none sent).

use std::net::IpAddr;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::store::{day_of, Store, StoreError};

/// One UTC day in milliseconds.
#[cfg(test)]
const DAY_MS: i64 = 86_400_000;

/// Lower-case pieces of user agents that no person's browser sends: automation, HTTP
/// libraries, link previews and the crawlers woothee does not know by name.
pub const ROBOT_MARKS: &[&str] = &[
    "bot/",
    "bot-",
    "bot;",
    "bot)",
    "bot.htm",
    "crawler",
    "spider",
    "slurp",
    "headlesschrome",
    "phantomjs",
    "puppeteer",
    "playwright",
    "selenium",
    "webdriver",
    "lighthouse",
    "pingdom",
    "uptime",
    "facebookexternalhit",
    "python-requests",
    "python-urllib",
    "aiohttp",
    "curl/",
    "wget/",
    "go-http-client",
    "okhttp",
    "java/",
    "apache-httpclient",
    "axios/",
    "node-fetch",
    "undici",
    "libwww",
    "scrapy",
];

/// Why events with this user agent are dropped, or `None` for a person's browser.
pub fn robot(user_agent: Option<&str>) -> Option<&'static str> {
    let ua = match user_agent.map(str::trim) {
        None | Some("") | Some("-") => return Some("no_user_agent"),
        Some(ua) => ua,
    };
    let lower = ua.to_ascii_lowercase();
    if ROBOT_MARKS.iter().any(|m| lower.contains(m)) {
        return Some("bot");
    }
    match woothee::parser::Parser::new().parse(ua) {
        Some(r) if r.category == "crawler" => Some("bot"),
        _ => None,
    }
}

/// The screen classes the script sends (`screen`), by screen width in CSS pixels.
pub const SCREEN_CLASSES: [&str; 3] = ["mobile", "tablet", "desktop"];

/// The device class of a user agent, refined by the script's screen class (see the module
/// docs).
pub fn device(user_agent: &str, screen: Option<&str>) -> Option<&'static str> {
    let screen = screen.and_then(|s| SCREEN_CLASSES.into_iter().find(|c| *c == s));
    let tablet_screen = screen == Some("tablet");
    let parsed = woothee::parser::Parser::new().parse(user_agent);
    let (category, os) = parsed.as_ref().map_or(("", ""), |r| (r.category, r.os));
    match (category, os) {
        (_, "iPad") => Some("tablet"),
        ("smartphone" | "mobilephone", _) if tablet_screen => Some("tablet"),
        ("smartphone" | "mobilephone", _) => Some("mobile"),
        ("pc", _) if tablet_screen => Some("tablet"),
        ("pc", _) => Some("desktop"),
        _ => screen,
    }
}

/// The country (ISO 3166-1 alpha-2) an address is registered to, if any.
pub fn country(ip: IpAddr) -> Option<&'static str> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    iptocc::country_code(ip)
}

/// The visitor id of (`site`, `ip`, `user_agent`) under the day's `salt`.
pub fn visitor_id(salt: &[u8; 32], site: &str, ip: Option<IpAddr>, user_agent: &str) -> String {
    let ip = ip.map(|ip| ip.to_string()).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(salt);
    for part in [site, &ip, user_agent] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The daily salts: the current day's in memory, read through to the store (when there is
/// one), created from the OS's random generator on the first use in a day.
pub struct Salts {
    store: Option<Store>,
    current: Mutex<Option<(i64, [u8; 32])>>,
}

impl Salts {
    /// Salts kept in `store`, or (`None`) in memory only: then a restart starts a new salt.
    pub fn new(store: Option<Store>) -> Self {
        Salts {
            store,
            current: Mutex::new(None),
        }
    }

    /// The salt of the day of `now_ms` if it is in memory (no I/O).
    pub fn cached(&self, now_ms: i64) -> Option<[u8; 32]> {
        let day = day_of(now_ms);
        let guard = self.current.lock().unwrap_or_else(|p| p.into_inner());
        guard.filter(|(d, _)| *d == day).map(|(_, s)| s)
    }

    /// The salt of the day of `now_ms` (may read and write the store: call it off the
    /// async workers when [`Salts::cached`] has none). A store that fails is logged and a
    /// salt kept in memory for the day is used instead.
    pub fn salt(&self, now_ms: i64) -> [u8; 32] {
        let day = day_of(now_ms);
        let mut guard = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((d, s)) = *guard {
            if d == day {
                return s;
            }
        }
        let salt = match &self.store {
            Some(store) => match store.salt_of_day(day, random_salt) {
                Ok(s) => s,
                Err(e) => {
                    salt_store_failed(&e);
                    random_salt()
                }
            },
            None => random_salt(),
        };
        *guard = Some((day, salt));
        salt
    }
}

fn salt_store_failed(e: &StoreError) {
    tracing::warn!(error = %e, "visitor salt not stored; using one kept in memory for the day");
}

/// 32 bytes from the OS's random generator (a constant-time fallback would make ids
/// linkable, so a failing generator is a fatal fault of the machine).
fn random_salt() -> [u8; 32] {
    let mut s = [0u8; 32];
    if let Err(e) = getrandom::fill(&mut s) {
        panic!("the operating system's random generator failed: {e}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_795_515_330_123; // 2026-11-24T10:15:30.123Z
    const CHROME_DESKTOP: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
    const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
    const IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
    const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36";

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("ip"))
    }

    #[test]
    fn the_salt_is_stable_within_a_utc_day_and_new_the_next() {
        let salts = Salts::new(None);
        let start_of_day = T0 - T0.rem_euclid(DAY_MS);
        assert_eq!(salts.cached(T0), None);
        let a = salts.salt(start_of_day);
        assert_eq!(salts.salt(T0), a);
        assert_eq!(salts.salt(start_of_day + DAY_MS - 1), a);
        assert_eq!(salts.cached(T0), Some(a));
        let b = salts.salt(start_of_day + DAY_MS);
        assert_ne!(a, b, "a new day, a new salt");
        assert_eq!(
            salts.cached(T0),
            None,
            "yesterday's salt is gone from memory"
        );
    }

    #[test]
    fn stored_salts_survive_a_restart_within_the_day_and_are_discarded_after_it() {
        let dir = tempfile::tempdir().expect("dir");
        let day = day_of(T0);
        let a = {
            let store = Store::open(dir.path(), 10_000).expect("store");
            Salts::new(Some(store)).salt(T0)
        };
        let store = crate::store::open_when_released(dir.path(), 10_000).expect("reopen");
        assert_eq!(store.salt_days().expect("days"), vec![day]);
        let salts = Salts::new(Some(store.clone()));
        assert_eq!(
            salts.salt(T0 + 3_600_000),
            a,
            "same day after a restart: same salt"
        );
        let b = salts.salt(T0 + DAY_MS);
        assert_ne!(a, b);
        assert_eq!(
            store.salt_days().expect("days"),
            vec![day + 1],
            "the day before is deleted once the next day's salt exists"
        );
        // Retention deletes a finished day's salt even when no request comes the next day.
        assert_eq!(store.discard_salts_before(day + 2).expect("discard"), 1);
        assert!(store.salt_days().expect("days").is_empty());
    }

    #[test]
    fn visitor_ids_are_stable_within_a_day_differ_across_days_and_hold_no_address() {
        let salts = Salts::new(None);
        let id = |now: i64, site: &str, addr: &str, ua: &str| {
            visitor_id(&salts.salt(now), site, ip(addr), ua)
        };
        let v = id(T0, "example.com", "203.0.113.7", CHROME_DESKTOP);
        assert_eq!(v.len(), 16);
        assert!(v.bytes().all(|b| b.is_ascii_hexdigit()), "{v}");
        assert_eq!(
            v,
            id(T0 + 60_000, "example.com", "203.0.113.7", CHROME_DESKTOP)
        );
        assert_ne!(v, id(T0, "example.org", "203.0.113.7", CHROME_DESKTOP));
        assert_ne!(v, id(T0, "example.com", "203.0.113.8", CHROME_DESKTOP));
        assert_ne!(v, id(T0, "example.com", "203.0.113.7", IPHONE));
        assert_ne!(
            v,
            id(T0 + DAY_MS, "example.com", "203.0.113.7", CHROME_DESKTOP)
        );
        // Length prefixes: moving bytes between the parts gives another id.
        let salt = [7u8; 32];
        assert_ne!(
            visitor_id(&salt, "ab", None, "c"),
            visitor_id(&salt, "a", None, "bc")
        );
    }

    #[test]
    fn robots_are_recognised_and_browsers_are_not() {
        for ua in [
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36",
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "curl/8.5.0",
            "python-requests/2.31.0",
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        ] {
            assert_eq!(robot(Some(ua)), Some("bot"), "{ua}");
        }
        assert_eq!(robot(None), Some("no_user_agent"));
        assert_eq!(robot(Some(" ")), Some("no_user_agent"));
        for ua in [CHROME_DESKTOP, IPHONE, IPAD, ANDROID] {
            assert_eq!(robot(Some(ua)), None, "{ua}");
        }
    }

    #[test]
    fn the_device_comes_from_the_user_agent_refined_by_the_screen_class() {
        assert_eq!(device(CHROME_DESKTOP, None), Some("desktop"));
        assert_eq!(device(CHROME_DESKTOP, Some("desktop")), Some("desktop"));
        assert_eq!(device(CHROME_DESKTOP, Some("mobile")), Some("desktop"));
        // iPadOS sends a desktop user agent; the screen tells.
        assert_eq!(device(CHROME_DESKTOP, Some("tablet")), Some("tablet"));
        assert_eq!(device(IPHONE, None), Some("mobile"));
        assert_eq!(device(IPHONE, Some("desktop")), Some("mobile"));
        assert_eq!(device(IPAD, None), Some("tablet"));
        assert_eq!(device(ANDROID, Some("mobile")), Some("mobile"));
        assert_eq!(device(ANDROID, Some("tablet")), Some("tablet"));
        assert_eq!(
            device("SomethingUnknown/1.0", Some("desktop")),
            Some("desktop")
        );
        assert_eq!(device("SomethingUnknown/1.0", Some("huge")), None);
        assert_eq!(device("SomethingUnknown/1.0", None), None);
    }

    #[test]
    fn countries_come_from_the_embedded_table() {
        assert_eq!(ip("8.8.8.8").and_then(country), Some("US"));
        assert_eq!(ip("::ffff:8.8.8.8").and_then(country), Some("US"));
        assert_eq!(ip("2001:4860:4860::8888").and_then(country), Some("US"));
        assert_eq!(ip("1.0.16.1").and_then(country), Some("JP"));
        for private in ["127.0.0.1", "10.1.2.3", "192.168.0.1", "::1"] {
            assert_eq!(ip(private).and_then(country), None, "{private}");
        }
    }
}
