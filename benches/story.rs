//! Story clustering cost with 100,000 items in the window. Run with
//! `cargo bench --bench story`; figures are recorded in docs/stories.md.
//!
//! Items are generated wire-like texts (a 10-word headline and a 45-word
//! lead drawn from a 20,000-word vocabulary with a Zipf-like skew, so
//! common words recur as in news); one in five is a near-copy of an
//! earlier item (two words changed, or trimmed to half its lead), so
//! candidate chains and verifications are exercised. The index is filled
//! to 100,000 items spread over the 48 h window; each measured insert
//! advances the clock by 1/100,000 of the window, so one item expires per
//! insert and the window stays full.
//!
//! Measured: `signature` (text -> MinHash signature: tokenize, fold, stem,
//! shingle, 64 hashes per shingle), `assign` (expire, LSH lookup, verify,
//! insert) at 100,000 items, and both together. The index starts empty
//! with no capacity hint (`StoryIndex::new`, the daemon's case on a new
//! state file), so every growth step is exercised.
//!
//! Memory is counted by a counting global allocator, as bytes live above
//! the level before the index was created (the texts and signatures are
//! allocated before it): after filling (also given as the index's own
//! estimate, `StoryIndex::heap_bytes`), the highest point while filling,
//! the highest point during the measured runs (which include criterion's
//! own small allocations) and after them. A `realloc` counts the old and
//! new block both until it returns. The bench ends with `PEAK ... MB` and
//! fails if the peak reaches the 200 MB target.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use wirewatch::story::{signature, Signature, StoryIndex};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Both blocks may be live while realloc copies.
        grew(new_size);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const WINDOW_ITEMS: usize = 100_000;
const WINDOW: Duration = Duration::from_secs(48 * 3600);

/// Syllables for made-up words; the vocabulary is their combinations.
const SYL: [&str; 24] = [
    "ka", "lo", "mi", "ran", "te", "vos", "bur", "dal", "ne", "sh", "or", "pel", "qui", "sta",
    "ul", "vin", "yor", "zed", "an", "el", "is", "om", "tra", "gre",
];

fn vocabulary(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let mut w = String::new();
            let mut x = i + 1;
            while x > 0 {
                w.push_str(SYL[x % SYL.len()]);
                x /= SYL.len();
            }
            w
        })
        .collect()
}

struct Gen {
    rng: fastrand::Rng,
    vocab: Vec<String>,
    made: Vec<(String, String)>,
}

impl Gen {
    fn word(&mut self) -> &str {
        // Zipf-like: squaring a uniform draw favours low ranks.
        let u = self.rng.f64();
        let i = ((u * u) * self.vocab.len() as f64) as usize;
        &self.vocab[i.min(self.vocab.len() - 1)]
    }

    fn text(&mut self, n: usize) -> String {
        let mut s = String::new();
        for _ in 0..n {
            let w = self.word().to_string();
            s.push_str(&w);
            s.push(' ');
        }
        s
    }

    fn item(&mut self) -> (String, String) {
        let it = if !self.made.is_empty() && self.rng.u8(..5) == 0 {
            let (t, l) = self.made[self.rng.usize(..self.made.len())].clone();
            if self.rng.bool() {
                let mut words: Vec<String> = l.split(' ').map(str::to_string).collect();
                for _ in 0..2 {
                    let at = self.rng.usize(..words.len());
                    words[at] = self.word().to_string();
                }
                (t, words.join(" "))
            } else {
                let half: Vec<&str> = l.split(' ').take(22).collect();
                (t, half.join(" "))
            }
        } else {
            (self.text(10), self.text(45))
        };
        if self.made.len() < 5_000 {
            self.made.push(it.clone());
        } else {
            let at = self.rng.usize(..self.made.len());
            self.made[at] = it.clone();
        }
        it
    }
}

fn start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
}

/// The clock step that keeps `WINDOW_ITEMS` items in the window.
fn step() -> chrono::Duration {
    chrono::Duration::milliseconds((WINDOW.as_millis() / WINDOW_ITEMS as u128) as i64)
}

fn story(c: &mut Criterion) {
    let mut g = Gen {
        rng: fastrand::Rng::with_seed(6),
        vocab: vocabulary(20_000),
        made: Vec::new(),
    };
    let texts: Vec<(String, String)> = (0..WINDOW_ITEMS + 20_000).map(|_| g.item()).collect();
    let sigs: Vec<Option<Signature>> = texts.iter().map(|(t, l)| signature(t, l)).collect();
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let mut index = StoryIndex::new(WINDOW);
    let mut now = start();
    let mut repeats = 0usize;
    for (n, s) in sigs.iter().take(WINDOW_ITEMS).enumerate() {
        if !index.assign("bench", &n.to_string(), s.as_ref(), now).first {
            repeats += 1;
        }
        now += step();
    }
    let counted = LIVE.load(Ordering::Relaxed) - before;
    let fill_peak = PEAK.load(Ordering::Relaxed).saturating_sub(before);
    eprintln!(
        "story index: {} items, {} stories ({repeats} joined an earlier story), {} bucket slots; \
         memory counted by the allocator {:.1} MB, estimated by the index {:.1} MB ({} bytes per \
         item); peak while filling {:.1} MB",
        index.len(),
        index.stories(),
        index.bucket_slots(),
        mb(counted),
        mb(index.heap_bytes()),
        counted / index.len().max(1),
        mb(fill_peak),
    );

    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    let mut grp = c.benchmark_group("story");
    let mut i = 0usize;
    grp.bench_function("signature", |b| {
        b.iter(|| {
            let (t, l) = &texts[i % texts.len()];
            i += 1;
            signature(t, l)
        })
    });
    let mut n = WINDOW_ITEMS;
    grp.bench_function("assign_at_100k", |b| {
        b.iter(|| {
            let s = &sigs[WINDOW_ITEMS + n % 20_000];
            let a = index.assign("bench", &n.to_string(), s.as_ref(), now);
            now += step();
            n += 1;
            a
        })
    });
    grp.bench_function("signature_and_assign_at_100k", |b| {
        b.iter(|| {
            let (t, l) = &texts[WINDOW_ITEMS + n % 20_000];
            let s = signature(t, l);
            let a = index.assign("bench", &n.to_string(), s.as_ref(), now);
            now += step();
            n += 1;
            a
        })
    });
    grp.finish();
    let run_peak = PEAK.load(Ordering::Relaxed).saturating_sub(before);
    eprintln!(
        "story index after the runs: {} items, {} stories, {:.1} MB counted, peak {:.1} MB during \
         the runs",
        index.len(),
        index.stories(),
        mb(LIVE.load(Ordering::Relaxed).saturating_sub(before)),
        mb(run_peak),
    );
    let peak = fill_peak.max(run_peak);
    eprintln!(
        "PEAK story index memory: {:.1} MB (target: under {:.0} MB)",
        mb(peak),
        mb(TARGET)
    );
    assert!(peak < TARGET, "story index peak {:.1} MB", mb(peak));
}

/// The index memory target (docs/stories.md).
const TARGET: usize = 200_000_000;

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1e6
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(5));
    targets = story
}
criterion_main!(benches);
