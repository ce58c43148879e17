//! Splits `lvs.cf` text into lines of tokens, following Piranha's lexical rules
//! (`lvsconfig.c`) and accepting a few harmless liberties on top of them.
//!
//! Piranha: a line ends at `\n` or `\r`; a line whose first non-blank is `#` is a
//! comment; tokens are separated by blanks; a token that starts with a quote runs to
//! the next identical quote. Liberties: `key=value` without blanks, a trailing
//! `# comment` after a statement, and `\"` inside a double-quoted string.

use std::fmt;

/// One token of a statement, with its 1-based column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The text between the quotes for a quoted token (escapes not yet decoded),
    /// the token itself otherwise.
    pub text: String,
    /// The quote character the token was written with, if any.
    pub quote: Option<char>,
    pub col: usize,
}

impl Token {
    pub fn bare(text: impl Into<String>, col: usize) -> Self {
        Token {
            text: text.into(),
            quote: None,
            col,
        }
    }
}

/// What one physical line holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineKind {
    /// Blank line.
    Blank,
    /// A whole-line comment; the text after `#`.
    Comment(String),
    /// `}` closing a block, with a trailing `# comment` if any.
    Close(Option<String>),
    /// `keyword = value…` or `keyword NAME {`.
    Statement {
        keyword: Token,
        /// Whether an `=` followed the keyword.
        assign: bool,
        args: Vec<Token>,
        /// A trailing `# comment` (an lvs-director liberty; Piranha rejects it).
        comment: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number.
    pub no: usize,
    pub kind: LineKind,
}

/// A lexical error: column and message; the caller adds file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    pub col: usize,
    pub message: String,
}

impl fmt::Display for LexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)
    }
}

/// Splits text into lines the way Piranha does: `\n`, `\r` and `\r\n` all end a line.
pub fn physical_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest = text;
    let mut no = 0usize;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        no += 1;
        let end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        let line = &rest[..end];
        let mut next = end;
        if rest[next..].starts_with("\r\n") {
            next += 2;
        } else if next < rest.len() {
            next += 1;
        }
        rest = &rest[next..];
        Some((no, line))
    })
}

/// Lexes every line of `text`. Errors are per line so the parser can report them all.
pub fn lex(text: &str) -> Vec<Result<Line, (usize, LexError)>> {
    physical_lines(text)
        .map(|(no, l)| {
            lex_line(l)
                .map(|kind| Line { no, kind })
                .map_err(|e| (no, e))
        })
        .collect()
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\x0b' || c == '\x0c'
}

fn is_keyword_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Lexes one line (without its terminator).
pub fn lex_line(line: &str) -> Result<LineKind, LexError> {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() && is_blank(chars[i]) {
        i += 1;
    }
    if i == chars.len() {
        return Ok(LineKind::Blank);
    }
    if chars[i] == '#' {
        return Ok(LineKind::Comment(chars[i + 1..].iter().collect()));
    }
    if chars[i] == '}' {
        let mut j = i + 1;
        while j < chars.len() && is_blank(chars[j]) {
            j += 1;
        }
        if j == chars.len() {
            return Ok(LineKind::Close(None));
        }
        if chars[j] == '#' {
            return Ok(LineKind::Close(Some(chars[j + 1..].iter().collect())));
        }
        return Err(LexError {
            col: j + 1,
            message: "unexpected arguments: `}` must stand alone on its line".into(),
        });
    }
    let key_start = i;
    // A character quoted in a message: control characters escaped, so that a binary
    // file's bytes cannot drive the terminal the message is printed on.
    fn shown(c: char) -> String {
        if c.is_control() {
            c.escape_default().to_string()
        } else {
            c.to_string()
        }
    }
    while i < chars.len() && is_keyword_char(chars[i]) {
        i += 1;
    }
    if i == key_start {
        return Err(LexError {
            col: i + 1,
            message: format!("keyword expected, found `{}`", shown(chars[i])),
        });
    }
    let keyword = Token::bare(
        chars[key_start..i].iter().collect::<String>(),
        key_start + 1,
    );
    if i < chars.len() && !is_blank(chars[i]) && chars[i] != '=' && chars[i] != '{' {
        return Err(LexError {
            col: i + 1,
            message: format!(
                "unexpected character `{}` in keyword `{}{}`",
                shown(chars[i]),
                keyword.text,
                shown(chars[i])
            ),
        });
    }
    while i < chars.len() && is_blank(chars[i]) {
        i += 1;
    }
    let mut assign = false;
    if i < chars.len() && chars[i] == '=' {
        assign = true;
        i += 1;
    }
    let (args, comment) = match lex_args(&chars, i, true) {
        Ok(r) => r,
        // Piranha has no escapes: a value such as "C:\" ends at the first quote. Retry
        // that way before calling the quotes mismatched.
        Err(e) => lex_args(&chars, i, false).map_err(|_| e)?,
    };
    Ok(LineKind::Statement {
        keyword,
        assign,
        args,
        comment,
    })
}

type Args = (Vec<Token>, Option<String>);

fn lex_args(chars: &[char], mut i: usize, escapes: bool) -> Result<Args, LexError> {
    let mut args = Vec::new();
    loop {
        while i < chars.len() && is_blank(chars[i]) {
            i += 1;
        }
        if i == chars.len() {
            return Ok((args, None));
        }
        let c = chars[i];
        // After a value, `#` starts a comment; as the first value it is part of it
        // (Piranha knows comments only at the start of a line: `expect = #OK`).
        if c == '#' && !args.is_empty() {
            return Ok((args, Some(chars[i + 1..].iter().collect())));
        }
        let start = i;
        if c == '"' || c == '\'' {
            i += 1;
            let mut text = String::new();
            loop {
                if i == chars.len() {
                    return Err(LexError {
                        col: start + 1,
                        message: format!("quotation mismatch: no closing {c} for this string"),
                    });
                }
                let d = chars[i];
                if escapes && d == '\\' && i + 1 < chars.len() {
                    text.push(d);
                    text.push(chars[i + 1]);
                    i += 2;
                    continue;
                }
                if d == c {
                    i += 1;
                    break;
                }
                text.push(d);
                i += 1;
            }
            if i < chars.len() && !is_blank(chars[i]) {
                return Err(LexError {
                    col: i + 1,
                    message: "unexpected characters after the closing quote".into(),
                });
            }
            args.push(Token {
                text,
                quote: Some(c),
                col: start + 1,
            });
        } else {
            while i < chars.len() && !is_blank(chars[i]) {
                i += 1;
            }
            args.push(Token::bare(
                chars[start..i].iter().collect::<String>(),
                start + 1,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(line: &str) -> (String, bool, Vec<String>, Option<String>) {
        match lex_line(line).unwrap() {
            LineKind::Statement {
                keyword,
                assign,
                args,
                comment,
            } => (
                keyword.text,
                assign,
                args.into_iter().map(|t| t.text).collect(),
                comment,
            ),
            other => panic!("not a statement: {other:?}"),
        }
    }

    #[test]
    fn line_endings_are_lf_cr_and_crlf() {
        let lines: Vec<_> = physical_lines("a\r\nb\rc\nd").collect();
        assert_eq!(lines, vec![(1, "a"), (2, "b"), (3, "c"), (4, "d")]);
        let lines: Vec<_> = physical_lines("a\n\nb\n").collect();
        assert_eq!(lines, vec![(1, "a"), (2, ""), (3, "b")]);
    }

    #[test]
    fn assignments_with_and_without_blanks() {
        for l in [
            "port = 80",
            "port=80",
            "port =80",
            "port= 80",
            "\tport\t=\t80  ",
        ] {
            assert_eq!(
                stmt(l),
                ("port".into(), true, vec!["80".into()], None),
                "{l}"
            );
        }
    }

    #[test]
    fn quotes_keep_spaces_and_raw_escapes() {
        let (_, _, args, _) = stmt(r#"send = "GET / HTTP/1.0\r\n\r\n""#);
        assert_eq!(args, vec![r"GET / HTTP/1.0\r\n\r\n".to_string()]);
        let (_, _, args, _) = stmt(r#"expect = 'say "hi"'"#);
        assert_eq!(args, vec![r#"say "hi""#.to_string()]);
        let (_, _, args, _) = stmt(r#"send = "a \"quoted\" word""#);
        assert_eq!(args, vec![r#"a \"quoted\" word"#.to_string()]);
    }

    #[test]
    fn piranha_rule_when_escape_aware_lexing_fails() {
        let (_, _, args, _) = stmt(r#"send_program = "C:\""#);
        assert_eq!(args, vec![r"C:\".to_string()]);
    }

    #[test]
    fn unterminated_quote_is_a_mismatch() {
        let e = lex_line(r#"send = "GET / "#).unwrap_err();
        assert_eq!(e.col, 8);
        assert!(e.message.contains("quotation mismatch"));
    }

    #[test]
    fn blocks_comments_and_close() {
        assert_eq!(
            lex_line("   # hello").unwrap(),
            LineKind::Comment(" hello".into())
        );
        assert_eq!(lex_line("  }  ").unwrap(), LineKind::Close(None));
        assert_eq!(
            lex_line("} # end www").unwrap(),
            LineKind::Close(Some(" end www".into()))
        );
        assert_eq!(
            stmt("expect = #OK"),
            ("expect".into(), true, vec!["#OK".into()], None)
        );
        assert!(lex_line("} x").is_err());
        assert_eq!(
            stmt("virtual www {"),
            (
                "virtual".into(),
                false,
                vec!["www".into(), "{".into()],
                None
            )
        );
        assert_eq!(
            stmt("port = 80 # web"),
            ("port".into(), true, vec!["80".into()], Some(" web".into()))
        );
        assert_eq!(
            stmt("send = \"a # b\""),
            ("send".into(), true, vec!["a # b".into()], None)
        );
    }

    #[test]
    fn junk_keywords_are_errors() {
        assert!(lex_line("= 5").is_err());
        assert!(lex_line("po.rt = 5").is_err());
    }
}
