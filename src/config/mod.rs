//! The configuration: a typed model of `lvs.cf` (Piranha's keywords and lvs-director's
//! extensions) with its parser, renderer, validation and keepalived import.
//!
//! Pure code: no file, socket or clock is touched here. Callers read the text and
//! hand it in; `storage` persists the model; the supervisor and web UI consume it.
//!
//! The keepalived import is a folder, [`keepalived`]: its module doc lists its files,
//! syntax stage then mapping.

#[cfg(test)]
pub(crate) mod arb;
pub mod check;
pub mod diag;
pub mod dns;
pub mod keepalived;
pub mod lexer;
pub mod model;
pub mod parse;
pub mod publish;
pub mod render;
pub mod services;
pub mod url;
pub mod validate;
pub mod value;
pub mod vrrp;
pub mod whole;

pub use check::{check, Checked};
pub use diag::{Diagnostic, Scope, Severity, Spans};
pub use model::*;
pub use parse::{parse, value_tokens, ParseError, Parsed};
pub use render::{render, render_checked, render_with_serial, RenderError};
pub use validate::{is_valid, validate};

/// Text of a configuration file: UTF-8, or else Latin-1 (every byte a character, so
/// nothing is lost and old files with accented comments still read). The flag says
/// Latin-1 was used.
pub fn decode_text(bytes: &[u8]) -> (String, bool) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), false),
        Err(_) => (bytes.iter().map(|&b| char::from(b)).collect(), true),
    }
}

/// One line describing a configuration, e.g. "3 virtual servers (2 active), 7 real servers".
pub fn summary(c: &Config) -> String {
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let active = c.virtuals.iter().filter(|v| v.settings.active()).count();
    let servers: usize = c.virtuals.iter().map(|v| v.servers.len()).sum();
    let mut parts = vec![
        format!(
            "{} ({active} active)",
            plural(c.virtuals.len(), "virtual server", "virtual servers")
        ),
        plural(servers, "real server", "real servers"),
    ];
    if !c.floating.is_empty() {
        parts.push(plural(
            c.floating.len(),
            "floating address",
            "floating addresses",
        ));
    }
    if !c.local_checks.is_empty() {
        parts.push(plural(c.local_checks.len(), "local check", "local checks"));
    }
    if !c.vrrp.is_empty() {
        parts.push(plural(c.vrrp.len(), "VRRP instance", "VRRP instances"));
    }
    if !c.failovers.is_empty() {
        parts.push(plural(
            c.failovers.len(),
            "failover service (ignored)",
            "failover services (ignored)",
        ));
    }
    parts.join(", ")
}

#[cfg(test)]
mod summary_tests {
    use super::*;

    #[test]
    fn summaries_count_blocks() {
        let c = parse(include_str!("../../tests/data/piranha_example.lvs.cf"))
            .unwrap()
            .config;
        assert_eq!(summary(&c), "3 virtual servers (3 active), 6 real servers");
    }
}

#[cfg(test)]
mod roundtrip_tests {
    use proptest::prelude::*;
    use rand::SeedableRng;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// parse(render(m)) == m for every model render can write, and rendering the
        /// result again gives the same text.
        #[test]
        fn parse_of_render_is_identity(seed in any::<u64>()) {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let model = arb::config(&mut rng);
            let text = render(&model);
            let parsed = parse(&text).map_err(|e| {
                TestCaseError::fail(format!("{e:?}\n--- text\n{text}"))
            })?;
            prop_assert_eq!(&parsed.config, &model, "text:\n{}", text);
            prop_assert_eq!(render(&parsed.config), text);
            prop_assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
        }
    }
}
