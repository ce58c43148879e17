//! What `lvs-director --version` reports: the version, and the commit, compiler and
//! target it was built from (recorded by build.rs through vergen), so that a bug report
//! or a mixed pair of directors can be told apart from the binaries alone.

use std::sync::LazyLock;

/// What vergen records when it could not find out (a build outside a git checkout).
const UNKNOWN: &str = "VERGEN_IDEMPOTENT_OUTPUT";

fn known(value: &'static str) -> Option<&'static str> {
    (!value.is_empty() && value != UNKNOWN).then_some(value)
}

/// The commit the binary was built from (short hash), when built from git.
pub fn commit() -> Option<&'static str> {
    known(env!("VERGEN_GIT_SHA"))
}

/// The `--version` text after the program's name.
pub fn long_version() -> &'static str {
    static TEXT: LazyLock<String> = LazyLock::new(|| {
        describe(
            env!("CARGO_PKG_VERSION"),
            commit(),
            known(env!("VERGEN_GIT_COMMIT_DATE")),
            known(env!("VERGEN_GIT_DIRTY")) == Some("true"),
            &format!(
                "rustc {} ({})",
                env!("VERGEN_RUSTC_SEMVER"),
                env!("VERGEN_RUSTC_CHANNEL")
            ),
            &format!(
                "{}, opt-level {}{}",
                env!("VERGEN_CARGO_TARGET_TRIPLE"),
                env!("VERGEN_CARGO_OPT_LEVEL"),
                if env!("VERGEN_CARGO_DEBUG") == "true" {
                    ", debug assertions"
                } else {
                    ""
                }
            ),
        )
    });
    &TEXT
}

fn describe(
    version: &str,
    commit: Option<&str>,
    date: Option<&str>,
    dirty: bool,
    compiler: &str,
    target: &str,
) -> String {
    let commit = match (commit, date) {
        (Some(c), Some(d)) => format!("{c} of {d}"),
        (Some(c), None) => c.to_string(),
        (None, _) => "unknown (not built from a git checkout)".to_string(),
    };
    let modified = if dirty {
        ", with uncommitted changes"
    } else {
        ""
    };
    format!("{version}\ncommit: {commit}{modified}\ncompiler: {compiler}\ntarget: {target}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_commit_compiler_and_target() {
        let text = describe(
            "1.2.3",
            Some("abc1234"),
            Some("2026-12-02"),
            true,
            "rustc 1.95.0 (stable)",
            "x86_64-unknown-linux-gnu, opt-level 3",
        );
        assert_eq!(
            text,
            "1.2.3\ncommit: abc1234 of 2026-12-02, with uncommitted changes\n\
             compiler: rustc 1.95.0 (stable)\ntarget: x86_64-unknown-linux-gnu, opt-level 3"
        );
        assert!(describe("1", None, Some("x"), false, "c", "t")
            .contains("commit: unknown (not built from a git checkout)\n"));
    }

    #[test]
    fn placeholders_are_not_reported_as_values() {
        assert_eq!(known(UNKNOWN), None);
        assert_eq!(known(""), None);
        assert_eq!(known("abc"), Some("abc"));
        // This test runs from the repository's checkout.
        assert!(long_version().starts_with(env!("CARGO_PKG_VERSION")));
    }
}
