//! Client-side rate limiting as client-go's token bucket does it for the kubelet's
//! `kubeAPIQPS`/`kubeAPIBurst` (50/100): `burst` requests at once, then `qps` a second.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Clone, Debug)]
pub struct TokenBucket {
    qps: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket. `qps <= 0` means no limit.
    pub fn new(qps: f64, burst: u32, now: Instant) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            qps,
            burst,
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.qps).min(self.burst);
        self.last = now;
    }

    /// Takes a token, or says when one will be there.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Instant> {
        if self.qps <= 0.0 || !self.qps.is_finite() {
            return Ok(());
        }
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - self.tokens) / self.qps;
        Err(now + Duration::from_secs_f64(wait.max(0.000_1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_steady_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 3, t0);
        for _ in 0..3 {
            assert!(b.try_take(t0).is_ok());
        }
        let when = b.try_take(t0).unwrap_err();
        assert_eq!(when.duration_since(t0).as_millis(), 100);
        assert!(b.try_take(t0 + Duration::from_millis(100)).is_ok());
        assert!(b.try_take(t0 + Duration::from_millis(150)).is_err());
    }

    #[test]
    fn no_limit_when_qps_is_zero() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(0.0, 1, t0);
        for _ in 0..1000 {
            assert!(b.try_take(t0).is_ok());
        }
    }
}
