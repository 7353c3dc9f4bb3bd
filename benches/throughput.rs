//! Parse and match throughput. Run with `cargo bench`; figures are recorded
//! in README.md ("Performance").
//!
//! The rule generator mixes what real watch lists hold: single words
//! (mostly rare names, some common news words), phrases, sloppy phrases,
//! prefixes, AND/NOT, NEAR/ONEAR over groups, field scopes (title, content,
//! author, category, feed), aliases, `any`/`all`/`none` shorthands, and a
//! few regexes. Items are ~1.2 KB of English or Russian wire text: stop
//! words, ~90 news words, place names and a 1,500-word everyday vocabulary.
//! Two term mixes: `item_vs_rules` (a watch list: 10% of rule terms are
//! words the items use, about 1.2% of 10,000 rules match each item) and
//! `item_vs_broad_rules` (a stress case: 30%, about 3% match each item).
//! The setup prints the matching rules per item.

use std::fmt::Write as _;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use wirewatch::parse::{parse_feed, ParseOptions};
use wirewatch::rules::{Aliases, DocFields, Document, RuleSet, RuleSpec};

const BODY: &str = "Officials in the Kursk region said on Tuesday that deminers had cleared \
    another 40 hectares of farmland near the border. Gen. Valery Petrov told reporters the \
    work would continue through the winter. Separately, the U.S. State Department said it was \
    monitoring reports of North Korean workers arriving in Russia's Far East.";

/// An RSS 2.0 document with `n` items of wire-sized text (~700 bytes each).
fn rss(n: usize) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel><title>Bench wire</title>");
    for i in 0..n {
        let _ = write!(
            s,
            "<item><guid>bench-{i}</guid><title>Story {i}: border update</title><link>https://example.invalid/{i}</link>\
             <pubDate>Tue, 24 Nov 2026 10:{:02}:00 GMT</pubDate><description>&lt;p&gt;{BODY}&lt;/p&gt;</description></item>",
            i % 60
        );
    }
    s.push_str("</channel></rss>");
    s
}

fn bench_parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    for n in [20, 200] {
        let doc = rss(n);
        g.throughput(Throughput::Bytes(doc.len() as u64));
        g.bench_with_input(BenchmarkId::new("rss_items", n), &doc, |b, doc| {
            b.iter(|| {
                parse_feed(doc.as_bytes(), None, &ParseOptions::default()).map(|f| f.items.len())
            })
        });
    }
    g.finish();
}

/// A small deterministic PRNG (xorshift), so runs compare.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len())]
    }
}

const EN: &[&str] = &[
    "officials",
    "region",
    "said",
    "border",
    "deminers",
    "cleared",
    "farmland",
    "winter",
    "reporters",
    "troops",
    "drone",
    "attack",
    "missile",
    "defence",
    "ministry",
    "governor",
    "shelling",
    "village",
    "evacuation",
    "talks",
    "sanctions",
    "exports",
    "grain",
    "pipeline",
    "energy",
    "prices",
    "election",
    "parliament",
    "minister",
    "president",
    "spokesman",
    "statement",
    "agency",
    "reported",
    "killed",
    "wounded",
    "injured",
    "civilians",
    "soldiers",
    "forces",
    "offensive",
    "counteroffensive",
    "bridge",
    "railway",
    "airport",
    "port",
    "refinery",
    "power",
    "station",
    "nuclear",
    "plant",
    "inspectors",
    "hectares",
    "landmines",
    "clearing",
    "operation",
    "security",
    "council",
    "resolution",
    "vote",
    "embassy",
    "delegation",
    "visit",
    "summit",
    "agreement",
    "ceasefire",
    "negotiations",
    "prisoners",
    "exchange",
    "humanitarian",
    "aid",
    "convoy",
    "refugees",
    "shelter",
    "hospital",
    "damage",
    "fire",
    "mining",
    "workers",
    "arriving",
    "monitoring",
    "reports",
    "continue",
    "through",
    "weekend",
];
const EN_STOP: &[&str] = &[
    "the", "of", "in", "and", "to", "a", "on", "that", "with", "for", "was", "by",
];
const RU: &[&str] = &[
    "власти",
    "области",
    "заявил",
    "границы",
    "саперы",
    "разминирование",
    "удар",
    "беспилотник",
    "ракета",
    "министерство",
    "обороны",
    "губернатор",
    "обстрел",
    "село",
    "эвакуация",
    "переговоры",
    "санкции",
    "экспорт",
    "зерно",
    "энергетика",
    "цены",
    "выборы",
    "президент",
    "агентство",
    "погибли",
    "ранены",
    "мирные",
    "жители",
    "войска",
    "наступление",
    "мост",
    "железная",
    "дорога",
    "аэропорт",
    "станция",
    "инспекторы",
    "гектаров",
    "операция",
    "безопасности",
    "совет",
    "визит",
    "соглашение",
];
const RU_STOP: &[&str] = &["и", "в", "на", "по", "с", "что", "не", "из"];
const PLACES: &[&str] = &[
    "Kursk",
    "Belgorod",
    "Pyongyang",
    "Moscow",
    "Kyiv",
    "Kharkiv",
    "Sumy",
    "Zaporizhzhia",
    "Курск",
    "Белгород",
    "Москва",
    "Пхеньян",
    "Харьков",
];
const SYLLABLES: &[&str] = &[
    "var", "nok", "hin", "tel", "ros", "mar", "div", "kel", "zan", "pol", "bru", "sto", "lev",
    "gor", "min", "dal", "vik", "ter", "san", "ush", "ova", "ich", "enk", "ars",
];

/// A rare name (most rule terms): does not occur in the items.
fn name(rng: &mut Rng) -> String {
    let n = 2 + rng.below(2);
    let mut s = String::new();
    for _ in 0..n {
        s.push_str(rng.pick(SYLLABLES));
    }
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or(s)
}

const CV: &[&str] = &[
    "ba", "de", "fi", "go", "lu", "ma", "ne", "pi", "ro", "su", "ta", "ve", "zo", "ka", "li", "mo",
    "nu", "pe", "ri", "so",
];

/// The `k`-th word of a 1,500-word everyday vocabulary (consonant-vowel
/// syllables, so never equal to a rare name).
fn everyday(k: usize) -> String {
    let n = CV.len();
    format!("{}{}{}", CV[k % n], CV[(k / n) % n], CV[(k / n / n) % n])
}

const EVERYDAY: usize = 1_500;

/// How often rule terms are words the items use, per 100 terms; the rest
/// are rare names that never occur.
#[derive(Clone, Copy)]
struct Mix {
    everyday: usize,
    news: usize,
    places: usize,
    russian: usize,
}

/// A watch list: 90% names, 10% words the items use (4% everyday words,
/// 2% each news words, places, Russian words). About 1.2% of 10,000 such
/// rules match each item.
const TYPICAL: Mix = Mix {
    everyday: 4,
    news: 2,
    places: 2,
    russian: 2,
};

/// A stress case: 30% of the terms are words the items use (15% everyday
/// words, 5% each news words, places, Russian words). About 3% of 10,000
/// such rules match each item.
const BROAD: Mix = Mix {
    everyday: 15,
    news: 5,
    places: 5,
    russian: 5,
};

fn term(rng: &mut Rng, mix: Mix) -> String {
    let k = rng.below(100);
    let mut edge = mix.everyday;
    if k < edge {
        return everyday(rng.below(EVERYDAY));
    }
    for (n, words) in [(mix.news, EN), (mix.places, PLACES), (mix.russian, RU)] {
        edge += n;
        if k < edge {
            return rng.pick(words).to_string();
        }
    }
    name(rng)
}

fn aliases(mix: Mix) -> Aliases {
    let mut a = Aliases::new();
    let mut rng = Rng(7);
    a.insert(
        "kursk".into(),
        vec!["Kursk".into(), "Курск".into(), "\"Kursk oblast\"".into()],
    );
    a.insert(
        "demining".into(),
        vec![
            "demin*".into(),
            "sapper*".into(),
            "\"mine clearance\"".into(),
            "сапер*".into(),
        ],
    );
    for i in 0..200 {
        let v = (0..3).map(|_| term(&mut rng, mix)).collect();
        a.insert(format!("a{i}"), v);
    }
    a
}

/// `n` mixed-operator rules.
fn specs(n: usize, mix: Mix) -> Vec<RuleSpec> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (a, b, c) = (
            term(&mut rng, mix),
            term(&mut rng, mix),
            term(&mut rng, mix),
        );
        let query = match i % 16 {
            0 => a,
            1 => format!("\"{a} {b}\""),
            2 => format!("{}*", &a.chars().take(4 + rng.below(3)).collect::<String>()),
            3 => format!("{a} AND {b} -{c}"),
            4 => format!("{a} NEAR/5 ({b} OR {c})"),
            5 => format!("title:{a} OR content:\"{b} {c}\""),
            6 => format!("@a{} AND {b}", rng.below(200)),
            7 => format!("{a} ONEAR/3 {b}"),
            8 => format!("\"{a} {b}\"~2 OR ={c}"),
            9 => format!("({a} OR {b}) AND NOT title:{c}"),
            10 => format!("@a{} NEAR/10 @a{}", rng.below(200), rng.below(200)),
            11 => format!("author:{a} OR category:{b} OR feed:{}", c.to_lowercase()),
            12 if i % 400 == 12 => format!("/\\b{}\\d+\\b/i AND {b}", a.to_lowercase()),
            12 if i % 2000 == 28 => format!("/{a}-\\d+/"),
            13 => {
                out.push(RuleSpec {
                    id: format!("r{i}"),
                    any: vec![a, format!("{b} {c}")],
                    none: vec![term(&mut rng, mix)],
                    ..RuleSpec::default()
                });
                continue;
            }
            _ => format!("{a} {b} OR {c}"),
        };
        out.push(RuleSpec {
            id: format!("r{i}"),
            query: Some(query),
            ..RuleSpec::default()
        });
    }
    // Rules that hit the items.
    for (k, q) in [
        "@demining AND @kursk",
        "deminers NEAR/8 border",
        "title:drone OR \"nuclear plant\"",
        "Курск AND (удар OR обстрел)",
    ]
    .into_iter()
    .enumerate()
    {
        if k < out.len() {
            out[k].query = Some(q.into());
            out[k].any.clear();
            out[k].none.clear();
        }
    }
    out
}

fn rules(n: usize, mix: Mix) -> RuleSet {
    match RuleSet::compile(specs(n, mix), &aliases(mix)) {
        Ok((set, _)) => set,
        Err(e) => panic!("bench rules do not compile: {:?}", &e[..e.len().min(3)]),
    }
}

/// An item of about 1.2 KB: English or Russian sentences over the shared
/// vocabulary, with a place name or two.
fn item(rng: &mut Rng, russian: bool) -> (String, String) {
    let (words, stop) = if russian {
        (RU, RU_STOP)
    } else {
        (EN, EN_STOP)
    };
    let title = format!(
        "{} {} {}",
        rng.pick(PLACES),
        rng.pick(words),
        rng.pick(words)
    );
    let mut body = String::new();
    while body.len() < 1150 {
        let n = 8 + rng.below(12);
        let mut sentence = Vec::with_capacity(n);
        for k in 0..n {
            let w = match rng.below(20) {
                0..=6 => rng.pick(stop).to_string(),
                7..=11 => rng.pick(words).to_string(),
                12 if k > 0 => rng.pick(PLACES).to_string(),
                _ => everyday(rng.below(EVERYDAY)),
            };
            sentence.push(w);
        }
        let s = sentence.join(" ");
        let mut c = s.chars();
        if let Some(f) = c.next() {
            body.extend(f.to_uppercase());
            body.push_str(c.as_str());
        }
        body.push_str(if rng.below(4) == 0 {
            ", said a spokesman. "
        } else {
            ". "
        });
        if rng.below(6) == 0 {
            body.push_str("\n\n");
        }
    }
    (title, body.trim().to_string())
}

fn items() -> Vec<(String, String)> {
    let mut rng = Rng(42);
    (0..64).map(|i| item(&mut rng, i % 3 == 2)).collect()
}

fn document(title: &str, body: &str, authors: &[String], categories: &[String]) -> Document {
    Document::new(DocFields {
        title,
        summary: "",
        content: body,
        link: Some("https://example.invalid/world/2026/11/story"),
        authors,
        categories,
        feed: "wire-world",
    })
}

fn bench_match(c: &mut Criterion) {
    let items = items();
    let authors = vec!["Jane Doe".to_string()];
    let categories = vec!["World".to_string(), "Europe".to_string()];
    let mut g = c.benchmark_group("match");
    g.throughput(Throughput::Elements(1));
    for (mix_name, mix, sizes) in [
        ("item_vs_rules", TYPICAL, &[10, 1_000, 10_000][..]),
        ("item_vs_broad_rules", BROAD, &[10_000][..]),
    ] {
        for &n in sizes {
            let set = rules(n, mix);
            let matched: usize = items
                .iter()
                .map(|(t, b)| set.matches(&document(t, b, &authors, &categories)).len())
                .sum();
            eprintln!(
                "{mix_name}/{n}: {:.1} matching rules per item",
                matched as f64 / items.len() as f64
            );
            let mut i = 0;
            g.bench_with_input(BenchmarkId::new(mix_name, n), &set, |b, set| {
                b.iter(|| {
                    let (title, body) = &items[i % items.len()];
                    i += 1;
                    let doc = document(title, body, &authors, &categories);
                    set.matches(&doc).len()
                })
            });
        }
    }
    g.finish();
}

fn bench_compile(c: &mut Criterion) {
    let specs = specs(10_000, TYPICAL);
    let aliases = aliases(TYPICAL);
    if let Some(before) = rss_bytes() {
        let set = rules(10_000, TYPICAL);
        if let Some(after) = rss_bytes() {
            eprintln!(
                "compiled 10,000 rules: resident memory grew by {:.1} MB ({} rules)",
                after.saturating_sub(before) as f64 / 1e6,
                set.len()
            );
        }
    }
    let mut g = c.benchmark_group("compile");
    g.sample_size(10);
    g.bench_function("rules/10000", |b| {
        b.iter(|| RuleSet::compile(specs.clone(), &aliases).map(|(s, _)| s.len()))
    });
    g.finish();
}

/// Resident set size, where /proc is available.
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

criterion_group!(benches, bench_parse, bench_match, bench_compile);
criterion_main!(benches);
