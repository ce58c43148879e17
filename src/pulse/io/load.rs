//! The load command of one real server (Piranha's `load_monitor`), run without a shell;
//! its output read by [`parse_report`](crate::pulse::logic::load::parse_report). The
//! rules for which command and what its output means are in [`crate::pulse::logic::load`].

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::config::model::GlobalSettings;
use crate::config::value::{LoadMonitor, Secs};
use crate::pulse::io::command::shown_output;
use crate::pulse::io::probe::{run_program, split_words, substitute};
use crate::pulse::io::scripts::Policy;
use crate::pulse::logic::argv::SplitError;
use crate::pulse::logic::load::{parse_report, Report};

/// Why a virtual server's `load_monitor` cannot be run. Each names its keyword
/// (`load_monitor`, or `rsh_command` for `uptime`); the caller adds the block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadMonitorError {
    /// `rup` or `ruptime`, which need `daemon` (rstatd, rwhod) on the real servers.
    #[error(
        "load_monitor: `{monitor}` is obsolete (it needs {daemon} on the real servers); use `uptime` \
         with rsh_command = \"ssh -o BatchMode=yes\", or a command that prints the load or a \
         weight percentage"
    )]
    Obsolete {
        monitor: &'static str,
        daemon: &'static str,
    },
    #[error("rsh_command: {0}")]
    RshLine(#[source] SplitError),
    #[error("rsh_command: the command is empty")]
    RshEmpty,
    #[error("load_monitor: {0}")]
    CommandLine(#[source] SplitError),
    #[error("load_monitor: the command is empty")]
    CommandEmpty,
}

/// The load command of one real server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadProbe {
    /// The command and its arguments, address and port already in place.
    pub argv: Vec<String>,
    pub timeout: Duration,
    /// What the command may run, checked again before every run. Restricted to the
    /// default scripts directory unless the supervisor says otherwise.
    pub policy: Arc<Policy>,
}

impl LoadProbe {
    /// The load command for a real server at `addr` (`port`: its checked port, for
    /// `%p`), or `None` for `load_monitor = none`. `timeout`: how long the command may
    /// run (Piranha: the check interval). Errors name the keyword and why.
    pub fn from_settings(
        monitor: &LoadMonitor,
        global: &GlobalSettings,
        addr: IpAddr,
        port: u16,
        timeout: Duration,
    ) -> Result<Option<LoadProbe>, LoadMonitorError> {
        let argv = match monitor {
            LoadMonitor::None => return Ok(None),
            LoadMonitor::Rup => {
                return Err(LoadMonitorError::Obsolete {
                    monitor: "rup",
                    daemon: "rstatd",
                })
            }
            LoadMonitor::Ruptime => {
                return Err(LoadMonitorError::Obsolete {
                    monitor: "ruptime",
                    daemon: "rwhod",
                })
            }
            LoadMonitor::Uptime => {
                let rsh = global.rsh_command.as_ref().map_or("rsh", |t| t.0.as_str());
                let words = split_words(rsh).map_err(LoadMonitorError::RshLine)?;
                if words.is_empty() {
                    return Err(LoadMonitorError::RshEmpty);
                }
                let mut argv = substitute(&words, addr, port, true);
                argv.push("uptime".into());
                argv
            }
            LoadMonitor::Command(c) => {
                let words = split_words(c).map_err(LoadMonitorError::CommandLine)?;
                if words.is_empty() {
                    return Err(LoadMonitorError::CommandEmpty);
                }
                substitute(&words, addr, port, true)
            }
        };
        Ok(Some(LoadProbe {
            argv,
            timeout,
            policy: Arc::default(),
        }))
    }

    /// Runs the command once. Errors say what went wrong ("exit status 255: ssh: …",
    /// "timed out after 10 s", "no load figure or percentage in the output: …").
    pub async fn run(&self) -> Result<Report, String> {
        let out = tokio::time::timeout(self.timeout, run_program(&self.argv, &self.policy))
            .await
            .map_err(|_| {
                format!(
                    "timed out after {} s",
                    Secs(self.timeout.as_millis() as u64)
                )
            })??;
        if !out.status.success() {
            return Err(out.failure());
        }
        let text = String::from_utf8_lossy(&out.stdout);
        parse_report(&text).ok_or_else(|| {
            format!(
                "no load figure or percentage in the output: {}",
                shown_output(text.as_bytes())
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::value::Text;

    fn probe(
        monitor: LoadMonitor,
        rsh: Option<&str>,
    ) -> Result<Option<LoadProbe>, LoadMonitorError> {
        let global = GlobalSettings {
            rsh_command: rsh.map(|r| Text(r.into())),
            ..GlobalSettings::default()
        };
        LoadProbe::from_settings(
            &monitor,
            &global,
            "192.0.2.7".parse().unwrap(),
            8080,
            Duration::from_secs(3),
        )
    }

    #[test]
    fn commands_from_settings() {
        let argv = |m, rsh| probe(m, rsh).unwrap().unwrap().argv;
        assert_eq!(probe(LoadMonitor::None, None), Ok(None));
        assert_eq!(
            argv(LoadMonitor::Uptime, None),
            ["rsh", "192.0.2.7", "uptime"]
        );
        assert_eq!(
            argv(
                LoadMonitor::Uptime,
                Some("ssh -o BatchMode=yes -l 'lvs check'")
            ),
            [
                "ssh",
                "-o",
                "BatchMode=yes",
                "-l",
                "lvs check",
                "192.0.2.7",
                "uptime"
            ]
        );
        assert_eq!(
            argv(
                LoadMonitor::Command("/usr/local/bin/load --json".into()),
                None
            ),
            ["/usr/local/bin/load", "--json", "192.0.2.7"]
        );
        assert_eq!(
            argv(
                LoadMonitor::Command("agent --host=%h --port %p".into()),
                None
            ),
            ["agent", "--host=192.0.2.7", "--port", "8080"]
        );
        let err = |m, rsh| probe(m, rsh).unwrap_err().to_string();
        assert_eq!(
            err(LoadMonitor::Rup, None),
            "load_monitor: `rup` is obsolete (it needs rstatd on the real servers); use `uptime` \
             with rsh_command = \"ssh -o BatchMode=yes\", or a command that prints the load or a \
             weight percentage"
        );
        let e = err(LoadMonitor::Ruptime, None);
        assert!(
            e.starts_with("load_monitor: `ruptime` is obsolete (it needs rwhod on"),
            "{e}"
        );
        assert_eq!(
            err(LoadMonitor::Uptime, Some("ssh 'unclosed")),
            "rsh_command: no closing ' in `ssh 'unclosed`"
        );
        assert_eq!(
            err(LoadMonitor::Uptime, Some(" ")),
            "rsh_command: the command is empty"
        );
        assert_eq!(
            err(LoadMonitor::Command("\"".into()), None),
            "load_monitor: no closing \" in `\"`"
        );
        assert_eq!(
            err(LoadMonitor::Command("  ".into()), None),
            "load_monitor: the command is empty"
        );
    }

    fn local(argv: &[&str], secs: u64) -> LoadProbe {
        LoadProbe {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            timeout: Duration::from_secs(secs),
            policy: Arc::new(Policy::Any),
        }
    }

    #[tokio::test]
    async fn runs_the_command_and_reads_its_output() {
        let r = local(
            &["/bin/echo", "12:00 up 1 day, load average: 0.25, 0.1, 0.1"],
            5,
        );
        assert_eq!(r.run().await, Ok(Report::Load(0.25)));
        assert_eq!(
            local(&["/bin/echo", "80%"], 5).run().await,
            Ok(Report::Percent(80))
        );
        let e = local(&["/bin/false"], 5).run().await.unwrap_err();
        assert_eq!(e, "exit status 1");
        let e = local(&["/bin/echo", "hello"], 5).run().await.unwrap_err();
        assert!(e.contains("no load figure") && e.contains("hello"), "{e}");
        let e = local(&["/nonexistent/load-agent"], 5)
            .run()
            .await
            .unwrap_err();
        assert!(e.contains("cannot run"), "{e}");
    }

    #[tokio::test]
    async fn a_hanging_command_times_out() {
        let r = LoadProbe {
            argv: vec!["/bin/sleep".into(), "30".into()],
            timeout: Duration::from_millis(300),
            policy: Arc::new(Policy::Any),
        };
        let start = std::time::Instant::now();
        let e = r.run().await.unwrap_err();
        assert_eq!(e, "timed out after 0.3 s");
        assert!(start.elapsed() < Duration::from_millis(1300));
    }
}
