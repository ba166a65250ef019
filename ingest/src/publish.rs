//! `evalctl publish`: a prepared campaign becomes `CampaignPublished` and one `TrialRequested` per
//! trial on the stream, with ids derived from the campaign id and trial index so that publishing
//! the same campaign id again adds nothing.

use std::collections::HashSet;

use schemas::event::{CampaignPublished, Event, EventData, Producer, TrialRequested};
use schemas::ids;
use schemas::log::{EventLog, PublishSummary};

use crate::campaign_files::PreparedCampaign;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Log(#[from] schemas::log::Error),
    #[error(
        "campaign id {campaign_id} already holds a different campaign ({existing_name:?} from {existing_file}); choose another --campaign-id, or leave it out for a new one"
    )]
    Conflict {
        campaign_id: String,
        existing_name: String,
        existing_file: String,
    },
    #[error(
        "the campaign's CampaignPublished event is {size} bytes, and the server at {url} accepts at most {max_payload} per message (its max_payload): shorten the variant files' system prompts, use fewer variants per campaign, or raise the server's max_payload"
    )]
    TooLarge {
        size: usize,
        max_payload: usize,
        url: String,
    },
}

/// The stable index of the `CampaignPublished` event among a campaign's derived ids; trial `i`'s
/// `TrialRequested` uses `i`.
const CAMPAIGN_EVENT_INDEX: u64 = u64::MAX;

/// The events that publish `campaign`, in order: `CampaignPublished`, then the trials.
pub fn campaign_events(
    campaign: &PreparedCampaign,
    producer: &Producer,
) -> impl Iterator<Item = Event> {
    let published = Event::new(
        producer,
        &campaign.campaign_id,
        None,
        campaign_published(campaign),
    )
    .with_id(ids::derived_event_id(
        &campaign.campaign_id,
        "CampaignPublished",
        CAMPAIGN_EVENT_INDEX,
    ));
    std::iter::once(published).chain(
        campaign
            .trials
            .iter()
            .map(move |trial| trial_requested(campaign, producer, trial)),
    )
}

fn campaign_published(campaign: &PreparedCampaign) -> CampaignPublished {
    CampaignPublished {
        name: campaign.campaign.name.clone(),
        file_name: campaign.file_name.clone(),
        file_text: campaign.file_text.clone(),
        campaign: campaign.campaign.clone(),
        variants: campaign.variants.clone(),
        seed: campaign.seed,
        n_trials: campaign.trials.len() as u32,
        n_baseline_trials: campaign.n_baseline_trials(),
    }
}

fn trial_requested(
    campaign: &PreparedCampaign,
    producer: &Producer,
    trial: &schemas::campaign::TrialSpec,
) -> Event {
    let trial_id = ids::trial_id(&campaign.campaign_id, trial.trial_index);
    Event::new(
        producer,
        &campaign.campaign_id,
        Some(&trial_id),
        TrialRequested {
            trial: trial.clone(),
            parallel: campaign.campaign.parallel,
        },
    )
    .with_id(ids::derived_event_id(
        &campaign.campaign_id,
        "TrialRequested",
        u64::from(trial.trial_index),
    ))
}

/// Publishes `campaign`, skipping the events the stream already holds for its id (so that an
/// interrupted publish can be completed long after JetStream's duplicate window), and refusing
/// when the id already holds a different campaign. `on_ack` is called with the running count
/// of acknowledged events.
pub async fn publish(
    log: &EventLog,
    campaign: &PreparedCampaign,
    in_flight: usize,
    on_ack: impl FnMut(u64),
) -> Result<PublishReport, PublishError> {
    log.ensure_stream().await?;
    let producer = Producer::here("publish");
    // `prepare` held it to the default limit; a server may be configured lower.
    let size = published_size(campaign);
    let max_payload = log.client().server_info().max_payload;
    if size + schemas::log::HEADER_ROOM > max_payload {
        return Err(PublishError::TooLarge {
            size,
            max_payload,
            url: log.url().to_string(),
        });
    }
    let existing = existing_events(log, campaign).await?;
    let already = existing.len() as u64;
    let events = campaign_events(campaign, &producer).filter(|event| {
        !existing.contains(&(event.event_type().to_string(), event.trial_id.clone()))
    });
    let summary = log.publish_all(events, in_flight, on_ack).await?;
    Ok(PublishReport {
        summary,
        already_stored: already,
    })
}

/// The size of the campaign's `CampaignPublished` as published: the largest of its events, since
/// it carries the campaign file and every variant file.
pub fn published_size(campaign: &PreparedCampaign) -> usize {
    campaign_events(campaign, &Producer::here("publish"))
        .next()
        .map_or(0, |event| event.to_json().len())
}

/// What a publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishReport {
    pub summary: PublishSummary,
    /// Events of this campaign that the stream held before, and that were not sent again.
    pub already_stored: u64,
}

/// The (type, trial id) pairs of this campaign's publish events already in the stream, after
/// checking that a stored `CampaignPublished` is this same campaign.
async fn existing_events(
    log: &EventLog,
    campaign: &PreparedCampaign,
) -> Result<HashSet<(String, Option<String>)>, PublishError> {
    let mut existing = HashSet::new();
    let stream = log.stream().await?;
    let subject = schemas::log::event_subject(&campaign.campaign_id, None, "CampaignPublished");
    let Ok(stored) = stream.get_last_raw_message_by_subject(&subject).await else {
        return Ok(existing);
    };
    if let Ok(Event {
        data: EventData::CampaignPublished(stored),
        ..
    }) = schemas::log::read_event(&stored.subject, &stored.payload)
    {
        let mine = campaign_published(campaign);
        let variant_files = |variants: &[schemas::event::ResolvedVariant]| {
            variants
                .iter()
                .map(|v| v.variant.clone())
                .collect::<Vec<_>>()
        };
        if stored.campaign != mine.campaign
            || stored.seed != mine.seed
            || variant_files(&stored.variants) != variant_files(&mine.variants)
        {
            return Err(PublishError::Conflict {
                campaign_id: campaign.campaign_id.clone(),
                existing_name: stored.name,
                existing_file: stored.file_name,
            });
        }
    }
    existing.insert(("CampaignPublished".to_string(), None));
    for trial_id in log
        .subject_tokens(
            &schemas::log::event_subject(&campaign.campaign_id, Some("*"), "TrialRequested"),
            2,
        )
        .await?
    {
        existing.insert(("TrialRequested".to_string(), Some(trial_id)));
    }
    Ok(existing)
}
