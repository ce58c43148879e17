//! The health-check tasks: one per distinct probe (a real server checked the same way
//! under several virtual servers is probed once), each on its own interval, started
//! at a spread of offsets so that thousands of checks do not fire together. A probe
//! that panics is a failed check, never a dead supervisor (Piranha's `hard_shutdown`
//! took all of LVS down when one nanny died).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use crate::pulse::logic::schedule::Schedule;
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

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
    /// By what they check and when: a reload keeps a check whose key is unchanged.
    tasks: HashMap<String, JoinHandle<()>>,
    /// The previous configuration's checks, while this set is being built from it.
    previous: HashMap<String, JoinHandle<()>>,
    /// How many of them it kept.
    kept: usize,
    /// Load commands: started again at every reload.
    loads: Vec<JoinHandle<()>>,
}

impl Drop for CheckSet {
    fn drop(&mut self) {
        for t in self
            .tasks
            .values()
            .chain(self.previous.values())
            .chain(&self.loads)
        {
            t.abort();
        }
    }
}

impl CheckSet {
    /// An empty set whose checks will run on `runtime`.
    pub fn new(runtime: Handle) -> CheckSet {
        CheckSet {
            runtime,
            tasks: HashMap::new(),
            previous: HashMap::new(),
            kept: 0,
            loads: Vec::new(),
        }
    }

    /// A set that takes over the checks of `previous` that [`CheckSet::start`] starts
    /// again unchanged (same name, probe, timing): they keep running, on their phase,
    /// so a reload never skips or repeats a check of a server it did not touch. Call
    /// [`CheckSet::retire_previous`] once every check is started.
    pub fn after(mut previous: CheckSet) -> CheckSet {
        let mut set = CheckSet::new(previous.runtime.clone());
        set.previous = std::mem::take(&mut previous.tasks);
        set
    }

    /// Stops what the previous configuration ran and this one does not.
    pub fn retire_previous(&mut self) {
        for (_, t) in self.previous.drain() {
            t.abort();
        }
    }

    /// How many of the previous configuration's checks this set kept.
    pub fn kept(&self) -> usize {
        self.kept
    }

    pub fn len(&self) -> usize {
        self.tasks.len() + self.loads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts a check that reports through `report`, timed by `schedule` (a failure
    /// that has not taken the server out yet is retried after the retry interval).
    pub fn start(
        &mut self,
        name: &str,
        probe: Probe,
        schedule: Schedule,
        tx: Sender<Input>,
        report: impl Fn(Outcome) -> Input + Send + Sync + 'static,
    ) {
        let key = format!(
            "{name}\n{}\n{schedule:?}\n{:?}",
            probe.identity(),
            probe.policy
        );
        if let Some(task) = self.previous.remove(&key) {
            self.tasks.insert(key, task);
            self.kept += 1;
            return;
        }
        let probe = Arc::new(probe);
        let report = Arc::new(report);
        let r = report.clone();
        let task = self.every(
            name,
            schedule,
            tx,
            move || {
                let (p, r) = (probe.clone(), report.clone());
                async move {
                    let o = p.run().await;
                    // An inconclusive check says nothing of the server: no retry.
                    let failed = !o.ok && !o.inconclusive;
                    (r(o), failed)
                }
            },
            move |why| {
                r(Outcome {
                    ok: false,
                    inconclusive: false,
                    detail: format!("the check crashed: {why}"),
                    elapsed: Duration::ZERO,
                    weight: None,
                })
            },
        );
        self.tasks.insert(key, task);
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
        let task = self.every(
            &name,
            Schedule::every(interval),
            tx,
            move || {
                let (p, key) = (probe.clone(), key.clone());
                async move {
                    let input = Input::Load {
                        key,
                        report: p.run().await.map_err(LoadError::Command),
                    };
                    (input, false)
                }
            },
            move |why| Input::Load {
                key: k.clone(),
                report: Err(LoadError::Crashed(why)),
            },
        );
        self.loads.push(task);
    }

    /// Runs `job` as `schedule` says (from a stable offset within the interval, or a
    /// random share of the warmup) and sends what it returns; `job` also says whether
    /// the run failed. A panic becomes `on_panic`'s report (and a failure).
    fn every<J, F>(
        &self,
        name: &str,
        schedule: Schedule,
        tx: Sender<Input>,
        job: J,
        on_panic: impl Fn(String) -> Input + Send + 'static,
    ) -> JoinHandle<()>
    where
        J: Fn() -> F + Send + 'static,
        F: Future<Output = (Input, bool)> + Send + 'static,
    {
        let floor = Duration::from_millis(10);
        let schedule = Schedule {
            interval: schedule.interval.max(floor),
            retry: schedule.retry.max(floor),
            ..schedule
        };
        let offset = match schedule.warmup {
            Some(_) => schedule.first(rand::random::<f64>()),
            None => schedule.phase_wait(epoch().elapsed(), stagger(name, schedule.interval)),
        };
        let first = tokio::time::Instant::now() + offset;
        // Whatever a probe logs (a TLS or program error at debug level) says whose it is.
        let span = tracing::info_span!("check", task = %name);
        self.runtime.spawn(tracing::Instrument::instrument(
            async move {
                let mut due = first;
                tokio::time::sleep_until(due).await;
                let mut failures: u32 = 0;
                loop {
                    // Boxed: a probe's future (TLS, HTTP, …) is large, and kept inline it
                    // would make every one of thousands of idle tasks that large.
                    let (input, failed) =
                        match AssertUnwindSafe(Box::pin(job())).catch_unwind().await {
                            Ok(r) => r,
                            Err(p) => (on_panic(panic_text(p)), true),
                        };
                    if tx.send(input).is_err() {
                        return;
                    }
                    failures = if failed {
                        failures.saturating_add(1)
                    } else {
                        0
                    };
                    // Counted from the moment the check was due, as keepalived
                    // counts from its start: checks sharing a slot stay together
                    // (one wake-up for all of them) however late each was polled.
                    // A check longer than the wait is followed at once.
                    due = (due + schedule.next(failures)).max(tokio::time::Instant::now());
                    tokio::time::sleep_until(due).await;
                }
            },
            span,
        ))
    }
}

/// The process's epoch for check phases (see [`Schedule::phase_wait`]).
fn epoch() -> std::time::Instant {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

/// Slots per interval that check offsets are rounded to: the checks of one slot start
/// together on one wake-up of the checks' thread, and their connections complete on
/// the next, instead of two wake-ups per check; 20 slots still spread ten thousand
/// checks a second to 500 every 50 ms.
const SLOTS: u64 = 20;

/// A fixed offset within the interval, from the check's name: one of [`SLOTS`] slots,
/// spread, and stable across reloads.
fn stagger(name: &str, interval: Duration) -> Duration {
    let mut h = DefaultHasher::new();
    name.hash(&mut h);
    interval * (h.finish() % SLOTS) as u32 / SLOTS as u32
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
        let set = CheckSet::new(Handle::current());
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let r = runs.clone();
        let _task = set.every(
            "crashy",
            Schedule::every(Duration::from_millis(20)),
            tx,
            move || {
                let n = r.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move {
                    if n % 2 == 0 {
                        panic!("probe bug #{n}");
                    }
                    (Input::Stop, false)
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

    /// A failing check is retried after the retry interval until `fall` failures, then
    /// checked at the normal interval (the timing itself is `Schedule`'s, tested there).
    #[tokio::test]
    async fn failures_are_retried_sooner_until_the_server_is_out() {
        let (tx, rx) = std::sync::mpsc::channel();
        let set = CheckSet::new(Handle::current());
        let schedule = Schedule {
            interval: Duration::from_secs(1),
            retry: Duration::from_millis(10),
            fall: 3,
            warmup: Some(Duration::ZERO),
        };
        let _task = set.every(
            "failing",
            schedule,
            tx,
            || async { (Input::Stop, true) },
            |_| Input::Stop,
        );
        let mut at = Vec::new();
        while at.len() < 4 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            while rx.try_recv().is_ok() {
                at.push(std::time::Instant::now());
            }
        }
        let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
        // Two retries well before the interval (the margin covers a loaded machine);
        // after the third failure the server is out: the normal interval, at least.
        assert!(gaps[0] < Duration::from_millis(500), "{gaps:?}");
        assert!(gaps[1] < Duration::from_millis(500), "{gaps:?}");
        assert!(gaps[2] >= Duration::from_millis(990), "{gaps:?}");
    }

    /// A reload keeps a check whose name, probe and timing are unchanged (it goes on
    /// reporting through the closure it was started with, on its phase) and starts a
    /// changed one again; the checks the new configuration lacks stop.
    #[tokio::test]
    async fn a_reload_keeps_unchanged_checks_and_restarts_the_others() {
        let l = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move { while l.accept().await.is_ok() {} });
        let probe = || Probe {
            kind: crate::pulse::io::probe::ProbeKind::Tcp,
            addr: std::net::Ipv4Addr::LOCALHOST.into(),
            port,
            sctp: false,
            timeout: Duration::from_secs(1),
            source: None,
            policy: Arc::new(crate::pulse::io::scripts::Policy::Any),
        };
        let every = |ms| Schedule::every(Duration::from_millis(ms));
        let (tx, rx) = std::sync::mpsc::channel();
        let tag = |generation: &'static str| {
            move |name: &'static str| {
                move |_: Outcome| Input::Checked {
                    identity: Arc::from(format!("{name} {generation}")),
                    outcome: Outcome {
                        ok: true,
                        inconclusive: false,
                        detail: String::new(),
                        elapsed: Duration::ZERO,
                        weight: None,
                    },
                }
            }
        };
        let first = tag("first");
        let mut set = CheckSet::new(Handle::current());
        set.start("same", probe(), every(50), tx.clone(), first("same"));
        set.start("retimed", probe(), every(50), tx.clone(), first("retimed"));
        set.start("dropped", probe(), every(50), tx.clone(), first("dropped"));
        tokio::time::sleep(Duration::from_millis(200)).await;

        let second = tag("second");
        let mut set = CheckSet::after(set);
        set.start("same", probe(), every(50), tx.clone(), second("same"));
        set.start("retimed", probe(), every(60), tx.clone(), second("retimed"));
        set.retire_previous();
        assert_eq!((set.len(), set.kept()), (2, 1));
        // What was queued before the reload is not this test's concern.
        tokio::time::sleep(Duration::from_millis(30)).await;
        while rx.try_recv().is_ok() {}
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut seen = std::collections::BTreeMap::<String, usize>::new();
        while let Ok(Input::Checked { identity, .. }) = rx.try_recv() {
            *seen.entry(identity.to_string()).or_default() += 1;
        }
        let names: Vec<&str> = seen.keys().map(String::as_str).collect();
        assert_eq!(names, ["retimed second", "same first"], "{seen:?}");
    }

    #[test]
    fn offsets_spread_over_the_slots_of_the_interval() {
        let i = Duration::from_secs(1);
        let offsets: Vec<_> = (0..1000)
            .map(|n| stagger(&format!("10.0.{}.{}:80", n / 256, n % 256), i))
            .collect();
        assert!(offsets.iter().all(|o| *o < i));
        // Whole slots of 50 ms, none holding more than twice its share (50).
        assert!(offsets.iter().all(|o| o.as_nanos() % 50_000_000 == 0));
        let mut slots = [0; SLOTS as usize];
        for o in &offsets {
            slots[(o.as_millis() / 50) as usize] += 1;
        }
        assert!(slots.iter().all(|&b| b > 0 && b < 100), "{slots:?}");
    }
}
