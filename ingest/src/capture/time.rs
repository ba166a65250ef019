//! Operator times: ISO 8601 with or without a zone, or Unix seconds; a zone-less time is read in
//! the operator's zone (`UTC`, a fixed offset, or an IANA name whose TZif file `jiff` reads).

use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Timelike, Utc};
use jiff::tz::{Offset, TimeZone};
use rusqlite::types::ValueRef;
use schemas::event::Timestamp;

use super::{CaptureError, Result};

/// Reads an operator time: ISO 8601 with a zone, or without one (read in `zone`), or Unix
/// seconds (milliseconds above 10^11). `Ok(None)` for NULL or blank.
pub fn parse_operator_time(
    value: ValueRef<'_>,
    zone: &OperatorZone,
) -> Result<Option<Timestamp>, String> {
    let from_seconds = |seconds: f64| {
        let micros = if seconds.abs() > 1e11 {
            seconds * 1_000.0
        } else {
            seconds * 1_000_000.0
        };
        Timestamp::from_unix_micros(micros.round() as i64)
            .ok_or_else(|| format!("time {seconds} is out of range"))
    };
    match value {
        ValueRef::Integer(n) => return from_seconds(n as f64).map(Some),
        ValueRef::Real(x) => return from_seconds(x).map(Some),
        _ => {}
    }
    let Some(text) = super::rows::text(value) else {
        return Ok(None);
    };
    if let Ok(seconds) = text.parse::<f64>() {
        return from_seconds(seconds).map(Some);
    }
    let with_t = text.replacen(' ', "T", 1);
    let with_t = with_t
        .strip_suffix("UTC")
        .map(|rest| format!("{}Z", rest.trim_end()))
        .unwrap_or(with_t);
    if let Ok(instant) = DateTime::parse_from_rfc3339(&with_t) {
        return Ok(Some(Timestamp::from_datetime(instant.with_timezone(&Utc))));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z"] {
        if let Ok(instant) = DateTime::parse_from_str(&with_t, format) {
            return Ok(Some(Timestamp::from_datetime(instant.with_timezone(&Utc))));
        }
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(&with_t, format) {
            return Ok(Some(zone.to_utc(naive)));
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(&with_t, "%Y-%m-%d") {
        return Ok(Some(zone.to_utc(date.and_time(chrono::NaiveTime::MIN))));
    }
    Err(format!("unreadable time {text:?}"))
}

/// The operator's time zone, for zone-less times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorZone(TimeZone);

impl OperatorZone {
    /// Coordinated Universal Time.
    pub fn utc() -> OperatorZone {
        OperatorZone(TimeZone::UTC)
    }

    /// `UTC`/`Z`/`GMT`, a fixed offset (`+02:00`, `-0530`, `+2`, `UTC+02:00`), or an IANA name
    /// found under `$TZDIR` or `/usr/share/zoneinfo`.
    pub fn parse(name: &str) -> Result<OperatorZone> {
        let unsupported = |reason: String| CaptureError::Timezone {
            zone: name.to_string(),
            reason,
        };
        let trimmed = name.trim();
        let upper = trimmed.to_ascii_uppercase();
        if matches!(
            upper.as_str(),
            "" | "UTC" | "Z" | "GMT" | "ETC/UTC" | "UTC0"
        ) {
            return Ok(OperatorZone::utc());
        }
        let offset_text = ["UTC", "GMT"]
            .iter()
            .find_map(|prefix| upper.strip_prefix(prefix))
            .unwrap_or(trimmed);
        if offset_text.starts_with(['+', '-']) {
            return parse_offset(offset_text)
                .map(|offset| OperatorZone(TimeZone::fixed(offset)))
                .ok_or_else(|| {
                    unsupported("expected an offset like +02:00, -0530 or +2".to_string())
                });
        }
        if trimmed.contains("..")
            || trimmed.starts_with('/')
            || !trimmed
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'))
        {
            return Err(unsupported("not a zone name".to_string()));
        }
        let dir = std::env::var_os("TZDIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/share/zoneinfo"));
        let file = dir.join(trimmed);
        let bytes = std::fs::read(&file).map_err(|error| {
            unsupported(format!(
                "no zone file {} ({error}); use UTC or a fixed offset like +02:00",
                file.display()
            ))
        })?;
        TimeZone::tzif(trimmed, &bytes)
            .map(OperatorZone)
            .map_err(|error| unsupported(format!("{}: {error}", file.display())))
    }

    /// The instant of a local time; in a gap (clocks forward) the offset before the gap applies,
    /// in an overlap (clocks back) the earlier instant (jiff's "compatible" disambiguation).
    pub fn to_utc(&self, local: NaiveDateTime) -> Timestamp {
        let as_utc = || Timestamp::from_datetime(local.and_utc());
        let Ok(civil) = jiff::civil::DateTime::new(
            i16::try_from(chrono::Datelike::year(&local)).unwrap_or(i16::MAX),
            chrono::Datelike::month(&local) as i8,
            chrono::Datelike::day(&local) as i8,
            local.hour() as i8,
            local.minute() as i8,
            local.second() as i8,
            (local.nanosecond() % 1_000_000_000) as i32,
        ) else {
            return as_utc();
        };
        match self.0.to_ambiguous_zoned(civil).compatible() {
            Ok(zoned) => Timestamp::from_unix_micros(zoned.timestamp().as_microsecond())
                .unwrap_or_else(as_utc),
            Err(_) => as_utc(),
        }
    }
}

fn parse_offset(text: &str) -> Option<Offset> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let (hours, minutes) = match rest.split_once(':') {
        Some((hours, minutes)) => (hours, minutes),
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "0"),
    };
    let hours: i32 = hours.parse().ok()?;
    let minutes: i32 = minutes.parse().ok()?;
    if !(0..=14).contains(&hours) || !(0..60).contains(&minutes) {
        return None;
    }
    Offset::from_seconds(sign * (hours * 3600 + minutes * 60)).ok()
}
