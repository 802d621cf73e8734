//! An agent as calls use it: one `[[agents]]` entry of the configuration file, an agent from the store, or the
//! built-in echo. A domain type: the configuration, the store, routing and the call layer all speak it, and it
//! depends on none of them.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::agent::transfer::TransferOverrides;
use crate::media::recording::RecordMode;

/// An agent as calls use it: one `[[agents]]` entry, an agent from the store, or the built-in echo.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentConfig {
    /// The store's id (`ag_…`); config agents use their name.
    pub id: String,
    pub name: String,
    pub kind: AgentKind,
    /// `ws://` or `wss://`.
    pub url: String,
    /// Signs the handshake (`X-Twilio-Signature`) when set.
    pub secret: Option<String>,
    /// How long the WebSocket may take to open while the call rings; past it the INVITE gets 503.
    pub connect_timeout: Duration,
    /// Sent in `start.customParameters` (system prompt, providers, settings), all strings.
    pub parameters: BTreeMap<String, String>,
    /// The password the agent's framework uses (HTTP Basic, with the account id as the user) to hang up through
    /// the Twilio-compatible REST endpoint; `None`: it cannot.
    pub auth_token: Option<String>,
    /// The agent's own transfer policy (`[agents.transfer]`, `settings.transfer`), over `[transfer]`.
    pub transfer: TransferOverrides,
    /// Whether its calls are recorded (`[[agents]] record`, `settings.record`), over `[recording] record`; a
    /// number's own `record` wins over it.
    pub record: Option<RecordMode>,
}

/// How an agent is reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AgentKind {
    /// Over a Twilio Media Streams WebSocket at `url`.
    #[default]
    WebSocket,
    /// Built in: plays the caller's audio back (for testing a trunk).
    Echo,
}

impl AgentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentKind::WebSocket => "websocket",
            AgentKind::Echo => "echo",
        }
    }
}

impl AgentConfig {
    /// The built-in `echo` agent.
    pub fn echo() -> AgentConfig {
        AgentConfig { id: "echo".into(), name: "echo".into(), kind: AgentKind::Echo, ..AgentConfig::default() }
    }
}
