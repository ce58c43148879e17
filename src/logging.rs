//! Where the log goes: text on stderr, one line per event. Under systemd (stderr is the
//! journal's stream, as `JOURNAL_STREAM` says) each line starts with its syslog
//! priority (`<4>` for a warning, sd-daemon(3)), which the journal takes as the entry's
//! priority, so `journalctl -p warning -u lvs-director-pulse` finds the problems; and
//! the journal's own timestamps are not repeated in the text. The fields of an event
//! stay in its line (`journalctl -u` shows the whole of it). `LVS_DIRECTOR_LOG` sets the
//! levels, in `RUST_LOG` syntax (`info`, `lvs_director::pulse=debug`, …).

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// The variable that sets the levels.
pub const LEVEL_VAR: &str = "LVS_DIRECTOR_LOG";

/// Installs the subscriber; `default` is the filter when `LVS_DIRECTOR_LOG` is unset or
/// invalid (the error is then reported once the logger is up).
pub fn init(default: &str) {
    let (filter, bad) = match std::env::var(LEVEL_VAR) {
        Ok(v) => match EnvFilter::try_new(&v) {
            Ok(f) => (f, None),
            Err(e) => (
                EnvFilter::new(default),
                Some(format!("{LEVEL_VAR}={v}: {e}")),
            ),
        },
        Err(_) => (EnvFilter::new(default), None),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if stderr_is_journal() {
        builder
            .event_format(SyslogPriority(
                tracing_subscriber::fmt::format()
                    .without_time()
                    .with_ansi(false),
            ))
            .init();
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    if let Some(bad) = bad {
        tracing::warn!("{bad}; using {default:?}");
    }
}

/// An event format with the line's syslog priority in front (sd-daemon(3)).
struct SyslogPriority<F>(F);

/// syslog's meaning of the levels: info is informational (6), not a notice.
fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

impl<S, N, F> FormatEvent<S, N> for SyslogPriority<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        write!(writer, "<{}>", priority(event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

/// systemd.exec(5): `JOURNAL_STREAM` is "DEVICE:INODE" of the stream that stdout or
/// stderr is connected to; it is inherited, so only a match with our own stderr counts
/// (a program started from a service with its output redirected must not log to the
/// journal behind that redirection).
fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some(stream) = stream.to_str().and_then(parse_stream) else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd)
        .metadata()
        .is_ok_and(|m| (m.dev(), m.ino()) == stream)
}

fn parse_stream(value: &str) -> Option<(u64, u64)> {
    let (dev, ino) = value.split_once(':')?;
    Some((dev.parse().ok()?, ino.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_syslog_priorities() {
        assert_eq!(priority(&Level::ERROR), 3);
        assert_eq!(priority(&Level::WARN), 4);
        assert_eq!(priority(&Level::INFO), 6);
        assert_eq!(priority(&Level::DEBUG), 7);
        assert_eq!(priority(&Level::TRACE), 7);
    }

    #[test]
    fn journal_stream_is_device_and_inode() {
        assert_eq!(parse_stream("8:1234"), Some((8, 1234)));
        assert_eq!(parse_stream("8:"), None);
        assert_eq!(parse_stream("8"), None);
        assert_eq!(parse_stream("x:1"), None);
        assert_eq!(parse_stream("1:2:3"), None);
    }
}
