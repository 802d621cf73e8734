//! The `vocals` command line: parses flags, loads the configuration, sets up logging and hands over to the
//! library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vocals::config::{Config, LogFormat};

#[derive(Parser)]
#[command(name = "vocals", version, about = "SIP user agent and RTP media server for voice-AI agents")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server. With no config file it runs on built-in defaults.
    Serve {
        /// TOML configuration file (see config/vocals.toml for every key).
        #[arg(long, short, env = "VOCALS_CONFIG")]
        config: Option<PathBuf>,
        /// Validate the configuration, print the effective values and exit.
        #[arg(long)]
        check: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, check } => serve(config, check),
    }
}

fn serve(file: Option<PathBuf>, check: bool) -> ExitCode {
    let config = match Config::load(file.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vocals: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    if check {
        println!("{config:#?}");
        return ExitCode::SUCCESS;
    }
    init_tracing(&config);
    tracing::info!(?config.sip.listen_udp, ?config.sip.listen_tcp, state_dir = %config.state_dir.display(), "configuration loaded");
    tracing::error!("the SIP signalling layer is not built yet: this build parses and checks configuration only");
    ExitCode::from(1)
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
        LogFormat::Plain => builder.with_ansi(false).without_time().init(),
        LogFormat::Auto if std::io::stderr().is_terminal() => builder.init(),
        LogFormat::Auto => builder.with_ansi(false).without_time().init(),
    }
}
