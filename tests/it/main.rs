//! Integration tests for the `wirewatch` binary (the test target `it`).
//!
//! Every test runs the real binary (`CARGO_BIN_EXE_wirewatch`) against its
//! own loopback [`server::TestServer`] and its own temp dir, with a deadline
//! on every child process.

mod server;
mod util;

mod alerts;
mod archive;
mod backfill;
mod check;
mod compression;
mod crash;
mod daemon;
mod delivery;
mod demo;
mod desktop;
mod email;
mod exec;
mod feeds;
mod flow;
mod fulltext;
mod gold;
mod hostile;
mod http;
mod http_endpoint;
mod man;
mod matching;
mod opml;
mod parse;
mod politeness;
mod reload;
mod service;
mod status;
mod story;
mod webhook;

/// The rule set most tests use.
pub const KURSK_RULES: &str = r#"
[[rule]]
id = "kursk"
any = ["Kursk", "\"North Korea\""]
none = ["hockey"]
severity = "high"
"#;
