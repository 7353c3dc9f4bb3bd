//! The gold set (`tests/gold/`): wire-style items in English and Russian,
//! the watch rules of `rules.toml`, and `labels.toml`, which says for every
//! item which rules must match and which sentence each snippet must come
//! from (every other rule must stay silent).
//!
//! - [`gold_set_is_consistent`] checks the data itself: labels against the
//!   feed files and the rules, sizes, and operator coverage.
//! - [`gold_set_matches_labels`] runs `wirewatch match --json` over each feed
//!   file, scores every rule (TP/FP/FN, precision, recall) and checks the
//!   snippet of every true positive. The report is printed to stdout
//!   (`cargo test --test it gold -- --nocapture`); the test fails listing
//!   every mismatch.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{json_lines, run_cli, s};

/// The feed files, `tests/gold/<id>.xml`, matched as feed `<id>`.
const FEEDS: [&str; 4] = ["wire-en", "briefs", "wire-ru", "agency-ru"];

/// `snippet_max_chars` in `tests/gold/wirewatch.toml`.
const SNIPPET_CAP: usize = 300;

const MIN_ITEMS: usize = 150;
const MIN_RUSSIAN: usize = 60;
const MIN_RULES: usize = 30;
/// Every operator must appear in at least this many rules.
const MIN_RULES_PER_OPERATOR: usize = 2;

const ELLIPSIS: char = '…';

fn gold_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gold")
}

fn gold_path(name: &str) -> String {
    gold_dir()
        .join(name)
        .to_str()
        .expect("UTF-8 path")
        .to_string()
}

fn read_gold(name: &str) -> String {
    std::fs::read_to_string(gold_dir().join(name))
        .unwrap_or_else(|e| panic!("read tests/gold/{name}: {e}"))
}

fn parse_toml(name: &str) -> toml_edit::DocumentMut {
    read_gold(name)
        .parse::<toml_edit::DocumentMut>()
        .unwrap_or_else(|e| panic!("tests/gold/{name} is not valid TOML: {e}"))
}

// ------------------------------------------------------------------ data ---

/// One `[[item]]` of `labels.toml`.
#[derive(Debug)]
struct Label {
    feed: String,
    guid: String,
    /// Rules the item must match; every other rule must not.
    rules: BTreeSet<String>,
    /// Rule id -> the sentence its snippet must come from.
    snippets: BTreeMap<String, String>,
}

fn str_array(item: Option<&toml_edit::Item>, what: &str) -> Vec<String> {
    match item {
        None => Vec::new(),
        Some(i) => i
            .as_array()
            .unwrap_or_else(|| panic!("{what} must be an array of strings"))
            .iter()
            .map(|v| {
                v.as_str()
                    .unwrap_or_else(|| panic!("{what} must hold strings only"))
                    .to_string()
            })
            .collect(),
    }
}

fn load_labels() -> Vec<Label> {
    let doc = parse_toml("labels.toml");
    let items = doc["item"]
        .as_array_of_tables()
        .expect("labels.toml: [[item]] entries");
    items
        .iter()
        .enumerate()
        .map(|(n, t)| {
            let field = |k: &str| {
                t.get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or_else(|| panic!("labels.toml item #{}: missing string `{k}`", n + 1))
                    .to_string()
            };
            let (feed, guid) = (field("feed"), field("guid"));
            let rules = str_array(t.get("match"), &format!("labels.toml {guid}: match"))
                .into_iter()
                .collect();
            let snippets = match t.get("snippet") {
                None => BTreeMap::new(),
                Some(sn) => sn
                    .as_table()
                    .unwrap_or_else(|| panic!("labels.toml {guid}: [item.snippet] must be a table"))
                    .iter()
                    .map(|(k, v)| {
                        let text = v.as_str().unwrap_or_else(|| {
                            panic!("labels.toml {guid}: snippet.{k} must be a string")
                        });
                        (k.to_string(), text.to_string())
                    })
                    .collect(),
            };
            Label {
                feed,
                guid,
                rules,
                snippets,
            }
        })
        .collect()
}

/// One `[[rule]]` of `rules.toml`, reduced to what the checks need.
#[derive(Debug)]
struct Rule {
    id: String,
    query: Option<String>,
    any: Vec<String>,
    all: Vec<String>,
    none: Vec<String>,
}

impl Rule {
    /// The query text, or the shorthand elements joined, for operator search.
    fn text(&self) -> String {
        let mut parts: Vec<&str> = self.query.iter().map(String::as_str).collect();
        parts.extend(
            self.any
                .iter()
                .chain(&self.all)
                .chain(&self.none)
                .map(String::as_str),
        );
        parts.join(" ")
    }
}

struct RuleFile {
    rules: Vec<Rule>,
    aliases: BTreeMap<String, Vec<String>>,
}

fn load_rules() -> RuleFile {
    let doc = parse_toml("rules.toml");
    let rules = doc["rule"]
        .as_array_of_tables()
        .expect("rules.toml: [[rule]] entries")
        .iter()
        .map(|t| {
            let id = t
                .get("id")
                .and_then(|v| v.as_str())
                .expect("every rule has a string id")
                .to_string();
            Rule {
                query: t.get("query").and_then(|v| v.as_str()).map(str::to_string),
                any: str_array(t.get("any"), &format!("rule {id}: any")),
                all: str_array(t.get("all"), &format!("rule {id}: all")),
                none: str_array(t.get("none"), &format!("rule {id}: none")),
                id,
            }
        })
        .collect();
    let aliases = doc
        .get("aliases")
        .and_then(|a| a.as_table())
        .map(|t| {
            t.iter()
                .map(|(k, v)| (k.to_string(), str_array(Some(v), &format!("alias {k}"))))
                .collect()
        })
        .unwrap_or_default();
    RuleFile { rules, aliases }
}

/// An item as `wirewatch parse` reports it (plain text, HTML stripped).
#[derive(Debug, Clone)]
struct Item {
    title: String,
    summary: String,
    content: String,
}

impl Item {
    fn is_russian(&self) -> bool {
        self.title
            .chars()
            .chain(self.summary.chars())
            .any(|c| ('\u{400}'..='\u{4ff}').contains(&c))
    }

    /// Whether `sentence` occurs verbatim in the title, summary or content.
    fn contains_verbatim(&self, sentence: &str) -> bool {
        [&self.title, &self.summary, &self.content]
            .iter()
            .any(|f| f.contains(sentence))
    }

    /// Whether `text` (whitespace-normalised) occurs in the item's text,
    /// allowing a snippet that runs from the title into the body.
    fn contains_normalised(&self, text: &str) -> bool {
        let needle = normalise_ws(text);
        let (t, sm, c) = (&self.title, &self.summary, &self.content);
        [
            t.clone(),
            sm.clone(),
            c.clone(),
            format!("{t} {sm}"),
            format!("{t} {c}"),
            format!("{sm} {c}"),
            format!("{t} {sm} {c}"),
        ]
        .iter()
        .any(|hay| normalise_ws(hay).contains(&needle))
    }
}

/// Items of every feed file, keyed by (feed id, item key), from `wirewatch parse`.
fn load_items() -> BTreeMap<(String, String), Item> {
    let mut items = BTreeMap::new();
    for feed in FEEDS {
        let file = gold_path(&format!("{feed}.xml"));
        let out = run_cli(&["parse", &file]);
        out.expect_code(0);
        let lines = json_lines(&out.stdout);
        assert!(!lines.is_empty(), "{feed}.xml: no items parsed");
        for v in &lines {
            let key = s(v, &["key"]).to_string();
            let item = Item {
                title: s(v, &["title"]).to_string(),
                summary: s(v, &["summary"]).to_string(),
                content: s(v, &["content"]).to_string(),
            };
            let dup = items.insert((feed.to_string(), key.clone()), item);
            assert!(dup.is_none(), "{feed}.xml: duplicate item key {key:?}");
        }
    }
    items
}

fn normalise_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Case-folded for comparing highlight text with matched terms.
fn fold(s: &str) -> String {
    s.to_lowercase().replace('ё', "е").replace('\u{2019}', "'")
}

// ----------------------------------------------------- operator coverage ---

/// Regex literals in a query: `(body, case_insensitive)`. A regex starts
/// with `/` at the start of the query or after whitespace, `(` or `:`.
fn regex_literals(q: &str) -> Vec<(String, bool)> {
    let chars: Vec<char> = q.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts = chars[i] == '/' && (i == 0 || matches!(chars[i - 1], ' ' | '(' | ':'));
        if !starts {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < chars.len() && chars[j] != '/' {
            if chars[j] == '\\' {
                j += 1;
            }
            j += 1;
        }
        if j >= chars.len() {
            break;
        }
        let body: String = chars[i + 1..j].iter().collect();
        let ci = chars.get(j + 1) == Some(&'i');
        out.push((body, ci));
        i = j + 1;
    }
    out
}

/// The operators of the rule language that `rule` uses (by searching its
/// query text; `any`/`all`/`none` by key).
fn operators(rule: &Rule) -> BTreeSet<&'static str> {
    let q = rule.text();
    // Regex bodies are opaque: search the rest.
    let mut rest = q.clone();
    let regexes = regex_literals(&q);
    for (body, _) in &regexes {
        rest = rest.replacen(&format!("/{body}/"), " ", 1);
    }
    let c: Vec<char> = rest.chars().collect();
    let mut ops = BTreeSet::new();
    let has = |needle: &str| rest.contains(needle);
    let any_at = |pred: &dyn Fn(usize) -> bool| (0..c.len()).any(pred);
    let boundary = |i: usize| i == 0 || c[i - 1].is_whitespace() || c[i - 1] == '(';
    let starts_at = |i: usize, needle: &str| {
        let n: Vec<char> = needle.chars().collect();
        c.get(i..i + n.len()) == Some(&n[..])
    };

    if any_at(&|i| starts_at(i, "NEAR/") && (i == 0 || c[i - 1] != 'O')) {
        ops.insert("NEAR/");
    }
    if has("ONEAR/") {
        ops.insert("ONEAR/");
    }
    if has("=\"") {
        ops.insert("=\"");
    }
    if any_at(&|i| c[i] == '=' && boundary(i) && c.get(i + 1).is_some_and(|n| *n != '"')) {
        ops.insert("=");
    }
    if any_at(&|i| {
        c[i] == '~' && i > 0 && c[i - 1] == '"' && c.get(i + 1).is_some_and(|d| d.is_ascii_digit())
    }) {
        ops.insert("~");
    }
    if any_at(&|i| c[i] == '*' && i > 0 && c[i - 1].is_alphanumeric()) {
        ops.insert("*");
    }
    if regexes.iter().any(|(_, ci)| !ci) {
        ops.insert("/…/");
    }
    if regexes.iter().any(|(_, ci)| *ci) {
        ops.insert("/…/i");
    }
    if any_at(&|i| c[i] == '@' && c.get(i + 1).is_some_and(|n| n.is_alphanumeric())) {
        ops.insert("@");
    }
    for (scope, name) in [
        ("title:", "title:"),
        ("summary:", "summary:"),
        ("content:", "content:"),
        ("text:", "text:"),
        ("link:", "link:"),
        ("author:", "author:"),
        ("category:", "category:"),
        ("feed:", "feed:"),
    ] {
        if any_at(&|i| starts_at(i, scope) && (i == 0 || !c[i - 1].is_alphanumeric())) {
            ops.insert(name);
        }
    }
    if has(" NOT ") || rest.starts_with("NOT ") {
        ops.insert(" NOT ");
    }
    if any_at(&|i| {
        c[i] == '-'
            && boundary(i)
            && c.get(i + 1)
                .is_some_and(|n| !n.is_whitespace() && !n.is_ascii_digit())
    }) {
        ops.insert("-");
    }
    if has(" OR ") {
        ops.insert(" OR ");
    }
    if has(" AND ") {
        ops.insert(" AND ");
    }
    if has("(") && has(")") {
        ops.insert("( )");
    }
    if any_at(&|i| c[i] == '"' && (i == 0 || c[i - 1] != '=')) {
        ops.insert("\"phrase\"");
    }
    if !rule.any.is_empty() {
        ops.insert("any");
    }
    if !rule.all.is_empty() {
        ops.insert("all");
    }
    if !rule.none.is_empty() {
        ops.insert("none");
    }
    ops
}

const ALL_OPERATORS: [&str; 27] = [
    "NEAR/",
    "ONEAR/",
    "=\"",
    "=",
    "~",
    "*",
    "/…/",
    "/…/i",
    "@",
    "title:",
    "summary:",
    "content:",
    "text:",
    "link:",
    "author:",
    "category:",
    "feed:",
    " NOT ",
    "-",
    " OR ",
    " AND ",
    "( )",
    "\"phrase\"",
    "any",
    "all",
    "none",
    "(alias of alias)",
];

// ------------------------------------------------------------ the tests ---

/// The gold data agree with themselves: every label names a real item and
/// real rules, every snippet sentence is in its item, and the set is big and
/// varied enough.
#[test]
fn gold_set_is_consistent() {
    let labels = load_labels();
    let RuleFile { rules, aliases } = load_rules();
    let items = load_items();
    let mut errors: Vec<String> = Vec::new();

    // Rules: unique ids, every rule has a query or a shorthand.
    let mut rule_ids = BTreeSet::new();
    for r in &rules {
        if !rule_ids.insert(r.id.clone()) {
            errors.push(format!("rules.toml: duplicate rule id {:?}", r.id));
        }
        if r.query.is_none() && r.any.is_empty() && r.all.is_empty() {
            errors.push(format!(
                "rules.toml: rule {:?} has no query, any or all",
                r.id
            ));
        }
    }

    // Labels: one per item, known rules, a snippet sentence per matched rule.
    let mut seen = BTreeSet::new();
    for l in &labels {
        let key = (l.feed.clone(), l.guid.clone());
        if !FEEDS.contains(&l.feed.as_str()) {
            errors.push(format!("{}: unknown feed {:?}", l.guid, l.feed));
        }
        if !seen.insert(key.clone()) {
            errors.push(format!("{} ({}): labelled twice", l.guid, l.feed));
        }
        let Some(item) = items.get(&key) else {
            errors.push(format!("{} is not an item of {}.xml", l.guid, l.feed));
            continue;
        };
        for r in &l.rules {
            if !rule_ids.contains(r) {
                errors.push(format!("{}: unknown rule {r:?} in match", l.guid));
            }
            if !l.snippets.contains_key(r) {
                errors.push(format!(
                    "{}: no snippet sentence for matched rule {r:?}",
                    l.guid
                ));
            }
        }
        for (r, sentence) in &l.snippets {
            if !l.rules.contains(r) {
                errors.push(format!(
                    "{}: snippet for {r:?}, which is not in match",
                    l.guid
                ));
            }
            if !item.contains_verbatim(sentence) {
                errors.push(format!(
                    "{}: snippet sentence for {r:?} is not in the item's text: {sentence:?}",
                    l.guid
                ));
            }
            if sentence.chars().count() > SNIPPET_CAP {
                errors.push(format!(
                    "{}: snippet sentence for {r:?} is over {SNIPPET_CAP} chars",
                    l.guid
                ));
            }
        }
    }
    for (feed, guid) in items.keys() {
        if !seen.contains(&(feed.clone(), guid.clone())) {
            errors.push(format!("{guid} ({feed}.xml) has no label"));
        }
    }

    // Sizes.
    let russian = items.values().filter(|i| i.is_russian()).count();
    if items.len() < MIN_ITEMS {
        errors.push(format!("{} items; want at least {MIN_ITEMS}", items.len()));
    }
    if russian < MIN_RUSSIAN {
        errors.push(format!(
            "{russian} Russian items; want at least {MIN_RUSSIAN}"
        ));
    }
    if rules.len() < MIN_RULES {
        errors.push(format!("{} rules; want at least {MIN_RULES}", rules.len()));
    }

    // Every rule fires on some item, and is silent on some other.
    for r in &rules {
        let n = labels.iter().filter(|l| l.rules.contains(&r.id)).count();
        if n == 0 {
            errors.push(format!(
                "rule {:?} matches no item: it measures nothing",
                r.id
            ));
        }
    }

    // Operator coverage.
    let mut coverage: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in &rules {
        for op in operators(r) {
            coverage.entry(op).or_default().push(&r.id);
        }
    }
    // An alias defined through another alias, used by a rule.
    for (name, elems) in &aliases {
        if elems.iter().any(|e| e.trim_start().starts_with('@')) {
            for r in &rules {
                if r.text().contains(&format!("@{name}")) {
                    coverage.entry("(alias of alias)").or_default().push(&r.id);
                }
            }
        }
    }
    let mut report = String::from("operator coverage (rules using it):\n");
    for op in ALL_OPERATORS {
        let users = coverage.get(op).cloned().unwrap_or_default();
        let _ = writeln!(report, "  {op:<18} {:>2}  {}", users.len(), users.join(" "));
        if users.len() < MIN_RULES_PER_OPERATOR {
            errors.push(format!(
                "operator {op:?} appears in {} rule(s); want at least {MIN_RULES_PER_OPERATOR}",
                users.len()
            ));
        }
    }
    for (name, elems) in &aliases {
        for e in elems {
            if let Some(target) = e.trim().strip_prefix('@') {
                if !aliases.contains_key(target) {
                    errors.push(format!("alias {name}: unknown alias @{target}"));
                }
            }
        }
    }
    println!(
        "gold set: {} items ({} English, {russian} Russian) in {} feeds, {} rules, {} labelled matches\n{report}",
        items.len(),
        items.len() - russian,
        FEEDS.len(),
        rules.len(),
        labels.iter().map(|l| l.rules.len()).sum::<usize>(),
    );
    assert!(
        errors.is_empty(),
        "gold set is inconsistent ({} problem(s)):\n  {}",
        errors.len(),
        errors.join("\n  ")
    );
}

#[derive(Default)]
struct Score {
    tp: usize,
    fp: usize,
    fn_: usize,
}

fn ratio(a: usize, b: usize) -> String {
    if b == 0 {
        "-".to_string()
    } else {
        format!("{:.3}", a as f64 / b as f64)
    }
}

/// Snippet problems of one true positive (empty when all four checks pass).
fn snippet_problems(alert: &Value, label_sentence: &str, item: &Item) -> Vec<String> {
    let mut out = Vec::new();
    let text = s(alert, &["snippet", "text"]);
    let chars: Vec<char> = text.chars().collect();

    // (1) From the labelled sentence.
    let core = normalise_ws(text.trim().trim_matches(ELLIPSIS).trim());
    let want = normalise_ws(label_sentence);
    if core.is_empty() || !(want.contains(&core) || core.contains(&want)) {
        out.push(format!(
            "snippet {text:?} is not from the sentence {label_sentence:?}"
        ));
    }

    // (2) Within the cap.
    if chars.len() > SNIPPET_CAP {
        out.push(format!(
            "snippet is {} chars, over {SNIPPET_CAP}",
            chars.len()
        ));
    }

    // (3) Highlights: in range, sorted, disjoint, each a matched term.
    let matched: Vec<String> = alert["matched"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m.as_str()).map(fold).collect())
        .unwrap_or_default();
    if matched.is_empty() {
        out.push(format!("empty or missing `matched`: {}", alert["matched"]));
    }
    match alert["snippet"]["highlights"].as_array() {
        None => out.push("missing snippet.highlights".to_string()),
        Some(hl) => {
            let mut last_end = 0usize;
            for h in hl {
                let pair: Option<(usize, usize)> = h.as_array().and_then(|p| {
                    (p.len() == 2).then_some(())?;
                    Some((p[0].as_u64()? as usize, p[1].as_u64()? as usize))
                });
                let Some((st, en)) = pair else {
                    out.push(format!("highlight {h} is not [start, end]"));
                    continue;
                };
                if !(st < en && en <= chars.len()) {
                    out.push(format!(
                        "highlight {h} out of range for {} chars",
                        chars.len()
                    ));
                    continue;
                }
                if st < last_end {
                    out.push(format!(
                        "highlights not sorted/disjoint: {}",
                        alert["snippet"]["highlights"]
                    ));
                }
                last_end = en;
                let span = fold(&chars[st..en].iter().collect::<String>());
                if !matched
                    .iter()
                    .any(|m| span == *m || span.contains(m.as_str()))
                {
                    out.push(format!(
                        "highlight {h} covers {span:?}, not one of matched {matched:?}"
                    ));
                }
            }
        }
    }

    // (4) Maps back to the source.
    if !core.is_empty() && !item.contains_normalised(&core) {
        out.push(format!(
            "snippet {core:?} does not occur in the item's text"
        ));
    }
    out
}

/// Every labelled (item, rule) pair fires, no other does, and every true
/// positive carries a snippet from the labelled sentence. Needs the
/// watch-rule engine of issue 3.
#[test]
fn gold_set_matches_labels() {
    let labels = load_labels();
    let RuleFile { rules, .. } = load_rules();
    let items = load_items();
    let config = gold_path("wirewatch.toml");

    // (feed, guid, rule) -> alerts (normally exactly one)
    let mut got: BTreeMap<(String, String, String), Vec<Value>> = BTreeMap::new();
    let mut run_errors = Vec::new();
    for feed in FEEDS {
        let file = gold_path(&format!("{feed}.xml"));
        let out = run_cli(&[
            "match", "--config", &config, "--feed", feed, "--json", &file,
        ]);
        if out.code() != Some(0) {
            run_errors.push(format!(
                "`wirewatch match --feed {feed}` exited {:?}:\n{}",
                out.status,
                out.stderr.trim_end()
            ));
            continue;
        }
        for a in json_lines(&out.stdout) {
            let key = (
                feed.to_string(),
                s(&a, &["item", "key"]).to_string(),
                s(&a, &["rule", "id"]).to_string(),
            );
            got.entry(key).or_default().push(a);
        }
    }

    let want: BTreeMap<(String, String, String), &str> = labels
        .iter()
        .flat_map(|l| {
            l.rules.iter().map(move |r| {
                let sentence = l.snippets.get(r).map(String::as_str).unwrap_or("");
                ((l.feed.clone(), l.guid.clone(), r.clone()), sentence)
            })
        })
        .collect();

    let mut scores: BTreeMap<&str, Score> = rules
        .iter()
        .map(|r| (r.id.as_str(), Score::default()))
        .collect();
    let mut mismatches: Vec<String> = run_errors;
    let mut snippet_checked = 0;
    let mut snippet_failed = 0;

    for (key, sentence) in &want {
        let (feed, guid, rule) = key;
        let score = scores.entry(rule.as_str()).or_default();
        match got.get(key) {
            None => {
                score.fn_ += 1;
                mismatches.push(format!("FN {rule}: {feed}/{guid} must match"));
            }
            Some(alerts) => {
                score.tp += 1;
                if alerts.len() > 1 {
                    mismatches.push(format!(
                        "DUP {rule}: {feed}/{guid} alerted {} times",
                        alerts.len()
                    ));
                }
                let item = &items[&(feed.clone(), guid.clone())];
                snippet_checked += 1;
                let problems = snippet_problems(&alerts[0], sentence, item);
                if !problems.is_empty() {
                    snippet_failed += 1;
                    for p in problems {
                        mismatches.push(format!("SNIPPET {rule}: {feed}/{guid}: {p}"));
                    }
                }
            }
        }
    }
    for (key, alerts) in &got {
        if want.contains_key(key) {
            continue;
        }
        let (feed, guid, rule) = key;
        let score = scores.entry(rule.as_str()).or_default();
        score.fp += 1;
        let snippet = s(&alerts[0], &["snippet", "text"]);
        mismatches.push(format!(
            "FP {rule}: {feed}/{guid} must not match (snippet {snippet:?})"
        ));
    }

    // The report.
    let mut report = String::new();
    let _ = writeln!(report, "gold set: per-rule results");
    let _ = writeln!(
        report,
        "  {:<28} {:>4} {:>4} {:>4} {:>9} {:>7}",
        "rule", "TP", "FP", "FN", "precision", "recall"
    );
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    for (id, sc) in &scores {
        let _ = writeln!(
            report,
            "  {id:<28} {:>4} {:>4} {:>4} {:>9} {:>7}",
            sc.tp,
            sc.fp,
            sc.fn_,
            ratio(sc.tp, sc.tp + sc.fp),
            ratio(sc.tp, sc.tp + sc.fn_)
        );
        tp += sc.tp;
        fp += sc.fp;
        fn_ += sc.fn_;
    }
    let _ = writeln!(
        report,
        "  {:<28} {tp:>4} {fp:>4} {fn_:>4} {:>9} {:>7}",
        "TOTAL",
        ratio(tp, tp + fp),
        ratio(tp, tp + fn_)
    );
    let _ = writeln!(
        report,
        "snippets: {} of {snippet_checked} true positives pass all checks",
        snippet_checked - snippet_failed
    );
    println!("{report}");

    assert!(
        mismatches.is_empty(),
        "gold set: {} mismatch(es):\n  {}\n\n{report}",
        mismatches.len(),
        mismatches.join("\n  ")
    );
}
