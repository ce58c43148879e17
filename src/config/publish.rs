//! What Apply writes, decided without touching anything: the next serial, the
//! rendering, its diff against the file in force, its errors and warnings, and the
//! digest the Apply form carries back. Pure; the admin UI's Apply (`web::publish`)
//! reads the file in force, shows this and writes it.

use sha2::{Digest, Sha256};
use similar::{ChangeTag, TextDiff};

use super::{parse, render_with_serial, validate, Config};

/// The `serial_no` of an `lvs.cf` text (0 when absent or unreadable). A line scan, not
/// a parse: the file in force is read on every page for the pending marker.
pub fn serial_of(text: &str) -> u32 {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l.strip_prefix("serial_no")?;
            let v = rest.trim_start().strip_prefix('=')?;
            v.split_whitespace().next()?.parse().ok()
        })
        .next()
        .unwrap_or(0)
}

/// One line of a diff, display-ready: `kind` is `add`, `del`, `ctx` or `hunk`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffLine {
    pub kind: &'static str,
    pub text: String,
}

/// A unified diff of two texts, 3 lines of context.
pub fn diff(old: &str, new: &str) -> Vec<DiffLine> {
    let d = TextDiff::from_lines(old, new);
    let mut out = Vec::new();
    for group in d.grouped_ops(3) {
        let (first, last) = (&group[0], &group[group.len() - 1]);
        out.push(DiffLine {
            kind: "hunk",
            text: format!(
                "@@ -{},{} +{},{} @@",
                first.old_range().start + 1,
                last.old_range().end - first.old_range().start,
                first.new_range().start + 1,
                last.new_range().end - first.new_range().start
            ),
        });
        for op in &group {
            for change in d.iter_changes(op) {
                let (kind, sign) = match change.tag() {
                    ChangeTag::Insert => ("add", '+'),
                    ChangeTag::Delete => ("del", '-'),
                    ChangeTag::Equal => ("ctx", ' '),
                };
                out.push(DiffLine {
                    kind,
                    text: format!("{sign}{}", change.value().trim_end_matches(['\n', '\r'])),
                });
            }
        }
    }
    out
}

/// What Apply would do.
#[derive(Debug, Clone)]
pub struct Preview {
    pub serial: u32,
    pub text: String,
    pub diff: Vec<DiffLine>,
    /// Nothing but the serial would change.
    pub unchanged: bool,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    /// Digest of `text`: the Apply form sends it back.
    pub digest: String,
}

/// The preview of applying `config` over the file in force (`None`: no file yet);
/// `last_serial` is the serial of the last recorded revision. Pure.
pub fn preview(config: &Config, in_force: Option<&str>, last_serial: u32) -> Preview {
    let old = in_force.unwrap_or("");
    let old_serial = serial_of(old);
    let serial = old_serial
        .max(last_serial)
        .max(config.global.serial_no.unwrap_or(0))
        .saturating_add(1);
    let text = render_with_serial(config, serial);
    let unchanged = in_force.is_some() && render_with_serial(config, old_serial) == old;
    let diags = validate(config);
    let mut errors: Vec<String> = diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.message.clone())
        .collect();
    errors.extend(readback_errors(&text));
    let warnings = diags
        .iter()
        .filter(|d| !d.is_error())
        .map(|d| d.message.clone())
        .collect();
    let digest = hex(&Sha256::digest(text.as_bytes())[..16]);
    Preview {
        serial,
        diff: diff(old, &text),
        text,
        unchanged,
        errors,
        warnings,
        digest,
    }
}

/// Why `text` (a rendering) cannot be applied when it does not read back, one message
/// per error, naming the line and the block it stands in. Validation should have
/// refused whatever causes it; if it did not, Apply says so instead of failing with a
/// 500, and the file in force is never replaced by one the supervisor cannot read.
pub fn readback_errors(text: &str) -> Vec<String> {
    let Err(errors) = parse(text) else {
        return Vec::new();
    };
    let lines: Vec<&str> = text.lines().collect();
    errors
        .iter()
        .map(|e| {
            let Some(no) = Some(e.line).filter(|l| (1..=lines.len()).contains(l))
            else {
                return format!(
                    "the rendered lvs.cf does not read back, so it cannot be applied: {}",
                    e.message
                );
            };
            let line = lines[no - 1].trim();
            let block = lines[..no]
                .iter()
                .rev()
                .map(|l| l.trim())
                .find(|l| l.ends_with('{'))
                .map(|h| h.trim_end_matches('{').trim_end())
                .filter(|h| *h != line.trim_end_matches('{').trim_end());
            format!(
                "the rendered lvs.cf does not read back, so it cannot be applied: line {no} `{line}`{}: {}; correct or rename that block",
                block.map(|b| format!(" (in `{b}`)")).unwrap_or_default(),
                e.message
            )
        })
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::render;

    const EXAMPLE: &str = include_str!("../../tests/data/piranha_example.lvs.cf");

    #[test]
    fn the_serial_is_read_from_the_text() {
        assert_eq!(serial_of("serial_no = 41\nprimary = 1.2.3.4\n"), 41);
        assert_eq!(serial_of("  serial_no=7 # x\n"), 7);
        assert_eq!(serial_of("# serial_no = 9\n"), 0);
        assert_eq!(serial_of(""), 0);
    }

    #[test]
    fn a_preview_shows_what_changes_and_counts_the_serial_up() {
        let c = parse(EXAMPLE).unwrap().config;
        let first = preview(&c, None, 0);
        assert!(!first.unchanged);
        assert!(first.errors.is_empty(), "{:?}", first.errors);
        assert!(first.diff.iter().all(|l| l.kind != "del"));
        let serial = first.serial;
        assert!(serial > c.global.serial_no.unwrap_or(0));

        // The same configuration over its own file: nothing to do.
        let again = preview(&c, Some(&first.text), serial);
        assert!(again.unchanged);
        assert_eq!(again.serial, serial + 1);

        // One weight changed: the diff shows exactly that line (and the serial).
        let mut changed = c.clone();
        changed.virtuals[0].servers[0].settings.weight = Some(7);
        let p = preview(&changed, Some(&first.text), serial);
        assert!(!p.unchanged);
        let added: Vec<_> = p.diff.iter().filter(|l| l.kind == "add").collect();
        let removed: Vec<_> = p.diff.iter().filter(|l| l.kind == "del").collect();
        assert_eq!(added.len(), 2, "{added:?}");
        assert!(added.iter().any(|l| l.text.contains("weight = 7")));
        assert!(added
            .iter()
            .any(|l| l.text.contains(&format!("serial_no = {}", serial + 1))));
        assert_eq!(removed.len(), 2, "{removed:?}");
        assert_ne!(p.digest, first.digest);
    }

    #[test]
    fn a_rendering_that_does_not_read_back_is_an_error_naming_the_block() {
        // The header the renderer once wrote for a virtual server named `=web`.
        let text = "serial_no = 3\nvirtual =web {\n    active = 1\n}\n";
        let errors = readback_errors(text);
        assert!(!errors.is_empty());
        assert!(
            errors[0].contains("line 2 `virtual =web {`")
                && errors[0].contains("cannot be applied"),
            "{errors:?}"
        );
        // A line inside a block names the block.
        let errors = readback_errors("virtual web {\n    weight = many\n}\n");
        assert!(
            errors
                .iter()
                .any(|e| e.contains("line 2") && e.contains("(in `virtual web`)")),
            "{errors:?}"
        );
        assert!(readback_errors(&render(&parse(EXAMPLE).unwrap().config)).is_empty());

        // Such a name is written quoted now, and the preview has nothing against it.
        let mut c = parse(EXAMPLE).unwrap().config;
        c.virtuals[0].name = "=web".into();
        let p = preview(&c, None, 0);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert!(p.text.contains("virtual \"=web\" {"), "{}", p.text);
    }

    #[test]
    fn errors_are_listed() {
        let mut c = parse(EXAMPLE).unwrap().config;
        c.virtuals[0].settings.address = None;
        c.virtuals[0].settings.active = Some(true);
        let p = preview(&c, None, 0);
        assert!(!p.errors.is_empty());
    }
}
