//! Fuzzes the control socket's request parser (what any local user allowed to reach the
//! socket can send), one line at a time as the supervisor reads them. Beyond "never
//! panics": a request that parses serialises back to one that parses to the same
//! request, and a refusal is a reply that serialises to a single line (the protocol is
//! one JSON line each way).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lvs_director::pulse::logic::control::{parse_request, MAX_REQUEST};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(&data[..data.len().min(MAX_REQUEST)]) else {
        return;
    };
    for line in text.lines() {
        match parse_request(line) {
            Ok(req) => {
                let json = serde_json::to_string(&req).expect("a request serialises");
                let again = parse_request(&json)
                    .unwrap_or_else(|e| panic!("re-serialised request refused: {e:?}\n{json}"));
                assert_eq!(again, req, "the round trip changed the request");
            }
            Err(reply) => {
                assert!(!reply.ok);
                let json = serde_json::to_string(&reply).expect("a reply serialises");
                assert!(!json.contains('\n'), "a reply must be one line: {json}");
            }
        }
    }
});
