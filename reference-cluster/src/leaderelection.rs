//! Lease-based leader election (client-go's `leaderelection` with a `LeaseLock`), for any
//! component that must run as a single active replica: the scheduler and the
//! controller-manager.
//!
//! Safety comes from two rules. Every write of the Lease is a compare-and-swap on its
//! `resourceVersion`, so two candidates never both succeed in taking it. And a leader that
//! cannot renew for `renew_deadline` stops acting, while a candidate only takes over after
//! seeing the lease unchanged for `lease_duration` (> `renew_deadline`) on its own clock; so the
//! old leader has stopped before the new one starts.

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use parking_lot::Mutex;
use rand::Rng;
use tokio::sync::watch;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderElectionConfig {
    pub namespace: String,
    pub name: String,
    /// Unique per candidate (upstream: `<hostname>_<uuid>`).
    pub identity: String,
    /// How long a lease is valid without renewal (upstream default 15s).
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it gives up leading (10s).
    pub renew_deadline: Duration,
    /// How often candidates try to acquire and the leader renews (2s).
    pub retry_period: Duration,
    /// Hand the lease back when stopping, so a standby need not wait for it to expire.
    pub release_on_cancel: bool,
}

impl LeaderElectionConfig {
    /// Upstream defaults for the lease `namespace/name`.
    pub fn new(namespace: &str, name: &str, identity: &str) -> LeaderElectionConfig {
        LeaderElectionConfig {
            namespace: namespace.to_string(),
            name: name.to_string(),
            identity: identity.to_string(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            release_on_cancel: false,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.lease_duration <= self.renew_deadline {
            return Err("leaseDuration must be greater than renewDeadline".into());
        }
        if self.renew_deadline.as_secs_f64() <= 1.2 * self.retry_period.as_secs_f64() {
            return Err("renewDeadline must be greater than retryPeriod*JitterFactor".into());
        }
        if self.lease_duration < Duration::from_secs(1) || self.retry_period.is_zero() {
            return Err(
                "leaseDuration must be at least 1s and retryPeriod greater than zero".into(),
            );
        }
        if self.identity.is_empty() {
            return Err("identity must not be empty".into());
        }
        Ok(())
    }
}

/// A default identity: the host name plus a random suffix, as upstream builds it.
pub fn default_identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}_{}", uuid::Uuid::new_v4())
}

#[derive(Debug, thiserror::Error)]
pub enum LeaderElectionError {
    #[error("leader election lost")]
    Lost,
    #[error("invalid leader election configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Leading(anyhow::Error),
}

/// What this candidate last saw of the lease.
#[derive(Clone, Debug, PartialEq)]
struct Record {
    holder: String,
    lease_seconds: i32,
    acquire: Option<Timestamp>,
    renew: Option<Timestamp>,
    transitions: i32,
}

impl Record {
    fn of(spec: Option<&LeaseSpec>) -> Record {
        let s = spec.cloned().unwrap_or_default();
        Record {
            holder: s.holder_identity.unwrap_or_default(),
            lease_seconds: s.lease_duration_seconds.unwrap_or(0),
            acquire: s.acquire_time.map(|t| t.0),
            renew: s.renew_time.map(|t| t.0),
            transitions: s.lease_transitions.unwrap_or(0),
        }
    }

    fn spec(&self) -> LeaseSpec {
        LeaseSpec {
            holder_identity: (!self.holder.is_empty()).then(|| self.holder.clone()),
            lease_duration_seconds: Some(self.lease_seconds),
            acquire_time: self.acquire.map(MicroTime),
            renew_time: self.renew.map(MicroTime),
            lease_transitions: Some(self.transitions),
            ..Default::default()
        }
    }
}

struct Observed {
    record: Option<Record>,
    /// When the record last changed, on our clock.
    at: Instant,
    /// The lease as last read or written (its resourceVersion is the CAS token).
    lease: Option<Lease>,
}

pub struct LeaderElector {
    api: Api<Lease>,
    cfg: LeaderElectionConfig,
    observed: Mutex<Observed>,
}

impl LeaderElector {
    pub fn new(
        client: kube::Client,
        cfg: LeaderElectionConfig,
    ) -> Result<LeaderElector, LeaderElectionError> {
        cfg.validate().map_err(LeaderElectionError::Config)?;
        Ok(LeaderElector {
            api: Api::namespaced(client, &cfg.namespace),
            cfg,
            observed: Mutex::new(Observed {
                record: None,
                at: Instant::now(),
                lease: None,
            }),
        })
    }

    pub fn config(&self) -> &LeaderElectionConfig {
        &self.cfg
    }

    /// Whether the last observed holder is us.
    pub fn is_leader(&self) -> bool {
        self.observed
            .lock()
            .record
            .as_ref()
            .is_some_and(|r| r.holder == self.cfg.identity)
    }

    /// The holder of the lease as last observed.
    pub fn observed_leader(&self) -> Option<String> {
        self.observed
            .lock()
            .record
            .as_ref()
            .map(|r| r.holder.clone())
            .filter(|h| !h.is_empty())
    }

    fn lease_valid(&self, now: Instant) -> bool {
        let o = self.observed.lock();
        let secs = o
            .record
            .as_ref()
            .map(|r| r.lease_seconds)
            .unwrap_or(0)
            .max(0) as u64;
        o.at + Duration::from_secs(secs) > now
    }

    fn set_observed(&self, record: Record, lease: Lease) {
        let mut o = self.observed.lock();
        o.record = Some(record);
        o.at = Instant::now();
        o.lease = Some(lease);
    }

    async fn write(&self, mut lease: Lease, record: &Record) -> Result<Lease, kube::Error> {
        lease.spec = Some(record.spec());
        // `replace` sends the resourceVersion we last saw: a concurrent writer makes it fail.
        self.api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await
    }

    /// One attempt to take or keep the lease; true if we hold it afterwards.
    pub async fn try_acquire_or_renew(&self) -> bool {
        // A hung request counts as a failed attempt.
        tokio::time::timeout(self.cfg.renew_deadline, self.try_acquire_or_renew_inner())
            .await
            .unwrap_or_default()
    }

    async fn try_acquire_or_renew_inner(&self) -> bool {
        let now = Timestamp::now();
        let mut record = Record {
            holder: self.cfg.identity.clone(),
            lease_seconds: self.cfg.lease_duration.as_secs().max(1) as i32,
            acquire: Some(now),
            renew: Some(now),
            transitions: 0,
        };
        // Fast path: renew on top of the lease we wrote last.
        if self.is_leader() && self.lease_valid(Instant::now()) {
            let (old, lease) = {
                let o = self.observed.lock();
                (o.record.clone(), o.lease.clone())
            };
            if let (Some(old), Some(lease)) = (old, lease) {
                record.acquire = old.acquire;
                record.transitions = old.transitions;
                if let Ok(updated) = self.write(lease, &record).await {
                    self.set_observed(record, updated);
                    return true;
                }
            }
        }
        let current = match self.api.get_opt(&self.cfg.name).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "cannot read lease");
                return false;
            }
        };
        let Some(current) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.cfg.name.clone()),
                    namespace: Some(self.cfg.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(record.spec()),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.set_observed(record, created);
                    true
                }
                Err(_) => false,
            };
        };
        let seen = Record::of(current.spec.as_ref());
        {
            let mut o = self.observed.lock();
            if o.record.as_ref() != Some(&seen) {
                o.record = Some(seen.clone());
                o.at = Instant::now();
            }
            o.lease = Some(current.clone());
        }
        if !seen.holder.is_empty() && self.lease_valid(Instant::now()) && !self.is_leader() {
            return false;
        }
        if self.is_leader() {
            record.acquire = seen.acquire;
            record.transitions = seen.transitions;
        } else {
            record.transitions = seen.transitions + 1;
        }
        match self.write(current, &record).await {
            Ok(updated) => {
                self.set_observed(record, updated);
                true
            }
            Err(_) => false,
        }
    }

    /// Gives the lease up (empty holder, 1s duration) if we hold it.
    pub async fn release(&self) -> bool {
        if !self.is_leader() {
            return true;
        }
        let (old, lease) = {
            let o = self.observed.lock();
            (o.record.clone(), o.lease.clone())
        };
        let (Some(old), Some(lease)) = (old, lease) else {
            return true;
        };
        let now = Timestamp::now();
        let record = Record {
            holder: String::new(),
            lease_seconds: 1,
            acquire: Some(now),
            renew: Some(now),
            transitions: old.transitions,
        };
        match tokio::time::timeout(self.cfg.renew_deadline, self.write(lease, &record)).await {
            Ok(Ok(updated)) => {
                self.set_observed(record, updated);
                true
            }
            _ => false,
        }
    }

    fn jittered(&self) -> Duration {
        let base = self.cfg.retry_period.as_secs_f64();
        Duration::from_secs_f64(base + rand::rng().random_range(0.0..=1.2) * base)
    }

    /// Tries until the lease is ours; false if `shutdown` came first.
    pub async fn acquire(&self, shutdown: &mut watch::Receiver<bool>) -> bool {
        loop {
            if *shutdown.borrow() {
                return false;
            }
            if self.try_acquire_or_renew().await {
                tracing::info!(lease = %format!("{}/{}", self.cfg.namespace, self.cfg.name), identity = %self.cfg.identity, "acquired lease");
                return true;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.jittered()) => {}
                r = shutdown.changed() => if r.is_err() { return false },
            }
        }
    }

    /// Renews every retry period; returns `Err(Lost)` when renewing kept failing for the renew
    /// deadline, `Ok` when `shutdown` turned true.
    async fn renew_loop(
        &self,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), LeaderElectionError> {
        loop {
            let deadline = Instant::now() + self.cfg.renew_deadline;
            loop {
                if self.try_acquire_or_renew().await {
                    break;
                }
                if Instant::now() + self.cfg.retry_period >= deadline {
                    tracing::warn!(identity = %self.cfg.identity, "failed to renew lease; leadership lost");
                    return Err(LeaderElectionError::Lost);
                }
                tokio::select! {
                    _ = tokio::time::sleep(self.cfg.retry_period) => {}
                    r = shutdown.changed() => if r.is_err() || *shutdown.borrow() { return Ok(()) },
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.retry_period) => {}
                r = shutdown.changed() => if r.is_err() || *shutdown.borrow() { return Ok(()) },
            }
        }
    }

    /// Waits for leadership, then runs `lead` while renewing. `lead` gets a receiver that turns
    /// true when it must stop (shutdown, or leadership lost); it should return promptly then.
    /// Returns `Err(Lost)` when leadership was lost, `Ok` on shutdown.
    pub async fn run<F, Fut>(
        &self,
        mut shutdown: watch::Receiver<bool>,
        lead: F,
    ) -> Result<(), LeaderElectionError>
    where
        F: FnOnce(watch::Receiver<bool>) -> Fut,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        if !self.acquire(&mut shutdown).await {
            return Ok(());
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let leading = lead(stop_rx);
        tokio::pin!(leading);
        let outcome = tokio::select! {
            r = &mut leading => {
                let _ = stop_tx.send(true);
                r.map_err(LeaderElectionError::Leading)
            }
            r = self.renew_loop(&mut shutdown) => {
                let _ = stop_tx.send(true);
                let led = leading.await;
                match r {
                    Err(e) => Err(e),
                    Ok(()) => led.map_err(LeaderElectionError::Leading),
                }
            }
        };
        if self.cfg.release_on_cancel {
            self.release().await;
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation() {
        let mut c = LeaderElectionConfig::new("kube-system", "kube-scheduler", "me");
        assert!(c.validate().is_ok());
        c.renew_deadline = Duration::from_secs(20);
        assert!(c.validate().unwrap_err().contains("leaseDuration"));
        c.renew_deadline = Duration::from_secs(2);
        assert!(c.validate().unwrap_err().contains("renewDeadline"));
        c.renew_deadline = Duration::from_secs(10);
        c.identity.clear();
        assert!(c.validate().is_err());
    }

    #[test]
    fn records_round_trip_through_the_lease_spec() {
        let r = Record {
            holder: "a".into(),
            lease_seconds: 15,
            acquire: Some(Timestamp::from_second(1_700_000_000).unwrap()),
            renew: Some(Timestamp::from_second(1_700_000_010).unwrap()),
            transitions: 3,
        };
        assert_eq!(Record::of(Some(&r.spec())), r);
        let released = Record {
            holder: String::new(),
            ..r
        };
        assert!(released.spec().holder_identity.is_none());
    }

    #[test]
    fn identities_are_unique() {
        assert_ne!(default_identity(), default_identity());
    }
}
