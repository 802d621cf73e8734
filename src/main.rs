//! The `vocals` command line: parses flags, loads the configuration, sets up logging and hands over to the
//! library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::Value;
use vocals::client::{self, Client, ClientError};
use vocals::config::{Config, LogFormat};
use vocals::daemon::{LogReload, Signal};

#[derive(Parser)]
#[command(name = "vocals", version, about = "SIP user agent and RTP media server for voice-AI agents")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct ClientArgs {
    /// The configuration the server runs with: the admin address and token come from it (and VOCALS_* vars).
    #[arg(long, short, env = "VOCALS_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum AgentCommand {
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

#[derive(Subcommand)]
enum NumberCommand {
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
}

#[derive(Subcommand)]
enum TwilioCommand {
    /// Link an account (its credentials are checked with Twilio).
    Link {
        /// The account's SID (AC…).
        account_sid: String,
        /// The auth token (or set TWILIO_AUTH_TOKEN, to keep it out of the shell history).
        #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
        auth_token: String,
        /// A name to show for the account.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List linked accounts.
    Accounts,
    /// The account's numbers and what answers each now.
    Numbers {
        /// A linked account's SID (AC…).
        account_sid: String,
    },
    /// Unlink an account no number uses.
    Unlink {
        /// A linked account's SID (AC…).
        account_sid: String,
    },
    /// Compare Twilio with the store now.
    Reconcile,
}

#[derive(Subcommand)]
enum CallCommand {
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

#[derive(Subcommand)]
enum Command {
    /// Manage agents through the admin API.
    Agents {
        #[command(flatten)]
        args: ClientArgs,
        #[command(subcommand)]
        command: AgentCommand,
    },
    /// Manage phone numbers through the admin API.
    Numbers {
        #[command(flatten)]
        args: ClientArgs,
        #[command(subcommand)]
        command: NumberCommand,
    },
    /// Link Twilio accounts and check them through the admin API.
    Twilio {
        #[command(flatten)]
        args: ClientArgs,
        #[command(subcommand)]
        command: TwilioCommand,
    },
    /// Look at and end calls through the admin API.
    Calls {
        #[command(flatten)]
        args: ClientArgs,
        #[command(subcommand)]
        command: CallCommand,
    },
    /// Run the server. With no config file it runs on built-in defaults.
    Serve {
        /// TOML configuration file (see config/vocals.toml for every key).
        #[arg(long, short, env = "VOCALS_CONFIG")]
        config: Option<PathBuf>,
        /// Validate the configuration, print the effective values (secrets redacted) and exit.
        #[arg(long)]
        check: bool,
        /// auto, pretty, plain (journald) or json; overrides log.format.
        #[arg(long)]
        log_format: Option<String>,
    },
    /// Validate a configuration and print the effective values, secrets redacted (exit 2 on an error).
    CheckConfig {
        /// The TOML configuration file to check.
        #[arg(long, short, env = "VOCALS_CONFIG")]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, check, log_format } => serve(config, check, log_format),
        Command::CheckConfig { config } => check_config(config),
        Command::Agents { args, command } => client(&args, |c| agents(c, command)),
        Command::Numbers { args, command } => client(&args, |c| numbers(c, command)),
        Command::Calls { args, command } => client(&args, |c| calls(c, command)),
        Command::Twilio { args, command } => client(&args, |c| twilio(c, command)),
    }
}

/// What a client command prints: a list (as a table), one object, or a line.
enum Shown {
    List(Value, &'static str, &'static [(&'static str, &'static str)]),
    One(Value),
    Line(String),
}

fn client(args: &ClientArgs, run: impl FnOnce(&Client) -> Result<Shown, ClientError>) -> ExitCode {
    let config = match Config::load(args.config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vocals: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = Client::from_config(&config).and_then(|c| run(&c));
    match result {
        Ok(Shown::List(body, key, _)) if args.json => {
            println!("{:#}", if key.is_empty() { body } else { body[key].clone() })
        }
        Ok(Shown::List(body, key, columns)) => {
            let rows = body[key].as_array().cloned().unwrap_or_default();
            print!("{}", vocals::client::table(&rows, columns));
            if let Some(next) = body["next_cursor"].as_str() {
                println!("(more: --cursor {next})");
            }
        }
        Ok(Shown::One(body)) => println!("{body:#}"),
        Ok(Shown::Line(line)) if args.json => println!("{}", serde_json::json!({"result": line})),
        Ok(Shown::Line(line)) => println!("{line}"),
        Err(e) => {
            eprintln!("vocals: {e}");
            return ExitCode::from(if matches!(e, ClientError::Api { .. }) { 1 } else { 2 });
        }
    }
    ExitCode::SUCCESS
}

fn agents(c: &Client, command: AgentCommand) -> Result<Shown, ClientError> {
    use vocals::client::{fields, object, text};
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

fn numbers(c: &Client, command: NumberCommand) -> Result<Shown, ClientError> {
    use vocals::client::segment;
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
    })
}

fn twilio(c: &Client, command: TwilioCommand) -> Result<Shown, ClientError> {
    use vocals::client::segment;
    Ok(match command {
        TwilioCommand::Link { account_sid, auth_token, name } => {
            let body = serde_json::json!({"account_sid": account_sid, "auth_token": auth_token, "friendly_name": name});
            Shown::One(c.request("POST", "/v1/twilio/accounts", Some(&body))?)
        }
        TwilioCommand::Accounts => {
            Shown::List(c.request("GET", "/v1/twilio/accounts", None)?, "accounts", client::ACCOUNT_COLUMNS)
        }
        TwilioCommand::Numbers { account_sid } => {
            let url = format!("/v1/twilio/accounts/{}/numbers", segment(&account_sid));
            Shown::List(c.request("GET", &url, None)?, "numbers", client::TWILIO_NUMBER_COLUMNS)
        }
        TwilioCommand::Unlink { account_sid } => {
            c.request("DELETE", &format!("/v1/twilio/accounts/{}", segment(&account_sid)), None)?;
            Shown::Line(format!("unlinked {account_sid}"))
        }
        TwilioCommand::Reconcile => {
            Shown::List(c.request("POST", "/v1/twilio/reconcile", None)?, "drift", client::DRIFT_COLUMNS)
        }
    })
}

fn calls(c: &Client, command: CallCommand) -> Result<Shown, ClientError> {
    use vocals::client::segment;
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

/// Loads the configuration (file, environment, then the flags), or says what is wrong.
fn load(file: Option<&std::path::Path>, log_format: Option<&str>) -> Result<Config, String> {
    let mut config = Config::load(file, std::env::vars()).map_err(|e| e.to_string())?;
    if let Some(format) = log_format {
        config.log.format = match format {
            "auto" => LogFormat::Auto,
            "pretty" => LogFormat::Pretty,
            "plain" => LogFormat::Plain,
            "json" => LogFormat::Json,
            other => return Err(format!("--log-format: {other:?} is not valid: expected auto, pretty, plain or json")),
        };
    }
    Ok(config)
}

/// `vocals check-config`: validates and prints the effective configuration, secrets redacted.
fn check_config(file: Option<PathBuf>) -> ExitCode {
    match load(file.as_deref(), None) {
        Ok(config) => {
            // The TLS files are read as the server would read them: a bad certificate fails here, not at start.
            if let Some((cert, key)) = &config.sip.tls
                && let Err(e) = vocals::io::tls::server_config(cert, key)
            {
                eprintln!("vocals: configuration error: sip.tls_cert/sip.tls_key: {e}");
                return ExitCode::from(2);
            }
            println!("{:#?}", config.redacted());
            println!("configuration OK");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vocals: configuration error: {e}");
            ExitCode::from(2)
        }
    }
}

fn serve(file: Option<PathBuf>, check: bool, log_format: Option<String>) -> ExitCode {
    if check {
        return check_config(file);
    }
    let config = match load(file.as_deref(), log_format.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vocals: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    // Before anything else: the state directory the store, the admin token and the secret key live in.
    if let Err(e) = vocals::daemon::prepare_state(&config) {
        eprintln!("vocals: {e}");
        return ExitCode::from(2);
    }
    let log_level = init_tracing(&config);
    // One TLS provider for the whole process, ring, before anything builds a TLS configuration (two
    // providers linked in make rustls panic at run time).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vocals: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let metrics = match vocals::metrics::install() {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::warn!(error = %e, "metrics disabled: the recorder could not be installed");
            None
        }
    };
    let result: anyhow::Result<()> = runtime.block_on(async move {
        let listeners = vocals::daemon::bind(&config).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        tokio::spawn(signals(tx, file, log_format));
        // On a worker, like every call's media task: the SIP driver and the tasks it talks to then share the
        // runtime's threads, instead of every message between them waking a thread of its own (block_on's).
        let server = tokio::spawn(vocals::daemon::serve(config, listeners, metrics, rx, Some(log_level)));
        server.await.map_err(|e| anyhow::anyhow!("the server task failed: {e}"))??;
        Ok(())
    });
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The process's signals as the server's: SIGTERM or SIGINT drains (a second one stops at once), SIGHUP
/// reloads the configuration (a bad file is logged and ignored).
async fn signals(tx: tokio::sync::mpsc::Sender<Signal>, file: Option<PathBuf>, log_format: Option<String>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
    else {
        tracing::error!("cannot listen for signals");
        return;
    };
    let mut stopping = false;
    loop {
        let stop = tokio::select! {
            _ = term.recv() => true,
            _ = int.recv() => true,
            _ = hup.recv() => false,
        };
        let signal = match (stop, stopping) {
            (true, false) => {
                stopping = true;
                tracing::info!("SIGTERM: draining (a second signal stops at once)");
                Signal::Drain
            }
            (true, true) => {
                tracing::warn!("second signal: stopping now");
                Signal::Stop
            }
            (false, _) => match load(file.as_deref(), log_format.as_deref()) {
                Ok(config) => Signal::Reload(Box::new(config)),
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: the configuration has an error; nothing reloaded");
                    continue;
                }
            },
        };
        if tx.send(signal).await.is_err() {
            return;
        }
    }
}

/// Sets up logging and returns how to change its filter later (SIGHUP).
fn init_tracing(config: &Config) -> LogReload {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    macro_rules! start {
        ($b:expr) => {{
            let b = $b.with_filter_reloading();
            let handle = b.reload_handle();
            b.init();
            Box::new(move |level: &str| {
                let filter = tracing_subscriber::EnvFilter::try_new(level).map_err(|e| e.to_string())?;
                handle.reload(filter).map_err(|e| e.to_string())
            })
        }};
    }
    let terminal = std::io::stderr().is_terminal();
    match config.log.format {
        LogFormat::Json => start!(builder.json()),
        LogFormat::Pretty => start!(builder),
        LogFormat::Auto if terminal => start!(builder),
        LogFormat::Plain | LogFormat::Auto => start!(builder.with_ansi(false).without_time()),
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every flag and argument of every command says what it is in `--help`.
    #[test]
    fn every_argument_has_a_help_line() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "vocals", &mut missing);
        assert!(missing.is_empty(), "no help line: {missing:?}");
    }
}
