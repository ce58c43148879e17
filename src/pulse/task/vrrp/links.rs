//! The links' state for the trackers (`interface`, `track_interface`): read from the
//! kernel as often as the fastest instance advertises (at most every second), and
//! published only when it changes.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::watch;

use crate::pulse::io::addr::Rtnl;

/// The slowest poll: a link going down is noticed within a second.
pub const POLL_MAX_MS: u64 = 1000;
/// The fastest poll, for centisecond advert intervals.
const POLL_MIN_MS: u64 = 20;

/// Each device by name, true when up and running; a missing device is absent.
pub type LinkStates = BTreeMap<String, bool>;

fn read(rt: &mut Rtnl) -> Result<LinkStates, crate::pulse::io::addr::AddrError> {
    Ok(rt.links()?.into_iter().map(|l| (l.name, l.up)).collect())
}

/// Starts the poller. The first reading is taken before this returns, so the
/// trackers' first verdict already knows the links.
pub fn start(
    mut rt: Rtnl,
    every_ms: u64,
) -> (tokio::task::JoinHandle<()>, watch::Receiver<LinkStates>) {
    let first = read(&mut rt).unwrap_or_else(|e| {
        tracing::error!("VRRP: cannot read the links: {e}");
        LinkStates::new()
    });
    let (tx, rx) = watch::channel(first);
    let every = Duration::from_millis(every_ms.clamp(POLL_MIN_MS, POLL_MAX_MS));
    let task = tokio::spawn(async move {
        let mut failing = false;
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // When every engine is gone, so is the poller.
        while !tx.is_closed() {
            tick.tick().await;
            match read(&mut rt) {
                Ok(now) => {
                    if failing {
                        tracing::info!("VRRP: the links can be read again");
                        failing = false;
                    }
                    tx.send_if_modified(|s| {
                        if *s == now {
                            return false;
                        }
                        for (name, up) in &now {
                            if s.get(name) != Some(up) {
                                tracing::debug!(
                                    "link {name} is {}",
                                    if *up { "up" } else { "down" }
                                );
                            }
                        }
                        for name in s.keys().filter(|n| !now.contains_key(*n)) {
                            tracing::debug!("link {name} is gone");
                        }
                        *s = now;
                        true
                    });
                }
                // A failed read changes no verdict: the last readings stand.
                Err(e) if !failing => {
                    tracing::error!("VRRP: cannot read the links: {e}");
                    failing = true;
                }
                Err(_) => {}
            }
        }
    });
    (task, rx)
}
