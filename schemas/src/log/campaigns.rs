//! Each campaign's `CampaignPublished` (its variants, its operator time zone), read from the
//! stream once per process and kept: what the worker and the capture stage look a trial's
//! campaign up in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::event::{CampaignPublished, Event, EventData};

use super::{Error, EventLog, Result};

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
        let Some(Event {
            data: EventData::CampaignPublished(published),
            ..
        }) = log
            .last_event(campaign_id, None, "CampaignPublished")
            .await?
        else {
            return Err(Error::Read(format!(
                "campaign {campaign_id} has no readable CampaignPublished"
            )));
        };
        let published = Arc::new(published);
        self.campaigns
            .lock()
            .expect("campaigns")
            .insert(campaign_id.to_string(), published.clone());
        Ok(published)
    }
}
