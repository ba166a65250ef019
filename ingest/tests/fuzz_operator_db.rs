//! Property test of the operator.db reader: an operator.db with the contract's schema and an
//! operator's rows, damaged at random bytes or cut short (as a crash mid-write or a bad disk
//! leaves it), is read or refused with an error, never with a panic. A case that ever fails is
//! kept by proptest under `ingest/tests/fuzz_operator_db.proptest-regressions` and replayed
//! first on every run.

use std::path::Path;

use ingest::capture::{self, CaptureTarget, Cursor};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use schemas::campaign::SubjectKind;
use schemas::event::{Producer, Timestamp};

mod operator_db;

fn target(path: &Path) -> CaptureTarget {
    CaptureTarget {
        campaign_id: "fuzz".to_string(),
        trial_id: "trial-1".to_string(),
        operator_db: path.to_path_buf(),
        subject: SubjectKind::Etcd,
        injected_at: Timestamp("2026-03-01T10:00:00Z".parse().unwrap()),
        operator_timezone: "UTC".to_string(),
        variant: None,
    }
}

/// The bytes of an operator.db as an operator leaves it, made once.
fn original() -> &'static [u8] {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("operator.db");
        drop(operator_db::prepared_db(&path));
        std::fs::read(&path).unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_damaged_operator_db_is_read_or_refused_never_a_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..24),
        keep in 0.05f64..1.0,
    ) {
        let mut bytes = original().to_vec();
        for &(position, byte) in &edits {
            let at = position % bytes.len();
            bytes[at] = byte;
        }
        // Cut short one time in four.
        if edits.len() % 4 == 0 {
            bytes.truncate(((bytes.len() as f64) * keep) as usize);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("operator.db");
        std::fs::write(&path, &bytes).unwrap();
        let producer = Producer::here("capture");
        match capture::poll(&target(&path), &mut Cursor::default(), &producer) {
            Ok(events) => prop_assert!(events.iter().all(|event| event.trial_id.as_deref() == Some("trial-1"))),
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
        if let Err(error) = capture::final_rows(&path, 3) {
            prop_assert!(!error.to_string().is_empty());
        }
    }
}
