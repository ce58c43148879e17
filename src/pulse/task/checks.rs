//! The health-check tasks: one per distinct probe (a real server checked the same way
//! under several virtual servers is probed once), each on its own interval, started
//! at a spread of offsets so that thousands of checks do not fire together. A probe
//! that panics is a failed check, never a dead supervisor (Piranha's `hard_shutdown`
//! took all of LVS down when one nanny died).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;

use crate::pulse::io::load::LoadProbe;
use crate::pulse::io::probe::{Outcome, Probe};
use crate::pulse::task::lvsd::{Input, Key, LoadError};

/// A single-threaded runtime of their own for the checks, on their own thread: ten
/// thousand probes a second then never delay a heartbeat, and need no wake-ups across
/// threads. Dropping it stops the thread and every check on it.
pub struct CheckRuntime {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CheckRuntime {
    pub fn start() -> std::io::Result<CheckRuntime> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = rt.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("checks".into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = stopped.await;
                })
            })?;
        Ok(CheckRuntime {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }
}

impl Drop for CheckRuntime {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The running checks of one configuration; dropping it stops them.
pub struct CheckSet {
    runtime: Handle,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for CheckSet {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl CheckSet {
    /// An empty set whose checks will run on `runtime`.
    pub fn new(runtime: Handle) -> CheckSet {
        CheckSet {
            runtime,
            tasks: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Starts a check that reports through `report` every `interval`.
    pub fn start(
        &mut self,
        name: &str,
        probe: Probe,
        interval: Duration,
        tx: Sender<Input>,
        report: impl Fn(Outcome) -> Input + Send + Sync + 'static,
    ) {
        let probe = Arc::new(probe);
        let report = Arc::new(report);
        let r = report.clone();
        self.every(
            name,
            interval,
            tx,
            move || {
                let (p, r) = (probe.clone(), report.clone());
                async move { r(p.run().await) }
            },
            move |why| {
                r(Outcome {
                    ok: false,
                    inconclusive: false,
                    detail: format!("the check crashed: {why}"),
                    elapsed: Duration::ZERO,
                })
            },
        );
    }

    /// Starts a real server's load command (see [`crate::pulse::logic::load`]), reported as
    /// [`Input::Load`] every `interval`.
    pub fn start_load(
        &mut self,
        key: Key,
        probe: LoadProbe,
        interval: Duration,
        tx: Sender<Input>,
    ) {
        let probe = Arc::new(probe);
        let name = format!("load {}/{}", key.0, key.1);
        let k = key.clone();
        self.every(
            &name,
            interval,
            tx,
            move || {
                let (p, key) = (probe.clone(), key.clone());
                async move {
                    Input::Load {
                        key,
                        report: p.run().await.map_err(LoadError::Command),
                    }
                }
            },
            move |why| Input::Load {
                key: k.clone(),
                report: Err(LoadError::Crashed(why)),
            },
        );
    }

    /// Runs `job` every `interval` from a stable offset and sends what it returns; each
    /// run is a task of its own so that a panic becomes `on_panic`'s report.
    fn every<J, F>(
        &mut self,
        name: &str,
        interval: Duration,
        tx: Sender<Input>,
        job: J,
        on_panic: impl Fn(String) -> Input + Send + 'static,
    ) where
        J: Fn() -> F + Send + 'static,
        F: Future<Output = Input> + Send + 'static,
    {
        let interval = interval.max(Duration::from_millis(10));
        let offset = stagger(name, interval);
        // Whatever a probe logs (a TLS or program error at debug level) says whose it is.
        let span = tracing::info_span!("check", task = %name);
        self.tasks
            .push(self.runtime.spawn(tracing::Instrument::instrument(
                async move {
                    tokio::time::sleep(offset).await;
                    let mut tick = tokio::time::interval(interval);
                    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
                    loop {
                        tick.tick().await;
                        // Boxed: a probe's future (TLS, HTTP, …) is large, and kept inline it
                        // would make every one of thousands of idle tasks that large.
                        let input = match AssertUnwindSafe(Box::pin(job())).catch_unwind().await {
                            Ok(i) => i,
                            Err(p) => on_panic(panic_text(p)),
                        };
                        if tx.send(input).is_err() {
                            return;
                        }
                    }
                },
                span,
            )));
    }
}

/// A fixed offset within the interval, from the check's name: spread, and stable
/// across reloads.
fn stagger(name: &str, interval: Duration) -> Duration {
    let mut h = DefaultHasher::new();
    name.hash(&mut h);
    let ms = interval.as_millis().max(1) as u64;
    Duration::from_millis(h.finish() % ms)
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_check_is_reported_and_keeps_its_schedule() {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut set = CheckSet::new(Handle::current());
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let r = runs.clone();
        set.every(
            "crashy",
            Duration::from_millis(20),
            tx,
            move || {
                let n = r.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move {
                    if n % 2 == 0 {
                        panic!("probe bug #{n}");
                    }
                    Input::Stop
                }
            },
            |why| Input::Load {
                key: ("v".into(), "s".into()),
                report: Err(LoadError::Crashed(why)),
            },
        );
        let mut seen = Vec::new();
        while seen.len() < 4 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            while let Ok(i) = rx.try_recv() {
                seen.push(match i {
                    Input::Load {
                        report: Err(LoadError::Crashed(why)),
                        ..
                    } => why,
                    _ => "ran".to_string(),
                });
            }
        }
        assert_eq!(seen[..4], ["probe bug #0", "ran", "probe bug #2", "ran"]);
    }

    #[test]
    fn offsets_spread_within_the_interval() {
        let i = Duration::from_secs(1);
        let offsets: Vec<_> = (0..1000)
            .map(|n| stagger(&format!("10.0.{}.{}:80", n / 256, n % 256), i))
            .collect();
        assert!(offsets.iter().all(|o| *o < i));
        // No tenth of the interval holds more than a quarter of the checks.
        let mut buckets = [0; 10];
        for o in &offsets {
            buckets[(o.as_millis() / 100) as usize] += 1;
        }
        assert!(buckets.iter().all(|&b| b < 250), "{buckets:?}");
    }
}
