//! Which of two directors' configurations builds on the other's. Pure.
//!
//! Each director's head is the digest of the configuration it runs
//! ([`super::pernode::digest`]); its ancestry, every digest its history made it from.
//! A head found in the other's ancestry is older and taken over by the newer one; two
//! heads neither of which descends from the other were made in parallel (edits on
//! both sides of a partition, or two directors configured apart before they were
//! paired): that is a conflict, settled only by an administrator.

use serde::{Deserialize, Serialize};

/// What a director runs, as it tells its peer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Head {
    /// The serial in force (0: none).
    pub serial: u32,
    /// The digest of the configuration in force; empty when this director has none
    /// of its own (never applied, nothing in force).
    pub digest: String,
    /// The digests it descends from, newest first (bounded).
    pub ancestry: Vec<String>,
    /// Why this director cannot take a configuration now, even a newer one: unapplied
    /// edits, a file edited by hand. `None` when it can.
    pub held: Option<String>,
}

impl Head {
    fn descends_from(&self, other: &Head) -> bool {
        other.digest.is_empty() || self.ancestry.contains(&other.digest)
    }
}

/// How the local head relates to the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// The same configuration.
    InStep,
    /// The peer's builds on ours: take it.
    PeerNewer,
    /// Ours builds on the peer's: the peer takes ours.
    LocalNewer,
    /// Made in parallel: an administrator chooses.
    Diverged,
}

/// How `local` relates to `peer`.
pub fn relate(local: &Head, peer: &Head) -> Relation {
    if local.digest == peer.digest {
        Relation::InStep
    } else if peer.descends_from(local) {
        Relation::PeerNewer
    } else if local.descends_from(peer) {
        Relation::LocalNewer
    } else {
        Relation::Diverged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(digest: &str, ancestry: &[&str]) -> Head {
        Head {
            serial: 1,
            digest: digest.into(),
            ancestry: std::iter::once(digest)
                .chain(ancestry.iter().copied())
                .filter(|d| !d.is_empty())
                .map(String::from)
                .collect(),
            held: None,
        }
    }

    #[test]
    fn heads_relate_by_ancestry_not_by_serial() {
        let a1 = head("a1", &[]);
        let a2 = head("a2", &["a1"]);
        let b2 = head("b2", &["a1"]);
        assert_eq!(relate(&a1, &a1), Relation::InStep);
        assert_eq!(relate(&a1, &a2), Relation::PeerNewer);
        assert_eq!(relate(&a2, &a1), Relation::LocalNewer);
        assert_eq!(relate(&a2, &b2), Relation::Diverged);
        assert_eq!(relate(&b2, &a2), Relation::Diverged);
        // Settling the conflict: a revision made over both heads.
        let m = head("m", &["a2", "b2", "a1"]);
        assert_eq!(relate(&a2, &m), Relation::PeerNewer);
        assert_eq!(relate(&b2, &m), Relation::PeerNewer);
    }

    #[test]
    fn a_director_without_a_configuration_takes_any() {
        let none = head("", &[]);
        let a = head("a", &[]);
        assert_eq!(relate(&none, &a), Relation::PeerNewer);
        assert_eq!(relate(&a, &none), Relation::LocalNewer);
        assert_eq!(relate(&none, &none), Relation::InStep);
    }
}
