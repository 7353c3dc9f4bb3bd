//! Tests of the rule language and engine.

use proptest::prelude::*;

use super::*;

fn fields<'a>(title: &'a str, summary: &'a str, content: &'a str) -> DocFields<'a> {
    DocFields {
        title,
        summary,
        content,
        link: None,
        authors: &[],
        categories: &[],
        feed: "reuters-world",
    }
}

fn doc(text: &str) -> Document {
    Document::new(fields(text, "", ""))
}

fn q(query: &str) -> RuleSpec {
    RuleSpec {
        id: "r".into(),
        query: Some(query.into()),
        ..RuleSpec::default()
    }
}

fn lists(any: &[&str], all: &[&str], none: &[&str]) -> RuleSpec {
    let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
    RuleSpec {
        id: "r".into(),
        any: v(any),
        all: v(all),
        none: v(none),
        ..RuleSpec::default()
    }
}

fn aliases(defs: &[(&str, &[&str])]) -> Aliases {
    defs.iter()
        .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
        .collect()
}

fn set_with(specs: Vec<RuleSpec>, a: &Aliases) -> RuleSet {
    match RuleSet::compile(specs, a) {
        Ok((s, _)) => s,
        Err(e) => panic!("compile failed: {e:?}"),
    }
}

fn set(specs: Vec<RuleSpec>) -> RuleSet {
    set_with(specs, &Aliases::new())
}

fn errors(specs: Vec<RuleSpec>, a: &Aliases) -> Vec<RuleError> {
    match RuleSet::compile(specs, a) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e,
    }
}

fn warnings_of(specs: Vec<RuleSpec>) -> Vec<RuleWarning> {
    match RuleSet::compile(specs, &Aliases::new()) {
        Ok((_, w)) => w,
        Err(e) => panic!("compile failed: {e:?}"),
    }
}

/// Whether `query` matches `text` (as the title).
fn hit(query: &str, text: &str) -> bool {
    !set(vec![q(query)]).matches(&doc(text)).is_empty()
}

/// Highlighted substrings of `doc.text` for the first match.
fn highlights(rules: &RuleSet, d: &Document) -> Vec<String> {
    let m = rules.matches(d);
    let Some(m) = m.first() else {
        return Vec::new();
    };
    m.hits
        .iter()
        .map(|h| {
            d.field_value(h.field)
                .chars()
                .skip(h.start)
                .take(h.end - h.start)
                .collect()
        })
        .collect()
}

fn hl(query: &str, text: &str) -> Vec<String> {
    highlights(&set(vec![q(query)]), &doc(text))
}

#[test]
fn words_are_folded_and_stemmed_english() {
    assert!(hit("Kursk", "KURSK REGION"));
    assert!(hit("Kursk", "Kursk’s governor"));
    assert!(hit("deminer", "deminers arrived"));
    assert!(hit("deminer", "demining work"));
    assert!(hit("deminers", "a deminer"));
    assert!(!hit("Kursk", "Kurskaya oblast"));
    assert!(!hit("mine", "a deminer was hurt"));
    // Possessive: the highlight stops before 's.
    assert_eq!(hl("Kursk", "Kursk’s governor"), ["Kursk"]);
}

#[test]
fn words_are_folded_and_stemmed_russian() {
    assert!(hit("Курск", "в Курской области"));
    assert!(hit("Курск", "Курская АЭС"));
    assert!(hit("Курск", "бои в курске"));
    assert!(hit("курской", "КУРСК"));
    assert!(hit("Королёв", "город королев"));
    assert!(!hit("Курск", "Курчатов"));
}

#[test]
fn exact_terms() {
    assert!(hit("=Mining", "Mining stocks fell"));
    assert!(!hit("=Mining", "mining stocks fell"));
    assert!(!hit("=Mining", "Miners"));
    assert!(hit("=\"Kim Jong Un\"", "said Kim Jong Un today"));
    assert!(!hit("=\"Kim Jong Un\"", "said KIM JONG UN today"));
    assert!(hit("=\"KN-23\"", "fired a KN-23 missile"));
    assert!(hit("=KN-23", "fired a KN-23 missile"));
    assert!(!hit("=KN-23", "fired a kn-23 missile"));
}

#[test]
fn prefixes_and_mining() {
    assert!(hit("demin*", "Deminers cleared"));
    assert!(hit("demin*", "the de-mining teams"));
    // "mining" is not "demin..." and stems to "mine".
    assert!(!hit("demin*", "mining output"));
    assert!(hit("mining", "Mining stocks"));
    assert!(hit("mine", "mining"));
    assert!(!hit("=mining", "Mining"));
    assert!(hit("разминир*", "Разминирование продолжается"));
    assert_eq!(
        hl("sapper*", "Sappers and SAPPER units"),
        ["Sappers", "SAPPER"]
    );
}

#[test]
fn hyphens_join_and_split() {
    assert!(hit("demining", "de-mining teams"));
    assert!(hit("\"de mining\"", "de-mining teams"));
    assert!(hit("de-mining", "demining teams"));
    assert!(hit("Jong-un", "Kim Jong Un"));
    assert!(hit("Jong-un", "Kim Jong-un"));
    assert!(hit("\"Kim Jong Un\"", "Kim Jong-un visited"));
    assert!(hit("mining", "de-mining"));
    assert!(hit("landmine", "landmine-clearing"));
    assert_eq!(hl("demining", "the de-mining teams"), ["de-mining"]);
}

#[test]
fn phrases() {
    let rules = set(vec![q("\"North Korea\"")]);
    let m = |t: &str| !rules.matches(&doc(t)).is_empty();
    assert!(m("troops from north korea"));
    assert!(m("troops from North\nKorea"));
    assert!(m("North Korea’s troops"));
    assert!(!m("North Korean troops"));
    assert!(!m("Korea North"));
    assert!(!m("in the north. Korea said"));
    assert!(!m("Toward the North\n\nKorea said"));
    // Slop.
    assert!(hit("\"North Korea\"~2", "North and South Korea"));
    assert!(!hit("\"North Korea\"~1", "North and the South Korea"));
    assert!(!hit("\"North Korea\"~3", "Korea and North"));
    assert!(!hit("\"North Korea\"~5", "North\n\nKorea"));
    // Phrase words stem.
    assert!(hit("\"landmine clearing\"", "Landmines cleared"));
    assert_eq!(
        hl("\"North Korea\"", "from North  Korea’s army"),
        ["North  Korea"]
    );
    // Never from the title into the body.
    let d = Document::new(fields("Talks with the North", "Korea said no", ""));
    assert!(rules.matches(&d).is_empty());
}

#[test]
fn boolean_operators() {
    assert!(hit("Kursk AND drone", "drone over Kursk"));
    assert!(!hit("Kursk AND drone", "drone over Belgorod"));
    assert!(hit("Kursk drone", "drone over Kursk"));
    assert!(hit("Kursk OR Belgorod", "drone over Belgorod"));
    assert!(hit("Kursk -exercise", "Kursk attack"));
    assert!(!hit("Kursk -exercise", "Kursk exercise"));
    assert!(!hit("Kursk NOT exercise", "Kursk exercises"));
    assert!(hit(
        "(Kursk OR Belgorod) AND NOT (hockey OR football)",
        "Belgorod shelling"
    ));
    assert!(!hit(
        "(Kursk OR Belgorod) AND NOT (hockey OR football)",
        "Belgorod hockey"
    ));
    // Purely negative rules match items without the term.
    assert!(hit("-hockey", "anything else"));
    assert!(!hit("-hockey", "hockey news"));
    // Hits: all matching OR branches, never NOT leaves.
    assert_eq!(
        hl(
            "(Kursk OR Belgorod OR Sumy) -hockey",
            "Kursk and Belgorod, not Orel"
        ),
        ["Kursk", "Belgorod"]
    );
}

#[test]
fn near_both_orders_and_onear() {
    assert!(hit(
        "Shoigu NEAR/3 Pyongyang",
        "Shoigu arrived in Pyongyang"
    ));
    assert!(hit("Shoigu NEAR/3 Pyongyang", "Pyongyang welcomed Shoigu"));
    assert!(!hit(
        "Shoigu NEAR/1 Pyongyang",
        "Shoigu arrived today in Pyongyang"
    ));
    assert!(hit("Shoigu NEAR/0 Pyongyang", "Shoigu Pyongyang"));
    assert!(hit(
        "Shoigu ONEAR/3 Pyongyang",
        "Shoigu arrived in Pyongyang"
    ));
    assert!(!hit(
        "Shoigu ONEAR/3 Pyongyang",
        "Pyongyang welcomed Shoigu"
    ));
    // The same token is not its own partner.
    assert!(!hit("Kursk NEAR/5 Kursk*", "Kursk"));
    assert!(hit("Kursk NEAR/5 Kursk*", "Kursk and Kursk"));
    // Russian.
    assert!(hit("Шойгу NEAR/5 КНДР", "Шойгу прибыл в КНДР"));
}

#[test]
fn near_groups_and_highlights() {
    let query = "Shoigu NEAR/4 (Pyongyang OR \"North Korea\" OR Kim)";
    assert!(hit(query, "Shoigu met Kim in the capital"));
    assert!(hit(query, "North Korea hosted Shoigu"));
    assert!(!hit(
        query,
        "Shoigu spoke. Later, much later, far away, Kim replied"
    ));
    // Only the occurrences within distance are highlighted.
    assert_eq!(
        hl(
            query,
            "Kim was far away from this place today. Shoigu met Kim"
        ),
        ["Shoigu", "Kim"]
    );
    // Group on both sides.
    assert!(hit("(Shoigu OR Шойгу) NEAR/2 (Kim OR Ким)", "Шойгу и Ким"));
    // A group of an AND: its contributing positions.
    assert!(hit(
        "(Kursk AND drone) NEAR/1 attack",
        "drone report ... Kursk attack"
    ));
}

#[test]
fn field_scopes_in_text() {
    let rules = set(vec![
        q("title:Kursk"),
        q("summary:Kursk"),
        q("content:Kursk"),
        q("Kursk"),
    ]);
    let ids = |d: &Document| -> Vec<usize> { rules.matches(d).iter().map(|m| m.rule).collect() };
    assert_eq!(ids(&Document::new(fields("Kursk", "x", "y"))), [0, 3]);
    assert_eq!(ids(&Document::new(fields("t", "Kursk", "y"))), [1, 3]);
    assert_eq!(ids(&Document::new(fields("t", "s", "in Kursk"))), [2, 3]);
    // Offsets stay into doc.text.
    let d = Document::new(fields("Title", "Summary", "In Kursk"));
    let m = rules.matches(&d);
    assert_eq!(m[0].rule, 2);
    assert_eq!((m[0].hits[0].start, m[0].hits[0].end), (19, 24));
    assert_eq!(m[0].hits[0].field, Field::Content);
    assert!(m[0].hits[0].in_text());
    // Scoped negation.
    let rules = set(vec![q("Kursk -title:hockey")]);
    assert!(
        rules
            .matches(&Document::new(fields("News", "Kursk hockey", "")))
            .len()
            == 1
    );
    assert!(rules
        .matches(&Document::new(fields("Hockey", "Kursk", "")))
        .is_empty());
    // Dedupe: content equal to summary still answers content:.
    let rules = set(vec![q("content:Kursk"), q("summary:Kursk")]);
    let d = Document::new(fields("t", "Kursk news", "Kursk news"));
    assert_eq!(rules.matches(&d).len(), 2);
    let d = Document::new(fields(
        "t",
        "Troops in Kursk…",
        "Troops in Kursk today. Orel too",
    ));
    assert_eq!(rules.matches(&d).len(), 2);
    let rules = set(vec![q("summary:Orel")]);
    assert!(rules.matches(&d).is_empty());
}

#[test]
fn field_scopes_link_author_category_feed() {
    let authors = vec!["Jane Doe".to_string(), "Иван Петров".to_string()];
    let categories = vec!["World News".to_string(), "Military".to_string()];
    let d = Document::new(DocFields {
        title: "Kursk",
        summary: "",
        content: "",
        link: Some("https://www.tass.ru/politics/kursk-region-2024"),
        authors: &authors,
        categories: &categories,
        feed: "tass-ru",
    });
    let rules = set(vec![
        q("link:tass"),
        q("link:\"kursk region\""),
        q("author:Петров"),
        q("author:\"Doe Иван\""),
        q("category:military"),
        q("feed:tass"),
        q("feed:tass*"),
        q("feed:\"tass ru\""),
        q("feed:tassru"),
        q("feed:reuters"),
        q("author:Kursk"),
        q("link:kursk NEAR/1 link:region"),
    ]);
    let ids: Vec<usize> = rules.matches(&d).iter().map(|m| m.rule).collect();
    assert_eq!(ids, [0, 1, 2, 4, 5, 6, 7, 8, 11]);
    let m = rules.matches(&d);
    let m = |r: usize| m.iter().find(|m| m.rule == r).unwrap().clone();
    // Author offsets index the values joined by \n.
    let h = &m(2).hits[0];
    assert_eq!((h.field, h.start, h.end), (Field::Author, 14, 20));
    assert!(!h.in_text());
    assert_eq!(m(2).matched_terms(&d), ["Иван Петров"]);
    assert_eq!(m(4).matched_terms(&d), ["Military"]);
    assert_eq!(m(5).hits[0].field, Field::Feed);
    assert_eq!(m(5).matched_terms(&d), ["tass-ru"]);
}

#[test]
fn feed_globs() {
    let mut a = q("Kursk");
    a.feeds = vec!["reuters-*".into(), "ap-?".into()];
    let rules = set(vec![a, q("Kursk")]);
    let on = |feed: &str| -> Vec<usize> {
        let d = Document::new(DocFields {
            feed,
            ..fields("Kursk", "", "")
        });
        rules.matches(&d).iter().map(|m| m.rule).collect()
    };
    assert_eq!(on("reuters-world"), [0, 1]);
    assert_eq!(on("ap-1"), [0, 1]);
    assert_eq!(on("ap-12"), [1]);
    assert_eq!(on("tass"), [1]);
}

#[test]
fn regexes() {
    assert!(hit("/KN-2[34]/", "a KN-23 launch"));
    assert!(!hit("/KN-2[34]/", "a kn-23 launch"));
    assert!(hit("/KN-2[34]/i", "a kn-23 launch"));
    assert_eq!(hl("/KN-2[34]/i", "Ёж: a kn-24 launch"), ["kn-24"]);
    assert!(hit("title:/^Breaking/", "Breaking: news"));
    let d = Document::new(fields("Title", "Breaking: news", ""));
    assert!(set(vec![q("title:/^Breaking/")]).matches(&d).is_empty());
    assert_eq!(
        highlights(&set(vec![q("summary:/^Breaking/")]), &d),
        ["Breaking"]
    );
    // Regex-only and regex NEAR a word.
    assert!(hit(
        "/\\d{3} hectares/ NEAR/3 deminers",
        "deminers cleared 400 hectares"
    ));
    let d = Document::new(DocFields {
        link: Some("https://example.com/a/123"),
        ..fields("x", "", "")
    });
    assert_eq!(highlights(&set(vec![q("link:/\\d+$/")]), &d), ["123"]);
}

#[test]
fn aliases_expand_nested_and_take_the_field() {
    let a = aliases(&[
        ("kursk", &["Kursk", "Курск", "\"Kursk oblast\""]),
        ("places", &["@kursk", "Belgorod"]),
        ("shoigu", &["Shoigu", "Шойгу"]),
        (
            "demining",
            &["demin*", "sapper*", "\"mine clearance\"", "разминир*"],
        ),
    ]);
    let rules = set_with(
        vec![
            q("@demining AND @kursk"),
            q("@shoigu NEAR/5 @places"),
            q("title:@kursk"),
            q("title:@places -hockey"),
        ],
        &a,
    );
    let ids = |d: &Document| -> Vec<usize> { rules.matches(d).iter().map(|m| m.rule).collect() };
    assert_eq!(
        ids(&doc("Саперы и разминирование в Курской области")),
        [0, 2, 3]
    );
    assert_eq!(ids(&doc("Shoigu visited Belgorod")), [1, 3]);
    assert_eq!(
        ids(&Document::new(fields("News", "Kursk", ""))),
        Vec::<usize>::new()
    );
    let d = doc("Mine clearance in Kursk oblast");
    let m = rules.matches(&d);
    assert_eq!(m[0].rule, 0);
    let terms: Vec<&str> = m[0].hits.iter().map(|h| rules.term(h)).collect();
    assert_eq!(terms, ["\"mine clearance\"", "Kursk", "\"Kursk oblast\""]);
    // Inner explicit field wins.
    let a = aliases(&[("x", &["content:Kursk"])]);
    let rules = set_with(vec![q("title:@x")], &a);
    assert_eq!(
        rules
            .matches(&Document::new(fields("t", "", "Kursk")))
            .len(),
        1
    );
    assert!(rules
        .matches(&Document::new(fields("Kursk", "", "c")))
        .is_empty());
}

#[test]
fn alias_errors() {
    let a = aliases(&[
        ("a", &["x", "@b"]),
        ("b", &["@a"]),
        ("c", &["@nope"]),
        ("Bad!", &["y"]),
    ]);
    let e = errors(vec![q("Kursk @missing"), q("@c")], &a);
    let cycle = e
        .iter()
        .find(|e| e.message.starts_with("alias cycle"))
        .unwrap();
    assert_eq!(cycle.message, "alias cycle: @a -> @b -> @a");
    assert_eq!(
        e.iter()
            .filter(|e| e.message.starts_with("alias cycle"))
            .count(),
        1
    );
    assert_eq!(cycle.at.list, "aliases");
    let unknown = e
        .iter()
        .find(|e| e.message == "unknown alias @missing")
        .unwrap();
    assert_eq!(
        unknown.at,
        RuleLocation {
            rule: Some(0),
            list: "query",
            alias: None,
            index: None,
            offset: Some(6)
        }
    );
    let nope: Vec<_> = e
        .iter()
        .filter(|e| e.message == "unknown alias @nope")
        .collect();
    assert_eq!(nope.len(), 1);
    assert_eq!(
        nope[0].at,
        RuleLocation {
            rule: None,
            list: "aliases",
            alias: Some("c".into()),
            index: Some(0),
            offset: Some(0)
        }
    );
    assert!(e
        .iter()
        .any(|e| e.at.alias.as_deref() == Some("Bad!") && e.message.contains("may only hold")));
}

#[test]
fn compile_errors_with_locations() {
    let mut both = q("Kursk");
    both.any = vec!["x".into()];
    let mut bad_feed = q("Kursk");
    bad_feed.feeds = vec!["ok".into(), "[x".into()];
    let e = errors(
        vec![
            q("Kursk"),
            RuleSpec::default(),
            both,
            q("Kursk AND /a(b/"),
            q("de*"),
            q("a NEAR/51 b"),
            q("\"a b\"~60"),
            lists(&["ok", " ", "—"], &["(x"], &[]),
            bad_feed,
            q("   "),
            q("Kursk ("),
        ],
        &Aliases::new(),
    );
    let at = |i: usize| (e[i].at.rule, e[i].at.list, e[i].at.index, e[i].at.offset);
    assert_eq!(at(0), (Some(1), "query", None, None));
    assert!(e[0].message.contains("needs a `query`"));
    assert_eq!(at(1), (Some(2), "query", None, None));
    assert_eq!(e[1].message, "use either query or any/all/none");
    assert_eq!(at(2), (Some(3), "query", None, Some(10)));
    assert!(
        e[2].message.starts_with("invalid regex /a(b/"),
        "{}",
        e[2].message
    );
    assert_eq!(at(3), (Some(4), "query", None, Some(0)));
    assert!(e[3].message.contains("at least 3 letters"));
    // The parser bounds NEAR and slop; the engine checks again.
    assert_eq!((at(4).0, at(4).1), (Some(5), "query"));
    assert!(e[4].message.contains("50"), "{}", e[4].message);
    assert_eq!((at(5).0, at(5).1), (Some(6), "query"));
    assert!(e[5].message.contains("50"), "{}", e[5].message);
    assert_eq!(at(6), (Some(7), "any", Some(1), None));
    assert_eq!(e[6].message, "empty term");
    assert_eq!(at(7), (Some(7), "any", Some(2), Some(0)));
    assert_eq!((at(8).1, at(8).2), ("all", Some(0)));
    assert!(at(8).3.is_some());
    assert_eq!(at(9), (Some(8), "feeds", Some(1), None));
    assert_eq!(at(10), (Some(9), "query", None, None));
    assert_eq!(at(11).0, Some(10));
    assert!(at(11).3.is_some());
    assert_eq!(e.len(), 12);
    // Display names the place.
    assert_eq!(
        e[1].to_string(),
        "rule #2 query: use either query or any/all/none"
    );
}

#[test]
fn regex_size_limit() {
    let e = errors(vec![q("x /\\w{1000}\\w{1000}/")], &Aliases::new());
    assert_eq!(e[0].at.offset, Some(2));
    assert!(e[0].message.contains("too big"), "{}", e[0].message);
}

#[test]
fn warnings_contradiction_stopword_negative() {
    let w = warnings_of(vec![
        q("Kursk -Kursk"),
        lists(&[], &["x"], &["x"]),
        q("the"),
        q("и"),
        q("abc*"),
        q("-Kursk"),
        q("Kursk AND drone"),
        q("Kursk -Kursk’s"),
        q("(Kursk OR Orel) -Kursk"),
    ]);
    let by_rule = |r: usize| -> Vec<&str> {
        w.iter()
            .filter(|w| w.at.rule == Some(r))
            .map(|w| w.message.as_str())
            .collect()
    };
    assert!(
        by_rule(0)[0].starts_with("rule can never match: Kursk"),
        "{:?}",
        by_rule(0)
    );
    assert!(by_rule(1)[0].starts_with("rule can never match"));
    assert!(by_rule(2)[0].starts_with("very broad"));
    assert!(by_rule(3)[0].starts_with("very broad"));
    assert!(by_rule(4)[0].starts_with("very broad"));
    assert!(by_rule(5)[0].starts_with("purely negative"));
    assert!(by_rule(6).is_empty());
    assert!(by_rule(7)[0].starts_with("rule can never match"));
    assert!(by_rule(8).is_empty());
    assert_eq!(
        w.iter().find(|w| w.at.rule == Some(1)).map(|w| w.at.list),
        Some("any")
    );
}

#[test]
fn shorthands() {
    let rules = set(vec![
        lists(&["Kursk", "Belgorod"], &[], &[]),
        lists(&[], &["Shoigu", "Gerasimov"], &[]),
        lists(&["Kursk"], &["drone"], &["exercise", "hockey"]),
        lists(&["North Korea"], &[], &[]),
        lists(&["\"North Korea\"", "demin*"], &[], &[]),
        lists(&["Kim Jong-un"], &[], &[]),
    ]);
    let ids = |t: &str| -> Vec<usize> { rules.matches(&doc(t)).iter().map(|m| m.rule).collect() };
    assert_eq!(ids("Shelling in Belgorod"), [0]);
    assert_eq!(ids("Shoigu met Gerasimov"), [1]);
    assert_eq!(ids("A drone hit Kursk"), [0, 2]);
    assert_eq!(ids("Kursk drone hockey"), [0]);
    assert_eq!(ids("North Korea"), [3, 4]);
    assert_eq!(ids("Korea North"), Vec::<usize>::new());
    assert_eq!(ids("deminers"), [4]);
    assert_eq!(ids("Kim Jong Un"), [5]);
    let d = doc("North Korea troops");
    let m = rules.matches(&d);
    assert_eq!(rules.term(&m[0].hits[0]), "North Korea");
}

#[test]
fn highlight_offsets_with_turkish_yo_and_emoji() {
    let rules = set(vec![q("istanbul OR ёлка OR Kursk OR Diyarbakır")]);
    let d = doc("🔥 İSTANBUL 🇺🇦 and Ёлка, Kursk — DİYARBAKIR");
    assert_eq!(
        highlights(&rules, &d),
        ["İSTANBUL", "Ёлка", "Kursk", "DİYARBAKIR"]
    );
    let m = rules.matches(&d);
    assert_eq!((m[0].hits[0].start, m[0].hits[0].end), (2, 10));
    assert_eq!(
        m[0].matched_terms(&d),
        ["İSTANBUL", "Ёлка", "Kursk", "DİYARBAKIR"]
    );
}

#[test]
fn matched_terms_dedupe_by_fold() {
    let rules = set(vec![lists(&["kursk", "north korea"], &["шойгу"], &[])]);
    let d = doc("KURSK: Шойгу said North\nKorea sent troops to Kursk’s border; ШОЙГУ");
    let m = rules.matches(&d);
    assert_eq!(m[0].matched_terms(&d), ["KURSK", "Шойгу", "North Korea"]);
}

#[test]
fn document_joins_parts() {
    assert_eq!(
        Document::new(fields("Title", "", "Body")).text,
        "Title\n\nBody"
    );
    assert_eq!(Document::new(fields(" ", "Sum", " ")).text, "Sum");
    assert_eq!(
        Document::new(fields("T", "Same  text", "Same text")).text,
        "T\n\nSame  text"
    );
    assert_eq!(
        Document::new(fields(
            "T",
            "Troops entered Kursk on…",
            "Troops entered Kursk on Tuesday."
        ))
        .text,
        "T\n\nTroops entered Kursk on Tuesday."
    );
    assert_eq!(
        Document::new(fields("T", "Lead.", "Other.")).body_start(),
        3
    );
    assert_eq!(Document::new(fields("Title", "", "")).body_start(), 5);
    assert_eq!(Document::new(fields("", "x", "")).body_start(), 0);
}

#[test]
fn api_basics() {
    let rules = set(vec![q("a1"), q("b1")]);
    assert_eq!(rules.len(), 2);
    assert!(!rules.is_empty());
    assert_eq!(rules.spec(1).query.as_deref(), Some("b1"));
    let (empty, w) = RuleSet::compile(Vec::new(), &Aliases::new()).unwrap();
    assert!(empty.is_empty() && w.is_empty());
}

proptest! {
    #[test]
    fn matching_never_panics_and_offsets_fit(
        title in any::<String>(),
        summary in any::<String>(),
        content in "(Kursk|North|Korea|de-mining|Курск|İ|ё|'s|’|\\s|\n\n|[.,—-]|\\PC){0,40}",
        author in any::<String>(),
    ) {
        let rules = set_with(vec![
            q("Kursk OR \"North Korea\" OR demin*"),
            q("(Kursk OR Курск) NEAR/3 (North OR =Korea)"),
            q("-Korea"),
            q("/[Kk]ursk|İ/i OR author:/./ OR author:abc*"),
            q("title:\"north korea\"~2 OR content:@k"),
            lists(&["North Korea"], &["de-mining"], &["x"]),
        ], &aliases(&[("k", &["Курск", "Kursk"])]));
        let authors = vec![author];
        let d = Document::new(DocFields { authors: &authors, ..fields(&title, &summary, &content) });
        for m in rules.matches(&d) {
            for h in &m.hits {
                let n = d.field_value(h.field).chars().count();
                prop_assert!(h.start < h.end && h.end <= n, "{h:?} n={n}");
            }
            let _ = m.matched_terms(&d);
        }
    }
}

#[test]
fn every_error_in_one_query_is_reported() {
    let e = errors(
        vec![q("Shoigu NEAR/x Pyongyang AND de* AND @Bad")],
        &Aliases::new(),
    );
    let offsets: Vec<Option<usize>> = e.iter().map(|e| e.at.offset).collect();
    assert!(e.len() >= 2, "{e:?}");
    assert_eq!(offsets[0], Some(7), "{e:?}");
    assert!(
        e.iter().any(|e| e.message.contains("at least 3 letters")),
        "{e:?}"
    );
}

/// A rule over a small vocabulary, as a query: every operator, fields,
/// phrases, prefixes, exact terms, regexes and aliases.
fn arb_query() -> impl Strategy<Value = String> {
    let word = prop::sample::select(vec![
        "kursk",
        "Kursk",
        "=Kursk",
        "mine",
        "mines",
        "demin*",
        "de-mining",
        "border",
        "north",
        "korea",
        "Курск",
        "Курской",
        "сапер*",
        "@k",
        "title:kursk",
        "content:border",
        "summary:mine",
        "author:jane",
        "category:world",
        "feed:wire",
        "link:example",
        "/kur+sk/i",
        "\"north korea\"",
        "\"mine border\"~2",
        "=\"North Korea\"",
    ])
    .prop_map(str::to_string);
    word.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} AND {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} OR {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} -{b})")),
            inner.clone().prop_map(|a| format!("(NOT {a})")),
            (inner.clone(), inner.clone(), 0u32..6)
                .prop_map(|(a, b, n)| format!("({a} NEAR/{n} {b})")),
            (inner.clone(), inner, 0u32..6).prop_map(|(a, b, n)| format!("({a} ONEAR/{n} {b})")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn shortcuts_never_change_results(
        queries in prop::collection::vec(arb_query(), 1..40),
        words in prop::collection::vec(prop::sample::select(vec![
            "Kursk", "kursk", "mine", "mines", "mining", "de-mining", "demining", "border",
            "North", "Korea", "Курск", "Курской", "саперы", "the", "of", "jane", ".", "\n\n",
        ]), 0..60),
        title_len in 0usize..8,
    ) {
        let specs: Vec<RuleSpec> = queries
            .iter()
            .enumerate()
            .map(|(i, query)| RuleSpec { id: format!("r{i}"), ..q(query) })
            .collect();
        let Ok((rules, _)) = RuleSet::compile(specs, &aliases(&[("k", &["Kursk", "Курск"])])) else {
            return Ok(());
        };
        let split = title_len.min(words.len());
        let title = words[..split].join(" ");
        let body = words[split..].join(" ");
        let authors = vec!["Jane Doe".to_string()];
        let categories = vec!["World".to_string()];
        let d = Document::new(DocFields {
            link: Some("https://example.invalid/kursk"),
            authors: &authors,
            categories: &categories,
            feed: "wire-world",
            ..fields(&title, "", &body)
        });
        prop_assert_eq!(rules.matches(&d), rules.matches_exhaustive(&d));
    }
}

#[test]
fn every_error_in_list_and_alias_elements_is_reported() {
    let e = errors(
        vec![lists(&["Shoigu NEAR/x Pyongyang AND de*"], &[], &[])],
        &aliases(&[("k", &["Kursk AND (", "x NEAR/99 y OR *sk"])]),
    );
    let any: Vec<_> = e.iter().filter(|e| e.at.list == "any").collect();
    assert!(any.len() >= 2, "{e:?}");
    assert!(
        any.iter().any(|e| e.message.contains("at least 3 letters")),
        "{e:?}"
    );
    let second: Vec<_> = e
        .iter()
        .filter(|e| e.at.list == "aliases" && e.at.index == Some(1))
        .collect();
    assert!(second.len() >= 2, "{e:?}");
}

#[test]
fn term_cache_follows_rule_set_and_documents() {
    // The per-thread term cache is keyed by cached surfaces: matching
    // several sets against several documents in turn must give what a
    // fresh matcher gives.
    let a = set(vec![q("Kursk"), q("demin* NEAR/3 border"), q("=North")]);
    let b = set(vec![
        q("border -Kursk"),
        q("\"north korea\""),
        q("title:mines"),
    ]);
    let texts = [
        "Kursk deminers reach the border",
        "North Korea and the border",
        "Mines near Kursk; de-mining at the border",
        "north korea",
    ];
    for round in 0..3 {
        for t in texts {
            let d = doc(t);
            for s in [&a, &b] {
                assert_eq!(s.matches(&d), s.matches_exhaustive(&d), "{round} {t}");
            }
        }
    }
    // A document that hits must still hit after the other set ran.
    let d = doc("Kursk deminers reach the border");
    assert_eq!(a.matches(&d).len(), 2);
    assert_eq!(b.matches(&d).len(), 0);
    assert_eq!(a.matches(&d).len(), 2);
}

#[test]
fn rules_with_more_leaves_than_the_mask_holds() {
    // Leaves past the mask's bits are "unknown" to the quick check and
    // looked up during full evaluation.
    let words: Vec<String> = (0..70).map(|i| format!("w{i}x")).collect();
    let many = format!("({}) AND kursk", words.join(" OR "));
    let negated = format!("kursk -({})", words.join(" OR "));
    let rules = set(vec![q(&many), q(&negated)]);
    for (text, want) in [
        ("kursk w69x", vec![0]),
        ("kursk w3x", vec![0]),
        ("kursk alone", vec![1]),
        ("w69x alone", vec![]),
    ] {
        let d = doc(text);
        let got: Vec<usize> = rules.matches(&d).iter().map(|m| m.rule).collect();
        assert_eq!(got, want, "{text}");
        assert_eq!(rules.matches(&d), rules.matches_exhaustive(&d), "{text}");
    }
}
