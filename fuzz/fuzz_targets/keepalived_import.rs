//! Fuzzes the keepalived.conf importer: it must never panic, includes resolve to the
//! input itself (so include cycles are exercised), and any imported model must validate
//! without panicking and survive lvs.cf rendering and parsing unchanged when it is
//! writable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lvs_director::config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut read = |_: &str| Ok(text.to_string());
    let mut glob = |p: &str| vec![p.to_string()];
    let Ok(imported) = config::keepalived::import("fuzz.conf", text, &mut read, &mut glob) else {
        return;
    };
    let diags = config::validate(&imported.config);
    if diags.iter().any(|d| d.message.contains("cannot be written")) {
        return;
    }
    let rendered = config::render(&imported.config);
    let again = config::parse(&rendered)
        .unwrap_or_else(|e| panic!("rendered import does not parse: {e:?}\n{rendered}"));
    assert_eq!(again.config, imported.config, "round trip changed the model:\n{rendered}");
});
