//! The configuration: a typed model of `lvs.cf` (Piranha's keywords and lvs-director's
//! extensions) with its parser, renderer, validation and keepalived import.
//!
//! Pure code: no file, socket or clock is touched here. Callers read the text and
//! hand it in; `storage` persists the model; the supervisor and web UI consume it.

pub mod diag;
pub mod lexer;
pub mod model;
pub mod parse;
pub mod render;
pub mod services;
pub mod validate;
pub mod value;

pub use diag::{Diagnostic, Scope, Severity, Spans};
pub use model::*;
pub use parse::{parse, value_tokens, ParseError, Parsed};
pub use render::render;
pub use validate::{is_valid, validate};
