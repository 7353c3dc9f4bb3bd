//! The watch-rule query parser: a query string -> [`Node`]. Pure: no I/O.
//!
//! # Grammar
//!
//! Precedence, tightest first: `NOT` (and `-`) > `NEAR`/`ONEAR` > `AND`
//! (also written as adjacency) > `OR`. Operators are case-sensitive
//! uppercase words; `and`, `or`, `not` are ordinary words.
//!
//! ```ebnf
//! query     = ws, or_expr, ws ;
//! or_expr   = and_expr, { "OR", and_expr } ;
//! and_expr  = near_expr, { [ "AND" ], near_expr } ;      (* adjacency = AND *)
//! near_expr = unary, { near_op, unary } ;                (* left-associative *)
//! near_op   = ( "NEAR" | "ONEAR" ), "/", digits ;        (* 0 ..= 50 *)
//! unary     = "NOT", unary
//!           | "-", unary                                 (* no space after "-" *)
//!           | primary ;
//! primary   = field, ":", primary                        (* no space after ":" *)
//!           | "(", or_expr, ")"
//!           | phrase | exact | regex | alias | prefix | word ;
//! field     = "title" | "summary" | "content" | "text" | "link"
//!           | "author" | "category" | "feed" ;
//! phrase    = '"', { qchar }, '"', [ "~", digits ] ;    (* slop 0 ..= 50 *)
//! exact     = "=", ( bare | phrase ) ;                   (* no slop on one word *)
//! regex     = "/", { rchar }, "/", [ "i" ] ;             (* non-empty *)
//! alias     = "@", { "a".."z" | "0".."9" | "_" | "-" }- ;
//! prefix    = bare, "*" ;                                (* >= 3 letters/digits *)
//! word      = bare ;                                     (* not an operator *)
//! bare      = wchar - "-", { wchar } ;                   (* holds a letter, digit or mark *)
//! wchar     = letter | digit | mark | "'" | "’" | "-" | "." | "_" ;
//! qchar     = ( char - '"' - "\" ) | '\"' | "\\" | "\", char ;
//! rchar     = ( char - "/" - "\" ) | "\/" | "\", char ;
//! ```
//!
//! # Decisions
//!
//! - A quoted phrase is split on whitespace; with one word it is a plain
//!   term (`"Kursk"` = `Kursk`, `="KN-23"` = `=KN-23`), which is also how a
//!   word that cannot be written bare is written: `"AND"`, `"AT&T"`,
//!   `"example.com/path"`. A slop on one word is an error. Inside quotes,
//!   `\"` and `\\` are escapes; any other backslash is kept as written.
//! - In a regex, `\/` is a slash and is stored without the backslash; any
//!   other `\x` is kept as written for the engine (which validates).
//! - A bare word ends at whitespace, a parenthesis or a quote. A character
//!   that is neither a word character nor syntax (`&`, `,`, `+`, curly
//!   quotes...) is an error suggesting quotes; so are `=`, `@`, `~`, `/`,
//!   `*` glued to the end of a word (`user@example.com`, `a/b`, `de*min`).
//!   `word:` is a field scope; an unknown field name (`https:`, `12:30`) is
//!   an error that lists the fields and suggests quotes.
//! - `*` after a word needs at least 3 letters or digits before it.
//! - `And`/`Or` are flattened: no `And` directly inside an `And` (nor `Or`
//!   in `Or`), whatever the parentheses; a group of one is its content.
//!   So `parse(print(t)) == t` (spans aside) for every tree `t` the parser
//!   returns, and printing a parsed tree is a fixpoint.
//! - Field scopes are pushed down to the leaves (an inner scope wins);
//!   `text:` is kept as `Some(Field::Text)`. A leaf's span covers the leaf
//!   itself (`"a b"~3`, `=X`, `@x`, `/re/i`, `demin*`), not its scope.
//! - Nesting is capped at [`MAX_DEPTH`] both in the source (parentheses,
//!   `NOT`, `-`, scopes) and in the tree (so long `NEAR` chains count too):
//!   nothing recurses deeper than that, here or in the engine.
//! - A query with only negative parts is not a parse error.
//! - Error offsets are byte offsets (at char boundaries) of the offending
//!   token, or the input length when the query ended too early.

use std::fmt;
use std::iter::Peekable;
use std::vec::IntoIter;

use super::ast::{is_core_char, is_word_char, Field, Node, Span, TermKind};

/// The deepest nesting accepted (parentheses, `NOT`, scopes; tree depth).
pub const MAX_DEPTH: usize = 64;
/// The largest `NEAR`/`ONEAR` distance and phrase slop.
pub const MAX_DISTANCE: u32 = 50;

/// The field names in the order the documentation lists them.
const FIELD_LIST: &str = "title, summary, content, text, link, author, category, feed";

/// A query that does not parse: where and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// Byte offset into the query string (at a char boundary).
    pub offset: usize,
    /// What was expected, e.g. "NEAR needs a number, as in NEAR/10".
    pub message: String,
}

impl QueryError {
    fn new(offset: usize, message: impl Into<String>) -> Self {
        QueryError {
            offset,
            message: message.into(),
        }
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for QueryError {}

/// Parses a query; on failure, the first error in the query.
pub fn parse_query(input: &str) -> Result<Node, QueryError> {
    parse_query_all_errors(input).map_err(|errors| {
        errors
            .into_iter()
            .next()
            .unwrap_or_else(|| QueryError::new(0, "invalid query"))
    })
}

/// Parses a query; on failure, every error found, sorted by offset (at
/// least one). Lexical errors (bad words, quotes, numbers, fields, aliases,
/// regexes) are all reported; of the structural ones (parentheses, missing
/// terms) only the first, since what follows it is guesswork.
pub fn parse_query_all_errors(input: &str) -> Result<Node, Vec<QueryError>> {
    let mut lexer = Lexer::new(input);
    lexer.run();
    let Lexer {
        tokens, mut errors, ..
    } = lexer;
    let mut parser = Parser {
        src: input,
        toks: tokens.into_iter().peekable(),
    };
    match parser.query() {
        Ok(node) if errors.is_empty() => return Ok(node),
        Ok(_) => {}
        Err(e) => {
            if !errors.contains(&e) {
                errors.push(e);
            }
        }
    }
    errors.sort_by_key(|e| e.offset);
    Err(errors)
}

// ---------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone)]
enum Leaf {
    Word(String),
    Prefix(String),
    Exact(String),
    Phrase {
        words: Vec<String>,
        slop: u32,
        exact: bool,
    },
    Regex {
        pattern: String,
        case_insensitive: bool,
    },
    Alias(String),
}

#[derive(Debug, Clone)]
enum Tok {
    LParen,
    RParen,
    And,
    Or,
    Not,
    Minus,
    Near {
        distance: u32,
        ordered: bool,
    },
    Field(Field),
    Leaf(Leaf),
    /// Stands in for a term that had a lexical error, so parsing goes on.
    Bad,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    span: Span,
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    tokens: Vec<Token>,
    errors: Vec<QueryError>,
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str) -> Self {
        Lexer {
            src,
            pos: 0,
            tokens: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.bump();
        }
        &self.src[start..self.pos]
    }

    fn push(&mut self, tok: Tok, start: usize) {
        self.tokens.push(Token {
            tok,
            span: start..self.pos,
        });
    }

    fn error(&mut self, offset: usize, message: impl Into<String>) {
        self.errors.push(QueryError::new(offset, message));
    }

    /// After an error: skips the rest of the glued run and leaves a
    /// placeholder term covering `start..`.
    fn bad(&mut self, start: usize) {
        self.eat_while(|c| !c.is_whitespace() && c != '(' && c != ')');
        self.push(Tok::Bad, start);
    }

    fn run(&mut self) {
        while let Some(c) = self.peek() {
            let start = self.pos;
            match c {
                c if c.is_whitespace() => {
                    self.bump();
                }
                '(' | ')' | '-' => {
                    self.bump();
                    let tok = match c {
                        '(' => Tok::LParen,
                        ')' => Tok::RParen,
                        _ => Tok::Minus,
                    };
                    self.push(tok, start);
                }
                '"' => self.quoted(start, false),
                '=' => self.exact(start),
                '/' => self.regex(start),
                '@' => self.alias(start),
                '*' => {
                    self.error(
                        start,
                        "leading wildcards are not supported; write a prefix like demin*",
                    );
                    self.bad(start);
                }
                ':' => {
                    self.error(
                        start,
                        format!("expected a field name before ':' (one of {FIELD_LIST})"),
                    );
                    self.bad(start);
                }
                '~' => {
                    self.error(
                        start,
                        "a slop ~N goes right after a closing quote, as in \"a b\"~5",
                    );
                    self.bad(start);
                }
                c if is_word_char(c) => self.word(start),
                '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{00AB}' | '\u{00BB}' => {
                    self.error(start, "use straight double quotes (\") around a phrase");
                    self.bad(start);
                }
                ',' | ';' => {
                    self.error(
                        start,
                        format!(
                            "unexpected '{c}'; write OR between alternatives, \
                             or put the text in quotes to search for it"
                        ),
                    );
                    self.bad(start);
                }
                c => {
                    self.error(
                        start,
                        format!(
                            "unexpected '{c}'; to search for it, put the text in quotes, \
                             as in \"AT&T\""
                        ),
                    );
                    self.bad(start);
                }
            }
        }
    }

    /// A bare word at `start`: a word, prefix, operator or field scope.
    fn word(&mut self, start: usize) {
        let w = self.eat_while(is_word_char);
        match self.peek() {
            Some('*') => return self.prefix(start, w),
            Some(':') => return self.field(start, w),
            Some('/') if w == "NEAR" || w == "ONEAR" => return self.near(start, w),
            _ => {}
        }
        let tok = match w {
            "AND" => Tok::And,
            "OR" => Tok::Or,
            "NOT" => Tok::Not,
            "NEAR" | "ONEAR" => {
                self.error(start, format!("{w} needs a number, as in {w}/10"));
                Tok::Near {
                    distance: 0,
                    ordered: w == "ONEAR",
                }
            }
            _ if !w.chars().any(is_core_char) => {
                self.error(start, "expected a word with a letter or digit");
                return self.bad(start);
            }
            _ => Tok::Leaf(Leaf::Word(w.to_string())),
        };
        self.push(tok, start);
        if matches!(
            self.tokens.last(),
            Some(Token {
                tok: Tok::Leaf(_),
                ..
            })
        ) {
            self.glued(w);
        }
    }

    /// `w*` with the `*` next.
    fn prefix(&mut self, start: usize, w: &str) {
        self.bump();
        if self.peek().is_some_and(|c| is_word_char(c) || c == '*') {
            self.error(
                self.pos - 1,
                "'*' works only once, at the end of a word, as in demin*",
            );
            return self.bad(start);
        }
        if w.chars().filter(|c| c.is_alphanumeric()).count() < 3 {
            self.error(start, "prefix needs at least 3 letters before *");
            return self.bad(start);
        }
        self.push(Tok::Leaf(Leaf::Prefix(w.to_string())), start);
        self.glued(w);
    }

    /// `w:` with the `:` next.
    fn field(&mut self, start: usize, w: &str) {
        self.bump();
        match Field::from_name(w) {
            Some(f) => self.push(Tok::Field(f), start),
            None => {
                self.eat_while(|c| !c.is_whitespace() && c != '(' && c != ')');
                let text = &self.src[start..self.pos];
                self.error(
                    start,
                    format!(
                        "unknown field '{w}'; the fields are {FIELD_LIST} (to search for \
                         text with ':' in it, put it in quotes: \"{text}\")"
                    ),
                );
                self.push(Tok::Bad, start);
            }
        }
    }

    /// `NEAR/N` or `ONEAR/N` with the `/` next.
    fn near(&mut self, start: usize, w: &str) {
        self.bump();
        let digits_at = self.pos;
        let digits = self.eat_while(|c| c.is_ascii_digit());
        let ordered = w == "ONEAR";
        if digits.is_empty() || self.peek().is_some_and(is_word_char) {
            self.error(start, format!("{w} needs a number, as in {w}/10"));
            self.eat_while(|c| !c.is_whitespace() && c != '(' && c != ')');
            return self.push(
                Tok::Near {
                    distance: 0,
                    ordered,
                },
                start,
            );
        }
        let distance = match number(digits) {
            Some(n) => n,
            None => {
                self.error(
                    digits_at,
                    format!("{w} distance must be at most {MAX_DISTANCE}"),
                );
                0
            }
        };
        self.push(Tok::Near { distance, ordered }, start);
    }

    /// `"..."` (at `start`, or at `start + 1` after `=` when `exact`), with
    /// an optional `~N`.
    fn quoted(&mut self, start: usize, exact: bool) {
        let quote_at = self.pos;
        self.bump();
        let mut text = String::new();
        loop {
            match self.bump() {
                None => {
                    self.error(quote_at, "unterminated quote: expected a closing '\"'");
                    return self.push(Tok::Bad, start);
                }
                Some('"') => break,
                Some('\\') => match self.peek() {
                    Some(c @ ('"' | '\\')) => {
                        self.bump();
                        text.push(c);
                    }
                    _ => text.push('\\'),
                },
                Some(c) => text.push(c),
            }
        }
        let mut slop = None;
        if self.peek() == Some('~') {
            let tilde_at = self.pos;
            self.bump();
            let digits_at = self.pos;
            let digits = self.eat_while(|c| c.is_ascii_digit());
            if digits.is_empty() || self.peek().is_some_and(is_word_char) {
                self.error(tilde_at, "~ needs a number, as in \"a b\"~5");
                return self.bad(start);
            }
            match number(digits) {
                Some(n) => slop = Some((n, tilde_at)),
                None => {
                    self.error(
                        digits_at,
                        format!("phrase slop must be at most {MAX_DISTANCE}"),
                    );
                    return self.bad(start);
                }
            }
        }
        let mut words: Vec<String> = text.split_whitespace().map(str::to_string).collect();
        let leaf = match (words.len(), slop) {
            (0, _) => {
                self.error(quote_at, "empty phrase: expected words between the quotes");
                return self.bad(start);
            }
            (1, Some((_, tilde_at))) => {
                self.error(tilde_at, "a slop ~N needs a phrase of two or more words");
                return self.bad(start);
            }
            (1, None) => {
                let w = words.pop().unwrap_or_default();
                if exact {
                    Leaf::Exact(w)
                } else {
                    Leaf::Word(w)
                }
            }
            _ => Leaf::Phrase {
                words,
                slop: slop.map_or(0, |(n, _)| n),
                exact,
            },
        };
        self.push(Tok::Leaf(leaf), start);
        self.glued("");
    }

    /// `=word` or `="..."`.
    fn exact(&mut self, start: usize) {
        self.bump();
        match self.peek() {
            Some('"') => self.quoted(start, true),
            Some(c) if is_word_char(c) => {
                let w = self.eat_while(is_word_char);
                if !w.chars().any(is_core_char) {
                    self.error(start, "expected a word with a letter or digit after '='");
                    return self.bad(start);
                }
                if self.peek() == Some('*') {
                    self.error(self.pos, "an exact term (=) cannot end in *");
                    return self.bad(start);
                }
                self.push(Tok::Leaf(Leaf::Exact(w.to_string())), start);
                self.glued("");
            }
            _ => {
                self.error(
                    start,
                    "expected a word or a quoted phrase right after '=', \
                     as in =KN-23 or =\"Exact Phrase\"",
                );
                self.bad(start);
            }
        }
    }

    /// `/pattern/` or `/pattern/i`.
    fn regex(&mut self, start: usize) {
        self.bump();
        let mut pattern = String::new();
        loop {
            match self.bump() {
                None => {
                    self.error(start, "unterminated regex: expected a closing '/'");
                    return self.push(Tok::Bad, start);
                }
                Some('/') => break,
                Some('\\') => match self.bump() {
                    Some('/') => pattern.push('/'),
                    Some(c) => {
                        pattern.push('\\');
                        pattern.push(c);
                    }
                    None => {
                        self.error(start, "unterminated regex: expected a closing '/'");
                        return self.push(Tok::Bad, start);
                    }
                },
                Some(c) => pattern.push(c),
            }
        }
        let flags_at = self.pos;
        let flags = self.eat_while(is_word_char);
        let case_insensitive = match flags {
            "" => false,
            "i" => true,
            _ => {
                self.error(
                    flags_at,
                    format!("unknown regex flag '{flags}'; only i (ignore case) is supported"),
                );
                return self.bad(start);
            }
        };
        if pattern.is_empty() {
            self.error(start, "empty regex: expected a pattern between the slashes");
            return self.bad(start);
        }
        self.push(
            Tok::Leaf(Leaf::Regex {
                pattern,
                case_insensitive,
            }),
            start,
        );
        self.glued("");
    }

    /// `@name`.
    fn alias(&mut self, start: usize) {
        self.bump();
        let name = self.eat_while(is_word_char);
        if name.is_empty() {
            self.error(start, "expected an alias name after '@', as in @kursk");
            return self.bad(start);
        }
        if !name
            .chars()
            .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'))
        {
            self.error(
                start,
                format!("alias names use only a-z, 0-9, '_' and '-' (not '@{name}')"),
            );
            return self.bad(start);
        }
        self.push(Tok::Leaf(Leaf::Alias(name.to_string())), start);
        self.glued("");
    }

    /// After a term: syntax characters glued to its end are mistakes
    /// (`user@example.com`, `a/b`, `x=y`). `word` is the bare word just
    /// read, if any.
    fn glued(&mut self, word: &str) {
        let at = self.pos;
        let Some(c) = self.peek() else { return };
        let message = match c {
            '/' if word.eq_ignore_ascii_case("near") || word.eq_ignore_ascii_case("onear") => {
                format!(
                    "operators are uppercase: write {}/N",
                    word.to_ascii_uppercase()
                )
            }
            '/' => "unexpected '/' right after a term; put the text in quotes (\"a/b\"), \
                    or leave a space before a /regex/"
                .to_string(),
            '*' => "unexpected '*'; a wildcard goes once at the end of a word, as in demin*"
                .to_string(),
            '=' | '@' | '~' | ':' => format!(
                "unexpected '{c}' right after a term; to search for it, put the text in quotes"
            ),
            _ => return,
        };
        self.error(at, message);
        self.eat_while(|c| !c.is_whitespace() && c != '(' && c != ')');
    }
}

/// A distance or slop `0..=MAX_DISTANCE` from ASCII digits; `None` if larger.
fn number(digits: &str) -> Option<u32> {
    let mut n: u32 = 0;
    for d in digits.bytes() {
        n = n.checked_mul(10)?.checked_add(u32::from(d - b'0'))?;
        if n > MAX_DISTANCE {
            return None;
        }
    }
    Some(n)
}

// ---------------------------------------------------------------------------
// Parser

/// A subtree and its depth (a leaf is 1).
type Parsed = (Node, usize);

struct Parser<'a> {
    src: &'a str,
    toks: Peekable<IntoIter<Token>>,
}

fn starts_term(tok: &Tok) -> bool {
    matches!(
        tok,
        Tok::LParen | Tok::Not | Tok::Minus | Tok::Field(_) | Tok::Leaf(_) | Tok::Bad
    )
}

fn too_deep(offset: usize) -> QueryError {
    QueryError::new(
        offset,
        format!("query nests too deeply (at most {MAX_DEPTH} levels)"),
    )
}

impl Parser<'_> {
    /// Offset of the next token, or the end of the input.
    fn offset(&mut self) -> usize {
        let end = self.src.len();
        self.toks.peek().map_or(end, |t| t.span.start)
    }

    fn next_starts_term(&mut self) -> bool {
        self.toks.peek().is_some_and(|t| starts_term(&t.tok))
    }

    /// Errors unless a term follows the operator `op`.
    fn term_after(&mut self, op: &str) -> Result<(), QueryError> {
        if self.next_starts_term() {
            Ok(())
        } else {
            Err(QueryError::new(
                self.offset(),
                format!("expected a term after {op}"),
            ))
        }
    }

    fn query(&mut self) -> Result<Node, QueryError> {
        if self.toks.peek().is_none() {
            return Err(QueryError::new(0, "empty query"));
        }
        let (node, _) = self.or_expr(0, None)?;
        match self.toks.peek() {
            None => Ok(node),
            Some(t) => Err(QueryError::new(
                t.span.start,
                "unexpected ')' with no matching '('",
            )),
        }
    }

    fn or_expr(&mut self, depth: usize, scope: Option<Field>) -> Result<Parsed, QueryError> {
        let at = self.offset();
        let mut parts = vec![self.and_expr(depth, scope)?];
        while matches!(self.toks.peek(), Some(Token { tok: Tok::Or, .. })) {
            self.toks.next();
            self.term_after("OR")?;
            parts.push(self.and_expr(depth, scope)?);
        }
        combine(parts, false, at)
    }

    fn and_expr(&mut self, depth: usize, scope: Option<Field>) -> Result<Parsed, QueryError> {
        let at = self.offset();
        let mut parts = vec![self.near_expr(depth, scope)?];
        loop {
            match self.toks.peek() {
                Some(Token { tok: Tok::And, .. }) => {
                    self.toks.next();
                    self.term_after("AND")?;
                }
                Some(t) if starts_term(&t.tok) => {}
                _ => break,
            }
            parts.push(self.near_expr(depth, scope)?);
        }
        combine(parts, true, at)
    }

    fn near_expr(&mut self, depth: usize, scope: Option<Field>) -> Result<Parsed, QueryError> {
        let (mut left, mut d) = self.unary(depth, scope)?;
        while let Some(Token {
            tok: Tok::Near { distance, ordered },
            span,
        }) = self.toks.peek().cloned()
        {
            self.toks.next();
            self.term_after(&self.src[span.clone()])?;
            let (right, rd) = self.unary(depth, scope)?;
            d = 1 + d.max(rd);
            if d > MAX_DEPTH {
                return Err(too_deep(span.start));
            }
            left = Node::Near {
                left: Box::new(left),
                right: Box::new(right),
                distance,
                ordered,
            };
        }
        Ok((left, d))
    }

    fn unary(&mut self, depth: usize, scope: Option<Field>) -> Result<Parsed, QueryError> {
        let Some(t) = self.toks.peek().cloned() else {
            return self.primary(depth, scope);
        };
        match t.tok {
            Tok::Not => {
                self.toks.next();
                self.term_after("NOT")?;
            }
            Tok::Minus => {
                self.toks.next();
                let glued = self
                    .toks
                    .peek()
                    .is_some_and(|n| starts_term(&n.tok) && n.span.start == t.span.end);
                if !glued {
                    return Err(QueryError::new(
                        t.span.start,
                        "expected a term right after '-', with no space, as in -hockey",
                    ));
                }
            }
            _ => return self.primary(depth, scope),
        }
        if depth >= MAX_DEPTH {
            return Err(too_deep(t.span.start));
        }
        let (inner, d) = self.unary(depth + 1, scope)?;
        if d + 1 > MAX_DEPTH {
            return Err(too_deep(t.span.start));
        }
        Ok((Node::Not(Box::new(inner)), d + 1))
    }

    fn primary(&mut self, depth: usize, scope: Option<Field>) -> Result<Parsed, QueryError> {
        let Some(t) = self.toks.next() else {
            return Err(QueryError::new(self.src.len(), "expected a term"));
        };
        let start = t.span.start;
        let leaf = match t.tok {
            Tok::LParen => return self.group(depth, scope, start),
            Tok::Field(f) => {
                let ok = self.toks.peek().is_some_and(|n| {
                    n.span.start == t.span.end
                        && matches!(n.tok, Tok::LParen | Tok::Field(_) | Tok::Leaf(_) | Tok::Bad)
                });
                if !ok {
                    return Err(QueryError::new(
                        start,
                        format!(
                            "expected a term, phrase, regex, alias or group right after \
                             '{}:', with no space",
                            f.name()
                        ),
                    ));
                }
                if depth >= MAX_DEPTH {
                    return Err(too_deep(start));
                }
                return self.primary(depth + 1, Some(f));
            }
            Tok::Leaf(leaf) => leaf,
            Tok::Bad => Leaf::Word(String::new()),
            Tok::RParen => {
                return Err(QueryError::new(
                    start,
                    "unexpected ')' with no matching '('",
                ))
            }
            Tok::And | Tok::Or | Tok::Near { .. } => {
                return Err(QueryError::new(
                    start,
                    format!("expected a term before {}", &self.src[t.span.clone()]),
                ))
            }
            Tok::Not | Tok::Minus => return Err(QueryError::new(start, "expected a term")),
        };
        let field = scope;
        let span = t.span;
        let node = match leaf {
            Leaf::Word(w) => Node::Term {
                field,
                kind: TermKind::Word(w),
                span,
            },
            Leaf::Prefix(w) => Node::Term {
                field,
                kind: TermKind::Prefix(w),
                span,
            },
            Leaf::Exact(w) => Node::Term {
                field,
                kind: TermKind::Exact(w),
                span,
            },
            Leaf::Phrase { words, slop, exact } => Node::Phrase {
                field,
                words,
                slop,
                exact,
                span,
            },
            Leaf::Regex {
                pattern,
                case_insensitive,
            } => Node::Regex {
                field,
                pattern,
                case_insensitive,
                span,
            },
            Leaf::Alias(name) => Node::Alias { field, name, span },
        };
        Ok((node, 1))
    }

    /// After `(` at `open`.
    fn group(
        &mut self,
        depth: usize,
        scope: Option<Field>,
        open: usize,
    ) -> Result<Parsed, QueryError> {
        let col = self.src[..open].chars().count() + 1;
        if depth >= MAX_DEPTH {
            return Err(too_deep(open));
        }
        match self.toks.peek() {
            Some(Token {
                tok: Tok::RParen, ..
            }) => {
                return Err(QueryError::new(
                    open,
                    "empty group '()': expected a term inside",
                ))
            }
            Some(t) if starts_term(&t.tok) => {}
            Some(_) => {
                let at = self.offset();
                return Err(QueryError::new(at, "expected a term after '('"));
            }
            None => {
                return Err(QueryError::new(
                    self.src.len(),
                    format!(
                        "expected ')' to close the '(' opened at character {col} of this query"
                    ),
                ))
            }
        }
        let inner = self.or_expr(depth + 1, scope)?;
        match self.toks.next() {
            Some(Token {
                tok: Tok::RParen, ..
            }) => Ok(inner),
            other => Err(QueryError::new(
                other.map_or(self.src.len(), |t| t.span.start),
                format!("expected ')' to close the '(' opened at character {col} of this query"),
            )),
        }
    }
}

/// `And`/`Or` of `parts` (a single part is returned as is), flattening
/// children of the same kind; `at` is where the expression starts.
fn combine(parts: Vec<Parsed>, and: bool, at: usize) -> Result<Parsed, QueryError> {
    if parts.len() == 1 {
        if let Some(part) = parts.into_iter().next() {
            return Ok(part);
        }
        return Err(QueryError::new(at, "expected a term"));
    }
    let mut children = Vec::with_capacity(parts.len());
    let mut depth = 0;
    for (node, d) in parts {
        match node {
            Node::And(v) if and => {
                children.extend(v);
                depth = depth.max(d - 1);
            }
            Node::Or(v) if !and => {
                children.extend(v);
                depth = depth.max(d - 1);
            }
            node => {
                children.push(node);
                depth = depth.max(d);
            }
        }
    }
    if depth + 1 > MAX_DEPTH {
        return Err(too_deep(at));
    }
    let node = if and {
        Node::And(children)
    } else {
        Node::Or(children)
    };
    Ok((node, depth + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn word(field: Option<Field>, w: &str) -> Node {
        Node::Term {
            field,
            kind: TermKind::Word(w.to_string()),
            span: 0..0,
        }
    }

    fn w(s: &str) -> Node {
        word(None, s)
    }

    fn p(input: &str) -> Node {
        match parse_query(input) {
            Ok(n) => n.without_spans(),
            Err(e) => panic!("{input:?} failed: {e:?}"),
        }
    }

    fn err(input: &str) -> QueryError {
        match parse_query(input) {
            Ok(n) => panic!("{input:?} parsed as {n:?}"),
            Err(e) => e,
        }
    }

    #[track_caller]
    fn assert_err(input: &str, offset: usize, needle: &str) {
        let e = err(input);
        assert_eq!(e.offset, offset, "{input:?}: {e:?}");
        assert!(e.message.contains(needle), "{input:?}: {e:?}");
    }

    fn near(l: Node, r: Node, distance: u32, ordered: bool) -> Node {
        Node::Near {
            left: Box::new(l),
            right: Box::new(r),
            distance,
            ordered,
        }
    }

    fn not(n: Node) -> Node {
        Node::Not(Box::new(n))
    }

    fn phrase(field: Option<Field>, words: &[&str], slop: u32, exact: bool) -> Node {
        Node::Phrase {
            field,
            words: words.iter().map(|s| s.to_string()).collect(),
            slop,
            exact,
            span: 0..0,
        }
    }

    fn term(field: Option<Field>, kind: TermKind) -> Node {
        Node::Term {
            field,
            kind,
            span: 0..0,
        }
    }

    #[test]
    fn words() {
        for s in [
            "Kursk",
            "Kim",
            "U.S.",
            "KN-23",
            "Kursk's",
            "Kursk’s",
            "Курск",
            "über",
        ] {
            assert_eq!(p(s), w(s));
        }
        assert_eq!(p("e\u{301}te"), w("e\u{301}te"));
        assert_eq!(p("Kim Jong-un"), Node::And(vec![w("Kim"), w("Jong-un")]));
        // Lowercase operators are words.
        assert_eq!(
            p("rock and roll or not"),
            Node::And(vec![w("rock"), w("and"), w("roll"), w("or"), w("not")])
        );
        assert_eq!(p("  Kursk\n"), w("Kursk"));
    }

    #[test]
    fn exact_and_prefix() {
        assert_eq!(p("=Mining"), term(None, TermKind::Exact("Mining".into())));
        assert_eq!(p("=\"KN-23\""), term(None, TermKind::Exact("KN-23".into())));
        assert_eq!(p("=AND"), term(None, TermKind::Exact("AND".into())));
        assert_eq!(
            p("=\"Exact Phrase\""),
            phrase(None, &["Exact", "Phrase"], 0, true)
        );
        assert_eq!(p("demin*"), term(None, TermKind::Prefix("demin".into())));
        assert_eq!(p("сапер*"), term(None, TermKind::Prefix("сапер".into())));
        assert_eq!(p("AND*"), term(None, TermKind::Prefix("AND".into())));
    }

    #[test]
    fn phrases() {
        assert_eq!(
            p("\"North  Korea\""),
            phrase(None, &["North", "Korea"], 0, false)
        );
        assert_eq!(p("\"a b\"~5"), phrase(None, &["a", "b"], 5, false));
        assert_eq!(p("\"a b\"~50"), phrase(None, &["a", "b"], 50, false));
        assert_eq!(p("\"a b\"~0"), phrase(None, &["a", "b"], 0, false));
        assert_eq!(p("=\"a b\"~2"), phrase(None, &["a", "b"], 2, true));
        assert_eq!(
            p(r#""say \"hi\" c:\\d""#),
            phrase(None, &["say", "\"hi\"", "c:\\d"], 0, false)
        );
        assert_eq!(p(r#""a\nb""#), w("a\\nb"));
        // One word in quotes is a word, which is how operators are searched.
        assert_eq!(p("\"Kursk\""), w("Kursk"));
        assert_eq!(p("\"AND\""), w("AND"));
        assert_eq!(p("\"AT&T\""), w("AT&T"));
        assert_eq!(
            p("\"a b\" c"),
            Node::And(vec![phrase(None, &["a", "b"], 0, false), w("c")])
        );
    }

    #[test]
    fn regex_and_alias() {
        let re = |pattern: &str, ci| Node::Regex {
            field: None,
            pattern: pattern.into(),
            case_insensitive: ci,
            span: 0..0,
        };
        assert_eq!(p(r"/KN-\d+/"), re(r"KN-\d+", false));
        assert_eq!(p(r"/kn-\d+/i"), re(r"kn-\d+", true));
        assert_eq!(p(r"/a\/b/"), re("a/b", false));
        assert_eq!(p(r"/a\\/"), re(r"a\\", false));
        assert_eq!(p("/a b/ c"), Node::And(vec![re("a b", false), w("c")]));
        let alias = |name: &str| Node::Alias {
            field: None,
            name: name.into(),
            span: 0..0,
        };
        assert_eq!(p("@kursk"), alias("kursk"));
        assert_eq!(p("@kn-23_x"), alias("kn-23_x"));
    }

    #[test]
    fn operators_and_precedence() {
        assert_eq!(p("a AND b"), Node::And(vec![w("a"), w("b")]));
        assert_eq!(p("a OR b OR c"), Node::Or(vec![w("a"), w("b"), w("c")]));
        assert_eq!(
            p("a b OR c"),
            Node::Or(vec![Node::And(vec![w("a"), w("b")]), w("c")])
        );
        assert_eq!(
            p("a OR b c"),
            Node::Or(vec![w("a"), Node::And(vec![w("b"), w("c")])])
        );
        assert_eq!(
            p("a NEAR/3 b c"),
            Node::And(vec![near(w("a"), w("b"), 3, false), w("c")])
        );
        assert_eq!(p("NOT a NEAR/3 b"), near(not(w("a")), w("b"), 3, false));
        assert_eq!(
            p("a NEAR/3 b NEAR/4 c"),
            near(near(w("a"), w("b"), 3, false), w("c"), 4, false)
        );
        assert_eq!(p("a ONEAR/0 b"), near(w("a"), w("b"), 0, true));
        assert_eq!(
            p("@shoigu NEAR/12 (Pyongyang OR \"North Korea\")"),
            near(
                Node::Alias {
                    field: None,
                    name: "shoigu".into(),
                    span: 0..0
                },
                Node::Or(vec![
                    w("Pyongyang"),
                    phrase(None, &["North", "Korea"], 0, false)
                ]),
                12,
                false
            )
        );
        assert_eq!(p("a -b"), Node::And(vec![w("a"), not(w("b"))]));
        assert_eq!(p("a NOT b"), Node::And(vec![w("a"), not(w("b"))]));
        assert_eq!(p("--a"), not(not(w("a"))));
        assert_eq!(p("NOT(a)"), not(w("a")));
        assert_eq!(p("-(a OR b)"), not(Node::Or(vec![w("a"), w("b")])));
        // Only negative: fine for the parser.
        assert_eq!(p("-a"), not(w("a")));
        // Flattening, whatever the parentheses.
        assert_eq!(
            p("a AND (b AND c)"),
            Node::And(vec![w("a"), w("b"), w("c")])
        );
        assert_eq!(p("(a OR b) OR (c OR d)"), p("a OR b OR c OR d"));
        assert_eq!(p("((a))"), w("a"));
        assert_eq!(
            p("a (b OR c)"),
            Node::And(vec![w("a"), Node::Or(vec![w("b"), w("c")])])
        );
    }

    #[test]
    fn fields() {
        let t = Some(Field::Title);
        assert_eq!(p("title:Kursk"), word(t, "Kursk"));
        assert_eq!(p("text:Kursk"), word(Some(Field::Text), "Kursk"));
        assert_eq!(
            p("title:(a OR summary:b) c"),
            Node::And(vec![
                Node::Or(vec![word(t, "a"), word(Some(Field::Summary), "b")]),
                w("c")
            ])
        );
        assert_eq!(
            p("title:@kursk -title:(hockey OR football)"),
            Node::And(vec![
                Node::Alias {
                    field: t,
                    name: "kursk".into(),
                    span: 0..0
                },
                not(Node::Or(vec![word(t, "hockey"), word(t, "football")]))
            ])
        );
        assert_eq!(
            p("feed:\"a b\""),
            phrase(Some(Field::Feed), &["a", "b"], 0, false)
        );
        assert_eq!(
            p("link:\"example.com/x\""),
            word(Some(Field::Link), "example.com/x")
        );
        assert_eq!(p("title:summary:a"), word(Some(Field::Summary), "a"));
        assert_eq!(
            p("author:=Smith"),
            term(Some(Field::Author), TermKind::Exact("Smith".into()))
        );
        for f in Field::ALL {
            assert_eq!(p(&format!("{}:x", f.name())), word(Some(f), "x"));
        }
    }

    #[test]
    fn spans() {
        let n = parse_query("title:\"a b\"~3 OR =X @al /r/i dem*").ok();
        let Some(Node::Or(v)) = n else {
            panic!("{n:?}")
        };
        let Node::Phrase { span, .. } = &v[0] else {
            panic!()
        };
        assert_eq!(span.clone(), 6..13);
        let Node::And(v) = &v[1] else { panic!() };
        let spans: Vec<Span> = v
            .iter()
            .map(|n| match n {
                Node::Term { span, .. } | Node::Alias { span, .. } | Node::Regex { span, .. } => {
                    span.clone()
                }
                _ => panic!(),
            })
            .collect();
        assert_eq!(spans, vec![17..19, 20..23, 24..28, 29..33]);
    }

    #[test]
    fn errors() {
        assert_err("", 0, "empty query");
        assert_err("   ", 0, "empty query");
        assert_err("a NEAR b", 2, "NEAR needs a number, as in NEAR/10");
        assert_err("a NEAR/ b", 2, "NEAR needs a number");
        assert_err("a NEAR/x b", 2, "NEAR needs a number");
        assert_err("a ONEAR/3x b", 2, "ONEAR needs a number");
        assert_err("a NEAR/51 b", 7, "NEAR distance must be at most 50");
        assert_err("a NEAR/99999999999999999999 b", 7, "at most 50");
        assert_err("a near/5 b", 6, "operators are uppercase: write NEAR/N");
        assert_err("a NEAR/5", 8, "expected a term after NEAR/5");
        assert_err("NEAR/5 a", 0, "expected a term before NEAR/5");
        assert_err("de*", 0, "prefix needs at least 3 letters before *");
        assert_err("U.S*", 0, "at least 3 letters");
        assert_err(
            "*mining",
            0,
            "leading wildcards are not supported; write a prefix like demin*",
        );
        assert_err("de*min", 2, "at the end of a word");
        assert_err("demin**", 5, "at the end of a word");
        assert_err("=foo*", 4, "exact term");
        assert_err("\"a b\"~51", 6, "slop must be at most 50");
        assert_err("\"a b\"~", 5, "~ needs a number");
        assert_err("\"a\"~2", 3, "two or more words");
        assert_err("\"\"", 0, "empty phrase");
        assert_err("a \"b c", 2, "unterminated quote");
        assert_err("a \"b c\\\"", 2, "unterminated quote");
        assert_err("a /b c", 2, "unterminated regex");
        assert_err("a /b\\/", 2, "unterminated regex");
        assert_err("//", 0, "empty regex");
        assert_err("/a/x", 3, "unknown regex flag 'x'");
        assert_err("/a/ig", 3, "unknown regex flag 'ig'");
        assert_err("@", 0, "expected an alias name");
        assert_err("@Kursk", 0, "alias names use only a-z");
        assert_err("@a.b", 0, "alias names use only a-z");
        assert_err("a AND", 5, "expected a term after AND");
        assert_err("a AND OR b", 6, "expected a term after AND");
        assert_err("a OR", 4, "expected a term after OR");
        assert_err("a OR )", 5, "expected a term after OR");
        assert_err("AND a", 0, "expected a term before AND");
        assert_err("OR a", 0, "expected a term before OR");
        assert_err("NOT", 3, "expected a term after NOT");
        assert_err("a NOT", 5, "expected a term after NOT");
        assert_err("a -", 2, "expected a term right after '-'");
        assert_err("a - b", 2, "expected a term right after '-'");
        assert_err(
            "(a OR b",
            7,
            "expected ')' to close the '(' opened at character 1 of this query",
        );
        assert_err(
            "x (a OR (b)",
            11,
            "expected ')' to close the '(' opened at character 3 of this query",
        );
        assert_err(
            "Курск (a",
            13,
            "expected ')' to close the '(' opened at character 7 of this query",
        );
        assert_err(
            "(",
            1,
            "expected ')' to close the '(' opened at character 1 of this query",
        );
        assert_err("( AND a)", 2, "expected a term after '('");
        assert_err("a)", 1, "unexpected ')' with no matching '('");
        assert_err(")", 0, "unexpected ')'");
        assert_err("a ()", 2, "empty group");
        assert_err("Title:x", 0, "unknown field 'Title'; the fields are title, summary, content, text, link, author, category, feed");
        assert_err("https://example.com/a", 0, "\"https://example.com/a\"");
        assert_err("at 12:30", 3, "unknown field '12'");
        assert_err(":x", 0, "expected a field name before ':'");
        assert_err("title: x", 0, "right after 'title:', with no space");
        assert_err("title:", 0, "right after 'title:'");
        assert_err("title:-x", 0, "right after 'title:'");
        assert_err("title:NOT x", 0, "right after 'title:'");
        assert_err("AT&T", 2, "unexpected '&'");
        assert_err("a, b", 1, "write OR between alternatives");
        assert_err("\u{201C}North Korea\u{201D}", 0, "straight double quotes");
        assert_err("user@example.com", 4, "unexpected '@' right after a term");
        assert_err("a/b", 1, "unexpected '/' right after a term");
        assert_err("a=b", 1, "unexpected '='");
        assert_err("a ~3", 2, "a slop ~N goes right after a closing quote");
        assert_err("\"a b\"*", 5, "unexpected '*'");
        assert_err("...", 0, "letter or digit");
        assert_err("= x", 0, "right after '='");
        assert_err("=", 0, "right after '='");
    }

    #[test]
    fn all_errors() {
        let errs = match parse_query_all_errors("a NEAR b AND @X OR de* AND") {
            Err(e) => e,
            Ok(n) => panic!("{n:?}"),
        };
        let offsets: Vec<usize> = errs.iter().map(|e| e.offset).collect();
        assert_eq!(offsets, vec![2, 13, 19, 26], "{errs:?}");
        assert!(errs[3].message.contains("after AND"));
        assert_eq!(parse_query("a NEAR b AND @X").err(), errs.first().cloned());
        assert!(parse_query_all_errors("a OR b").is_ok());
    }

    #[test]
    fn nesting_is_capped() {
        let ok = format!("{}a{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert_eq!(p(&ok), w("a"));
        let deep = format!("{}a{}", "(".repeat(100_000), ")".repeat(100_000));
        assert_err(&deep, MAX_DEPTH, "nests too deeply");
        assert!(err(&"NOT ".repeat(100_000))
            .message
            .contains("nests too deeply"));
        assert!(err(&"-".repeat(100_000))
            .message
            .contains("nests too deeply"));
        assert!(err(&"title:".repeat(100_000))
            .message
            .contains("nests too deeply"));
        let chain = format!("a{}", " NEAR/1 b".repeat(100));
        assert!(err(&chain).message.contains("nests too deeply"));
        let chain = format!("a{}", " NEAR/1 b".repeat(MAX_DEPTH - 1));
        let n = p(&chain);
        assert_eq!(p(&n.to_string()), n);
        // Long flat lists are fine.
        let flat = vec!["a"; 100_000].join(" OR ");
        assert!(matches!(p(&flat), Node::Or(v) if v.len() == 100_000));
        // Alternating operators nest through precedence, and are capped.
        let mut s = String::from("a");
        for i in 0..200 {
            s = format!("({s} {} b)", if i % 2 == 0 { "AND" } else { "OR" });
        }
        assert!(err(&s).message.contains("nests too deeply"));
    }

    #[test]
    fn display_round_trip_examples() {
        for s in [
            "@demining AND @kursk",
            "@shoigu NEAR/12 (Pyongyang OR \"North Korea\" OR Kim OR Пхеньян OR КНДР)",
            "title:@kursk -title:(hockey OR football)",
            "=\"KN-23\" OR =\"KN-24\"",
            "\"AND\" \"-x\" \"a\\\\b\" =\"a&b\" =-x \"x\\\"y\"",
            r#"title:/a\/b\\/i OR text:="a b"~3"#,
            "NOT NOT a NEAR/3 -b ONEAR/2 (c OR d e)",
        ] {
            let n = p(s);
            let printed = n.to_string();
            assert_eq!(p(&printed), n, "{s:?} -> {printed:?}");
        }
        assert_eq!(
            p("a b OR c NEAR/3 d").to_string(),
            "((a AND b) OR (c NEAR/3 d))"
        );
        assert_eq!(p("\"AND\"").to_string(), "\"AND\"");
        assert_eq!(p("=\"a&b\"").to_string(), "=\"a&b\"");
    }

    // ---- property tests ----

    fn field() -> impl Strategy<Value = Option<Field>> {
        prop_oneof![
            Just(None),
            prop::sample::select(Field::ALL.to_vec()).prop_map(Some)
        ]
    }

    /// Any word the parser can store: bare-looking ones, operators, and
    /// arbitrary non-whitespace text (which prints quoted).
    fn any_word() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-zА-Яа-я0-9][A-Za-z0-9'.’_-]{0,6}",
            prop::sample::select(vec!["AND", "OR", "NOT", "NEAR", "ONEAR", "-x", "title:"])
                .prop_map(str::to_string),
            "\\S{1,6}",
        ]
    }

    fn leaf() -> impl Strategy<Value = Node> {
        let kind = prop_oneof![
            any_word().prop_map(TermKind::Word),
            any_word().prop_map(TermKind::Exact),
            "[A-Za-zа-я0-9]{3}[A-Za-z0-9'.-]{0,4}".prop_map(TermKind::Prefix),
        ];
        let term = (field(), kind).prop_map(|(field, kind)| Node::Term {
            field,
            kind,
            span: 0..0,
        });
        let phrase = (
            field(),
            prop::collection::vec(any_word(), 2..4),
            0..=MAX_DISTANCE,
            any::<bool>(),
        )
            .prop_map(|(field, words, slop, exact)| Node::Phrase {
                field,
                words,
                slop,
                exact,
                span: 0..0,
            });
        let piece = prop_oneof!["[^\\\\]", "\\\\[^/]"];
        let regex = (field(), prop::collection::vec(piece, 1..5), any::<bool>()).prop_map(
            |(field, pieces, case_insensitive)| Node::Regex {
                field,
                pattern: pieces.concat(),
                case_insensitive,
                span: 0..0,
            },
        );
        let alias = (field(), "[a-z0-9_-]{1,8}").prop_map(|(field, name)| Node::Alias {
            field,
            name,
            span: 0..0,
        });
        prop_oneof![4 => term, 2 => phrase, 1 => regex, 1 => alias]
    }

    /// What the parser does to a tree: flatten same-kind `And`/`Or`.
    fn canon(n: Node) -> Node {
        let flat = |v: Vec<Node>, and: bool| {
            let mut out = Vec::new();
            for c in v.into_iter().map(canon) {
                match c {
                    Node::And(cs) if and => out.extend(cs),
                    Node::Or(cs) if !and => out.extend(cs),
                    c => out.push(c),
                }
            }
            out
        };
        match n {
            Node::And(v) => Node::And(flat(v, true)),
            Node::Or(v) => Node::Or(flat(v, false)),
            Node::Not(c) => Node::Not(Box::new(canon(*c))),
            Node::Near {
                left,
                right,
                distance,
                ordered,
            } => near(canon(*left), canon(*right), distance, ordered),
            leaf => leaf,
        }
    }

    fn tree() -> impl Strategy<Value = Node> {
        leaf()
            .prop_recursive(5, 48, 4, |inner| {
                prop_oneof![
                    inner.clone().prop_map(|n| Node::Not(Box::new(n))),
                    prop::collection::vec(inner.clone(), 2..4).prop_map(Node::And),
                    prop::collection::vec(inner.clone(), 2..4).prop_map(Node::Or),
                    (inner.clone(), inner, 0..=MAX_DISTANCE, any::<bool>())
                        .prop_map(|(l, r, d, o)| near(l, r, d, o)),
                ]
            })
            .prop_map(canon)
    }

    /// Query-like strings: mostly syntax.
    fn query_like() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            prop::sample::select(vec![
                " ",
                " ",
                "(",
                ")",
                "\"",
                "=",
                "*",
                "/",
                "@",
                "~",
                ":",
                "-",
                "\\",
                "AND ",
                " OR ",
                "NOT ",
                " NEAR/",
                "ONEAR/3 ",
                "title:",
                "text:",
                "feed:",
                "5",
                "51",
                "i",
                "é",
                "Курск",
                "abc",
                "x",
                "@al",
                "/re/",
                "\"a b\"~2",
                "demin*",
                "U.S.",
                "=\"X Y\"",
            ])
            .prop_map(str::to_string),
            "\\PC{1,3}",
        ];
        prop::collection::vec(piece, 0..16).prop_map(|v| v.concat())
    }

    fn check_error_offsets(s: &str) {
        if let Err(errors) = parse_query_all_errors(s) {
            assert!(!errors.is_empty());
            for e in &errors {
                assert!(
                    e.offset <= s.len() && s.is_char_boundary(e.offset),
                    "{s:?}: {e:?}"
                );
                assert!(!e.message.is_empty());
            }
            assert!(errors.windows(2).all(|w| w[0].offset <= w[1].offset));
            assert_eq!(parse_query(s).err().as_ref(), errors.first());
        }
    }

    fn check_fixpoint(s: &str) -> Result<(), TestCaseError> {
        if let Ok(n) = parse_query(s) {
            let printed = n.to_string();
            let again = parse_query(&printed);
            prop_assert!(again.is_ok(), "{:?} -> {:?}: {:?}", s, printed, again);
            let again = again.map_err(|e| TestCaseError::fail(e.message))?;
            prop_assert_eq!(again.without_spans(), n.without_spans());
            prop_assert_eq!(again.to_string(), printed);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_strings_never_panic(s in any::<String>()) {
            check_error_offsets(&s);
            check_fixpoint(&s)?;
        }

        #[test]
        fn query_like_strings_never_panic_and_reprint(s in query_like()) {
            check_error_offsets(&s);
            check_fixpoint(&s)?;
        }

        #[test]
        fn printed_trees_parse_back(t in tree()) {
            let printed = t.to_string();
            let parsed = parse_query(&printed);
            prop_assert!(parsed.is_ok(), "{:?}: {:?}", printed, parsed);
            let parsed = parsed.map_err(|e| TestCaseError::fail(e.message))?;
            prop_assert_eq!(parsed.without_spans(), t);
        }
    }
}
