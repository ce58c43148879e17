//! The second stage of the syntax: tokens into the statement tree, `include` files read
//! through the caller's `read` and `glob`, csh braces expanded, and each file spliced
//! in where it is included. The only code that reads files, so the bounds against
//! hostile nesting, include chains and brace expansion live here.

use std::collections::HashSet;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::report::{note_at, Note};
use super::tokens::{tokenize, TokKind};
use super::tree::{shorten, Node};
use super::{ImportError, INCLUDE_WORDS, MAX_INCLUDE_DEPTH};

/// Deepest nesting of blocks in one file. keepalived needs four levels
/// (`virtual_server` → `real_server` → `HTTP_GET` → `url`); the limit keeps hostile
/// input from building a tree deep enough to overflow the stack.
const MAX_NESTING: usize = 32;

/// Largest number of paths one `include` pattern's csh braces may expand to.
const MAX_BRACE_EXPANSION: usize = 256;

/// Linux's PATH_MAX: no longer pattern names a file, so none is brace-expanded.
const MAX_PATH_LEN: usize = 4096;

pub(super) struct Loader<'a> {
    pub(super) read: &'a mut dyn FnMut(&str) -> io::Result<String>,
    pub(super) glob: &'a mut dyn FnMut(&str) -> Vec<String>,
    /// Every file read, by display name; [`Node::file`] indexes it.
    pub(super) files: Vec<String>,
    /// The include chain being read, for cycle and depth checks.
    pub(super) chain: Vec<String>,
    pub(super) notes: Vec<Note>,
    pub(super) seq: usize,
}

/// The statement list new statements go to: the innermost open block's, or the file's.
fn open_list<'s>(stack: &'s mut [Node], top: &'s mut Vec<Node>) -> &'s mut Vec<Node> {
    match stack.last_mut().and_then(|n| n.block.as_mut()) {
        Some(b) => b,
        None => top,
    }
}

impl Loader<'_> {
    pub(super) fn load(&mut self, name: String, text: &str) -> Result<Vec<Node>, ImportError> {
        let file = self.files.len();
        self.files.push(name.clone());
        self.chain.push(name);
        let r = self.build(file, text);
        self.chain.pop();
        r
    }

    fn build(&mut self, file: usize, text: &str) -> Result<Vec<Node>, ImportError> {
        let name = self.files[file].clone();
        let syntax = |line: usize, col: usize, message: String| ImportError::Syntax {
            file: name.clone(),
            line,
            col,
            message,
        };
        let toks = tokenize(text).map_err(|e| syntax(e.line, e.col, e.message))?;
        let mut top: Vec<Node> = Vec::new();
        // Open blocks, innermost last; each header's `block` collects its statements.
        let mut stack: Vec<Node> = Vec::new();
        // The statement being read.
        let mut cur: Option<Node> = None;
        // The last complete statement: it still takes a block if the next token is a
        // `{` (keepalived allows the brace on the following line).
        let mut pending: Option<Node> = None;
        for t in toks {
            match t.kind {
                TokKind::Word(w) => {
                    if cur.is_none() {
                        if let Some(p) = pending.take() {
                            self.finish(p, open_list(&mut stack, &mut top))?;
                        }
                        self.seq += 1;
                        cur = Some(Node {
                            file,
                            line: t.line,
                            col: t.col,
                            seq: self.seq,
                            words: Vec::new(),
                            block: None,
                        });
                    }
                    if let Some(c) = cur.as_mut() {
                        c.words.push(w);
                    }
                }
                TokKind::Newline => {
                    if let Some(c) = cur.take() {
                        pending = Some(c);
                    }
                }
                TokKind::Open => {
                    let Some(mut header) = cur.take().or_else(|| pending.take()) else {
                        return Err(syntax(
                            t.line,
                            t.col,
                            "`{` without a keyword before it".into(),
                        ));
                    };
                    if stack.len() >= MAX_NESTING {
                        return Err(syntax(
                            t.line,
                            t.col,
                            format!("blocks nested deeper than {MAX_NESTING} levels"),
                        ));
                    }
                    header.block = Some(Vec::new());
                    stack.push(header);
                }
                TokKind::Close => {
                    if let Some(s) = cur.take().or_else(|| pending.take()) {
                        self.finish(s, open_list(&mut stack, &mut top))?;
                    }
                    let Some(node) = stack.pop() else {
                        return Err(syntax(
                            t.line,
                            t.col,
                            "unexpected `}`: no block is open".into(),
                        ));
                    };
                    self.finish(node, open_list(&mut stack, &mut top))?;
                }
            }
        }
        if let Some(s) = cur.take().or_else(|| pending.take()) {
            self.finish(s, open_list(&mut stack, &mut top))?;
        }
        if let Some(open) = stack.last() {
            return Err(syntax(
                open.line,
                open.col,
                format!(
                    "`{}` block is never closed: missing `}}` before the end of the file",
                    open.kw()
                ),
            ));
        }
        Ok(top)
    }

    /// Files a complete statement: follows includes, and drops (with a warning) what
    /// needs keepalived's preprocessor — conditionals, macros, generators.
    fn finish(&mut self, n: Node, out: &mut Vec<Node>) -> Result<(), ImportError> {
        let Some(first) = n.words.first() else {
            return Ok(());
        };
        let skipped = if n.block.is_some() {
            " (the whole block is skipped)"
        } else {
            ""
        };
        if !first.quoted {
            if let Some(cond) = first.text.strip_prefix('@') {
                let which = match cond.strip_prefix('^') {
                    Some(id) => format!("on every director but the one whose config id is `{id}`"),
                    None => format!("only on the director whose config id is `{cond}`"),
                };
                note_at(
                    &mut self.notes,
                    &n,
                    format!(
                        "conditional statement `{}` not imported: keepalived uses it {which}; write the value for this director instead{skipped}",
                        n.text()
                    ),
                );
                return Ok(());
            }
            if first.text.starts_with('$') {
                note_at(
                    &mut self.notes,
                    &n,
                    format!(
                        "macro definition `{}` not imported: keepalived macros are not expanded, and statements using them are skipped",
                        n.text()
                    ),
                );
                return Ok(());
            }
            if INCLUDE_WORDS.contains(&first.text.as_str()) {
                return self.include(&n, out);
            }
        }
        if n.words
            .iter()
            .any(|w| w.text.contains("~SEQ") || w.text.contains("~LST"))
        {
            note_at(
                &mut self.notes,
                &n,
                format!(
                    "`{}` not imported: keepalived's ~SEQ/~LST generators are not expanded; write the statements out{skipped}",
                    n.text()
                ),
            );
            return Ok(());
        }
        if let Some(w) = n.words.iter().find(|w| w.macro_use) {
            note_at(
                &mut self.notes,
                &n,
                format!(
                    "`{}` not imported: it uses the keepalived macro `{}`, which is not expanded; write the value itself{skipped}",
                    n.kw(),
                    shorten(&w.text)
                ),
            );
            return Ok(());
        }
        if let Some(w) = n.words.iter().find(|w| w.invalid_utf8) {
            note_at(
                &mut self.notes,
                &n,
                format!(
                    "`{}`: `{}` is not UTF-8 once its escapes are decoded; the invalid bytes are imported as U+FFFD: check the value",
                    n.kw(),
                    shorten(&w.text)
                ),
            );
        }
        out.push(n);
        Ok(())
    }

    fn include(&mut self, n: &Node, out: &mut Vec<Node>) -> Result<(), ImportError> {
        let name = self.files[n.file].clone();
        let err = |message: String| ImportError::Include {
            file: name.clone(),
            line: n.line,
            message,
        };
        if n.block.is_some() {
            return Err(err(format!("`{}` cannot open a block", n.kw())));
        }
        let pattern = match n.args() {
            [p] => p,
            [] => return Err(err(format!("`{}` needs a file name", n.kw()))),
            [_, extra, ..] => {
                return Err(err(format!(
                    "`{}` takes one file name, found `{}` after it (quote names with blanks)",
                    n.kw(),
                    shorten(&extra.text)
                )))
            }
        };
        if self.chain.len() > MAX_INCLUDE_DEPTH {
            return Err(err(format!(
                "includes nested deeper than {MAX_INCLUDE_DEPTH} levels: {}",
                self.chain.join(" → ")
            )));
        }
        // keepalived: "relative paths included from a file are relative to the
        // directory of the including file itself".
        let base = Path::new(&name).parent().unwrap_or(Path::new(""));
        let mut paths = Vec::new();
        for p in expand_braces(&pattern.text) {
            let full = normalize(&base.join(&p));
            if full.contains(['*', '?', '[']) {
                let mut matched: Vec<String> = (self.glob)(&full)
                    .iter()
                    .map(|m| normalize(Path::new(m)))
                    .collect();
                matched.sort();
                paths.extend(matched);
            } else {
                paths.push(full);
            }
        }
        let mut seen = HashSet::new();
        paths.retain(|p| seen.insert(p.clone()));
        if paths.is_empty() {
            note_at(
                &mut self.notes,
                n,
                format!(
                    "`{}`: no file matches; nothing included (keepalived ignores it too)",
                    n.text()
                ),
            );
            return Ok(());
        }
        for p in paths {
            if self.chain.contains(&p) {
                return Err(err(format!(
                    "include cycle: {} → {p}",
                    self.chain.join(" → ")
                )));
            }
            match (self.read)(&p) {
                Ok(text) => {
                    let nodes = self.load(p, &text)?;
                    out.extend(nodes);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => note_at(
                    &mut self.notes,
                    n,
                    format!(
                        "`{}`: {p} not found; nothing included (keepalived ignores a missing file too)",
                        n.text()
                    ),
                ),
                Err(e) => return Err(err(format!("cannot read {p}: {e}"))),
            }
        }
        Ok(())
    }
}

/// Lexical path normalization (`a/./b/../c` → `a/c`); the file system is not consulted.
pub(super) fn normalize(p: &Path) -> String {
    let mut out = PathBuf::new();
    let mut depth = 0usize;
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if depth > 0 => {
                out.pop();
                depth -= 1;
            }
            Component::ParentDir => out.push(".."),
            Component::Normal(s) => {
                out.push(s);
                depth += 1;
            }
            other => out.push(other.as_os_str()),
        }
    }
    let s = out.to_string_lossy().into_owned();
    if s.is_empty() {
        ".".into()
    } else {
        s
    }
}

/// csh brace expansion (`conf.d/{a,b}.conf`), which keepalived's `glob()` performs;
/// the `glob` crate does not. Braces without a comma are left alone. Bounded: at most
/// [`MAX_BRACE_EXPANSION`] results, and no expansion of patterns longer than a path
/// can be.
fn expand_braces(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > MAX_PATH_LEN {
        out.push(s.to_string());
    } else {
        expand_into(s, 0, &mut out);
    }
    out
}

/// Real patterns have a group or two; past [`MAX_BRACE_GROUPS`] the rest stays literal.
const MAX_BRACE_GROUPS: usize = 16;

fn expand_into(s: &str, depth: usize, out: &mut Vec<String>) {
    if out.len() >= MAX_BRACE_EXPANSION {
        return;
    }
    match first_brace_group(s).filter(|_| depth < MAX_BRACE_GROUPS) {
        Some((prefix, alts, suffix)) => {
            for alt in alts {
                expand_into(&format!("{prefix}{alt}{suffix}"), depth + 1, out);
            }
        }
        None => out.push(s.to_string()),
    }
}

/// The leftmost `{a,b,…}` group: the text before it, its alternatives, the text after.
/// One pass: each `{` waits on a stack for its `}`, collecting its own commas.
fn first_brace_group(s: &str) -> Option<(&str, Vec<&str>, &str)> {
    let mut open: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut best: Option<(usize, Vec<usize>, usize)> = None;
    for (i, c) in s.bytes().enumerate() {
        match c {
            b'{' => open.push((i, Vec::new())),
            b',' => {
                if let Some((_, commas)) = open.last_mut() {
                    commas.push(i);
                }
            }
            b'}' => {
                if let Some((start, commas)) = open.pop() {
                    if !commas.is_empty() && best.as_ref().is_none_or(|b| start < b.0) {
                        best = Some((start, commas, i));
                    }
                }
            }
            _ => {}
        }
    }
    let (start, commas, end) = best?;
    let mut cuts = vec![start];
    cuts.extend(commas);
    cuts.push(end);
    // Braces and commas are ASCII, so the cuts are character boundaries.
    let alts = cuts.windows(2).map(|w| &s[w[0] + 1..w[1]]).collect();
    Some((&s[..start], alts, &s[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::config::keepalived::import;

    // ---- syntax errors ----

    fn syntax_err(text: &str) -> (usize, usize, String) {
        match import_with("k.conf", text, &[]) {
            Err(ImportError::Syntax {
                file,
                line,
                col,
                message,
            }) => {
                assert_eq!(file, "k.conf");
                (line, col, message)
            }
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn unterminated_quote_names_line_and_column() {
        let (l, c, m) = syntax_err("global_defs {\n  router_id \"lb1\n}\n");
        assert_eq!((l, c), (2, 13));
        assert!(m.contains("unterminated"), "{m}");
    }

    #[test]
    fn unbalanced_braces_are_errors() {
        let (l, c, m) = syntax_err("a {\n}\n}\n");
        assert_eq!((l, c), (3, 1));
        assert!(m.contains("no block is open"), "{m}");
        let (l, c, m) =
            syntax_err("virtual_server 10.0.0.1 80 {\n  real_server 10.0.0.2 80 {\n}\n");
        assert_eq!((l, c), (1, 1));
        assert!(m.contains("`virtual_server` block is never closed"), "{m}");
        let (l, _, m) = syntax_err("x\n\n}\n{\n");
        assert_eq!(l, 3);
        assert!(m.contains("no block is open"), "{m}");
        let (l, c, m) = syntax_err("a { }\n{\n");
        assert_eq!((l, c), (2, 1));
        assert!(m.contains("without a keyword"), "{m}");
    }

    #[test]
    fn nesting_depth_is_bounded() {
        let text = "a {\n".repeat(MAX_NESTING + 1);
        let (l, _, m) = syntax_err(&text);
        assert_eq!(l, MAX_NESTING + 1);
        assert!(m.contains("nested deeper"), "{m}");
        // Deep but closed nesting of unknown blocks is fine.
        let ok = format!(
            "{}{}",
            "a {\n".repeat(MAX_NESTING),
            "}\n".repeat(MAX_NESTING)
        );
        let r = imp(&ok);
        assert_eq!(r.warnings.len(), 1);
    }

    // ---- statement layout ----

    #[test]
    fn brace_on_the_next_line_and_statements_on_one_line() {
        let a = imp("virtual_server 10.0.0.1 80\n{\n protocol TCP\n real_server 10.0.0.2 80\n {\n  weight 3\n }\n}\n");
        let b = imp(
            "virtual_server 10.0.0.1 80 { protocol TCP\nreal_server 10.0.0.2 80 { weight 3 } }\n",
        );
        assert_eq!(a.config, b.config);
        let v = &a.config.virtuals[0];
        assert_eq!(v.servers[0].settings.weight, Some(3));
        assert_eq!(v.settings.protocol, None, "TCP is lvs.cf's default");
    }

    #[test]
    fn preprocessor_lines_are_skipped_with_their_blocks() {
        let r = imp("$VIP=10.0.0.1\n@lb1 virtual_server 10.0.0.9 80 {\n protocol TCP\n}\nvirtual_server $VIP 80 {\n real_server 10.0.0.2 80 { weight 1 }\n}\n~SEQ(i,1,1,3) x $i\nvirtual_server 10.0.0.5 80 { protocol TCP }\n");
        assert_eq!(r.config.virtuals.len(), 1);
        assert_eq!(r.config.virtuals[0].name, "vs_10_0_0_5_80");
        assert!(has(
            &r.warnings,
            "keepalived.conf:1: macro definition `$VIP=10.0.0.1`"
        ));
        assert!(has(
            &r.warnings,
            "keepalived.conf:2: conditional statement `@lb1 virtual_server"
        ));
        assert!(has(
            &r.warnings,
            "keepalived.conf:5: `virtual_server` not imported: it uses the keepalived macro `$VIP`"
        ));
        assert!(has(
            &r.warnings,
            "keepalived.conf:8: `~SEQ(i,1,1,3) x $i` not imported"
        ));
    }

    // ---- includes ----

    #[test]
    fn includes_are_relative_to_the_including_file_and_spliced_in_place() {
        let main = "global_defs {\n include defs/mail.conf\n}\ninclude services/*.conf\ninclude services/{x,y}.conf\n";
        let r = import_with(
            "/etc/keepalived/keepalived.conf",
            main,
            &[
                (
                    "/etc/keepalived/defs/mail.conf",
                    "smtp_server 10.0.0.25\nrouter_id a\n",
                ),
                (
                    "/etc/keepalived/services/b.conf",
                    "virtual_server 10.0.0.2 80 { protocol TCP }\n",
                ),
                (
                    "/etc/keepalived/services/a.conf",
                    "virtual_server 10.0.0.1 80 { protocol TCP }\ninclude ../defs/../extra.conf\n",
                ),
                (
                    "/etc/keepalived/extra.conf",
                    "virtual_server 10.0.0.3 80 { protocol TCP }\n",
                ),
            ],
        )
        .unwrap();
        let names: Vec<&str> = r.config.virtuals.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            names,
            ["vs_10_0_0_1_80", "vs_10_0_0_3_80", "vs_10_0_0_2_80"]
        );
        assert!(r.config.global.smtp_server.is_some());
        assert_eq!(
            r.warnings,
            [
                "/etc/keepalived/defs/mail.conf:2: `router_id` not imported: lvs-director tells the directors apart by their addresses (primary, backup)",
                "/etc/keepalived/services/a.conf:1: no vrrp_instance: imported as a single director (backup_active = 0); set primary, backup and backup_active = 1 to run a director pair",
                "/etc/keepalived/services/a.conf:1: `virtual_server 10.0.0.1 80`: 10.0.0.1 is not a VRRP address (virtual_ipaddress): lvs-director raises it itself on the active director, on eth0 (assumed; check `address`)",
                "/etc/keepalived/extra.conf:1: `virtual_server 10.0.0.3 80`: 10.0.0.3 is not a VRRP address (virtual_ipaddress): lvs-director raises it itself on the active director, on eth0 (assumed; check `address`)",
                "/etc/keepalived/services/b.conf:1: `virtual_server 10.0.0.2 80`: 10.0.0.2 is not a VRRP address (virtual_ipaddress): lvs-director raises it itself on the active director, on eth0 (assumed; check `address`)",
                "/etc/keepalived/keepalived.conf:5: `include services/{x,y}.conf`: /etc/keepalived/services/x.conf not found; nothing included (keepalived ignores a missing file too)",
                "/etc/keepalived/keepalived.conf:5: `include services/{x,y}.conf`: /etc/keepalived/services/y.conf not found; nothing included (keepalived ignores a missing file too)",
            ]
        );
    }

    #[test]
    fn missing_includes_are_warnings() {
        let r = import_with("k.conf", "include nothing/*.conf\ninclude gone.conf\n", &[]).unwrap();
        assert_eq!(
            r.warnings,
            [
                "k.conf:1: `include nothing/*.conf`: no file matches; nothing included (keepalived ignores it too)",
                "k.conf:2: `include gone.conf`: gone.conf not found; nothing included (keepalived ignores a missing file too)",
            ]
        );
    }

    #[test]
    fn include_cycles_are_errors() {
        let e = import_with(
            "k.conf",
            "include a.conf\n",
            &[
                ("a.conf", "\n\ninclude b.conf\n"),
                ("b.conf", "include a.conf\n"),
            ],
        )
        .unwrap_err();
        assert_eq!(
            e,
            ImportError::Include {
                file: "b.conf".into(),
                line: 1,
                message: "include cycle: k.conf → a.conf → b.conf → a.conf".into()
            }
        );
        let e = import_with("k.conf", "include k.conf\n", &[("k.conf", "")]).unwrap_err();
        assert!(e.to_string().starts_with("k.conf:1: include cycle"), "{e}");
    }

    #[test]
    fn include_depth_is_bounded() {
        let files: Vec<(String, String)> = (0..=MAX_INCLUDE_DEPTH + 1)
            .map(|i| (format!("f{i}.conf"), format!("include f{}.conf\n", i + 1)))
            .collect();
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let e = import_with("main.conf", "include f0.conf\n", &refs).unwrap_err();
        match e {
            ImportError::Include { file, message, .. } => {
                assert_eq!(file, format!("f{}.conf", MAX_INCLUDE_DEPTH - 1));
                assert!(message.contains("nested deeper than 8"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unreadable_include_and_bad_include_lines_are_errors() {
        let mut read = |_: &str| Err(io::Error::from(io::ErrorKind::PermissionDenied));
        let mut glob = |_: &str| Vec::new();
        let e = import("k.conf", "\ninclude secret.conf\n", &mut read, &mut glob).unwrap_err();
        assert!(matches!(e, ImportError::Include { line: 2, .. }), "{e:?}");
        assert!(e.to_string().contains("cannot read secret.conf"), "{e}");
        let e = import_with("k.conf", "include\n", &[]).unwrap_err();
        assert!(e.to_string().contains("needs a file name"), "{e}");
        let e = import_with("k.conf", "include a b\n", &[]).unwrap_err();
        assert!(e.to_string().contains("takes one file name"), "{e}");
    }

    #[test]
    fn paths_and_braces() {
        assert_eq!(normalize(Path::new("a/./b/../c")), "a/c");
        assert_eq!(normalize(Path::new("../x/../../y")), "../../y");
        assert_eq!(normalize(Path::new("/etc/k/../k.conf")), "/etc/k.conf");
        assert_eq!(normalize(Path::new("")), ".");
        assert_eq!(
            expand_braces("a{b,c}d{1,2}"),
            ["abd1", "abd2", "acd1", "acd2"]
        );
        assert_eq!(
            expand_braces("{foo/{,cat,dog},bar}"),
            ["foo/", "foo/cat", "foo/dog", "bar"]
        );
        assert_eq!(expand_braces("a{b}c"), ["a{b}c"]);
        assert_eq!(expand_braces("a{b,c"), ["a{b,c"]);
        assert_eq!(
            expand_braces(&"{a,b,c,d}".repeat(40)).len(),
            MAX_BRACE_EXPANSION
        );
        assert_eq!(expand_braces(&"{".repeat(MAX_PATH_LEN + 1)).len(), 1);
        let deep = format!("{}x", "{a,b}".repeat(MAX_BRACE_GROUPS + 1));
        assert!(expand_braces(&deep).iter().all(|e| e.ends_with("{a,b}x")));
    }
}
