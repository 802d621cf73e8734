//! Configuration: built-in defaults < TOML file < environment (`VOCALS_<SECTION>_<KEY>`) < CLI flags, parsed
//! once into typed sub-configs. A bad value is reported with its key path and what is allowed. Nothing else
//! reads the environment or the file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::sip::message::Limits;

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Where state lives (database, generated token). `VOCALS_STATE_DIR`; default `/var/lib/vocals` under
    /// systemd (`STATE_DIRECTORY` set), else `./vocals-data`.
    pub state_dir: PathBuf,
    pub sip: SipConfig,
    pub log: LogConfig,
}

/// `[sip]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipConfig {
    /// UDP listener; `None` when configured as an empty string.
    pub listen_udp: Option<SocketAddr>,
    /// TCP listener; `None` when configured as an empty string.
    pub listen_tcp: Option<SocketAddr>,
    /// Host or IP put in Contact; `None` = the address the request arrived on.
    pub public_host: Option<String>,
    /// Message size caps.
    pub limits: Limits,
}

/// `[log]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// A tracing filter directive, e.g. `info` or `vocals=debug,info`.
    pub level: String,
    pub format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Pretty on a terminal, plain otherwise (journald).
    Auto,
    Pretty,
    Plain,
    Json,
}

/// A configuration error, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{key}: {message}")]
    Value { key: String, message: String },
}

/// Every key, with its default, in file order. The single source for defaults, unknown-key checks and
/// `config/vocals.toml` (a test checks that file against this list).
pub const KEYS: &[(&str, &str, &str)] = &[
    ("", "state_dir", ""),
    ("sip", "listen_udp", "0.0.0.0:5060"),
    ("sip", "listen_tcp", "0.0.0.0:5060"),
    ("sip", "public_host", ""),
    ("sip", "max_message_size", "65536"),
    ("sip", "max_headers", "256"),
    ("sip", "max_header_line", "16384"),
    ("log", "level", "info"),
    ("log", "format", "auto"),
];

impl Config {
    /// Loads defaults, then `file` (if given), then the `VOCALS_*` variables in `env`.
    pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let mut values: BTreeMap<String, String> =
            KEYS.iter().map(|(section, key, default)| (path(section, key), (*default).to_string())).collect();
        if let Some(file) = file {
            read_file(file, &mut values)?;
        }
        let env: Vec<(String, String)> = env.into_iter().collect();
        for (name, value) in &env {
            if let Some(key) = env_key(name) {
                if !values.contains_key(&key) {
                    return Err(unknown(&key, name));
                }
                values.insert(key, value.clone());
            }
        }
        let systemd = env.iter().any(|(k, _)| k == "STATE_DIRECTORY");
        Self::from_values(&values, systemd)
    }

    fn from_values(v: &BTreeMap<String, String>, systemd: bool) -> Result<Config, ConfigError> {
        let state_dir = match v["state_dir"].as_str() {
            "" if systemd => PathBuf::from("/var/lib/vocals"),
            "" => PathBuf::from("./vocals-data"),
            dir => PathBuf::from(dir),
        };
        let limits = Limits {
            max_message: number(v, "sip.max_message_size", 1500, 1 << 20)?,
            max_headers: number(v, "sip.max_headers", 16, 4096)?,
            max_header_line: number(v, "sip.max_header_line", 256, 1 << 20)?,
        };
        let sip = SipConfig {
            listen_udp: listen(v, "sip.listen_udp")?,
            listen_tcp: listen(v, "sip.listen_tcp")?,
            public_host: Some(v["sip.public_host"].clone()).filter(|h| !h.is_empty()),
            limits,
        };
        let format = match v["log.format"].as_str() {
            "auto" => LogFormat::Auto,
            "pretty" => LogFormat::Pretty,
            "plain" => LogFormat::Plain,
            "json" => LogFormat::Json,
            other => return Err(bad("log.format", other, "one of auto, pretty, plain, json")),
        };
        let log = LogConfig { level: v["log.level"].clone(), format };
        Ok(Config { state_dir, sip, log })
    }
}

fn path(section: &str, key: &str) -> String {
    if section.is_empty() { key.to_string() } else { format!("{section}.{key}") }
}

/// `VOCALS_SIP_LISTEN_UDP` -> `sip.listen_udp`; `VOCALS_STATE_DIR` -> `state_dir`. `VOCALS_CONFIG` (the file
/// path, read by the CLI) is not a key.
fn env_key(name: &str) -> Option<String> {
    let rest = name.strip_prefix("VOCALS_")?.to_ascii_lowercase();
    if rest == "config" {
        return None;
    }
    if KEYS.iter().any(|(s, k, _)| s.is_empty() && *k == rest) {
        return Some(rest);
    }
    let (section, key) = rest.split_once('_')?;
    Some(format!("{section}.{key}"))
}

fn read_file(file: &Path, values: &mut BTreeMap<String, String>) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read { path: file.into(), source })?;
    let table: toml::Table =
        text.parse().map_err(|e: toml::de::Error| ConfigError::Syntax { path: file.into(), message: e.to_string() })?;
    for (name, item) in table {
        match item {
            toml::Value::Table(section) => {
                for (key, value) in section {
                    set(values, format!("{name}.{key}"), value)?;
                }
            }
            value => set(values, name, value)?,
        }
    }
    Ok(())
}

fn set(values: &mut BTreeMap<String, String>, key: String, value: toml::Value) -> Result<(), ConfigError> {
    if !values.contains_key(&key) {
        return Err(unknown(&key, &key));
    }
    let text = match value {
        toml::Value::String(s) => s,
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => return Err(bad(&key, other.type_str(), "a string or a number")),
    };
    values.insert(key, text);
    Ok(())
}

fn listen(v: &BTreeMap<String, String>, key: &str) -> Result<Option<SocketAddr>, ConfigError> {
    match v[key].trim() {
        "" => Ok(None),
        s => s
            .parse()
            .map(Some)
            .map_err(|_| bad(key, s, "an address like 0.0.0.0:5060 or [::]:5060, or \"\" to turn it off")),
    }
}

fn number(v: &BTreeMap<String, String>, key: &str, min: usize, max: usize) -> Result<usize, ConfigError> {
    let s = v[key].trim();
    s.parse::<usize>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| bad(key, s, &format!("a whole number from {min} to {max}")))
}

fn bad(key: &str, value: &str, allowed: &str) -> ConfigError {
    ConfigError::Value { key: key.to_string(), message: format!("{value:?} is not valid: expected {allowed}") }
}

fn unknown(key: &str, source: &str) -> ConfigError {
    let known: Vec<String> = KEYS.iter().map(|(s, k, _)| path(s, k)).collect();
    ConfigError::Value {
        key: key.to_string(),
        message: format!("unknown key (from {source}); known keys: {}", known.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn file(text: &str) -> tempfile_like::File {
        tempfile_like::File::new(text)
    }

    #[test]
    fn defaults_need_no_file() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.sip.listen_udp, Some("0.0.0.0:5060".parse().unwrap()));
        assert_eq!(c.sip.listen_tcp, Some("0.0.0.0:5060".parse().unwrap()));
        assert_eq!(c.sip.limits, Limits::default());
        assert_eq!(c.state_dir, PathBuf::from("./vocals-data"));
        assert_eq!(c.log.format, LogFormat::Auto);
    }

    #[test]
    fn environment_overrides_the_file() {
        let f = file("[sip]\nlisten_udp = \"127.0.0.1:5070\"\nmax_headers = 100\n");
        let c = Config::load(
            Some(f.path()),
            env(&[("VOCALS_SIP_LISTEN_UDP", "[::1]:5080"), ("VOCALS_SIP_LISTEN_TCP", "")]),
        )
        .unwrap();
        assert_eq!(c.sip.listen_udp, Some("[::1]:5080".parse().unwrap()));
        assert_eq!(c.sip.listen_tcp, None);
        assert_eq!(c.sip.limits.max_headers, 100);
    }

    #[test]
    fn state_dir_follows_systemd_and_the_environment() {
        let c = Config::load(None, env(&[("STATE_DIRECTORY", "/var/lib/vocals")])).unwrap();
        assert_eq!(c.state_dir, PathBuf::from("/var/lib/vocals"));
        let c = Config::load(None, env(&[("VOCALS_STATE_DIR", "/srv/v")])).unwrap();
        assert_eq!(c.state_dir, PathBuf::from("/srv/v"));
    }

    #[test]
    fn bad_values_name_their_key_and_what_is_allowed() {
        let e = Config::load(None, env(&[("VOCALS_SIP_LISTEN_UDP", "5060")])).unwrap_err().to_string();
        assert!(e.starts_with("sip.listen_udp: \"5060\" is not valid"), "{e}");
        let e = Config::load(None, env(&[("VOCALS_SIP_MAX_MESSAGE_SIZE", "10")])).unwrap_err().to_string();
        assert!(e.contains("from 1500 to 1048576"), "{e}");
        let e = Config::load(None, env(&[("VOCALS_LOG_FORMAT", "xml")])).unwrap_err().to_string();
        assert!(e.contains("auto, pretty, plain, json"), "{e}");
    }

    #[test]
    fn unknown_keys_are_refused_from_file_and_environment() {
        let f = file("[sip]\nlisten_udpp = \"x\"\n");
        let e = Config::load(Some(f.path()), env(&[])).unwrap_err().to_string();
        assert!(e.starts_with("sip.listen_udpp: unknown key"), "{e}");
        let e = Config::load(None, env(&[("VOCALS_SIP_LISTEN", "x")])).unwrap_err().to_string();
        assert!(e.contains("VOCALS_SIP_LISTEN"), "{e}");
        assert!(Config::load(None, env(&[("VOCALS_CONFIG", "/etc/vocals.toml")])).is_ok());
    }

    #[test]
    fn syntax_errors_name_the_file() {
        let f = file("[sip\n");
        let e = Config::load(Some(f.path()), env(&[])).unwrap_err().to_string();
        assert!(e.contains("is not valid TOML"), "{e}");
    }

    #[test]
    fn the_shipped_config_file_documents_every_key_with_its_default() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/vocals.toml")).unwrap();
        for (section, key, default) in KEYS {
            let line = format!("# {key} = \"{default}\"");
            let number_line = format!("# {key} = {default}");
            assert!(text.contains(&line) || text.contains(&number_line), "config/vocals.toml lacks {section}.{key}");
        }
        // Loading the shipped file (everything commented) gives the defaults.
        let shipped =
            Config::load(Some(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/vocals.toml"))), env(&[]));
        assert_eq!(shipped.unwrap(), Config::load(None, env(&[])).unwrap());
    }

    /// A file in the system temp dir, removed on drop.
    mod tempfile_like {
        pub struct File(std::path::PathBuf);
        impl File {
            pub fn new(text: &str) -> File {
                use std::sync::atomic::{AtomicUsize, Ordering};
                static N: AtomicUsize = AtomicUsize::new(0);
                let p = std::env::temp_dir().join(format!(
                    "vocals-config-{}-{}.toml",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::write(&p, text).unwrap();
                File(p)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for File {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }
}
