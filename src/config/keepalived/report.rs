//! The import warnings: each is placed by the statement it is about (so that sorting
//! puts them in the order of the text, includes spliced in), and the reasons many of
//! them share are worded once. Both the loader and every mapping file add to them.

use super::tree::Node;
use super::Importer;

pub(super) const NOT_VRRP: &str = "not supported by lvs-director's VRRP";
pub(super) const NO_EQUIVALENT: &str = "no lvs-director equivalent";
pub(super) const MAIL: &str =
    "lvs-director configures notification mail once, globally (smtp_server, smtp_to)";
pub(super) const RUN_AS: &str = "commands run as the user of lvs-director's supervisor (pulse)";
/// A warning, placed by the statement it is about.
pub(super) struct Note {
    pub(super) seq: usize,
    pub(super) file: usize,
    pub(super) line: usize,
    pub(super) text: String,
}

pub(super) fn note_at(notes: &mut Vec<Note>, n: &Node, text: String) {
    notes.push(Note {
        seq: n.seq,
        file: n.file,
        line: n.line,
        text,
    });
}

impl<'n> Importer<'n> {
    // ---- warnings ----

    pub(super) fn note(&mut self, n: &Node, text: impl Into<String>) {
        note_at(&mut self.notes, n, text.into());
    }

    pub(super) fn not_imported(&mut self, n: &Node, why: &str) {
        let head = n.head();
        self.note(n, format!("`{head}` not imported: {why}"));
    }

    /// A statement whose value cannot be used; names the value.
    pub(super) fn bad_value(&mut self, n: &Node, why: &str) {
        let text = n.text();
        self.note(n, format!("`{text}` not imported: {why}"));
    }
}
