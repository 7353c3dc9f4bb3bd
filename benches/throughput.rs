//! Parse and match throughput. Run with `cargo bench`; figures are recorded
//! in README.md ("Performance").

use std::fmt::Write as _;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use wirewatch::parse::{parse_feed, ParseOptions};
use wirewatch::rules::{Document, RuleSet, RuleSpec};

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

/// `n` rules: a few that hit the bench text, the rest distinct words that
/// never occur.
fn rules(n: usize) -> RuleSet {
    let mut specs = vec![
        RuleSpec {
            id: "kursk".into(),
            any: vec!["Kursk".into(), "Курск".into()],
            ..RuleSpec::default()
        },
        RuleSpec {
            id: "dprk-workers".into(),
            all: vec!["\"North Korean\"".into(), "workers".into()],
            none: vec!["hockey".into()],
            ..RuleSpec::default()
        },
    ];
    for i in specs.len()..n {
        specs.push(RuleSpec {
            id: format!("r{i}"),
            any: vec![format!("term{i}"), format!("\"phrase {i} words\"")],
            ..RuleSpec::default()
        });
    }
    RuleSet::compile(specs).unwrap_or_else(|e| panic!("bench rules do not compile: {e:?}"))
}

fn bench_match(c: &mut Criterion) {
    let mut g = c.benchmark_group("match");
    g.throughput(Throughput::Elements(1));
    for n in [10, 1_000, 10_000] {
        let set = rules(n);
        g.bench_with_input(BenchmarkId::new("item_vs_rules", n), &set, |b, set| {
            b.iter(|| {
                let doc = Document::new("Border update: deminers at work", BODY, "");
                set.matches("wire", &doc).len()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_parse, bench_match);
criterion_main!(benches);
