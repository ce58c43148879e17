//! Keyword structs ↔ rows of `(keyword, canonical text)`.
//!
//! Writing stores `get(kw)` (the canonical text); reading feeds that text back through
//! the model's own parser (`set(kw, value_tokens(text))`). Using the model's parser both
//! ways means the database cannot hold a value the model would not accept, and a row
//! that was damaged by hand is reported with its table, row and keyword.

use crate::config::model::Keywords;
use crate::config::{value_tokens, Comments};

use super::error::StorageError;

/// A keyword row that does not decode: the keyword and why.
pub(crate) struct BadKeyword {
    pub keyword: String,
    pub message: String,
}

impl BadKeyword {
    /// As a [`StorageError::Corrupt`] of `row` in `table`.
    pub fn corrupt(self, table: &str, row: impl Into<String>) -> StorageError {
        StorageError::Corrupt {
            table: table.to_string(),
            row: row.into(),
            keyword: self.keyword,
            message: self.message,
        }
    }
}

/// Rebuilds a keyword struct from `(keyword, canonical text)` rows.
pub(crate) fn decode<K: Keywords>(rows: &[(String, String)]) -> Result<K, BadKeyword> {
    let mut out = K::default();
    for (kw, text) in rows {
        let bad = |message: String| BadKeyword {
            keyword: kw.clone(),
            message,
        };
        let tokens = value_tokens(text).map_err(|e| bad(format!("`{text}`: {}", e.message)))?;
        match out.set(kw, &tokens) {
            None => return Err(bad("not a keyword of this block".into())),
            Some(Err(e)) => return Err(bad(format!("`{text}`: {}", e.message))),
            Some(Ok(true)) => return Err(bad("stored twice".into())),
            Some(Ok(false)) => {}
        }
    }
    Ok(out)
}

/// Refuses a keyword struct whose stored text would not read back as the same value,
/// so that database ↔ model stays lossless. `what` names the block for the message.
pub(crate) fn check_writable<K: Keywords>(what: &str, k: &K) -> Result<(), StorageError> {
    // The round trip itself is the test (rather than trusting `unwritable()`, which
    // answers for `lvs.cf` and may be stricter); `unwritable()` only explains a failure.
    let rows: Vec<(String, String)> = k
        .entries()
        .into_iter()
        .map(|(kw, v)| (kw.to_string(), v))
        .collect();
    let message = match decode::<K>(&rows) {
        Ok(back) if back == *k => return Ok(()),
        Ok(_) => "a value does not read back unchanged".to_string(),
        Err(bad) => format!("`{}`: {}", bad.keyword, bad.message),
    };
    let message = match k.unwritable().into_iter().next() {
        Some((kw, why)) => format!("`{kw}` {why}"),
        None => message,
    };
    Err(StorageError::Invalid {
        what: what.to_string(),
        message,
    })
}

/// Comment lines as stored: JSON of the keyword → lines map.
pub(crate) fn comments_to_json(c: &Comments) -> String {
    // A map of strings to lists of strings always serialises.
    #[allow(clippy::expect_used)]
    serde_json::to_string(c).expect("comments serialise to JSON")
}

pub(crate) fn comments_from_json(text: &str) -> Result<Comments, BadKeyword> {
    serde_json::from_str(text).map_err(|e| BadKeyword {
        keyword: "comments".into(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CheckSettings, GlobalSettings, VirtualSettings};

    #[test]
    fn decode_reads_back_canonical_text() {
        let mut g = GlobalSettings::default();
        g.set("keepalive", &value_tokens("0.25").unwrap());
        g.set("primary", &value_tokens("2001:db8::1").unwrap());
        let rows: Vec<_> = g
            .entries()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(decode::<GlobalSettings>(&rows).ok(), Some(g.clone()));
        assert!(check_writable("global settings", &g).is_ok());
    }

    #[test]
    fn decode_names_the_bad_keyword() {
        let rows = vec![("active".to_string(), "maybe".to_string())];
        let err = decode::<VirtualSettings>(&rows).err().unwrap();
        assert_eq!(err.keyword, "active");
        let rows = vec![("no_such_keyword".to_string(), "1".to_string())];
        let err = decode::<VirtualSettings>(&rows).err().unwrap();
        assert_eq!(err.keyword, "no_such_keyword");
        assert!(err.message.contains("not a keyword"));
    }

    #[test]
    fn unwritable_values_are_refused() {
        let c = CheckSettings {
            send_program: Some(crate::config::value::Text("two\nlines".into())),
            ..CheckSettings::default()
        };
        let err = check_writable("virtual www", &c).unwrap_err();
        assert!(
            matches!(&err, StorageError::Invalid { message, .. } if message.contains("send_program")),
            "{err}"
        );
    }

    #[test]
    fn comments_survive_json() {
        let mut c = Comments::default();
        c.add(
            Comments::BLOCK,
            vec![" héllo \"quoted\" # x".into(), String::new()],
        );
        c.add("port", vec!["\tport comment".into()]);
        assert_eq!(comments_from_json(&comments_to_json(&c)).ok(), Some(c));
        assert!(comments_from_json("{not json").is_err());
    }
}
