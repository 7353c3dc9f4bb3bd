//! A small typed reader over a parsed TOML document that keeps positions.
//!
//! serde stops at the first error; a person editing a config wants every
//! error at once, each with `FILE:LINE:COL`. This reader walks the document
//! table by table: every `take_*` call consumes a key, reports a type error at
//! the value, and [`Fields::finish`] reports each key nobody took as unknown,
//! at the key.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml_edit::{Item, Table, Value};

/// One located problem in a config or rules file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

/// A source file: its path (as shown in messages) and its text.
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or(&self.text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }

    /// The start of the line that holds `offset` (used to point at a table
    /// header rather than its first key).
    fn line_start(&self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        self.text
            .get(..offset)
            .and_then(|b| b.rfind('\n'))
            .map_or(0, |i| i + 1)
    }
}

/// Collects diagnostics for one file.
pub struct Reporter<'s> {
    pub source: &'s Source,
    pub diags: Vec<Diagnostic>,
}

impl<'s> Reporter<'s> {
    pub fn new(source: &'s Source) -> Self {
        Reporter {
            source,
            diags: Vec::new(),
        }
    }

    pub fn error(&mut self, at: Pos, message: impl Into<String>) {
        let (line, col) = self.source.line_col(at.0);
        self.diags.push(Diagnostic {
            file: self.source.path.clone(),
            line,
            col,
            message: message.into(),
        });
    }
}

/// A byte offset into the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos(pub usize);

fn pos(span: Option<Range<usize>>) -> Pos {
    Pos(span.map_or(0, |s| s.start))
}

/// Position of a table for "missing key" messages: the line of its header,
/// column 1.
pub fn table_pos(source: &Source, table: &Table) -> Pos {
    let start = table
        .span()
        .map(|s| s.start)
        .or_else(|| {
            table
                .iter()
                .filter_map(|(_, i)| i.span())
                .map(|s| s.start)
                .min()
        })
        .unwrap_or(0);
    Pos(source.line_start(start))
}

pub fn item_pos(item: &Item) -> Pos {
    pos(item.span())
}

/// A parsed document, or the syntax error as a diagnostic.
pub fn parse(source: &Source) -> Result<toml_edit::Document<String>, Diagnostic> {
    toml_edit::Document::parse(source.text.clone()).map_err(|e| {
        let (line, col) = source.line_col(e.span().map_or(0, |s| s.start));
        Diagnostic {
            file: source.path.clone(),
            line,
            col,
            message: format!("invalid TOML: {}", e.message().trim()),
        }
    })
}

/// A string value with its position.
#[derive(Debug, Clone)]
pub struct Spanned<T> {
    pub value: T,
    pub pos: Pos,
}

/// The keys of one table, consumed as they are read.
pub struct Fields<'a> {
    table: &'a Table,
    what: String,
    taken: Vec<&'a str>,
    header: Pos,
}

impl<'a> Fields<'a> {
    /// `what` names the table in messages, e.g. `"[daemon]"` or "rule \"kursk\"".
    pub fn new(source: &Source, table: &'a Table, what: impl Into<String>) -> Self {
        Fields {
            table,
            what: what.into(),
            taken: Vec::new(),
            header: table_pos(source, table),
        }
    }

    pub fn header(&self) -> Pos {
        self.header
    }

    pub fn set_what(&mut self, what: impl Into<String>) {
        self.what = what.into();
    }

    fn take(&mut self, key: &'a str) -> Option<&'a Item> {
        self.taken.push(key);
        self.table.get(key).filter(|i| !i.is_none())
    }

    /// The raw item, for keys with several accepted shapes.
    pub fn take_item(&mut self, key: &'a str) -> Option<&'a Item> {
        self.take(key)
    }

    pub fn string(&mut self, r: &mut Reporter, key: &'a str) -> Option<Spanned<String>> {
        let item = self.take(key)?;
        match item.as_str() {
            Some(s) => Some(Spanned {
                value: s.to_string(),
                pos: item_pos(item),
            }),
            None => {
                r.error(
                    item_pos(item),
                    format!("`{key}` must be a string, found {}", type_name(item)),
                );
                None
            }
        }
    }

    /// A required string: missing is reported at the table header.
    pub fn required_string(&mut self, r: &mut Reporter, key: &'a str) -> Option<Spanned<String>> {
        if self.table.get(key).is_none_or(Item::is_none) {
            self.taken.push(key);
            r.error(self.header, format!("{} is missing `{key}`", self.what));
            return None;
        }
        self.string(r, key)
    }

    pub fn bool(&mut self, r: &mut Reporter, key: &'a str) -> Option<bool> {
        let item = self.take(key)?;
        match item.as_bool() {
            Some(b) => Some(b),
            None => {
                r.error(
                    item_pos(item),
                    format!("`{key}` must be true or false, found {}", type_name(item)),
                );
                None
            }
        }
    }

    /// A positive integer within `range`.
    pub fn integer(
        &mut self,
        r: &mut Reporter,
        key: &'a str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<i64> {
        let item = self.take(key)?;
        match item.as_integer() {
            Some(n) if range.contains(&n) => Some(n),
            Some(n) => {
                r.error(
                    item_pos(item),
                    format!(
                        "`{key}` must be between {} and {}, found {n}",
                        range.start(),
                        range.end()
                    ),
                );
                None
            }
            None => {
                r.error(
                    item_pos(item),
                    format!("`{key}` must be an integer, found {}", type_name(item)),
                );
                None
            }
        }
    }

    /// A duration string such as "90s", "5m", "2h", "1d".
    pub fn duration(&mut self, r: &mut Reporter, key: &'a str) -> Option<Spanned<Duration>> {
        let s = self.string(r, key)?;
        match parse_duration(&s.value) {
            Ok(d) => Some(Spanned {
                value: d,
                pos: s.pos,
            }),
            Err(e) => {
                r.error(s.pos, format!("`{key}`: {e}"));
                None
            }
        }
    }

    /// A byte size: an integer, or a string such as "512KiB", "10MiB".
    pub fn size(&mut self, r: &mut Reporter, key: &'a str) -> Option<u64> {
        let item = self.take(key)?;
        let parsed = match (item.as_integer(), item.as_str()) {
            (Some(n), _) => u64::try_from(n).map_err(|_| "a size cannot be negative".to_string()),
            (None, Some(s)) => parse_size(s),
            _ => Err(format!(
                "must be a byte count or a string like \"10MiB\", found {}",
                type_name(item)
            )),
        };
        match parsed {
            Ok(0) => {
                r.error(item_pos(item), format!("`{key}` must be greater than 0"));
                None
            }
            Ok(n) => Some(n),
            Err(e) => {
                r.error(item_pos(item), format!("`{key}`: {e}"));
                None
            }
        }
    }

    /// A list of strings, each with its position.
    pub fn string_list(&mut self, r: &mut Reporter, key: &'a str) -> Option<Vec<Spanned<String>>> {
        let item = self.take(key)?;
        let Some(array) = item.as_array() else {
            r.error(
                item_pos(item),
                format!(
                    "`{key}` must be a list of strings, found {}",
                    type_name(item)
                ),
            );
            return None;
        };
        let mut out = Vec::with_capacity(array.len());
        let mut ok = true;
        for v in array.iter() {
            match v.as_str() {
                Some(s) => out.push(Spanned {
                    value: s.to_string(),
                    pos: pos(v.span()),
                }),
                None => {
                    ok = false;
                    r.error(
                        pos(v.span()),
                        format!(
                            "`{key}` must hold only strings, found {}",
                            value_type_name(v)
                        ),
                    );
                }
            }
        }
        ok.then_some(out)
    }

    /// A sub-table (`[daemon]`); a non-table value is an error.
    pub fn table(&mut self, r: &mut Reporter, key: &'a str) -> Option<&'a Table> {
        let item = self.take(key)?;
        match item.as_table() {
            Some(t) => Some(t),
            None => {
                r.error(
                    item_pos(item),
                    format!("`{key}` must be a table like [{key}]"),
                );
                None
            }
        }
    }

    /// An array of tables (`[[feed]]`).
    pub fn tables(&mut self, r: &mut Reporter, key: &'a str) -> Vec<&'a Table> {
        let Some(item) = self.take(key) else {
            return Vec::new();
        };
        match item.as_array_of_tables() {
            Some(a) => a.iter().collect(),
            None => {
                r.error(
                    item_pos(item),
                    format!("`{key}` must be written as [[{key}]] tables"),
                );
                Vec::new()
            }
        }
    }

    /// Reports every key that no `take_*` call asked for.
    pub fn finish(self, r: &mut Reporter, expected: &[&str]) {
        for (key, item) in self.table.iter() {
            if self.taken.contains(&key) {
                continue;
            }
            let at = self
                .table
                .key(key)
                .and_then(|k| k.span())
                .map_or_else(|| item_pos(item), |s| Pos(s.start));
            let hint = match closest(key, expected) {
                Some(k) => format!("did you mean `{k}`?"),
                None => format!("expected one of: {}", expected.join(", ")),
            };
            r.error(at, format!("unknown key `{key}` in {}; {hint}", self.what));
        }
    }
}

/// The expected key a typo most likely meant: at most two edits away.
fn closest<'e>(key: &str, expected: &[&'e str]) -> Option<&'e str> {
    expected
        .iter()
        .map(|e| (edit_distance(key, e), *e))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, e)| e)
}

/// Levenshtein distance over chars (keys are short).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn type_name(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Value(v) => value_type_name(v),
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
    }
}

fn value_type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "a list",
        Value::InlineTable(_) => "an inline table",
    }
}

/// Maps a byte offset inside a decoded TOML string to a byte offset in
/// the source, given the source text starting at the string's opening
/// quote. Handles literal and basic strings, single- and multi-line, and
/// escapes, so a query error points at the right column whatever the quoting.
pub fn string_offset_in_source(raw: &str, decoded_offset: usize) -> usize {
    let (delim, basic) = if raw.starts_with("\"\"\"") {
        (3, true)
    } else if raw.starts_with("'''") {
        (3, false)
    } else if raw.starts_with('"') {
        (1, true)
    } else if raw.starts_with('\'') {
        (1, false)
    } else {
        return decoded_offset.min(raw.len());
    };
    let mut i = delim;
    // A newline right after a multi-line opening delimiter is trimmed.
    if delim == 3 {
        if raw[i..].starts_with("\r\n") {
            i += 2;
        } else if raw[i..].starts_with('\n') {
            i += 1;
        }
    }
    if !basic {
        return (i + decoded_offset).min(raw.len());
    }
    let mut decoded = 0;
    let bytes = raw.as_bytes();
    while i < raw.len() && decoded < decoded_offset {
        if bytes[i] == b'\\' && i + 1 < raw.len() {
            let esc = bytes[i + 1];
            let (raw_len, out_len) = match esc {
                b'u' | b'U' => {
                    let n = if esc == b'u' { 4 } else { 8 };
                    let hex = raw.get(i + 2..i + 2 + n).unwrap_or("");
                    let c = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32);
                    (2 + n, c.map_or(1, char::len_utf8))
                }
                b'x' => (4, 1),
                b'\n' | b'\r' | b' ' | b'\t' => {
                    // Line-ending backslash: skips all following whitespace.
                    let rest = &raw[i + 1..];
                    let skipped = rest.len() - rest.trim_start().len();
                    (1 + skipped, 0)
                }
                _ => (2, 1),
            };
            i += raw_len;
            decoded += out_len;
        } else {
            let len = raw[i..].chars().next().map_or(1, char::len_utf8);
            i += len;
            decoded += len;
        }
    }
    i.min(raw.len())
}

/// "90s", "5m", "2h", "1d", "1h30m"; a bare "0" is zero.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let bad = || {
        format!("invalid duration \"{s}\": expected a number with a unit, as in \"90s\", \"5m\", \"2h\", \"1d\"")
    };
    if t.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let unit = match &rest[..unit_len] {
            "ms" => 0,
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 604_800,
            _ => return Err(bad()),
        };
        let add = if unit == 0 {
            // milliseconds: only meaningful for timeouts, kept exact below
            return if rest[unit_len..].is_empty() && total == 0 {
                Ok(Duration::from_millis(n))
            } else {
                Err(bad())
            };
        } else {
            n.checked_mul(unit).ok_or_else(bad)?
        };
        total = total.checked_add(add).ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_secs(total))
}

/// "10MiB", "512KiB", "1GiB", "1000", "2MB".
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let bad = || {
        format!("invalid size \"{s}\": expected bytes or a number with a unit, as in \"512KiB\" or \"10MiB\"")
    };
    let digits = t.len() - t.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return Err(bad());
    }
    let n: u64 = t[..digits].parse().map_err(|_| bad())?;
    let mult: u64 = match t[digits..].trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

/// Resolves `p` against the directory of the file that named it.
pub fn resolve(dir: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        dir.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in [
            "",
            "5",
            "m",
            "5 minutes",
            "-5m",
            "5x",
            "1s250ms",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("2 MB"), Ok(2_000_000));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("10XB").is_err());
    }

    #[test]
    fn string_offsets_follow_quoting_and_escapes() {
        // 'Kursk NEAR/x' : offset 6 (the N) is 7 bytes into the source.
        assert_eq!(string_offset_in_source("'Kursk NEAR/x'", 6), 7);
        assert_eq!(string_offset_in_source("\"Kursk NEAR/x\"", 6), 7);
        // "\"a\" b": decoded `"a" b`, offset 4 (b) is source byte 7.
        assert_eq!(string_offset_in_source("\"\\\"a\\\" b\"", 4), 7);
        // \u0416 decodes to 2 bytes (Ж): offset 2 (after it) is source 7.
        assert_eq!(string_offset_in_source("\"\\u0416x\"", 2), 7);
        // Multi-line literal: the newline after the delimiter is trimmed.
        assert_eq!(string_offset_in_source("'''\nab'''", 1), 5);
        // Cyrillic text counts bytes on both sides.
        assert_eq!(
            string_offset_in_source("'Курск x'", "Курск ".len()),
            1 + "Курск ".len()
        );
    }

    #[test]
    fn typo_hints() {
        assert_eq!(
            closest("severty", &["id", "severity", "sinks"]),
            Some("severity")
        );
        assert_eq!(
            closest("sinkz", &["id", "severity", "sinks"]),
            Some("sinks")
        );
        assert_eq!(closest("frobnicate", &["id", "severity"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "ab"), 2);
    }

    #[test]
    fn line_col_counts_chars() {
        let s = Source {
            path: "x.toml".into(),
            text: "a = 1\nб = \"курск\" x\n".into(),
        };
        let off = s.text.find('x').unwrap_or(0);
        assert_eq!(s.line_col(off), (2, 13));
        assert_eq!(s.line_col(0), (1, 1));
    }

    #[test]
    fn unknown_keys_and_types_are_all_reported() {
        let source = Source {
            path: "t.toml".into(),
            text: "[t]\nname = 5\nextra = true\ncount = \"x\"\n".into(),
        };
        let doc = parse(&source).unwrap();
        let mut r = Reporter::new(&source);
        let mut f = Fields::new(&source, doc.as_table(), "the file");
        let t = f.table(&mut r, "t").unwrap();
        f.finish(&mut r, &["t"]);
        let mut f = Fields::new(&source, t, "[t]");
        assert!(f.string(&mut r, "name").is_none());
        assert!(f.integer(&mut r, "count", 1..=10).is_none());
        assert!(f.required_string(&mut r, "id").is_none());
        f.finish(&mut r, &["name", "count", "id"]);
        let got: Vec<String> = r.diags.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            got,
            vec![
                "t.toml:2:8: `name` must be a string, found an integer",
                "t.toml:4:9: `count` must be an integer, found a string",
                "t.toml:1:1: [t] is missing `id`",
                "t.toml:3:1: unknown key `extra` in [t]; expected one of: name, count, id",
            ]
        );
    }
}
