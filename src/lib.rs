//! lvs-director: a web-managed, high-availability load balancer for Linux Virtual Server.
//!
//! Module map (what each owns, and what it must not import):
//! - [`config`]: the `lvs.cf` model, parser, renderer, validation and keepalived import.
//!   Pure: no I/O, no clock, no sqlx.
//! - [`ipvs`]: the kernel's IPVS table as data and the pure reconcile (ownership,
//!   drain, drift repair). Pure so far: no socket is opened here yet.
//! - [`storage`]: the SQLite database (settings, virtual/real servers, monitoring
//!   scripts, users, sessions, audit log, applied revisions). The only module that
//!   names sqlx.
//! - [`atomic_file`]: write-temp, fsync, rename: how `lvs.cf` and exports are written.
//! - [`cli`]: the command line (`check-config`, `import`, `export`, `passwd`): thin
//!   glue between files, `config` and `storage`.

pub mod atomic_file;
pub mod build_info;
pub mod cli;
pub mod clock;
pub mod config;
pub mod ipvs;
pub mod logging;
pub mod nlmsg;
pub mod pulse;
pub mod storage;
pub mod sync;
pub mod web;
