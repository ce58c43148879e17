//! Fuzzes the lvs.cf parser. Beyond "never panics", it checks the round-trip oracle:
//! whatever parses renders to text that parses back to the same model, and that text
//! is a fixed point of render(parse(·)). Validation must not panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lvs_director::config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(parsed) = config::parse(text) else { return };
    let _ = config::validate(&parsed.config);
    let rendered = config::render(&parsed.config);
    let again = config::parse(&rendered)
        .unwrap_or_else(|e| panic!("rendered text does not parse: {e:?}\n{rendered}"));
    assert_eq!(again.config, parsed.config, "round trip changed the model:\n{rendered}");
    assert_eq!(config::render(&again.config), rendered, "rendering is not stable");
});
