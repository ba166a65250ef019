//! Property tests of what reads outside input: the campaign parser and the event decoder never
//! panic, whatever they are given (random text and bytes, and the repository's own quickstart
//! campaign and a real event damaged at random places), and every problem of a campaign comes
//! with its file and a position inside it. A case that ever fails is kept by proptest under
//! `schemas/tests/fuzz.proptest-regressions` and replayed first on every run.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use schemas::campaign::parse_campaign;
use schemas::event::{Event, Producer, TrialFinished, TrialStatus};

const QUICKSTART: &str = include_str!("../../campaigns/quickstart.yaml");

/// A real event as a stage writes it.
fn finished_event() -> Vec<u8> {
    Event::new(
        &Producer::here("worker"),
        "01a22c15-8652-7098-96ee-bff0ff7f0c89",
        Some("bafac898-a921-8e4c-a52c-85c0e048ead4"),
        TrialFinished {
            status: TrialStatus::TimedOut,
            reason: Some("not healthy within 30s of injection".to_string()),
        },
    )
    .to_json()
}

/// `text` with `edits` applied: each replaces, inserts or deletes one byte at a position.
fn damaged(text: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut bytes = text.to_vec();
    for &(position, byte, kind) in edits {
        if bytes.is_empty() {
            bytes.push(byte);
            continue;
        }
        let at = position % bytes.len();
        match kind % 3 {
            0 => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            _ => {
                bytes.remove(at);
            }
        }
    }
    bytes
}

/// Every problem names the file and a position within the text.
fn located(text: &str) -> Result<(), TestCaseError> {
    if let Err(diagnostics) = parse_campaign("fuzz.yaml", text) {
        prop_assert!(!diagnostics.is_empty());
        // Lines as YAML counts them: `\r\n`, `\n` and a lone `\r` each end one (the case that
        // showed it is kept in the regressions file).
        let breaks = text
            .replace("\r\n", "\n")
            .chars()
            .filter(|c| matches!(c, '\n' | '\r'))
            .count();
        let lines = breaks + 2;
        for diagnostic in &diagnostics {
            prop_assert_eq!(&diagnostic.file, "fuzz.yaml");
            prop_assert!(
                diagnostic.line >= 1 && diagnostic.line <= lines,
                "{diagnostic}"
            );
            prop_assert!(diagnostic.col >= 1, "{diagnostic}");
            prop_assert!(!diagnostic.message.is_empty(), "{diagnostic}");
        }
    }
    Ok(())
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn the_campaign_parser_reports_any_text_without_panicking(text in "(?s).{0,300}") {
        located(&text)?;
    }

    #[test]
    fn the_campaign_parser_reports_a_damaged_quickstart_where_it_is(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6)
    ) {
        let bytes = damaged(QUICKSTART.as_bytes(), &edits);
        located(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn the_event_decoder_takes_any_bytes_without_panicking(
        bytes in proptest::collection::vec(any::<u8>(), 0..400)
    ) {
        let _ = Event::from_json(&bytes);
        let _ = schemas::log::read_event("eval.c.t.TrialFinished", &bytes);
    }

    #[test]
    fn the_event_decoder_reads_a_damaged_event_or_says_why(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6)
    ) {
        let original = finished_event();
        let bytes = damaged(&original, &edits);
        let subject = "eval.01a22c15-8652-7098-96ee-bff0ff7f0c89.bafac898-a921-8e4c-a52c-85c0e048ead4.TrialFinished";
        match schemas::log::read_event(subject, &bytes) {
            // What is read is an event of its own subject, or kept raw as data of another type.
            Ok(event) => prop_assert!(event.check_subject(subject).is_ok()),
            Err(reason) => prop_assert!(!reason.is_empty()),
        }
    }
}

#[test]
fn the_undamaged_inputs_read_as_they_are() {
    assert!(parse_campaign("quickstart.yaml", QUICKSTART).is_ok());
    let bytes = finished_event();
    let event = Event::from_json(&bytes).unwrap();
    assert_eq!(event.event_type(), "TrialFinished");
}
