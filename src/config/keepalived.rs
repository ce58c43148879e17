//! `keepalived.conf` → [`Config`]: the importer for users coming from keepalived.
//!
//! Two stages:
//! - **Syntax.** keepalived's configuration language as users write it: nested `{ }`
//!   blocks (the brace on the same line or the next), several statements on one line
//!   (`real_server 10.0.0.1 80 { weight 1 }`), `#` and `!` comments anywhere outside
//!   quotes, quoted strings with C escapes, and `include` with globs and csh braces,
//!   relative to the including file. The result is a tree of statements, each with its
//!   file and line.
//! - **Mapping.** The blocks lvs-director understands (`global_defs`, `vrrp_script`,
//!   `vrrp_instance`, `vrrp_sync_group`, `virtual_server`) fill the `lvs.cf` model.
//!   Everything else — unknown blocks are skipped whole — becomes one warning naming the
//!   file, the line and the keyword, so the warnings are exactly what a keepalived user
//!   loses by switching.
//!
//! Pure: included files are read through the `read` and `glob` functions the caller
//! passes in (the CLI gives the file system, tests an in-memory map).

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

use super::lexer::Token;
use super::model::*;
use super::parse::value_tokens;
use super::value::*;

/// The result of an import.
#[derive(Debug, Clone)]
pub struct Imported {
    pub config: Config,
    /// What was not imported, or imported with a caveat, in file order:
    /// `` FILE:LINE: `keyword` not imported: reason ``.
    pub warnings: Vec<String>,
}

/// Why a file could not be imported at all. Everything short of these is a warning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// The text is not keepalived configuration (unbalanced braces, an unterminated
    /// quote, …).
    #[error("{file}:{line}:{col}: {message}")]
    Syntax {
        file: String,
        line: usize,
        col: usize,
        message: String,
    },
    /// An `include` that cannot be followed: a cycle, nesting deeper than
    /// [`MAX_INCLUDE_DEPTH`], or a file that exists but cannot be read.
    #[error("{file}:{line}: {message}")]
    Include {
        file: String,
        line: usize,
        message: String,
    },
}

/// Deepest chain of nested includes followed.
pub const MAX_INCLUDE_DEPTH: usize = 8;

/// Deepest nesting of blocks in one file. keepalived needs four levels
/// (`virtual_server` → `real_server` → `HTTP_GET` → `url`); the limit keeps hostile
/// input from building a tree deep enough to overflow the stack.
const MAX_NESTING: usize = 32;

/// keepalived's include keywords; the strict variants only differ in error checking.
const INCLUDE_WORDS: &[&str] = &[
    "include", "includer", "includem", "includew", "includeb", "includea",
];

/// Largest number of paths one `include` pattern's csh braces may expand to.
const MAX_BRACE_EXPANSION: usize = 256;

/// Linux's PATH_MAX: no longer pattern names a file, so none is brace-expanded.
const MAX_PATH_LEN: usize = 4096;

/// Imports a keepalived configuration.
///
/// `path` names the main file: it is used in messages and as the base of relative
/// includes. `read` returns the text of an included file (an error of kind `NotFound`
/// is a warning, as in keepalived; any other error fails the import). `glob` returns
/// the paths matching a wildcard pattern (`*`, `?`, `[…]`); it is called only for
/// patterns that contain one.
pub fn import(
    path: &str,
    text: &str,
    read: &mut dyn FnMut(&str) -> io::Result<String>,
    glob: &mut dyn FnMut(&str) -> Vec<String>,
) -> Result<Imported, ImportError> {
    let mut loader = Loader {
        read,
        glob,
        files: Vec::new(),
        chain: Vec::new(),
        notes: Vec::new(),
        seq: 0,
    };
    let nodes = loader.load(normalize(Path::new(path)), text)?;
    let Loader { files, notes, .. } = loader;
    let mut im = Importer {
        files,
        notes,
        cfg: Config::default(),
        vips: Vec::new(),
        tracked: Vec::new(),
        default_dev: None,
        vrids: HashMap::new(),
        fwmark_pending: Vec::new(),
        script_names: Vec::new(),
        services: HashSet::new(),
    };
    im.run(&nodes);
    let Importer {
        cfg,
        mut notes,
        files,
        ..
    } = im;
    // Each note carries the sequence number of its statement, so sorting puts them in
    // the order of the text, includes spliced in where they stand.
    notes.sort_by_key(|n| n.seq);
    let warnings = notes
        .into_iter()
        .map(|n| format!("{}:{}: {}", files[n.file], n.line, n.text))
        .collect();
    Ok(Imported {
        config: cfg,
        warnings,
    })
}

// ---------------------------------------------------------------------------------
// Syntax: tokens
// ---------------------------------------------------------------------------------

/// One word of a statement, quotes removed and escapes decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    text: String,
    /// Some part of it was quoted (so `{`, `include` or `@x` in it are plain text).
    quoted: bool,
    /// It uses a keepalived macro (`$NAME`, `${NAME}`), which is not expanded.
    macro_use: bool,
    /// Its escapes decode to bytes that are not UTF-8; `text` has U+FFFD in their place.
    invalid_utf8: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TokKind {
    Word(Term),
    Open,
    Close,
    Newline,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Tok {
    kind: TokKind,
    line: usize,
    col: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct LexError {
    line: usize,
    col: usize,
    message: String,
}

/// Splits keepalived text into words, braces and line ends (1-based line and column,
/// counted in characters).
fn tokenize(text: &str) -> Result<Vec<Tok>, LexError> {
    let chars: Vec<char> = text.chars().collect();
    let mut lx = Lexer {
        chars: &chars,
        i: 0,
        line: 1,
        col: 1,
    };
    let mut out = Vec::new();
    let mut stmt_start = true;
    // On an `include` line braces belong to the file pattern (csh `{a,b}` expansion).
    let mut include_line = false;
    while let Some(c) = lx.peek() {
        let (line, col) = (lx.line, lx.col);
        match c {
            '\n' => {
                lx.bump();
                out.push(Tok {
                    kind: TokKind::Newline,
                    line,
                    col,
                });
                stmt_start = true;
                include_line = false;
            }
            // keepalived: "Comments start with '#' or '!' to the end of the line and can
            // start anywhere in a line."
            '#' | '!' => lx.skip_line(),
            c if c.is_whitespace() => {
                lx.bump();
            }
            '{' | '}' if !include_line => {
                lx.bump();
                let kind = if c == '{' {
                    TokKind::Open
                } else {
                    TokKind::Close
                };
                out.push(Tok { kind, line, col });
                stmt_start = true;
            }
            _ => {
                let w = lx.word(include_line)?;
                if stmt_start {
                    include_line = !w.quoted && INCLUDE_WORDS.contains(&w.text.as_str());
                    stmt_start = false;
                }
                out.push(Tok {
                    kind: TokKind::Word(w),
                    line,
                    col,
                });
            }
        }
    }
    Ok(out)
}

struct Lexer<'a> {
    chars: &'a [char],
    i: usize,
    line: usize,
    col: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn peek_at(&self, k: usize) -> Option<char> {
        self.chars.get(self.i + k).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn skip_line(&mut self) {
        while self.peek().is_some_and(|c| c != '\n') {
            self.bump();
        }
    }

    /// A word: non-blank characters, where quoted parts may hold blanks
    /// (`'abcd" efg "h'` is one word, as in keepalived).
    ///
    /// keepalived works on bytes: escapes such as `\303\251` are bytes of the string,
    /// so the word is collected as bytes and read as UTF-8 at its end (invalid
    /// sequences become U+FFFD, and the word is marked for a warning).
    fn word(&mut self, braces_literal: bool) -> Result<Term, LexError> {
        let mut w = Term {
            text: String::new(),
            quoted: false,
            macro_use: false,
            invalid_utf8: false,
        };
        let mut buf: Vec<u8> = Vec::new();
        while let Some(c) = self.peek() {
            match c {
                c if c.is_whitespace() => break,
                '{' | '}' if !braces_literal => break,
                '#' | '!' => break,
                '"' | '\'' => {
                    w.quoted = true;
                    self.quoted(c, &mut w, &mut buf)?;
                }
                '$' => {
                    self.bump();
                    buf.push(b'$');
                    match self.peek() {
                        // `${NAME}` and `${_RANDOM 1 10}`: the braces are the macro's,
                        // not a block's.
                        Some('{') => {
                            w.macro_use = true;
                            while let Some(d) = self.peek() {
                                if d == '\n' {
                                    break;
                                }
                                self.bump();
                                push_char(&mut buf, d);
                                if d == '}' {
                                    break;
                                }
                            }
                        }
                        Some(d) if d.is_ascii_alphabetic() || d == '_' => w.macro_use = true,
                        _ => {}
                    }
                }
                _ => {
                    self.bump();
                    push_char(&mut buf, c);
                }
            }
        }
        w.text = match String::from_utf8(buf) {
            Ok(s) => s,
            Err(e) => {
                w.invalid_utf8 = true;
                String::from_utf8_lossy(e.as_bytes()).into_owned()
            }
        };
        Ok(w)
    }

    fn quoted(&mut self, q: char, w: &mut Term, buf: &mut Vec<u8>) -> Result<(), LexError> {
        let (line, col) = (self.line, self.col);
        self.bump();
        loop {
            match self.peek() {
                None | Some('\n') => {
                    return Err(LexError {
                        line,
                        col,
                        message: format!("unterminated quoted string: no closing {q} on this line"),
                    })
                }
                Some(c) if c == q => {
                    self.bump();
                    return Ok(());
                }
                Some('\\') if self.peek_at(1).is_some_and(|d| d != '\n') => {
                    self.bump();
                    self.escape(buf);
                }
                Some(c) => {
                    if c == '$' && self.peek_at(1) == Some('{') {
                        w.macro_use = true;
                    }
                    self.bump();
                    push_char(buf, c);
                }
            }
        }
    }

    /// Decodes the escape after a backslash into `buf`: `\a \b \E \f \n \r \t \v`,
    /// `\nnn` (octal) and `\xXX` (one byte each, as in C: `\303\251` is the UTF-8 of
    /// `é`), `\cC` (control-C); `\C` is C itself (keepalived.conf(5), "Quoted strings").
    fn escape(&mut self, buf: &mut Vec<u8>) {
        let Some(c) = self.bump() else {
            buf.push(b'\\');
            return;
        };
        let digits = |lx: &mut Self, radix: u32, max: usize, first: u32| -> u32 {
            let mut v = first;
            for _ in 0..max {
                match lx.peek().and_then(|d| d.to_digit(radix)) {
                    Some(d) => {
                        v = v * radix + d;
                        lx.bump();
                    }
                    None => break,
                }
            }
            v
        };
        let byte = match c {
            'a' => 0x07,
            'b' => 0x08,
            'E' => 0x1b,
            'f' => 0x0c,
            'n' => b'\n',
            'r' => b'\r',
            't' => b'\t',
            'v' => 0x0b,
            // Up to three digits; like a C compiler, keep the low byte of `\777`.
            '0'..='7' => (digits(self, 8, 2, c.to_digit(8).unwrap_or(0)) & 0xff) as u8,
            'x' if self.peek().is_some_and(|d| d.is_ascii_hexdigit()) => {
                (digits(self, 16, 2, 0) & 0xff) as u8
            }
            'c' => match self.peek() {
                Some(d) if d.is_ascii() && d != '\n' => {
                    self.bump();
                    d.to_ascii_uppercase() as u8 ^ 0x40
                }
                _ => b'c',
            },
            other => return push_char(buf, other),
        };
        buf.push(byte);
    }
}

fn push_char(buf: &mut Vec<u8>, c: char) {
    buf.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
}

// ---------------------------------------------------------------------------------
// Syntax: the statement tree, with includes spliced in
// ---------------------------------------------------------------------------------

/// One statement: its words and, for a block, the statements inside.
#[derive(Debug, Clone)]
struct Node {
    /// Index into the list of files read.
    file: usize,
    line: usize,
    col: usize,
    /// Order of appearance across all files (includes where they stand).
    seq: usize,
    words: Vec<Term>,
    block: Option<Vec<Node>>,
}

impl Node {
    fn kw(&self) -> &str {
        self.words.first().map_or("", |w| w.text.as_str())
    }

    fn args(&self) -> &[Term] {
        self.words.get(1..).unwrap_or(&[])
    }

    fn children(&self) -> &[Node] {
        self.block.as_deref().unwrap_or(&[])
    }

    /// The statement as written (quotes restored where needed), shortened for messages.
    fn text(&self) -> String {
        let s = self
            .words
            .iter()
            .map(|w| {
                if w.text.is_empty() || w.text.contains(char::is_whitespace) {
                    format!("\"{}\"", w.text)
                } else {
                    w.text.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
        shorten(&s)
    }

    /// How a message names the statement: the keyword of a leaf, the header of a block.
    fn head(&self) -> String {
        match self.block {
            Some(_) => format!("{} {{ … }}", self.text()),
            None => self.kw().to_string(),
        }
    }
}

fn shorten(s: &str) -> String {
    const MAX: usize = 60;
    let s: String = s.chars().filter(|c| !c.is_control()).collect();
    if s.chars().count() > MAX {
        format!("{}…", s.chars().take(MAX).collect::<String>())
    } else {
        s
    }
}

/// Words joined by blanks.
fn joined(words: &[Term]) -> String {
    words
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Words joined by blanks, shortened for messages.
fn join_words(words: &[Term]) -> String {
    shorten(&joined(words))
}

/// A warning, placed by the statement it is about.
struct Note {
    seq: usize,
    file: usize,
    line: usize,
    text: String,
}

fn note_at(notes: &mut Vec<Note>, n: &Node, text: String) {
    notes.push(Note {
        seq: n.seq,
        file: n.file,
        line: n.line,
        text,
    });
}

struct Loader<'a> {
    read: &'a mut dyn FnMut(&str) -> io::Result<String>,
    glob: &'a mut dyn FnMut(&str) -> Vec<String>,
    /// Every file read, by display name; [`Node::file`] indexes it.
    files: Vec<String>,
    /// The include chain being read, for cycle and depth checks.
    chain: Vec<String>,
    notes: Vec<Note>,
    seq: usize,
}

/// The statement list new statements go to: the innermost open block's, or the file's.
fn open_list<'s>(stack: &'s mut [Node], top: &'s mut Vec<Node>) -> &'s mut Vec<Node> {
    match stack.last_mut().and_then(|n| n.block.as_mut()) {
        Some(b) => b,
        None => top,
    }
}

impl Loader<'_> {
    fn load(&mut self, name: String, text: &str) -> Result<Vec<Node>, ImportError> {
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
fn normalize(p: &Path) -> String {
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

// ---------------------------------------------------------------------------------
// Mapping
// ---------------------------------------------------------------------------------

const NOT_VRRP: &str =
    "lvs-director does not run VRRP: the two directors exchange authenticated unicast heartbeats";
const NO_EQUIVALENT: &str = "no lvs-director equivalent";
const MAIL: &str =
    "lvs-director configures notification mail once, globally (smtp_server, smtp_to)";
const RUN_AS: &str = "commands run as the user of lvs-director's supervisor (pulse)";
const ONE_HEARTBEAT: &str =
    "lvs-director has one heartbeat for the director pair, set from the first vrrp_instance";

/// A VRRP address (`virtual_ipaddress` entry).
struct Vip<'n> {
    addr: IpAddr,
    prefix: Option<u8>,
    dev: String,
    instance: String,
    node: &'n Node,
    used: bool,
}

/// What a `vrrp_instance` contributes once all instances have been read.
#[derive(Default)]
struct Instance<'n> {
    node: Option<&'n Node>,
    name: String,
    state: Option<(bool, &'n Node)>,
    interface: Option<String>,
    priority: Option<u32>,
    advert: Option<(Secs, &'n Node)>,
    nopreempt: Option<&'n Node>,
    preempt_delay: Option<(Secs, &'n Node)>,
    src: Option<(IpAddr, &'n Node)>,
    mcast_src: Option<(IpAddr, &'n Node)>,
    peers: Vec<(IpAddr, &'n Node)>,
    vip_nodes: Vec<&'n Node>,
    tracks_links: bool,
    dont_track_primary: bool,
    /// Per-instance GARP settings, which override global_defs' in keepalived.
    garp_count: Option<(u32, &'n Node)>,
    garp_refresh: Option<(Secs, &'n Node)>,
}

impl Instance<'_> {
    /// keepalived starts an instance as MASTER only with `state MASTER`, or as the
    /// address owner (priority 255).
    fn master(&self) -> bool {
        self.state
            .map_or(self.priority == Some(255), |(master, _)| master)
    }
}

/// Health-check parameters inherited virtual_server → real_server → checker.
#[derive(Clone, Default)]
struct Params {
    delay_loop: Option<Secs>,
    connect_timeout: Option<Secs>,
    retry: Option<u32>,
    virtualhost: Option<String>,
    inhibit: Option<bool>,
}

impl Params {
    fn over(&self, base: &Params) -> Params {
        Params {
            delay_loop: self.delay_loop.or(base.delay_loop),
            connect_timeout: self.connect_timeout.or(base.connect_timeout),
            retry: self.retry.or(base.retry),
            virtualhost: self.virtualhost.clone().or(base.virtualhost.clone()),
            inhibit: self.inhibit.or(base.inhibit),
        }
    }
}

/// `lvs_method NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]`.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Method {
    fwd: Forwarding,
    tunnel_type: Option<TunnelType>,
    tunnel_port: Option<u16>,
    tunnel_csum: Option<TunnelCsum>,
}

impl Method {
    fn plain(fwd: Forwarding) -> Self {
        Method {
            fwd,
            tunnel_type: None,
            tunnel_port: None,
            tunnel_csum: None,
        }
    }
}

/// A converted real server, before its check is factored into the virtual server's.
struct Rs {
    server: RealServer,
    inhibit: bool,
    ip: IpAddr,
    port: Option<u16>,
}

struct Importer<'n> {
    files: Vec<String>,
    notes: Vec<Note>,
    cfg: Config,
    vips: Vec<Vip<'n>>,
    /// `track_script` entries: script name, weight override, where.
    tracked: Vec<(String, Option<i64>, &'n Node)>,
    /// Device for addresses whose device keepalived leaves to the system.
    default_dev: Option<String>,
    /// virtual_router_id of each instance, for `lvs_sync_daemon`'s default sync id.
    vrids: HashMap<String, u32>,
    /// fwmark virtual servers (index, header) whose address comes from a VIP.
    fwmark_pending: Vec<(usize, &'n Node)>,
    /// Names of the `vrrp_script`s read.
    script_names: Vec<String>,
    /// Services imported so far (address, port, protocol), to skip duplicates.
    services: HashSet<String>,
}

/// keepalived `<BOOL>`: on|off|true|false|yes|no.
fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Some(true),
        "off" | "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// keepalived `<TIMER>`: seconds with a fraction (µs resolution). Returns the value in
/// lvs-director's millisecond resolution and whether rounding lost something.
fn parse_timer(s: &str) -> Option<(Secs, bool)> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if (whole.is_empty() && frac.is_empty())
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let w: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let ms3: String = frac.chars().chain("000".chars()).take(3).collect();
    let rest = frac.get(3..).unwrap_or("");
    let mut ms = w.checked_mul(1000)?.checked_add(ms3.parse().ok()?)?;
    if rest.starts_with(['5', '6', '7', '8', '9']) {
        ms = ms.checked_add(1)?;
    }
    Some((Secs(ms), rest.bytes().any(|b| b != b'0')))
}

/// Longest block name the import makes, in characters (imported names stay readable
/// in lists and messages).
const MAX_NAME: usize = 64;

/// A keepalived name (of a vrrp_script, a vrrp_instance) as an `lvs.cf` block name:
/// blanks and control characters become `_`, and the name is cut to [`MAX_NAME`]
/// characters. Whatever else it holds is kept: [`name_problem`] is the one rule for
/// block names, and `fallback` is used when even the cleaned name breaks it.
fn block_name(s: &str, fallback: &str) -> String {
    let name: String = s
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .take(MAX_NAME)
        .collect();
    if name_problem(&name).is_none() {
        name
    } else {
        fallback.to_string()
    }
}

/// `base`, or `base_2`, `base_3`, … (cut to [`MAX_NAME`]): the first not `taken`.
fn unique_name(base: String, taken: &HashSet<String>) -> String {
    if !taken.contains(&base) {
        return base;
    }
    (2..)
        .map(|i| {
            let suffix = format!("_{i}");
            let keep = MAX_NAME.saturating_sub(suffix.len());
            format!("{}{suffix}", base.chars().take(keep).collect::<String>())
        })
        .find(|n| !taken.contains(n) && name_problem(n).is_none())
        .unwrap_or(base)
}

fn ip_name(ip: &IpAddr) -> String {
    ip.to_string().replace(['.', ':'], "_")
}

/// Characters that need a shell; lvs-director runs commands without one.
fn shell_syntax(cmd: &str) -> Option<char> {
    cmd.chars().find(|c| "|&;<>`$()*?~".contains(*c))
}

/// The command with the real server's address and port written as nanny's `%h` and
/// `%p`, when the address appears in it as a word.
fn with_placeholders(cmd: &str, (ip, port): (IpAddr, u16)) -> Option<String> {
    let (ip, port) = (ip.to_string(), port.to_string());
    let words: Vec<&str> = cmd.split(' ').collect();
    if !words.contains(&ip.as_str()) {
        return None;
    }
    Some(
        words
            .iter()
            .map(|&w| {
                if w == ip {
                    "%h"
                } else if w == port {
                    "%p"
                } else {
                    w
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// The address of `Name <user@host>` (mail items must be single words in `lvs.cf`).
fn mail_address(s: &str) -> &str {
    match (s.rfind('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => s[a + 1..b].trim(),
        _ => s.trim(),
    }
}

fn writable_word(s: &str) -> bool {
    Word(s.to_string()).unwritable().is_none() && !s.is_empty()
}

fn writable_item(s: &str) -> bool {
    List(vec![s.to_string()]).unwritable().is_none()
}

impl<'n> Importer<'n> {
    // ---- warnings ----

    fn note(&mut self, n: &Node, text: impl Into<String>) {
        note_at(&mut self.notes, n, text.into());
    }

    fn not_imported(&mut self, n: &Node, why: &str) {
        let head = n.head();
        self.note(n, format!("`{head}` not imported: {why}"));
    }

    /// A statement whose value cannot be used; names the value.
    fn bad_value(&mut self, n: &Node, why: &str) {
        let text = n.text();
        self.note(n, format!("`{text}` not imported: {why}"));
    }

    // ---- values ----

    /// The value of a one-value statement. Words after it are reported and dropped:
    /// keepalived's handlers read the first word and ignore the rest, so
    /// `path /status digest …` on one line checks `/status` without a digest there too.
    fn one_arg<'a>(&mut self, n: &'a Node) -> Option<&'a str> {
        if n.block.is_some() {
            self.not_imported(n, "a value was expected, not a block");
            return None;
        }
        match n.args() {
            [] => {
                self.bad_value(n, "a value is missing");
                None
            }
            [a] => Some(a.text.as_str()),
            [a, rest @ ..] => {
                let rest = join_words(rest);
                let kw = n.kw().to_string();
                self.note(
                    n,
                    format!(
                        "`{kw} {}`: `{}` after the value not imported (keepalived ignores it too)",
                        shorten(&a.text),
                        rest
                    ),
                );
                Some(a.text.as_str())
            }
        }
    }

    fn arg_u32(&mut self, n: &Node) -> Option<u32> {
        let s = self.one_arg(n)?;
        match s.parse::<u32>() {
            Ok(v) => Some(v),
            Err(_) => {
                self.bad_value(n, "a whole number expected");
                None
            }
        }
    }

    fn arg_timer(&mut self, n: &Node) -> Option<Secs> {
        let s = self.one_arg(n)?;
        self.timer(n, s)
    }

    fn timer(&mut self, n: &Node, s: &str) -> Option<Secs> {
        match parse_timer(s) {
            Some((v, rounded)) => {
                if rounded {
                    let kw = n.kw().to_string();
                    self.note(
                        n,
                        format!("`{kw} {s}`: rounded to {v} s (lvs-director has millisecond resolution)"),
                    );
                }
                Some(v)
            }
            None => {
                self.bad_value(n, "seconds expected (e.g. 3 or 0.5)");
                None
            }
        }
    }

    /// A `<BOOL>` that may be omitted (then true).
    fn arg_flag(&mut self, n: &Node) -> Option<bool> {
        match n.args() {
            [] => Some(true),
            [a] => {
                let v = parse_bool(&a.text);
                if v.is_none() {
                    self.bad_value(n, "on/off, yes/no or true/false expected");
                }
                v
            }
            _ => {
                self.bad_value(n, "one value expected");
                None
            }
        }
    }

    /// A command for `lvs.cf`: the script string, with keepalived's trailing
    /// `[username [:][groupname]]` reported as not imported.
    fn command(&mut self, n: &Node, join_all: bool) -> Option<Text> {
        let args = n.args();
        let (cmd, user) = if join_all {
            (joined(args), None)
        } else {
            (
                args.first().map(|w| w.text.clone()).unwrap_or_default(),
                args.get(1..).filter(|r| !r.is_empty()).map(join_words),
            )
        };
        let kw = n.kw().to_string();
        if cmd.trim().is_empty() {
            self.bad_value(n, "the command is missing");
            return None;
        }
        let text = Text(cmd);
        if let Some(why) = text.unwritable() {
            self.bad_value(n, &format!("the command {why}, which lvs.cf cannot hold"));
            return None;
        }
        if let Some(user) = user {
            self.note(
                n,
                format!("`{kw}`: the user `{user}` after the command not imported: {RUN_AS} (quote the command if `{user}` was meant as its arguments)"),
            );
        }
        if let Some(c) = shell_syntax(&text.0) {
            self.note(
                n,
                format!("`{kw}` uses shell syntax (`{c}`): lvs-director runs commands without a shell; put it in a script"),
            );
        }
        let program = text
            .0
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .trim_matches(['"', '\'']);
        let in_scripts = Path::new(program)
            .strip_prefix(DEFAULT_SCRIPTS_DIR)
            .is_ok_and(|rest| {
                !rest.as_os_str().is_empty()
                    && rest.components().all(|c| matches!(c, Component::Normal(_)))
            });
        if !in_scripts {
            self.note(
                n,
                format!("`{kw}`: lvs-director runs commands as root only from its scripts directory ({DEFAULT_SCRIPTS_DIR} unless `pulse --scripts-dir` names another; the folder and the program root's alone): put `{program}` there, or a script that runs it (as root), and change the path"),
            );
        }
        Some(text)
    }

    // ---- top level ----

    fn run(&mut self, nodes: &'n [Node]) {
        let mut scripts = Vec::new();
        let mut instances = Vec::new();
        let mut groups = Vec::new();
        let mut virtuals = Vec::new();
        let mut sync_daemon = None;
        for n in nodes {
            let want_block = matches!(
                n.kw(),
                "global_defs"
                    | "vrrp_script"
                    | "vrrp_instance"
                    | "vrrp_sync_group"
                    | "virtual_server"
            );
            if want_block && n.block.is_none() {
                self.not_imported(n, "a block `{ … }` was expected");
                continue;
            }
            match n.kw() {
                "global_defs" => {
                    if let Some(s) = self.global_defs(n) {
                        sync_daemon = Some(s);
                    }
                }
                "vrrp_script" => scripts.push(n),
                "vrrp_instance" => instances.push(n),
                "vrrp_sync_group" => groups.push(n),
                "virtual_server" => virtuals.push(n),
                _ => self.top_level_other(n),
            }
        }
        let instances: Vec<Instance<'n>> =
            instances.into_iter().map(|n| self.instance(n)).collect();
        for g in groups {
            self.sync_group(g);
        }
        self.ha(&instances);
        if instances.is_empty() {
            if let Some(v) = virtuals.first() {
                self.note(v, "no vrrp_instance: imported as a single director (backup_active = 0); set primary, backup and backup_active = 1 to run a director pair");
            }
        }
        for s in scripts {
            self.script(s);
        }
        self.untracked_scripts();
        for v in virtuals {
            self.virtual_server(v);
        }
        self.fwmark_addresses();
        self.forwarding();
        self.floating_addresses();
        if let Some(s) = sync_daemon {
            self.sync_daemon(s);
        }
        self.header_comment();
    }

    fn top_level_other(&mut self, n: &Node) {
        let why = match n.kw() {
            "virtual_server_group" => "virtual server groups are not supported: write one virtual_server per address and port (identical checks of the same real server are shared anyway)",
            "static_ipaddress" | "static_routes" | "static_rules" => "lvs-director does not manage static addresses, routes or rules: configure them in the operating system",
            "vrrp_track_process" | "track_process" | "vrrp_track_file" | "track_file" => "only programs can be tracked in lvs-director: write the test as a script (it becomes a local_check)",
            "bfd_instance" => "BFD is not supported",
            "linkbeat_interfaces" => "lvs-director watches links through netlink (monitor_links)",
            "SSL" => "client certificates for SSL_GET checks are not supported",
            "garp_group" => "gratuitous ARP is set globally in lvs-director (garp_count, garp_interval, garp_refresh)",
            _ => NO_EQUIVALENT,
        };
        self.not_imported(n, why);
    }

    // ---- global_defs ----

    /// Maps `global_defs`; returns the `lvs_sync_daemon` statement, resolved once the
    /// VRRP instances are known.
    fn global_defs(&mut self, n: &'n Node) -> Option<&'n Node> {
        let mut sync = None;
        for c in n.children() {
            match c.kw() {
                "notification_email" => self.emails(c),
                "notification_email_from" => {
                    if let Some(s) = self.one_arg(c) {
                        let a = mail_address(s).to_string();
                        if a != s.trim() && writable_word(&a) {
                            self.note(c, format!("`notification_email_from`: the display name not imported: smtp_from holds a bare address ({a})"));
                        }
                        if writable_word(&a) {
                            self.cfg.global.smtp_from = Some(Word(a));
                        } else {
                            self.bad_value(c, "not a mail address");
                        }
                    }
                }
                "smtp_server" => self.smtp_server(c),
                "router_id" | "lvs_id" => self.not_imported(
                    c,
                    "lvs-director tells the directors apart by their addresses (primary, backup)",
                ),
                "smtp_alert" | "smtp_alert_vrrp" | "smtp_alert_checker" | "no_email_faults"
                | "no_checker_emails" => self.not_imported(c, MAIL),
                "smtp_helo_name" | "smtp_connect_timeout" => self.not_imported(c, NO_EQUIVALENT),
                "enable_script_security" => self.not_imported(
                    c,
                    "lvs-director runs commands without a shell; make sure the imported scripts are writable only by root",
                ),
                "script_user" => self.not_imported(c, RUN_AS),
                "vrrp_garp_master_repeat" => {
                    if let Some(v) = self.arg_u32(c) {
                        self.cfg.global.garp_count = Some(v);
                    }
                }
                "vrrp_garp_master_refresh" => {
                    if let Some(v) = self.arg_timer(c) {
                        self.cfg.global.garp_refresh = Some(v);
                    }
                }
                "vrrp_garp_interval" => {
                    if let Some(v) = self.arg_timer(c) {
                        self.cfg.global.garp_interval = Some(v);
                    }
                }
                "vrrp_gna_interval" => self.not_imported(
                    c,
                    "IPv6 neighbour advertisements are spaced by garp_interval, like gratuitous ARPs",
                ),
                "vrrp_garp_master_delay"
                | "vrrp_garp_master_refresh_repeat"
                | "vrrp_garp_lower_prio_delay"
                | "vrrp_garp_lower_prio_repeat"
                | "vrrp_min_garp"
                | "vrrp_garp_extra_if" => self.not_imported(
                    c,
                    "lvs-director sends one burst of garp_count announcements on takeover, then one every garp_refresh",
                ),
                "lvs_timeouts" => self.lvs_timeouts(c),
                "lvs_sync_daemon" => sync = Some(c),
                "lvs_sync_daemon_interface" => {
                    if let Some(s) = self.one_arg(c) {
                        self.set_sync_iface(c, s.to_string());
                    }
                }
                "lvs_flush" | "lvs_flush_onstop" | "lvs_flush_on_stop" => self.not_imported(
                    c,
                    "lvs-director never flushes the IPVS table: it changes only the services it owns",
                ),
                kw if kw.starts_with("vrrp_") => self.not_imported(c, NOT_VRRP),
                _ => self.not_imported(c, NO_EQUIVALENT),
            }
        }
        let g = &mut self.cfg.global;
        if g.smtp_server.is_none() && g.smtp_to.take().is_some() {
            if let Some(at) = n.children().iter().find(|c| c.kw() == "notification_email") {
                self.not_imported(
                    at,
                    "there is no smtp_server, so keepalived sends no mail either",
                );
            }
        }
        sync
    }

    fn emails(&mut self, n: &Node) {
        let mut items = Vec::new();
        let words: Vec<(String, &Node)> = if n.block.is_some() {
            n.children()
                .iter()
                .flat_map(|c| c.words.iter().map(move |w| (w.text.clone(), c)))
                .collect()
        } else {
            n.args().iter().map(|w| (w.text.clone(), n)).collect()
        };
        for (w, at) in words {
            let a = mail_address(&w).to_string();
            if writable_item(&a) && !a.is_empty() {
                if a != w.trim() {
                    self.note(at, format!("`{}`: the display name not imported: smtp_to holds bare addresses ({a})", shorten(&w)));
                }
                items.push(a);
            } else {
                self.note(
                    at,
                    format!("`{}` not imported: not a mail address", shorten(&w)),
                );
            }
        }
        if !items.is_empty() {
            self.cfg
                .global
                .smtp_to
                .get_or_insert_with(List::default)
                .0
                .extend(items);
        }
    }

    fn smtp_server(&mut self, n: &Node) {
        let args = n.args();
        let (host, port) = match args {
            [h] => (h, None),
            [h, p] => (h, Some(p)),
            _ => return self.bad_value(n, "`smtp_server HOST [PORT]` expected"),
        };
        match parse_host(&host.text) {
            Ok(h) => self.cfg.global.smtp_server = Some(h),
            Err(_) => return self.bad_value(n, "not a host name or address"),
        }
        if let Some(p) = port {
            match p.text.parse::<u16>() {
                Ok(p) => self.cfg.global.smtp_port = Some(PortSpec::Number(p)),
                Err(_) => self.bad_value(n, "the port is not a number (port 25 is used)"),
            }
        }
    }

    fn lvs_timeouts(&mut self, n: &Node) {
        let args = n.args();
        let mut i = 0;
        while i < args.len() {
            let value = args.get(i + 1).and_then(|v| v.text.parse::<u32>().ok());
            let slot = match args[i].text.as_str() {
                "tcp" => &mut self.cfg.global.tcp_timeout,
                "tcpfin" => &mut self.cfg.global.tcpfin_timeout,
                "udp" => &mut self.cfg.global.udp_timeout,
                _ => {
                    let w = args[i].text.clone();
                    self.note(
                        n,
                        format!(
                            "`lvs_timeouts`: `{}` not imported: tcp, tcpfin or udp expected",
                            shorten(&w)
                        ),
                    );
                    i += 1;
                    continue;
                }
            };
            match value {
                Some(v) => *slot = Some(v),
                None => {
                    let w = args[i].text.clone();
                    self.note(
                        n,
                        format!("`lvs_timeouts`: `{w}` not imported: seconds expected after it"),
                    );
                }
            }
            i += 2;
        }
    }

    fn set_sync_iface(&mut self, n: &Node, iface: String) {
        if !writable_word(&iface) {
            return self.bad_value(n, "not an interface name");
        }
        if let Some(old) = &self.cfg.global.syncd_iface {
            if old.0 != iface {
                let old = old.0.clone();
                self.note(n, format!("`{}` not imported: the sync daemon already runs on {old}; lvs-director runs one", n.kw()));
                return;
            }
        }
        self.cfg.global.syncdaemon = Some(true);
        self.cfg.global.syncd_iface = Some(Word(iface));
    }

    /// `lvs_sync_daemon IF [[inst] INSTANCE] [id N] [maxlen N] [port N] [ttl N] [group IP]`.
    fn sync_daemon(&mut self, n: &Node) {
        let args = n.args();
        let Some(iface) = args.first() else {
            return self.bad_value(n, "the interface is missing");
        };
        let mut instance = None;
        let mut id = None;
        let mut dropped = Vec::new();
        let mut i = 1;
        while i < args.len() {
            let w = args[i].text.as_str();
            let next = args.get(i + 1).map(|a| a.text.as_str());
            match (w, next) {
                ("inst", Some(v)) => instance = Some(v.to_string()),
                ("id", Some(v)) => match v.parse::<u32>() {
                    Ok(v) if v <= 255 => id = Some(v),
                    _ => dropped.push(format!("id {v}")),
                },
                ("maxlen" | "port" | "ttl" | "group", Some(v)) => dropped.push(format!("{w} {v}")),
                _ => {
                    instance = Some(w.to_string());
                    i += 1;
                    continue;
                }
            }
            i += 2;
        }
        self.set_sync_iface(n, iface.text.clone());
        if let Some(inst) = &instance {
            match self.vrids.get(inst) {
                // keepalived's default sync id is the instance's virtual_router_id.
                Some(&vrid) if id.is_none() => id = Some(vrid),
                Some(_) => {}
                None => self.note(
                    n,
                    format!("`lvs_sync_daemon`: no vrrp_instance `{inst}`; the sync daemon follows the director's active/backup state anyway"),
                ),
            }
        }
        if let Some(id) = id {
            self.cfg.global.syncd_id = Some(id);
        }
        if !dropped.is_empty() {
            self.note(
                n,
                format!("`lvs_sync_daemon`: `{}` not imported: lvs-director uses the kernel's defaults for the sync daemon's packets", dropped.join(" ")),
            );
        }
    }

    // ---- VRRP ----

    fn instance(&mut self, n: &'n Node) -> Instance<'n> {
        let name = n
            .args()
            .first()
            .map_or_else(|| "VI".to_string(), |w| w.text.clone());
        let mut inst = Instance {
            node: Some(n),
            name,
            ..Default::default()
        };
        for c in n.children() {
            match c.kw() {
                "state" => match self.one_arg(c).map(str::to_ascii_uppercase).as_deref() {
                    Some("MASTER") => inst.state = Some((true, c)),
                    Some("BACKUP") => inst.state = Some((false, c)),
                    Some(_) => self.bad_value(c, "MASTER or BACKUP expected (keepalived starts it as BACKUP)"),
                    None => {}
                },
                "interface" => {
                    if let Some(s) = self.one_arg(c) {
                        if writable_word(s) {
                            inst.interface = Some(s.to_string());
                        } else {
                            self.bad_value(c, "not an interface name");
                        }
                    }
                }
                "virtual_router_id" => {
                    if let Some(v) = self.arg_u32(c) {
                        self.vrids.insert(inst.name.clone(), v);
                    }
                    self.not_imported(c, "lvs-director's directors know each other by address (primary, backup)");
                }
                "priority" => {
                    inst.priority = self.arg_u32(c);
                    self.not_imported(c, "the roles come from primary and backup");
                }
                "advert_int" => inst.advert = self.arg_timer(c).map(|v| (v, c)),
                "authentication" => self.not_imported(
                    c,
                    "lvs-director authenticates heartbeats with HMAC-SHA256 and a shared key: create one (e.g. `head -c 32 /dev/urandom > /etc/sysconfig/ha/heartbeat.key`, mode 0600, the same file on both directors) and set heartbeat_key_file",
                ),
                "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                    if c.block.is_some() {
                        inst.vip_nodes.extend(c.children());
                    } else {
                        self.not_imported(c, "a block `{ … }` was expected");
                    }
                }
                "nopreempt" => inst.nopreempt = Some(c),
                "preempt" => {}
                "preempt_delay" => inst.preempt_delay = self.arg_timer(c).map(|v| (v, c)),
                "unicast_src_ip" => match self.one_arg(c).map(str::parse::<IpAddr>) {
                    Some(Ok(ip)) => inst.src = Some((ip, c)),
                    Some(Err(_)) => self.bad_value(c, "not an IP address"),
                    None => {}
                },
                "mcast_src_ip" => match self.one_arg(c).map(str::parse::<IpAddr>) {
                    Some(Ok(ip)) => inst.mcast_src = Some((ip, c)),
                    Some(Err(_)) => self.bad_value(c, "not an IP address"),
                    None => {}
                },
                "unicast_peer" => self.peers(c, &mut inst),
                "track_interface" => {
                    inst.tracks_links = true;
                    self.note(c, "`track_interface` imported as monitor_links = 1: lvs-director watches all heartbeat and service links, not a list");
                }
                "dont_track_primary" => inst.dont_track_primary = true,
                "lvs_sync_daemon_interface" => {
                    if let Some(s) = self.one_arg(c) {
                        self.set_sync_iface(c, s.to_string());
                    }
                }
                "garp_master_repeat" => inst.garp_count = self.arg_u32(c).map(|v| (v, c)),
                "garp_master_refresh" => inst.garp_refresh = self.arg_timer(c).map(|v| (v, c)),
                "garp_master_delay" | "garp_master_refresh_repeat" | "garp_lower_prio_delay"
                | "garp_lower_prio_repeat" => self.not_imported(
                    c,
                    "lvs-director sends one burst of garp_count announcements on takeover, then one every garp_refresh",
                ),
                _ => self.vrrp_common(c),
            }
        }
        inst
    }

    /// Statements shared by `vrrp_instance` and `vrrp_sync_group`.
    fn vrrp_common(&mut self, c: &'n Node) {
        match c.kw() {
            "track_script" => self.track_script(c),
            "notify_master" => self.notify(c, |g| &mut g.active_cmd, "active_cmd"),
            "notify_backup" => self.notify(c, |g| &mut g.inactive_cmd, "inactive_cmd"),
            "notify" => {
                self.notify(c, |g| &mut g.notify_command, "notify_command");
                self.note(c, "`notify` imported as notify_command: lvs-director calls it with KIND NAME STATE, without keepalived's priority argument; check the script");
            }
            "notify_fault" => self.not_imported(
                c,
                "lvs-director has no FAULT state: a director that fails its link or local checks hands over and runs inactive_cmd",
            ),
            "notify_stop" | "notify_deleted" | "notify_master_rx_lower_pri" => {
                self.not_imported(c, "lvs-director runs only active_cmd, inactive_cmd and notify_command")
            }
            "smtp_alert" => self.not_imported(c, MAIL),
            "track_process" | "track_file" | "track_bfd" | "track_src_ip" => self.not_imported(
                c,
                "only programs can be tracked in lvs-director: write the test as a vrrp_script-style program (it becomes a local_check)",
            ),
            "virtual_routes" | "virtual_rules" | "static_routes" | "static_rules" => self.not_imported(
                c,
                "lvs-director moves addresses only: add the routes or rules in active_cmd/inactive_cmd",
            ),
            "use_vmac" | "vmac_xmit_base" | "use_ipvlan" => self.not_imported(
                c,
                "lvs-director keeps the directors' own MAC addresses and announces takeovers with gratuitous ARP",
            ),
            _ => self.not_imported(c, NOT_VRRP),
        }
    }

    fn notify(&mut self, c: &Node, slot: fn(&mut GlobalSettings) -> &mut Option<Text>, kw: &str) {
        let Some(cmd) = self.command(c, false) else {
            return;
        };
        let s = slot(&mut self.cfg.global);
        match s {
            Some(old) if *old != cmd => {
                let old = old.0.clone();
                self.note(
                    c,
                    format!("`{}` not imported: {kw} is already `{}` from an earlier vrrp_instance (all addresses fail over together in lvs-director)", c.kw(), shorten(&old)),
                );
            }
            _ => *s = Some(cmd),
        }
    }

    fn peers(&mut self, c: &'n Node, inst: &mut Instance<'n>) {
        if c.block.is_none() {
            return self.not_imported(c, "a block `{ … }` was expected");
        }
        for p in c.children() {
            match p.kw().parse::<IpAddr>() {
                Ok(ip) => {
                    if !p.args().is_empty() {
                        let rest = join_words(p.args());
                        self.note(
                            p,
                            format!("unicast peer {ip}: `{rest}` not imported: {NOT_VRRP}"),
                        );
                    }
                    inst.peers.push((ip, p));
                }
                Err(_) => self.bad_value(p, "not an IP address"),
            }
        }
    }

    fn track_script(&mut self, c: &'n Node) {
        if c.block.is_none() {
            // `track_script name` on one line is not keepalived syntax, but its meaning
            // is clear.
            for w in c.args() {
                self.tracked.push((w.text.clone(), None, c));
            }
            return;
        }
        for t in c.children() {
            let mut weight = None;
            let args = t.args();
            let mut i = 0;
            while i < args.len() {
                match (args[i].text.as_str(), args.get(i + 1)) {
                    ("weight", Some(v)) => {
                        match v.text.parse::<i64>() {
                            Ok(w) => weight = Some(w),
                            Err(_) => self.bad_value(t, "the weight is not a number"),
                        }
                        i += 2;
                    }
                    (w, _) => {
                        let w = w.to_string();
                        self.note(
                            t,
                            format!(
                                "`track_script {}`: `{w}` not imported: {NO_EQUIVALENT}",
                                t.kw()
                            ),
                        );
                        i += 1;
                    }
                }
            }
            self.tracked.push((t.kw().to_string(), weight, t));
        }
    }

    fn sync_group(&mut self, n: &'n Node) {
        self.not_imported(
            n,
            "in lvs-director all addresses fail over together, as in one sync group",
        );
        for c in n.children() {
            match c.kw() {
                "group" => {}
                "track_interface" => {
                    self.cfg.global.monitor_links = Some(1);
                    self.note(c, "`track_interface` imported as monitor_links = 1: lvs-director watches all heartbeat and service links, not a list");
                }
                "global_tracking" | "sync_group_tracking_weight" => {}
                _ => self.vrrp_common(c),
            }
        }
    }

    /// The director pair and the addresses, from the VRRP instances.
    fn ha(&mut self, instances: &[Instance<'n>]) {
        let Some(first) = instances.first() else {
            return;
        };
        let Some(first_node) = first.node else {
            return;
        };
        self.default_dev = instances.iter().find_map(|i| i.interface.clone());
        let g = &mut self.cfg.global;
        let advert = first.advert.map_or(Secs::from_secs(1), |(v, _)| v);
        let dead = Secs(advert.0.saturating_mul(3));
        g.keepalive = Some(advert);
        g.deadtime = Some(dead);
        let at = first.advert.map_or(first_node, |(_, n)| n);
        let what = if first.advert.is_some() {
            format!("`advert_int {advert}`")
        } else {
            format!("`vrrp_instance {}`", first.name)
        };
        self.note(
            at,
            format!("{what}: keepalive = {advert}; deadtime derived as 3×advert_int = {dead} s (keepalived's master-down interval without the priority skew)"),
        );
        self.roles(first, first_node);
        // keepalived clears both when the instance starts as MASTER ("will not work
        // with initial state MASTER - clearing").
        let starts_master = first.state.is_some_and(|(m, _)| m);
        let (nopreempt, preempt_delay) = if starts_master {
            for at in first
                .nopreempt
                .into_iter()
                .chain(first.preempt_delay.map(|(_, n)| n))
            {
                self.not_imported(
                    at,
                    "keepalived ignores it with `state MASTER` too (it needs state BACKUP)",
                );
            }
            (None, None)
        } else {
            (first.nopreempt, first.preempt_delay)
        };
        match (nopreempt, preempt_delay) {
            (Some(_), Some((_, pd))) => {
                self.cfg.global.preempt = Some(false);
                self.not_imported(pd, "nopreempt is set, so the delay has no effect");
            }
            (Some(_), None) => self.cfg.global.preempt = Some(false),
            (None, Some((v, _))) => self.cfg.global.preempt_delay = Some(v),
            (None, None) => {}
        }
        // keepalived puts an instance into FAULT when its interface goes down unless
        // `dont_track_primary` is set; monitor_links is lvs-director's equivalent.
        if instances
            .iter()
            .any(|i| i.tracks_links || (i.interface.is_some() && !i.dont_track_primary))
        {
            self.cfg.global.monitor_links = Some(1);
        }
        if let Some((v, _)) = first.garp_count {
            self.cfg.global.garp_count = Some(v);
        }
        if let Some((v, _)) = first.garp_refresh {
            self.cfg.global.garp_refresh = Some(v);
        }
        for inst in instances.iter().skip(1) {
            self.other_instance(first, inst);
        }
        for inst in instances {
            for v in &inst.vip_nodes {
                self.vip(v, inst);
            }
        }
    }

    fn roles(&mut self, first: &Instance<'n>, at: &Node) {
        let master = first.master();
        if let Some((false, state)) = first.state {
            self.note(state, "`state BACKUP`: this director is imported as the backup (`backup` = its address, `primary` = the peer)");
        }
        let local = first.src.or(first.mcast_src);
        for (ip, p) in first.peers.iter().skip(1) {
            let used = first.peers[0].0;
            self.note(p, format!("unicast peer {ip} not imported: lvs-director runs a pair of directors; the first peer ({used}) is used"));
        }
        let peer = first.peers.first().map(|(ip, _)| *ip);
        let (mine, theirs) = if master {
            ("primary", "backup")
        } else {
            ("backup", "primary")
        };
        let g = &mut self.cfg.global;
        let set = |g: &mut GlobalSettings, which: &str, ip: IpAddr| {
            if which == "primary" {
                g.primary = Some(Host::Ip(ip));
            } else {
                g.backup = Some(Host::Ip(ip));
            }
        };
        if let Some((ip, _)) = local {
            set(g, mine, ip);
        }
        if let Some(ip) = peer {
            set(g, theirs, ip);
        }
        match (local, peer) {
            (Some(_), Some(_)) => g.backup_active = Some(true),
            (None, Some(_)) => self.note(
                at,
                format!("`vrrp_instance {}`: no unicast_src_ip: set this director's own address as `{mine}`, then backup_active = 1", first.name),
            ),
            (_, None) => self.note(
                at,
                format!("`vrrp_instance {}`: multicast VRRP (no unicast_peer): lvs-director's heartbeat is unicast and needs the peer director's address: set `{theirs}`{}, then backup_active = 1", first.name, if local.is_none() { format!(" and `{mine}`") } else { String::new() }),
            ),
        }
    }

    fn other_instance(&mut self, first: &Instance<'n>, inst: &Instance<'n>) {
        let Some(n) = inst.node else {
            return;
        };
        let mut msg = format!(
            "`vrrp_instance {}`: a second VRRP instance: in lvs-director all addresses fail over together (one active/backup state per director pair); its addresses are imported with {}'s",
            inst.name, first.name
        );
        if inst.master() != first.master() {
            msg.push_str(&format!(
                "; it starts as {} where {} starts as {}, and that active-active split is lost",
                if inst.master() { "MASTER" } else { "BACKUP" },
                first.name,
                if first.master() { "MASTER" } else { "BACKUP" }
            ));
        }
        self.note(n, msg);
        let first_advert = first.advert.map_or(Secs::from_secs(1), |(v, _)| v);
        if let Some((v, at)) = inst.advert {
            if v != first_advert {
                self.not_imported(at, ONE_HEARTBEAT);
            }
        }
        if let Some(at) = inst.nopreempt {
            if first.nopreempt.is_none() {
                self.not_imported(at, ONE_HEARTBEAT);
            }
        }
        if let Some((v, at)) = inst.preempt_delay {
            if first.preempt_delay.map(|(f, _)| f) != Some(v) {
                self.not_imported(at, ONE_HEARTBEAT);
            }
        }
        let g = &self.cfg.global;
        let differs = [
            inst.garp_count
                .filter(|(v, _)| g.garp_count != Some(*v))
                .map(|(_, at)| at),
            inst.garp_refresh
                .filter(|(v, _)| g.garp_refresh != Some(*v))
                .map(|(_, at)| at),
        ];
        for at in differs.into_iter().flatten() {
            self.not_imported(at, ONE_HEARTBEAT);
        }
        let first_src = first.src.map(|(ip, _)| ip);
        let first_peer = first.peers.first().map(|(ip, _)| *ip);
        // Another network between the same two directors is what Piranha's private
        // addresses are: a second heartbeat path.
        let g = &mut self.cfg.global;
        let mut private = None;
        if let (Some((src, at)), Some(&(peer, _))) = (inst.src, inst.peers.first()) {
            if g.backup_active == Some(true)
                && g.primary_private.is_none()
                && first_src != Some(src)
                && first_peer != Some(peer)
                && first_src.is_some_and(|f| f.is_ipv6() == src.is_ipv6())
            {
                let (p, b) = if first.master() {
                    (src, peer)
                } else {
                    (peer, src)
                };
                g.primary_private = Some(Host::Ip(p));
                g.backup_private = Some(Host::Ip(b));
                private = Some(peer);
                self.note(at, format!("`unicast_src_ip {src}` and unicast peer {peer} of {}: imported as the second heartbeat path (primary_private = {p}, backup_private = {b})", inst.name));
            }
        }
        if let Some((ip, at)) = inst.src {
            if first_src != Some(ip) && private.is_none() {
                self.not_imported(at, ONE_HEARTBEAT);
            }
        }
        for (ip, at) in &inst.peers {
            if first_peer != Some(*ip) && private != Some(*ip) {
                self.note(
                    at,
                    format!("unicast peer {ip} not imported: {ONE_HEARTBEAT}"),
                );
            }
        }
    }

    /// One `virtual_ipaddress` entry: `IP[/PREFIX] [dev DEV] [label LABEL] [brd …] …`.
    fn vip(&mut self, n: &'n Node, inst: &Instance<'n>) {
        let first = n.kw();
        let (addr_s, prefix_s) = match first.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (first, None),
        };
        let Ok(addr) = addr_s.parse::<IpAddr>() else {
            return self.bad_value(n, "not an IP address");
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_s.map(str::parse::<u8>) {
            None => None,
            Some(Ok(p)) if p <= max => Some(p),
            Some(_) => return self.bad_value(n, "the prefix length is invalid"),
        };
        let args = n.args();
        let mut dev = None;
        let mut label = None;
        let mut dropped = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let w = args[i].text.as_str();
            let v = args.get(i + 1).map(|a| a.text.as_str());
            match (w, v) {
                ("dev", Some(v)) => dev = Some(v.to_string()),
                ("label", Some(v)) => label = Some(v.to_string()),
                (
                    "brd" | "broadcast" | "scope" | "preferred_lft" | "track_group" | "metric",
                    Some(v),
                ) => dropped.push(format!("{w} {v}")),
                _ => {
                    dropped.push(w.to_string());
                    i += 1;
                    continue;
                }
            }
            i += 2;
        }
        if !dropped.is_empty() {
            self.note(
                n,
                format!("virtual address {first}: `{}` not imported: lvs-director raises an address with its prefix and device only", shorten(&dropped.join(" "))),
            );
        }
        let base = match dev.or_else(|| inst.interface.clone()) {
            Some(d) => d,
            None => {
                self.note(n, format!("virtual address {first}: no device given and no interface in vrrp_instance {}: eth0 assumed; check `address`", inst.name));
                "eth0".to_string()
            }
        };
        let mut device = base.clone();
        if let Some(l) = label {
            // Linux labels must start with the device name; Piranha's `eth0:1` form is
            // exactly such a label.
            if l.starts_with(&format!("{base}:")) && l.len() <= 15 && writable_word(&l) {
                device = l;
            } else {
                self.note(n, format!("virtual address {first}: `label {l}` not imported: a label must be the device name, a colon and at most 15 characters in all (e.g. {base}:1)"));
            }
        }
        let ad = AddrDev {
            addr: Host::Ip(addr),
            device,
        };
        if ad.unwritable().is_some() {
            return self.bad_value(n, "the device is not an interface name");
        }
        if let Some(other) = self.vips.iter().find(|v| v.addr == addr) {
            let inst_name = other.instance.clone();
            self.note(n, format!("virtual address {first} not imported: already an address of vrrp_instance {inst_name}"));
            return;
        }
        self.vips.push(Vip {
            addr,
            prefix,
            dev: ad.device,
            instance: inst.name.clone(),
            node: n,
            used: false,
        });
    }

    // ---- vrrp_script → local_check ----

    fn script(&mut self, n: &'n Node) {
        let Some(name_w) = n.args().first() else {
            return self.not_imported(n, "the script has no name");
        };
        let raw_name = name_w.text.clone();
        let mut check = CheckSettings {
            check: Some(CheckKind::Program),
            ..Default::default()
        };
        let mut interval = Secs::from_secs(1);
        let mut timeout = None;
        let mut rise = 1;
        let mut fall = 1;
        let mut weight = None;
        for c in n.children() {
            match c.kw() {
                "script" => check.send_program = self.command(c, true),
                "interval" => {
                    if let Some(v) = self.arg_timer(c) {
                        interval = v;
                    }
                }
                "timeout" => timeout = self.arg_timer(c),
                "rise" => {
                    if let Some(v) = self.arg_u32(c) {
                        rise = v.max(1);
                    }
                }
                "fall" => {
                    if let Some(v) = self.arg_u32(c) {
                        fall = v.max(1);
                    }
                }
                "weight" => match n_weight(c) {
                    Some(w) => weight = Some((w, c)),
                    None => self.bad_value(c, "the weight is not a number"),
                },
                "user" => self.not_imported(c, RUN_AS),
                "init_fail" => self.not_imported(
                    c,
                    "a local check starts as passing, and a failure hands over after `fall` checks",
                ),
                _ => self.not_imported(c, NO_EQUIVALENT),
            }
        }
        if check.send_program.is_none() {
            return self.not_imported(n, "it has no usable `script`");
        }
        if interval.is_zero() {
            interval = Secs::from_secs(1);
        }
        check.check_interval = Some(interval);
        // keepalived: "timeout … (default = interval)".
        check.timeout = Some(timeout.filter(|t| !t.is_zero()).unwrap_or(interval));
        check.rise = Some(rise);
        check.fall = Some(fall);
        let used = self.tracked.iter().any(|(t, _, _)| *t == raw_name);
        if let Some((w, at)) = weight.filter(|(w, _)| *w != 0) {
            if used {
                self.note(at, format!("`weight {w}` not kept: in lvs-director a failing local check makes the director hand its addresses over (keepalived's weight 0); priorities are not adjusted"));
            }
        }
        let taken: HashSet<String> = self
            .cfg
            .local_checks
            .iter()
            .map(|l| l.name.clone())
            .collect();
        let name = unique_name(block_name(&raw_name, "vrrp_script"), &taken);
        if !used {
            self.note(n, format!("`vrrp_script {raw_name}`: no track_script uses it: imported as local_check {name} with active = 0"));
        }
        self.cfg.local_checks.push(LocalCheck {
            name,
            settings: LocalCheckSettings {
                active: Some(used),
                ..Default::default()
            },
            check,
            comments: Comments::default(),
        });
        self.script_names.push(raw_name);
    }

    fn untracked_scripts(&mut self) {
        let tracked = std::mem::take(&mut self.tracked);
        for (name, weight, at) in &tracked {
            if !self.script_names.contains(name) {
                self.note(
                    at,
                    format!("`track_script {name}` not imported: there is no vrrp_script {name}"),
                );
                continue;
            }
            if let Some(w) = weight.filter(|w| *w != 0) {
                self.note(at, format!("`{name} weight {w}`: weight not kept: in lvs-director a failing local check makes the director hand its addresses over; priorities are not adjusted"));
            }
        }
        self.tracked = tracked;
    }
}

/// The number of `weight N [reverse]`.
fn n_weight(c: &Node) -> Option<i64> {
    c.args().first().and_then(|w| w.text.parse().ok())
}

/// Keywords whose meaning depends on the check kind: moved to the virtual server only
/// together with `check` itself.
const KIND_SPECIFIC: &[&str] = &[
    "send",
    "expect",
    "use_regex",
    "send_program",
    "check_path",
    "check_host",
    "check_status",
    "check_regex",
];

/// Puts what the real servers' checks share on the virtual server, keyword by keyword,
/// leaving only the differences on the servers. Servers without a check (`check = none`)
/// take whatever the others share: none of it applies to them.
fn hoist_checks(vs: &mut VirtualServer) {
    let n = vs.servers.len();
    let all: Vec<usize> = (0..n).collect();
    let real: Vec<usize> = all
        .iter()
        .copied()
        .filter(|&i| vs.servers[i].check.check != Some(CheckKind::None))
        .collect();
    let same = |pool: &[usize], kw: &str, servers: &[RealServer]| -> Option<String> {
        let first = servers[*pool.first()?].check.get(kw)?;
        pool.iter()
            .all(|&i| servers[i].check.get(kw).as_ref() == Some(&first))
            .then_some(first)
    };
    // A program check needs its command beside it (`check = program` alone does not
    // validate), so with different commands the kind stays on each server too.
    let kind_shared = match same(&all, "check", &vs.servers) {
        Some(k) if k == CheckKind::Program.as_str() => {
            same(&all, "send_program", &vs.servers).is_some()
        }
        Some(_) => true,
        None => false,
    };
    for kw in CheckSettings::KEYWORDS {
        let pool: &[usize] = if *kw == "check" || KIND_SPECIFIC.contains(kw) {
            if !kind_shared {
                continue;
            }
            &all
        } else {
            &real
        };
        let Some(v) = same(pool, kw, &vs.servers) else {
            continue;
        };
        let Ok(toks) = value_tokens(&v) else {
            continue;
        };
        if let Some(Ok(_)) = vs.check.set(kw, &toks) {
            for &i in pool {
                vs.servers[i].check.unset(kw);
            }
        }
    }
}

/// Whether `a` lies in `net/prefix`.
fn in_subnet(a: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let (a, net, bits) = match (a, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (u128::from(u32::from(a)), u128::from(u32::from(n)), 32),
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
        _ => return false,
    };
    let host_bits = bits - u32::from(prefix).min(bits);
    if host_bits >= 128 {
        return true;
    }
    (a >> host_bits) == (net >> host_bits)
}

/// How a virtual server is named in keepalived.
enum VsKey {
    Ip(IpAddr, Option<u16>),
    Fwmark(u32),
}

impl<'n> Importer<'n> {
    // ---- checks: parameters shared by virtual_server, real_server and checkers ----

    fn common_param(&mut self, c: &Node, p: &mut Params) -> bool {
        match c.kw() {
            "delay_loop" => {
                if let Some(v) = self.arg_timer(c) {
                    if v.is_zero() {
                        self.bad_value(c, "it must be above 0");
                    } else {
                        p.delay_loop = Some(v);
                    }
                }
            }
            "connect_timeout" => {
                if let Some(v) = self.arg_timer(c) {
                    if v.is_zero() {
                        self.bad_value(c, "it must be above 0");
                    } else {
                        p.connect_timeout = Some(v);
                    }
                }
            }
            "retry" | "nb_get_retry" => {
                if let Some(v) = self.arg_u32(c) {
                    p.retry = Some(v);
                }
            }
            "virtualhost" => {
                if let Some(s) = self.one_arg(c) {
                    if writable_word(s) {
                        p.virtualhost = Some(s.to_string());
                    } else {
                        self.bad_value(c, "not a host name");
                    }
                }
            }
            "inhibit_on_failure" => {
                if let Some(v) = self.arg_flag(c) {
                    p.inhibit = Some(v);
                }
            }
            "delay_before_retry" => self.not_imported(
                c,
                "lvs-director retries a failed check at the next check_interval: a server is taken out after fall = retry + 1 failed checks, i.e. fall × check_interval after the first failure",
            ),
            "warmup" => self.not_imported(c, "checks start without a random delay"),
            "alpha" | "log_all_failures" | "omega" => self.not_imported(c, NO_EQUIVALENT),
            "smtp_alert" => self.not_imported(c, MAIL),
            _ => return false,
        }
        true
    }

    /// `lvs_method NAT|DR|TUN [type ipip|gue|gre] [port N] [nocsum|csum|remcsum]`.
    fn method(&mut self, c: &Node) -> Option<Method> {
        let args = c.args();
        let fwd = match args.first().map(|w| w.text.to_ascii_uppercase()).as_deref() {
            Some("NAT") => Forwarding::Nat,
            Some("DR") => Forwarding::Direct,
            Some("TUN") => Forwarding::Tunnel,
            _ => {
                self.bad_value(
                    c,
                    "NAT, DR or TUN expected (lvs-director has no other forwarding method)",
                );
                return None;
            }
        };
        let mut m = Method::plain(fwd);
        let mut dropped = Vec::new();
        let tun = fwd == Forwarding::Tunnel;
        let mut i = 1;
        while i < args.len() {
            let w = args[i].text.as_str();
            let v = args.get(i + 1).map(|a| a.text.as_str());
            match (w, v) {
                ("type", Some(t)) if tun => {
                    match TunnelType::from_word(t) {
                        Some(tt) => m.tunnel_type = Some(tt),
                        None => dropped.push(format!("type {t}")),
                    }
                    i += 2;
                }
                ("port", Some(p)) if tun => {
                    match p.parse::<u16>() {
                        Ok(p) => m.tunnel_port = Some(p),
                        Err(_) => dropped.push(format!("port {p}")),
                    }
                    i += 2;
                }
                (w, _) if tun && TunnelCsum::from_word(w).is_some() => {
                    m.tunnel_csum = TunnelCsum::from_word(w);
                    i += 1;
                }
                (w, _) => {
                    dropped.push(w.to_string());
                    i += 1;
                }
            }
        }
        if !dropped.is_empty() {
            let kw = c.kw().to_string();
            self.note(
                c,
                format!(
                    "`{kw}`: `{}` not imported: {NO_EQUIVALENT}",
                    shorten(&dropped.join(" "))
                ),
            );
        }
        Some(m)
    }

    // ---- virtual_server ----

    fn virtual_server(&mut self, n: &'n Node) {
        let key = match n.args() {
            [g, _] if g.text == "group" => {
                return self.not_imported(
                    n,
                    "virtual server groups are not supported: write one virtual_server per address and port",
                )
            }
            [f, m] if f.text == "fwmark" => match m.text.parse::<u32>() {
                Ok(v) if v > 0 => VsKey::Fwmark(v),
                _ => return self.not_imported(n, "the firewall mark must be a number above 0"),
            },
            [ip] => match ip.text.parse() {
                Ok(ip) => VsKey::Ip(ip, None),
                Err(_) => return self.not_imported(n, "not an IP address"),
            },
            [ip, port] => match (ip.text.parse(), port.text.parse::<u16>()) {
                (Ok(ip), Ok(p)) => VsKey::Ip(ip, Some(p)),
                _ => return self.not_imported(n, "`virtual_server IP PORT` expected"),
            },
            _ => return self.not_imported(n, "`virtual_server IP PORT` or `virtual_server fwmark N` expected"),
        };
        let mut params = Params::default();
        let mut method = Method::plain(Forwarding::Nat);
        let mut sched: Option<Scheduler> = None;
        let mut flags = Vec::new();
        let mut st = VirtualSettings {
            active: Some(true),
            ..Default::default()
        };
        let mut protocol = None;
        let mut sorry: Option<(IpAddr, Option<u16>, &'n Node)> = None;
        let mut reals = Vec::new();
        for c in n.children() {
            if self.common_param(c, &mut params) {
                continue;
            }
            match c.kw() {
                "lb_algo" | "lvs_sched" => {
                    if let Some(s) = self.one_arg(c) {
                        let s = Scheduler(s.to_ascii_lowercase());
                        if s.is_known() {
                            sched = Some(s);
                        } else {
                            self.bad_value(
                                c,
                                &format!("lvs-director knows the schedulers {}; wlc is used", KERNEL_SCHEDULERS.join(" ")),
                            );
                        }
                    }
                }
                "lb_kind" | "lvs_method" => {
                    if let Some(m) = self.method(c) {
                        method = m;
                    }
                }
                "flag-1" | "flag-2" | "flag-3" | "sh-port" | "sh-fallback" | "mh-port"
                | "mh-fallback" => flags.push(c),
                "ops" => st.one_packet = Some(true),
                "persistence_timeout" => {
                    // keepalived: without a value, IPVS's default of 360 s.
                    if c.args().is_empty() {
                        st.persistent = Some(360);
                    } else if let Some(v) = self.arg_u32(c) {
                        st.persistent = (v > 0).then_some(v);
                    }
                }
                "persistence_granularity" => {
                    if let Some(s) = self.one_arg(c) {
                        match Netmask::parse(&[Token::bare(s, 1)]) {
                            Ok(m) => st.pmask = Some(m),
                            Err(_) => self.bad_value(c, "not a netmask or prefix length"),
                        }
                    }
                }
                "persistence_engine" => {
                    self.not_imported(c, "persistence engines (sip) are not supported")
                }
                "protocol" => match self.one_arg(c).map(str::to_ascii_lowercase).as_deref() {
                    Some("tcp") => protocol = Some((Protocol::Tcp, c)),
                    Some("udp") => protocol = Some((Protocol::Udp, c)),
                    Some("sctp") => protocol = Some((Protocol::Sctp, c)),
                    Some(_) => self.bad_value(c, "TCP, UDP or SCTP expected"),
                    None => {}
                },
                "sorry_server" => {
                    let args = c.args();
                    let ip = args.first().and_then(|w| w.text.parse::<IpAddr>().ok());
                    let port = args.get(1).map(|w| w.text.parse::<u16>());
                    match (ip, port, args.len()) {
                        (Some(ip), None, 1) => sorry = Some((ip, None, c)),
                        (Some(ip), Some(Ok(p)), 2) => sorry = Some((ip, Some(p), c)),
                        _ => self.bad_value(c, "`sorry_server IP [PORT]` expected"),
                    }
                }
                "sorry_server_inhibit" => self.not_imported(
                    c,
                    "the sorry server is added only while no real server is healthy, and removed when one is",
                ),
                "sorry_server_lvs_method" => self.not_imported(
                    c,
                    "the sorry server uses the virtual server's forwarding method",
                ),
                "real_server" => reals.push(c),
                "quorum" | "hysteresis" => self.not_imported(
                    c,
                    "lvs-director has no quorum: the sorry server is used only when no real server is healthy",
                ),
                "quorum_up" | "quorum_down" => {
                    self.not_imported(c, "lvs-director has no quorum, so no quorum scripts")
                }
                "ha_suspend" => self.not_imported(c, NO_EQUIVALENT),
                "nat_mask" => self.not_imported(
                    c,
                    "the real servers' gateway is nat_router with nat_nmask in lvs-director",
                ),
                _ => self.not_imported(c, NO_EQUIVALENT),
            }
        }
        let protocol = match (&key, protocol) {
            // keepalived: "protocol specified for fwmark - protocol will be ignored".
            (VsKey::Fwmark(_), Some((p, at))) => {
                if p != Protocol::Tcp {
                    self.not_imported(
                        at,
                        "a fwmark service has no protocol (keepalived ignores it too)",
                    );
                }
                Protocol::Tcp
            }
            (VsKey::Fwmark(_), None) => Protocol::Tcp,
            (VsKey::Ip(..), Some((p, _))) => p,
            // keepalived: "no protocol set - defaulting to UDP" (the kernel's default).
            (VsKey::Ip(..), None) => {
                self.note(n, format!("`{}` has no `protocol`: keepalived runs it as UDP, and so does the import; add `protocol = tcp` if TCP was meant", n.text()));
                Protocol::Udp
            }
        };
        let (mut base, svc, vs_port) = match key {
            VsKey::Ip(ip, p) => {
                let p = p.unwrap_or(0);
                (
                    format!("vs_{}_{p}", ip_name(&ip)),
                    format!("{ip} {p} {protocol}"),
                    Some(p),
                )
            }
            VsKey::Fwmark(m) => (format!("fwmark_{m}"), format!("fwmark {m}"), None),
        };
        if !self.services.insert(svc) {
            return self.not_imported(n, "the same service is already imported above");
        }
        if protocol != Protocol::Tcp {
            base.push_str(&format!("_{protocol}"));
        }
        if let Some(p) = vs_port {
            st.port = Some(PortSpec::Number(p));
            // keepalived: "zero port only valid for persistent services - setting".
            if p == 0 && st.persistent.is_none() {
                st.persistent = Some(360);
                self.note(n, format!("`{}` has no port: persistent = 360, as keepalived makes an all-ports service persistent", n.text()));
            }
        }
        if protocol != Protocol::Tcp {
            st.protocol = Some(protocol);
        }
        let sched_name = sched.as_ref().map_or("wlc", |s| s.0.as_str()).to_string();
        for f in flags {
            match (f.kw(), sched_name.as_str()) {
                ("sh-port", "sh") | ("mh-port", "mh") | ("flag-2", "sh" | "mh") => {
                    st.sched_port = Some(true)
                }
                ("sh-fallback", "sh") | ("mh-fallback", "mh") | ("flag-1", "sh" | "mh") => {
                    st.sched_fallback = Some(true)
                }
                _ => self.not_imported(
                    f,
                    &format!("the {sched_name} scheduler has no such flag in lvs-director"),
                ),
            }
        }
        st.scheduler = sched;
        st.forwarding = Some(method.fwd);

        let vip_family = match key {
            VsKey::Ip(ip, _) => Some(ip.is_ipv6()),
            VsKey::Fwmark(_) => None,
        };
        let mut servers: Vec<Rs> = Vec::new();
        let mut dests = HashSet::new();
        let mut per_ip: HashMap<IpAddr, usize> = HashMap::new();
        for r in reals {
            let Some(rs) = self.real_server(r, &params, protocol, vs_port, method) else {
                continue;
            };
            let fwd = rs.server.settings.forwarding.unwrap_or(method.fwd);
            let family = vip_family.or(servers.first().map(|s| s.ip.is_ipv6()));
            if family.is_some_and(|six| six != rs.ip.is_ipv6()) && fwd != Forwarding::Tunnel {
                self.not_imported(
                    r,
                    "its address family differs from the virtual server's, which only TUN forwarding allows",
                );
                continue;
            }
            if !dests.insert((rs.ip, rs.port.or(vs_port))) {
                self.not_imported(
                    r,
                    "the same address and port is already a real server of this virtual_server",
                );
                continue;
            }
            *per_ip.entry(rs.ip).or_default() += 1;
            servers.push(rs);
        }
        let mut taken = HashSet::new();
        for rs in &mut servers {
            // Named after the address; the port joins it when one host serves twice.
            let base = if per_ip.get(&rs.ip).is_some_and(|&n| n > 1) {
                let port = rs.port.or(vs_port).unwrap_or(0);
                format!("rs_{}_{port}", ip_name(&rs.ip))
            } else {
                format!("rs_{}", ip_name(&rs.ip))
            };
            let name = unique_name(base, &taken);
            taken.insert(name.clone());
            rs.server.name = name;
        }
        let inhibited = servers.iter().filter(|s| s.inhibit).count();
        if inhibited > 0 {
            st.quiesce_server = Some(true);
            if inhibited < servers.len() {
                self.note(n, format!("`{}`: inhibit_on_failure is set on some real servers only; quiesce_server = 1 applies to all of them", n.text()));
            }
        }
        if let Some((ip, port, at)) = sorry {
            st.sorry_server = Some(ip);
            if let Some(p) = port.filter(|&p| Some(p) != vs_port && p != 0) {
                let to = vs_port.map_or("the client's port".to_string(), |v| format!("port {v}"));
                self.note(
                    at,
                    format!("`sorry_server {ip} {p}`: the port is not kept: lvs-director sends the sorry server's traffic to {to}"),
                );
            }
        }
        let taken: HashSet<String> = self.cfg.virtuals.iter().map(|v| v.name.clone()).collect();
        let mut vs = VirtualServer {
            name: unique_name(base, &taken),
            settings: st,
            check: CheckSettings::default(),
            servers: servers.into_iter().map(|r| r.server).collect(),
            comments: Comments::default(),
        };
        hoist_checks(&mut vs);
        match key {
            VsKey::Ip(ip, _) => self.vs_address(&mut vs.settings, ip, n),
            VsKey::Fwmark(m) => {
                vs.settings.fwmark = Some(m);
                self.fwmark_pending.push((self.cfg.virtuals.len(), n));
            }
        }
        self.cfg.virtuals.push(vs);
    }

    fn vs_address(&mut self, st: &mut VirtualSettings, ip: IpAddr, n: &Node) {
        if let Some(v) = self.vips.iter_mut().find(|v| v.addr == ip) {
            v.used = true;
            st.address = Some(AddrDev {
                addr: Host::Ip(ip),
                device: v.dev.clone(),
            });
            st.vip_nmask = v.prefix.map(Netmask);
            return;
        }
        let dev = self.default_dev.clone().unwrap_or_else(|| "eth0".into());
        self.note(
            n,
            format!("`{}`: {ip} is not a VRRP address (virtual_ipaddress): lvs-director raises it itself on the active director, on {dev} (assumed; check `address`)", n.text()),
        );
        st.address = Some(AddrDev {
            addr: Host::Ip(ip),
            device: dev,
        });
    }

    fn real_server(
        &mut self,
        n: &'n Node,
        vs_params: &Params,
        proto: Protocol,
        vs_port: Option<u16>,
        vs_method: Method,
    ) -> Option<Rs> {
        let (ip, port) = match n.args() {
            [ip] => (ip, None),
            [ip, port] => match port.text.parse::<u16>() {
                Ok(p) => (ip, Some(p)),
                Err(_) => {
                    self.bad_value(n, "the port is not a number");
                    return None;
                }
            },
            _ => {
                self.bad_value(n, "`real_server IP [PORT]` expected");
                return None;
            }
        };
        let Ok(ip) = ip.text.parse::<IpAddr>() else {
            self.bad_value(n, "not an IP address");
            return None;
        };
        let mut settings = RealServerSettings {
            address: Some(Host::Ip(ip)),
            active: Some(true),
            ..Default::default()
        };
        // A port equal to the virtual server's is inherited, as in Piranha; a fwmark
        // service has no port, and keepalived's 0 keeps the client's destination port.
        settings.port = match (port, vs_port) {
            (Some(p), Some(v)) if p == v => None,
            (Some(p), _) => Some(PortSpec::Number(p)),
            (None, Some(_)) => None,
            (None, None) => Some(PortSpec::Number(0)),
        };
        let mut params = Params::default();
        let mut method = None;
        let mut checkers = Vec::new();
        for c in n.children() {
            if self.common_param(c, &mut params) {
                continue;
            }
            match c.kw() {
                "weight" => {
                    if let Some(w) = self.arg_u32(c) {
                        let max = super::validate::MAX_WEIGHT;
                        if w > max {
                            self.note(c, format!("`weight {w}`: lowered to {max}, the largest IPVS weight lvs-director allows"));
                        }
                        settings.weight = Some(w.min(max));
                    }
                }
                "lvs_method" | "lb_kind" => method = self.method(c),
                "notify_up" | "notify_down" => {
                    self.not_imported(c, "lvs-director has no per-real-server scripts")
                }
                "uthreshold" => settings.uthreshold = self.arg_u32(c),
                "lthreshold" => settings.lthreshold = self.arg_u32(c),
                "HTTP_GET" | "SSL_GET" | "TCP_CHECK" | "MISC_CHECK" | "UDP_CHECK"
                | "PING_CHECK" | "DNS_CHECK" | "SMTP_CHECK" | "BFD_CHECK" | "FILE_CHECK" => {
                    checkers.push(c)
                }
                _ => self.not_imported(c, NO_EQUIVALENT),
            }
        }
        let m = method.unwrap_or(vs_method);
        if m.fwd != vs_method.fwd {
            settings.forwarding = Some(m.fwd);
        }
        if m.fwd == Forwarding::Tunnel {
            settings.tunnel_type = m.tunnel_type;
            settings.tunnel_port = m.tunnel_port;
            settings.tunnel_csum = m.tunnel_csum;
        }
        let eff = params.over(vs_params);
        let check = match checkers.split_first() {
            Some((first, rest)) => {
                for r in rest {
                    self.not_imported(
                        r,
                        &format!("lvs-director runs one health check per real server; the first one ({}, line {}) is used, where keepalived required all to pass", first.kw(), first.line),
                    );
                }
                self.checker(first, &eff, proto, (ip, port.or(vs_port).unwrap_or(0)))
            }
            None => CheckSettings {
                check: Some(CheckKind::None),
                ..Default::default()
            },
        };
        let eff_port = port.or(vs_port).unwrap_or(0);
        let needs_port = matches!(
            check.check,
            Some(CheckKind::Tcp | CheckKind::Udp | CheckKind::Http | CheckKind::Https)
        );
        if eff_port == 0 && needs_port && check.check_port.is_none() {
            self.note(
                n,
                format!("`real_server {ip}` has no port (IPVS keeps the client's destination port): set check_port, or its check connects to port 0"),
            );
        }
        Some(Rs {
            server: RealServer {
                name: String::new(),
                settings,
                check,
                comments: Comments::default(),
            },
            inhibit: eff.inhibit.unwrap_or(false),
            ip,
            port,
        })
    }

    // ---- health checkers ----

    /// One checker of the real server at `target` (address, port).
    fn checker(
        &mut self,
        c: &'n Node,
        inherited: &Params,
        proto: Protocol,
        target: (IpAddr, u16),
    ) -> CheckSettings {
        let kind = c.kw();
        let http = matches!(kind, "HTTP_GET" | "SSL_GET");
        let mut p = Params::default();
        let mut cs = CheckSettings::default();
        let mut urls = Vec::new();
        let mut misc_timeout = None;
        let mut sni = None;
        for o in c.children() {
            if self.common_param(o, &mut p) {
                continue;
            }
            match (kind, o.kw()) {
                (_, "connect_port") => {
                    if let Some(v) = self.arg_u32(o) {
                        match u16::try_from(v) {
                            Ok(v) => cs.check_port = Some(PortSpec::Number(v)),
                            Err(_) => self.bad_value(o, "not a port number"),
                        }
                    }
                }
                (_, "connect_ip") => {
                    self.not_imported(o, "checks connect to the real server's own address")
                }
                (_, "bindto" | "bind_if" | "bind_port") => self.not_imported(
                    o,
                    "checks connect from the address and port the kernel chooses",
                ),
                (_, "fwmark") => self.not_imported(o, "check packets are not marked"),
                ("HTTP_GET" | "SSL_GET", "url") => urls.push(o),
                ("HTTP_GET" | "SSL_GET", "fast_recovery") => {
                    self.not_imported(o, "lvs-director checks one URL per real server")
                }
                ("HTTP_GET" | "SSL_GET", "enable_sni") => sni = sni.or(Some((None, o))),
                ("HTTP_GET" | "SSL_GET", "sni_name") => {
                    if let Some(s) = self.one_arg(o) {
                        sni = Some((Some(s.to_string()), o));
                    }
                }
                ("MISC_CHECK", "misc_path") => {
                    cs.send_program = self.command(o, true);
                    if let Some(cmd) = &cs.send_program {
                        let hint = match with_placeholders(&cmd.0, target) {
                            Some(h) => format!(", e.g. `{}`", shorten(&h)),
                            None => String::new(),
                        };
                        self.note(o, format!("`misc_path` kept as written: lvs-director replaces %h and %p by the real server's address and port{hint}, so that one check serves all servers"));
                    }
                }
                ("MISC_CHECK", "misc_timeout") => misc_timeout = self.arg_timer(o),
                ("MISC_CHECK", "misc_dynamic") => self.not_imported(
                    o,
                    "a check program cannot set the weight: any exit status but 0 is a failure",
                ),
                ("MISC_CHECK", "user") => self.not_imported(o, RUN_AS),
                (
                    "UDP_CHECK",
                    "payload" | "require_reply" | "min_reply_length" | "max_reply_length",
                ) => self.not_imported(
                    o,
                    "lvs-director's UDP check has no payload or reply options",
                ),
                ("DNS_CHECK" | "SMTP_CHECK" | "BFD_CHECK" | "FILE_CHECK", _) => {}
                _ => self.not_imported(o, NO_EQUIVALENT),
            }
        }
        let eff = p.over(inherited);
        // keepalived's retry defaults (keepalived.conf(5)).
        let default_retry = match kind {
            "MISC_CHECK" => 0,
            "DNS_CHECK" => 3,
            _ => 1,
        };
        let interval = eff.delay_loop.unwrap_or(Secs::from_secs(60));
        let connect_timeout = eff.connect_timeout.unwrap_or(Secs::from_secs(5));
        // keepalived takes a server out when a check fails and its `retry` retries fail
        // too (check_tcp.c: down once `retry_it >= retry`), i.e. after retry + 1
        // consecutive failures, and puts it back after one success. Hence
        // fall = retry + 1 and rise = 1 (lvs-director's own default rise is Piranha's
        // reentry / interval).
        cs.fall = Some(eff.retry.unwrap_or(default_retry).saturating_add(1));
        cs.rise = Some(1);
        cs.check_interval = Some(interval);
        cs.timeout = Some(connect_timeout);
        match kind {
            "TCP_CHECK" => cs.check = Some(CheckKind::Tcp),
            "UDP_CHECK" => cs.check = Some(CheckKind::Udp),
            "PING_CHECK" => {
                cs.check = Some(CheckKind::Ping);
                cs.check_port = None;
            }
            "MISC_CHECK" => {
                // keepalived's misc_timeout defaults to delay_loop.
                cs.timeout = Some(misc_timeout.filter(|t| !t.is_zero()).unwrap_or(interval));
                cs.check_port = None;
                if cs.send_program.is_some() {
                    cs.check = Some(CheckKind::Program);
                } else {
                    self.substitute_check(c, &mut cs, proto, "it has no usable misc_path");
                }
            }
            _ if http => self.http_check(c, &mut cs, &urls, eff.virtualhost, sni, proto),
            other => {
                let what = match other {
                    "DNS_CHECK" => "DNS",
                    "SMTP_CHECK" => "SMTP",
                    "BFD_CHECK" => "BFD",
                    _ => "file",
                };
                let why = format!("lvs-director has no {what} check");
                self.substitute_check(c, &mut cs, proto, &why);
            }
        }
        cs
    }

    /// Stands in for a checker lvs-director cannot run (`why` says which), with a
    /// warning: a TCP connect to the server's port on a TCP service. A UDP or SCTP
    /// service gets no TCP check — a TCP connect does not test it — but an ICMP echo
    /// (`check = ping`), which at least finds a dead host.
    fn substitute_check(&mut self, c: &Node, cs: &mut CheckSettings, proto: Protocol, why: &str) {
        let instead = match proto {
            Protocol::Tcp => {
                cs.check = Some(CheckKind::Tcp);
                "a TCP connect to the server's port is used instead"
            }
            Protocol::Udp => {
                cs.check = Some(CheckKind::Ping);
                cs.check_port = None;
                "check = ping is used instead: an ICMP echo detects a dead host, where a bare UDP probe without send/expect would not; to test the service itself, set send and expect (check = udp) with a request it answers"
            }
            Protocol::Sctp => {
                cs.check = Some(CheckKind::Ping);
                cs.check_port = None;
                "check = ping is used instead: an ICMP echo detects a dead host; lvs-director has no SCTP check, and a TCP connect would not reach the service"
            }
        };
        self.not_imported(c, &format!("{why}; {instead}"));
    }

    fn http_check(
        &mut self,
        c: &Node,
        cs: &mut CheckSettings,
        urls: &[&'n Node],
        mut host: Option<String>,
        sni: Option<(Option<String>, &Node)>,
        proto: Protocol,
    ) {
        let https = c.kw() == "SSL_GET";
        if proto != Protocol::Tcp {
            let why = match proto {
                Protocol::Sctp => "an HTTP check cannot test an SCTP service",
                _ => "an HTTP check cannot test a UDP service",
            };
            return self.substitute_check(c, cs, proto, why);
        }
        cs.check = Some(if https {
            CheckKind::Https
        } else {
            CheckKind::Http
        });
        for extra in urls.iter().skip(1) {
            self.not_imported(
                extra,
                "lvs-director checks one URL per real server; the first `url` is used",
            );
        }
        let mut regex_flags = String::new();
        let mut regex: Option<(String, &Node)> = None;
        if let Some(u) = urls.first() {
            for o in u.children() {
                match o.kw() {
                    "path" => {
                        if let Some(s) = self.one_arg(o) {
                            let path = if s.starts_with('/') {
                                s.to_string()
                            } else {
                                format!("/{s}")
                            };
                            let t = Text(path);
                            if t.unwritable().is_some() {
                                self.bad_value(o, "lvs.cf cannot hold this path");
                            } else {
                                cs.check_path = Some(t);
                            }
                        }
                    }
                    "digest" => self.not_imported(
                        o,
                        "lvs-director does not compare MD5 digests of the page: match its content with check_regex instead",
                    ),
                    "status_code" => self.status_codes(o, cs),
                    "virtualhost" => {
                        if let Some(s) = self.one_arg(o) {
                            if writable_word(s) {
                                host = Some(s.to_string());
                            } else {
                                self.bad_value(o, "not a host name");
                            }
                        }
                    }
                    "regex" => {
                        if let Some(s) = self.one_arg(o) {
                            regex = Some((s.to_string(), o));
                        }
                    }
                    "regex_options" => {
                        let mut dropped = Vec::new();
                        for w in o.args() {
                            match w.text.as_str() {
                                "caseless" => regex_flags.push('i'),
                                "multiline" => regex_flags.push('m'),
                                "dotall" => regex_flags.push('s'),
                                "extended" => regex_flags.push('x'),
                                "ungreedy" => regex_flags.push('U'),
                                other => dropped.push(other.to_string()),
                            }
                        }
                        if !dropped.is_empty() {
                            self.note(o, format!("`regex_options`: `{}` not imported: {NO_EQUIVALENT}", shorten(&dropped.join(" "))));
                        }
                    }
                    "regex_no_match" => self.not_imported(o, "check_regex must match; the test cannot be inverted"),
                    "regex_stack" | "regex_min_offset" | "regex_max_offset" => {
                        self.not_imported(o, "the whole body is searched")
                    }
                    _ => self.not_imported(o, NO_EQUIVALENT),
                }
            }
        }
        if let Some((pattern, at)) = regex {
            let full = if regex_flags.is_empty() {
                pattern
            } else {
                format!("(?{regex_flags}){pattern}")
            };
            let t = Text(full);
            if let Err(e) = regex::Regex::new(&t.0) {
                let why = e.to_string();
                let why = why.lines().last().unwrap_or("").trim().to_string();
                self.bad_value(at, &format!("lvs-director's regular expressions (Rust regex syntax) cannot read it: {why}"));
            } else if t.unwritable().is_some() {
                self.bad_value(at, "lvs.cf cannot hold this expression");
            } else {
                cs.check_regex = Some(t);
            }
        }
        if let Some((name, at)) = sni {
            match (name, &host) {
                (None, Some(_)) => {}
                (None, None) => self.not_imported(
                    at,
                    "lvs-director sends check_host as the TLS server name: set check_host",
                ),
                (Some(n), Some(h)) if n == *h => {}
                (Some(n), _) => self.not_imported(
                    at,
                    &format!(
                        "lvs-director sends check_host{} as the TLS server name, not {n}",
                        host.as_ref().map_or(String::new(), |h| format!(" ({h})"))
                    ),
                ),
            }
        }
        cs.check_host = host.map(Word);
    }

    fn status_codes(&mut self, o: &Node, cs: &mut CheckSettings) {
        let joined = o
            .args()
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(",");
        match StatusSet::parse(&[Token::bare(joined, 1)]) {
            Ok(s) => cs.check_status = Some(s),
            Err(_) => self.bad_value(o, "status codes such as 200 or 200-299 expected"),
        }
    }

    // ---- after all virtual servers ----

    /// A fwmark service has no address in keepalived; lvs-director needs the address to
    /// raise. Take the VRRP address it can only be.
    fn fwmark_addresses(&mut self) {
        let pending = std::mem::take(&mut self.fwmark_pending);
        for (i, n) in pending {
            let Some(vs) = self.cfg.virtuals.get(i) else {
                continue;
            };
            let mark = vs.settings.fwmark();
            let six = vs
                .servers
                .iter()
                .find_map(|s| s.settings.address.as_ref()?.ip())
                .map(|ip| ip.is_ipv6());
            let family = |v: &Vip| six.is_none_or(|six| v.addr.is_ipv6() == six);
            let unused: Vec<usize> = (0..self.vips.len())
                .filter(|&j| !self.vips[j].used && family(&self.vips[j]))
                .collect();
            let (cands, why) = if unused.is_empty() {
                (
                    (0..self.vips.len())
                        .filter(|&j| family(&self.vips[j]))
                        .collect::<Vec<_>>(),
                    "the only VRRP address",
                )
            } else {
                (unused, "the only VRRP address no other virtual_server uses")
            };
            if let [j] = cands[..] {
                let v = &mut self.vips[j];
                v.used = true;
                let (addr, dev, prefix) = (v.addr, v.dev.clone(), v.prefix);
                let st = &mut self.cfg.virtuals[i].settings;
                st.address = Some(AddrDev {
                    addr: Host::Ip(addr),
                    device: dev.clone(),
                });
                st.vip_nmask = prefix.map(Netmask);
                self.note(
                    n,
                    format!("`virtual_server fwmark {mark}`: address = {addr} {dev}, {why}; check that it is the address whose traffic is marked {mark}"),
                );
            } else {
                self.cfg.virtuals[i].settings.active = Some(false);
                let which = if cands.is_empty() {
                    "no VRRP address fits"
                } else {
                    "several VRRP addresses could be it"
                };
                self.note(
                    n,
                    format!("`virtual_server fwmark {mark}`: imported with active = 0: set `address` (the address whose traffic is marked {mark}; {which}) before activating it"),
                );
            }
        }
    }

    /// The most common forwarding method becomes the global `network`; virtual servers
    /// keep their own only when it differs.
    fn forwarding(&mut self) {
        let mut counts: Vec<(Forwarding, usize)> = Vec::new();
        for v in &self.cfg.virtuals {
            let f = v.settings.forwarding.unwrap_or(Forwarding::Nat);
            match counts.iter_mut().find(|(g, _)| *g == f) {
                Some((_, n)) => *n += 1,
                None => counts.push((f, 1)),
            }
        }
        let mut best: Option<(Forwarding, usize)> = None;
        for &(f, n) in &counts {
            if best.is_none_or(|(_, b)| n > b) {
                best = Some((f, n));
            }
        }
        let Some((network, _)) = best else {
            return;
        };
        self.cfg.global.network = Some(network);
        for v in &mut self.cfg.virtuals {
            if v.settings.forwarding == Some(network) {
                v.settings.forwarding = None;
            }
        }
    }

    /// VRRP addresses no virtual server uses: the NAT real servers' gateway becomes
    /// `nat_router`, the others `floating` addresses.
    fn floating_addresses(&mut self) {
        let network = self.cfg.global.network();
        let nat_reals: Vec<IpAddr> = self
            .cfg
            .virtuals
            .iter()
            .flat_map(|v| {
                let vf = v.settings.forwarding.unwrap_or(network);
                v.servers.iter().filter_map(move |s| {
                    (s.settings.forwarding.unwrap_or(vf) == Forwarding::Nat)
                        .then(|| s.settings.address.as_ref()?.ip())
                        .flatten()
                })
            })
            .collect();
        let vips = std::mem::take(&mut self.vips);
        let mut per_instance: HashMap<&str, usize> = HashMap::new();
        for v in vips.iter().filter(|v| !v.used) {
            let max = if v.addr.is_ipv4() { 32 } else { 128 };
            let gateway = self.cfg.global.nat_router.is_none()
                && v.prefix
                    .is_some_and(|p| p < max && nat_reals.iter().any(|&r| in_subnet(r, v.addr, p)));
            if gateway {
                self.cfg.global.nat_router = Some(AddrDev {
                    addr: Host::Ip(v.addr),
                    device: v.dev.clone(),
                });
                self.cfg.global.nat_nmask = v.prefix.map(Netmask);
                let at = v.node;
                self.note(
                    at,
                    format!(
                        "virtual address {}: imported as nat_router, the NAT real servers' gateway",
                        v.addr
                    ),
                );
                continue;
            }
            let k = per_instance.entry(v.instance.as_str()).or_default();
            *k += 1;
            let base = block_name(&v.instance, "vip");
            let base = if *k == 1 { base } else { format!("{base}_{k}") };
            let taken: HashSet<String> = self.cfg.floating.iter().map(|f| f.name.clone()).collect();
            self.cfg.floating.push(FloatingAddress {
                name: unique_name(base, &taken),
                settings: FloatingSettings {
                    active: Some(true),
                    address: Some(AddrDev {
                        addr: Host::Ip(v.addr),
                        device: v.dev.clone(),
                    }),
                    vip_nmask: v.prefix.map(Netmask),
                },
                comments: Comments::default(),
            });
        }
        self.vips = vips;
    }

    /// Says where the file came from, above the first line `lvs.cf` will have.
    fn header_comment(&mut self) {
        let main = self
            .files
            .first()
            .and_then(|f| Path::new(f).file_name())
            .map_or_else(
                || "keepalived.conf".to_string(),
                |f| f.to_string_lossy().into_owned(),
            );
        let line = vec![format!(
            " Imported from {} by lvs-director: read the import warnings before applying.",
            shorten(&main)
        )];
        let c = &mut self.cfg;
        if let Some((kw, _)) = c.global.entries().first() {
            c.comments.add(kw, line);
        } else if let Some(f) = c.floating.first_mut() {
            f.comments.add(Comments::BLOCK, line);
        } else if let Some(l) = c.local_checks.first_mut() {
            l.comments.add(Comments::BLOCK, line);
        } else if let Some(v) = c.virtuals.first_mut() {
            v.comments.add(Comments::BLOCK, line);
        } else {
            c.comments.add(Comments::END, line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, render, validate};
    use proptest::prelude::*;

    /// Shell-style wildcard match (`*`, `?`) for the in-memory glob.
    fn wild(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => wild(&p[1..], s) || (!s.is_empty() && wild(p, &s[1..])),
            (Some(b'?'), Some(_)) => wild(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => wild(&p[1..], &s[1..]),
            _ => false,
        }
    }

    fn import_with(
        main: &str,
        text: &str,
        files: &[(&str, &str)],
    ) -> Result<Imported, ImportError> {
        let map: HashMap<String, String> = files
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let keys: Vec<String> = map.keys().cloned().collect();
        let mut read = |p: &str| {
            map.get(p)
                .cloned()
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        };
        let mut glob = |pat: &str| {
            keys.iter()
                .filter(|k| wild(pat.as_bytes(), k.as_bytes()))
                .cloned()
                .collect::<Vec<_>>()
        };
        import(main, text, &mut read, &mut glob)
    }

    fn imp(text: &str) -> Imported {
        import_with("keepalived.conf", text, &[]).unwrap_or_else(|e| panic!("{e}"))
    }

    fn words(text: &str) -> Vec<String> {
        tokenize(text)
            .unwrap()
            .into_iter()
            .map(|t| match t.kind {
                TokKind::Word(w) => w.text,
                TokKind::Open => "{".into(),
                TokKind::Close => "}".into(),
                TokKind::Newline => "\\n".into(),
            })
            .collect()
    }

    fn has(warnings: &[String], needle: &str) -> bool {
        warnings.iter().any(|w| w.contains(needle))
    }

    /// Imported commands must end up in the scripts directory: every one elsewhere is
    /// said to need moving, and shell syntax is not pointed at a shell any more.
    #[test]
    fn commands_outside_the_scripts_directory_are_warned_about() {
        let r = imp("vrrp_instance A {\n state MASTER\n notify_master /etc/keepalived/up.sh\n                      notify_backup /etc/lvs-director/scripts/down.sh\n                      notify \"/usr/bin/logger -t ka | wall\"\n}\n\
                     virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 { MISC_CHECK { misc_path /etc/lvs-director/scripts/../../../bin/sh } }\n}\n");
        let moved: Vec<&String> = r
            .warnings
            .iter()
            .filter(|w| w.contains("runs commands as root only from its scripts directory (/etc/lvs-director/scripts"))
            .collect();
        assert_eq!(moved.len(), 3, "{:#?}", r.warnings);
        assert!(
            moved[0].contains("`notify_master`")
                && moved[0].contains("put `/etc/keepalived/up.sh` there")
        );
        assert!(moved[1].contains("`notify`") && moved[1].contains("`/usr/bin/logger`"));
        assert!(moved[2].contains("`misc_path`"), "`..` leaves the folder");
        assert!(!has(&r.warnings, "wrap it as /bin/sh"));
        assert!(has(
            &r.warnings,
            "runs commands without a shell; put it in a script"
        ));
    }

    // ---- tokenizer ----

    #[test]
    fn tokens_braces_and_comments() {
        assert_eq!(
            words("real_server 10.0.0.1 80{weight 1}# web\n! all\nx ! y\n"),
            [
                "real_server",
                "10.0.0.1",
                "80",
                "{",
                "weight",
                "1",
                "}",
                "\\n",
                "\\n",
                "x",
                "\\n"
            ]
        );
        assert_eq!(words("auth_pass ab#cd\n"), ["auth_pass", "ab", "\\n"]);
    }

    #[test]
    fn quotes_join_and_keep_blanks() {
        // keepalived.conf(5): 'abcd" efg h jkl "mnop' is one string.
        assert_eq!(
            words(r#"x abcd" efg h jkl "mnop"#),
            ["x", "abcd efg h jkl mnop"]
        );
        assert_eq!(words(r#"x "a # b" 'c ! d'"#), ["x", "a # b", "c ! d"]);
        assert_eq!(words(r#"x "{ }""#), ["x", "{ }"]);
        assert_eq!(
            words(r#"x "it's" 'say "hi"'"#),
            ["x", "it's", r#"say "hi""#]
        );
    }

    #[test]
    fn c_escapes_in_quotes() {
        assert_eq!(
            words(r#"x "a\tb\n\x41\101\\\"\q\cA""#),
            ["x", "a\tb\nAA\\\"q\u{1}"]
        );
        // Outside quotes a backslash is an ordinary character.
        assert_eq!(words(r"x a\tb"), ["x", r"a\tb"]);
    }

    fn word_and_flag(text: &str) -> (String, bool) {
        tokenize(text)
            .unwrap()
            .into_iter()
            .find_map(|t| match t.kind {
                TokKind::Word(w) => Some((w.text, w.invalid_utf8)),
                _ => None,
            })
            .unwrap()
    }

    #[test]
    fn escapes_are_bytes_read_as_utf8() {
        // `\303\251` is é in UTF-8 (not Ã©), octal or hex, across quoted parts too.
        assert_eq!(word_and_flag(r#""caf\303\251""#), ("café".into(), false));
        assert_eq!(word_and_flag(r#""caf\xc3\xA9""#), ("café".into(), false));
        assert_eq!(word_and_flag(r#"caf'\303'"\251""#), ("café".into(), false));
        assert_eq!(word_and_flag(r#""\342\202\254 é""#), ("€ é".into(), false));
        assert_eq!(word_and_flag(r#""\101\x41""#), ("AA".into(), false));
        // Bytes that are not UTF-8 become U+FFFD, and the word is marked.
        assert_eq!(word_and_flag(r#""a\377b""#), ("a\u{fffd}b".into(), true));
        assert_eq!(word_and_flag(r#""caf\303""#), ("caf\u{fffd}".into(), true));
        // As in C, `\777` keeps the low byte (0xff).
        assert_eq!(word_and_flag(r#""\777""#), ("\u{fffd}".into(), true));
        assert_eq!(word_and_flag("plain"), ("plain".into(), false));
    }

    #[test]
    fn invalid_utf8_after_escapes_is_imported_lossily_with_a_warning() {
        let r = imp("global_defs {\n notification_email_from \"lvs\\377@example.org\"\n}\nvrrp_script \"chk_caf\\303\\251\" {\n script /bin/true\n}\n");
        assert!(
            has(
                &r.warnings,
                "keepalived.conf:2: `notification_email_from`: `lvs\u{fffd}@example.org` is not UTF-8 once its escapes are decoded; the invalid bytes are imported as U+FFFD: check the value"
            ),
            "{:#?}",
            r.warnings
        );
        assert_eq!(r.config.local_checks[0].name, "chk_café");
        assert!(!has(&r.warnings, "keepalived.conf:4: `vrrp_script`: "));
    }

    #[test]
    fn macros_are_marked_and_keep_their_braces() {
        let toks = tokenize("x ${_RANDOM 1 10} $VIP '$1' \"${Y}\"\n").unwrap();
        let marks: Vec<(String, bool)> = toks
            .into_iter()
            .filter_map(|t| match t.kind {
                TokKind::Word(w) => Some((w.text, w.macro_use)),
                _ => None,
            })
            .collect();
        assert_eq!(
            marks,
            [
                ("x".to_string(), false),
                ("${_RANDOM 1 10}".to_string(), true),
                ("$VIP".to_string(), true),
                ("$1".to_string(), false),
                ("${Y}".to_string(), true),
            ]
        );
    }

    #[test]
    fn include_lines_keep_csh_braces() {
        assert_eq!(
            words("include conf.d/{a,b}.conf\nx {"),
            ["include", "conf.d/{a,b}.conf", "\\n", "x", "{"]
        );
    }

    #[test]
    fn positions_are_one_based_lines_and_columns() {
        let toks = tokenize("a\n  bb {\n").unwrap();
        let pos: Vec<(usize, usize)> = toks.iter().map(|t| (t.line, t.col)).collect();
        assert_eq!(pos, [(1, 1), (1, 2), (2, 3), (2, 6), (2, 7)]);
    }

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
    fn unknown_blocks_are_skipped_whole_with_one_warning() {
        let r = imp("bfd_instance b1 {\n  neighbor_ip 10.0.0.9\n  weird { nested { deep } }\n}\nglobal_defs {\n router_id x\n frobnicate { a b }\n}\n");
        assert_eq!(
            r.warnings,
            [
                "keepalived.conf:1: `bfd_instance b1 { … }` not imported: BFD is not supported",
                "keepalived.conf:6: `router_id` not imported: lvs-director tells the directors apart by their addresses (primary, backup)",
                "keepalived.conf:7: `frobnicate { … }` not imported: no lvs-director equivalent",
            ]
        );
        assert_eq!(r.config, {
            let mut c = Config::default();
            c.comments.add(
                Comments::END,
                vec![" Imported from keepalived.conf by lvs-director: read the import warnings before applying.".into()],
            );
            c
        });
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

    // ---- values ----

    #[test]
    fn timers_have_millisecond_resolution() {
        assert_eq!(parse_timer("3"), Some((Secs(3000), false)));
        assert_eq!(parse_timer("0.25"), Some((Secs(250), false)));
        assert_eq!(parse_timer(".5"), Some((Secs(500), false)));
        assert_eq!(parse_timer("2.71828"), Some((Secs(2718), true)));
        assert_eq!(parse_timer("0.0005"), Some((Secs(1), true)));
        assert_eq!(parse_timer("1.000"), Some((Secs(1000), false)));
        for bad in ["", ".", "-1", "1e3", "x", "1.2.3", "99999999999999999999"] {
            assert_eq!(parse_timer(bad), None, "{bad}");
        }
    }

    #[test]
    fn subnets() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(in_subnet(ip("192.168.10.11"), ip("192.168.10.254"), 24));
        assert!(!in_subnet(ip("192.168.11.11"), ip("192.168.10.254"), 24));
        assert!(in_subnet(ip("10.9.9.9"), ip("192.168.10.254"), 0));
        assert!(in_subnet(ip("2001:db8::1"), ip("2001:db8::ff"), 64));
        assert!(!in_subnet(ip("2001:db8::1"), ip("10.0.0.1"), 8));
    }

    // ---- mapping ----

    #[test]
    fn retry_becomes_fall_and_one_success_brings_a_server_back() {
        let r = imp("virtual_server 10.0.0.1 80 {\n protocol TCP\n retry 4\n real_server 10.0.0.2 80 { TCP_CHECK { } }\n real_server 10.0.0.3 80 { MISC_CHECK { misc_path /bin/true } }\n real_server 10.0.0.4 80 { TCP_CHECK { retry 0 } }\n}\n");
        let v = &r.config.virtuals[0];
        let fall = |i: usize| v.servers[i].check.overlay(&v.check).fall;
        // VS-level retry 4 is inherited by every checker, MISC_CHECK included.
        assert_eq!((fall(0), fall(1), fall(2)), (Some(5), Some(5), Some(1)));
        assert_eq!(v.check.rise, Some(1));
        let r = imp("virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.0.2 80 { TCP_CHECK { } }\n real_server 10.0.0.3 80 { MISC_CHECK { misc_path /bin/true } }\n}\n");
        let v = &r.config.virtuals[0];
        let fall = |i: usize| v.servers[i].check.overlay(&v.check).fall;
        // keepalived's defaults: retry 1 (fall 2), MISC_CHECK retry 0 (fall 1).
        assert_eq!((fall(0), fall(1)), (Some(2), Some(1)));
        assert_eq!(v.check.check_interval, Some(Secs::from_secs(60)));
        assert_eq!(v.check.timeout, None, "5 s connect vs 60 s misc_timeout");
    }

    #[test]
    fn shared_check_keywords_move_to_the_virtual_server() {
        let r = imp("virtual_server 10.0.0.1 80 {\n protocol TCP\n delay_loop 7\n real_server 10.0.0.2 80 { TCP_CHECK { connect_port 8080 } }\n real_server 10.0.0.3 80 { TCP_CHECK { connect_port 8081 } }\n real_server 10.0.0.4 80 { weight 2 }\n}\n");
        let v = &r.config.virtuals[0];
        assert_eq!(v.check.check_interval, Some(Secs::from_secs(7)));
        assert_eq!(v.check.check, None, "tcp on two servers, none on the third");
        assert_eq!(v.check.check_port, None);
        assert_eq!(v.servers[0].check.check, Some(CheckKind::Tcp));
        assert_eq!(v.servers[0].check.check_port, Some(PortSpec::Number(8080)));
        assert_eq!(
            v.servers[2].check.entries(),
            [("check", "none".to_string())]
        );
    }

    #[test]
    fn vrrp_roles_follow_the_state() {
        let conf = |state: &str| {
            format!("vrrp_instance V {{\n state {state}\n interface eth0\n unicast_src_ip 10.0.0.2\n unicast_peer {{ 10.0.0.3 }}\n virtual_ipaddress {{ 10.0.0.100/24 }}\n}}\n")
        };
        let m = imp(&conf("MASTER")).config.global;
        assert_eq!(m.primary, Some(Host::Ip("10.0.0.2".parse().unwrap())));
        assert_eq!(m.backup, Some(Host::Ip("10.0.0.3".parse().unwrap())));
        assert_eq!(m.backup_active, Some(true));
        let b = imp(&conf("BACKUP")).config.global;
        assert_eq!(b.primary, Some(Host::Ip("10.0.0.3".parse().unwrap())));
        assert_eq!(b.backup, Some(Host::Ip("10.0.0.2".parse().unwrap())));
        // The address owner (priority 255) starts as MASTER without `state`.
        let o = imp("vrrp_instance V {\n priority 255\n unicast_src_ip 10.0.0.2\n unicast_peer { 10.0.0.3 }\n}\n");
        assert_eq!(
            o.config.global.primary,
            Some(Host::Ip("10.0.0.2".parse().unwrap()))
        );
    }

    #[test]
    fn instance_settings_override_global_ones_and_the_first_instance_wins() {
        let r = imp("global_defs {\n vrrp_garp_master_repeat 3\n}\nvrrp_instance A {\n state BACKUP\n nopreempt\n garp_master_repeat 8\n notify_master /bin/a\n}\nvrrp_instance B {\n state BACKUP\n garp_master_repeat 2\n notify_master /bin/b\n}\n");
        let g = &r.config.global;
        assert_eq!(g.garp_count, Some(8));
        assert_eq!(g.preempt, Some(false));
        assert_eq!(g.active_cmd, Some(Text("/bin/a".into())));
        assert!(has(
            &r.warnings,
            "keepalived.conf:12: `garp_master_repeat` not imported: lvs-director has one heartbeat"
        ));
        assert!(has(
            &r.warnings,
            "keepalived.conf:13: `notify_master` not imported: active_cmd is already `/bin/a`"
        ));
        assert!(!has(&r.warnings, "keepalived.conf:7:"));
        // keepalived clears nopreempt and preempt_delay when the instance starts as MASTER.
        let r = imp("vrrp_instance A {\n state MASTER\n nopreempt\n preempt_delay 5\n}\n");
        assert_eq!(r.config.global.preempt, None);
        assert_eq!(r.config.global.preempt_delay, None);
        assert!(has(&r.warnings, "keepalived.conf:3: `nopreempt` not imported: keepalived ignores it with `state MASTER` too"));
    }

    #[test]
    fn vips_become_service_addresses_or_floating_ones() {
        let r = imp("vrrp_instance VI_1 {\n interface eth0\n virtual_ipaddress {\n  10.0.0.100/24\n  10.0.0.101 dev eth1 label eth1:web\n  10.0.0.102/24 label other\n }\n}\nvirtual_server 10.0.0.101 443 { protocol TCP }\n");
        let c = &r.config;
        let a = c.virtuals[0].settings.address.as_ref().unwrap();
        assert_eq!(a.render(), "10.0.0.101 eth1:web");
        assert_eq!(c.virtuals[0].settings.vip_nmask, None);
        let fl: Vec<(String, String)> = c
            .floating
            .iter()
            .map(|f| {
                (
                    f.name.clone(),
                    f.settings.address.as_ref().unwrap().render(),
                )
            })
            .collect();
        assert_eq!(
            fl,
            [
                ("VI_1".to_string(), "10.0.0.100 eth0".to_string()),
                ("VI_1_2".to_string(), "10.0.0.102 eth0".to_string())
            ]
        );
        assert!(has(&r.warnings, "`label other` not imported"));
    }

    #[test]
    fn names_are_kept_readable_and_checked_by_the_one_rule() {
        assert_eq!(block_name("VI_1", "vip"), "VI_1");
        assert_eq!(block_name("chk nginx\tnow", "vrrp_script"), "chk_nginx_now");
        // Anything Piranha reads back as one token stays: no second character set.
        assert_eq!(block_name("web/é:1{", "vip"), "web/é:1{");
        assert_eq!(block_name(r#"it's "x""#, "vip"), r#"it's_"x""#);
        assert_eq!(block_name(r#"'x""#, "vip"), "vip");
        assert_eq!(block_name("", "vip"), "vip");
        assert_eq!(block_name("}", "vip"), "vip");
        assert_eq!(
            block_name(&"a".repeat(100), "vip").chars().count(),
            MAX_NAME
        );
        let taken: HashSet<String> = ["x".to_string(), "x_2".to_string()].into();
        assert_eq!(unique_name("x".into(), &taken), "x_3");

        let r = imp("vrrp_script \"chk web\" {\n script /bin/true\n}\nvrrp_script \"'x\\\"\" {\n script /bin/true\n}\nvrrp_instance \"VI ext\" {\n virtual_ipaddress {\n  192.168.1.100/24\n  192.168.1.101/24\n }\n}\nvirtual_server fwmark 5 {\n real_server 10.0.0.2 80 { TCP_CHECK { } }\n}\nvirtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.0.2 80 { TCP_CHECK { } }\n}\n");
        let c = &r.config;
        let checks: Vec<&str> = c.local_checks.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(checks, ["chk_web", "vrrp_script"]);
        let fl: Vec<&str> = c.floating.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(fl, ["VI_ext", "VI_ext_2"]);
        let vs: Vec<&str> = c.virtuals.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(vs, ["fwmark_5", "vs_10_0_0_1_80"]);
        assert_eq!(c.virtuals[1].servers[0].name, "rs_10_0_0_2");
        let text = render(c);
        assert_eq!(parse(&text).unwrap().config, *c);
    }

    /// keepalived checkers lvs-director cannot run, on each protocol.
    fn substitute(checker: &str, proto: &str) -> Imported {
        imp(&format!(
            "virtual_server 10.0.0.1 53 {{\n protocol {proto}\n real_server 10.0.0.2 53 {{\n  {checker} {{\n   connect_port 5353\n  }}\n }}\n real_server 10.0.0.3 53 {{ }}\n}}\n"
        ))
    }

    #[test]
    fn unsupported_checkers_never_become_tcp_checks_of_udp_or_sctp_services() {
        for checker in [
            "DNS_CHECK",
            "SMTP_CHECK",
            "BFD_CHECK",
            "FILE_CHECK",
            "HTTP_GET",
            "SSL_GET",
            "MISC_CHECK",
        ] {
            for (proto, tail) in [
                ("UDP", "check = ping is used instead: an ICMP echo detects a dead host, where a bare UDP probe without send/expect would not; to test the service itself, set send and expect (check = udp)"),
                ("SCTP", "check = ping is used instead: an ICMP echo detects a dead host; lvs-director has no SCTP check, and a TCP connect would not reach the service"),
            ] {
                let r = substitute(checker, proto);
                let s = &r.config.virtuals[0].servers[0];
                assert_eq!(s.check.check, Some(CheckKind::Ping), "{checker} {proto}");
                let v = &r.config.virtuals[0];
                assert_eq!((s.check.check_port.clone()).or(v.check.check_port.clone()), None);
                let w = format!("keepalived.conf:4: `{checker} {{ … }}` not imported: ");
                assert!(has(&r.warnings, &w), "{checker} {proto}: {:#?}", r.warnings);
                assert!(has(&r.warnings, tail), "{checker} {proto}: {:#?}", r.warnings);
                assert!(
                    !r.warnings.iter().any(|w| w.contains("TCP connect to")),
                    "{checker} {proto}: {:#?}",
                    r.warnings
                );
                assert!(validate(&r.config).iter().all(|d| !d.is_error()));
                assert_eq!(parse(&render(&r.config)).unwrap().config, r.config);
            }
            // A TCP service keeps its connect check (HTTP_GET and SSL_GET are real checks).
            let r = substitute(checker, "TCP");
            let want = match checker {
                "HTTP_GET" => CheckKind::Http,
                "SSL_GET" => CheckKind::Https,
                _ => CheckKind::Tcp,
            };
            let s = &r.config.virtuals[0].servers[0];
            assert_eq!(s.check.check, Some(want), "{checker} TCP");
            let port =
                (s.check.check_port.clone()).or(r.config.virtuals[0].check.check_port.clone());
            if checker != "MISC_CHECK" {
                assert_eq!(port, Some(PortSpec::Number(5353)), "{checker} TCP");
            }
            if want == CheckKind::Tcp {
                assert!(has(
                    &r.warnings,
                    "a TCP connect to the server's port is used instead"
                ));
            }
        }
        let r = substitute("DNS_CHECK", "UDP");
        assert!(has(
            &r.warnings,
            "lvs-director has no DNS check; check = ping"
        ));
        let r = substitute("HTTP_GET", "SCTP");
        assert!(has(
            &r.warnings,
            "an HTTP check cannot test an SCTP service; check = ping"
        ));
        let r = substitute("MISC_CHECK", "UDP");
        assert!(has(&r.warnings, "it has no usable misc_path; check = ping"));
        // An explicit TCP_CHECK is what keepalived runs (a TCP connect), whatever the
        // service's protocol: it is kept.
        let r = substitute("TCP_CHECK", "UDP");
        let s = &r.config.virtuals[0].servers[0];
        assert_eq!(s.check.check, Some(CheckKind::Tcp));
    }

    #[test]
    fn fwmark_without_a_matching_vip_is_imported_inactive() {
        let r = imp("virtual_server fwmark 3 {\n real_server 10.0.0.2 80 { TCP_CHECK { } }\n}\n");
        let v = &r.config.virtuals[0];
        assert_eq!(v.settings.active, Some(false));
        assert_eq!(v.settings.address, None);
        assert!(has(&r.warnings, "imported with active = 0: set `address`"));
        assert!(validate(&r.config).iter().all(|d| !d.is_error()));
    }

    #[test]
    fn scripts_are_active_only_when_tracked() {
        // One statement per line inside the braces: `{ script "/bin/a" weight 10 }` would
        // be a script with the arguments `weight 10`, for keepalived as for the import.
        let r = imp("vrrp_script a {\n script \"/bin/a\"\n weight 10\n}\nvrrp_script b { script /bin/b }\nvrrp_instance V {\n track_script {\n  a weight -5\n  c\n }\n}\n");
        let act: Vec<(&str, Option<bool>)> = r
            .config
            .local_checks
            .iter()
            .map(|l| (l.name.as_str(), l.settings.active))
            .collect();
        assert_eq!(act, [("a", Some(true)), ("b", Some(false))]);
        assert!(has(&r.warnings, "keepalived.conf:3: `weight 10` not kept"));
        assert!(has(
            &r.warnings,
            "keepalived.conf:8: `a weight -5`: weight not kept"
        ));
        assert!(has(
            &r.warnings,
            "keepalived.conf:9: `track_script c` not imported: there is no vrrp_script c"
        ));
        assert!(has(
            &r.warnings,
            "keepalived.conf:5: `vrrp_script b`: no track_script uses it"
        ));
    }

    #[test]
    fn odd_values_are_warnings_not_failures() {
        let r = imp("virtual_server 10.0.0.1 80 {\n protocol UDP\n lb_algo twos\n lb_kind FNAT\n real_server 10.0.0.2 80 {\n  weight 99999999\n  HTTP_GET { url { path health } }\n }\n real_server fe80::1 80 { }\n}\nvirtual_server 10.0.0.1 80 { protocol UDP }\n");
        let v = &r.config.virtuals[0];
        assert_eq!(v.settings.scheduler, None);
        assert_eq!(v.servers.len(), 1);
        assert_eq!(v.servers[0].settings.weight, Some(65_535));
        assert_eq!(
            v.check.check,
            Some(CheckKind::Ping),
            "no HTTP check of a UDP service, and no TCP one either"
        );
        assert_eq!(r.config.virtuals.len(), 1);
        for w in [
            "`lb_algo twos` not imported",
            "`lb_kind FNAT` not imported",
            "`weight 99999999`: lowered to 65535",
            "an HTTP check cannot test a UDP service; check = ping is used instead",
            "`real_server fe80::1 80 { … }` not imported: its address family differs",
            "the same service is already imported above",
        ] {
            assert!(has(&r.warnings, w), "{w}: {:#?}", r.warnings);
        }
        assert!(validate(&r.config).iter().all(|d| !d.is_error()));
    }

    #[test]
    fn extra_words_after_a_value_are_dropped_as_keepalived_does() {
        let r = imp("virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.0.2 80 {\n  HTTP_GET { url { path /status digest abc status_code 200 } }\n }\n}\n");
        let v = &r.config.virtuals[0];
        assert_eq!(v.check.check_path, Some(Text("/status".into())));
        assert_eq!(v.check.check_status, None);
        assert!(has(&r.warnings, "`path /status`: `digest abc status_code 200` after the value not imported (keepalived ignores it too)"));
    }

    #[test]
    fn empty_input_imports_nothing() {
        let r = imp("");
        assert!(r.warnings.is_empty());
        assert!(r.config.virtuals.is_empty() && r.config.global.is_empty());
    }

    // ---- robustness ----

    /// Imports, then checks what must hold for any input: no panic (by getting here),
    /// and a model that survives render → parse unchanged.
    fn check_any(text: &str) {
        let files = [
            ("a.conf", "virtual_server 10.0.0.9 80 {\n"),
            ("b.conf", "include a.conf\n"),
        ];
        if let Ok(r) = import_with("k.conf", text, &files) {
            let _ = validate(&r.config);
            let rendered = render(&r.config);
            let back = parse(&rendered).unwrap_or_else(|e| panic!("{rendered}\n{e:?}"));
            assert_eq!(back.config, r.config, "{rendered}");
        }
    }

    const VOCAB: &[&str] = &[
        "{",
        "}",
        "{",
        "}",
        "\n",
        "\n",
        "\n",
        "#",
        "!",
        "\"",
        "'",
        "\\",
        "$X",
        "${Y}",
        "@n",
        "~SEQ(i,1,1,2)",
        "include",
        "a.conf",
        "b.conf",
        "*.conf",
        "global_defs",
        "vrrp_instance",
        "vrrp_script",
        "vrrp_sync_group",
        "virtual_server",
        "real_server",
        "virtual_server_group",
        "group",
        "fwmark",
        "state",
        "MASTER",
        "BACKUP",
        "interface",
        "eth0",
        "advert_int",
        "0.5",
        "unicast_src_ip",
        "unicast_peer",
        "virtual_ipaddress",
        "10.0.0.1",
        "10.0.0.2",
        "10.0.0.1/24",
        "2001:db8::1",
        "2001:db8::2/64",
        "dev",
        "label",
        "eth0:1",
        "track_script",
        "script",
        "chk",
        "weight",
        "-5",
        "notify_master",
        "notification_email",
        "smtp_server",
        "a@b",
        "lb_algo",
        "sh",
        "sh-port",
        "lb_kind",
        "NAT",
        "DR",
        "TUN",
        "type",
        "gue",
        "port",
        "80",
        "0",
        "53",
        "protocol",
        "UDP",
        "TCP",
        "persistence_timeout",
        "persistence_granularity",
        "255.255.255.0",
        "sorry_server",
        "inhibit_on_failure",
        "delay_loop",
        "connect_timeout",
        "retry",
        "TCP_CHECK",
        "HTTP_GET",
        "SSL_GET",
        "MISC_CHECK",
        "misc_path",
        "url",
        "path",
        "/x",
        "status_code",
        "200-299",
        "regex",
        "(",
        "virtualhost",
        "h.example",
        "PING_CHECK",
        "DNS_CHECK",
        "connect_port",
        "uthreshold",
        "lthreshold",
        "lvs_sync_daemon",
        "lvs_timeouts",
        "tcp",
        "ops",
        "nopreempt",
        "preempt_delay",
        "3",
        "x",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        /// Random bytes never make the importer panic.
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            check_any(&String::from_utf8_lossy(&bytes));
        }

        /// Random sequences of keepalived words reach deep into the mapping without a
        /// panic, and whatever is imported renders and parses back unchanged.
        #[test]
        fn token_soup_never_panics(toks in proptest::collection::vec(proptest::sample::select(VOCAB), 0..120)) {
            check_any(&toks.join(" "));
        }

        /// Well-formed blocks with random content: the same properties.
        #[test]
        fn balanced_soup_never_panics(
            toks in proptest::collection::vec(proptest::sample::select(VOCAB), 0..60),
            head in proptest::sample::select(&["virtual_server 10.0.0.1 80", "vrrp_instance VI", "global_defs", "virtual_server fwmark 4", "vrrp_script s"][..]),
        ) {
            let body: String = toks.iter().copied().filter(|t| !matches!(*t, "{" | "}" | "\"" | "'")).collect::<Vec<_>>().join(" ");
            check_any(&format!("{head} {{\n{body}\nreal_server 10.0.0.2 80 {{\n{body}\n}}\n}}\n"));
        }
    }
}
