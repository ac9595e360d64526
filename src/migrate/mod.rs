//! `confd migrate`: moving a confd user's Go text/template templates to this
//! project's Tera templates so they render the same bytes.
//!
//! - [`gotmpl`]: reads a Go template (lexer and parser faithful to Go 1.19's
//!   `text/template/parse`) into a syntax tree with positions, reporting what
//!   Go itself would refuse.

pub mod gotmpl;
