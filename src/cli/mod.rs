//! The `vocals` command line: its clap types, and the admin client commands (`agents`, `numbers`, `twilio`,
//! `calls`), each a client of the HTTP API that prints a table, a JSON object or a line. It never serves: `serve`
//! and `check-config` are dispatched by `main` to the daemon.

pub mod agents;
pub mod calls;
pub mod client;
pub mod numbers;
pub mod twilio;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::Value;

use crate::config::Config;
use client::{Client, ClientError};

#[derive(Parser)]
#[command(name = "vocals", version, about = "SIP user agent and RTP media server for voice-AI agents")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Args)]
pub struct ClientArgs {
    /// The configuration the server runs with: the admin address and token come from it (and VOCALS_* vars).
    #[arg(long, short, env = "VOCALS_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
pub enum Command {
    /// Manage agents through the admin API.
    Agents {
        #[command(flatten)]
        args: ClientArgs,
        #[command(subcommand)]
        command: agents::AgentCommand,
    },
    /// Manage phone numbers through the admin API.
    Numbers {
        #[command(flatten)]
        args: ClientArgs,
        #[command(subcommand)]
        command: numbers::NumberCommand,
    },
    /// Link Twilio accounts and check them through the admin API.
    Twilio {
        #[command(flatten)]
        args: ClientArgs,
        #[command(subcommand)]
        command: twilio::TwilioCommand,
    },
    /// Look at and end calls through the admin API.
    Calls {
        #[command(flatten)]
        args: ClientArgs,
        #[command(subcommand)]
        command: calls::CallCommand,
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

/// What a client command prints: a list (as a table), one object, or a line.
pub enum Shown {
    /// The API's answer, the key of its list (`""`: the answer is the list) and the table's columns.
    List(Value, &'static str, &'static [(&'static str, &'static str)]),
    One(Value),
    Line(String),
}

/// Runs one client command against the API the configuration names and prints what it shows; exit code 1 when
/// the API refused it, 2 when it could not be asked (configuration, connection, usage).
pub fn run(args: &ClientArgs, command: impl FnOnce(&Client) -> Result<Shown, ClientError>) -> ExitCode {
    let config = match Config::load(args.config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vocals: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    match Client::from_config(&config).and_then(|c| command(&c)) {
        Ok(shown) => {
            print!("{}", output(shown, args.json));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vocals: {e}");
            ExitCode::from(if matches!(e, ClientError::Api { .. }) { 1 } else { 2 })
        }
    }
}

/// What a command's result prints, newline-terminated: with `json`, the API's JSON (a list's array alone).
fn output(shown: Shown, json: bool) -> String {
    match shown {
        Shown::List(body, key, _) if json => {
            format!("{:#}\n", if key.is_empty() { body } else { body[key].clone() })
        }
        Shown::List(body, key, columns) => {
            let rows = body[key].as_array().cloned().unwrap_or_default();
            let mut out = client::table(&rows, columns);
            if let Some(next) = body["next_cursor"].as_str() {
                out.push_str(&format!("(more: --cursor {next})\n"));
            }
            out
        }
        Shown::One(body) => format!("{body:#}\n"),
        Shown::Line(line) if json => format!("{}\n", serde_json::json!({"result": line})),
        Shown::Line(line) => format!("{line}\n"),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use serde_json::json;

    use super::*;

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

    #[test]
    fn a_full_page_names_the_next_cursor_and_json_prints_the_list_alone() {
        let body = json!({"calls": [{"id": "vc_1"}], "next_cursor": "abc"});
        let columns: &'static [(&str, &str)] = &[("ID", "/id")];
        assert_eq!(output(Shown::List(body.clone(), "calls", columns), false), "ID\nvc_1\n(more: --cursor abc)\n");
        assert_eq!(output(Shown::List(body, "calls", columns), true), "[\n  {\n    \"id\": \"vc_1\"\n  }\n]\n");
        assert_eq!(output(Shown::Line("removed +1".into()), true), "{\"result\":\"removed +1\"}\n");
        assert_eq!(output(Shown::Line("removed +1".into()), false), "removed +1\n");
    }
}
