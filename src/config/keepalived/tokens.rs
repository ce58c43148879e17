//! The first stage of the syntax: keepalived text split into words, braces and line
//! ends, quotes removed and C escapes decoded. The only stage that reads the raw text;
//! everything after it works on [`Tok`]s.

use super::INCLUDE_WORDS;

/// One word of a statement, quotes removed and escapes decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Term {
    pub(super) text: String,
    /// Some part of it was quoted (so `{`, `include` or `@x` in it are plain text).
    pub(super) quoted: bool,
    /// It uses a keepalived macro (`$NAME`, `${NAME}`), which is not expanded.
    pub(super) macro_use: bool,
    /// Its escapes decode to bytes that are not UTF-8; `text` has U+FFFD in their place.
    pub(super) invalid_utf8: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TokKind {
    Word(Term),
    Open,
    Close,
    Newline,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Tok {
    pub(super) kind: TokKind,
    pub(super) line: usize,
    pub(super) col: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LexError {
    pub(super) line: usize,
    pub(super) col: usize,
    pub(super) message: String,
}

/// Splits keepalived text into words, braces and line ends (1-based line and column,
/// counted in characters).
pub(super) fn tokenize(text: &str) -> Result<Vec<Tok>, LexError> {
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

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

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
}
