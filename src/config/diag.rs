//! Diagnostics (errors and warnings) and where they point: a block of the model and a
//! keyword, plus the file position when the configuration came from text.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

use super::model::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// A block of the model, by position (names may be duplicated in a bad file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Scope {
    Global,
    Virtual(usize),
    Failover(usize),
    /// (virtual index, server index)
    Server(usize, usize),
    Floating(usize),
    LocalCheck(usize),
    Vrrp(usize),
}

impl Scope {
    /// Human path of the block, e.g. `virtual www, server web1`; empty for globals.
    pub fn describe(&self, c: &Config) -> String {
        let name = |v: Option<&str>| v.unwrap_or("?").to_string();
        match *self {
            Scope::Global => String::new(),
            Scope::Virtual(i) => format!(
                "virtual {}",
                name(c.virtuals.get(i).map(|v| v.name.as_str()))
            ),
            Scope::Failover(i) => format!(
                "failover {}",
                name(c.failovers.get(i).map(|v| v.name.as_str()))
            ),
            Scope::Server(v, s) => {
                let vs = c.virtuals.get(v);
                format!(
                    "virtual {}, server {}",
                    name(vs.map(|v| v.name.as_str())),
                    name(vs.and_then(|v| v.servers.get(s)).map(|s| s.name.as_str()))
                )
            }
            Scope::Floating(i) => format!(
                "floating {}",
                name(c.floating.get(i).map(|v| v.name.as_str()))
            ),
            Scope::LocalCheck(i) => {
                format!(
                    "local_check {}",
                    name(c.local_checks.get(i).map(|v| v.name.as_str()))
                )
            }
            Scope::Vrrp(i) => format!("vrrp {}", name(c.vrrp.get(i).map(|v| v.name.as_str()))),
        }
    }
}

/// One error or warning about a configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub scope: Scope,
    /// The keyword it is about; `None` for the block itself.
    pub keyword: Option<String>,
    /// Complete sentence naming the block and keyword.
    pub message: String,
    /// (line, column), 1-based, when known.
    pub pos: Option<(usize, usize)>,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `FILE:LINE:COL: error: message` (position omitted when unknown).
    pub fn display_in(&self, file: &str) -> String {
        match self.pos {
            Some((l, c)) => format!("{file}:{l}:{c}: {}: {}", self.severity, self.message),
            None => format!("{file}: {}: {}", self.severity, self.message),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((l, c)) = self.pos {
            write!(f, "{l}:{c}: ")?;
        }
        write!(f, "{}: {}", self.severity, self.message)
    }
}

/// Where each block header and keyword value stood in the parsed text.
#[derive(Debug, Clone, Default)]
pub struct Spans {
    map: HashMap<(Scope, Option<String>), (usize, usize)>,
}

impl Spans {
    pub fn record(&mut self, scope: Scope, keyword: Option<&str>, pos: (usize, usize)) {
        self.map.insert((scope, keyword.map(str::to_string)), pos);
    }

    /// The keyword's position, else its block header's.
    pub fn lookup(&self, scope: Scope, keyword: Option<&str>) -> Option<(usize, usize)> {
        keyword
            .and_then(|k| self.map.get(&(scope, Some(k.to_string()))))
            .or_else(|| self.map.get(&(scope, None)))
            .copied()
    }

    /// Fills in the position of diagnostics that have none.
    pub fn locate(&self, diags: &mut [Diagnostic]) {
        for d in diags.iter_mut().filter(|d| d.pos.is_none()) {
            d.pos = self.lookup(d.scope, d.keyword.as_deref());
        }
    }
}
