//! The state directory: made ready (private, writable) before anything else runs, and the secrets kept in it
//! (the admin token, the key sealing Twilio auth tokens), generated at first start; the store opened on it.

use std::path::PathBuf;

use crate::config::Config;
use crate::store::secret::SecretKey;
use crate::store::{Store, StoreError};

/// Makes the state directory ready before anything else runs: created (mode 0700) when missing, checked
/// writable, and the SQLite database file created private (0600; SQLite gives its WAL and shared-memory files
/// the database's mode). The error names the path and the reason, for one line on stderr and exit code 2.
pub fn prepare_state(config: &Config) -> Result<(), String> {
    let dir = &config.state_dir;
    private_dir(dir).map_err(|e| format!("state directory {}: {e}", dir.display()))?;
    if let Some(db) = sqlite_path(&config.store_url) {
        if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
            private_dir(parent).map_err(|e| format!("database directory {}: {e}", parent.display()))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&db) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("database {}: cannot create it: {e}", db.display())),
        }
    }
    Ok(())
}

/// A directory that exists (created with mode 0700 if missing, parents too) and that this process can write.
fn private_dir(dir: &std::path::Path) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err("exists and is not a directory".into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(dir).map_err(|e| format!("cannot create it: {e}"))?;
        }
        Err(e) => return Err(format!("cannot read it: {e}")),
    }
    let probe = dir.join(format!(".vocals-write-check-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| format!("cannot write in it: {e}"))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// The file of a `sqlite://PATH[?options]` store URL (`None` for PostgreSQL or an in-memory database).
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// Opens the store, retrying for 30 s while a PostgreSQL server does not answer (it may be starting
/// alongside). A local SQLite file either opens or does not: its error is returned at once.
pub(super) async fn open_store(url: &str) -> std::io::Result<Store> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match Store::open(url).await {
            Ok(store) => return Ok(store),
            Err(e @ StoreError::Invalid(_)) => return Err(std::io::Error::other(e.to_string())),
            Err(e) if sqlite_path(url).is_some() || url.starts_with("sqlite") => {
                return Err(std::io::Error::other(format!("store {}: {e}", crate::config::redact_url(url))));
            }
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(std::io::Error::other(format!("store {}: {e}", crate::config::redact_url(url))));
            }
            Err(e) => {
                tracing::warn!(store = %crate::config::redact_url(url), error = %e, "store not reachable yet; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

/// Where the generated admin token is kept.
pub fn token_path(config: &Config) -> PathBuf {
    config.state_dir.join("admin-token")
}

/// The admin API's token: from the config (or `VOCALS_ADMIN_TOKEN`), else the one in the state directory,
/// generated (32 random bytes, hex, mode 0600) at first start.
pub fn admin_token(config: &Config) -> std::io::Result<String> {
    if let Some(token) = &config.admin_token {
        return Ok(token.clone());
    }
    let path = token_path(config);
    let generate = || {
        let mut bytes = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .map_err(|_| std::io::Error::other("no randomness for the admin token"))?;
        Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
    };
    let valid = |t: &str| t.len() >= 16;
    private_file(&path, "the admin API token (send it as Authorization: Bearer)", valid, generate)
}

/// The key that seals Twilio auth tokens: from the config (or `VOCALS_STORE_SECRET_KEY`), else the one in the
/// state directory, generated at first start.
pub(super) fn secret_key(config: &Config) -> std::io::Result<SecretKey> {
    let text = match &config.store_secret_key {
        Some(key) => key.clone(),
        None => {
            if config.store_url.starts_with("postgres") {
                tracing::warn!("store.secret_key is not set: nodes sharing this PostgreSQL need the same key");
            }
            let path = config.state_dir.join("secret-key");
            let valid = |t: &str| SecretKey::from_base64(t).is_ok();
            let generate = || SecretKey::generate().map_err(std::io::Error::other);
            private_file(&path, "the key sealing Twilio auth tokens", valid, generate)?
        }
    };
    SecretKey::from_base64(&text).map_err(|e| std::io::Error::other(format!("store.secret_key: {e}")))
}

/// A secret kept in a file of its own (mode 0600): read when valid, else generated and written.
fn private_file(
    path: &std::path::Path,
    what: &str,
    valid: impl Fn(&str) -> bool,
    generate: impl Fn() -> std::io::Result<String>,
) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) if valid(text.trim()) => return Ok(text.trim().to_string()),
        Ok(_) => tracing::warn!(path = %path.display(), "{what}: the file holds no valid value; generating a new one"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(std::io::Error::new(e.kind(), format!("reading {}: {e}", path.display()))),
    }
    let value = generate()?;
    if let Some(dir) = path.parent() {
        private_dir(dir).map_err(|e| std::io::Error::other(format!("{}: {e}", dir.display())))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    std::io::Write::write_all(&mut file, format!("{value}\n").as_bytes())?;
    tracing::info!(path = %path.display(), "generated {what}");
    Ok(value)
}
