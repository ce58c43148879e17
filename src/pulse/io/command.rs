//! Administrator commands (`active_cmd`, `inactive_cmd`): run without a shell, bounded
//! by a timeout, their exit logged. Piranha `execv`ed them and never looked back.
//!
//! Also how command output is shown: a check's or load command's output reaches the
//! status (last check, causes of changes, faults), which the admin UI shows to every
//! user. It is written between [`OUTPUT_OPEN`] and [`OUTPUT_CLOSE`], cut to
//! [`OUTPUT_SHOWN`] characters ([`shown_output`]), so that the UI can hide it from
//! viewers ([`hide_output`]): what a root script prints is for administrators.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use crate::pulse::io::scripts::Policy;

/// How long a role command may run before it is killed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Opens what a command printed, in a status text.
pub const OUTPUT_OPEN: char = '\u{27e6}';
/// Closes it.
pub const OUTPUT_CLOSE: char = '\u{27e7}';
/// Characters of output shown at most.
pub const OUTPUT_SHOWN: usize = 200;

/// `bytes` (a command's output) for a status text: one line (line breaks and other
/// control characters as spaces), at most [`OUTPUT_SHOWN`] characters, between the
/// markers. The markers inside are replaced, so the output cannot end its own quote.
pub fn shown_output(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(OUTPUT_SHOWN.min(text.len()) + 8);
    out.push(OUTPUT_OPEN);
    let mut chars = text.trim().chars();
    for c in chars.by_ref().take(OUTPUT_SHOWN) {
        out.push(match c {
            OUTPUT_OPEN | OUTPUT_CLOSE => '?',
            c if c.is_control() => ' ',
            c => c,
        });
    }
    if chars.next().is_some() {
        out.push('…');
    }
    out.push(OUTPUT_CLOSE);
    out
}

/// `text` with every command output in it replaced by "[output hidden]", for users
/// who may not see it. An output whose end was cut off (a text shortened after it was
/// written) is hidden to the end of the text.
pub fn hide_output(text: &str) -> Cow<'_, str> {
    if !text.contains(OUTPUT_OPEN) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(OUTPUT_OPEN) {
        out.push_str(&rest[..at]);
        out.push_str("[output hidden]");
        rest = &rest[at + OUTPUT_OPEN.len_utf8()..];
        rest = match rest.find(OUTPUT_CLOSE) {
            Some(end) => &rest[end + OUTPUT_CLOSE.len_utf8()..],
            None => "",
        };
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Runs `argv` in the background; `what` names it in the log ("active_cmd").
pub fn spawn(what: &'static str, argv: Vec<String>, timeout: Duration, policy: Arc<Policy>) {
    if argv.is_empty() {
        return;
    }
    tokio::spawn(async move {
        let r = run(&argv, timeout, &policy).await;
        match r {
            Ok(status) if status.success() => {
                tracing::info!("{what} `{}` finished", argv.join(" "))
            }
            Ok(status) => tracing::warn!("{what} `{}` failed: {status}", argv.join(" ")),
            Err(e) => tracing::warn!("{what} `{}`: {e}", argv.join(" ")),
        }
    });
}

/// Why a command did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("not run: {0}")]
    Refused(#[from] crate::pulse::io::scripts::ScriptError),
    #[error("cannot start: {0}")]
    Start(std::io::Error),
    #[error("cannot wait for it: {0}")]
    Wait(std::io::Error),
    #[error("killed after {} s", .0.as_secs())]
    Timeout(Duration),
}

/// Runs `argv` and waits for it, at most `timeout` (then it is killed). The program
/// must pass `policy` now, whatever it was when the configuration was loaded.
pub async fn run(
    argv: &[String],
    timeout: Duration,
    policy: &Policy,
) -> Result<std::process::ExitStatus, CommandError> {
    run_env(argv, &[], timeout, policy).await
}

/// [`run`] with these variables added to the supervisor's environment.
pub async fn run_env(
    argv: &[String],
    env: &[(String, String)],
    timeout: Duration,
    policy: &Policy,
) -> Result<std::process::ExitStatus, CommandError> {
    let program = policy.check(&argv[0])?;
    let mut child = tokio::process::Command::new(program)
        .args(&argv[1..])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(CommandError::Start)?;
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(r) => r.map_err(CommandError::Wait),
        Err(_) => {
            let _ = child.kill().await;
            Err(CommandError::Timeout(timeout))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn exit_status_and_timeout_are_reported() {
        let any = &Policy::Any;
        assert!(run(&argv(&["true"]), COMMAND_TIMEOUT, any)
            .await
            .unwrap()
            .success());
        assert_eq!(
            run(&argv(&["false"]), COMMAND_TIMEOUT, any)
                .await
                .unwrap()
                .code(),
            Some(1)
        );
        let started = std::time::Instant::now();
        let e = run(&argv(&["sleep", "10"]), Duration::from_millis(200), any)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("killed after"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let e = run(&argv(&["/nonexistent/cmd"]), COMMAND_TIMEOUT, any)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot start"), "{e}");
    }

    /// The rule is applied when the command is about to start, not only at load: a
    /// program outside the scripts directory does not run.
    #[tokio::test]
    async fn a_program_outside_the_scripts_directory_is_not_started() {
        let dir = tempfile::tempdir().unwrap();
        let mark = dir.path().join("ran");
        let policy = Policy::Scripts(dir.path().join("scripts"));
        let e = run(
            &argv(&["/usr/bin/touch", mark.to_str().unwrap()]),
            COMMAND_TIMEOUT,
            &policy,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("not run: /usr/bin/touch is not in the scripts directory"),
            "{e}"
        );
        assert!(!mark.exists());
    }

    #[test]
    fn output_is_marked_cut_and_hidden() {
        let long = "k".repeat(500);
        let shown = shown_output(format!("  key: {long}\nmore\n").as_bytes());
        assert!(shown.starts_with(OUTPUT_OPEN) && shown.ends_with(OUTPUT_CLOSE));
        assert_eq!(shown.chars().count(), OUTPUT_SHOWN + 3, "{shown}");
        assert!(!shown.contains('\n'));
        // Output cannot close its own quote to show the rest to viewers.
        let forged = shown_output("a\u{27e7} visible \u{27e6}b".as_bytes());
        assert_eq!(forged, "\u{27e6}a? visible ?b\u{27e7}");
        let text = format!("1 consecutive failed check(s): exit status 1: {forged}, then {shown}");
        assert_eq!(
            hide_output(&text),
            "1 consecutive failed check(s): exit status 1: [output hidden], then [output hidden]"
        );
        // Cut short after it was written: hidden to the end.
        assert_eq!(hide_output("x: \u{27e6}secret"), "x: [output hidden]");
        assert!(matches!(
            hide_output("connection refused"),
            Cow::Borrowed(_)
        ));
    }
}
