//! lvs-director: a web-managed, high-availability load balancer for Linux Virtual Server.
//!
//! Module map (what each owns, and what it must not import):
//! - [`config`]: the `lvs.cf` model, parser, renderer, validation and keepalived import.
//!   Pure: no I/O, no clock, no sqlx.
//! - [`ipvs`]: the kernel's IPVS table as data, the pure reconcile plan (ownership,
//!   drain, drift repair), the generic-netlink codec and its socket client.
//! - [`pulse`]: the supervisor (heartbeats and failover, floating addresses, health
//!   checks driving the IPVS table, commands, notifications, control socket), in three
//!   folders: `logic` (decisions, no I/O: a test enforces it), `io` (one thin shell per
//!   facility) and `task` (the long-running tasks joining them).
//! - [`storage`]: the SQLite database (settings, virtual/real servers, monitoring
//!   scripts, users, sessions, audit log, applied revisions, password hashing). The
//!   only module that names sqlx.
//! - [`web`]: the admin UI (HTTP server, login and its limits, pages, Apply, metrics).
//! - [`cli`]: the command line, thin glue between files, `config`, `storage`, `pulse`
//!   and `web`.
//! - Small shared pieces: [`atomic_file`] (write-temp, fsync, rename: how `lvs.cf` and
//!   exports are written), [`nlmsg`] (netlink framing and the one request/acknowledgement
//!   loop, for the IPVS client and rtnetlink), [`sync`] (locks that survive a panic elsewhere), [`descriptors`]
//!   (the open-file limit), [`clock`],
//!   [`logging`], [`build_info`].

pub mod apply;
pub mod atomic_file;
pub mod build_info;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod descriptors;
pub mod ipvs;
pub mod logging;
pub mod nlmsg;
pub mod pulse;
pub mod storage;
pub mod sync;
pub mod web;
