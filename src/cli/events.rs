//! `evalctl events`: the log in order.

use clap::Args;
use viewer::events::{EventsQuery, write_events};

use super::Outcome;
use crate::Global;

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only this campaign (an id or any unique prefix of one).
    #[arg(long)]
    campaign: Option<String>,
    /// Only this trial (an id or any unique prefix of one).
    #[arg(long)]
    trial: Option<String>,
    /// Only events of this type, such as `TrialRequested`.
    #[arg(long = "type", value_name = "TYPE")]
    event_type: Option<String>,
    /// Keep reading new events as they arrive, until Ctrl-C.
    #[arg(long, short)]
    follow: bool,
    /// Print each event as stored, one JSON object per line.
    #[arg(long)]
    json: bool,
}

pub async fn run(global: &Global, args: EventsArgs) -> Outcome {
    let log = global.connect().await?;
    let query = EventsQuery {
        campaign: args.campaign,
        trial: args.trial,
        event_type: args.event_type,
        follow: args.follow,
        json: args.json,
    };
    let shutdown = super::shutdown_on_signal();
    let mut out = std::io::stdout().lock();
    write_events(&log, &query, &mut out, shutdown).await?;
    Ok(())
}
