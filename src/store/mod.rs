//! The store: agents and phone numbers (and, to come, Twilio accounts and call records) in SQLite (the embedded
//! default) or PostgreSQL (several nodes sharing one configuration), through sqlx's `AnyPool` with runtime
//! queries, so building needs no database. Every SQL string of vocals lives in this module; the schema is the
//! embedded, portable `migrations/`. Routing never queries it at INVITE time: it reads a [`RoutingSnapshot`]
//! taken after each write.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::SystemTime;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Row, SqlSafeStr};

use crate::e164::E164;
use crate::routing::{Lookup, NumberLookup};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    /// The change would break a rule (a name already taken, a number already added).
    #[error("{0}")]
    Conflict(String),
    /// The agent still serves these numbers.
    #[error("agent {agent} still serves {}", numbers.join(", "))]
    InUse { agent: String, numbers: Vec<String> },
    #[error("{0}")]
    Invalid(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrating the schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// An agent as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    pub id: String,
    pub name: String,
    /// `websocket` or `echo`.
    pub kind: String,
    pub stream_url: Option<String>,
    pub system_prompt: String,
    pub created_at: String,
    pub updated_at: String,
}

/// What creating an agent takes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewAgent {
    pub name: String,
    pub kind: String,
    pub stream_url: Option<String>,
    pub system_prompt: String,
}

/// A phone number as stored: `active` with an agent, `inactive` without, `error` when Twilio configuration
/// failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhoneNumber {
    pub e164: E164,
    pub agent_id: Option<String>,
    pub status: String,
    pub status_detail: String,
    pub created_at: String,
    pub updated_at: String,
}

/// Number -> agent, as routing reads it: a copy in memory, never a database round trip per call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoutingSnapshot {
    numbers: HashMap<E164, Lookup>,
}

impl NumberLookup for RoutingSnapshot {
    fn lookup(&self, number: &E164) -> Lookup {
        self.numbers.get(number).cloned().unwrap_or(Lookup::Unknown)
    }
}

/// The schema, embedded: a running vocals needs no files beside its binary.
fn migrator() -> Migrator {
    let init = include_str!("../../migrations/0001_init.sql");
    let migration = Migration::new(1, Cow::Borrowed("init"), MigrationType::Simple, init.into_sql_str(), false);
    Migrator::with_migrations(vec![migration])
}

pub struct Store {
    pool: AnyPool,
}

impl Store {
    /// Connects to `url` (`sqlite://path` — created when missing, WAL — or `postgres://…`) and brings the
    /// schema up to date.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        let url = if sqlite && !url.contains('?') { format!("{url}?mode=rwc") } else { url.to_string() };
        let pool = AnyPoolOptions::new().max_connections(if sqlite { 1 } else { 8 }).connect(&url).await?;
        if sqlite {
            sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
            sqlx::query("PRAGMA foreign_keys = ON").execute(&pool).await?;
        }
        migrator().run(&pool).await?;
        Ok(Store { pool })
    }

    pub async fn create_agent(&self, new: &NewAgent) -> Result<Agent, StoreError> {
        if new.name.trim().is_empty() {
            return Err(StoreError::Invalid("name must not be empty".into()));
        }
        match (new.kind.as_str(), &new.stream_url) {
            ("echo", _) => {}
            ("websocket", Some(url)) if url.starts_with("ws://") || url.starts_with("wss://") => {}
            ("websocket", _) => {
                return Err(StoreError::Invalid("a websocket agent needs a ws:// or wss:// stream_url".into()));
            }
            (other, _) => return Err(StoreError::Invalid(format!("kind {other:?} is not websocket or echo"))),
        }
        if self.agent_by_name(&new.name).await?.is_some() {
            return Err(StoreError::Conflict(format!("an agent named {:?} already exists", new.name)));
        }
        let (id, now) = (new_id("ag_"), now_rfc3339());
        sqlx::query(
            "INSERT INTO agents (id, name, kind, stream_url, system_prompt, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(&id)
        .bind(&new.name)
        .bind(&new.kind)
        .bind(new.stream_url.clone())
        .bind(&new.system_prompt)
        .bind(&now)
        .execute(&self.pool)
        .await?;
        self.agent(&id).await?.ok_or_else(|| StoreError::NotFound(format!("agent {id}")))
    }

    pub async fn agent(&self, id: &str) -> Result<Option<Agent>, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, kind, stream_url, system_prompt, created_at, updated_at FROM agents WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| agent_from(&r)).transpose()
    }

    async fn agent_by_name(&self, name: &str) -> Result<Option<Agent>, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, kind, stream_url, system_prompt, created_at, updated_at FROM agents WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| agent_from(&r)).transpose()
    }

    pub async fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, kind, stream_url, system_prompt, created_at, updated_at FROM agents ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(agent_from).collect()
    }

    /// Deletes an agent no number uses; otherwise [`StoreError::InUse`] names the numbers.
    pub async fn delete_agent(&self, id: &str) -> Result<(), StoreError> {
        let agent = self.agent(id).await?.ok_or_else(|| StoreError::NotFound(format!("agent {id}")))?;
        let numbers = self.numbers_of(id).await?;
        if !numbers.is_empty() {
            return Err(StoreError::InUse { agent: agent.name, numbers });
        }
        sqlx::query("DELETE FROM agents WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    async fn numbers_of(&self, agent_id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT e164 FROM phone_numbers WHERE agent_id = $1 ORDER BY e164")
            .bind(agent_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| r.try_get::<String, _>(0)).collect::<Result<_, _>>()?)
    }

    /// Adds a number, `active` with an agent, `inactive` without.
    pub async fn add_number(&self, e164: &E164, agent_id: Option<&str>) -> Result<PhoneNumber, StoreError> {
        if self.number(e164).await?.is_some() {
            return Err(StoreError::Conflict(format!("{e164} is already added")));
        }
        self.check_agent(agent_id).await?;
        let now = now_rfc3339();
        sqlx::query(
            "INSERT INTO phone_numbers (e164, agent_id, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(e164.to_string())
        .bind(agent_id.map(str::to_string))
        .bind(status_for(agent_id))
        .bind(&now)
        .execute(&self.pool)
        .await?;
        self.number(e164).await?.ok_or_else(|| StoreError::NotFound(e164.to_string()))
    }

    /// Assigns the number to an agent, or unassigns it (`None`): it takes effect on the next call.
    pub async fn assign_number(&self, e164: &E164, agent_id: Option<&str>) -> Result<PhoneNumber, StoreError> {
        if self.number(e164).await?.is_none() {
            return Err(StoreError::NotFound(format!("number {e164}")));
        }
        self.check_agent(agent_id).await?;
        sqlx::query("UPDATE phone_numbers SET agent_id = $1, status = $2, updated_at = $3 WHERE e164 = $4")
            .bind(agent_id.map(str::to_string))
            .bind(status_for(agent_id))
            .bind(now_rfc3339())
            .bind(e164.to_string())
            .execute(&self.pool)
            .await?;
        self.number(e164).await?.ok_or_else(|| StoreError::NotFound(e164.to_string()))
    }

    pub async fn delete_number(&self, e164: &E164) -> Result<(), StoreError> {
        let done =
            sqlx::query("DELETE FROM phone_numbers WHERE e164 = $1").bind(e164.to_string()).execute(&self.pool).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("number {e164}")));
        }
        Ok(())
    }

    pub async fn number(&self, e164: &E164) -> Result<Option<PhoneNumber>, StoreError> {
        let row = sqlx::query(
            "SELECT e164, agent_id, status, status_detail, created_at, updated_at FROM phone_numbers WHERE e164 = $1",
        )
        .bind(e164.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| number_from(&r)).transpose()
    }

    pub async fn numbers(&self) -> Result<Vec<PhoneNumber>, StoreError> {
        let rows = sqlx::query(
            "SELECT e164, agent_id, status, status_detail, created_at, updated_at FROM phone_numbers ORDER BY e164",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(number_from).collect()
    }

    /// Every number with its agent's name, for routing (taken after each write, and at start).
    pub async fn routing_snapshot(&self) -> Result<RoutingSnapshot, StoreError> {
        let rows = sqlx::query(
            "SELECT n.e164, a.name, n.twilio_account_sid FROM phone_numbers n \
             LEFT JOIN agents a ON a.id = n.agent_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut numbers = HashMap::new();
        for r in &rows {
            let e164: String = r.try_get(0)?;
            let Ok(e164) = E164::parse(&e164) else { continue };
            let lookup = match r.try_get::<Option<String>, _>(1)? {
                Some(agent) => Lookup::Agent { agent, account_sid: r.try_get(2)? },
                None => Lookup::Unassigned,
            };
            numbers.insert(e164, lookup);
        }
        Ok(RoutingSnapshot { numbers })
    }

    async fn check_agent(&self, agent_id: Option<&str>) -> Result<(), StoreError> {
        match agent_id {
            Some(id) if self.agent(id).await?.is_none() => Err(StoreError::NotFound(format!("agent {id}"))),
            _ => Ok(()),
        }
    }
}

fn status_for(agent_id: Option<&str>) -> &'static str {
    if agent_id.is_some() { "active" } else { "inactive" }
}

fn agent_from(r: &AnyRow) -> Result<Agent, StoreError> {
    Ok(Agent {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        kind: r.try_get(2)?,
        stream_url: r.try_get(3)?,
        system_prompt: r.try_get(4)?,
        created_at: r.try_get(5)?,
        updated_at: r.try_get(6)?,
    })
}

fn number_from(r: &AnyRow) -> Result<PhoneNumber, StoreError> {
    let e164: String = r.try_get(0)?;
    Ok(PhoneNumber {
        e164: E164::parse(&e164).map_err(|e| StoreError::Invalid(format!("stored number {e164}: {e}")))?,
        agent_id: r.try_get(1)?,
        status: r.try_get(2)?,
        status_detail: r.try_get(3)?,
        created_at: r.try_get(4)?,
        updated_at: r.try_get(5)?,
    })
}

/// A random id with a prefix: 16 hex digits from the OS-seeded hasher.
fn new_id(prefix: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos());
    format!("{prefix}{:016x}", h.finish())
}

/// Now, as RFC 3339 UTC with milliseconds.
fn now_rfc3339() -> String {
    let since = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let (secs, millis) = (since.as_secs() as i64, since.subsec_millis());
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests;
