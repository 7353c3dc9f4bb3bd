//! Noticing edits of the config and rule files, for reloads without a
//! SIGHUP.
//!
//! The watch is on the directories, not the files: editors that save by
//! writing a new file and renaming it over the old one replace the inode a
//! file watch would follow. Any event naming one of the files (created,
//! written, renamed onto, removed) counts; the daemon waits for a quiet
//! moment ([`DEBOUNCE`]) before it reloads, so a save in several steps is
//! read once, complete.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Quiet time after the last change before a reload.
pub const DEBOUNCE: Duration = Duration::from_millis(500);

/// A live watch; dropping it stops watching.
pub struct FileWatch {
    _watcher: RecommendedWatcher,
    pub changes: mpsc::Receiver<PathBuf>,
}

/// Watches `files` (through their directories). `None` with the reason when
/// the system offers no watch (e.g. inotify limits): reload by SIGHUP still
/// works.
pub fn watch(files: &[PathBuf]) -> Result<FileWatch, String> {
    // Directory (canonical) -> file names in it we care about.
    let mut wanted: HashMap<PathBuf, HashSet<OsString>> = HashMap::new();
    for f in files {
        let dir = f
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if let Some(name) = f.file_name() {
            wanted.entry(dir).or_default().insert(name.to_os_string());
        }
    }
    let (tx, rx) = mpsc::channel(16);
    let filter = wanted.clone();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        for p in &event.paths {
            let hit = match (p.parent(), p.file_name()) {
                (Some(dir), Some(name)) => filter.get(dir).is_some_and(|n| n.contains(name)),
                _ => false,
            };
            if hit {
                // A full channel already holds a pending change.
                let _ = tx.try_send(p.clone());
            }
        }
    })
    .map_err(|e| e.to_string())?;
    for dir in wanted.keys() {
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(FileWatch {
        _watcher: watcher,
        changes: rx,
    })
}

impl FileWatch {
    /// Waits for a change, then for [`DEBOUNCE`] without one; returns the
    /// first path that changed (`None`: the watch ended).
    pub async fn settled_change(&mut self) -> Option<PathBuf> {
        let first = self.changes.recv().await?;
        loop {
            match tokio::time::timeout(DEBOUNCE, self.changes.recv()).await {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return Some(first),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sees_writes_and_rename_saves_of_watched_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("wirewatch.toml");
        std::fs::write(&cfg, "a").unwrap();
        let mut w = watch(std::slice::from_ref(&cfg)).unwrap();
        // Another file in the same directory: ignored.
        std::fs::write(dir.path().join("other.txt"), "x").unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(300), w.settled_change())
                .await
                .is_err(),
            "a change of another file was reported"
        );
        // Written in place.
        std::fs::write(&cfg, "b").unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), w.settled_change())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.file_name(), cfg.file_name());
        // Saved the way many editors do: a new file renamed over it.
        let tmp = dir.path().join(".wirewatch.toml.swp");
        std::fs::write(&tmp, "c").unwrap();
        std::fs::rename(&tmp, &cfg).unwrap();
        assert!(
            tokio::time::timeout(Duration::from_secs(5), w.settled_change())
                .await
                .unwrap()
                .is_some(),
            "a rename over the file was missed"
        );
    }
}
