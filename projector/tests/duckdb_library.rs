//! The DuckDB library this build links: the release the projector names, and a file written by a
//! newer DuckDB (a real one, written by DuckDB 2.0.0) refused with the fix named.

use std::path::PathBuf;

#[test]
fn the_linked_library_is_the_named_release() {
    let connection = duckdb::Connection::open_in_memory().unwrap();
    let version: String = connection
        .query_row("SELECT version()", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, projector::db::DUCKDB_VERSION);
}

#[test]
fn a_file_written_by_a_newer_duckdb_names_the_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eval.duckdb");
    std::fs::copy(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/written-by-duckdb-2.0.0.duckdb"),
        &path,
    )
    .unwrap();
    let error = projector::Writer::open(&path).map(|_| ()).unwrap_err();
    assert!(
        matches!(error, projector::Error::NewerDuckdb { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "{} was written by a newer DuckDB than this build's (v1.5.6); the file is derived from the log: run `evalctl project --rebuild` to rebuild it",
            path.display()
        )
    );
}
