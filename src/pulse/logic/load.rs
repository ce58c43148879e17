//! Load-based weights: the modern form of Piranha's `load_monitor` (nanny's
//! `adjustWeight`). A command reports a real server's load; [`adjust`] turns the report
//! into a new weight, or none when the change is too small to program.
//!
//! The command ([`LoadProbe`](crate::pulse::io::load::LoadProbe)) is run without a shell:
//! - `load_monitor = uptime`: `rsh_command ADDRESS uptime` (`rsh_command` defaults to
//!   `rsh`; `ssh -o BatchMode=yes` is today's choice, since a daemon cannot answer
//!   prompts).
//! - `rup` and `ruptime` are refused: their daemons (rstatd, rwhod) are long gone.
//! - Any other value is a command with the real server's address appended, or with
//!   `%h` (address) and `%p` (port) replaced when it holds them.
//!
//! Its output ([`parse_report`]) is either a load figure (uptime's
//! `load average: 0.52, 0.40, 0.33`, BSD's `load averages: …`, ruptime's `load 0.52,
//! …`, or a bare number: the 1-minute load), or a percentage such as `75%`: the weight
//! the server asks for, relative to the configured one (HAProxy's agent-check style).
//!
//! [`adjust`] with configured weight W and current weight `last`:
//! - load L (Piranha's formula): L < 1 raises the weight by (W/2)·∛(1−L), up to 10·W;
//!   L > 1 lowers it by (W/2)·∛(L−1), never below W; L = 1 keeps it. A change smaller
//!   than W/4 (integer division, as nanny) is not made, so weights do not flap.
//! - percentage p: W·p/100, kept within [floor, 10·W] where **floor = max(1, W/10)**:
//!   a server may shed most of its traffic but cannot take itself out of the pool
//!   through its load report (that is the health check's job, and a broken agent
//!   printing `0%` must not empty a service). Any change is made.
//! - W = 0 (an administrator's "no new connections") stays 0 whatever the report.
//!
//! A failed command is an error for the caller to log; the weight stays as it is.

/// How much load scaling may raise a weight, as a multiple of the configured one
/// (nanny's `--scale` default, which lvsd never changed).
pub const SCALE: u32 = 10;

/// What a real server reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Report {
    /// The 1-minute load average.
    Load(f64),
    /// The weight asked for, in percent of the configured weight.
    Percent(u32),
}

/// Reads a load report: a load average line, a percentage, or a bare number.
pub fn parse_report(output: &str) -> Option<Report> {
    let lower = output.to_ascii_lowercase();
    // uptime (`load average:`), BSD (`load averages:`), ruptime (`load 0.10,`).
    let word_start = |at: usize| !lower[..at].ends_with(|c: char| c.is_ascii_alphanumeric());
    if let Some((at, _)) = lower.match_indices("load").find(|&(at, _)| word_start(at)) {
        let mut rest = &lower[at + 4..];
        rest = rest.trim_start_matches(' ');
        rest = rest.strip_prefix("averages").unwrap_or(rest);
        rest = rest.strip_prefix("average").unwrap_or(rest);
        rest = rest.trim_start_matches(' ');
        rest = rest.strip_prefix(':').unwrap_or(rest);
        if let Some(l) = leading_number(rest.trim_start()) {
            return Some(Report::Load(l));
        }
    }
    // An agent's `75%` (possibly among words such as `up 75%`).
    let words = || output.split(|c: char| c.is_whitespace() || c == ',');
    if let Some(p) = words().find_map(|w| w.strip_suffix('%')) {
        let p: f64 = p.parse().ok()?;
        return (p.is_finite() && p >= 0.0).then(|| Report::Percent(p.min(1e6) as u32));
    }
    let bare = output.trim();
    leading_number(bare)
        .filter(|_| bare.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
        .map(Report::Load)
}

/// The number at the start of `s`: digits with an optional fraction, whose separator
/// may be a comma as in uptime under some locales (`0,52, 0,40`).
fn leading_number(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let int = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if int == 0 {
        return None;
    }
    let mut text = s[..int].to_string();
    if matches!(b.get(int), Some(b'.' | b',')) {
        let frac = b[int + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if frac > 0 {
            text.push('.');
            text.push_str(&s[int + 1..int + 1 + frac]);
        }
    }
    text.parse().ok().filter(|l: &f64| l.is_finite())
}

/// The weight to program after a report, or `None` to keep `last`. `configured`: the
/// server's configured weight W; `last`: its current weight. See the module
/// documentation for the rules.
pub fn adjust(configured: u32, last: u32, report: Report) -> Option<u32> {
    if configured == 0 {
        return (last != 0).then_some(0);
    }
    let w = f64::from(configured);
    let max = (u64::from(configured) * u64::from(SCALE)).min(u64::from(u32::MAX));
    let new = match report {
        Report::Load(l) if !l.is_finite() || l < 0.0 || l == 1.0 => return None,
        Report::Load(l) => {
            let step = w / 2.0 * (1.0 - l).abs().cbrt();
            let new = if l < 1.0 {
                (f64::from(last) + step).min(max as f64)
            } else {
                (f64::from(last) - step).max(w)
            };
            let new = new.round() as u32;
            if new.abs_diff(last) < configured / 4 {
                return None;
            }
            new
        }
        Report::Percent(p) => {
            let floor = u64::from((configured / 10).max(1));
            let new = u64::from(configured) * u64::from(p) / 100;
            new.clamp(floor, max) as u32
        }
    };
    (new != last).then_some(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_and_friends() {
        let load = |s: &str| match parse_report(s) {
            Some(Report::Load(l)) => l,
            other => panic!("{s:?}: {other:?}"),
        };
        assert_eq!(
            load(" 10:14:01 up 12 days,  3:02,  2 users,  load average: 0.52, 0.40, 0.33\n"),
            0.52
        );
        assert_eq!(
            load("10:14  up 3 days, 2 users, load averages: 1.93 2.04 2.10"),
            1.93
        );
        assert_eq!(load("up 3 days, load average: 0,52, 0,40, 0,33"), 0.52);
        assert_eq!(
            load("rs1  up 2+03:04,  3 users,  load 0.10, 0.20, 0.30"),
            0.10
        );
        assert_eq!(load("Load Average: 12.5, 3, 1"), 12.5);
        assert_eq!(load("2\n"), 2.0);
        assert_eq!(load("0.75"), 0.75);
        assert_eq!(load("load average: 3, 2, 1"), 3.0);
    }

    #[test]
    fn percentages_and_garbage() {
        assert_eq!(parse_report("75%\n"), Some(Report::Percent(75)));
        assert_eq!(parse_report("up 150%"), Some(Report::Percent(150)));
        assert_eq!(parse_report("ready,33.9%"), Some(Report::Percent(33)));
        assert_eq!(parse_report("0%"), Some(Report::Percent(0)));
        assert_eq!(parse_report("overload 75%"), Some(Report::Percent(75)));
        for bad in [
            "",
            "\n",
            "ok",
            "-1",
            "load average: n/a",
            "x%",
            "12 users",
            "1e9",
        ] {
            assert_eq!(parse_report(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn load_follows_piranha() {
        // L < 1 raises by (W/2)·∛(1−L): W=100, L=0 → +50.
        assert_eq!(adjust(100, 100, Report::Load(0.0)), Some(150));
        // L = 0.875: ∛0.125 = 0.5 → +25, exactly W/4: applied.
        assert_eq!(adjust(100, 100, Report::Load(0.875)), Some(125));
        // L = 0.9: +23.2 < W/4: not applied.
        assert_eq!(adjust(100, 100, Report::Load(0.9)), None);
        // Capped at 10·W.
        assert_eq!(adjust(100, 980, Report::Load(0.0)), None, "+20 < W/4");
        assert_eq!(adjust(100, 960, Report::Load(0.0)), Some(1000));
        assert_eq!(adjust(100, 1000, Report::Load(0.0)), None);
        // L > 1 lowers by (W/2)·∛(L−1): L=9 → −100, never below W.
        assert_eq!(adjust(100, 400, Report::Load(9.0)), Some(300));
        assert_eq!(adjust(100, 150, Report::Load(9.0)), Some(100));
        assert_eq!(adjust(100, 100, Report::Load(9.0)), None);
        assert_eq!(adjust(100, 100, Report::Load(1000.0)), None);
        // L = 1 or nonsense: unchanged.
        assert_eq!(adjust(100, 300, Report::Load(1.0)), None);
        assert_eq!(adjust(100, 300, Report::Load(f64::NAN)), None);
        assert_eq!(adjust(100, 300, Report::Load(-1.0)), None);
        // Small weights: W/4 = 0, so any real change is made.
        assert_eq!(adjust(1, 1, Report::Load(0.0)), Some(2));
        assert_eq!(adjust(3, 1, Report::Load(5.0)), Some(3), "floored at W");
        assert_eq!(adjust(1, 10, Report::Load(0.0)), None, "at 10·W");
    }

    #[test]
    fn percentages_scale_the_configured_weight_within_bounds() {
        assert_eq!(adjust(100, 100, Report::Percent(75)), Some(75));
        assert_eq!(adjust(100, 75, Report::Percent(75)), None);
        assert_eq!(adjust(100, 100, Report::Percent(100)), None);
        assert_eq!(adjust(100, 100, Report::Percent(250)), Some(250));
        assert_eq!(adjust(100, 100, Report::Percent(5000)), Some(1000), "10·W");
        // The floor: max(1, W/10).
        assert_eq!(adjust(100, 100, Report::Percent(0)), Some(10));
        assert_eq!(adjust(100, 100, Report::Percent(3)), Some(10));
        assert_eq!(adjust(5, 5, Report::Percent(0)), Some(1));
        assert_eq!(adjust(1, 1, Report::Percent(0)), None, "floor 1");
        // Small changes are made too: the server asked for them.
        assert_eq!(adjust(100, 100, Report::Percent(99)), Some(99));
        // The largest weights do not overflow.
        assert_eq!(
            adjust(u32::MAX / 10, 1, Report::Percent(u32::MAX)),
            Some(u32::MAX / 10 * 10)
        );
    }

    #[test]
    fn weight_zero_stays_zero() {
        assert_eq!(adjust(0, 0, Report::Load(0.0)), None);
        assert_eq!(adjust(0, 0, Report::Percent(200)), None);
        assert_eq!(adjust(0, 5, Report::Load(3.0)), Some(0));
    }
}
