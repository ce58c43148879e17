//! The one way a configuration text is checked: parsed, validated, every diagnostic
//! located in the text (line and column, block, keyword) and put in file order. Used by
//! `check-config` and `import`, by the supervisor's start and reload, and by the admin
//! UI's import of the file in force, so that all three say the same thing the same way.

use super::diag::{Diagnostic, Scope, Severity};
use super::model::Config;

/// What checking a text found.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The model, when the text could be parsed (it may still have errors).
    pub config: Option<Config>,
    /// Every error and warning, located, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.is_error())
    }

    /// The model when there is no error.
    pub fn valid(&self) -> Option<&Config> {
        self.config
            .as_ref()
            .filter(|_| self.errors().next().is_none())
    }

    /// `FILE:LINE:COL: severity: message` lines for `file`, for the errors only.
    pub fn error_lines(&self, file: &str) -> Vec<String> {
        self.errors().map(|d| d.display_in(file)).collect()
    }

    /// The same for the warnings.
    pub fn warning_lines(&self, file: &str) -> Vec<String> {
        self.warnings().map(|d| d.display_in(file)).collect()
    }
}

/// Parses and validates `text`.
pub fn check(text: &str) -> Checked {
    let parsed = match super::parse(text) {
        Ok(p) => p,
        Err(errors) => {
            return Checked {
                config: None,
                diagnostics: errors
                    .into_iter()
                    .map(|e| Diagnostic {
                        severity: Severity::Error,
                        scope: Scope::Global,
                        keyword: None,
                        message: e.message,
                        pos: Some((e.line, e.col)),
                    })
                    .collect(),
            }
        }
    };
    let mut diagnostics = parsed.warnings.clone();
    let mut more = super::validate(&parsed.config);
    parsed.spans.locate(&mut more);
    diagnostics.extend(more);
    diagnostics.sort_by_key(|d| (d.pos, d.severity));
    Checked {
        config: Some(parsed.config),
        diagnostics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_validation_errors_are_located_the_same_way() {
        let bad_syntax = check("serial_no = 1\nvirtual web {\n");
        assert!(bad_syntax.config.is_none());
        let lines = bad_syntax.error_lines("lvs.cf");
        assert!(lines[0].starts_with("lvs.cf:"), "{lines:?}");
        assert!(lines[0].contains(": error: "), "{lines:?}");

        // Valid syntax, invalid configuration: the error points at its line.
        let text = "serial_no = 1\nprimary = 192.0.2.1\nservice = lvs\n\
                    virtual web {\n  active = 1\n  address = 192.0.2.10 eth0:1\n}\n\
                    virtual web {\n  active = 1\n  address = 192.0.2.11 eth0:1\n}\n";
        let c = check(text);
        assert!(c.config.is_some());
        assert!(c.valid().is_none());
        let lines = c.error_lines("lvs.cf");
        assert!(!lines.is_empty(), "{:?}", c.diagnostics);
        assert!(
            c.errors().all(|d| d.pos.is_some()),
            "located: {:?}",
            c.diagnostics
        );

        let good = check(include_str!("../../tests/data/piranha_example.lvs.cf"));
        assert!(good.valid().is_some(), "{:?}", good.error_lines("x"));
    }
}
