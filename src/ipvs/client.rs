//! The socket shell around [`super::netlink`]: one generic-netlink socket in the
//! caller's network namespace, requests pipelined in windows (one `sendmsg` carries
//! many requests; the kernel handles them in that call and queues one acknowledgement
//! each), dumps read to their end, every wait bounded by a timeout. Sending and reading
//! to each request's end is [`crate::nlmsg::exchange`]'s loop, shared with rtnetlink.

use std::io;
use std::time::Duration;

use neli::consts::nl::NlmF;
use neli::consts::socket::NlFamily;
use neli::socket::NlSocket;

use super::diff::Op;
use super::netlink::{self, CodecError, Info, Request, SyncDaemon, SyncState, Timeouts};
use super::table::{ServiceKey, Table};
use crate::nlmsg::exchange::{Channel, ExchangeError, Reply, REPLY_TIMEOUT};

/// Requests sent per `sendmsg` before their acknowledgements are collected: small
/// enough that the acknowledgements always fit the default receive buffer.
const WINDOW: usize = 64;

/// An errno the kernel returned for one request, explained in IPVS terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelError(pub i32);

impl std::fmt::Display for KernelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hint = match self.0 {
            libc::EPERM => "operation not permitted (IPVS needs CAP_NET_ADMIN)",
            libc::ENOENT => "not found (no such destination, or the scheduler's module is missing)",
            libc::ESRCH => "no such service",
            libc::EEXIST => "already exists",
            libc::EINVAL => "invalid argument",
            libc::EAFNOSUPPORT => "address family not supported by this kernel's IPVS",
            _ => "",
        };
        let text = io::Error::from_raw_os_error(self.0);
        if hint.is_empty() {
            write!(f, "{text}")
        } else {
            write!(f, "{hint} [{text}]")
        }
    }
}

impl std::error::Error for KernelError {}

#[derive(Debug, thiserror::Error)]
pub enum IpvsError {
    #[error("IPVS is not available in this kernel: load the ip_vs module")]
    NotAvailable,
    #[error("IPVS needs CAP_NET_ADMIN: run as root or grant the capability")]
    PermissionDenied,
    #[error("netlink socket: {0}")]
    Socket(#[source] io::Error),
    #[error("the kernel refused `{request}`: {error}")]
    Kernel {
        request: String,
        #[source]
        error: KernelError,
    },
    #[error("no reply from the kernel's IPVS within {0:?}")]
    Timeout(Duration),
    #[error("the netlink receive buffer overflowed: replies were lost")]
    Overrun,
    #[error(transparent)]
    Codec(#[from] CodecError),
}

impl From<ExchangeError> for IpvsError {
    fn from(e: ExchangeError) -> IpvsError {
        match e {
            ExchangeError::Io(e) => IpvsError::from_io(e),
            ExchangeError::Frame(e) => CodecError::Decode(e.to_string()).into(),
            ExchangeError::Overrun => IpvsError::Overrun,
        }
    }
}

impl IpvsError {
    fn from_io(e: io::Error) -> IpvsError {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                IpvsError::Timeout(REPLY_TIMEOUT)
            }
            _ if e.raw_os_error() == Some(libc::ENOBUFS) => IpvsError::Overrun,
            _ => IpvsError::Socket(e),
        }
    }

    fn kernel(request: impl Into<String>, errno: i32) -> IpvsError {
        match errno {
            libc::EPERM => IpvsError::PermissionDenied,
            _ => IpvsError::Kernel {
                request: request.into(),
                error: KernelError(errno),
            },
        }
    }
}

/// What one client has sent, for the benchmark and the logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Every request message.
    pub requests: u64,
    /// Requests that change the kernel's state.
    pub changes: u64,
    /// `sendmsg` calls (each may carry a window of requests).
    pub sends: u64,
}

impl Counters {
    /// What was sent between `earlier` and `self`.
    pub fn since(self, earlier: Counters) -> Counters {
        Counters {
            requests: self.requests - earlier.requests,
            changes: self.changes - earlier.changes,
            sends: self.sends - earlier.sends,
        }
    }
}

/// The IPVS table of the network namespace the client was created in.
pub struct Client {
    chan: Channel<NlSocket>,
    family: u16,
    counters: Counters,
}

impl Client {
    /// Opens the socket and resolves the IPVS family.
    pub fn connect() -> Result<Client, IpvsError> {
        let chan = Channel::open(NlFamily::Generic).map_err(IpvsError::Socket)?;
        let mut client = Client {
            chan,
            family: 0,
            counters: Counters::default(),
        };
        let seq = client.chan.reserve(1);
        let msg = netlink::encode_resolve(seq, client.chan.pid())?;
        let reply = client.exchange(&msg, seq, false)?;
        let mut id = None;
        for bytes in &reply.data {
            id = Some(netlink::decode_family_id(bytes)?);
        }
        match reply.errno {
            0 => {}
            // The controller does not know the family.
            libc::ENOENT => return Err(IpvsError::NotAvailable),
            e => return Err(IpvsError::kernel("resolve IPVS", e)),
        }
        client.family = id.ok_or(IpvsError::NotAvailable)?;
        Ok(client)
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    fn send(&mut self, bytes: &[u8], requests: u64, changes: bool) -> Result<(), IpvsError> {
        self.chan.send(bytes).map_err(IpvsError::from_io)?;
        self.counters.sends += 1;
        self.counters.requests += requests;
        if changes {
            self.counters.changes += requests;
        }
        Ok(())
    }

    /// Sends one request numbered `seq` and reads its reply.
    fn exchange(&mut self, msg: &[u8], seq: u32, changes: bool) -> Result<Reply, IpvsError> {
        self.send(msg, 1, changes)?;
        Ok(self.chan.receive_one(seq)?)
    }

    /// One request (or dump) and every data message of its reply.
    fn transact(&mut self, req: &Request<'_>) -> Result<Vec<Vec<u8>>, IpvsError> {
        let seq = self.chan.reserve(1);
        let flags = if req.is_dump() {
            NlmF::REQUEST | NlmF::DUMP
        } else {
            NlmF::REQUEST | NlmF::ACK
        };
        let msg = netlink::encode(self.family, flags, seq, self.chan.pid(), req)?;
        let reply = self.exchange(&msg, seq, req.is_change())?;
        match reply.errno {
            0 => Ok(reply.data),
            e => Err(IpvsError::kernel(format!("{req:?}"), e)),
        }
    }

    /// Applies `ops` in order, pipelined, and returns each one's outcome. The kernel
    /// carries on after a refused operation, so later ones are still attempted (and
    /// report their own errors, e.g. destinations of a service that was refused).
    pub fn apply(&mut self, ops: &[Op]) -> Result<Vec<Result<(), KernelError>>, IpvsError> {
        let mut results = Vec::with_capacity(ops.len());
        let mut bytes = Vec::new();
        for window in ops.chunks(WINDOW) {
            bytes.clear();
            let first = self.chan.reserve(window.len());
            for (seq, op) in (0..).map(|i| first.wrapping_add(i)).zip(window) {
                netlink::encode_into(
                    &mut bytes,
                    self.family,
                    NlmF::REQUEST | NlmF::ACK,
                    seq,
                    self.chan.pid(),
                    &Request::Op(op),
                )?;
            }
            self.send(&bytes, window.len() as u64, true)?;
            // Every request of the window is answered before the next is sent.
            for reply in self.chan.receive(first, window.len())? {
                results.push(match reply.errno {
                    0 => Ok(()),
                    libc::EPERM => return Err(IpvsError::PermissionDenied),
                    e => Err(KernelError(e)),
                });
            }
        }
        Ok(results)
    }

    /// The whole table: one dump of the services, one per service for destinations.
    pub fn dump(&mut self) -> Result<Table, IpvsError> {
        let mut table = Table::default();
        for bytes in self.transact(&Request::GetServices)? {
            let (key, svc) = netlink::decode_service(&netlink::decode_message(&bytes)?)?;
            table.services.insert(key, svc);
        }
        let keys: Vec<ServiceKey> = table.services.keys().copied().collect();
        for key in keys {
            match self.transact(&Request::GetDests(key)) {
                Ok(replies) => {
                    let Some(svc) = table.services.get_mut(&key) else {
                        continue;
                    };
                    for bytes in replies {
                        let (d, dest) =
                            netlink::decode_dest(&netlink::decode_message(&bytes)?, key.is_ipv6())?;
                        svc.dests.insert(d, dest);
                    }
                }
                // Deleted by someone else between the two dumps: it is gone.
                Err(IpvsError::Kernel {
                    error: KernelError(libc::ESRCH),
                    ..
                }) => {
                    table.services.remove(&key);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(table)
    }

    /// A request answered by exactly one message, parsed.
    fn transact_one(&mut self, req: &Request<'_>) -> Result<netlink::IpvsMsg, IpvsError> {
        let replies = self.transact(req)?;
        let first = replies
            .first()
            .ok_or_else(|| CodecError::Decode(format!("{req:?} had no reply")))?;
        Ok(netlink::decode_message(first)?)
    }

    pub fn info(&mut self) -> Result<Info, IpvsError> {
        Ok(netlink::decode_info(
            &self.transact_one(&Request::GetInfo)?,
        )?)
    }

    pub fn timeouts(&mut self) -> Result<Timeouts, IpvsError> {
        Ok(netlink::decode_timeouts(
            &self.transact_one(&Request::GetConfig)?,
        )?)
    }

    /// Sets the timeouts; a zero field leaves that timeout as it is.
    pub fn set_timeouts(&mut self, t: Timeouts) -> Result<(), IpvsError> {
        self.transact(&Request::SetConfig(t)).map(drop)
    }

    /// Sets the non-zero timeouts of `want` that differ from the kernel's. Returns
    /// whether a change was needed (and made, unless `dry_run`).
    pub fn ensure_timeouts(&mut self, want: Timeouts, dry_run: bool) -> Result<bool, IpvsError> {
        if want == Timeouts::default() {
            return Ok(false);
        }
        let have = self.timeouts()?;
        let differs = |want: u32, have: u32| want != 0 && want != have;
        let needed = differs(want.tcp, have.tcp)
            || differs(want.tcp_fin, have.tcp_fin)
            || differs(want.udp, have.udp);
        if needed && !dry_run {
            self.set_timeouts(want)?;
        }
        Ok(needed)
    }

    pub fn daemons(&mut self) -> Result<Vec<SyncDaemon>, IpvsError> {
        self.transact(&Request::GetDaemons)?
            .iter()
            .map(|b| Ok(netlink::decode_daemon(&netlink::decode_message(b)?)?))
            .collect()
    }

    pub fn start_daemon(&mut self, d: &SyncDaemon) -> Result<(), IpvsError> {
        self.transact(&Request::NewDaemon(d)).map(drop)
    }

    pub fn stop_daemon(&mut self, state: SyncState) -> Result<(), IpvsError> {
        self.transact(&Request::DelDaemon(state)).map(drop)
    }
}
