//! Administrator commands (`active_cmd`, `inactive_cmd`): run without a shell, bounded
//! by a timeout, their exit logged. Piranha `execv`ed them and never looked back.

use std::time::Duration;

/// How long a role command may run before it is killed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `argv` in the background; `what` names it in the log ("active_cmd").
pub fn spawn(what: &'static str, argv: Vec<String>, timeout: Duration) {
    if argv.is_empty() {
        return;
    }
    tokio::spawn(async move {
        let r = run(&argv, timeout).await;
        match r {
            Ok(status) if status.success() => {
                tracing::info!("{what} `{}` finished", argv.join(" "))
            }
            Ok(status) => tracing::warn!("{what} `{}` failed: {status}", argv.join(" ")),
            Err(e) => tracing::warn!("{what} `{}`: {e}", argv.join(" ")),
        }
    });
}

/// Runs `argv` and waits for it, at most `timeout` (then it is killed).
pub async fn run(argv: &[String], timeout: Duration) -> Result<std::process::ExitStatus, String> {
    run_env(argv, &[], timeout).await
}

/// [`run`] with these variables added to the supervisor's environment.
pub async fn run_env(
    argv: &[String],
    env: &[(String, String)],
    timeout: Duration,
) -> Result<std::process::ExitStatus, String> {
    let mut child = tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start: {e}"))?;
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(r) => r.map_err(|e| format!("cannot wait for it: {e}")),
        Err(_) => {
            let _ = child.kill().await;
            Err(format!("killed after {} s", timeout.as_secs()))
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
        assert!(run(&argv(&["true"]), COMMAND_TIMEOUT)
            .await
            .unwrap()
            .success());
        assert_eq!(
            run(&argv(&["false"]), COMMAND_TIMEOUT)
                .await
                .unwrap()
                .code(),
            Some(1)
        );
        let started = std::time::Instant::now();
        let e = run(&argv(&["sleep", "10"]), Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(e.contains("killed after"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let e = run(&argv(&["/nonexistent/cmd"]), COMMAND_TIMEOUT)
            .await
            .unwrap_err();
        assert!(e.contains("cannot start"), "{e}");
    }
}
