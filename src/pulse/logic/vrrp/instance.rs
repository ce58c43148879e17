//! One VRRP instance's state machine (RFC 5798 §6.4, with keepalived 2.2.7's choices
//! where it departs from the RFC): events in, actions out, time passed in as
//! microseconds. No sockets and no clock, so two or three routers can be run against
//! each other in tests, with loss, on simulated time.
//!
//! keepalived's choices kept here, each because a keepalived peer expects it:
//! - An instance starts as BACKUP whatever its `state`, except the address owner
//!   (priority 255) with `state MASTER`, which takes over at once. The initial state
//!   otherwise only decides whether `nopreempt` and `preempt_delay` are allowed.
//! - The master-down interval is `down_timer_adverts` (3) × the master's advert
//!   interval + the skew time, the skew being (256 − priority)/256 of the master's
//!   interval for version 3 and of one second for version 2. A priority-0 advert (the
//!   master stopping) cuts the wait to the skew time alone.
//! - A master that hears a lower priority (or an equal one from a lower address)
//!   answers at once with its own advert, so that the other side steps down without
//!   waiting for the next interval ("forcing new election"), and announces its
//!   addresses again.
//! - A backup with `preempt_delay` ignores a lower-priority master's adverts only once
//!   the delay has run since the first of them; then the master-down timer runs out.
//! - Two address owners: the local one lowers itself to 254 (a configuration error,
//!   logged).
//! - A member of a sync group whose master-down timer runs out does not take over on
//!   its own: it says it wants to ([`Action::WantMaster`]) and re-arms its timer; the
//!   group ([`super::sync`]) moves all its members together.
//!
//! One departure, for lossy networks: a master sends `advert_copies` adverts per
//! interval (2 unless configured), evenly spaced, each saying the configured interval.
//! A backup (keepalived or ours) restarts its master-down timer on every one, so a
//! takeover needs all the adverts of a master-down interval lost (six instead of three
//! at the default), for twice the advert traffic; `advert_copies = 1` is keepalived's
//! wire exactly.

use std::net::IpAddr;

use super::packet::{Advert, Auth, Version};

/// The owner of the virtual addresses (RFC 5798 §5.2.4): takes over at once.
pub const OWNER: u8 = 255;

/// What an instance is configured with (from `lvs.cf`, already validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub name: String,
    pub version: Version,
    pub vrid: u8,
    /// The configured priority, 1 to 255.
    pub priority: u8,
    /// The advertisement interval in centiseconds (whole seconds for version 2).
    pub interval_cs: u16,
    /// `state MASTER`: only matters with priority 255 (see the module documentation).
    pub initial_master: bool,
    /// `nopreempt` is `preempt = false`.
    pub preempt: bool,
    /// `preempt_delay`, in microseconds.
    pub preempt_delay_us: u64,
    /// Adverts missed before a backup takes over (keepalived's `down_timer_adverts`).
    pub down_timer_adverts: u32,
    /// Adverts sent per interval as master (see the module documentation).
    pub advert_copies: u32,
    /// The addresses carried in adverts (keepalived's `virtual_ipaddress`, not the
    /// `_excluded` ones).
    pub addresses: Vec<IpAddr>,
    pub auth: Auth,
    /// Unicast peers configured: adverts need not arrive with TTL 255.
    pub unicast: bool,
    /// This router's own address in the election (the source of its adverts): an
    /// equal priority is won by the higher address.
    pub source: IpAddr,
    /// A member of a sync group (`sync_group`).
    pub in_sync_group: bool,
}

impl Settings {
    fn interval_us(&self) -> u64 {
        u64::from(self.interval_cs) * 10_000
    }

    /// How often a master sends.
    fn send_every_us(&self) -> u64 {
        (self.interval_us() / u64::from(self.advert_copies.max(1))).max(1)
    }
}

/// The state of an instance (keepalived's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Init,
    Backup,
    Master,
    Fault,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Init => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        }
    }
}

/// What happens to an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The instance starts (its interface is up and no tracker says fault).
    Start,
    /// The time returned by [`Instance::deadline`] has come.
    Timer,
    /// An advert for this instance's virtual router id, decoded (checksum, length,
    /// version and type already checked) from `from`, with the TTL / hop limit it
    /// arrived with.
    Advert {
        from: IpAddr,
        ttl: u8,
        advert: Advert,
    },
    /// The effective priority the trackers give (already within 1..254); ignored for
    /// an address owner.
    Priority(u8),
    /// A tracker without weight failed (`Some(cause)`) or all recovered (`None`).
    Fault(Option<String>),
    /// A clean stop: a master tells the others with priority 0 and releases.
    Stop,
    /// The sync group moves this member.
    Sync(Sync),
}

/// What a sync group tells a member (keepalived's vrrp_sync_master / _backup / _fault).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sync {
    /// Every member wants to be master (or the group already is): a backup takes over.
    Master(String),
    /// A master steps down, or a member held in FAULT by the group comes back as
    /// backup.
    Backup(String),
    /// A member is in FAULT: the others are held there too until no member is.
    Fault(String),
}

/// What the shell must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send an advert with this priority (0 on a stop).
    Send { priority: u8 },
    /// Raise the virtual addresses and announce them (gratuitous ARP / NA).
    Raise,
    /// Announce the addresses again (a lower-priority master was heard).
    Announce,
    /// Take the virtual addresses down.
    Release,
    /// The state changed; logged once and notified with its cause.
    Changed {
        from: State,
        to: State,
        cause: String,
    },
    /// An advert was not acted on; counted under `reason` (and logged, rate-limited,
    /// by the shell with `detail`).
    Dropped {
        reason: &'static str,
        detail: String,
    },
    /// Something a person must know about that changes nothing (a mismatched
    /// interval under version 3, two address owners).
    Warn(String),
    /// A sync group member's master-down timer ran out (the cause): the group decides.
    WantMaster(String),
}

/// One instance.
#[derive(Debug, Clone)]
pub struct Instance {
    s: Settings,
    state: State,
    /// The priority in adverts and elections: the configured one moved by tracker
    /// weights, or lowered to 254 when another owner is heard.
    effective: u8,
    /// The advert interval of the current master (version 3 backups learn it from
    /// its adverts), in µs.
    master_interval_us: u64,
    /// The current master as last heard (address, priority); this router when master.
    master: Option<(IpAddr, u8)>,
    /// When the running timer fires (µs); `None` in INIT and FAULT.
    deadline: Option<u64>,
    /// With `preempt_delay`: when a lower-priority master may be preempted.
    preempt_at: Option<u64>,
    /// Why the instance is in FAULT.
    fault: Option<String>,
    /// A version 3 interval mismatch is warned about once per master.
    warned_interval: Option<IpAddr>,
    /// A sync group member whose master-down timer ran out (cleared by a master heard).
    wants_master: bool,
    /// Held in FAULT by its sync group: why.
    synced_fault: Option<String>,
}

impl Instance {
    pub fn new(settings: Settings) -> Instance {
        let effective = settings.priority;
        let master_interval_us = settings.interval_us();
        Instance {
            s: settings,
            state: State::Init,
            effective,
            master_interval_us,
            master: None,
            deadline: None,
            preempt_at: None,
            fault: None,
            warned_interval: None,
            wants_master: false,
            synced_fault: None,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.s
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn effective_priority(&self) -> u8 {
        self.effective
    }

    /// The master as last heard, or this router's source address when master.
    pub fn master(&self) -> Option<(IpAddr, u8)> {
        self.master
    }

    pub fn deadline(&self) -> Option<u64> {
        self.deadline
    }

    /// Why the instance itself is in FAULT (its trackers), not its sync group.
    pub fn own_fault(&self) -> Option<&str> {
        self.fault.as_deref()
    }

    /// Why the instance is in FAULT: its own trackers, else its sync group.
    pub fn fault_cause(&self) -> Option<&str> {
        if self.state != State::Fault {
            return None;
        }
        self.fault.as_deref().or(self.synced_fault.as_deref())
    }

    /// A sync group member waiting for the others to want to be master too.
    pub fn wants_master(&self) -> bool {
        self.wants_master
    }

    /// The advert this instance sends with `priority`.
    pub fn advert(&self, priority: u8) -> Advert {
        Advert {
            version: self.s.version,
            vrid: self.s.vrid,
            priority,
            interval_cs: self.s.interval_cs,
            addresses: self.s.addresses.clone(),
            auth: self.s.auth,
        }
    }

    /// The skew time for `priority` under the current master's interval (keepalived's
    /// VRRP_TIMER_SKEW: version 2 counts in seconds whatever the interval).
    fn skew_us(&self, priority: u8) -> u64 {
        let p = 256 - u64::from(priority);
        match self.s.version {
            Version::V3 => p * self.master_interval_us / 256,
            Version::V2 => p * 1_000_000 / 256,
        }
    }

    /// The master-down interval.
    pub fn master_down_us(&self) -> u64 {
        u64::from(self.s.down_timer_adverts) * self.master_interval_us
            + self.skew_us(self.effective)
    }

    pub fn handle(&mut self, now: u64, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Start => self.start(now, &mut out),
            Event::Timer => self.timer(now, &mut out),
            Event::Advert { from, ttl, advert } => {
                if let Err((reason, detail)) = self.acceptable(from, ttl, &advert, &mut out) {
                    out.push(Action::Dropped { reason, detail });
                } else {
                    match self.state {
                        State::Backup => self.backup_heard(now, from, &advert),
                        State::Master => self.master_heard(now, from, &advert, &mut out),
                        State::Init | State::Fault => {}
                    }
                }
            }
            Event::Priority(p) => self.set_priority(p),
            Event::Fault(Some(cause)) => self.enter_fault(now, cause, &mut out),
            Event::Fault(None) => self.leave_fault(now, &mut out),
            Event::Stop => self.stop(&mut out),
            Event::Sync(s) => self.sync(now, s, &mut out),
        }
        out
    }

    fn change(&mut self, to: State, cause: String, out: &mut Vec<Action>) {
        if self.state != to {
            out.push(Action::Changed {
                from: self.state,
                to,
                cause,
            });
            self.state = to;
        }
    }

    fn start(&mut self, now: u64, out: &mut Vec<Action>) {
        if self.state != State::Init {
            return;
        }
        if let Some(cause) = self.fault.clone() {
            self.change(State::Fault, cause, out);
            return;
        }
        if let Some(cause) = self.synced_fault.clone() {
            self.change(State::Fault, cause, out);
            return;
        }
        self.master_interval_us = self.s.interval_us();
        if self.s.priority == OWNER && self.s.initial_master {
            self.become_master(now, "address owner (priority 255) at start".into(), out);
        } else {
            self.change(State::Backup, "start".into(), out);
            self.deadline = Some(now + self.master_down_us());
        }
    }

    fn become_master(&mut self, now: u64, cause: String, out: &mut Vec<Action>) {
        // The advert goes first so that the old master, if any, releases before our
        // announcements arrive (keepalived does the same).
        out.push(Action::Send {
            priority: self.effective,
        });
        out.push(Action::Raise);
        self.change(State::Master, cause, out);
        self.master = Some((self.s.source, self.effective));
        self.preempt_at = None;
        self.wants_master = false;
        self.deadline = Some(now + self.s.send_every_us());
    }

    fn timer(&mut self, now: u64, out: &mut Vec<Action>) {
        match (self.state, self.deadline) {
            (State::Master, Some(d)) if now >= d => {
                out.push(Action::Send {
                    priority: self.effective,
                });
                // Catch up without a burst if the process was descheduled.
                let step = self.s.send_every_us();
                let mut next = d + step;
                if next <= now {
                    next = now + step;
                }
                self.deadline = Some(next);
            }
            (State::Backup, Some(d)) if now >= d => {
                let cause = match self.master {
                    // Its adverts were not heard on purpose (backup_heard): preemption.
                    Some((a, p)) if p < self.effective && self.s.preempt => format!(
                        "preempting the lower-priority master {a} ({p}, ours {})",
                        self.effective
                    ),
                    Some((a, _)) => {
                        format!("no advert from the master {a} within the master-down interval")
                    }
                    None => "no master heard within the master-down interval".to_string(),
                };
                if self.s.in_sync_group {
                    self.wants_master = true;
                    self.deadline = Some(now + self.master_down_us());
                    out.push(Action::WantMaster(cause));
                } else {
                    self.become_master(now, cause, out);
                }
            }
            _ => {}
        }
    }

    /// keepalived's `vrrp_check_packet` after decoding: what makes an advert one that
    /// this instance may act on. `Err` holds the reason counted and the detail logged.
    fn acceptable(
        &mut self,
        from: IpAddr,
        ttl: u8,
        a: &Advert,
        out: &mut Vec<Action>,
    ) -> Result<(), (&'static str, String)> {
        if !self.s.unicast && ttl != super::packet::TTL {
            return Err((
                "ttl",
                format!("TTL/hop limit {ttl} from {from}, 255 expected"),
            ));
        }
        if a.version != self.s.version {
            return Err((
                "version",
                format!(
                    "version {} advert from {from}, this instance speaks version {}",
                    a.version.number(),
                    self.s.version.number()
                ),
            ));
        }
        if a.version == Version::V2 {
            let kind = |x: &Auth| match x {
                Auth::None => "none",
                Auth::Pass(_) => "PASS",
            };
            if std::mem::discriminant(&a.auth) != std::mem::discriminant(&self.s.auth) {
                return Err((
                    "authentication",
                    format!(
                        "authentication {} from {from}, {} expected",
                        kind(&a.auth),
                        kind(&self.s.auth)
                    ),
                ));
            }
            if a.auth != self.s.auth {
                return Err(("authentication", format!("wrong password from {from}")));
            }
            if a.interval_cs != self.s.interval_cs {
                return Err((
                    "interval",
                    format!(
                        "advert interval {} s from {from}, ours is {} s: both would be master",
                        a.interval_cs / 100,
                        self.s.interval_cs / 100
                    ),
                ));
            }
        } else if a.interval_cs != self.s.interval_cs && self.warned_interval != Some(from) {
            self.warned_interval = Some(from);
            out.push(Action::Warn(format!(
                "advert interval mismatch with {from}: ours {} cs, theirs {} cs (a backup follows the master's)",
                self.s.interval_cs, a.interval_cs
            )));
        }
        let same = a.addresses.len() == self.s.addresses.len()
            && self.s.addresses.iter().all(|x| a.addresses.contains(x));
        if !same {
            return Err((
                "addresses",
                format!(
                    "addresses {} from {from} differ from ours ({})",
                    list(&a.addresses),
                    list(&self.s.addresses)
                ),
            ));
        }
        Ok(())
    }

    fn backup_heard(&mut self, now: u64, from: IpAddr, a: &Advert) {
        if a.priority == 0 {
            // The master is stopping: take over after the skew time alone.
            self.deadline = Some(now + self.skew_us(self.effective));
            return;
        }
        let waiting = self.s.preempt_delay_us > 0 && self.preempt_at.is_none_or(|t| t > now);
        if !self.s.preempt || a.priority >= self.effective || waiting {
            if self.s.version == Version::V3 {
                self.master_interval_us = u64::from(a.interval_cs) * 10_000;
            }
            self.master = Some((from, a.priority));
            self.wants_master = false;
            if self.s.preempt_delay_us > 0 {
                if a.priority >= self.effective {
                    self.preempt_at = None;
                } else if self.preempt_at.is_none() {
                    self.preempt_at = Some(now + self.s.preempt_delay_us);
                }
            }
            self.deadline = Some(now + self.master_down_us());
        } else {
            // A lower priority while we may preempt: not heard, so the master-down
            // timer runs out and this router takes over.
            self.master = Some((from, a.priority));
        }
    }

    fn master_heard(&mut self, now: u64, from: IpAddr, a: &Advert, out: &mut Vec<Action>) {
        if a.priority == 0 {
            // Another master stopping: answer at once so the backups hear who leads.
            out.push(Action::Send {
                priority: self.effective,
            });
            return;
        }
        let theirs_higher = from > self.s.source;
        if a.priority == self.effective {
            if from == self.s.source {
                out.push(Action::Warn(format!(
                    "an advert of equal priority came from our own address {from}"
                )));
            } else if self.effective == OWNER {
                out.push(Action::Warn(format!(
                    "{from} is also configured as the address owner (priority 255): this router lowers itself to 254; fix the configuration"
                )));
                self.effective = OWNER - 1;
                self.s.priority = OWNER - 1;
            }
        }
        if a.priority < self.effective || (a.priority == self.effective && !theirs_higher) {
            out.push(Action::Send {
                priority: self.effective,
            });
            out.push(Action::Announce);
            return;
        }
        if self.s.version == Version::V3 {
            self.master_interval_us = u64::from(a.interval_cs) * 10_000;
        }
        self.master = Some((from, a.priority));
        out.push(Action::Release);
        let cause = if a.priority > self.effective {
            format!(
                "{from} advertises priority {}, higher than ours ({})",
                a.priority, self.effective
            )
        } else {
            format!(
                "{from} advertises the same priority ({}) from a higher address",
                a.priority
            )
        };
        self.change(State::Backup, cause, out);
        self.deadline = Some(now + self.master_down_us());
    }

    fn set_priority(&mut self, p: u8) {
        if self.s.priority == OWNER {
            return;
        }
        let p = p.clamp(1, OWNER - 1);
        if p == self.effective {
            return;
        }
        let old = self.master_down_us();
        self.effective = p;
        let new = self.master_down_us();
        // A backup's running timer moves by the change in skew, as keepalived's does.
        if self.state == State::Backup {
            if let Some(d) = self.deadline {
                self.deadline = Some(if new > old {
                    d + (new - old)
                } else {
                    d.saturating_sub(old - new)
                });
            }
        }
        if self.state == State::Master {
            if let Some(m) = &mut self.master {
                m.1 = p;
            }
        }
    }

    fn enter_fault(&mut self, _now: u64, cause: String, out: &mut Vec<Action>) {
        self.fault = Some(cause.clone());
        self.fall_into_fault(cause, out);
    }

    /// Into FAULT from a running state: a master tells the others (priority 0) and
    /// releases; nothing is sent until the fault clears.
    fn fall_into_fault(&mut self, cause: String, out: &mut Vec<Action>) {
        match self.state {
            State::Init | State::Fault => {}
            State::Master => {
                out.push(Action::Send { priority: 0 });
                out.push(Action::Release);
                self.change(State::Fault, cause, out);
                self.master = None;
                self.deadline = None;
            }
            State::Backup => {
                self.change(State::Fault, cause, out);
                self.deadline = None;
                self.wants_master = false;
            }
        }
    }

    fn leave_fault(&mut self, now: u64, out: &mut Vec<Action>) {
        self.fault = None;
        if self.state != State::Fault || self.synced_fault.is_some() {
            return;
        }
        self.master_interval_us = self.s.interval_us();
        self.step_down_to_backup(now, "the fault cleared".into(), out);
    }

    fn sync(&mut self, now: u64, s: Sync, out: &mut Vec<Action>) {
        match s {
            Sync::Master(cause) => {
                if self.state == State::Backup {
                    self.become_master(now, cause, out);
                }
            }
            Sync::Backup(cause) => {
                let held = self.synced_fault.take().is_some();
                match self.state {
                    // Priority 0 (keepalived sends none here): the peer's member then
                    // takes over after its skew time, not its master-down interval.
                    State::Master => {
                        out.push(Action::Send { priority: 0 });
                        out.push(Action::Release);
                        self.step_down_to_backup(now, cause, out);
                    }
                    State::Fault if held && self.fault.is_none() => {
                        self.master_interval_us = self.s.interval_us();
                        self.step_down_to_backup(now, cause, out);
                    }
                    _ => {}
                }
            }
            Sync::Fault(cause) => {
                self.synced_fault = Some(cause.clone());
                self.fall_into_fault(cause, out);
            }
        }
    }

    fn step_down_to_backup(&mut self, now: u64, cause: String, out: &mut Vec<Action>) {
        self.change(State::Backup, cause, out);
        self.master = None;
        self.preempt_at = None;
        self.wants_master = false;
        self.deadline = Some(now + self.master_down_us());
    }

    fn stop(&mut self, out: &mut Vec<Action>) {
        if self.state == State::Master {
            out.push(Action::Send { priority: 0 });
            out.push(Action::Release);
        }
        self.change(State::Init, "stopping".into(), out);
        self.deadline = None;
        self.master = None;
    }
}

fn list(a: &[IpAddr]) -> String {
    if a.is_empty() {
        return "none".into();
    }
    a.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}
