//! The seam at the kernel: what a [`Reconciler`](super::reconcile::Reconciler) needs of
//! IPVS (dump the table, apply a batch of operations, count the requests), the netlink
//! [`Client`] that does it for real, and [`Twin`], an in-memory kernel built on
//! [`Table`] that the reconciler's bookkeeping is tested against (a refused operation
//! in the middle of a batch, a batch that fails whole, a table changed behind its back)
//! without root or IPVS. The real kernel is tested in the lab VM.

use super::client::{Client, Counters, IpvsError, KernelError};
use super::diff::Op;
use super::netlink::Timeouts;
use super::table::Table;

/// What the reconciler asks of IPVS.
pub trait Kernel {
    /// The whole table.
    fn dump(&mut self) -> Result<Table, IpvsError>;
    /// Applies `ops` in order, one answer each; `Err` when the batch could not be sent
    /// or its answers read (then an unknown part of it may have been applied).
    fn apply(&mut self, ops: &[Op]) -> Result<Vec<Result<(), KernelError>>, IpvsError>;
    /// Requests sent so far.
    fn counters(&self) -> Counters;
    /// Sets the connection timeouts unless they already are `want`; true when set.
    fn ensure_timeouts(&mut self, want: Timeouts, dry_run: bool) -> Result<bool, IpvsError>;
}

impl Kernel for Client {
    fn dump(&mut self) -> Result<Table, IpvsError> {
        Client::dump(self)
    }
    fn apply(&mut self, ops: &[Op]) -> Result<Vec<Result<(), KernelError>>, IpvsError> {
        Client::apply(self, ops)
    }
    fn counters(&self) -> Counters {
        Client::counters(self)
    }
    fn ensure_timeouts(&mut self, want: Timeouts, dry_run: bool) -> Result<bool, IpvsError> {
        Client::ensure_timeouts(self, want, dry_run)
    }
}

/// Decides whether the twin refuses an operation, and with which errno.
pub type Refusal = Box<dyn FnMut(&Op) -> Option<i32> + Send>;

/// An in-memory IPVS: a [`Table`] that operations change as the kernel's would
/// (adding what exists is `EEXIST`, touching what does not is `ENOENT`), counting
/// requests like the client does. Operations can be refused on purpose, and a whole
/// batch can be made to fail after part of it was applied.
pub struct Twin {
    pub table: Table,
    counters: Counters,
    refusal: Option<Refusal>,
    /// The next batch applies this many operations, then fails whole.
    fail_after: Option<usize>,
    /// The connection timeouts (the kernel's defaults at start).
    pub timeouts: Timeouts,
}

impl Twin {
    pub fn new(table: Table) -> Twin {
        Twin {
            table,
            counters: Counters::default(),
            refusal: None,
            fail_after: None,
            timeouts: Timeouts {
                tcp: 900,
                tcp_fin: 120,
                udp: 300,
            },
        }
    }

    /// Refuses every operation for which `f` gives an errno.
    pub fn refusing(mut self, f: impl FnMut(&Op) -> Option<i32> + Send + 'static) -> Twin {
        self.refusal = Some(Box::new(f));
        self
    }

    /// The next batch applies its first `n` operations, then fails as a lost
    /// connection would.
    pub fn fail_next_batch_after(&mut self, n: usize) {
        self.fail_after = Some(n);
    }
}

impl Kernel for Twin {
    fn dump(&mut self) -> Result<Table, IpvsError> {
        // One request for the services, one per service for its destinations.
        let n = 1 + self.table.services.len() as u64;
        self.counters.requests += n;
        self.counters.sends += n;
        Ok(self.table.clone())
    }

    fn apply(&mut self, ops: &[Op]) -> Result<Vec<Result<(), KernelError>>, IpvsError> {
        let fail_after = self.fail_after.take();
        let mut results = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            if fail_after == Some(i) {
                return Err(IpvsError::Overrun);
            }
            self.counters.requests += 1;
            self.counters.changes += 1;
            let refused = self.refusal.as_mut().and_then(|f| f(op));
            results.push(match refused {
                Some(errno) => Err(KernelError(errno)),
                None => self.table.apply(op).map_err(|e| {
                    KernelError(match e {
                        super::diff::OpError::ServiceExists(_)
                        | super::diff::OpError::DestExists(..) => libc::EEXIST,
                        _ => libc::ENOENT,
                    })
                }),
            });
        }
        if !ops.is_empty() {
            self.counters.sends += 1;
        }
        Ok(results)
    }

    fn counters(&self) -> Counters {
        self.counters
    }

    fn ensure_timeouts(&mut self, want: Timeouts, dry_run: bool) -> Result<bool, IpvsError> {
        if want == Timeouts::default() {
            return Ok(false);
        }
        self.counters.requests += 1;
        // 0 keeps the kernel's value, as IPVS_CMD_SET_CONFIG does.
        let keep = |new: u32, old: u32| if new == 0 { old } else { new };
        let next = Timeouts {
            tcp: keep(want.tcp, self.timeouts.tcp),
            tcp_fin: keep(want.tcp_fin, self.timeouts.tcp_fin),
            udp: keep(want.udp, self.timeouts.udp),
        };
        if next == self.timeouts {
            return Ok(false);
        }
        if !dry_run {
            self.counters.requests += 1;
            self.counters.changes += 1;
            self.timeouts = next;
        }
        Ok(true)
    }
}
