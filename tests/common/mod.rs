//! Helpers shared by the root tests (and the failover bench, which includes `netns.rs`).
pub mod netns;
