//! The page data already computed, by request, each with the version of the data it was
//! computed at: the projector's last sequence, or for a file nobody owns its identity, size and
//! modification time (and its write-ahead log's). A request whose version matches is answered
//! from here; 64 entries, least recently used out. SQL answers are never cached.

use std::any::Any;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// A page's data, of whichever type its route computes (the key names the route).
pub(super) type Entry = Arc<dyn Any + Send + Sync>;

/// What the data behind the pages was when an answer was computed: the projector's last
/// sequence, or, for a file that no process owns (so nothing writes it), its identity, size and
/// modification time and its write-ahead log's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Version {
    Sequence(Option<u64>),
    File(FileStamp),
}

/// Page data by request, each with the data version it was computed at: a page asked again
/// before the projector commits is answered without a query. Least recently used out first.
#[derive(Debug, Default)]
pub(super) struct PageCache {
    entries: HashMap<String, (Version, Entry, u64)>,
    clock: u64,
}

/// Page data kept at most; the largest (a campaign of thousands of trials) are a few MB.
const CACHED_PAGES: usize = 64;

impl PageCache {
    pub(super) fn get(&mut self, key: &str, version: &Version) -> Option<Entry> {
        self.clock += 1;
        let clock = self.clock;
        let entry = self.entries.get_mut(key)?;
        if entry.0 != *version {
            return None;
        }
        entry.2 = clock;
        Some(entry.1.clone())
    }

    pub(super) fn put(&mut self, key: String, version: Version, value: Entry) {
        self.clock += 1;
        if self.entries.len() >= CACHED_PAGES && !self.entries.contains_key(&key) {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, entry)| entry.2)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(key, (version, value, self.clock));
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Neither the cache nor the held instance keeps an invariant a panic could break half-way.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The identity, size and modification time of the file and of its write-ahead log.
pub(super) type FileStamp = Vec<(u64, u64, Option<std::time::SystemTime>)>;

/// The [`FileStamp`] of the file at `path` now.
pub(super) fn file_stamp(path: &std::path::Path) -> FileStamp {
    use std::os::unix::fs::MetadataExt;
    let mut wal = path.as_os_str().to_owned();
    wal.push(".wal");
    [path.to_path_buf(), PathBuf::from(wal)]
        .iter()
        .map(|file| match std::fs::metadata(file) {
            Ok(meta) => (meta.ino(), meta.len(), meta.modified().ok()),
            Err(_) => (0, 0, None),
        })
        .collect()
}
