//! `check_url`: several pages of one HTTP(S) check, each with what its answer must
//! be, as keepalived's `url { … }` blocks of an `HTTP_GET` / `SSL_GET` (the server is
//! up only when every page passes). An element reads as the url block would, on one
//! line: `PATH [status SET] [digest HEX] [host NAME] [regex RE]`, `regex` last because
//! it takes the rest of the element (blanks included).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::lexer::Token;
use super::value::{parse_digest, parse_list, render_list, StatusSet, Value, ValueError};

/// One page of an HTTP(S) check. Unset options come from the check's `check_status`,
/// `check_host`, `check_regex` and `check_digest`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UrlCheck {
    /// The request target, starting with `/`.
    pub path: String,
    pub status: Option<StatusSet>,
    /// MD5 of the whole body, 32 lower-case hex digits.
    pub digest: Option<String>,
    /// The `Host` header (keepalived's per-url `virtualhost`).
    pub host: Option<String>,
    /// A regular expression the body must match.
    pub regex: Option<String>,
}

impl UrlCheck {
    pub fn new(path: impl Into<String>) -> UrlCheck {
        UrlCheck {
            path: path.into(),
            status: None,
            digest: None,
            host: None,
            regex: None,
        }
    }

    pub fn parse_text(s: &str) -> Result<UrlCheck, String> {
        let mut rest = s.trim_start();
        let mut next = || -> Option<&str> {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let (w, tail) = rest.split_at(end);
            rest = tail.trim_start();
            (!w.is_empty()).then_some(w)
        };
        let path = next().ok_or("a path expected")?;
        if !path.starts_with('/') {
            return Err(format!("path `{path}` must start with /"));
        }
        let mut u = UrlCheck::new(path);
        while let Some(option) = next() {
            if option == "regex" {
                // Taken whole, blanks included: a pattern is not split into words.
                let pattern = rest.trim_end();
                if pattern.is_empty() {
                    return Err("`regex` needs a pattern".into());
                }
                regex::Regex::new(pattern).map_err(|e| {
                    let e = e.to_string();
                    let last = e.lines().last().unwrap_or("").trim().to_string();
                    format!("regex `{pattern}`: {}", last.trim_start_matches("error: "))
                })?;
                u.regex = Some(pattern.to_string());
                break;
            }
            let value = next().ok_or_else(|| format!("`{option}` needs a value"))?;
            match option {
                "status" => {
                    let set = StatusSet::parse(&[Token::bare(value.to_string(), 1)])
                        .map_err(|e| e.message)?;
                    u.status = Some(set);
                }
                "digest" => {
                    parse_digest(value).ok_or_else(|| {
                        format!("digest `{value}`: not an MD5 digest (32 hexadecimal digits)")
                    })?;
                    u.digest = Some(value.to_ascii_lowercase());
                }
                "host" => u.host = Some(value.to_string()),
                other => {
                    return Err(format!(
                        "`{other}`: status, digest, host or regex expected after the path"
                    ))
                }
            }
        }
        Ok(u)
    }
}

impl fmt::Display for UrlCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)?;
        if let Some(s) = &self.status {
            write!(f, " status {}", s.render())?;
        }
        if let Some(d) = &self.digest {
            write!(f, " digest {d}")?;
        }
        if let Some(h) = &self.host {
            write!(f, " host {h}")?;
        }
        if let Some(r) = &self.regex {
            write!(f, " regex {r}")?;
        }
        Ok(())
    }
}

/// `check_url` as a list.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct UrlList(pub Vec<UrlCheck>);

impl Value for UrlList {
    const EXPECTED: &'static str =
        "a list of pages, e.g. `[ \"/health status 200\" \"/index.html digest 0ee5dbfcba889ec228d56f564a880d56\" ]`";
    fn parse(args: &[Token]) -> Result<Self, ValueError> {
        let l = parse_list(args, UrlCheck::parse_text)?;
        if l.is_empty() {
            return Err(ValueError::new(
                0,
                "at least one page expected (leave check_url out to use check_path)",
            ));
        }
        Ok(UrlList(l))
    }
    fn render(&self) -> String {
        render_list(&self.0)
    }
    fn unwritable(&self) -> Option<&'static str> {
        let word = |s: &str| {
            !s.is_empty()
                && !s
                    .contains(|c: char| c.is_whitespace() || c.is_control() || c == '"' || c == ']')
        };
        let pattern = |s: &str| {
            !s.trim().is_empty()
                && s.trim() == s
                && !s.contains(|c: char| c.is_control() || c == '"')
        };
        self.0
            .iter()
            .any(|u| {
                !word(&u.path)
                    || !u.path.starts_with('/')
                    || u.host.as_deref().is_some_and(|h| !word(h))
                    || u.regex.as_deref().is_some_and(|r| !pattern(r))
            })
            .then_some(
                "a page's path and host must be single words and no part may hold a double quote",
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse::value_tokens;

    fn p(s: &str) -> Result<UrlList, ValueError> {
        UrlList::parse(&value_tokens(s)?)
    }

    #[test]
    fn pages_read_as_keepalived_url_blocks_on_one_line() {
        let l = p("[ /health \"/index.html status 200,301-302 digest 0EE5DBFCBA889EC228D56F564A880D56 host www.example.com regex ^Hello  world$\" ]").unwrap();
        assert_eq!(l.0[0], UrlCheck::new("/health"));
        let u = &l.0[1];
        assert_eq!(u.path, "/index.html");
        assert_eq!(u.status, Some(StatusSet(vec![(200, 200), (301, 302)])));
        assert_eq!(
            u.digest.as_deref(),
            Some("0ee5dbfcba889ec228d56f564a880d56")
        );
        assert_eq!(u.host.as_deref(), Some("www.example.com"));
        assert_eq!(u.regex.as_deref(), Some("^Hello  world$"), "blanks kept");
        let text = l.render();
        assert_eq!(p(&text).unwrap(), l, "{text}");
    }

    #[test]
    fn a_bad_page_is_refused_with_its_element_and_reason() {
        let e = |s: &str| p(s).unwrap_err().message;
        assert!(e("[ health ]").contains("element 1 (`health`): path `health` must start with /"));
        assert!(e("[ / \"/a digest nope\" ]").contains("element 2"));
        assert!(e("[ \"/a digest nope\" ]").contains("not an MD5 digest"));
        assert!(e("[ \"/a status 99\" ]").contains("HTTP status codes expected"));
        assert!(e("[ \"/a status\" ]").contains("`status` needs a value"));
        assert!(e("[ \"/a code 200\" ]").contains("`code`: status, digest, host or regex"));
        assert!(e("[ \"/a regex (\" ]").contains("regex `(`"));
        assert!(e("[ ]").contains("at least one page"));
    }

    #[test]
    fn what_a_file_cannot_hold_is_said() {
        let mut u = UrlCheck::new("/a");
        u.regex = Some("say \"hi\"".into());
        assert!(UrlList(vec![u]).unwritable().is_some());
        assert!(UrlList(vec![UrlCheck::new("/a b")]).unwritable().is_some());
        assert!(UrlList(vec![UrlCheck::new("/ok")]).unwritable().is_none());
    }
}
