//! This process's limit on open file descriptors (RLIMIT_NOFILE): both services raise
//! the soft limit to the hard one at start (the unit's `LimitNOFILE=` bounds it), and
//! the admin UI sizes its connection cap from it.

fn get() -> Option<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct passed.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0).then_some(lim)
}

/// The soft limit (1,024, the usual default, when it cannot be read).
pub fn limit() -> u64 {
    get().map_or(1024, |l| l.rlim_cur)
}

/// Raises the soft limit to the hard limit; returns the soft limit then in force.
pub fn raise() -> u64 {
    let Some(lim) = get() else {
        return 1024;
    };
    if lim.rlim_cur >= lim.rlim_max {
        return lim.rlim_cur;
    }
    let raised = libc::rlimit {
        rlim_cur: lim.rlim_max,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: setrlimit only reads the struct passed.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        tracing::debug!(
            "file descriptor limit raised from {} to {}",
            lim.rlim_cur,
            lim.rlim_max
        );
        lim.rlim_max
    } else {
        lim.rlim_cur
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn raising_leaves_the_soft_limit_at_the_hard_one() {
        let raised = super::raise();
        assert_eq!(super::limit(), raised);
        assert_eq!(super::get().map(|l| l.rlim_cur), Some(raised));
    }
}
