//! The last hour of each virtual server's traffic (connections and bytes per second)
//! and of each real server's health, sampled from the supervisor's status, kept in
//! memory with a bounded size, and drawn as small SVG pictures on the monitoring page
//! (server-side, no script). Pure but for [`sample`], the task that feeds it.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write;
use std::time::Duration;

use crate::pulse::logic::control::Status;

/// How far back the pictures go.
pub const WINDOW_MS: u64 = 3_600_000;
/// How often the status is sampled.
pub const EVERY: Duration = Duration::from_secs(10);
/// Samples kept per virtual server: the window at [`EVERY`].
const POINTS: usize = (WINDOW_MS / 10_000) as usize;
/// Health changes kept per real server within the window (a flapping server keeps
/// its latest).
const CHANGES: usize = 120;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    at_ms: u64,
    cps: u64,
    bps: u64,
}

/// What the monitoring page draws from.
#[derive(Debug, Default)]
pub struct Trends {
    traffic: HashMap<String, VecDeque<Sample>>,
    /// (virtual, server) → (since, health), oldest first.
    health: HashMap<(String, String), VecDeque<(u64, String)>>,
}

impl Trends {
    /// Records one status taken at `now_ms`, and forgets what left the window (and
    /// the services and servers that are gone from it).
    pub fn record(&mut self, now_ms: u64, s: &Status) {
        let from = now_ms.saturating_sub(WINDOW_MS);
        for svc in &s.services {
            let q = self.traffic.entry(svc.name.clone()).or_default();
            q.push_back(Sample {
                at_ms: now_ms,
                cps: svc.cps,
                bps: svc.inbps.saturating_add(svc.outbps),
            });
            while q.len() > POINTS || q.front().is_some_and(|x| x.at_ms < from) {
                q.pop_front();
            }
            for r in &svc.servers {
                let health = if r.drained {
                    "drained".to_string()
                } else {
                    r.health.clone()
                };
                let q = self
                    .health
                    .entry((svc.name.clone(), r.name.clone()))
                    .or_default();
                if q.back().is_none_or(|(_, h)| *h != health) {
                    q.push_back((now_ms, health));
                }
                // The change before the window still says what held at its start.
                while q.len() > CHANGES || (q.len() > 1 && q[1].0 <= from) {
                    q.pop_front();
                }
            }
        }
        self.traffic
            .retain(|_, q| q.back().is_some_and(|x| x.at_ms >= from));
        let present: std::collections::HashSet<(&str, &str)> = s
            .services
            .iter()
            .flat_map(|v| {
                v.servers
                    .iter()
                    .map(move |r| (v.name.as_str(), r.name.as_str()))
            })
            .collect();
        self.health
            .retain(|(v, r), _| present.contains(&(v.as_str(), r.as_str())));
    }

    /// Connections per second of `virtual_server` over the window: an SVG, and the peak.
    pub fn connections(&self, virtual_server: &str, now_ms: u64) -> Option<(String, u64)> {
        self.plot(virtual_server, now_ms, |s| s.cps)
    }

    /// Bytes per second (in and out) of `virtual_server`: an SVG, and the peak.
    pub fn bytes(&self, virtual_server: &str, now_ms: u64) -> Option<(String, u64)> {
        self.plot(virtual_server, now_ms, |s| s.bps)
    }

    fn plot(
        &self,
        virtual_server: &str,
        now_ms: u64,
        value: fn(&Sample) -> u64,
    ) -> Option<(String, u64)> {
        let q = self.traffic.get(virtual_server)?;
        let peak = q.iter().map(value).max()?;
        let from = now_ms.saturating_sub(WINDOW_MS);
        let (w, h) = (240.0, 40.0);
        let x = |at: u64| (at.saturating_sub(from) as f64 / WINDOW_MS as f64 * w).min(w);
        let y = |v: u64| {
            if peak == 0 {
                h - 1.0
            } else {
                h - 1.0 - v as f64 / peak as f64 * (h - 2.0)
            }
        };
        let mut points = String::new();
        for s in q {
            let _ = write!(points, "{:.1},{:.1} ", x(s.at_ms), y(value(s)));
        }
        Some((
            format!(
                r#"<svg class="spark" viewBox="0 0 240 40" width="240" height="40" aria-hidden="true"><rect class="frame" x="0" y="0" width="240" height="40"/><polyline points="{}"/></svg>"#,
                points.trim_end()
            ),
            peak,
        ))
    }

    /// The health of a real server over the window: coloured spans (by the health's
    /// class) in an SVG; `None` before the first sample.
    pub fn timeline(&self, virtual_server: &str, server: &str, now_ms: u64) -> Option<String> {
        let q = self
            .health
            .get(&(virtual_server.to_string(), server.to_string()))?;
        let from = now_ms.saturating_sub(WINDOW_MS);
        let w = 120.0;
        let x = |at: u64| (at.max(from) - from) as f64 / WINDOW_MS as f64 * w;
        let mut out = String::from(
            r#"<svg class="timeline" viewBox="0 0 120 10" width="120" height="10" aria-hidden="true">"#,
        );
        for (i, (since, health)) in q.iter().enumerate() {
            let until = q.get(i + 1).map_or(now_ms, |n| n.0);
            let (x0, x1) = (x(*since), x(until));
            let class: String = health
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            let _ = write!(
                out,
                r#"<rect class="{class}" x="{x0:.1}" y="0" width="{:.1}" height="10"/>"#,
                (x1 - x0).max(0.5)
            );
        }
        out.push_str("</svg>");
        Some(out)
    }
}

/// Samples the supervisor's status into `trends` every [`EVERY`], for as long as the
/// admin UI runs.
pub async fn sample(state: super::AppState) {
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        let live = state.live.status().await;
        if let super::live::LiveStatus::Running(s) = &*live {
            let now = crate::clock::unix_ms();
            use crate::sync::Recover;
            state.trends.locked().record(now, s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pulse::logic::control::{ServerStatus, ServiceStatus};

    fn status(cps: u64, health: &str) -> Status {
        Status {
            services: vec![ServiceStatus {
                name: "www".into(),
                cps,
                inbps: 1000 * cps,
                outbps: 9000 * cps,
                servers: vec![ServerStatus {
                    name: "rs1".into(),
                    health: health.into(),
                    ..ServerStatus::default()
                }],
                ..ServiceStatus::default()
            }],
            ..Status::default()
        }
    }

    #[test]
    fn an_hour_is_kept_and_drawn_no_more() {
        let mut t = Trends::default();
        let start = 10 * WINDOW_MS;
        // Two hours of samples every 10 s, traffic rising.
        for i in 0..720u64 {
            let health = if (300..310).contains(&i) {
                "down"
            } else {
                "up"
            };
            t.record(start + i * 10_000, &status(i, health));
        }
        let now = start + 719 * 10_000;
        assert_eq!(t.traffic["www"].len(), POINTS);
        let (svg, peak) = t.connections("www", now).unwrap();
        assert_eq!(peak, 719);
        assert_eq!(svg.matches(',').count(), POINTS, "one point per sample");
        let (_, bytes_peak) = t.bytes("www", now).unwrap();
        assert_eq!(bytes_peak, 719 * 10_000);
        // The outage was more than an hour ago: the hour is all up.
        let line = t.timeline("www", "rs1", now).unwrap();
        assert_eq!(line.matches("<rect").count(), 1, "{line}");
        assert!(line.contains(r#"class="up""#));
        assert!(t.connections("nothing", now).is_none());
    }

    #[test]
    fn health_changes_are_spans_and_gone_servers_are_forgotten() {
        let mut t = Trends::default();
        let at = |m: u64| 1_000_000_000 + m * 60_000;
        t.record(at(0), &status(1, "up"));
        t.record(at(20), &status(1, "down"));
        t.record(at(30), &status(1, "up"));
        let line = t.timeline("www", "rs1", at(60)).unwrap();
        assert_eq!(line.matches("<rect").count(), 3);
        assert!(line.contains(r#"class="down" x="40.0""#), "{line}");
        // The server left the configuration.
        let mut gone = status(1, "up");
        gone.services[0].servers.clear();
        t.record(at(61), &gone);
        assert!(t.timeline("www", "rs1", at(61)).is_none());
        // And the service: forgotten once its samples leave the window.
        t.record(at(200), &Status::default());
        assert!(t.connections("www", at(200)).is_none());
    }
}
