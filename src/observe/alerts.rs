//! Anomaly alerts: per key (authenticated user, sender domain, client address, and
//! all mail together) a message count per window against the key's own moving
//! baseline; across all mail,
//! the share of inbound mail failing DMARC, SPF or DKIM, and the viruses, rejects and
//! clamd/DNS errors per window. Each alert is one structured log line, then goes to the webhook and the
//! email address through a bounded queue, so a slow or failing sink never holds up
//! a message; the same alert for the same key stays quiet for the cool-down.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tracing::warn;

use crate::bounded::BoundedMap;
use crate::config::AlertsConfig;
use crate::observe::fleet_counts::{FleetCounter, FleetCounts, FleetGate};

/// What one message contributes.
#[derive(Debug, Default)]
pub struct Sample<'a> {
    pub inbound: bool,
    pub auth_user: Option<&'a str>,
    pub sender_domain: &'a str,
    pub client_ip: Option<String>,
    /// DMARC, SPF (MAIL FROM) or a DKIM signature failed.
    pub auth_fail: bool,
    pub virus: bool,
    pub rejected: bool,
    pub error: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub kind: &'static str,
    pub key: String,
    pub count: u64,
    pub threshold: f64,
    pub window_secs: u64,
    pub at_unix: u64,
}

impl Alert {
    pub fn json(&self) -> String {
        serde_json::json!({
            "source": "mailwarden",
            "alert": self.kind,
            "key": self.key,
            "count": self.count,
            "threshold": self.threshold,
            "window_seconds": self.window_secs,
            "at": self.at_unix,
            "host": crate::config::host_name(),
        })
        .to_string()
    }

    pub fn summary(&self) -> String {
        format!(
            "{} for {}: {} in {} s (threshold {:.0})",
            self.kind, self.key, self.count, self.window_secs, self.threshold
        )
    }
}

#[derive(Default)]
struct Window {
    start: Option<Instant>,
    count: u64,
    fails: u64,
    baseline: Option<f64>,
}

/// Alerts waiting for the sinks; beyond this they are logged only.
const QUEUE: usize = 256;

pub struct Detector {
    config: AlertsConfig,
    state: Mutex<State>,
    fired: Mutex<BoundedMap<(&'static str, String), Instant>>,
    queue: Option<mpsc::Sender<Alert>>,
    /// Fleet mode: the fleet's message counts per key.
    fleet: Option<Arc<FleetCounts>>,
}

/// The kinds of key a message is counted under, in `State::keyed` order, most
/// specific first; `all` counts every message.
const KEY_KINDS: [&str; 4] = ["auth_user", "sender_domain", "client_ip", "all"];

struct State {
    /// Per kind of key, bounded by `alerts.max_keys` (see `bounded`).
    keyed: [BoundedMap<String, Window>; 4],
    viruses: Window,
    rejects: Window,
    errors: Window,
    dmarc: Window,
}

pub use super::alert_sinks::check;

/// Starts a detector for `config` and the task that delivers its alerts. The
/// running service owns it: a reload that changes `[alerts]` starts a new one (with
/// fresh baselines), one that does not keeps it. The delivery task ends when the
/// last holder drops the detector. With `gate` (fleet mode), an alert another
/// host of the fleet raised within the cool-down is logged here but not sent to
/// the sinks again.
/// With `counter` too, the message rates per key are the fleet's (see
/// `fleet_counts`).
pub fn start(
    config: &AlertsConfig,
    gate: Option<Arc<dyn FleetGate>>,
    counter: Option<Arc<dyn FleetCounter>>,
) -> Arc<Detector> {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(super::alert_sinks::deliver(config.clone(), rx, gate));
    let mut detector = Detector::new(config.clone(), Some(tx));
    detector.fleet = counter.map(|c| FleetCounts::start(c, config.window, config.max_keys));
    Arc::new(detector)
}

/// `s` in lower case, copied only when it has upper-case letters.
fn lower(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(s.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

impl Detector {
    pub fn new(config: AlertsConfig, queue: Option<mpsc::Sender<Alert>>) -> Detector {
        let cap = config.max_keys;
        Detector {
            config,
            state: Mutex::new(State {
                keyed: std::array::from_fn(|_| BoundedMap::new(cap)),
                viruses: Window::default(),
                rejects: Window::default(),
                errors: Window::default(),
                dmarc: Window::default(),
            }),
            fired: Mutex::new(BoundedMap::new(cap)),
            queue,
            fleet: None,
        }
    }

    /// Counts one message; returns the alerts it set off (already logged and queued).
    pub fn observe(&self, o: &Sample<'_>, now: Instant) -> Vec<Alert> {
        let mut alerts = Vec::new();
        let c = &self.config;
        let keys = [
            o.auth_user.map(lower),
            (!o.sender_domain.is_empty()).then(|| lower(o.sender_domain)),
            o.client_ip.as_deref().map(std::borrow::Cow::Borrowed),
            Some(std::borrow::Cow::Borrowed("mail")),
        ];
        let Ok(mut state) = self.state.lock() else {
            return alerts;
        };
        let state = &mut *state;
        for ((map, key), kind) in state.keyed.iter_mut().zip(keys).zip(KEY_KINDS) {
            let Some(key) = key else {
                continue;
            };
            let w = roll(
                map.get_or_insert(key.as_ref(), str::to_owned, Window::default),
                now,
                c.window,
            );
            w.count += 1;
            let (mut count, mut baseline) = (w.count, w.baseline.unwrap_or(0.0));
            // Fleet mode: the fleet's volume for this key, and its last window
            // as the baseline, when they are larger than this host's.
            if let Some(fleet) = &self.fleet {
                let fleet_key = format!("{kind}:{key}");
                fleet.note(&fleet_key);
                let (now_in_fleet, before) = fleet.view(&fleet_key);
                count = count.max(now_in_fleet);
                baseline = baseline.max(before as f64);
            }
            let threshold = f64::from(c.min_messages).max(c.rate_factor * baseline);
            let over = (count as f64 >= threshold).then_some((count, threshold));
            if let Some((n, threshold)) = over {
                alerts.push(self.alert("message_rate", format!("{kind} {key}"), n, threshold, now));
            }
        }
        let window = c.window;
        // Fleet mode: a global window counts the fleet's events (this host's
        // own while Redis does not answer).
        let fleet_count = |name: &str, hit: bool, own: u64| match &self.fleet {
            Some(fleet) => {
                if hit {
                    fleet.note(name);
                }
                own.max(fleet.view(name).0)
            }
            None => own,
        };
        let global = |w: &mut Window, name: &str, hit: bool, limit: u32| {
            let w = roll(w, now, window);
            if hit {
                w.count += 1;
                let count = fleet_count(name, true, w.count);
                if count >= u64::from(limit) {
                    return Some((count, f64::from(limit)));
                }
            }
            None
        };
        if let Some((n, t)) = global(&mut state.viruses, "global:viruses", o.virus, c.viruses) {
            alerts.push(self.alert("viruses", "all mail".into(), n, t, now));
        }
        if let Some((n, t)) = global(&mut state.rejects, "global:rejects", o.rejected, c.rejects) {
            alerts.push(self.alert("rejects", "all mail".into(), n, t, now));
        }
        if let Some((n, t)) = global(&mut state.errors, "global:errors", o.error, c.errors) {
            alerts.push(self.alert("clamd_or_dns_errors", "all mail".into(), n, t, now));
        }
        if o.inbound {
            let w = roll(&mut state.dmarc, now, c.window);
            w.count += 1;
            w.fails += u64::from(o.auth_fail);
            let inbound = fleet_count("global:inbound", true, w.count);
            let fails = fleet_count("global:auth_fail", o.auth_fail, w.fails);
            // The fleet's share once the fleet has seen more than this host.
            let (count, fails) = if inbound > w.count {
                (inbound, fails)
            } else {
                (w.count, w.fails)
            };
            let share = fails as f64 / count as f64;
            if count >= u64::from(c.min_messages) && share >= c.auth_fail_share {
                let (n, t) = (fails, c.auth_fail_share * count as f64);
                alerts.push(self.alert("auth_failures", "inbound mail".into(), n, t, now));
            }
        }
        if alerts.is_empty() {
            return alerts;
        }
        alerts.retain(|a| self.first_in_cooldown(a, now));
        // One message over several keys' rates (an account's burst is also its
        // domain's and its address's) is one alert, for the most specific key;
        // the others are covered by it and stay quiet for the cool-down too.
        let mut rate_seen = false;
        alerts.retain(|a| {
            if a.kind != "message_rate" {
                return true;
            }
            let keep = !rate_seen;
            rate_seen = true;
            keep
        });
        for a in &alerts {
            warn!(
                alert = a.kind,
                key = %a.key,
                count = a.count,
                threshold = a.threshold,
                window_s = a.window_secs,
                "anomaly"
            );
            if let Some(q) = &self.queue
                && q.try_send(a.clone()).is_err()
            {
                warn!(
                    alert = a.kind,
                    "alert queue full; this alert goes to the log only"
                );
            }
        }
        alerts
    }

    fn alert(
        &self,
        kind: &'static str,
        key: String,
        count: u64,
        threshold: f64,
        _now: Instant,
    ) -> Alert {
        Alert {
            kind,
            key,
            count,
            threshold,
            window_secs: self.config.window.as_secs(),
            at_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }

    /// True for the first alert of its kind and key within the cool-down.
    fn first_in_cooldown(&self, a: &Alert, now: Instant) -> bool {
        let Ok(mut fired) = self.fired.lock() else {
            return false;
        };
        let key = (a.kind, a.key.clone());
        let cooldown = self.config.cooldown;
        let mut first = false;
        let at = fired.get_or_insert(&key, Clone::clone, || {
            first = true;
            now
        });
        if first || now.duration_since(*at) >= cooldown {
            *at = now;
            return true;
        }
        false
    }
}

/// Starts a new window when the current one is over, folding its count into the
/// moving baseline (an exponentially weighted mean of past windows).
fn roll(w: &mut Window, now: Instant, window: Duration) -> &mut Window {
    match w.start {
        Some(s) if now.duration_since(s) < window => {}
        Some(_) => {
            let last = w.count as f64;
            w.baseline = Some(match w.baseline {
                None => last,
                Some(b) => 0.3 * last + 0.7 * b,
            });
            w.count = 0;
            w.fails = 0;
            w.start = Some(now);
        }
        None => w.start = Some(now),
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AlertsConfig {
        AlertsConfig {
            window: Duration::from_secs(60),
            cooldown: Duration::from_secs(600),
            min_messages: 5,
            rate_factor: 3.0,
            auth_fail_share: 0.5,
            viruses: 3,
            rejects: 100,
            errors: 100,
            max_keys: 100_000,
            webhook: None,
            email: None,
        }
    }

    #[test]
    fn a_burst_alerts_once_per_cooldown() {
        let d = Detector::new(config(), None);
        let t0 = Instant::now();
        let o = Sample {
            auth_user: Some("app"),
            ..Default::default()
        };
        let fired: usize = (0..20)
            .map(|i| d.observe(&o, t0 + Duration::from_millis(i)).len())
            .sum();
        assert_eq!(fired, 1, "one alert for the burst, not sixteen");
        // After the cool-down a new burst alerts again, once it is three times the
        // baseline (20, from the first window): at the 60th message.
        let later = t0 + Duration::from_secs(700);
        let counts: Vec<u64> = (0..80)
            .flat_map(|i| d.observe(&o, later + Duration::from_millis(i)))
            .map(|a| a.count)
            .collect();
        assert_eq!(counts, [60]);
    }

    #[test]
    fn one_burst_over_several_keys_is_one_alert() {
        let d = Detector::new(config(), None);
        let o = Sample {
            auth_user: Some("App"),
            sender_domain: "customer.example",
            client_ip: Some("192.0.2.5".into()),
            ..Default::default()
        };
        let t0 = Instant::now();
        let keys: Vec<String> = (0..30)
            .flat_map(|i| d.observe(&o, t0 + Duration::from_millis(i)))
            .map(|a| a.key)
            .collect();
        assert_eq!(keys, ["auth_user app"]);
    }

    #[test]
    fn the_baseline_raises_the_bar_for_busy_keys() {
        let d = Detector::new(
            AlertsConfig {
                cooldown: Duration::ZERO,
                ..config()
            },
            None,
        );
        let o = Sample {
            sender_domain: "busy.example",
            ..Default::default()
        };
        let t0 = Instant::now();
        // Ten windows of 10 messages: the baseline settles near 10.
        for w in 0..10u64 {
            for i in 0..10u64 {
                d.observe(
                    &o,
                    t0 + Duration::from_secs(60 * w) + Duration::from_millis(i),
                );
            }
        }
        // Now 20 in a window: under 3 x 10, no alert.
        let now = t0 + Duration::from_secs(600);
        let fired: usize = (0..20)
            .map(|i| d.observe(&o, now + Duration::from_millis(i)).len())
            .sum();
        assert_eq!(fired, 0);
        // 40: over it.
        let fired: usize = (0..20)
            .map(|i| d.observe(&o, now + Duration::from_millis(100 + i)).len())
            .sum();
        assert!(fired >= 1);
    }

    #[test]
    fn global_counts_and_dmarc_share() {
        let d = Detector::new(config(), None);
        let t0 = Instant::now();
        let virus = Sample {
            virus: true,
            ..Default::default()
        };
        let kinds: Vec<&str> = (0..5)
            .flat_map(|i| d.observe(&virus, t0 + Duration::from_millis(i)))
            .map(|a| a.kind)
            .filter(|k| *k != "message_rate")
            .collect();
        assert_eq!(kinds, ["viruses"]);
        let failing = Sample {
            inbound: true,
            auth_fail: true,
            ..Default::default()
        };
        let kinds: Vec<&str> = (0..6)
            .flat_map(|i| d.observe(&failing, t0 + Duration::from_millis(10 + i)))
            .map(|a| a.kind)
            .filter(|k| *k != "message_rate")
            .collect();
        assert_eq!(kinds, ["auth_failures"]);
        let json: serde_json::Value =
            serde_json::from_str(&d.alert("viruses", "all mail".into(), 3, 3.0, t0).json())
                .unwrap();
        assert_eq!(json["alert"], "viruses");
    }

    /// Defect 6 of the hardening review: 100k distinct sender domains grew the
    /// table to ~70 MB and made every message scan it. The table holds at most
    /// `max_keys` per kind, and a key still counting survives the flood.
    #[test]
    fn a_flood_of_distinct_keys_stays_within_max_keys() {
        let detector = Detector::new(
            AlertsConfig {
                max_keys: 200,
                min_messages: 1_000_000,
                ..config()
            },
            None,
        );
        let now = Instant::now();
        for i in 0..50_000u32 {
            let domain = format!("d{i}.flood.test");
            let ip = format!("192.0.{}.{}", (i >> 8) & 255, i & 255);
            for (domain, ip) in [(domain.as_str(), Some(ip)), ("steady.test", None)] {
                detector.observe(
                    &Sample {
                        sender_domain: domain,
                        client_ip: ip,
                        ..Sample::default()
                    },
                    now,
                );
            }
        }
        let mut state = detector.state.lock().unwrap();
        for map in &state.keyed {
            assert!(map.len() <= 200, "{}", map.len());
        }
        let steady = state.keyed[1].get_or_insert("steady.test", str::to_owned, Window::default);
        assert_eq!(steady.count, 50_000);
    }
}
