//! Who may publish what. Each stage connects as its own NATS user, allowed to publish only the
//! event types it makes, so that the facts that decide a score come from the stage that makes
//! them: `TicketResolved` from the capture, `TrialScored` from scoring. No stage may create,
//! change, purge or delete a stream, or delete a message; the `harness` user (the commands people
//! type: `publish`, `run`, `rescore`, `import-legacy`, `chaos cleanup`) may do everything.
//!
//! A subject names its event's type (`eval.<campaign>.<trial>.<Type>`), and every reader takes
//! an event only under its own subject ([`super::read_event`]): together they make these
//! permissions hold for the events' contents too.
//!
//! `evalctl up`'s own server is configured from [`authorization`]; a secured cluster elsewhere
//! takes the same lists ([`Role::publish_allow`], [`Role::publish_deny`]).

/// A NATS user of the harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Everything: the commands people type (campaigns, re-scoring, imports, cleanup by hand).
    Harness,
    /// `evalctl worker`: a trial's lifecycle and its faults.
    Worker,
    /// `evalctl capture`: what the operator wrote to its operator.db.
    Capture,
    /// `evalctl score`: grades.
    Scoring,
    /// `evalctl project` and the readers: no event at all.
    Reader,
}

/// The stream-level operations that only [`Role::Harness`] may ask for: creating, changing,
/// purging, restoring or deleting a stream (a changed stream could take in another stream's
/// messages under any subject), deleting messages, and the cluster's own operations.
pub const HARNESS_ONLY_API: &[&str] = &[
    "$JS.API.STREAM.CREATE.>",
    "$JS.API.STREAM.UPDATE.>",
    "$JS.API.STREAM.DELETE.>",
    "$JS.API.STREAM.PURGE.>",
    "$JS.API.STREAM.MSG.DELETE.>",
    "$JS.API.STREAM.RESTORE.>",
    "$JS.API.STREAM.PEER.REMOVE.>",
    "$JS.API.STREAM.LEADER.STEPDOWN.>",
    "$JS.API.ACCOUNT.PURGE.>",
    "$JS.API.META.>",
    "$JS.API.SERVER.>",
];

/// What every stage publishes to use JetStream: its API (less [`HARNESS_ONLY_API`]), message
/// acknowledgements, flow-control replies and replies to its own requests.
const JETSTREAM_CLIENT: &[&str] = &["$JS.API.>", "$JS.ACK.>", "$JS.FC.>", "_INBOX.>"];

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Harness,
        Role::Worker,
        Role::Capture,
        Role::Scoring,
        Role::Reader,
    ];

    /// Its NATS user name.
    pub fn user(self) -> &'static str {
        match self {
            Role::Harness => super::auth::HARNESS_USER,
            Role::Worker => "worker",
            Role::Capture => "capture",
            Role::Scoring => "scoring",
            Role::Reader => "reader",
        }
    }

    /// The event types it publishes; `None`: any.
    pub fn event_types(self) -> Option<&'static [&'static str]> {
        match self {
            Role::Harness => None,
            Role::Worker => Some(&[
                "TrialStarted",
                "SubjectReset",
                "SubjectHealthy",
                "StateCaptured",
                "ChaosInjected",
                "ChaosCleanedUp",
                "ChaosCleanupFailed",
                "TrialFinished",
                "EventRejected",
            ]),
            Role::Capture => Some(&[
                "TicketOpened",
                "AgentSessionStarted",
                "AgentLogRecorded",
                "TicketResolved",
                "OperatorCaptureFinished",
                "EventRejected",
            ]),
            Role::Scoring => Some(&["TrialScored", "EventRejected"]),
            Role::Reader => Some(&[]),
        }
    }

    /// The subjects it may publish to; `None`: any.
    pub fn publish_allow(self) -> Option<Vec<String>> {
        let types = self.event_types()?;
        Some(
            JETSTREAM_CLIENT
                .iter()
                .map(|subject| subject.to_string())
                .chain(
                    types
                        .iter()
                        .map(|event_type| format!("eval.*.*.{event_type}")),
                )
                .collect(),
        )
    }

    /// The subjects it may not publish to, even where [`Role::publish_allow`] matches them.
    pub fn publish_deny(self) -> &'static [&'static str] {
        match self {
            Role::Harness => &[],
            _ => HARNESS_ONLY_API,
        }
    }
}

/// The `authorization` block of a server's configuration that lets in each role with its
/// password, and only to what that role may do.
pub fn authorization(passwords: &[(Role, &str)]) -> String {
    let quoted = |subjects: &mut dyn Iterator<Item = String>| {
        subjects
            .map(|subject| format!("{subject:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut block = String::from("authorization {\n  users = [\n");
    for (role, password) in passwords {
        block.push_str(&format!(
            "    {{user: {:?}, password: {password:?}",
            role.user()
        ));
        if let Some(allow) = role.publish_allow() {
            block.push_str(&format!(
                ", permissions: {{publish: {{allow: [{}], deny: [{}]}}}}",
                quoted(&mut allow.into_iter()),
                quoted(&mut role.publish_deny().iter().map(|s| s.to_string())),
            ));
        }
        block.push_str("}\n");
    }
    block.push_str("  ]\n}\n");
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every event type is published by the harness and exactly one stage, except the
    /// campaign's own events, which only the harness publishes, and `EventRejected`, which every
    /// consuming stage publishes.
    #[test]
    fn each_event_type_has_one_stage_that_publishes_it() {
        for event_type in crate::event::EVENT_TYPES {
            let stages: Vec<Role> = Role::ALL
                .into_iter()
                .filter(|role| {
                    role.event_types()
                        .is_some_and(|types| types.contains(event_type))
                })
                .collect();
            let harness_only = ["CampaignPublished", "TrialRequested", "CampaignFinished"];
            // Every stage that consumes records what it refused.
            if *event_type == "EventRejected" {
                assert_eq!(stages, [Role::Worker, Role::Capture, Role::Scoring]);
                continue;
            }
            assert_eq!(
                stages.len(),
                usize::from(!harness_only.contains(event_type)),
                "{event_type}: {stages:?}"
            );
        }
    }

    #[test]
    fn the_configuration_quotes_every_subject_and_lets_the_harness_do_anything() {
        let block = authorization(&[(Role::Harness, "h"), (Role::Scoring, "s")]);
        assert!(
            block.contains("{user: \"harness\", password: \"h\"}\n"),
            "{block}"
        );
        assert!(block.contains("\"eval.*.*.TrialScored\""), "{block}");
        assert!(block.contains("\"$JS.API.>\""), "{block}");
        assert!(
            block.contains("deny: [\"$JS.API.STREAM.CREATE.>\""),
            "{block}"
        );
        assert!(!block.contains("TicketResolved"), "{block}");
    }
}
