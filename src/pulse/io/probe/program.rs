//! Programs: command lines (split by [`crate::pulse::logic::argv`]) run under the
//! scripts-directory policy with their process group killed at the timeout. The load
//! commands, notify_command and the scripts rule use the same functions, so they are
//! public from [`super`].

use std::fmt::Write as _;
use std::process::Stdio;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::Expect;
use crate::pulse::io::command::shown_output;
use crate::pulse::io::scripts::Policy;

/// Longest program output kept (stdout for `expect`, stderr for the detail); the rest
/// is read and dropped so that the program never blocks on a full pipe.
const MAX_OUTPUT: usize = 64 * 1024;

/// What a program printed and how it ended.
#[derive(Debug)]
pub struct ProgramOutput {
    pub status: std::process::ExitStatus,
    /// At most 64 KiB of standard output.
    pub stdout: Vec<u8>,
    /// At most 64 KiB of standard error.
    pub stderr: Vec<u8>,
}

impl ProgramOutput {
    /// "exit status 3: <first line of stderr>" or "killed by signal 9"; the line as
    /// [`shown_output`] shows output (marked, so that viewers do not see it).
    pub fn failure(&self) -> String {
        use std::os::unix::process::ExitStatusExt;
        let mut s = match (self.status.code(), self.status.signal()) {
            (Some(c), _) => format!("exit status {c}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            (None, None) => self.status.to_string(),
        };
        let err = String::from_utf8_lossy(&self.stderr);
        if let Some(line) = err.lines().map(str::trim).find(|l| !l.is_empty()) {
            let _ = write!(s, ": {}", shown_output(line.as_bytes()));
        }
        s
    }
}

/// Kills a program's process group when dropped before the program was reaped (a
/// check cancelled by its timeout), so that its children go too.
struct GroupKill(Option<i32>);

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            // SAFETY: kill(2) takes plain integers and touches no memory of ours. The
            // group still exists: its leader is our child, not yet reaped.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

/// Runs `argv` without a shell, stdin on /dev/null, in its own process group, if its
/// program passes `policy` now (PATH is searched only under [`Policy::Any`]).
/// Cancel-safe: dropping the future kills the group. The caller bounds the time.
pub async fn run_program(argv: &[String], policy: &Policy) -> Result<ProgramOutput, String> {
    let (prog, args) = argv.split_first().ok_or("empty command")?;
    let program = policy.check(prog).map_err(|e| format!("not run: {e}"))?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {prog}: {e}"))?;
    let mut guard = GroupKill(child.id().and_then(|id| i32::try_from(id).ok()));
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let (status, stdout, stderr) =
        tokio::join!(child.wait(), read_limited(stdout), read_limited(stderr));
    // `wait` returned: the child is reaped and its pid may be reused; never kill it.
    guard.0 = None;
    let status = status.map_err(|e| format!("waiting for {prog}: {e}"))?;
    Ok(ProgramOutput {
        status,
        stdout,
        stderr,
    })
}

/// Reads a pipe to its end, keeping the first [`MAX_OUTPUT`] bytes.
async fn read_limited<R: AsyncRead + Unpin>(pipe: Option<R>) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut pipe) = pipe else { return kept };
    let mut chunk = vec![0u8; 8192];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = MAX_OUTPUT.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
}

/// One program check: what it said, and the weight it set (`dynamic`: keepalived's
/// misc_dynamic, where exit status 2..=255 passes with weight status − 2, as
/// check_misc.c reads it).
pub(super) async fn program(
    argv: &[String],
    expect: Option<&Expect>,
    dynamic: bool,
    policy: &Policy,
) -> Result<(String, Option<u32>), String> {
    let out = run_program(argv, policy).await?;
    let weight = match out.status.code() {
        Some(0) => None,
        Some(c @ 2..=255) if dynamic => Some(c as u32 - 2),
        _ => return Err(out.failure()),
    };
    let status = out.status.code().unwrap_or(0);
    let said = |s: String| match weight {
        Some(w) => (format!("{s}: weight {w}"), Some(w)),
        None => (s, None),
    };
    let Some(expect) = expect else {
        return Ok(said(format!("exit status {status}")));
    };
    // Piranha chopped the output's last character, assumed to be a newline.
    let mut stdout = out.stdout.as_slice();
    stdout = stdout.strip_suffix(b"\n").unwrap_or(stdout);
    stdout = stdout.strip_suffix(b"\r").unwrap_or(stdout);
    if expect.decide(stdout, true) == Some(true) {
        Ok(said(format!("exit status {status}, output matched expect")))
    } else {
        Err(format!(
            "exit status {status} but the output did not match expect: {}",
            shown_output(stdout)
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testing::*;
    use super::*;
    use crate::pulse::io::probe::ProbeKind;

    fn program(argv: &[&str], expect: Option<Expect>) -> ProbeKind {
        ProbeKind::Program {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            expect,
            dynamic: false,
        }
    }

    /// keepalived's misc_dynamic: exit 2..=255 passes and sets weight status − 2; 0
    /// passes with the configured weight; 1 fails; without it, any non-zero fails.
    #[tokio::test]
    async fn a_dynamic_program_sets_the_weight_by_its_exit_status() {
        let run = |code: u8, dynamic: bool| async move {
            let k = ProbeKind::Program {
                argv: vec!["/bin/sh".into(), "-c".into(), format!("exit {code}")],
                expect: None,
                dynamic,
            };
            probe(k, LO4, 0, 3000).run().await
        };
        let o = run(0, true).await;
        assert_ok(&o);
        assert_eq!(o.weight, None);
        let o = run(1, true).await;
        assert_fail(&o, "exit status 1");
        assert_eq!(o.weight, None);
        let o = run(2, true).await;
        assert_ok(&o);
        assert_eq!(
            (o.weight, o.detail.as_str()),
            (Some(0), "exit status 2: weight 0")
        );
        let o = run(255, true).await;
        assert_eq!(o.weight, Some(253));
        let o = run(7, false).await;
        assert_fail(&o, "exit status 7");
        assert_eq!(o.weight, None);
    }

    #[tokio::test]
    async fn programs_pass_on_exit_0_and_fail_otherwise() {
        let run = |k| async move { probe(k, LO4, 0, 3000).run().await };
        let o = run(program(&["/bin/true"], None)).await;
        assert_ok(&o);
        assert_eq!(o.detail, "exit status 0");
        let o = run(program(&["/bin/false"], None)).await;
        assert!(!o.ok);
        assert_eq!(o.detail, "exit status 1");
        // stderr explains the failure.
        let o = run(program(&["/bin/sleep", "--no-such-option"], None)).await;
        assert_fail(&o, "exit status 1: \u{27e6}/bin/sleep: unrecognized option");
        let o = run(program(&["/nonexistent/check"], None)).await;
        assert_fail(&o, "cannot run /nonexistent/check");
        // PATH is searched, as execvp did.
        assert_ok(&run(program(&["true"], None)).await);
    }

    #[tokio::test]
    async fn program_output_against_expect() {
        let run = |k| async move { probe(k, LO4, 0, 3000).run().await };
        let exact = |s: &str| Some(Expect::Exact(s.as_bytes().to_vec()));
        // The trailing newline is dropped, then the output must equal `expect`.
        assert_ok(&run(program(&["/bin/echo", "OK"], exact("OK"))).await);
        let o = run(program(&["/bin/echo", "OK then"], exact("OK"))).await;
        assert_fail(&o, "output did not match expect: \u{27e6}OK then\u{27e7}");
        assert_ok(&run(program(&["/bin/echo", "anything"], Some(Expect::Any))).await);
        assert_fail(
            &run(program(&["/bin/true"], Some(Expect::Any))).await,
            "did not match",
        );
        assert_ok(
            &run(program(
                &["/bin/echo", "load 3 ok"],
                Some(regex("[0-9] ok$")),
            ))
            .await,
        );
        // Exit status first: a failing program fails even when its output matches.
        assert_fail(
            &run(program(&["/bin/false"], Some(Expect::Any))).await,
            "exit status 1",
        );
    }

    /// Whether a process with exactly this command line is still alive (not a zombie).
    fn running(cmdline: &[&str]) -> bool {
        let want: Vec<u8> = cmdline
            .iter()
            .flat_map(|a| [a.as_bytes(), b"\0"].concat())
            .collect();
        std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            let dir = e.path();
            std::fs::read(dir.join("cmdline")).is_ok_and(|c| c == want)
                && std::fs::read_to_string(dir.join("stat")).is_ok_and(|s| {
                    !s.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                })
        })
    }

    #[tokio::test]
    async fn a_program_that_hangs_is_killed_at_the_timeout() {
        // An odd duration names this test's process among any others.
        let cmd = ["/bin/sleep", "31.4159"];
        let o = probe(program(&cmd, None), LO4, 0, 300).run().await;
        assert_timed_out(&o, 300, "waiting for the program (killed)");
        let gone = async {
            while running(&cmd) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(2), gone)
            .await
            .expect("the timed-out program was killed");
    }
}
