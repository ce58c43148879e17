//! Golden tests of the `lvs.cf` parser, renderer and validation.
//!
//! `tests/lvscf/golden/NAME.lvs.cf` must parse to the model in `NAME.json`, render to
//! `NAME.canonical`, and give exactly the diagnostics in `NAME.diagnostics`.
//! `tests/lvscf/errors/NAME.lvs.cf` must give exactly the errors in `NAME.expected`.
//! Run with `BLESS=1` to rewrite the expectations, then review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the test failing

use std::fs;
use std::path::{Path, PathBuf};

use lvs_director::config::{self, model::*, Config};

fn dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/lvscf")
        .join(sub)
}

fn inputs(sub: &str) -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cf"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no inputs in {sub}");
    v
}

fn updating() -> bool {
    std::env::var_os("BLESS").is_some()
}

/// Compares `actual` with the expectation file, or writes it when updating.
fn expect_file(path: &Path, actual: &str, failures: &mut Vec<String>) {
    if updating() {
        fs::write(path, actual).unwrap();
        return;
    }
    let expected = fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with BLESS=1)", path.display()));
    if expected != actual {
        failures.push(format!(
            "{} differs:\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        ));
    }
}

fn diagnostics_text(text: &str) -> Result<(Config, String), String> {
    let parsed = config::parse(text).map_err(|errs| {
        errs.iter()
            .map(|e| format!("{}\n", e.display_in("F")))
            .collect::<String>()
    })?;
    let mut diags = parsed.warnings.clone();
    let mut v = config::validate(&parsed.config);
    parsed.spans.locate(&mut v);
    diags.extend(v);
    diags.sort_by_key(|d| (d.pos, d.severity));
    let out = diags
        .iter()
        .map(|d| format!("{}\n", d.display_in("F")))
        .collect();
    Ok((parsed.config, out))
}

#[test]
fn golden_files_parse_render_and_validate_as_recorded() {
    let mut failures = Vec::new();
    for input in inputs("golden") {
        let text = fs::read_to_string(&input).unwrap();
        let (model, diags) = diagnostics_text(&text)
            .unwrap_or_else(|e| panic!("{} does not parse:\n{e}", input.display()));
        let json = serde_json::to_string_pretty(&model).unwrap() + "\n";
        expect_file(&input.with_extension("json"), &json, &mut failures);
        let canonical = config::render(&model);
        expect_file(
            &input.with_extension("canonical"),
            &canonical,
            &mut failures,
        );
        expect_file(&input.with_extension("diagnostics"), &diags, &mut failures);

        // The canonical text means the same and is a fixed point.
        let again = config::parse(&canonical).unwrap_or_else(|e| {
            panic!("{}: canonical text does not parse: {e:?}", input.display())
        });
        assert_eq!(
            again.config,
            model,
            "{}: canonical text parses to another model",
            input.display()
        );
        assert_eq!(
            config::render(&again.config),
            canonical,
            "{}: rendering is not stable",
            input.display()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn error_files_report_the_exact_line_and_message() {
    let mut failures = Vec::new();
    for input in inputs("errors") {
        let text = fs::read_to_string(&input).unwrap();
        let out = match diagnostics_text(&text) {
            Err(parse_errors) => parse_errors,
            Ok((_, diags)) => diags
                .lines()
                .filter(|l| l.contains(": error: "))
                .map(|l| format!("{l}\n"))
                .collect(),
        };
        assert!(!out.is_empty(), "{}: no error reported", input.display());
        expect_file(&input.with_extension("expected"), &out, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Every keyword of every block is exercised by at least one golden file.
#[test]
fn golden_files_cover_every_keyword() {
    let models: Vec<Config> = inputs("golden")
        .iter()
        .map(|p| {
            config::parse(&fs::read_to_string(p).unwrap())
                .unwrap()
                .config
        })
        .collect();
    let mut missing = Vec::new();
    let mut need = |block: &str, kws: &[&str], has: &dyn Fn(&str) -> bool| {
        for kw in kws {
            if !has(kw) {
                missing.push(format!("{block}.{kw}"));
            }
        }
    };
    need("global", GlobalSettings::KEYWORDS, &|k| {
        models.iter().any(|m| m.global.get(k).is_some())
    });
    need("virtual", VirtualSettings::KEYWORDS, &|k| {
        models
            .iter()
            .flat_map(|m| m.virtuals.iter().chain(&m.failovers))
            .any(|v| v.settings.get(k).is_some())
    });
    need("check", CheckSettings::KEYWORDS, &|k| {
        models
            .iter()
            .flat_map(|m| &m.virtuals)
            .any(|v| v.check.get(k).is_some())
            || models
                .iter()
                .flat_map(|m| &m.failovers)
                .any(|v| v.check.get(k).is_some())
    });
    need("server", RealServerSettings::KEYWORDS, &|k| {
        models
            .iter()
            .flat_map(|m| &m.virtuals)
            .flat_map(|v| &v.servers)
            .any(|s| s.settings.get(k).is_some())
    });
    need("floating", FloatingSettings::KEYWORDS, &|k| {
        models
            .iter()
            .flat_map(|m| &m.floating)
            .any(|f| f.settings.get(k).is_some())
    });
    need("local_check", LocalCheckSettings::KEYWORDS, &|k| {
        models
            .iter()
            .flat_map(|m| &m.local_checks)
            .any(|l| l.settings.get(k).is_some())
    });
    need("vrrp", VrrpSettings::KEYWORDS, &|k| {
        models
            .iter()
            .flat_map(|m| &m.vrrp)
            .any(|i| i.settings.get(k).is_some())
    });
    assert!(
        missing.is_empty(),
        "keywords no golden file uses: {missing:?}"
    );
}
