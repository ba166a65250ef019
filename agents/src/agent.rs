//! The runbook agent: takes unresolved tickets one at a time, waits briefly for the harness to
//! write the variant into the ticket, then diagnoses, repairs, verifies and resolves (or
//! escalates) according to the variant's tools config, logging every step as reasoning,
//! tool_call and tool_result rows.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::OperatorConfig;
use crate::db::{LogEntry, OperatorDb, Ticket};
use crate::runbook::{
    self, Facts, Problem, ProcessState, Step, Style, Target, ToolsConfig,
    process_state_from_node_output,
};
use crate::runner::{CommandOutput, CommandRunner, display};

/// How long the agent waits for the harness to write the variant into a new ticket.
pub const VARIANT_WAIT: Duration = Duration::from_secs(2);
/// How often the agent looks for tickets.
const POLL: Duration = Duration::from_millis(500);
/// How long a careful agent waits for a repair to show.
const CAREFUL_VERIFY: Duration = Duration::from_secs(15);
/// How long a hasty agent waits after its burst of restarts.
const HASTY_VERIFY: Duration = Duration::from_secs(10);
/// Between a hasty agent's repeated restarts.
const HASTY_PAUSE: Duration = Duration::from_secs(1);

pub async fn run(
    config: OperatorConfig,
    db: OperatorDb,
    runner: Arc<dyn CommandRunner>,
    shutdown: CancellationToken,
) {
    let target = Target {
        endpoints: config.endpoints.clone(),
        pd_endpoints: config.pd_endpoints.clone(),
        lab: config.lab.clone(),
        data_dir: config.data_dir.clone(),
    };
    while !shutdown.is_cancelled() {
        let tickets = match db.workable_tickets() {
            Ok(tickets) => tickets,
            Err(error) => {
                tracing::warn!(%error, "cannot read tickets");
                Vec::new()
            }
        };
        for ticket in tickets {
            if shutdown.is_cancelled() {
                break;
            }
            let mut session = Session {
                db: &db,
                runner: &runner,
                target: &target,
                shutdown: &shutdown,
                session_id: format!(
                    "runbook-{}-{}",
                    ticket.id,
                    chrono::Utc::now().timestamp_micros()
                ),
                ticket,
                facts: Facts::default(),
            };
            session.work().await;
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// How a session ends: the `agent_sessions.status` and its summary.
#[derive(Debug)]
struct Outcome {
    status: &'static str,
    summary: String,
    resolve: bool,
    hold: bool,
}

impl Outcome {
    fn resolved(summary: impl Into<String>) -> Outcome {
        Outcome {
            status: "completed",
            summary: summary.into(),
            resolve: true,
            hold: false,
        }
    }
    fn escalated(summary: impl Into<String>) -> Outcome {
        Outcome {
            status: "escalated",
            summary: summary.into(),
            resolve: false,
            hold: true,
        }
    }
    fn failed(summary: impl Into<String>) -> Outcome {
        Outcome {
            status: "failed",
            summary: summary.into(),
            resolve: false,
            hold: true,
        }
    }
}

struct Session<'a> {
    db: &'a OperatorDb,
    runner: &'a Arc<dyn CommandRunner>,
    target: &'a Target,
    shutdown: &'a CancellationToken,
    session_id: String,
    ticket: Ticket,
    facts: Facts,
}

impl Session<'_> {
    fn note<T>(&self, result: crate::Result<T>) {
        if let Err(error) = result {
            tracing::warn!(session = %self.session_id, %error, "cannot write operator.db");
        }
    }

    async fn work(&mut self) {
        let id = self.ticket.id;
        self.note(self.db.start_session(&self.session_id, id));
        self.note(self.db.set_ticket_status(id, "acknowledged"));
        tracing::info!(ticket = id, session = %self.session_id, key = %self.ticket.violation_key, "working ticket");
        let tools = self.wait_for_variant().await;
        let outcome = if self.shutdown.is_cancelled() {
            Outcome {
                status: "failed",
                summary: "the operator shut down".into(),
                resolve: false,
                hold: false,
            }
        } else {
            self.work_runbook(&tools).await
        };
        if outcome.resolve {
            self.note(self.db.resolve_ticket(id));
        }
        if outcome.hold {
            self.note(self.db.hold_ticket(id));
        }
        self.note(
            self.db
                .end_session(&self.session_id, outcome.status, &outcome.summary),
        );
        tracing::info!(ticket = id, status = outcome.status, "{}", outcome.summary);
    }

    async fn wait_for_variant(&mut self) -> ToolsConfig {
        let started = Instant::now();
        while self.ticket.variant_tools_config.is_none()
            && started.elapsed() < VARIANT_WAIT
            && !self.shutdown.is_cancelled()
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if let Ok(Some(ticket)) = self.db.ticket(self.ticket.id) {
                self.ticket = ticket;
            }
        }
        match &self.ticket.variant_tools_config {
            Some(text) => ToolsConfig::from_json(text),
            None => ToolsConfig::default(),
        }
    }

    fn reason(&self, text: &str) {
        self.note(self.db.log(&self.session_id, &LogEntry::Reasoning(text)));
    }

    /// Logs and runs one step; `None` when the tools config does not permit it.
    async fn execute(&mut self, tools: &ToolsConfig, step: &Step) -> Option<CommandOutput> {
        let command = display(&step.command);
        if !tools.permits(&step.command) {
            self.reason(&format!(
                "I would run `{command}` ({}), but the variant's allowed_commands {:?} do not \
                 permit it; going on without it.",
                step.reasoning, tools.allowed_commands
            ));
            return None;
        }
        self.reason(&step.reasoning);
        self.note(self.db.log(
            &self.session_id,
            &LogEntry::ToolCall {
                command: &command,
                reasoning: &step.reasoning,
            },
        ));
        let output = self.runner.run(&step.command).await;
        self.note(self.db.log(
            &self.session_id,
            &LogEntry::ToolResult {
                output: &output.output,
                exit_code: output.exit_code,
            },
        ));
        self.learn(&step.command, &output);
        Some(output)
    }

    /// Updates the facts from a command's answer.
    fn learn(&mut self, argv: &[String], output: &CommandOutput) {
        let words: Vec<&str> = argv.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["eval", "lab", "status", ..] if output.success() => {
                self.facts.processes =
                    runbook::parse_lab_status(&output.output, self.target.lab.as_deref());
            }
            ["eval", "lab", "node", _, node, ..] => {
                if let Ok(node) = node.parse::<u32>() {
                    let state = process_state_from_node_output(&output.output);
                    if state != ProcessState::Unknown {
                        self.facts.processes.insert(node, state);
                    }
                }
            }
            ["etcdctl", _, "endpoint", "status", ..] if output.success() => {
                let revision = serde_json::from_str::<serde_json::Value>(output.output.trim())
                    .ok()
                    .and_then(|value| {
                        value
                            .as_array()?
                            .iter()
                            .filter_map(|entry| entry["Status"]["header"]["revision"].as_u64())
                            .max()
                    });
                if revision.is_some() {
                    self.facts.revision = revision;
                }
            }
            _ => {}
        }
    }

    /// Whether the ticket's invariant holds now, by the operator's own probe (not logged: it is
    /// the monitor's look, not an agent step).
    async fn holds(&self) -> bool {
        !crate::look(self.runner, self.target)
            .await
            .iter()
            .any(|violation| violation.key == self.ticket.violation_key)
    }

    /// Waits up to `timeout` for the invariant to hold.
    async fn wait_holds(&self, timeout: Duration) -> bool {
        let started = Instant::now();
        loop {
            if self.holds().await {
                return true;
            }
            if started.elapsed() >= timeout || self.shutdown.is_cancelled() {
                return false;
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return false,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// The logged check before resolving.
    async fn verify_and_resolve(
        &mut self,
        tools: &ToolsConfig,
        problem: Problem,
        summary: String,
    ) -> Outcome {
        let step = Step {
            reasoning: format!(
                "Verify that {} holds again before resolving the ticket.",
                self.ticket.invariant_name
            ),
            command: self.target.verification(problem),
        };
        match self.execute(tools, &step).await {
            Some(output) if !output.success() => {
                return Outcome::failed(format!(
                    "{summary}, but the verification failed: {}",
                    output.output.trim()
                ));
            }
            _ => {}
        }
        self.reason(&format!("{summary}; resolving the ticket."));
        Outcome::resolved(summary)
    }

    async fn work_runbook(&mut self, tools: &ToolsConfig) -> Outcome {
        let problem = Problem::from_ticket(
            &self.ticket.invariant_name,
            self.ticket.store_id.as_deref(),
            &self.ticket.violation_key,
        );
        let style = tools.style();
        self.reason(&format!(
            "Ticket #{} ({}): {}. Variant model {}; I work as a {} runbook: diagnose first {}, \
             up to {} repair attempts, destructive commands {}.",
            self.ticket.id,
            self.ticket.violation_key,
            self.ticket.message.as_deref().unwrap_or("no message"),
            self.ticket
                .variant_model
                .as_deref()
                .unwrap_or("(none given)"),
            if style == Style::Careful {
                "careful"
            } else {
                "hasty"
            },
            tools.diagnose_first,
            tools.max_repair_attempts,
            if tools.allow_destructive {
                "allowed"
            } else {
                "not allowed"
            },
        ));
        match style {
            Style::Careful => self.careful(tools, problem).await,
            Style::Hasty => self.hasty(tools, problem).await,
        }
    }

    async fn careful(&mut self, tools: &ToolsConfig, problem: Problem) -> Outcome {
        for step in runbook::diagnosis_steps(tools, self.target, problem) {
            self.execute(tools, &step).await;
        }
        let diagnosis = format!("{problem:?}; processes {:?}", self.facts.processes);
        self.note(self.db.set_diagnosis(self.ticket.id, &diagnosis));
        if self.holds().await {
            return self
                .verify_and_resolve(
                    tools,
                    problem,
                    "The invariant holds again without a repair".into(),
                )
                .await;
        }
        for attempt in 1..=tools.max_repair_attempts {
            let steps = runbook::repair_steps(tools, self.target, problem, &self.facts, attempt);
            if steps.is_empty() {
                let why = format!(
                    "The runbook has no safe repair for {problem:?} (processes {:?}); escalating \
                     to a human.",
                    self.facts.processes
                );
                self.reason(&why);
                return Outcome::escalated(why);
            }
            let mut failed = false;
            for step in &steps {
                if let Some(output) = self.execute(tools, step).await {
                    failed |= !output.success();
                }
            }
            if failed {
                // A refused start says the process runs (paused): one re-plan with what we learnt.
                let again =
                    runbook::repair_steps(tools, self.target, problem, &self.facts, attempt);
                if again != steps {
                    for step in &again {
                        self.execute(tools, step).await;
                    }
                }
            }
            if self.wait_holds(CAREFUL_VERIFY).await {
                return self
                    .verify_and_resolve(
                        tools,
                        problem,
                        format!("Repaired {problem:?} in {attempt} attempt(s)"),
                    )
                    .await;
            }
            self.reason(&format!(
                "Attempt {attempt} did not restore the invariant within {} s.",
                CAREFUL_VERIFY.as_secs()
            ));
        }
        let why = format!(
            "{problem:?} persists after {} attempt(s); escalating to a human.",
            tools.max_repair_attempts
        );
        self.reason(&why);
        Outcome::escalated(why)
    }

    async fn hasty(&mut self, tools: &ToolsConfig, problem: Problem) -> Outcome {
        for attempt in 1..=tools.max_repair_attempts {
            let steps = runbook::repair_steps(tools, self.target, problem, &self.facts, attempt);
            if steps.is_empty() {
                break;
            }
            for step in &steps {
                self.execute(tools, step).await;
            }
            if attempt < tools.max_repair_attempts {
                tokio::select! {
                    _ = self.shutdown.cancelled() => break,
                    _ = tokio::time::sleep(HASTY_PAUSE) => {}
                }
            }
        }
        if self.wait_holds(HASTY_VERIFY).await {
            return self
                .verify_and_resolve(
                    tools,
                    problem,
                    format!("{problem:?} cleared after restarts"),
                )
                .await;
        }
        let destructive = runbook::destructive_steps(tools, self.target, problem);
        if destructive.is_empty() {
            return Outcome::failed(format!("{problem:?} persists after the restarts"));
        }
        let Problem::MemberUnreachable(node) = problem else {
            return Outcome::failed(format!("{problem:?} persists after the restarts"));
        };
        let mut removal = None;
        for step in &destructive {
            if let Some(output) = self.execute(tools, step).await {
                removal = runbook::removal_step(self.target, node, &output.output);
            }
        }
        if let Some(remove) = removal {
            self.execute(tools, &remove).await;
        }
        let restart = Step {
            reasoning: format!("Restart node {node} once more."),
            command: self.target.lab_node("start", node),
        };
        self.execute(tools, &restart).await;
        if self.wait_holds(HASTY_VERIFY).await {
            return self
                .verify_and_resolve(tools, problem, format!("{problem:?} cleared"))
                .await;
        }
        Outcome::failed(format!(
            "{problem:?} persists after restarts and a destructive attempt"
        ))
    }
}
