//! The director cluster: one configuration for the directors of a pair (or a VRRP
//! group), kept in step by configuration sync.
//!
//! An Apply on either director is offered to its peers at once; each director also
//! asks its peers what they run every `keepalive` (1 s at most), so one that was down
//! or cut off catches up when it returns. A configuration moves only forwards: a
//! director takes its peer's when it builds on its own ([`lineage`]); edits made on
//! both sides of a partition are a conflict that an administrator settles. What
//! differs per director is never synced ([`pernode`]). The channel is authenticated,
//! encrypted, replay-proof and bounded ([`wire`]); without a heartbeat key sync is
//! off. The service runs in the admin UI's process, which owns the database and
//! writes `lvs.cf` ([`service`]).

pub mod lineage;
pub mod peers;
pub mod pernode;
pub mod service;
pub mod wire;
