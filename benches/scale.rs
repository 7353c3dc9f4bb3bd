//! Load proofs for the daemon, run against the release `wirewatch` binary as
//! a child process (so what is measured is the program users run):
//!
//! ```text
//! cargo bench --bench scale                      # scale: 5,000 feeds, two cycles, idle
//! cargo bench --bench scale -- --feeds 1000 --concurrency 32
//! cargo bench --bench scale -- soak --duration 30m   # 500 feeds, 10% hostile
//! cargo bench --bench scale -- serve --feeds 200 --out DIR   # corpus only (benches/compare.sh)
//! ```
//!
//! The corpus is generated here: feeds of 20–100 items of wire-style text
//! (RSS 2.0, Atom and JSON Feed) built from word lists in this file, served
//! on 127.0.0.1 by a small HTTP/1.1 server that honours If-None-Match and
//! If-Modified-Since with 304s, and counts what it answered. The child's
//! wall time, CPU seconds (user + sys) and peak RSS come from `wait4`; idle
//! and soak figures from `/proc/PID/stat` and `/proc/PID/status`.
//!
//! Every feed lives on the one loopback host, so per-host politeness would
//! serialise the whole corpus: when the binary knows `[daemon]
//! max_fetches_per_host` / `min_host_spacing` (probed with `wirewatch
//! check`), the bench lifts them (see `HOST_LIMIT_CANDIDATES`) unless
//! `--keep-host-limits` is given. docs/performance.md has the figures.

use std::fmt::Write as _;
use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The binary under test: cargo builds it (bench profile = release) and
/// tells us where.
const WIREWATCH: &str = env!("CARGO_BIN_EXE_wirewatch");

/// Per-host limits lifted for the one-host corpus, tried in order with
/// `wirewatch check` (keys unknown to the binary are config errors, so a
/// binary without per-host politeness gets none of them). `{c}` is the
/// global fetch bound.
const HOST_LIMIT_CANDIDATES: &[&str] = &[
    "max_fetches_per_host = {c}\nmin_host_spacing = \"0s\"\n",
    "max_fetches_per_host = {c}\nmin_host_spacing = \"1ms\"\n",
];

/// The shipped default of `max_concurrent_fetches` (reported when the bench
/// does not set it).
const DEFAULT_FETCHES: usize = 8;

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Scale,
    Soak,
    Serve,
}

struct Opts {
    mode: Mode,
    feeds: usize,
    /// `max_concurrent_fetches` to write; `None` keeps the default.
    concurrency: Option<usize>,
    keep_host_limits: bool,
    /// Scale: how long the idle daemon is sampled.
    idle: Duration,
    /// Scale: share of feeds that publish between the two cycles.
    changed: f64,
    json_share: f64,
    atom_share: f64,
    /// Soak.
    duration: Duration,
    hostile: f64,
    interval_min: u64,
    interval_max: u64,
    /// Serve: where urls.txt and a wirewatch config go.
    out: Option<PathBuf>,
    port: u16,
    keep: bool,
    seed: u64,
}

fn usage() -> ! {
    eprintln!(
        "usage: cargo bench --bench scale -- [scale|soak|serve] [--feeds N] [--concurrency N]\n\
         \x20   [--keep-host-limits] [--idle 60s] [--changed 0.02] [--json-share 0.08]\n\
         \x20   [--atom-share 0.12] [--duration 30m] [--hostile 0.1] [--interval 30s-60s]\n\
         \x20   [--out DIR] [--port N] [--keep] [--seed N]"
    );
    std::process::exit(2)
}

fn parse_duration(s: &str) -> Duration {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().unwrap_or_else(|_| usage());
    match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => usage(),
    }
}

fn parse_opts() -> Opts {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // cargo bench passes --bench to harness = false targets.
    args.retain(|a| a != "--bench");
    let mut it = args.into_iter().peekable();
    let mode = match it.peek().map(String::as_str) {
        Some("scale") => Mode::Scale,
        Some("soak") => Mode::Soak,
        Some("serve") => Mode::Serve,
        _ => Mode::Scale,
    };
    if it
        .peek()
        .is_some_and(|a| ["scale", "soak", "serve"].contains(&a.as_str()))
    {
        it.next();
    }
    let mut o = Opts {
        mode,
        feeds: match mode {
            Mode::Scale => 5000,
            Mode::Soak => 500,
            Mode::Serve => 200,
        },
        concurrency: None,
        keep_host_limits: false,
        idle: Duration::from_secs(60),
        changed: 0.02,
        json_share: if mode == Mode::Serve { 0.0 } else { 0.08 },
        atom_share: 0.12,
        duration: Duration::from_secs(30 * 60),
        hostile: 0.1,
        interval_min: 30,
        interval_max: 60,
        out: None,
        port: 0,
        keep: false,
        seed: 2026,
    };
    while let Some(a) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--feeds" => o.feeds = val().parse().unwrap_or_else(|_| usage()),
            "--concurrency" => o.concurrency = Some(val().parse().unwrap_or_else(|_| usage())),
            "--keep-host-limits" => o.keep_host_limits = true,
            "--idle" => o.idle = parse_duration(&val()),
            "--changed" => o.changed = val().parse().unwrap_or_else(|_| usage()),
            "--json-share" => o.json_share = val().parse().unwrap_or_else(|_| usage()),
            "--atom-share" => o.atom_share = val().parse().unwrap_or_else(|_| usage()),
            "--duration" => o.duration = parse_duration(&val()),
            "--hostile" => o.hostile = val().parse().unwrap_or_else(|_| usage()),
            "--interval" => {
                let v = val();
                let (lo, hi) = v.split_once('-').unwrap_or((&v, &v));
                o.interval_min = parse_duration(lo).as_secs().max(1);
                o.interval_max = parse_duration(hi).as_secs().max(o.interval_min);
            }
            "--out" => o.out = Some(PathBuf::from(val())),
            "--port" => o.port = val().parse().unwrap_or_else(|_| usage()),
            "--keep" => o.keep = true,
            "--seed" => o.seed = val().parse().unwrap_or_else(|_| usage()),
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    o
}

// ---------------------------------------------------------------------------
// Deterministic text
// ---------------------------------------------------------------------------

/// SplitMix64: small, deterministic, good enough to vary text.
struct Rng(u64);

impl Rng {
    fn new(a: u64, b: u64) -> Rng {
        let mut r = Rng(a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_add(0x632B_E59B));
        r.next();
        r
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

const PLACES: &[&str] = &[
    "Valdmora",
    "Tressel",
    "Port Aumery",
    "Karsk Ridge",
    "Lindqvist Sound",
    "Bellhaven",
    "Norrvik",
    "Oduya",
    "Merrow Hill",
    "Castel Brin",
    "Ivenko",
    "Zhelan",
    "Rusk Harbour",
    "Amberley Cross",
    "Teodor Plain",
    "Sablemouth",
    "Quillon",
    "East Marrow",
    "Vesna Bay",
    "Halder",
];

const ACTORS: &[&str] = &[
    "the finance ministry",
    "port workers",
    "the central bank",
    "rescue teams",
    "opposition leaders",
    "the state grid operator",
    "the electoral commission",
    "health officials",
    "the coast guard",
    "a regional court",
    "farmers' unions",
    "the defence ministry",
    "rail operators",
    "the prime minister",
    "police",
    "aid agencies",
    "the transport regulator",
    "dock workers",
    "mine owners",
    "the foreign ministry",
];

const VERBS: &[&str] = &[
    "extends",
    "suspends",
    "announces",
    "rejects",
    "warns of",
    "reports",
    "resumes",
    "calls for",
    "confirms",
    "denies",
    "delays",
    "approves",
    "investigates",
    "plans",
];

const OBJECTS: &[&str] = &[
    "strike over pay",
    "emergency rate cut",
    "ceasefire proposal",
    "power outage",
    "snap election",
    "product recall",
    "earthquake damage",
    "fuel price rise",
    "border crossing closure",
    "grain export deal",
    "flood warnings",
    "network outage",
    "peace talks",
    "bond sale",
    "budget vote",
    "evacuation order",
    "new mining licences",
    "ferry timetable cuts",
    "wage agreement",
    "water rationing",
    "bridge repairs",
    "tariff review",
    "court ruling on land rights",
    "hospital funding plan",
];

const GIVEN: &[&str] = &[
    "Mara", "Ilkka", "Tomas", "Ines", "Oren", "Saskia", "Bogdan", "Leila", "Anton", "Priya",
    "Hector", "Yuna", "Dmitri", "Grete", "Kofi", "Elin",
];

const SURNAMES: &[&str] = &[
    "Vadsten", "Okoro", "Marlow", "Kessler", "Ruiz", "Halloran", "Petrenko", "Lund", "Abara",
    "Caldera", "Ferrin", "Sorel", "Nakamura", "Dubois", "Strand", "Mbeki",
];

const ROLES: &[&str] = &[
    "a spokeswoman for the ministry",
    "the union's regional secretary",
    "a senior economist",
    "the harbour master",
    "a government spokesman",
    "the mayor",
    "an analyst at a local bank",
    "the agency's field coordinator",
];

const WEEKDAYS: &[&str] = &[
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

const CATEGORIES: &[&str] = &[
    "World",
    "Business",
    "Politics",
    "Markets",
    "Energy",
    "Transport",
    "Health",
    "Weather",
];

const QUOTES: &[&str] = &[
    "We will not accept a deal that leaves our members worse off",
    "The situation is under control and services will resume shortly",
    "There is no timetable yet, and we urge people to stay calm",
    "This decision was taken after careful review of the evidence",
    "Inflation remains the main risk to the outlook",
    "Our teams have been working through the night",
    "Talks will continue next week in a smaller format",
];

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

struct Story {
    title: String,
    /// HTML.
    body: String,
    link: String,
    guid: String,
    author: String,
    category: &'static str,
}

fn story(feed: usize, seq: u64, seed: u64) -> Story {
    let mut r = Rng::new(seed ^ feed as u64, seq);
    let place = r.pick(PLACES);
    let actor = r.pick(ACTORS);
    let verb = r.pick(VERBS);
    let object = r.pick(OBJECTS);
    let title = match r.below(4) {
        0 => format!("{place}: {actor} {verb} {object}"),
        1 => format!("{} in {place} {verb} {object}", capitalise(actor)),
        2 => format!(
            "UPDATE {}-{} {verb} {object}",
            1 + r.below(3),
            capitalise(actor)
        ),
        _ => format!(
            "{} {object} as {place} braces for week of disruption",
            capitalise(verb)
        ),
    };
    let mut body = String::new();
    let day = r.pick(WEEKDAYS);
    let _ = write!(
        body,
        "<p>{}, {day} (Bench Wire) &#8212; {} in {place} {verb} {object} on {day}, \
         according to a statement seen by reporters.</p>",
        place.to_uppercase(),
        capitalise(actor),
    );
    for _ in 0..1 + r.below(5) {
        let (given, surname, role) = (r.pick(GIVEN), r.pick(SURNAMES), r.pick(ROLES));
        let s = match r.below(7) {
            0 => format!(
                "<p>&#8220;{}&#8221;, said {given} {surname}, {role}.</p>",
                r.pick(QUOTES)
            ),
            1 => format!(
                "<p>The move follows {} days of {} across the {} region, where {} \
                 has been under pressure since the spring.</p>",
                2 + r.below(20),
                r.pick(OBJECTS),
                r.pick(PLACES),
                r.pick(ACTORS)
            ),
            2 => format!(
                "<p>Officials estimated that {} people were affected; no casualties \
                 were reported by late afternoon.</p>",
                (1 + r.below(90)) * 100
            ),
            3 => format!(
                "<p>Shares in {} companies moved {}.{}% by midday, and the currency \
                 was little changed against the euro &amp; the dollar.</p>",
                r.pick(PLACES),
                r.below(4),
                r.below(10)
            ),
            4 => format!(
                "<p>{given} {surname}, {role}, said details would be published \
                 <a href=\"https://bench.example.invalid/docs/{seq}\">on the \
                 ministry's site</a> by {}.</p>",
                r.pick(WEEKDAYS)
            ),
            5 => format!(
                "<p>In {}, {} {} {} earlier this month, a decision {} criticised as \
                 <b>premature</b>.</p>",
                r.pick(PLACES),
                r.pick(ACTORS),
                r.pick(VERBS),
                r.pick(OBJECTS),
                r.pick(SURNAMES)
            ),
            _ => format!(
                "<p>Asked whether the {} would change, {given} {surname} declined to \
                 comment. ({} reporting by {} {}; editing by {} {})</p>",
                r.pick(OBJECTS),
                r.pick(PLACES),
                r.pick(GIVEN),
                r.pick(SURNAMES),
                r.pick(GIVEN),
                r.pick(SURNAMES)
            ),
        };
        body.push_str(&s);
    }
    let slug: String = title
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    Story {
        link: format!(
            "https://news{}.example.invalid/{}/{seq}-{}",
            feed % 97,
            2026,
            slug.trim_matches('-')
        ),
        guid: format!("urn:bench:{feed}:{seq}"),
        author: format!("{} {}", r.pick(GIVEN), r.pick(SURNAMES)),
        category: r.pick(CATEGORIES),
        title,
        body,
    }
}

// ---------------------------------------------------------------------------
// Corpus
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Healthy,
    /// Reads the request, never answers.
    Stall,
    /// Headers, then one byte a second.
    Trickle,
    Error500,
    /// 200 with bytes that are no feed.
    Garbage,
    /// 200 with an endless (12 MiB) well-formed stream.
    Oversize,
    /// 302 to itself with a new query, forever.
    RedirectLoop,
}

const HOSTILE_KINDS: &[Kind] = &[
    Kind::Stall,
    Kind::Trickle,
    Kind::Error500,
    Kind::Garbage,
    Kind::Oversize,
    Kind::RedirectLoop,
];

#[derive(Clone, Copy, PartialEq, Debug)]
enum Format {
    Rss,
    Atom,
    Json,
}

struct FeedSpec {
    kind: Kind,
    format: Format,
    items: u64,
    /// Seconds between the initial items' dates.
    spacing: i64,
    /// Soak: seconds between publications, and the phase.
    period: u64,
    offset: u64,
    interval: u64,
}

struct Rendered {
    version: u32,
    body: Arc<Vec<u8>>,
    etag: String,
    last_modified: String,
    lm_secs: i64,
    content_type: &'static str,
}

struct Corpus {
    seed: u64,
    /// Unix time the corpus was made; the initial items end there.
    t0: i64,
    feeds: Vec<FeedSpec>,
    /// Publications forced between scale cycles.
    bumps: Vec<AtomicU32>,
    /// Soak: publications follow the clock.
    timed: Option<Instant>,
    cache: Vec<Mutex<Option<Rendered>>>,
}

/// New items published per publication.
const PER_BUMP: u64 = 2;

impl Corpus {
    fn new(o: &Opts) -> Corpus {
        let mut r = Rng::new(o.seed, 7);
        let feeds = (0..o.feeds)
            .map(|_| {
                let kind = if o.mode == Mode::Soak && r.chance(o.hostile) {
                    HOSTILE_KINDS[r.below(HOSTILE_KINDS.len())]
                } else {
                    Kind::Healthy
                };
                let f = (r.next() >> 11) as f64 / (1u64 << 53) as f64;
                let format = if f < o.json_share {
                    Format::Json
                } else if f < o.json_share + o.atom_share {
                    Format::Atom
                } else {
                    Format::Rss
                };
                FeedSpec {
                    kind,
                    format,
                    items: 20 + r.below(81) as u64,
                    spacing: [300, 900, 1800, 3600, 7200][r.below(5)],
                    period: 120 + r.below(480) as u64,
                    offset: r.below(600) as u64,
                    interval: o.interval_min
                        + r.below((o.interval_max - o.interval_min + 1) as usize) as u64,
                }
            })
            .collect::<Vec<_>>();
        Corpus {
            seed: o.seed,
            t0: chrono::Utc::now().timestamp(),
            bumps: feeds.iter().map(|_| AtomicU32::new(0)).collect(),
            cache: feeds.iter().map(|_| Mutex::new(None)).collect(),
            timed: (o.mode == Mode::Soak).then(Instant::now),
            feeds,
        }
    }

    fn version(&self, i: usize) -> u32 {
        let f = &self.feeds[i];
        let timed = self.timed.map_or(0, |t| {
            ((t.elapsed().as_secs() + f.offset) / f.period) as u32
        });
        self.bumps[i].load(Ordering::Relaxed) + timed
    }

    fn item_time(&self, f: &FeedSpec, seq: u64) -> i64 {
        if seq < f.items {
            self.t0 - (f.items - 1 - seq) as i64 * f.spacing
        } else {
            self.t0 + (seq - f.items + 1) as i64 * 15
        }
    }

    /// The feed document at its current version (cached per version).
    fn render(&self, i: usize) -> (u32, Arc<Vec<u8>>, String, String, i64, &'static str) {
        let v = self.version(i);
        let mut slot = self.cache[i].lock().unwrap();
        if slot.as_ref().is_none_or(|r| r.version != v) {
            *slot = Some(self.build(i, v));
        }
        let r = slot.as_ref().unwrap();
        (
            v,
            r.body.clone(),
            r.etag.clone(),
            r.last_modified.clone(),
            r.lm_secs,
            r.content_type,
        )
    }

    fn build(&self, i: usize, v: u32) -> Rendered {
        let f = &self.feeds[i];
        let newest = f.items - 1 + PER_BUMP * v as u64;
        let seqs = (0..f.items).map(|k| newest - k);
        let lm = self.item_time(f, newest);
        let date = |t: i64| chrono::DateTime::from_timestamp(t, 0).unwrap_or_default();
        let title = format!("{} Bench Wire #{i}", PLACES[i % PLACES.len()]);
        let home = format!("https://news{}.example.invalid/", i % 97);
        let mut s = String::with_capacity(f.items as usize * 1100);
        let content_type;
        match f.format {
            Format::Rss => {
                content_type = "application/rss+xml; charset=utf-8";
                let _ = write!(
                    s,
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\" \
                     xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><channel><title>{}</title>\
                     <link>{home}</link><description>Generated wire copy for benchmarks</description>\
                     <language>en</language><lastBuildDate>{}</lastBuildDate>\n",
                    xml_escape(&title),
                    date(lm).to_rfc2822()
                );
                for seq in seqs {
                    let st = story(i, seq, self.seed);
                    let cdata = seq % 3 == 0;
                    let _ = write!(
                        s,
                        "<item><title>{}</title><link>{}</link><guid isPermaLink=\"false\">{}</guid>\
                         <pubDate>{}</pubDate><dc:creator>{}</dc:creator><category>{}</category>",
                        xml_escape(&st.title),
                        st.link,
                        st.guid,
                        date(self.item_time(f, seq)).to_rfc2822(),
                        st.author,
                        st.category
                    );
                    if cdata {
                        let _ = write!(s, "<description><![CDATA[{}]]></description>", st.body);
                    } else {
                        let _ = write!(s, "<description>{}</description>", xml_escape(&st.body));
                    }
                    s.push_str("</item>\n");
                }
                s.push_str("</channel></rss>\n");
            }
            Format::Atom => {
                content_type = "application/atom+xml; charset=utf-8";
                let _ = write!(
                    s,
                    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\
                     <title>{}</title><id>urn:bench:feed:{i}</id><link href=\"{home}\"/>\
                     <updated>{}</updated>\n",
                    xml_escape(&title),
                    date(lm).to_rfc3339()
                );
                for seq in seqs {
                    let st = story(i, seq, self.seed);
                    let _ = writeln!(
                        s,
                        "<entry><title>{}</title><id>{}</id><link href=\"{}\"/><updated>{}</updated>\
                         <author><name>{}</name></author><category term=\"{}\"/>\
                         <summary type=\"html\">{}</summary></entry>",
                        xml_escape(&st.title),
                        st.guid,
                        st.link,
                        date(self.item_time(f, seq)).to_rfc3339(),
                        st.author,
                        st.category,
                        xml_escape(&st.body)
                    );
                }
                s.push_str("</feed>\n");
            }
            Format::Json => {
                content_type = "application/feed+json";
                let items: Vec<serde_json::Value> = seqs
                    .map(|seq| {
                        let st = story(i, seq, self.seed);
                        serde_json::json!({
                            "id": st.guid,
                            "url": st.link,
                            "title": st.title,
                            "content_html": st.body,
                            "date_published": date(self.item_time(f, seq)).to_rfc3339(),
                            "authors": [{"name": st.author}],
                            "tags": [st.category],
                        })
                    })
                    .collect();
                s = serde_json::json!({
                    "version": "https://jsonfeed.org/version/1.1",
                    "title": title,
                    "home_page_url": home,
                    "items": items,
                })
                .to_string();
            }
        }
        Rendered {
            version: v,
            body: Arc::new(s.into_bytes()),
            etag: format!("\"b{i:x}-{v}\""),
            last_modified: httpdate::fmt_http_date(
                std::time::UNIX_EPOCH + Duration::from_secs(lm.max(0) as u64),
            ),
            lm_secs: lm,
            content_type,
        }
    }
}

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Counters {
    ok: AtomicU64,
    not_modified: AtomicU64,
    other: AtomicU64,
    bytes: AtomicU64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Snap {
    ok: u64,
    not_modified: u64,
    other: u64,
    bytes: u64,
}

impl Snap {
    fn total(&self) -> u64 {
        self.ok + self.not_modified + self.other
    }
    fn since(&self, before: &Snap) -> Snap {
        Snap {
            ok: self.ok - before.ok,
            not_modified: self.not_modified - before.not_modified,
            other: self.other - before.other,
            bytes: self.bytes - before.bytes,
        }
    }
}

struct Server {
    corpus: Corpus,
    counters: Counters,
    start: Instant,
    /// (feed, ms since start, status): every feed request.
    log: Mutex<Vec<(u32, u64, u16)>>,
}

impl Server {
    fn snap(&self) -> Snap {
        let c = &self.counters;
        Snap {
            ok: c.ok.load(Ordering::Relaxed),
            not_modified: c.not_modified.load(Ordering::Relaxed),
            other: c.other.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
        }
    }

    fn count(&self, feed: Option<usize>, status: u16, bytes: usize) {
        let c = &self.counters;
        match status {
            200 => c.ok.fetch_add(1, Ordering::Relaxed),
            304 => c.not_modified.fetch_add(1, Ordering::Relaxed),
            _ => c.other.fetch_add(1, Ordering::Relaxed),
        };
        c.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        if let Some(f) = feed {
            let ms = self.start.elapsed().as_millis() as u64;
            self.log.lock().unwrap().push((f as u32, ms, status));
        }
    }
}

struct Request {
    path: String,
    if_none_match: Option<String>,
    if_modified_since: Option<String>,
    close: bool,
}

/// One request head, or `None` at EOF / on junk.
async fn read_request(r: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if r.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (_method, path, version) = (parts.next()?, parts.next()?, parts.next()?);
    let mut req = Request {
        path: path.to_string(),
        if_none_match: None,
        if_modified_since: None,
        close: version == "HTTP/1.0",
    };
    for _ in 0..100 {
        line.clear();
        if r.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let l = line.trim_end();
        if l.is_empty() {
            return Some(req);
        }
        let (k, v) = l.split_once(':')?;
        let v = v.trim();
        match k.to_ascii_lowercase().as_str() {
            "if-none-match" => req.if_none_match = Some(v.to_string()),
            "if-modified-since" => req.if_modified_since = Some(v.to_string()),
            "connection" => req.close = v.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    None
}

async fn respond(
    w: &mut TcpStream,
    status: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    head.push_str("\r\n");
    let mut buf = head.into_bytes();
    buf.extend_from_slice(body);
    w.write_all(&buf).await
}

async fn connection(server: Arc<Server>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut r = BufReader::new(stream);
    while let Some(req) = read_request(&mut r).await {
        if req.path == "/_stats" {
            let s = server.snap();
            let text = format!(
                "200 {}\n304 {}\nother {}\nbytes {}\n",
                s.ok, s.not_modified, s.other, s.bytes
            );
            if respond(r.get_mut(), "200 OK", &[], text.as_bytes())
                .await
                .is_err()
            {
                return;
            }
            continue;
        }
        let feed = req
            .path
            .strip_prefix("/feed/")
            .and_then(|p| p.split('?').next())
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&n| n < server.corpus.feeds.len());
        let Some(i) = feed else {
            server.count(None, 404, 0);
            if respond(r.get_mut(), "404 Not Found", &[], b"no such feed\n")
                .await
                .is_err()
            {
                return;
            }
            continue;
        };
        match server.corpus.feeds[i].kind {
            Kind::Healthy => {
                let (_v, body, etag, lm, lm_secs, ct) = server.corpus.render(i);
                let fresh = match (&req.if_none_match, &req.if_modified_since) {
                    (Some(inm), _) => inm.split(',').any(|t| t.trim() == etag),
                    (None, Some(ims)) => httpdate::parse_http_date(ims).is_ok_and(|t| {
                        t.duration_since(std::time::UNIX_EPOCH)
                            .is_ok_and(|d| d.as_secs() as i64 >= lm_secs)
                    }),
                    _ => false,
                };
                let res = if fresh {
                    server.count(Some(i), 304, 0);
                    respond(
                        r.get_mut(),
                        "304 Not Modified",
                        &[("ETag", &etag), ("Last-Modified", &lm)],
                        b"",
                    )
                    .await
                } else {
                    server.count(Some(i), 200, body.len());
                    respond(
                        r.get_mut(),
                        "200 OK",
                        &[
                            ("Content-Type", ct),
                            ("ETag", &etag),
                            ("Last-Modified", &lm),
                        ],
                        &body,
                    )
                    .await
                };
                if res.is_err() || req.close {
                    return;
                }
            }
            kind => {
                hostile(&server, i, kind, r, &req.path).await;
                return;
            }
        }
    }
}

/// The hostile behaviours: each ends the connection.
async fn hostile(server: &Server, i: usize, kind: Kind, mut r: BufReader<TcpStream>, path: &str) {
    let status = match kind {
        Kind::Error500 | Kind::Stall | Kind::Trickle => 500,
        Kind::RedirectLoop => 302,
        _ => 200,
    };
    server.count(Some(i), status, 0);
    match kind {
        Kind::Stall => {
            let mut buf = [0u8; 64];
            // Until the client gives up (or ten minutes).
            let _ = tokio::time::timeout(Duration::from_secs(600), r.read(&mut buf)).await;
        }
        Kind::Trickle => {
            let w = r.get_mut();
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n\
                        Content-Length: 100000\r\n\r\n<?xml version=\"1.0\"?><rss><channel>";
            if w.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            for _ in 0..600 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if w.write_all(b" ").await.is_err() {
                    return;
                }
            }
        }
        Kind::Error500 => {
            let _ = respond(
                r.get_mut(),
                "500 Internal Server Error",
                &[("Connection", "close")],
                b"<html><body>upstream error</body></html>",
            )
            .await;
        }
        Kind::Garbage => {
            let mut rng = Rng::new(i as u64, server.start.elapsed().as_secs());
            let body: Vec<u8> = (0..4096 + rng.below(60_000))
                .map(|_| rng.next() as u8)
                .collect();
            let _ = respond(
                r.get_mut(),
                "200 OK",
                &[
                    ("Content-Type", "application/rss+xml"),
                    ("Connection", "close"),
                ],
                &body,
            )
            .await;
        }
        Kind::Oversize => {
            let w = r.get_mut();
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n\
                        Connection: close\r\n\r\n<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>big</title>";
            if w.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk =
                "<item><title>filler</title><description>more of the same</description></item>"
                    .repeat(800);
            let mut sent = 0;
            while sent < 12 << 20 {
                if w.write_all(chunk.as_bytes()).await.is_err() {
                    return;
                }
                sent += chunk.len();
            }
        }
        Kind::RedirectLoop => {
            let hop = path
                .split_once("?hop=")
                .and_then(|(_, h)| h.parse::<u64>().ok())
                .unwrap_or(0);
            let to = format!("/feed/{i}?hop={}", hop + 1);
            let _ = respond(
                r.get_mut(),
                "302 Found",
                &[("Location", &to), ("Connection", "close")],
                b"",
            )
            .await;
        }
        Kind::Healthy => {}
    }
}

fn start_server(rt: &tokio::runtime::Runtime, corpus: Corpus, port: u16) -> (Arc<Server>, u16) {
    let server = Arc::new(Server {
        corpus,
        counters: Counters::default(),
        start: Instant::now(),
        log: Mutex::new(Vec::new()),
    });
    let listener = rt
        .block_on(TcpListener::bind(("127.0.0.1", port)))
        .expect("bind 127.0.0.1");
    let port = listener.local_addr().unwrap().port();
    let s = server.clone();
    rt.spawn(async move {
        loop {
            if let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(connection(s.clone(), stream));
            }
        }
    });
    (server, port)
}

// ---------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------

const RULES: &str = r#"# Generated by benches/scale.rs: a handful of wire-desk rules, narrow
# enough that a few percent of items match (as a real watch list would).
[[rule]]
id = "dock-strike"
query = '"dock workers" NEAR/5 strike'

[[rule]]
id = "quake"
query = 'title:earthquake AND (Oduya OR Zhelan)'

[[rule]]
id = "rates"
query = '"central bank" NEAR/4 "rate cut"'

[[rule]]
id = "election"
query = 'title:"snap election" AND Valdmora'
severity = "high"

[[rule]]
id = "talks"
query = '"peace talks" NEAR/10 "foreign ministry" -Tressel'

[[rule]]
id = "grid"
query = '"power outage" NEAR/8 grid'

[[rule]]
id = "recall"
query = '/product recall/i AND Halder'

[[rule]]
id = "licences"
query = 'title:(mining licences) AND "mine owners" AND NOT court'
"#;

struct ConfigSpec<'a> {
    port: u16,
    poll_interval: &'a str,
    concurrency: Option<usize>,
    host_limits: Option<String>,
    per_feed_interval: bool,
}

fn write_config(dir: &Path, corpus: &Corpus, spec: &ConfigSpec) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("rules.toml"), RULES).unwrap();
    let mut s = String::new();
    let _ = writeln!(s, "# Generated by benches/scale.rs\n[daemon]");
    let _ = writeln!(s, "poll_interval = \"{}\"", spec.poll_interval);
    let _ = writeln!(s, "state_dir = \"state\"\nrules = [\"rules.toml\"]");
    if let Some(c) = spec.concurrency {
        let _ = writeln!(s, "max_concurrent_fetches = {c}");
    }
    if let Some(h) = &spec.host_limits {
        s.push_str("# The whole corpus is one loopback host: per-host limits lifted.\n");
        s.push_str(h);
    }
    for (i, f) in corpus.feeds.iter().enumerate() {
        let _ = write!(
            s,
            "\n[[feed]]\nid = \"f{i:05}\"\nurl = \"http://127.0.0.1:{}/feed/{i}\"\n",
            spec.port
        );
        if spec.per_feed_interval {
            let _ = writeln!(s, "interval = \"{}s\"", f.interval);
        }
    }
    s.push_str("\n[[sink]]\nid = \"log\"\ntype = \"jsonl\"\npath = \"alerts.jsonl\"\n");
    let path = dir.join("wirewatch.toml");
    std::fs::write(&path, s).unwrap();
    path
}

/// The per-host keys the binary accepts, if it knows any.
fn probe_host_limits(dir: &Path, concurrency: usize) -> Option<String> {
    let probe = dir.join("probe");
    std::fs::create_dir_all(&probe).unwrap();
    std::fs::write(probe.join("rules.toml"), RULES).unwrap();
    for cand in HOST_LIMIT_CANDIDATES {
        let lines = cand.replace("{c}", &concurrency.to_string());
        let cfg = format!(
            "[daemon]\nstate_dir = \"state\"\nrules = [\"rules.toml\"]\n{lines}\n\
             [[feed]]\nid = \"p\"\nurl = \"http://127.0.0.1:9/feed/0\"\n\
             [[sink]]\nid = \"out\"\ntype = \"stdout\"\n"
        );
        std::fs::write(probe.join("wirewatch.toml"), cfg).unwrap();
        let ok = Command::new(WIREWATCH)
            .args(["check", "--config"])
            .arg(probe.join("wirewatch.toml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(lines);
        }
    }
    None
}

// ---------------------------------------------------------------------------
// Measuring the child
// ---------------------------------------------------------------------------

struct Usage {
    wall: Duration,
    cpu: f64,
    user: f64,
    sys: f64,
    maxrss_kib: i64,
    exit: i32,
}

fn tv(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

/// Waits for `pid` with wait4: exit status and the child's own rusage.
fn wait_child(pid: i32, started: Instant) -> Usage {
    let mut status = 0;
    // SAFETY: plain syscall with valid out-pointers.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid, "wait4 failed");
    let exit = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    Usage {
        wall: started.elapsed(),
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        user: tv(ru.ru_utime),
        sys: tv(ru.ru_stime),
        maxrss_kib: ru.ru_maxrss,
        exit,
    }
}

// The Child is dropped without `wait()`: `wait_child` reaps it with wait4,
// which also gives its rusage.
#[allow(clippy::zombie_processes)]
fn spawn(dir: &Path, args: &[&str], log: &str) -> (i32, Instant) {
    let err = std::fs::File::create(dir.join(log)).unwrap();
    let started = Instant::now();
    let child = Command::new(WIREWATCH)
        .args(args)
        .arg("--config")
        .arg(dir.join("wirewatch.toml"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("start wirewatch");
    (child.id() as i32, started)
}

/// utime + stime of a live process, in seconds.
fn proc_cpu(pid: i32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat; `rest` starts at field 3.
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz)
}

/// (VmRSS, VmHWM) in KiB.
fn proc_rss(pid: i32) -> Option<(u64, u64)> {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        st.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// What `pid` reached, sampled every 10 ms until it exits: the most threads
/// and VmHWM (KiB). The peak RSS comes from here, not from wait4's
/// ru_maxrss: the child starts as a vfork of this process, and Linux carries
/// the parent's high-water mark (the whole served corpus) across exec.
fn sampler(pid: i32) -> std::thread::JoinHandle<(u64, u64)> {
    std::thread::spawn(move || {
        let (mut threads, mut hwm) = (0, 0);
        let mut exec_seen = false;
        while let Ok(st) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if st.contains("State:\tZ") {
                break;
            }
            let field = |name: &str| {
                st.lines()
                    .find(|l| l.starts_with(name))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
            };
            // Before exec the status still shows the forked bench.
            exec_seen = exec_seen || st.lines().next().is_some_and(|l| l.contains("wirewatch"));
            if exec_seen {
                threads = threads.max(field("Threads:").unwrap_or(0));
                hwm = hwm.max(field("VmHWM:").unwrap_or(0));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        (threads, hwm)
    })
}

fn self_cpu() -> f64 {
    // SAFETY: plain syscall with a valid out-pointer.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("?")
        .trim()
        .to_string();
    let mem = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let total = mem
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{cores} cores ({model}), {:.1} GiB RAM, kernel {}",
        total as f64 / (1 << 20) as f64,
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
    )
}

fn lines_in(path: &Path) -> usize {
    std::fs::File::open(path)
        .map(|f| std::io::BufReader::new(f).lines().count())
        .unwrap_or(0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn workdir(o: &Opts) -> (PathBuf, Option<tempfile::TempDir>) {
    let t = tempfile::Builder::new()
        .prefix("wirewatch-bench-")
        .tempdir()
        .unwrap();
    if o.keep {
        let p = t.keep();
        (p, None)
    } else {
        (t.path().to_path_buf(), Some(t))
    }
}

// ---------------------------------------------------------------------------
// Modes
// ---------------------------------------------------------------------------

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn header(o: &Opts, corpus: &Corpus) {
    let count = |f: Format| corpus.feeds.iter().filter(|s| s.format == f).count();
    let items: u64 = corpus.feeds.iter().map(|f| f.items).sum();
    println!("wirewatch bench ({:?})", o.mode);
    println!("  binary   {WIREWATCH}");
    println!("  machine  {}", machine());
    println!(
        "  corpus   {} feeds ({} RSS 2.0, {} Atom, {} JSON Feed), {} items ({}-{} per feed)",
        corpus.feeds.len(),
        count(Format::Rss),
        count(Format::Atom),
        count(Format::Json),
        items,
        corpus.feeds.iter().map(|f| f.items).min().unwrap_or(0),
        corpus.feeds.iter().map(|f| f.items).max().unwrap_or(0),
    );
}

fn prewarm(corpus: &Corpus) -> (Duration, u64) {
    let t = Instant::now();
    let n = corpus.feeds.len();
    let bytes = AtomicU64::new(0);
    std::thread::scope(|s| {
        for part in 0..2 {
            let bytes = &bytes;
            s.spawn(move || {
                for i in (part..n).step_by(2) {
                    if corpus.feeds[i].kind == Kind::Healthy {
                        bytes.fetch_add(corpus.render(i).1.len() as u64, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    (t.elapsed(), bytes.into_inner())
}

fn host_limits(o: &Opts, dir: &Path) -> Option<String> {
    if o.keep_host_limits {
        println!("  per-host limits: binary defaults kept (--keep-host-limits)");
        return None;
    }
    let c = o.concurrency.unwrap_or(DEFAULT_FETCHES);
    let h = probe_host_limits(dir, c);
    match &h {
        Some(lines) => println!(
            "  per-host limits: lifted for the one-host corpus: {}",
            lines.trim().replace('\n', ", ")
        ),
        None => println!("  per-host limits: none in this binary (keys not accepted by `check`)"),
    }
    h
}

fn report_cycle(name: &str, u: &Usage, d: Snap, server_cpu: f64, load: &str, errors: usize) {
    let total = d.total().max(1);
    println!(
        "{name}: wall {:.2} s | CPU {:.2} s (user {:.2}, sys {:.2}) | peak RSS {} | \
         200: {}, 304: {} ({:.1}%), other: {} | {:.1} MiB served | exit {} | feed errors {} | \
         server CPU {:.2} s | load {load}",
        u.wall.as_secs_f64(),
        u.cpu,
        u.user,
        u.sys,
        mib(u.maxrss_kib as u64),
        d.ok,
        d.not_modified,
        d.not_modified as f64 * 100.0 / total as f64,
        d.other,
        d.bytes as f64 / (1 << 20) as f64,
        u.exit,
        errors,
        server_cpu,
    );
}

fn feed_errors(dir: &Path, log: &str) -> usize {
    std::fs::read_to_string(dir.join(log))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("wirewatch: feed "))
        .count()
}

fn scale(o: &Opts) {
    let corpus = Corpus::new(o);
    header(o, &corpus);
    let (dir, _guard) = workdir(o);
    let (took, bytes) = prewarm(&corpus);
    println!(
        "  corpus rendered in {:.1} s: {:.1} MiB of documents",
        took.as_secs_f64(),
        bytes as f64 / (1 << 20) as f64
    );
    let rt = runtime();
    let (server, port) = start_server(&rt, corpus, 0);
    let limits = host_limits(o, &dir);
    println!(
        "  max_concurrent_fetches = {}{}",
        o.concurrency.unwrap_or(DEFAULT_FETCHES),
        if o.concurrency.is_none() {
            " (default)"
        } else {
            ""
        }
    );
    let spec = ConfigSpec {
        port,
        poll_interval: "1h",
        concurrency: o.concurrency,
        host_limits: limits,
        per_feed_interval: false,
    };
    write_config(&dir, &server.corpus, &spec);
    println!("  workdir  {}", dir.display());
    println!();

    let cycle = |name: &str, log: &str| {
        let load = loadavg();
        let before = server.snap();
        let cpu0 = self_cpu();
        let ms0 = server.start.elapsed().as_millis() as u64;
        let (pid, t) = spawn(&dir, &["once"], log);
        let peaks = sampler(pid);
        let mut u = wait_child(pid, t);
        let (threads, hwm) = peaks.join().unwrap_or((0, 0));
        u.maxrss_kib = hwm as i64;
        let d = server.snap().since(&before);
        report_cycle(
            name,
            &u,
            d,
            self_cpu() - cpu0,
            &load,
            feed_errors(&dir, log),
        );
        let mut at: Vec<u64> = server
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.1 >= ms0)
            .map(|e| e.1 - ms0)
            .collect();
        at.sort_unstable();
        let pct = |p: usize| at.get((at.len() * p / 100).min(at.len().saturating_sub(1)));
        println!(
            "  most threads seen in the child: {threads}; requests arrived: half by {:.1} s, \
             all by {:.1} s after the start",
            pct(50).copied().unwrap_or(0) as f64 / 1000.0,
            at.last().copied().unwrap_or(0) as f64 / 1000.0
        );
        (u, d)
    };
    let (u1, _) = cycle("cycle 1 (cold, `once`)", "once-1.log");
    let alerts1 = lines_in(&dir.join("alerts.jsonl"));

    // A few feeds publish between the cycles.
    let n = server.corpus.feeds.len();
    let mut r = Rng::new(o.seed, 99);
    let mut bumped = 0;
    for i in 0..n {
        if r.chance(o.changed) {
            server.corpus.bumps[i].fetch_add(1, Ordering::Relaxed);
            bumped += 1;
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    let (u2, d2) = cycle(
        &format!("cycle 2 (conditional, {bumped} feeds changed)"),
        "once-2.log",
    );
    let alerts2 = lines_in(&dir.join("alerts.jsonl"));
    let db = std::fs::metadata(dir.join("state/wirewatch.db")).map_or(0, |m| m.len());
    println!(
        "  alerts: {alerts1} after cycle 1, {} more after cycle 2; state database {:.1} MiB",
        alerts2 - alerts1,
        db as f64 / (1 << 20) as f64
    );

    // Idle: the daemon polls everything once at start-up (spread over 2 s),
    // then sleeps until its 1 h interval.
    println!();
    let load = loadavg();
    let before = server.snap();
    let (pid, t) = spawn(&dir, &["run"], "run.log");
    let run_peaks = sampler(pid);
    let deadline = Instant::now() + Duration::from_secs(600);
    while server.snap().since(&before).total() < n as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let startup = t.elapsed();
    let d = server.snap().since(&before);
    println!(
        "daemon start-up cycle (`run`): all {} feeds requested {:.2} s after start; \
         304: {:.1}%; load {load}",
        d.total(),
        startup.as_secs_f64(),
        d.not_modified as f64 * 100.0 / d.total().max(1) as f64
    );
    // Let the last polls commit.
    std::thread::sleep(Duration::from_secs(10));
    let load = loadavg();
    let (c0, (rss0, _)) = (proc_cpu(pid).unwrap(), proc_rss(pid).unwrap());
    let i0 = Instant::now();
    let mut rss_max = rss0;
    while i0.elapsed() < o.idle {
        std::thread::sleep(Duration::from_secs(1));
        if let Some((rss, _)) = proc_rss(pid) {
            rss_max = rss_max.max(rss);
        }
    }
    let (c1, (rss1, hwm)) = (proc_cpu(pid).unwrap(), proc_rss(pid).unwrap());
    let wall = i0.elapsed().as_secs_f64();
    let idle_req = server.snap().since(&before).total() - d.total();
    println!(
        "idle ({:.0} s, from 10 s after the start-up cycle): CPU {:.2} s = {:.3}% of one core | \
         RSS {} -> {} (max {}) | VmHWM {} | requests meanwhile {idle_req} | load {load} -> {}",
        wall,
        c1 - c0,
        (c1 - c0) * 100.0 / wall,
        mib(rss0),
        mib(rss1),
        mib(rss_max),
        mib(hwm),
        loadavg()
    );
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let mut u = wait_child(pid, t);
    let (run_threads, run_hwm) = run_peaks.join().unwrap_or((0, 0));
    u.maxrss_kib = run_hwm as i64;
    println!("  most threads seen in the daemon: {run_threads}");
    println!(
        "  daemon stopped by SIGTERM: exit {}, {:.2} s CPU over {:.0} s, peak RSS {}",
        u.exit,
        u.cpu,
        u.wall.as_secs_f64(),
        mib(u.maxrss_kib as u64)
    );

    println!();
    let check = |ok: bool| if ok { "met" } else { "MISSED" };
    let share = d2.not_modified as f64 * 100.0 / d2.total().max(1) as f64;
    let peak = u1.maxrss_kib.max(u2.maxrss_kib).max(u.maxrss_kib) as u64;
    let idle_pct = (c1 - c0) * 100.0 / wall;
    println!("targets (2-core machine):");
    println!(
        "  first cycle < 60 s:             {:.2} s  {}",
        u1.wall.as_secs_f64(),
        check(u1.wall.as_secs_f64() < 60.0)
    );
    println!(
        "  second cycle < 20 s, > 95% 304: {:.2} s, {share:.1}%  {}",
        u2.wall.as_secs_f64(),
        check(u2.wall.as_secs_f64() < 20.0 && share > 95.0)
    );
    println!(
        "  peak RSS < 150 MB:              {} ({:.0} MB)  {}",
        mib(peak),
        peak as f64 * 1024.0 / 1e6,
        check((peak as f64 * 1024.0) < 150e6)
    );
    println!(
        "  idle CPU < 0.5%:                {idle_pct:.3}%  {}",
        check(idle_pct < 0.5)
    );
}

fn serve(o: &Opts) {
    let corpus = Corpus::new(o);
    let rt = runtime();
    prewarm(&corpus);
    let (server, port) = start_server(&rt, corpus, o.port);
    if let Some(out) = &o.out {
        std::fs::create_dir_all(out).unwrap();
        let limits = host_limits(o, out);
        let spec = ConfigSpec {
            port,
            poll_interval: "1h",
            concurrency: o.concurrency,
            host_limits: limits,
            per_feed_interval: false,
        };
        write_config(out, &server.corpus, &spec);
        let mut urls = String::new();
        for i in 0..server.corpus.feeds.len() {
            let _ = writeln!(urls, "http://127.0.0.1:{port}/feed/{i}");
        }
        // Written last: its presence means the server is up.
        std::fs::write(out.join("urls.tmp"), urls).unwrap();
        std::fs::rename(out.join("urls.tmp"), out.join("urls.txt")).unwrap();
    }
    println!(
        "serving {} feeds on http://127.0.0.1:{port}/feed/0..{} (counters: /_stats)",
        server.corpus.feeds.len(),
        server.corpus.feeds.len() - 1
    );
    let _ = std::io::stdout().flush();
    rt.block_on(std::future::pending::<()>());
}

fn soak(o: &Opts) {
    let corpus = Corpus::new(o);
    header(o, &corpus);
    let hostile: Vec<usize> = (0..corpus.feeds.len())
        .filter(|&i| corpus.feeds[i].kind != Kind::Healthy)
        .collect();
    let mut kinds = String::new();
    for k in HOSTILE_KINDS {
        let n = hostile
            .iter()
            .filter(|&&i| corpus.feeds[i].kind == *k)
            .count();
        let _ = write!(kinds, " {k:?} {n},");
    }
    println!(
        "  hostile  {} feeds:{}",
        hostile.len(),
        kinds.trim_end_matches(',')
    );
    println!(
        "  intervals {}-{} s per feed; healthy feeds publish {PER_BUMP} items every 2-10 min",
        o.interval_min, o.interval_max
    );
    let (dir, _guard) = workdir(o);
    let rt = runtime();
    let (server, port) = start_server(&rt, corpus, 0);
    let limits = host_limits(o, &dir);
    println!(
        "  max_concurrent_fetches = {}{}",
        o.concurrency.unwrap_or(DEFAULT_FETCHES),
        if o.concurrency.is_none() {
            " (default)"
        } else {
            ""
        }
    );
    let spec = ConfigSpec {
        port,
        poll_interval: "1m",
        concurrency: o.concurrency,
        host_limits: limits,
        per_feed_interval: true,
    };
    write_config(&dir, &server.corpus, &spec);
    println!("  workdir  {}", dir.display());
    println!("  duration {} s", o.duration.as_secs());
    println!();

    let load0 = loadavg();
    let (pid, t) = spawn(&dir, &["run"], "run.log");
    let peaks = sampler(pid);
    let start_ms = server.start.elapsed().as_millis() as u64;
    let mut samples: Vec<(f64, u64)> = Vec::new();
    let mut next_print = Duration::from_secs(60);
    while t.elapsed() < o.duration {
        std::thread::sleep(Duration::from_secs(5));
        let Some((rss, _)) = proc_rss(pid) else {
            println!("wirewatch exited early");
            break;
        };
        samples.push((t.elapsed().as_secs_f64(), rss));
        if t.elapsed() >= next_print {
            next_print += Duration::from_secs(60);
            let s = server.snap();
            println!(
                "  t={:>4.0}s rss {} cpu {:.1} s requests {} (200 {}, 304 {}, other {}) load {}",
                t.elapsed().as_secs_f64(),
                mib(rss),
                proc_cpu(pid).unwrap_or(0.0),
                s.total(),
                s.ok,
                s.not_modified,
                s.other,
                loadavg()
            );
        }
    }
    let (_, hwm) = proc_rss(pid).unwrap_or((0, 0));
    let load1 = loadavg();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let u = wait_child(pid, t);
    let (soak_threads, _) = peaks.join().unwrap_or((0, 0));
    let end_ms = server.start.elapsed().as_millis() as u64;

    // Memory.
    let at = |secs: f64| {
        samples
            .iter()
            .find(|(t, _)| *t >= secs)
            .or(samples.last())
            .map_or(0, |s| s.1)
    };
    let dur = o.duration.as_secs_f64();
    let warm = (dur / 6.0).min(300.0);
    let (rss_start, rss_warm, rss_end) = (at(0.0), at(warm), samples.last().map_or(0, |s| s.1));
    let rss_max = samples.iter().map(|s| s.1).max().unwrap_or(0);
    // Least-squares slope of RSS after warm-up, KiB per hour.
    let pts: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.0 >= warm)
        .map(|s| (s.0, s.1 as f64))
        .collect();
    let slope = if pts.len() > 2 {
        let n = pts.len() as f64;
        let (mx, my) = (
            pts.iter().map(|p| p.0).sum::<f64>() / n,
            pts.iter().map(|p| p.1).sum::<f64>() / n,
        );
        let cov: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let var: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
        cov / var * 3600.0
    } else {
        0.0
    };

    // Schedules: per healthy feed, the gaps between request starts.
    let log = server.log.lock().unwrap().clone();
    let feeds = &server.corpus.feeds;
    let mut times: Vec<Vec<u64>> = vec![Vec::new(); feeds.len()];
    let mut hostile_polls = 0;
    for &(f, ms, _) in &log {
        if ms < start_ms || ms > end_ms {
            continue;
        }
        if feeds[f as usize].kind == Kind::Healthy {
            times[f as usize].push(ms - start_ms);
        } else {
            hostile_polls += 1;
        }
    }
    // Allowance beyond interval + 10 % jitter: the previous poll's own time
    // (fetch, parse, commit) and timer slack.
    const ALLOWANCE_MS: u64 = 2000;
    let (mut polls, mut late, mut worst, mut worst_ratio) = (0u64, 0u64, 0u64, 0f64);
    let mut late_feeds = 0;
    let mut never = 0;
    let mut first_late = 0;
    let mut first_worst = 0u64;
    let end_rel = end_ms - start_ms;
    for (i, ts) in times.iter().enumerate() {
        let f = &feeds[i];
        if f.kind != Kind::Healthy {
            continue;
        }
        let limit = f.interval * 1100 + ALLOWANCE_MS;
        if ts.is_empty() {
            never += 1;
            continue;
        }
        if ts[0] > 2000 + ALLOWANCE_MS {
            first_late += 1;
        }
        first_worst = first_worst.max(ts[0]);
        let mut feed_late = false;
        let mut prev = ts[0];
        for &x in &ts[1..] {
            polls += 1;
            let gap = x - prev;
            if gap > limit {
                late += 1;
                feed_late = true;
                worst = worst.max(gap - f.interval * 1000);
                worst_ratio = worst_ratio.max(gap as f64 / (f.interval * 1000) as f64);
            }
            prev = x;
        }
        // Still waiting at the end, beyond its deadline.
        if end_rel - prev > limit {
            late += 1;
            feed_late = true;
        }
        late_feeds += feed_late as u64;
    }
    let healthy = feeds.iter().filter(|f| f.kind == Kind::Healthy).count();
    let expected: f64 = feeds
        .iter()
        .filter(|f| f.kind == Kind::Healthy)
        .map(|f| dur / f.interval as f64)
        .sum();
    let mut errs = 0;
    let mut panics = 0;
    for l in std::fs::read_to_string(dir.join("run.log"))
        .unwrap_or_default()
        .lines()
    {
        errs += (l.contains(" WARN ") || l.contains(" ERROR ")) as usize;
        panics += l.contains("panicked") as usize;
    }
    let db = std::fs::metadata(dir.join("state/wirewatch.db")).map_or(0, |m| m.len());

    println!();
    println!(
        "soak: {:.0} s, load {load0} at start, {load1} at end",
        u.wall.as_secs_f64()
    );
    println!(
        "  memory: RSS {} at first sample, {} after {:.0} s warm-up, {} at end, max {} (VmHWM {}); \
         growth after warm-up {:+.1} MiB ({:+.1}%), trend {:+.2} MiB/h",
        mib(rss_start),
        mib(rss_warm),
        warm,
        mib(rss_end),
        mib(rss_max),
        mib(hwm),
        (rss_end as f64 - rss_warm as f64) / 1024.0,
        (rss_end as f64 - rss_warm as f64) * 100.0 / rss_warm.max(1) as f64,
        slope / 1024.0
    );
    println!("  most threads seen in the daemon: {soak_threads}");
    println!(
        "  CPU: {:.1} s (user {:.1}, sys {:.1}) = {:.2}% of one core; exit {} after SIGTERM",
        u.cpu,
        u.user,
        u.sys,
        u.cpu * 100.0 / u.wall.as_secs_f64(),
        u.exit
    );
    let s = server.snap();
    println!(
        "  requests: {} (200 {}, 304 {}, other {}); healthy feeds polled {} times of ~{:.0} \
         expected; hostile feeds {hostile_polls} times",
        s.total(),
        s.ok,
        s.not_modified,
        s.other,
        polls + healthy as u64 - never,
        expected
    );
    println!(
        "  missed schedules (healthy feeds; gap > interval x 1.1 + {} s): {late} of {polls} \
         gaps, in {late_feeds} of {healthy} feeds; worst {:.1} s late ({worst_ratio:.2}x the \
         interval); first poll later than 4 s (spread 0-2 s): {first_late}, the last at \
         {:.1} s; never polled: {never}",
        ALLOWANCE_MS / 1000,
        worst as f64 / 1000.0,
        first_worst as f64 / 1000.0,
    );
    println!(
        "  log: {errs} WARN/ERROR lines, {panics} panics; alerts {}; state database {:.1} MiB",
        lines_in(&dir.join("alerts.jsonl")),
        db as f64 / (1 << 20) as f64
    );
}

fn main() {
    let o = parse_opts();
    match o.mode {
        Mode::Scale => scale(&o),
        Mode::Soak => soak(&o),
        Mode::Serve => serve(&o),
    }
}
