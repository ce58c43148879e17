//! The README's keyword reference is generated from the model; this test keeps it true.
//! Run with `BLESS=1` to rewrite the section.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the test failing

use std::path::Path;

const BEGIN: &str = "<!-- keywords:begin -->\n";
const END: &str = "<!-- keywords:end -->";

#[test]
fn readme_keyword_reference_matches_the_model() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme
        .find(BEGIN)
        .expect("README has the keywords:begin marker")
        + BEGIN.len();
    let end = readme
        .find(END)
        .expect("README has the keywords:end marker");
    let wanted = lvs_director::config::model::reference_markdown();
    if std::env::var_os("BLESS").is_some() {
        let updated = format!("{}{wanted}{}", &readme[..start], &readme[end..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert!(
        readme[start..end] == wanted,
        "README keyword tables are out of date: run `BLESS=1 cargo test --test readme`"
    );
}
