//! Campaign, trial and event ids: how they are made, checked and derived.
//!
//! Ids that a re-publish must reproduce (a campaign's `CampaignPublished` and `TrialRequested`
//! events, trial ids) are derived from the campaign id and the trial index by hashing, so that
//! publishing the same campaign id again produces byte-identical ids and JetStream drops them.

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A new campaign id: a UUIDv7, so ids sort by creation time.
pub fn new_campaign_id() -> String {
    Uuid::now_v7().to_string()
}

/// Checks a user-chosen campaign id: it becomes one token of a NATS subject, so it may hold
/// only ASCII letters, digits, `-` and `_`.
pub fn check_campaign_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 64 {
        return Err(format!(
            "campaign id {id:?} must have 1 to 64 characters, has {}",
            id.len()
        ));
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "campaign id {id:?} may hold only letters, digits, '-' and '_', not {bad:?}"
        ));
    }
    if id == "_" {
        return Err("campaign id \"_\" is reserved".to_string());
    }
    Ok(())
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// The id of trial `trial_index` of a campaign: a UUIDv8 (RFC 9562's version for ids derived by
/// the application) from a hash of both, so that its leading characters are spread and a short
/// prefix identifies it.
pub fn trial_id(campaign_id: &str, trial_index: u32) -> String {
    let hash = digest(&[b"trial", campaign_id.as_bytes(), &trial_index.to_le_bytes()]);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    Uuid::new_v8(bytes).to_string()
}

/// A deterministic UUIDv7 event id for the event `kind` number `index` of a campaign. Its
/// timestamp is the campaign id's own when that is a UUIDv7 (the default), so derived ids sort
/// with the campaign; the random bits come from a hash of all three.
pub fn derived_event_id(campaign_id: &str, kind: &str, index: u64) -> Uuid {
    let hash = digest(&[
        b"event",
        campaign_id.as_bytes(),
        kind.as_bytes(),
        &index.to_le_bytes(),
    ]);
    let millis = Uuid::parse_str(campaign_id)
        .ok()
        .filter(|uuid| uuid.get_version_num() == 7)
        .and_then(|uuid| uuid.get_timestamp())
        .map(|timestamp| {
            let (seconds, nanos) = timestamp.to_unix();
            seconds * 1000 + u64::from(nanos) / 1_000_000
        })
        .unwrap_or(0);
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6..].copy_from_slice(&hash[..10]);
    bytes[6] = 0x70 | (bytes[6] & 0x0f);
    bytes[8] = 0x80 | (bytes[8] & 0x3f);
    Uuid::from_bytes(bytes)
}

/// Resolves `prefix` against `candidates` as git resolves short hashes: an exact match, else the
/// one candidate that starts with it.
pub fn resolve_prefix<'a>(
    what: &str,
    prefix: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Result<&'a str, String> {
    let mut matches = Vec::new();
    for candidate in candidates {
        if candidate == prefix {
            return Ok(candidate);
        }
        if candidate.starts_with(prefix) {
            matches.push(candidate);
        }
    }
    match matches.as_slice() {
        [] => Err(format!("no {what} id starts with {prefix:?}")),
        [one] => Ok(one),
        many => {
            let mut shown: Vec<&str> = many.iter().take(5).copied().collect();
            shown.sort_unstable();
            Err(format!(
                "{what} id prefix {prefix:?} is ambiguous: {} ids match ({}{}); give more characters",
                many.len(),
                shown.join(", "),
                if many.len() > 5 { ", …" } else { "" }
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_v7_and_distinct() {
        let campaign = new_campaign_id();
        let a = derived_event_id(&campaign, "TrialRequested", 1);
        assert_eq!(a, derived_event_id(&campaign, "TrialRequested", 1));
        assert_ne!(a, derived_event_id(&campaign, "TrialRequested", 2));
        assert_ne!(a, derived_event_id(&campaign, "CampaignPublished", 1));
        assert_eq!(a.get_version_num(), 7);
        let campaign_time = Uuid::parse_str(&campaign).unwrap().get_timestamp().unwrap();
        assert_eq!(
            a.get_timestamp().unwrap().to_unix().0,
            campaign_time.to_unix().0
        );
        assert_eq!(derived_event_id("nightly", "x", 0).get_version_num(), 7);
    }

    #[test]
    fn trial_ids_are_stable() {
        assert_eq!(trial_id("c", 3), trial_id("c", 3));
        assert_ne!(trial_id("c", 3), trial_id("c", 4));
        assert_ne!(trial_id("c", 3), trial_id("d", 3));
    }

    #[test]
    fn campaign_ids_must_be_subject_tokens() {
        assert!(check_campaign_id("nightly-2026_11").is_ok());
        assert!(check_campaign_id(&new_campaign_id()).is_ok());
        for bad in ["", "a.b", "a b", "a*", ">", "_"] {
            assert!(check_campaign_id(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn prefixes_resolve_like_git() {
        let ids = ["abc123", "abd456", "abc"];
        assert_eq!(resolve_prefix("trial", "abd", ids), Ok("abd456"));
        assert_eq!(resolve_prefix("trial", "abc", ids), Ok("abc"));
        assert!(
            resolve_prefix("trial", "ab", ids)
                .unwrap_err()
                .contains("ambiguous")
        );
        assert!(
            resolve_prefix("trial", "zz", ids)
                .unwrap_err()
                .contains("no trial id")
        );
    }
}
