//! The `vocals` binary: parses the command line and hands over, to the admin client (`cli`) or to the server
//! (`daemon`), after loading the configuration and setting up logging. Wiring only.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use vocals::cli::{self, Cli, Command};
use vocals::config::{Config, LogFormat};
use vocals::daemon::{self, ConfigSource, LogReload};

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve { config, check: true, .. } | Command::CheckConfig { config } => check_config(config),
        Command::Serve { config, log_format, .. } => serve(config, log_format),
        Command::Agents { args, command } => cli::run(&args, |c| cli::agents::run(c, command)),
        Command::Numbers { args, command } => cli::run(&args, |c| cli::numbers::run(c, command)),
        Command::Calls { args, command } => cli::run(&args, |c| cli::calls::run(c, command)),
        Command::Twilio { args, command } => cli::run(&args, |c| cli::twilio::run(c, command)),
    }
}

/// `vocals check-config`: validates and prints the effective configuration, secrets redacted.
fn check_config(file: Option<PathBuf>) -> ExitCode {
    match ConfigSource::open(file, None) {
        Ok((_, config)) => {
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

/// `vocals serve`: the server, until a drain ends or a second signal stops it.
fn serve(file: Option<PathBuf>, log_format: Option<String>) -> ExitCode {
    let (source, config) = match ConfigSource::open(file, log_format.as_deref()) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("vocals: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    // Before anything else: the state directory the store, the admin token and the secret key live in.
    if let Err(e) = daemon::prepare_state(&config) {
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
    match runtime.block_on(daemon::run(source, config, log_level)) {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("{:#}", anyhow::Error::from(e));
            ExitCode::FAILURE
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
