//! `lvs.cf` text → [`Config`], accepting every file Piranha's `lvsParseConfig()` accepts.
//!
//! Unlike Piranha, parsing does not stop at the first error: every bad line is
//! reported with its line, column and what was expected.

use std::fmt;

use super::diag::{Diagnostic, Scope, Severity, Spans};
use super::lexer::{lex, LineKind, Token};
use super::model::{self, *};
use super::value::ValueError;

/// A syntax error at a position of the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.message)
    }
}

impl ParseError {
    /// `FILE:LINE:COL: error: message`.
    pub fn display_in(&self, file: &str) -> String {
        format!("{file}:{}:{}: error: {}", self.line, self.col, self.message)
    }
}

/// A parsed file: the model, parse-time warnings, and positions for later diagnostics.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
    pub spans: Spans,
}

#[derive(Clone, Copy)]
enum Open {
    Virtual(usize),
    Failover(usize),
    Server(usize, usize),
    Floating(usize),
    LocalCheck(usize),
    Vrrp(usize),
    /// A block whose header was wrong: its body is skipped up to its `}`, so that one
    /// bad header gives one error rather than one per line of its body.
    Ignored(BlockKind),
}

impl Open {
    fn scope(self) -> Scope {
        match self {
            Open::Virtual(i) => Scope::Virtual(i),
            Open::Failover(i) => Scope::Failover(i),
            Open::Server(v, s) => Scope::Server(v, s),
            Open::Floating(i) => Scope::Floating(i),
            Open::LocalCheck(i) => Scope::LocalCheck(i),
            Open::Vrrp(i) => Scope::Vrrp(i),
            Open::Ignored(_) => Scope::Global,
        }
    }
    fn kind(self) -> BlockKind {
        match self {
            Open::Virtual(_) => BlockKind::Virtual,
            Open::Failover(_) => BlockKind::Failover,
            Open::Server(..) => BlockKind::Server,
            Open::Floating(_) => BlockKind::Floating,
            Open::LocalCheck(_) => BlockKind::LocalCheck,
            Open::Vrrp(_) => BlockKind::Vrrp,
            Open::Ignored(kind) => kind,
        }
    }
}

struct Parser {
    config: Config,
    warnings: Vec<Diagnostic>,
    errors: Vec<ParseError>,
    spans: Spans,
    /// Open blocks with the line they were opened on.
    stack: Vec<(Open, usize)>,
    pending_comments: Vec<String>,
    /// Where the comments inside an ignored block go.
    discarded: Comments,
    /// Line where each (scope, keyword) was first set, for repeated-keyword warnings.
    seen: std::collections::HashMap<(Scope, String), usize>,
}

/// Parses `lvs.cf` text.
pub fn parse(text: &str) -> Result<Parsed, Vec<ParseError>> {
    if text.is_empty() {
        return Err(vec![ParseError {
            line: 1,
            col: 1,
            message: "Empty configuration: the file is empty".into(),
        }]);
    }
    let text = super::whole::blank_ends(text).map_err(|e| vec![e])?;
    let text: &str = &text;
    let mut p = Parser {
        config: Config::default(),
        warnings: Vec::new(),
        errors: Vec::new(),
        spans: Spans::default(),
        stack: Vec::new(),
        pending_comments: Vec::new(),
        seen: Default::default(),
        discarded: Comments::default(),
    };
    let mut last_line = 1;
    for line in lex(text) {
        match line {
            Err((no, e)) => p.errors.push(ParseError {
                line: no,
                col: e.col,
                message: e.message,
            }),
            Ok(line) => {
                last_line = line.no;
                p.line(line.no, line.kind);
            }
        }
    }
    if let Some(&(open, opened)) = p.stack.last() {
        p.errors.push(ParseError {
            line: last_line,
            col: 1,
            message: format!(
                "unexpected end of file: {} {} opened on line {opened} has no closing `}}`",
                open.kind().keyword(),
                p.name_of(open)
            ),
        });
    }
    let trailing = std::mem::take(&mut p.pending_comments);
    p.config.comments.add(Comments::END, trailing);
    if p.errors.is_empty() {
        Ok(Parsed {
            config: p.config,
            warnings: p.warnings,
            spans: p.spans,
        })
    } else {
        p.errors.sort_by_key(|e| (e.line, e.col));
        Err(p.errors)
    }
}

impl Parser {
    fn name_of(&self, open: Open) -> &str {
        match open {
            Open::Virtual(i) => &self.config.virtuals[i].name,
            Open::Failover(i) => &self.config.failovers[i].name,
            Open::Server(v, s) => &self.config.virtuals[v].servers[s].name,
            Open::Floating(i) => &self.config.floating[i].name,
            Open::LocalCheck(i) => &self.config.local_checks[i].name,
            Open::Vrrp(i) => &self.config.vrrp[i].name,
            Open::Ignored(_) => "(ignored)",
        }
    }

    fn warn(&mut self, scope: Scope, keyword: &str, pos: (usize, usize), message: String) {
        self.warnings.push(Diagnostic {
            severity: Severity::Warning,
            scope,
            keyword: Some(keyword.into()),
            message,
            pos: Some(pos),
        });
    }

    fn err(&mut self, line: usize, col: usize, message: impl Into<String>) {
        self.errors.push(ParseError {
            line,
            col,
            message: message.into(),
        });
    }

    fn comments_of(&mut self, open: Option<Open>) -> &mut Comments {
        match open {
            None => &mut self.config.comments,
            Some(Open::Virtual(i)) => &mut self.config.virtuals[i].comments,
            Some(Open::Failover(i)) => &mut self.config.failovers[i].comments,
            Some(Open::Server(v, s)) => &mut self.config.virtuals[v].servers[s].comments,
            Some(Open::Floating(i)) => &mut self.config.floating[i].comments,
            Some(Open::LocalCheck(i)) => &mut self.config.local_checks[i].comments,
            Some(Open::Vrrp(i)) => &mut self.config.vrrp[i].comments,
            Some(Open::Ignored(_)) => &mut self.discarded,
        }
    }

    fn line(&mut self, no: usize, kind: LineKind) {
        match kind {
            LineKind::Blank => {}
            LineKind::Comment(c) => self.pending_comments.push(c),
            LineKind::Close(comment) => match self.stack.pop() {
                Some((open, _)) => {
                    let mut c = std::mem::take(&mut self.pending_comments);
                    c.extend(comment);
                    self.comments_of(Some(open)).add(Comments::END, c);
                }
                None => self.err(no, 1, "unexpected `}`: no block is open"),
            },
            LineKind::Statement {
                keyword,
                assign,
                args,
                comment,
            } => {
                let current = self.stack.last().map(|&(o, _)| o);
                let block = block_kind(&keyword.text);
                if let Some(Open::Ignored(_)) = current {
                    // Inside a block with a bad header: only track nesting.
                    if let (Some(kind), false) = (block, assign) {
                        if args
                            .last()
                            .is_some_and(|t| t.text.ends_with('{') && t.quote.is_none())
                        {
                            self.stack.push((Open::Ignored(kind), no));
                        }
                    }
                } else if let Some(kind) = block.filter(|_| !assign) {
                    self.open_block(no, current, kind, &keyword, args, comment);
                } else {
                    self.statement(no, current, &keyword, assign, &args, comment);
                }
            }
        }
    }

    fn open_block(
        &mut self,
        no: usize,
        current: Option<Open>,
        kind: BlockKind,
        keyword: &Token,
        mut args: Vec<Token>,
        comment: Option<String>,
    ) {
        let kw = kind.keyword();
        // `virtual www{` is read as `virtual www {`.
        if args.len() == 1 && args[0].quote.is_none() && args[0].text.len() > 1 {
            if let Some(name) = args[0].text.strip_suffix('{') {
                let col = args[0].col;
                args = vec![
                    Token::bare(name, col),
                    Token::bare("{", col + name.chars().count()),
                ];
            }
        }
        let opens = args
            .last()
            .is_some_and(|t| t.text == "{" && t.quote.is_none());
        let header_error = match args.as_slice() {
            [name, brace] if brace.text == "{" && brace.quote.is_none() => {
                model::name_problem(&name.text)
                    .map(|why| (name.col, format!("invalid {kw} name `{}`: {why}", name.text)))
            }
            [_, brace, extra, ..] if brace.text == "{" => Some((
                extra.col,
                format!("unexpected arguments after `{kw} NAME {{` (quote a name that contains spaces)"),
            )),
            [_, other, ..] => Some((
                other.col,
                format!(
                    "`{{` expected after the {kw} name, found `{}` (quote a name that contains spaces)",
                    other.text
                ),
            )),
            [_] => Some((
                keyword.col,
                format!("`{{` expected: a {kw} block is opened with `{kw} NAME {{` on one line"),
            )),
            [] => Some((keyword.col, format!("missing arguments: expected `{kw} NAME {{`"))),
        };
        if let Some((col, message)) = header_error {
            self.err(no, col, message);
            if opens {
                self.stack.push((Open::Ignored(kind), no));
            }
            return;
        }
        let name = args[0].clone();
        let c = &mut self.config;
        let open = match (kind, current) {
            (BlockKind::Virtual, None) => {
                c.virtuals.push(VirtualServer {
                    name: name.text.clone(),
                    ..Default::default()
                });
                Open::Virtual(c.virtuals.len() - 1)
            }
            (BlockKind::Failover, None) => {
                c.failovers.push(VirtualServer {
                    name: name.text.clone(),
                    ..Default::default()
                });
                Open::Failover(c.failovers.len() - 1)
            }
            (BlockKind::Floating, None) => {
                c.floating.push(FloatingAddress {
                    name: name.text.clone(),
                    ..Default::default()
                });
                Open::Floating(c.floating.len() - 1)
            }
            (BlockKind::LocalCheck, None) => {
                c.local_checks.push(LocalCheck {
                    name: name.text.clone(),
                    ..Default::default()
                });
                Open::LocalCheck(c.local_checks.len() - 1)
            }
            (BlockKind::Vrrp, None) => {
                c.vrrp.push(VrrpInstance {
                    name: name.text.clone(),
                    ..Default::default()
                });
                Open::Vrrp(c.vrrp.len() - 1)
            }
            (BlockKind::Server, Some(Open::Virtual(v))) => {
                c.virtuals[v].servers.push(RealServer {
                    name: name.text.clone(),
                    ..Default::default()
                });
                Open::Server(v, c.virtuals[v].servers.len() - 1)
            }
            (BlockKind::Server, Some(Open::Failover(_))) => {
                return self.err(
                    no,
                    keyword.col,
                    "`server` blocks are not allowed in a failover block",
                );
            }
            (BlockKind::Server, _) => {
                return self.err(
                    no,
                    keyword.col,
                    "`server` block outside a virtual server: real servers go inside `virtual NAME { … }`",
                );
            }
            (_, Some(open)) => {
                // `current` is the top of the stack, so it is there.
                let opened = self.stack.last().map_or(no, |&(_, line)| line);
                self.stack.push((Open::Ignored(kind), no));
                let msg = format!(
                    "`{kw}` block inside {} {}: is the `}}` of the block opened on line {opened} missing?",
                    open.kind().keyword(),
                    self.name_of(open)
                );
                return self.err(no, keyword.col, msg);
            }
        };
        self.stack.push((open, no));
        self.spans.record(open.scope(), None, (no, name.col));
        let mut pending = std::mem::take(&mut self.pending_comments);
        pending.extend(comment);
        self.comments_of(Some(open)).add(Comments::BLOCK, pending);
    }

    fn statement(
        &mut self,
        no: usize,
        current: Option<Open>,
        keyword: &Token,
        assign: bool,
        args: &[Token],
        comment: Option<String>,
    ) {
        let kw = keyword.text.as_str();
        let scope = current.map_or(Scope::Global, Open::scope);
        let here = match current {
            None => GLOBAL.to_string(),
            Some(o) => format!("{} {}", o.kind().keyword(), self.name_of(o)),
        };
        if !assign {
            let col = args.first().map_or(keyword.col + kw.len(), |t| t.col);
            if block_kind(kw).is_some() || known_anywhere(kw) {
                return self.err(no, col, format!("equal (=) expected after `{kw}`"));
            }
            return self.unknown(no, keyword, current, &here);
        }
        // Piranha copies the virtual port into each real server when the `server` line
        // is read, so a `port` written after the servers does not reach them. Keep that
        // meaning and say so.
        if let (Some(Open::Virtual(v)), "port") = (current, kw) {
            let old = self.config.virtuals[v].settings.port();
            let vs = &mut self.config.virtuals[v];
            let mut moved = Vec::new();
            for s in vs.servers.iter_mut().filter(|s| s.settings.port.is_none()) {
                s.settings.port = Some(old.clone());
                moved.push(s.name.clone());
            }
            if !moved.is_empty() {
                let msg = format!(
                    "virtual {}: `port` comes after server(s) {}; as in Piranha they keep port {old}. Put `port` above the server blocks",
                    vs.name,
                    moved.join(", ")
                );
                self.warn(scope, "port", (no, keyword.col), msg);
            }
        }
        let result = match current {
            None => self.config.global.set(kw, args),
            Some(Open::Virtual(i)) => {
                let v = &mut self.config.virtuals[i];
                v.settings.set(kw, args).or_else(|| v.check.set(kw, args))
            }
            Some(Open::Failover(i)) => {
                let v = &mut self.config.failovers[i];
                v.settings.set(kw, args).or_else(|| v.check.set(kw, args))
            }
            Some(Open::Server(v, s)) => {
                let s = &mut self.config.virtuals[v].servers[s];
                s.settings.set(kw, args).or_else(|| s.check.set(kw, args))
            }
            Some(Open::Floating(i)) => self.config.floating[i].settings.set(kw, args),
            Some(Open::LocalCheck(i)) => {
                let l = &mut self.config.local_checks[i];
                l.settings.set(kw, args).or_else(|| l.check.set(kw, args))
            }
            Some(Open::Vrrp(i)) => self.config.vrrp[i].settings.set(kw, args),
            Some(Open::Ignored(_)) => return,
        };
        match result {
            None => self.unknown(no, keyword, current, &here),
            Some(Err(ValueError { arg, message })) => {
                let col = args
                    .get(arg)
                    .or(args.last())
                    .map_or(keyword.col + kw.len() + 1, |t| t.col);
                self.err(no, col, format!("`{kw}`: {message}"));
            }
            Some(Ok(replaced)) => {
                let col = args.first().map_or(keyword.col, |t| t.col);
                self.spans.record(scope, Some(kw), (no, col));
                if let Some(note) = note_of(current, kw, args) {
                    self.warn(
                        scope,
                        kw,
                        (no, col),
                        format!("{}`{kw}`: {note}", prefix(&here)),
                    );
                }
                let key = (scope, kw.to_string());
                if replaced {
                    let first = self.seen.get(&key).copied().unwrap_or(no);
                    let msg = format!(
                        "{}`{kw}` is repeated (first on line {first}); the last value wins",
                        prefix(&here)
                    );
                    self.warn(scope, kw, (no, keyword.col), msg);
                } else {
                    self.seen.insert(key, no);
                }
                let mut pending = std::mem::take(&mut self.pending_comments);
                pending.extend(comment);
                self.comments_of(current).add(kw, pending);
            }
        }
    }

    fn unknown(&mut self, no: usize, keyword: &Token, current: Option<Open>, here: &str) {
        let kw = keyword.text.as_str();
        let valid = keywords_of(current.map(Open::kind));
        let mut msg = format!("unknown command `{kw}` in {here}");
        if let Some(home) = home_of(kw) {
            msg.push_str(&format!(": `{kw}` belongs in {home}"));
        } else if let Some(best) = valid
            .iter()
            .map(|k| (strsim::jaro_winkler(kw, k), *k))
            .filter(|(s, _)| *s > 0.85)
            .max_by(|a, b| a.0.total_cmp(&b.0))
        {
            msg.push_str(&format!(" (did you mean `{}`?)", best.1));
        }
        self.err(no, keyword.col, msg);
    }
}

/// `virtual www: ` before a message about a block's keyword; nothing for globals.
fn prefix(here: &str) -> String {
    if here == GLOBAL {
        String::new()
    } else {
        format!("{here}: ")
    }
}

const GLOBAL: &str = "the global section";

/// The value note of a keyword in the block it was set in.
fn note_of(current: Option<Open>, kw: &str, args: &[Token]) -> Option<String> {
    match current.map(Open::kind) {
        None => GlobalSettings::note(kw, args),
        Some(BlockKind::Virtual | BlockKind::Failover) => {
            VirtualSettings::note(kw, args).or_else(|| CheckSettings::note(kw, args))
        }
        Some(BlockKind::Server) => {
            RealServerSettings::note(kw, args).or_else(|| CheckSettings::note(kw, args))
        }
        Some(BlockKind::Floating) => FloatingSettings::note(kw, args),
        Some(BlockKind::LocalCheck) => {
            LocalCheckSettings::note(kw, args).or_else(|| CheckSettings::note(kw, args))
        }
        Some(BlockKind::Vrrp) => VrrpSettings::note(kw, args),
    }
}

fn block_kind(kw: &str) -> Option<BlockKind> {
    Some(match kw {
        "virtual" => BlockKind::Virtual,
        "failover" => BlockKind::Failover,
        "server" => BlockKind::Server,
        "floating" => BlockKind::Floating,
        "local_check" => BlockKind::LocalCheck,
        "vrrp" => BlockKind::Vrrp,
        _ => return None,
    })
}

/// Keywords valid directly inside a block (None: the global section).
pub fn keywords_of(kind: Option<BlockKind>) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = Vec::new();
    match kind {
        None => {
            v.extend(GlobalSettings::KEYWORDS);
            v.extend(["virtual", "failover", "floating", "local_check", "vrrp"]);
        }
        Some(BlockKind::Virtual | BlockKind::Failover) => {
            v.extend(VirtualSettings::KEYWORDS);
            v.extend(CheckSettings::KEYWORDS);
            v.push("server");
        }
        Some(BlockKind::Server) => {
            v.extend(RealServerSettings::KEYWORDS);
            v.extend(CheckSettings::KEYWORDS);
        }
        Some(BlockKind::Floating) => v.extend(FloatingSettings::KEYWORDS),
        Some(BlockKind::LocalCheck) => {
            v.extend(LocalCheckSettings::KEYWORDS);
            v.extend(CheckSettings::KEYWORDS);
        }
        Some(BlockKind::Vrrp) => v.extend(VrrpSettings::KEYWORDS),
    }
    v
}

fn known_anywhere(kw: &str) -> bool {
    [
        None,
        Some(BlockKind::Virtual),
        Some(BlockKind::Server),
        Some(BlockKind::Floating),
        Some(BlockKind::LocalCheck),
        Some(BlockKind::Vrrp),
    ]
    .into_iter()
    .any(|k| keywords_of(k).contains(&kw))
}

/// For a keyword used in the wrong block: where it belongs.
fn home_of(kw: &str) -> Option<&'static str> {
    if GlobalSettings::KEYWORDS.contains(&kw) {
        Some("the global section")
    } else if VirtualSettings::KEYWORDS.contains(&kw) || CheckSettings::KEYWORDS.contains(&kw) {
        Some("virtual blocks")
    } else if RealServerSettings::KEYWORDS.contains(&kw) {
        Some("server blocks")
    } else {
        None
    }
}

/// Lexes a single value text (as rendered, or typed into a form) into tokens.
pub fn value_tokens(text: &str) -> Result<Vec<Token>, ValueError> {
    if text.contains(['\n', '\r']) {
        return Err(ValueError::new(0, "line breaks are not allowed in a value"));
    }
    match super::lexer::lex_line(&format!("x = {text}")) {
        Ok(LineKind::Statement { args, comment, .. }) => {
            if comment.is_some() {
                return Err(ValueError::new(
                    args.len(),
                    "unexpected `#`: quote values that contain #",
                ));
            }
            Ok(args
                .into_iter()
                .map(|mut t| {
                    t.col = t.col.saturating_sub(4);
                    t
                })
                .collect())
        }
        Ok(_) => Err(ValueError::new(0, "missing arguments")),
        Err(e) => Err(ValueError::new(0, e.message)),
    }
}
