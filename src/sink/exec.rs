//! `type = "exec"`: runs a program per alert with the alert JSON on stdin.
//!
//! No shell: `command` is an argv list. The child gets the alert object as
//! one line of JSON on stdin and a few `WIREWATCH_*` variables; exit 0 is
//! success, exit 65 (`EX_DATAERR`) says "this alert is bad" (a dead letter
//! after a few tries), anything else — another code, a signal, the timeout —
//! is retried. A child still running at the timeout is killed.

use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Sink, SinkError};
use crate::model::{Alert, Digest};

/// Exit status meaning "the alert itself is unacceptable" (sysexits.h).
pub const EX_DATAERR: i32 = 65;
/// How much of the child's stderr goes into the error message.
const STDERR_KEEP: usize = 4096;

pub struct ExecSink {
    id: String,
    argv: Vec<String>,
    timeout: Duration,
    display: String,
}

impl ExecSink {
    pub fn new(id: &str, argv: Vec<String>, timeout: Duration) -> ExecSink {
        ExecSink {
            id: id.to_string(),
            display: argv.first().cloned().unwrap_or_default(),
            argv,
            timeout,
        }
    }
}

/// Feed text in an environment variable: no control characters.
fn env_safe(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

fn tail_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let one_line: Vec<&str> = text.split_whitespace().collect();
    one_line
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .take(300)
        .collect()
}

#[async_trait]
impl Sink for ExecSink {
    fn id(&self) -> &str {
        &self.id
    }

    fn endpoint(&self) -> &str {
        &self.display
    }

    async fn deliver(&self, alert: &Alert) -> Result<(), SinkError> {
        let input = serde_json::to_vec(alert).map_err(|e| SinkError::rejected(e.to_string()))?;
        self.run(input, alert).await
    }

    async fn deliver_digest(&self, digest: &Digest) -> Result<(), SinkError> {
        let input = serde_json::to_vec(digest).map_err(|e| SinkError::rejected(e.to_string()))?;
        self.run(input, &digest.summary_alert()).await
    }
}

impl ExecSink {
    /// Runs the command with `input` (one JSON line) on stdin and the
    /// variables of `alert`.
    async fn run(&self, mut input: Vec<u8>, alert: &Alert) -> Result<(), SinkError> {
        let (program, args) = self
            .argv
            .split_first()
            .ok_or_else(|| SinkError::rejected("empty command"))?;
        input.push(b'\n');
        let rules: Vec<&str> = alert.rules.iter().map(|r| r.id.as_str()).collect();
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .env("WIREWATCH_ALERT_ID", &alert.id)
            .env("WIREWATCH_RULE", env_safe(&alert.rule.id))
            .env("WIREWATCH_RULES", env_safe(&rules.join(",")))
            .env("WIREWATCH_SEVERITY", env_safe(&alert.rule.severity))
            .env("WIREWATCH_FEED", env_safe(&alert.feed.id))
            .env("WIREWATCH_TITLE", env_safe(&alert.item.title))
            .env(
                "WIREWATCH_LINK",
                env_safe(alert.item.link.as_deref().unwrap_or("")),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| SinkError::transient(format!("cannot start {program}: {e}")))?;
        let mut stdin = child.stdin.take();
        let mut stderr = child.stderr.take();
        let run = async {
            if let Some(mut w) = stdin.take() {
                // A child that does not read its input is its own business.
                let _ = w.write_all(&input).await;
                let _ = w.shutdown().await;
            }
            let mut err = Vec::new();
            if let Some(r) = stderr.as_mut() {
                let _ = r.take(STDERR_KEEP as u64).read_to_end(&mut err).await;
            }
            (child.wait().await, err)
        };
        let (status, err) = match tokio::time::timeout(self.timeout, run).await {
            Ok((Ok(status), err)) => (status, err),
            Ok((Err(e), _)) => {
                return Err(SinkError::transient(format!("waiting for {program}: {e}")))
            }
            // Dropping the future drops the child: kill_on_drop ends it.
            Err(_) => {
                return Err(SinkError::transient(format!(
                    "{program} did not finish within {:?}; killed",
                    self.timeout
                )))
            }
        };
        let detail = tail_text(&err);
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(": {detail}")
        };
        match status.code() {
            Some(0) => Ok(()),
            Some(EX_DATAERR) => Err(SinkError::rejected(format!(
                "{program} refused the alert (exit {EX_DATAERR}){detail}"
            ))),
            Some(code) => Err(SinkError::transient(format!(
                "{program} exited {code}{detail}"
            ))),
            None => Err(SinkError::transient(format!(
                "{program} was killed by a signal{detail}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliver::sample_alert;

    fn sh(script: &str, timeout_ms: u64) -> ExecSink {
        ExecSink::new(
            "x",
            vec!["/bin/sh".into(), "-c".into(), script.into()],
            Duration::from_millis(timeout_ms),
        )
    }

    #[tokio::test]
    async fn exit_codes_and_timeouts_are_classified() {
        let a = sample_alert(chrono::Utc::now());
        assert_eq!(sh("cat >/dev/null", 5000).deliver(&a).await, Ok(()));
        let e = sh("echo nope >&2; exit 3", 5000)
            .deliver(&a)
            .await
            .unwrap_err();
        assert!(matches!(&e, SinkError::Transient { .. }), "{e:?}");
        assert!(e.to_string().contains("exited 3: nope"), "{e}");
        let e = sh("exit 65", 5000).deliver(&a).await.unwrap_err();
        assert!(matches!(e, SinkError::Rejected { .. }), "{e:?}");
        let started = std::time::Instant::now();
        let e = sh("sleep 5", 300).deliver(&a).await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert!(e.to_string().contains("killed"), "{e}");
        let missing = ExecSink::new(
            "x",
            vec!["/nonexistent/wirewatch-hook".into()],
            Duration::from_secs(1),
        );
        assert!(matches!(
            missing.deliver(&a).await,
            Err(SinkError::Transient { .. })
        ));
    }

    #[tokio::test]
    async fn the_child_reads_the_alert_and_its_variables() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("got");
        let script = format!(
            "cat > '{0}.json'; printf '%s|%s|%s' \"$WIREWATCH_ALERT_ID\" \"$WIREWATCH_RULE\" \"$WIREWATCH_TITLE\" > '{0}.env'",
            out.display()
        );
        let a = sample_alert(chrono::Utc::now());
        sh(&script, 5000).deliver(&a).await.unwrap();
        let json = std::fs::read_to_string(format!("{}.json", out.display())).unwrap();
        let back: Alert = serde_json::from_str(json.trim_end()).unwrap();
        assert_eq!(back, a);
        let env = std::fs::read_to_string(format!("{}.env", out.display())).unwrap();
        assert_eq!(env, format!("{}|wirewatch-test|wirewatch test alert", a.id));
    }
}
