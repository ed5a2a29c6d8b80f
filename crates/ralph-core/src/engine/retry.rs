//! Carrying out the decision after a failure: switching to a fallback agent, waiting a stated
//! reset or a back-off, and waiting for a backend another loop found limited. Every wait
//! watches the cancellation token and the STOP request, ticks once a second for the terminal's
//! countdown, and never runs past the runtime limit.

use std::time::Duration;

use chrono::SecondsFormat;
use ralph_agents::ErrorClass;

use super::decision::{control_stop, Decided};
use super::{Engine, EngineError, Stop};
use crate::events::{EventBody, StopReason};
use crate::settings::RetryStrategy;
use crate::shared::Pause;

impl Engine {
    /// Do what [`Decided`] says; `Some` ends the run.
    pub(super) async fn carry_out(
        &mut self,
        n: u32,
        decided: Decided,
    ) -> Result<Option<Stop>, EngineError> {
        match decided {
            Decided::Stop(stop) => Ok(Some(stop)),
            Decided::Continue => Ok(None),
            Decided::Switch(class) => {
                self.switch_agent(n, class).await?;
                Ok(None)
            }
            Decided::Wait {
                class,
                delay,
                stated,
            } => {
                self.share_pause(class, delay, stated);
                self.wait(n, class, delay, stated).await
            }
            Decided::Backoff(class) => {
                let limits = &self.settings.limits;
                if self.run.consecutive_failures < limits.max_consecutive_failures
                    && self.run.iteration < limits.max_iterations
                {
                    let delay = retry_delay(
                        &self.settings.retry,
                        self.run.consecutive_failures,
                        &mut self.rng,
                    );
                    self.share_pause(class, delay, false);
                    self.wait(n, class, delay, false).await
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// A usage or rate limit holds for every loop on the same backend: tell them.
    fn share_pause(&self, class: ErrorClass, delay: Duration, stated: bool) {
        if !matches!(class, ErrorClass::UsageLimit | ErrorClass::RateLimit) || delay.is_zero() {
            return;
        }
        let wall = self.handles.deps.clock.now()
            + chrono::Duration::from_std(delay).unwrap_or_else(|_| chrono::Duration::zero());
        self.handles.limits.pause(
            &self.run.backend,
            Pause {
                until: tokio::time::Instant::now() + delay,
                until_wall: wall,
                class,
                stated,
                by_run: self.run.id.clone(),
            },
        );
    }

    /// Before an iteration: if another loop found this backend limited, wait for the same
    /// reset instead of discovering it again.
    pub(super) async fn wait_for_backend(&mut self) -> Result<Option<Stop>, EngineError> {
        let now = tokio::time::Instant::now();
        let Some(pause) = self.handles.limits.paused(&self.run.backend, now) else {
            return Ok(None);
        };
        if pause.by_run == self.run.id {
            // This loop's own wait already ran its course (or was cut short by the limit).
            return Ok(None);
        }
        let delay = pause.until.saturating_duration_since(now);
        self.wait(self.run.iteration, pause.class, delay, pause.stated)
            .await
    }

    /// Move to the next agent in `agent.fallback` for the rest of this session.
    async fn switch_agent(&mut self, n: u32, class: ErrorClass) -> Result<(), EngineError> {
        let from = self.run.backend.clone();
        self.current += 1;
        let agent = &self.agents[self.current];
        self.run.backend = agent.backend.name().to_string();
        self.run.model = agent.model.clone();
        let ev = self.event(EventBody::AgentSwitched {
            iteration: n,
            from,
            to: self.run.backend.clone(),
            model: self.run.model.clone(),
            reason: class.as_str().to_string(),
        });
        self.save_run(std::slice::from_ref(&ev), false).await?;
        self.emit(&[ev]);
        Ok(())
    }

    /// Wait before the next attempt. `stated`: the agent said when its limit lifts (shown with
    /// the time it ends); otherwise a back-off. Ends early, with the run's stop, on a signal,
    /// `ralph stop --now`, or `ralph stop`/`.ralph/STOP`; never runs past the runtime limit.
    async fn wait(
        &mut self,
        n: u32,
        class: ErrorClass,
        delay: Duration,
        stated: bool,
    ) -> Result<Option<Stop>, EngineError> {
        let remaining = self.settings.limits.max_runtime.as_secs_f64() - self.elapsed();
        let delay = delay.min(Duration::from_secs_f64(remaining.max(0.0)));
        if delay.is_zero() {
            return Ok(None);
        }
        let until = self.handles.deps.clock.now()
            + chrono::Duration::from_std(delay).unwrap_or_else(|_| chrono::Duration::zero());
        self.record(EventBody::RetryScheduled {
            iteration: n,
            delay_s: delay.as_secs_f64(),
            error_class: class.as_str().to_string(),
            until: stated.then(|| until.to_rfc3339_opts(SecondsFormat::Secs, true)),
        })
        .await?;
        let end = tokio::time::Instant::now() + delay;
        let cancel = self.cancel.clone();
        loop {
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            if self.handles.stop.requested() {
                return Ok(Some(stop_file_stop()));
            }
            self.sink.waiting(left, class.as_str());
            // Wake once a second for the countdown and to look for a STOP request.
            let tick = left.min(Duration::from_secs(1));
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                c = cancel.cancelled() => return Ok(Some(control_stop(c))),
            }
        }
    }
}

/// The stop for `ralph stop` / `.ralph/STOP`.
pub(super) fn stop_file_stop() -> Stop {
    Stop::new(
        StopReason::StopRequested,
        "stopped on request (.ralph/STOP); `ralph run` resumes this run",
    )
}

/// The back-off before retry number `failures`: none, linear, or exponential with ±20% jitter
/// (so parallel loops hitting one rate limit do not retry in lockstep), capped at `max_delay`.
/// `rng` is the engine's xorshift state, seeded from [`crate::clock::Deps::seed`].
pub(super) fn retry_delay(
    r: &crate::settings::RetrySettings,
    failures: u32,
    rng: &mut u64,
) -> Duration {
    let base = r.base_delay.as_secs_f64();
    let raw = match r.strategy {
        RetryStrategy::Immediate => 0.0,
        RetryStrategy::Linear => base * failures as f64,
        RetryStrategy::Exponential => {
            let exp = 2f64.powi(failures.saturating_sub(1).min(30) as i32);
            *rng ^= *rng << 13;
            *rng ^= *rng >> 7;
            *rng ^= *rng << 17;
            let jitter = 0.8 + 0.4 * ((*rng >> 11) as f64 / (1u64 << 53) as f64);
            base * exp * jitter
        }
    };
    Duration::from_secs_f64(raw.min(r.max_delay.as_secs_f64()).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::RetrySettings;

    #[test]
    fn back_off_grows_with_jitter_and_is_capped() {
        let r = RetrySettings {
            strategy: RetryStrategy::Exponential,
            base_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(60),
        };
        let mut rng = 42;
        let delays: Vec<f64> = (1..=6)
            .map(|f| retry_delay(&r, f, &mut rng).as_secs_f64())
            .collect();
        for (i, d) in delays.iter().enumerate().take(4) {
            let nominal = 5.0 * 2f64.powi(i as i32);
            assert!(*d >= nominal * 0.8 && *d <= nominal * 1.2, "{i}: {d}");
        }
        assert_eq!(delays[5], 60.0, "capped");
        // The same seed gives the same delays: tests are deterministic.
        let mut again = 42;
        let replay: Vec<f64> = (1..=6)
            .map(|f| retry_delay(&r, f, &mut again).as_secs_f64())
            .collect();
        assert_eq!(delays, replay);
        let linear = RetrySettings {
            strategy: RetryStrategy::Linear,
            ..r.clone()
        };
        assert_eq!(retry_delay(&linear, 3, &mut rng), Duration::from_secs(15));
        let now = RetrySettings {
            strategy: RetryStrategy::Immediate,
            ..r
        };
        assert_eq!(retry_delay(&now, 3, &mut rng), Duration::ZERO);
    }
}
