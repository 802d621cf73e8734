//! `vocals agents`: list, show, create, update and delete agents through `/v1/agents`.

use clap::Subcommand;

use super::Shown;
use super::client::{self, Client, ClientError, fields, object, text};

#[derive(Subcommand)]
pub enum AgentCommand {
    /// List agents.
    List,
    /// Show one agent (id or name).
    Show {
        /// The agent's id (ag_…) or name.
        agent: String,
    },
    /// Create an agent.
    Create {
        /// A name not used by another agent (numbers are assigned to agents by name or id).
        #[arg(long)]
        name: String,
        /// websocket or echo.
        #[arg(long, default_value = "websocket")]
        kind: String,
        /// The agent's Media Streams WebSocket (ws:// or wss://).
        #[arg(long)]
        url: Option<String>,
        /// The system prompt, sent to the agent in start.customParameters.systemPrompt.
        #[arg(long)]
        prompt: Option<String>,
        /// The agent's providers (speech, model, voice), a JSON object sent in start.customParameters.
        #[arg(long)]
        providers: Option<String>,
        /// Other settings, a JSON object sent in start.customParameters.
        #[arg(long)]
        settings: Option<String>,
        /// Signs the WebSocket handshake (X-Twilio-Signature) and authenticates the agent's REST hang-up.
        #[arg(long)]
        secret: Option<String>,
    },
    /// Change an agent (id or name); calls in progress keep the old settings. "" clears --url and --secret.
    Update {
        /// The agent's id (ag_…) or name.
        agent: String,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// websocket or echo.
        #[arg(long)]
        kind: Option<String>,
        /// The agent's Media Streams WebSocket (ws:// or wss://); "" clears it.
        #[arg(long)]
        url: Option<String>,
        /// The system prompt.
        #[arg(long)]
        prompt: Option<String>,
        /// The providers, a JSON object.
        #[arg(long)]
        providers: Option<String>,
        /// Other settings, a JSON object.
        #[arg(long)]
        settings: Option<String>,
        /// A new signing secret; "" clears it.
        #[arg(long)]
        secret: Option<String>,
    },
    /// Delete an agent no number uses.
    Delete {
        /// The agent's id (ag_…) or name.
        agent: String,
    },
}

/// One `vocals agents` command.
pub fn run(c: &Client, command: AgentCommand) -> Result<Shown, ClientError> {
    Ok(match command {
        AgentCommand::List => Shown::List(c.request("GET", "/v1/agents", None)?, "agents", client::AGENT_COLUMNS),
        AgentCommand::Show { agent } => {
            Shown::One(c.request("GET", &format!("/v1/agents/{}", c.agent_id(&agent)?), None)?)
        }
        AgentCommand::Create { name, kind, url, prompt, providers, settings, secret } => {
            let body = fields(&[
                ("name", text(Some(name), false)),
                ("kind", text(Some(kind), false)),
                ("stream_url", text(url, false)),
                ("system_prompt", text(prompt, false)),
                ("providers", object("providers", providers)?),
                ("settings", object("settings", settings)?),
                ("signing_secret", text(secret, false)),
            ]);
            Shown::One(c.request("POST", "/v1/agents", Some(&body))?)
        }
        AgentCommand::Update { agent, name, kind, url, prompt, providers, settings, secret } => {
            let body = fields(&[
                ("name", text(name, false)),
                ("kind", text(kind, false)),
                ("stream_url", text(url, true)),
                ("system_prompt", text(prompt, false)),
                ("providers", object("providers", providers)?),
                ("settings", object("settings", settings)?),
                ("signing_secret", text(secret, true)),
            ]);
            Shown::One(c.request("PATCH", &format!("/v1/agents/{}", c.agent_id(&agent)?), Some(&body))?)
        }
        AgentCommand::Delete { agent } => {
            let id = c.agent_id(&agent)?;
            c.request("DELETE", &format!("/v1/agents/{id}"), None)?;
            Shown::Line(format!("deleted agent {id}"))
        }
    })
}
