//! `vocals numbers`: list, show, add, assign, unassign, retry and remove numbers through `/v1/numbers`, their
//! routing rules (`rules show|set|clear`), and the dry run of a call (`route`).

use clap::Subcommand;
use serde_json::Value;

use super::Shown;
use super::client::{self, Client, ClientError, segment};

#[derive(Subcommand)]
pub enum NumberCommand {
    /// List numbers.
    List {
        /// Only this agent's numbers (id or name).
        #[arg(long)]
        agent: Option<String>,
        /// active, inactive or error.
        #[arg(long)]
        status: Option<String>,
    },
    /// Show one number.
    Show {
        /// The number in E.164 (+14155550123).
        number: String,
    },
    /// Add a number (E.164), with an agent (active) or without (inactive). With --twilio-account, vocals
    /// configures Twilio for it (trunk, origination URLs, attachment).
    Add {
        /// The number in E.164 (+14155550123).
        number: String,
        /// The agent that answers it: an id (ag_…) or a name; "echo" is the built-in agent that plays the
        /// caller's audio back. Without it the number is inactive (calls get 480).
        #[arg(long)]
        agent: Option<String>,
        /// A linked Twilio account (AC…) the number belongs to.
        #[arg(long)]
        twilio_account: Option<String>,
    },
    /// Configure Twilio again for a number in error (after a failure, or drift).
    Retry {
        /// The number in E.164.
        number: String,
    },
    /// Give a number to an agent (id or name): the next call reaches it.
    Assign {
        /// The number in E.164.
        number: String,
        /// The agent's id (ag_…) or name ("echo": the built-in echo agent).
        agent: String,
    },
    /// Take a number's agent away: its calls get 480.
    Unassign {
        /// The number in E.164.
        number: String,
    },
    /// Remove a number (a Twilio number is put back as it was; it stays in the account).
    Remove {
        /// The number in E.164.
        number: String,
    },
    /// A number's routing rules: by time of day, weekday, holiday or caller, another agent (or none) takes
    /// the call; the first rule that matches wins, else the number's agent.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Which agent would take a call to the number at a time, from a caller: the decision an INVITE gets.
    Route {
        /// The number in E.164.
        number: String,
        /// When: 2026-12-25T09:00 (local, in the zone of the number's rules) or 2026-12-25T14:00:00Z; default
        /// now.
        #[arg(long)]
        at: Option<String>,
        /// Who calls: +44…, or anonymous; default a caller no caller rule names.
        #[arg(long)]
        caller: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum RulesCommand {
    /// Print the number's rules (JSON).
    Show {
        /// The number in E.164.
        number: String,
    },
    /// Replace the number's rules with a JSON list from FILE ("-": standard input); an agent may be named by
    /// id or by name. Example: [{"when": {"zone": "America/New_York", "days": ["mon","tue","wed","thu","fri"],
    /// "from": "18:00", "to": "08:00"}, "agent_id": "after-hours"}]
    Set {
        /// The number in E.164.
        number: String,
        /// A file holding the rules' JSON list, or "-".
        file: String,
    },
    /// Remove the number's rules: its agent takes every call.
    Clear {
        /// The number in E.164.
        number: String,
    },
}

/// One `vocals numbers` command.
pub fn run(c: &Client, command: NumberCommand) -> Result<Shown, ClientError> {
    let path = |n: &str| format!("/v1/numbers/{}", segment(n));
    Ok(match command {
        NumberCommand::List { agent, status } => {
            let mut query = Vec::new();
            if let Some(agent) = agent {
                query.push(format!("agent_id={}", segment(&c.agent_id(&agent)?)));
            }
            if let Some(status) = status {
                query.push(format!("status={}", segment(&status)));
            }
            let url = format!("/v1/numbers?{}", query.join("&"));
            Shown::List(c.request("GET", &url, None)?, "numbers", client::NUMBER_COLUMNS)
        }
        NumberCommand::Show { number } => Shown::One(c.request("GET", &path(&number), None)?),
        NumberCommand::Add { number, agent, twilio_account } => {
            let agent = agent.map(|a| c.agent_id(&a)).transpose()?;
            let mut body = serde_json::json!({"phone_number": number, "agent_id": agent});
            if let Some(account) = twilio_account {
                body["twilio_account_sid"] = Value::String(account);
            }
            Shown::One(c.request("POST", "/v1/numbers", Some(&body))?)
        }
        NumberCommand::Retry { number } => {
            Shown::One(c.request("POST", &format!("{}/twilio/retry", path(&number)), None)?)
        }
        NumberCommand::Assign { number, agent } => {
            let body = serde_json::json!({"agent_id": c.agent_id(&agent)?});
            Shown::One(c.request("PATCH", &path(&number), Some(&body))?)
        }
        NumberCommand::Unassign { number } => {
            Shown::One(c.request("PATCH", &path(&number), Some(&serde_json::json!({"agent_id": null})))?)
        }
        NumberCommand::Remove { number } => {
            c.request("DELETE", &path(&number), None)?;
            Shown::Line(format!("removed {number}"))
        }
        NumberCommand::Rules { command: RulesCommand::Show { number } } => {
            let n = c.request("GET", &path(&number), None)?;
            Shown::One(n.get("rules").cloned().unwrap_or(Value::Array(vec![])))
        }
        NumberCommand::Rules { command: RulesCommand::Set { number, file } } => {
            let text =
                if file == "-" { std::io::read_to_string(std::io::stdin()) } else { std::fs::read_to_string(&file) }
                    .map_err(|e| ClientError::Usage(format!("cannot read {file}: {e}")))?;
            let mut rules: Value =
                serde_json::from_str(&text).map_err(|e| ClientError::Usage(format!("{file} is not JSON: {e}")))?;
            // Agents by name as well as by id.
            for rule in rules.as_array_mut().into_iter().flatten() {
                if let Some(agent) = rule.get("agent_id").and_then(Value::as_str).map(str::to_string) {
                    rule["agent_id"] = Value::String(c.agent_id(&agent)?);
                }
            }
            let body = serde_json::json!({"rules": rules});
            Shown::One(c.request("PATCH", &path(&number), Some(&body))?)
        }
        NumberCommand::Rules { command: RulesCommand::Clear { number } } => {
            Shown::One(c.request("PATCH", &path(&number), Some(&serde_json::json!({"rules": []})))?)
        }
        NumberCommand::Route { number, at, caller } => {
            let mut query = Vec::new();
            if let Some(at) = at {
                query.push(format!("at={}", segment(&at)));
            }
            if let Some(caller) = caller {
                query.push(format!("caller={}", segment(&caller)));
            }
            Shown::One(c.request("GET", &format!("{}/route?{}", path(&number), query.join("&")), None)?)
        }
    })
}
