//! The first and last lines of every `lvs.cf` lvs-director writes. A file cut between
//! two blocks (a copy that stopped, a disk that filled under a writer that does not
//! replace files atomically, an editor's session gone wrong) still reads as a valid,
//! smaller configuration: the supervisor would withdraw every virtual server that was
//! cut off. With these lines a file that starts with the first and lacks the last is
//! refused with that reason instead. Files without the first line (written by hand,
//! by Piranha, by earlier versions) are read as before.
//!
//! Both lines are comments, so Piranha's parser and earlier versions of ours read a
//! file that has them. The stored configuration and its revisions never contain them:
//! they are added when a file is written and taken off when it is read.

use std::borrow::Cow;

use super::parse::ParseError;

/// The first line, which says the last one must be there.
pub const FIRST_LINE: &str =
    "# lvs.cf written by lvs-director: its last line is \"# end of lvs.cf\"";
/// The last line.
pub const LAST_LINE: &str = "# end of lvs.cf";

/// `body` as a file: the first line, the body, the last line. A body that already has
/// them is returned as it is.
pub fn with_ends(body: &str) -> String {
    if has_first_line(body) {
        return body.to_string();
    }
    let mut text = String::with_capacity(FIRST_LINE.len() + body.len() + LAST_LINE.len() + 3);
    text.push_str(FIRST_LINE);
    text.push('\n');
    text.push_str(body);
    if !body.is_empty() && !body.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(LAST_LINE);
    text.push('\n');
    text
}

/// The body of a whole file (both lines taken off), for comparing a file with a
/// rendering; a file without the first line, or without the last, as it is (parsing
/// it reports the missing last line).
pub fn without_ends(text: &str) -> Cow<'_, str> {
    let Some(rest) = first_line_off(text) else {
        return Cow::Borrowed(text);
    };
    let trimmed = rest.trim_end();
    let Some(body) = trimmed.strip_suffix(LAST_LINE) else {
        return Cow::Borrowed(text);
    };
    if !(body.is_empty() || body.ends_with('\n')) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(body.to_string())
}

/// For the parser: `text` with both lines blanked (line numbers stay), or the error of
/// a file that has the first line and not the last.
pub fn blank_ends(text: &str) -> Result<Cow<'_, str>, ParseError> {
    if !has_first_line(text) {
        return Ok(Cow::Borrowed(text));
    }
    let mut lines: Vec<&str> = text.split('\n').collect();
    let last = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .unwrap_or(0);
    if last == 0 || lines[last].trim_end_matches('\r') != LAST_LINE {
        return Err(ParseError {
            line: last + 1,
            col: 1,
            message: format!(
                "the file ends at line {} without its last line `{LAST_LINE}`, which its \
                 first line promises: it was cut short (written or copied in part), or \
                 something was added after that line; the whole file is refused",
                last + 1
            ),
        });
    }
    lines[0] = "";
    lines[last] = "";
    Ok(Cow::Owned(lines.join("\n")))
}

fn has_first_line(text: &str) -> bool {
    first_line_off(text).is_some()
}

/// What follows the first line, when `text` starts with it.
fn first_line_off(text: &str) -> Option<&str> {
    let rest = text.strip_prefix(FIRST_LINE)?;
    rest.strip_prefix("\r\n")
        .or_else(|| rest.strip_prefix('\n'))
        .or(if rest.is_empty() { Some("") } else { None })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str =
        "serial_no = 3\nvirtual web {\n    active = 1\n}\nvirtual mail {\n    active = 1\n}\n";

    #[test]
    fn a_written_file_reads_back_to_its_body() {
        let file = with_ends(BODY);
        assert!(file.starts_with(FIRST_LINE) && file.ends_with("# end of lvs.cf\n"));
        assert_eq!(with_ends(&file), file, "added once");
        assert_eq!(without_ends(&file), BODY);
        let parsed = crate::config::parse(&file).unwrap();
        assert_eq!(parsed.config, crate::config::parse(BODY).unwrap().config);
        // Neither line becomes a comment of the model.
        assert_eq!(crate::config::render(&parsed.config), BODY);
        // Trailing blank lines and CRLF line ends are a whole file too.
        let crlf = file.replace('\n', "\r\n") + "\r\n\r\n";
        assert!(crate::config::parse(&crlf).is_ok());
        assert_eq!(with_ends(""), format!("{FIRST_LINE}\n{LAST_LINE}\n"));
        assert_eq!(without_ends(&with_ends("")), "");
    }

    /// Cut between two blocks, the file would read as a valid configuration without
    /// `mail`: it is refused, at its last line, with the reason.
    #[test]
    fn a_file_cut_between_two_blocks_is_refused() {
        let file = with_ends(BODY);
        let cut = &file[..file.find("virtual mail").unwrap()];
        let errors = crate::config::parse(cut).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].line, 5);
        assert!(errors[0].message.contains("cut short"), "{}", errors[0]);
        assert_eq!(without_ends(cut), cut, "nothing taken off a cut file");
        // Something appended after the last line is refused the same way.
        let appended = format!("{file}virtual extra {{\n}}\n");
        assert!(crate::config::parse(&appended).unwrap_err()[0]
            .message
            .contains("added after"));
        // A file without the first line is not held to it (Piranha's, by hand).
        assert!(crate::config::parse(&BODY[..BODY.find("virtual mail").unwrap()]).is_ok());
        // The first line alone: cut right after it.
        assert!(crate::config::parse(&format!("{FIRST_LINE}\n")).is_err());
    }
}
