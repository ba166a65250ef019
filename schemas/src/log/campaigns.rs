//! Each campaign's `CampaignPublished` (its variants, its operator time zone), read from the
//! stream once per process and kept: what the worker and the capture stage look a trial's
//! campaign up in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::event::{CampaignPublished, Event, EventData};

use super::{Error, EventLog, Result, event_subject};

/// The campaigns read so far.
#[derive(Debug, Default)]
pub struct CampaignCache {
    campaigns: Mutex<HashMap<String, Arc<CampaignPublished>>>,
}

impl CampaignCache {
    /// The campaign's `CampaignPublished`: the last one on its subject, read once.
    pub async fn get(&self, log: &EventLog, campaign_id: &str) -> Result<Arc<CampaignPublished>> {
        let cached = self
            .campaigns
            .lock()
            .expect("campaigns")
            .get(campaign_id)
            .cloned();
        if let Some(campaign) = cached {
            return Ok(campaign);
        }
        let subject = event_subject(campaign_id, None, "CampaignPublished");
        let stored = log
            .stream()
            .await?
            .get_last_raw_message_by_subject(&subject)
            .await
            .map_err(|error| Error::Read(format!("{subject}: {error}")))?;
        let Ok(Event {
            data: EventData::CampaignPublished(published),
            ..
        }) = Event::from_json(&stored.payload)
        else {
            return Err(Error::Read(format!("{subject}: unreadable")));
        };
        let published = Arc::new(published);
        self.campaigns
            .lock()
            .expect("campaigns")
            .insert(campaign_id.to_string(), published.clone());
        Ok(published)
    }
}
