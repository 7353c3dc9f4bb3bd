//! Crash consistency: `wirewatch once` SIGKILLed at random points over 200
//! poll/deliver cycles against a feed that grows by one story per cycle and
//! a webhook receiver that sometimes fails. Afterwards every story has
//! reached the receiver at least once, copies of one story carry one id,
//! the jsonl file holds only whole lines, and the state file opened every
//! time.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::server::{Reply, Route, TestServer};
use crate::util::*;
use crate::KURSK_RULES;

const CYCLES: usize = 200;
/// The feed shows the newest stories only, as real feeds do.
const FEED_WINDOW: usize = 30;

fn story(i: usize) -> Entry {
    entry(
        &format!("c{i}"),
        &format!("Kursk dispatch {i}"),
        &format!("Officials in Kursk issued statement number {i}."),
    )
    .age(60)
}

fn feed_doc(upto: usize) -> String {
    let first = (upto + 1).saturating_sub(FEED_WINDOW);
    let items: Vec<Entry> = (first..=upto).rev().map(story).collect();
    rss("Wire", &items)
}

#[test]
fn sigkill_at_random_points_loses_no_alert() {
    let seed = std::env::var("WIREWATCH_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("crash test seed {seed} (WIREWATCH_CRASH_SEED={seed} to replay)");
    let mut rng = fastrand::Rng::with_seed(seed);

    let feed = TestServer::start();
    feed.route("/wire.xml", Route::ok(RSS, feed_doc(0)));
    let rx = TestServer::start();
    rx.route("/hook", Route::status(200));
    let cfg = Config::new(KURSK_RULES)
        .feed_with("wire", &feed.url("/wire.xml"), "backfill = \"all\"")
        .sink(&format!(
            "id = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\ntimeout = \"2s\"\nretry_initial = \"10ms\"\nretry_max = \"50ms\"",
            rx.url("/hook")
        ));
    let ws = Workspace::new(&cfg);

    // How long one undisturbed cycle takes, to spread the kills over it.
    let t0 = Instant::now();
    ws.once_ok();
    let span = t0.elapsed().max(Duration::from_millis(20));
    let mut killed = 0;
    for i in 1..=CYCLES {
        feed.route("/wire.xml", Route::ok(RSS, feed_doc(i)));
        // Now and then the receiver fails or answers slowly.
        let reply = match rng.u8(..10) {
            0 => Reply::status(500),
            1 => Reply::status(429).header("Retry-After", "0"),
            _ => Reply::status(200),
        };
        rx.route("/hook", Route::Fixed(reply));
        let mut child = command(ws.path(), &["once", "--config", &ws.config_path()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wirewatch once");
        let kill_at = span.mul_f64(rng.f64() * 1.3);
        let started = Instant::now();
        let mut finished = None;
        while started.elapsed() < kill_at {
            if let Some(st) = child.try_wait().expect("try_wait") {
                finished = Some(st);
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        match finished {
            Some(st) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                assert!(
                    st.success(),
                    "cycle {i}: once failed on its own ({st}):\n{err}"
                );
                assert!(
                    ![
                        "cannot open state",
                        "state database error",
                        "not a wirewatch database"
                    ]
                    .iter()
                    .any(|m| err.contains(m)),
                    "cycle {i}: state problem after earlier kills:\n{err}"
                );
            }
            None => {
                let _ = child.kill(); // SIGKILL
                let _ = child.wait();
                killed += 1;
            }
        }
    }
    eprintln!("{CYCLES} cycles, {killed} killed mid-run, one cycle ~{span:?}");
    assert!(
        killed >= CYCLES / 4,
        "too few kills to mean anything: {killed}"
    );

    // Recovery: undisturbed cycles until the outbox is empty.
    rx.route("/hook", Route::status(200));
    let drained = wait_until(Duration::from_secs(30), || {
        ws.once_ok();
        ws.cli("alerts", &["--sink", "hook"])
            .stdout
            .contains(" 0 waiting, 0 dead")
    });
    assert!(
        drained,
        "outbox not drained:\n{}",
        ws.cli("alerts", &[]).stdout
    );

    // Every story reached the receiver, copies carry one id.
    let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in rx.requests_to("/hook").iter().filter(|r| r.status == 200) {
        let body: Value = serde_json::from_slice(&r.body).expect("webhook body is JSON");
        let key = s(&body, &["item", "key"]).to_string();
        let id = r.header("webhook-id").expect("webhook-id").to_string();
        assert_eq!(body["id"].as_str(), Some(id.as_str()));
        ids.entry(key).or_default().insert(id);
    }
    let want: BTreeSet<String> = (0..=CYCLES)
        .map(|i| format!("urn:wirewatch-test:c{i}"))
        .collect();
    let got: BTreeSet<String> = ids.keys().cloned().collect();
    let missing: Vec<&String> = want.difference(&got).collect();
    assert!(missing.is_empty(), "stories never delivered: {missing:?}");
    for (key, set) in &ids {
        assert_eq!(set.len(), 1, "{key} arrived under several ids: {set:?}");
    }
    // The jsonl sink: whole lines only, every story at least once.
    let lines = ws.alerts();
    let in_file: BTreeSet<String> = lines
        .iter()
        .map(|a| s(a, &["item", "key"]).to_string())
        .collect();
    assert_eq!(in_file, want, "jsonl sink lost stories");
    let dups = lines.len() - in_file.len();
    eprintln!(
        "receiver: {} deliveries for {} stories; jsonl: {dups} duplicate line(s)",
        rx.requests_to("/hook").len(),
        want.len()
    );
    ws.cli("status", &[]).expect_code(0);
}
