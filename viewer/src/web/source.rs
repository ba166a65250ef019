//! Where the viewer reads: the owner's database instance (`evalctl up`, `evalctl project`), or
//! the file, held read-only between requests until an owner claims it, then read through the
//! owner's API ([`HeldFile`]). Views are synchronous and run on a blocking thread.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::cache::{PageCache, Version, file_stamp, lock};
use super::error::AppError;
use super::held::HeldFile;
use super::sse::last_sequence;
use crate::api::Database;
use crate::query::QueryError;
use crate::reader::Reader;
use crate::views::ViewError;

/// Where the viewer reads, and the page data it already computed.
#[derive(Clone, Debug)]
pub struct Source {
    origin: Origin,
    /// None when caching is off (the benchmark's uncached figures).
    cache: Option<Arc<Mutex<PageCache>>>,
}

#[derive(Clone, Debug)]
enum Origin {
    /// The owner's database instance: each request clones a connection.
    Shared(Database),
    /// The file, held read-only until an owner claims it, then read through the owner's API.
    File(Arc<HeldFile>),
}

impl Source {
    /// The owner's database instance (`evalctl up`, `evalctl project`).
    pub fn shared(database: Database) -> Source {
        Source::with(Origin::Shared(database))
    }

    /// The file at `path`, held read-only between requests until an owner claims it (see
    /// [`HeldFile`]), then read through the owner's API while it runs.
    pub fn file(path: PathBuf) -> Source {
        Source::with(Origin::File(HeldFile::new(path)))
    }

    /// Whether this source holds its file open now (always false for the owner's instance).
    pub fn holds_file(&self) -> bool {
        matches!(&self.origin, Origin::File(file) if file.is_held())
    }

    fn with(origin: Origin) -> Source {
        Source {
            origin,
            cache: Some(Arc::new(Mutex::new(PageCache::default()))),
        }
    }

    /// The same source computing every page afresh (for `evalctl bench viewer`).
    pub fn without_cache(mut self) -> Source {
        self.cache = None;
        self
    }

    fn reader(&self) -> Result<Reader, QueryError> {
        match &self.origin {
            Origin::Shared(database) => database.connection().map(Reader::Local),
            Origin::File(file) => file.reader(),
        }
    }

    /// Runs `work` with a reader on a blocking thread (DuckDB and the API client block).
    pub(super) async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Reader) -> Result<T, ViewError> + Send + 'static,
    ) -> Result<T, AppError> {
        let source = self.clone();
        tokio::task::spawn_blocking(move || {
            let reader = source.reader().map_err(ViewError::Query)?;
            work(&reader)
        })
        .await
        .map_err(|error| AppError::unavailable(format!("the query thread failed: {error}")))?
        .map_err(AppError::from)
    }

    /// The page data `work` computes for `key`, from the cache while the data has not changed.
    /// `key` names the route, so an entry is always of the route's type `T`.
    pub(super) async fn cached<T: Send + Sync + 'static>(
        &self,
        key: String,
        work: impl FnOnce(&Reader) -> Result<T, ViewError> + Send + 'static,
    ) -> Result<Arc<T>, AppError> {
        let source = self.clone();
        tokio::task::spawn_blocking(move || {
            let Some(cache) = &source.cache else {
                let reader = source.reader().map_err(ViewError::Query)?;
                return work(&reader).map(Arc::new);
            };
            // A file nobody owns changes only when it is rewritten: its stamp says whether,
            // without opening it.
            let (version, reader) = match &source.origin {
                Origin::File(file) if Reader::owner(file.path()).is_none() => {
                    (Version::File(file_stamp(file.path())), None)
                }
                _ => {
                    let reader = source.reader().map_err(ViewError::Query)?;
                    (Version::Sequence(last_sequence(&reader)?), Some(reader))
                }
            };
            if let Some(value) = lock(cache).get(&key, &version)
                && let Ok(value) = value.downcast::<T>()
            {
                return Ok(value);
            }
            let reader = match reader {
                Some(reader) => reader,
                None => source.reader().map_err(ViewError::Query)?,
            };
            let started = std::time::Instant::now();
            let value = Arc::new(work(&reader)?);
            tracing::debug!(
                ms = started.elapsed().as_secs_f64() * 1e3,
                key,
                "page data computed"
            );
            lock(cache).put(key, version, value.clone());
            Ok(value)
        })
        .await
        .map_err(|error| AppError::unavailable(format!("the query thread failed: {error}")))?
        .map_err(AppError::from)
    }
}
