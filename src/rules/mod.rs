//! Watch rules: the query language compiled into a term index, and matching
//! items against it with highlight spans.
//!
//! # Language
//!
//! A rule is a query ([`query::parse_query`], AST in [`ast`]) or the
//! shorthands `any` (OR), `all` (AND) and `none` (NOT (a OR ...)), whose
//! elements are query snippets; an element made only of plain words is a
//! phrase (`North Korea` = `"North Korea"`). `@name` expands to the OR of the
//! alias's elements; a field on the reference applies to every leaf inside
//! that has none of its own. Aliases may use aliases; cycles and unknown
//! names are errors.
//!
//! # Words
//!
//! Text is cut into UAX #29 words holding a letter or digit (links and
//! feed ids: runs of letters and digits, so `www.tass.ru` is `www tass ru`).
//! Each word is folded ([`crate::text::fold`]) and stemmed by its script
//! ([`crate::text::stem`]: English for Latin, Russian for Cyrillic); query
//! words go through the same functions, so `Kursk` matches "KURSK’s" and
//! `Курск` matches "Курской". `=Word` compares the surface form exactly;
//! `demin*` tests the folded, unstemmed word ("mining" stems to `mine`,
//! and `demin*` does not match it).
//!
//! **Hyphens.** Words separated by a single hyphen (`-`, U+2010, U+2011) are
//! indexed as themselves and, joined, as one more token spanning their
//! positions: "de-mining" is `de`, `mining` and `demining`. So `demining`,
//! `deminer` and `"de mining"` all match "de-mining". A hyphenated query
//! word is the phrase of its parts or their joined form: `Jong-un` matches
//! "Jong Un", "Jong-un" and "Jongun". In a feed id "tass-ru" is `tass`,
//! `ru`, `tassru`: `feed:tass` and `feed:tass*` both match it.
//!
//! **Phrases** need consecutive positions (`~N`: up to N other words between
//! each pair, order kept), never cross a blank line (title, summary and
//! content are separate paragraphs), and at slop 0 only whitespace (one
//! line break at most) and hyphens may separate two words: "the north.
//! Korea" is not `"North Korea"`.
//!
//! # Fields
//!
//! title, summary and content form one token stream over
//! [`Document::text`]; `title:` etc. keep the occurrences inside that part
//! (offsets stay into `text`). Link, each author, each category and the feed
//! id are separate streams; their hit offsets index
//! [`Document::field_value`] (values joined by `\n`). NEAR compares
//! positions within one stream. Regexes run on the raw text of their field
//! (each value separately); empty matches are ignored.
//!
//! # Index
//!
//! [`RuleSet::compile`] lowers every rule to an expression over leaves
//! (word stem, exact surface, prefix, phrase, regex), merges leaves that
//! look for the same thing in the same field class into one term, and
//! indexes the terms per field class: stem -> the word term and phrases
//! starting with that stem; surface -> the exact term and exact phrases;
//! folded prefix -> the prefix term (with the set of prefix lengths, so a
//! token costs one lookup per distinct length). Rules whose value can be true with no indexed leaf
//! present (purely negative rules, regex-only rules; three-valued
//! evaluation with regexes unknown) go on an always-check list.
//!
//! # Evaluation
//!
//! [`Document::new`] tokenizes each field once and folds and stems each
//! distinct surface once per thread. [`RuleSet::matches`] looks each
//! distinct surface up once per stream (stem, exact and prefix maps, or
//! the per-thread term cache), verifies phrases from their head token, and
//! records each distinct term's occurrences (positions + char spans) once.
//! The leaves of the terms found mark their rules' leaf masks; a rule with
//! a trigger leaf present (see `triggers` in `engine.rs`: for AND and NEAR
//! only the cheapest side's leaves trigger) or on the always-check list
//! runs a three-valued quick check over its mask (NEAR and regexes
//! unknown); rules not ruled out are evaluated in full: AND/OR/NOT over
//! "has occurrences", NEAR over pairs of occurrences from the two sides
//! (`gap <= N` positions, distinct tokens, ONEAR: left first). A true
//! subtree returns the occurrences that made it true; those become the
//! hits. Regex leaves run only when their rule is evaluated.
//!
//! Pure: this module does no I/O.

pub mod ast;
mod compile;
mod document;
mod engine;
mod fx;
pub mod query;
#[cfg(test)]
mod tests;

pub use ast::Field;
pub use compile::{Aliases, RuleError, RuleLocation, RuleSpec, RuleWarning};
pub use document::{DocFields, Document};
pub use engine::{Hit, RuleMatch, RuleSet};
