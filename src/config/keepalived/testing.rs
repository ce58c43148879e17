//! Test helpers shared by the files' tests: imports from an in-memory set of files.

use std::collections::HashMap;
use std::io;

use super::{import, ImportError, Imported};

/// Shell-style wildcard match (`*`, `?`) for the in-memory glob.
fn wild(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => wild(&p[1..], s) || (!s.is_empty() && wild(p, &s[1..])),
        (Some(b'?'), Some(_)) => wild(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => wild(&p[1..], &s[1..]),
        _ => false,
    }
}

pub(super) fn import_with(
    main: &str,
    text: &str,
    files: &[(&str, &str)],
) -> Result<Imported, ImportError> {
    let map: HashMap<String, String> = files
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let keys: Vec<String> = map.keys().cloned().collect();
    let mut read = |p: &str| {
        map.get(p)
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    };
    let mut glob = |pat: &str| {
        keys.iter()
            .filter(|k| wild(pat.as_bytes(), k.as_bytes()))
            .cloned()
            .collect::<Vec<_>>()
    };
    import(main, text, &mut read, &mut glob)
}

pub(super) fn imp(text: &str) -> Imported {
    import_with("keepalived.conf", text, &[]).unwrap_or_else(|e| panic!("{e}"))
}

pub(super) fn has(warnings: &[String], needle: &str) -> bool {
    warnings.iter().any(|w| w.contains(needle))
}
