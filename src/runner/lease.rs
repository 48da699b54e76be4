//! The rules of a run shared by several processes, apart from any I/O: how a process reaches
//! it ([`Shared`]), which worker names are valid, how long a lease lasts and how often it is
//! renewed, how long to wait before retrying the database, and when a worker that cannot
//! reach the database must assume its leases are gone.

use std::time::{Duration, Instant};

pub use crate::config::DEFAULT_LEASE;
/// The shortest lease accepted (tests use a couple of seconds).
pub const MIN_LEASE: Duration = Duration::from_millis(500);
/// The longest pause between two retries of the database.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How a process reaches a shared run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shared {
    /// The git remote's name (`.`: this repository itself).
    pub remote: String,
    /// Its URL, for messages and the run's record.
    pub remote_url: String,
    /// This process's worker name (agent ids `agent-K@NAME`).
    pub worker: String,
    /// The lease this process would give a new shared run (a worker follows the run's).
    pub lease: Duration,
}

/// `HOSTNAME-PID`, made of the characters a worker name may hold.
pub fn default_worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let clean: String = host
        .trim()
        .chars()
        .map(|c| if worker_char(c) { c } else { '-' })
        .take(48)
        .collect();
    let host = if clean.is_empty() { "host" } else { &clean };
    format!("{host}-{}", std::process::id())
}

fn worker_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._-".contains(c)
}

/// A worker name: 1 to 64 letters, digits, `.`, `_`, `-` (it becomes part of agent ids and
/// of the report's tables).
pub fn validate_worker_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("a worker name has 1 to 64 characters".into());
    }
    if let Some(c) = name.chars().find(|c| !worker_char(*c)) {
        return Err(format!(
            "{c:?} is not allowed (letters, digits, '.', '_', '-')"
        ));
    }
    Ok(())
}

/// How often a worker renews its leases: three times per lease, so two lost heartbeats in
/// a row still leave the lease alive.
pub fn heartbeat_every(lease: Duration) -> Duration {
    lease / 3
}

/// How often an idle worker asks the queue for work (and how soon it notices another
/// worker's completion that unblocks a dependent).
pub fn poll_every(lease: Duration) -> Duration {
    (lease / 4).min(Duration::from_millis(200))
}

/// The pause before retry number `attempt` (0-based) of a database call: 100 ms, doubling,
/// at most `cap`.
pub fn backoff(attempt: u32, cap: Duration) -> Duration {
    Duration::from_millis(100)
        .saturating_mul(1u32 << attempt.min(16))
        .min(cap)
}

/// A worker's contact with the database, from its heartbeats. Once it has not reached the
/// database for longer than a lease, its claims may already belong to other workers: it
/// must stop their commands.
#[derive(Debug, Clone)]
pub struct Contact {
    lease: Duration,
    last_ok: Instant,
    lost: bool,
}

/// What a heartbeat's outcome means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactNews {
    /// Nothing changed.
    Same,
    /// No contact for longer than the lease, for this long: stop every command now.
    Lost(Duration),
    /// Contact is back after it was lost.
    Restored,
}

impl Contact {
    pub fn new(lease: Duration, now: Instant) -> Contact {
        Contact {
            lease,
            last_ok: now,
            lost: false,
        }
    }

    /// The database answered at `now`.
    pub fn reached(&mut self, now: Instant) -> ContactNews {
        self.last_ok = now;
        if std::mem::replace(&mut self.lost, false) {
            ContactNews::Restored
        } else {
            ContactNews::Same
        }
    }

    /// The database did not answer at `now`: [`ContactNews::Lost`] once, when the silence
    /// has outlasted the lease.
    pub fn missed(&mut self, now: Instant) -> ContactNews {
        let silent = now.saturating_duration_since(self.last_ok);
        if !self.lost && silent > self.lease {
            self.lost = true;
            ContactNews::Lost(silent)
        } else {
            ContactNews::Same
        }
    }

    pub fn is_lost(&self) -> bool {
        self.lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_names() {
        assert!(validate_worker_name("build-box_2.lan").is_ok());
        assert!(validate_worker_name("").is_err());
        assert!(validate_worker_name(&"x".repeat(65)).is_err());
        let e = validate_worker_name("a b").unwrap_err();
        assert!(e.contains("' '"), "{e}");
        assert!(validate_worker_name("a@b").is_err());
        let d = default_worker_name();
        assert!(validate_worker_name(&d).is_ok(), "{d}");
        assert!(d.ends_with(&format!("-{}", std::process::id())), "{d}");
    }

    #[test]
    fn heartbeats_and_polls_fit_in_a_lease() {
        let lease = Duration::from_secs(30);
        assert_eq!(heartbeat_every(lease), Duration::from_secs(10));
        assert_eq!(poll_every(lease), Duration::from_millis(200));
        assert_eq!(
            poll_every(Duration::from_millis(600)),
            Duration::from_millis(150)
        );
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let cap = Duration::from_secs(5);
        let got: Vec<u128> = (0..8).map(|n| backoff(n, cap).as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(backoff(60, cap), cap);
    }

    #[test]
    fn contact_is_lost_once_the_silence_outlasts_the_lease_and_comes_back() {
        let t0 = Instant::now();
        let lease = Duration::from_secs(3);
        let mut c = Contact::new(lease, t0);
        assert_eq!(c.missed(t0 + Duration::from_secs(2)), ContactNews::Same);
        assert_eq!(
            c.missed(t0 + Duration::from_secs(4)),
            ContactNews::Lost(Duration::from_secs(4))
        );
        assert!(c.is_lost());
        // Said once.
        assert_eq!(c.missed(t0 + Duration::from_secs(9)), ContactNews::Same);
        assert_eq!(
            c.reached(t0 + Duration::from_secs(10)),
            ContactNews::Restored
        );
        assert_eq!(c.reached(t0 + Duration::from_secs(11)), ContactNews::Same);
        // A success resets the clock.
        assert_eq!(c.missed(t0 + Duration::from_secs(13)), ContactNews::Same);
    }
}
