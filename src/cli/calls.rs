//! `vocals calls`: list and show call records, and hang up a call in progress, through `/v1/calls`.

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
    /// End a call in progress.
    Hangup {
        /// The call's vocals id (vc_…) or CallSid (CA…).
        call: String,
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
        CallCommand::Hangup { call } => {
            c.request("POST", &format!("/v1/calls/{}/hangup", segment(&call)), None)?;
            Shown::Line(format!("ending call {call}"))
        }
    })
}
