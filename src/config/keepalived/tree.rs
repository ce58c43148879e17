//! The statement tree between the two stages: the loader builds [`Node`]s, the mapping
//! reads them, and messages name statements through them.

use super::tokens::Term;

/// One statement: its words and, for a block, the statements inside.
#[derive(Debug, Clone)]
pub(super) struct Node {
    /// Index into the list of files read.
    pub(super) file: usize,
    pub(super) line: usize,
    pub(super) col: usize,
    /// Order of appearance across all files (includes where they stand).
    pub(super) seq: usize,
    pub(super) words: Vec<Term>,
    pub(super) block: Option<Vec<Node>>,
}

impl Node {
    pub(super) fn kw(&self) -> &str {
        self.words.first().map_or("", |w| w.text.as_str())
    }

    pub(super) fn args(&self) -> &[Term] {
        self.words.get(1..).unwrap_or(&[])
    }

    pub(super) fn children(&self) -> &[Node] {
        self.block.as_deref().unwrap_or(&[])
    }

    /// The statement as written (quotes restored where needed), shortened for messages.
    pub(super) fn text(&self) -> String {
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
    pub(super) fn head(&self) -> String {
        match self.block {
            Some(_) => format!("{} {{ … }}", self.text()),
            None => self.kw().to_string(),
        }
    }
}

pub(super) fn shorten(s: &str) -> String {
    const MAX: usize = 60;
    let s: String = s.chars().filter(|c| !c.is_control()).collect();
    if s.chars().count() > MAX {
        format!("{}…", s.chars().take(MAX).collect::<String>())
    } else {
        s
    }
}

/// Words joined by blanks.
pub(super) fn joined(words: &[Term]) -> String {
    words
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Words joined by blanks, shortened for messages.
pub(super) fn join_words(words: &[Term]) -> String {
    shorten(&joined(words))
}
