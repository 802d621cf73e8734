//! `vocals calls`: list and show call records, place a call, and hang up a call in progress, through
//! `/v1/calls`.

use clap::Subcommand;

use super::Shown;
use super::client::{self, Client, ClientError, segment};

#[derive(Subcommand)]
pub enum CallCommand {
    /// List calls, newest first.
    List {
        /// Only calls in progress.
        #[arg(long)]
        active: bool,
        /// Only calls answered by this agent (its name).
        #[arg(long)]
        agent: Option<String>,
        /// Only calls to this number.
        #[arg(long)]
        to: Option<String>,
        /// At most this many (1 to 500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// The next page (printed after a full page).
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show one call with its stats (vocals id or CallSid).
    Show {
        /// The call's vocals id (vc_…) or CallSid (CA…).
        call: String,
    },
    /// Place a call through the From number's trunk; the agent answers once the callee picks up.
    Dial {
        /// The agent's id (ag_…).
        #[arg(long)]
        agent: String,
        /// The number to call, E.164 (+14155550123).
        #[arg(long)]
        to: String,
        /// The caller ID: a number of the trunk's account, E.164.
        #[arg(long)]
        from: String,
    },
    /// End a call in progress.
    Hangup {
        /// The call's vocals id (vc_…) or CallSid (CA…).
        call: String,
    },
    /// Save a call's recording (WAV) to a file.
    Recording {
        /// The call's vocals id (vc_…) or CallSid (CA…).
        call: String,
        /// Where to write it (created 0600; `-` writes to standard output).
        #[arg(short = 'o', long = "output", required_unless_present = "delete")]
        output: Option<String>,
        /// Delete the recording on the server instead of saving it.
        #[arg(long, conflicts_with = "output")]
        delete: bool,
    },
}

/// One `vocals calls` command.
pub fn run(c: &Client, command: CallCommand) -> Result<Shown, ClientError> {
    Ok(match command {
        CallCommand::List { active, agent, to, limit, cursor } => {
            let mut query = vec![format!("limit={limit}")];
            if active {
                query.push("active=true".into());
            }
            for (key, value) in [("agent", agent), ("to", to), ("cursor", cursor)] {
                if let Some(v) = value {
                    query.push(format!("{key}={}", segment(&v)));
                }
            }
            let url = format!("/v1/calls?{}", query.join("&"));
            Shown::List(c.request("GET", &url, None)?, "calls", client::CALL_COLUMNS)
        }
        CallCommand::Show { call } => Shown::One(c.request("GET", &format!("/v1/calls/{}", segment(&call)), None)?),
        CallCommand::Dial { agent, to, from } => {
            let body = serde_json::json!({"agent_id": agent, "to": to, "from": from});
            let placed = c.request("POST", "/v1/calls", Some(&body))?;
            let sid = placed["sid"].as_str().unwrap_or_default();
            let status = placed["status"].as_str().unwrap_or_default();
            Shown::Line(format!("calling {to} from {from}: {sid} ({status})"))
        }
        CallCommand::Hangup { call } => {
            c.request("POST", &format!("/v1/calls/{}/hangup", segment(&call)), None)?;
            Shown::Line(format!("ending call {call}"))
        }
        CallCommand::Recording { call, delete: true, .. } => {
            c.request("DELETE", &format!("/v1/calls/{}/recording", segment(&call)), None)?;
            Shown::Line(format!("deleted the recording of call {call}"))
        }
        CallCommand::Recording { call, output, .. } => {
            let output = output.unwrap_or_else(|| "-".into());
            let bytes = c.download(&format!("/v1/calls/{}/recording", segment(&call)))?;
            let written = if output == "-" {
                use std::io::Write;
                std::io::stdout().write_all(&bytes)
            } else {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&output)
                    .and_then(|mut f| f.write_all(&bytes))
            };
            written.map_err(|e| ClientError::Usage(format!("cannot write {output}: {e}")))?;
            Shown::Line(format!("saved the recording of call {call}: {} bytes to {output}", bytes.len()))
        }
    })
}
