//! Tests that need root (namespaces, raw sockets, packages): as root they run;
//! otherwise they fail, because a test that could not run must not count as passed,
//! unless `LVS_DIRECTOR_SKIP_ROOT_TESTS=1` asks explicitly to skip them (then each says
//! so). `scripts/test.sh` runs as root. Included with `#[path]` where `common` is not.

/// True when `test` may run; false (with a notice) when skipped on request; a panic
/// naming the way out otherwise.
pub fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("LVS_DIRECTOR_SKIP_ROOT_TESTS").as_deref() == Ok("1") {
        eprintln!("{test} SKIPPED (LVS_DIRECTOR_SKIP_ROOT_TESTS=1): it needs root");
        return false;
    }
    panic!(
        "{test} needs root (network namespaces, raw sockets or packages): run it as root \
         (scripts/test.sh does), or set LVS_DIRECTOR_SKIP_ROOT_TESTS=1 to skip it explicitly"
    );
}
