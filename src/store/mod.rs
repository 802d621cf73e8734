//! The store: agents and phone numbers here, call records in `calls`, linked Twilio accounts in `twilio`,
//! in SQLite (the embedded default) or PostgreSQL (several nodes sharing one configuration), through sqlx's
//! `AnyPool` with runtime queries, so building needs no database. Every SQL string of vocals lives in this
//! module and its children; the schema is the embedded, portable `migrations/`. Routing never queries it at
//! INVITE time: it reads the table [`catalog::Catalog`] builds with [`Store::routing_table`] after each write.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::Value;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Row, SqlSafeStr};

use crate::agent::config::{AgentConfig, AgentKind};
use crate::agent::transfer::TransferOverrides;
use crate::e164::E164;
use crate::media::recording::RecordMode;
use crate::routing::{NumberRules, NumberTable};
use crate::sdp::SrtpPolicy;

mod calls;
pub mod catalog;
pub mod secret;
mod twilio;

pub use calls::{CallQuery, CallRecord, Insight};
pub use twilio::{Termination, TwilioAccount};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    /// The change would break a rule (a name already taken, a number already added).
    #[error("{0}")]
    Conflict(String),
    /// The agent (or Twilio account) still serves these numbers.
    #[error("{what} still serves {}", numbers.join(", "))]
    InUse { what: String, numbers: Vec<String> },
    #[error("{0}")]
    Invalid(String),
    /// The built-in agent: listed and assignable, not changed or deleted.
    #[error("{0}")]
    ReadOnly(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrating the schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Secret(#[from] secret::SecretError),
}

/// An agent as stored. The signing secret is write-only: never serialised.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Agent {
    pub id: String,
    pub name: String,
    /// `websocket` or `echo`.
    pub kind: String,
    pub stream_url: Option<String>,
    pub system_prompt: String,
    pub providers: Value,
    pub settings: Value,
    #[serde(skip)]
    pub signing_secret: Option<String>,
    /// Whether a signing secret is set (handshakes then carry `X-Twilio-Signature`).
    pub signed: bool,
    /// The built-in `echo` agent: listed and assignable to numbers, never changed or deleted.
    pub builtin: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// The outcome of a check of an agent's stream URL: whether a WebSocket handshake succeeded, and if not why.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct AgentCheck {
    pub ok: bool,
    pub detail: String,
    pub checked_at: String,
}

impl Agent {
    /// The agent as calls use it. Its signing secret also authenticates its framework's REST hang-up (as a
    /// Twilio auth token does both); the prompt, providers and settings reach it in `start.customParameters`;
    /// `settings.transfer` is its own transfer policy (checked when written; one that no longer reads falls
    /// back to the server's `[transfer]`, the stricter default).
    pub fn to_config(&self) -> AgentConfig {
        let mut parameters = BTreeMap::new();
        if !self.system_prompt.is_empty() {
            parameters.insert("systemPrompt".to_string(), self.system_prompt.clone());
        }
        for (key, value) in [("providers", &self.providers), ("settings", &self.settings)] {
            if value.as_object().is_some_and(|o| !o.is_empty()) {
                parameters.insert(key.to_string(), value.to_string());
            }
        }
        AgentConfig {
            id: self.id.clone(),
            name: self.name.clone(),
            kind: if self.kind == "echo" { AgentKind::Echo } else { AgentKind::WebSocket },
            url: self.stream_url.clone().unwrap_or_default(),
            secret: self.signing_secret.clone(),
            connect_timeout: Duration::from_millis(3000),
            parameters,
            auth_token: self.signing_secret.clone(),
            transfer: self.transfer_policy(),
            record: self.settings.get("record").and_then(|r| r.as_str()).and_then(RecordMode::parse),
        }
    }

    fn transfer_policy(&self) -> TransferOverrides {
        let Some(value) = self.settings.get("transfer") else { return TransferOverrides::default() };
        TransferOverrides::from_json(value).unwrap_or_else(|e| {
            let error = e.under("settings.transfer");
            tracing::warn!(agent = %self.name, %error, "the agent's transfer settings do not read: using [transfer]");
            TransferOverrides::default()
        })
    }
}

/// What creating an agent takes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewAgent {
    pub name: String,
    pub kind: String,
    pub stream_url: Option<String>,
    pub system_prompt: String,
    /// JSON objects (`None`: `{}`).
    pub providers: Option<Value>,
    pub settings: Option<Value>,
    pub signing_secret: Option<String>,
}

/// A change to an agent: `None` leaves a field as it is; `Some(None)` clears an optional one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AgentPatch {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub stream_url: Option<Option<String>>,
    pub system_prompt: Option<String>,
    pub providers: Option<Value>,
    pub settings: Option<Value>,
    pub signing_secret: Option<Option<String>>,
}

/// A phone number as stored: `active` with an agent, `inactive` without, `error` when Twilio configuration
/// failed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PhoneNumber {
    #[serde(rename = "phone_number")]
    pub e164: E164,
    pub agent_id: Option<String>,
    pub status: String,
    pub status_detail: String,
    pub twilio_account_sid: Option<String>,
    pub twilio_number_sid: Option<String>,
    /// The number's Twilio voice settings before vocals took it (restored when it is removed).
    pub twilio_snapshot: Value,
    /// The number's SRTP policy (`off`, `allowed`, `required`); `None` follows the server's `media.srtp`.
    pub srtp: Option<String>,
    /// The number's own word on recording (`off`, `dual`); `None` follows its agent's, then the server's.
    pub record: Option<String>,
    /// What Twilio had for the number when vocals last read it (`trunk_sid`, `voice_url`,
    /// `voice_application_sid`, `read_at`); `{}` until then.
    pub twilio_now: Value,
    /// The number's routing rules, in order (`[]`: none; `agent_id` takes every call).
    pub rules: Value,
    pub created_at: String,
    pub updated_at: String,
}

/// The schema, embedded: a running vocals needs no files beside its binary.
fn migrator() -> Migrator {
    let init = include_str!("../../migrations/0001_init.sql");
    let accounts = include_str!("../../migrations/0002_twilio_accounts.sql");
    let trunks = include_str!("../../migrations/0003_twilio_trunks.sql");
    let srtp = include_str!("../../migrations/0004_number_srtp.sql");
    let health = include_str!("../../migrations/0005_health.sql");
    let termination = include_str!("../../migrations/0006_twilio_termination.sql");
    let ip_acl = include_str!("../../migrations/0007_twilio_ip_acl.sql");
    let session = include_str!("../../migrations/0008_call_session.sql");
    let recording = include_str!("../../migrations/0009_call_recording.sql");
    let number_record = include_str!("../../migrations/0010_number_record.sql");
    let insight = include_str!("../../migrations/0011_call_insight.sql");
    let rules = include_str!("../../migrations/0012_routing_rules.sql");
    Migrator::with_migrations(vec![
        Migration::new(1, Cow::Borrowed("init"), MigrationType::Simple, init.into_sql_str(), false),
        Migration::new(2, Cow::Borrowed("twilio accounts"), MigrationType::Simple, accounts.into_sql_str(), false),
        Migration::new(3, Cow::Borrowed("twilio trunks"), MigrationType::Simple, trunks.into_sql_str(), false),
        Migration::new(4, Cow::Borrowed("number srtp"), MigrationType::Simple, srtp.into_sql_str(), false),
        Migration::new(5, Cow::Borrowed("health"), MigrationType::Simple, health.into_sql_str(), false),
        Migration::new(
            6,
            Cow::Borrowed("twilio termination"),
            MigrationType::Simple,
            termination.into_sql_str(),
            false,
        ),
        Migration::new(7, Cow::Borrowed("twilio ip acl"), MigrationType::Simple, ip_acl.into_sql_str(), false),
        Migration::new(8, Cow::Borrowed("call session"), MigrationType::Simple, session.into_sql_str(), false),
        Migration::new(9, Cow::Borrowed("call recording"), MigrationType::Simple, recording.into_sql_str(), false),
        Migration::new(10, Cow::Borrowed("number record"), MigrationType::Simple, number_record.into_sql_str(), false),
        Migration::new(11, Cow::Borrowed("call insight"), MigrationType::Simple, insight.into_sql_str(), false),
        Migration::new(12, Cow::Borrowed("routing rules"), MigrationType::Simple, rules.into_sql_str(), false),
    ])
}

/// The columns every agent query reads, in [`Store::agent_from`]'s order.
const AGENT_COLUMNS: &str =
    "id, name, kind, stream_url, system_prompt, providers, settings, signing_secret, created_at, updated_at";
const NUMBER_COLUMNS: &str = "e164, agent_id, status, status_detail, twilio_account_sid, twilio_number_sid, \
                              created_at, updated_at, twilio_snapshot, srtp, twilio_now, record, rules";
const CALL_COLUMNS: &str = "id, call_sid, sip_call_id, from_number, to_number, agent, node, invite_at, answer_at, \
                            end_at, end_reason, sip_status, codec, stats, session, recording, route";

/// The id (and name) of the built-in echo agent's row, which [`Store::open`] makes sure exists, so numbers can
/// be assigned to it like to any agent.
pub const BUILTIN_ECHO: &str = "echo";

/// The PostgreSQL channel nodes announce routing changes on.
pub const ROUTING_CHANNEL: &str = "vocals_routing";

pub struct Store {
    pool: AnyPool,
    url: String,
    postgres: bool,
    /// Seals Twilio auth tokens; `None`: accounts cannot be stored.
    secret: Option<secret::SecretKey>,
}

impl Store {
    /// Connects to `url` (`sqlite://path` — created when missing, WAL — or `postgres://…`) and brings the
    /// schema up to date.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        let postgres = url.starts_with("postgres:") || url.starts_with("postgresql:");
        if !sqlite && !postgres {
            return Err(StoreError::Invalid(format!("store URL {url:?}: use sqlite://PATH or postgres://…")));
        }
        let full = if sqlite && !url.contains('?') { format!("{url}?mode=rwc") } else { url.to_string() };
        let mut options = AnyPoolOptions::new().max_connections(if sqlite { 1 } else { 8 });
        if sqlite {
            // Per connection, so on every one the pool opens (it replaces connections as they age).
            // synchronous = NORMAL is SQLite's advice for WAL: a commit is safe from a crash of vocals, and a
            // power cut can lose only the last commits, never corrupt the file; FULL would fsync every call record.
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    use sqlx::Executor;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    Ok(())
                })
            });
        }
        let pool = options.acquire_timeout(Duration::from_secs(5)).connect(&full).await?;
        if sqlite {
            // Persistent in the file.
            sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
        }
        migrator().run(&pool).await?;
        // The built-in echo agent, as a row numbers can point at. A user agent already named "echo" keeps the
        // name (and is what "echo" then means); nodes racing on one PostgreSQL insert it once.
        let now = now_rfc3339();
        sqlx::query(
            "INSERT INTO agents (id, name, kind, system_prompt, providers, settings, created_at, updated_at) \
             VALUES ($1, $1, 'echo', '', '{}', '{}', $2, $2) ON CONFLICT DO NOTHING",
        )
        .bind(BUILTIN_ECHO)
        .bind(&now)
        .execute(&pool)
        .await?;
        Ok(Store { pool, url: url.to_string(), postgres, secret: None })
    }

    pub(crate) fn pool(&self) -> &sqlx::AnyPool {
        &self.pool
    }

    /// The URL, for a PostgreSQL LISTEN connection of its own.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres
    }

    /// Tells the other nodes (PostgreSQL) that numbers or agents changed.
    pub async fn announce(&self) -> Result<(), StoreError> {
        if self.postgres {
            sqlx::query(sqlx::AssertSqlSafe(format!("NOTIFY {ROUTING_CHANNEL}"))).execute(&self.pool).await?;
        }
        Ok(())
    }

    pub async fn create_agent(&self, new: &NewAgent) -> Result<Agent, StoreError> {
        let providers = new.providers.clone().unwrap_or_else(|| Value::Object(Default::default()));
        let settings = new.settings.clone().unwrap_or_else(|| Value::Object(Default::default()));
        validate_agent(&new.name, &new.kind, new.stream_url.as_deref(), &providers, &settings)?;
        validate_signing_secret(new.signing_secret.as_deref())?;
        if self.agent_by_name(&new.name).await?.is_some() {
            return Err(StoreError::Conflict(format!("an agent named {:?} already exists", new.name)));
        }
        let (id, now) = (new_id("ag_"), now_rfc3339());
        sqlx::query(
            "INSERT INTO agents (id, name, kind, stream_url, system_prompt, providers, settings, signing_secret, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
        )
        .bind(&id)
        .bind(&new.name)
        .bind(&new.kind)
        .bind(new.stream_url.clone())
        .bind(&new.system_prompt)
        .bind(providers.to_string())
        .bind(settings.to_string())
        .bind(self.seal_signing_secret(&id, new.signing_secret.as_deref())?)
        .bind(&now)
        .execute(&self.pool)
        .await?;
        self.agent(&id).await?.ok_or_else(|| StoreError::NotFound(format!("agent {id}")))
    }

    /// Changes an agent; calls in progress keep the agent as it was.
    pub async fn update_agent(&self, id: &str, patch: &AgentPatch) -> Result<Agent, StoreError> {
        let mut a = self.agent(id).await?.ok_or_else(|| StoreError::NotFound(format!("agent {id}")))?;
        if a.builtin {
            return Err(StoreError::ReadOnly(format!("the built-in agent {:?} cannot be changed", a.name)));
        }
        if let Some(name) = &patch.name
            && *name != a.name
        {
            if self.agent_by_name(name).await?.is_some() {
                return Err(StoreError::Conflict(format!("an agent named {name:?} already exists")));
            }
            a.name = name.clone();
        }
        if let Some(kind) = &patch.kind {
            a.kind = kind.clone();
        }
        if let Some(url) = &patch.stream_url {
            a.stream_url = url.clone();
        }
        if let Some(prompt) = &patch.system_prompt {
            a.system_prompt = prompt.clone();
        }
        if let Some(providers) = &patch.providers {
            a.providers = providers.clone();
        }
        if let Some(settings) = &patch.settings {
            a.settings = settings.clone();
        }
        if let Some(secret) = &patch.signing_secret {
            validate_signing_secret(secret.as_deref())?;
            a.signing_secret = secret.clone().filter(|s| !s.is_empty());
        }
        validate_agent(&a.name, &a.kind, a.stream_url.as_deref(), &a.providers, &a.settings)?;
        sqlx::query(
            "UPDATE agents SET name = $1, kind = $2, stream_url = $3, system_prompt = $4, providers = $5, \
             settings = $6, signing_secret = $7, updated_at = $8 WHERE id = $9",
        )
        .bind(&a.name)
        .bind(&a.kind)
        .bind(a.stream_url.clone())
        .bind(&a.system_prompt)
        .bind(a.providers.to_string())
        .bind(a.settings.to_string())
        .bind(self.seal_signing_secret(id, a.signing_secret.as_deref())?)
        .bind(now_rfc3339())
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.agent(id).await?.ok_or_else(|| StoreError::NotFound(format!("agent {id}")))
    }

    pub async fn agent(&self, id: &str) -> Result<Option<Agent>, StoreError> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?;
        row.map(|r| self.agent_from(&r)).transpose()
    }

    async fn agent_by_name(&self, name: &str) -> Result<Option<Agent>, StoreError> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE name = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(name).fetch_optional(&self.pool).await?;
        row.map(|r| self.agent_from(&r)).transpose()
    }

    pub async fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents ORDER BY name");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await?;
        rows.iter().map(|r| self.agent_from(r)).collect()
    }

    /// Deletes an agent no number uses; otherwise [`StoreError::InUse`] names the numbers.
    pub async fn delete_agent(&self, id: &str) -> Result<(), StoreError> {
        let agent = self.agent(id).await?.ok_or_else(|| StoreError::NotFound(format!("agent {id}")))?;
        if agent.builtin {
            return Err(StoreError::ReadOnly(format!("the built-in agent {:?} cannot be deleted", agent.name)));
        }
        let numbers = self.numbers_of(id).await?;
        if !numbers.is_empty() {
            return Err(StoreError::InUse { what: format!("agent {}", agent.name), numbers });
        }
        sqlx::query("DELETE FROM agent_checks WHERE agent_id = $1").bind(id).execute(&self.pool).await?;
        sqlx::query("DELETE FROM agents WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Keeps the outcome of a check of the agent's stream URL (a WebSocket handshake).
    pub async fn set_agent_check(&self, id: &str, check: &AgentCheck) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM agent_checks WHERE agent_id = $1").bind(id).execute(&self.pool).await?;
        sqlx::query("INSERT INTO agent_checks (agent_id, ok, detail, checked_at) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(i32::from(check.ok))
            .bind(&check.detail)
            .bind(&check.checked_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The last check of every agent that has one, by agent id.
    pub async fn agent_checks(&self) -> Result<HashMap<String, AgentCheck>, StoreError> {
        let rows =
            sqlx::query("SELECT agent_id, ok, detail, checked_at FROM agent_checks").fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let ok: i32 = r.try_get(1)?;
                Ok((r.try_get(0)?, AgentCheck { ok: ok != 0, detail: r.try_get(2)?, checked_at: r.try_get(3)? }))
            })
            .collect()
    }

    /// The numbers an agent serves: as their `agent_id`, or named by one of their rules (`+1… (rules[2])`).
    async fn numbers_of(&self, agent_id: &str) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query("SELECT e164, agent_id, rules FROM phone_numbers ORDER BY e164").fetch_all(&self.pool).await?;
        let mut numbers = Vec::new();
        for r in &rows {
            let e164: String = r.try_get(0)?;
            if r.try_get::<Option<String>, _>(1)?.as_deref() == Some(agent_id) {
                numbers.push(e164.clone());
            }
            let rules = json_column(r, 2)?;
            let named: Vec<String> = rules
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
                .filter(|(_, rule)| rule["agent_id"].as_str() == Some(agent_id))
                .map(|(i, _)| format!("rules[{i}]"))
                .collect();
            if !named.is_empty() {
                numbers.push(format!("{e164} ({})", named.join(", ")));
            }
        }
        Ok(numbers)
    }

    /// Checks a number's rules against the agents there are: `Invalid("rules[i].field: why")` when wrong (the
    /// API answers it 422 with that `field`).
    pub async fn check_rules(&self, rules: &Value) -> Result<crate::routing::Rules, StoreError> {
        let agents: std::collections::HashSet<String> = self.agents().await?.into_iter().map(|a| a.id).collect();
        crate::routing::Rules::parse(rules, |id| agents.contains(id)).map_err(|e| StoreError::Invalid(e.to_string()))
    }

    /// Sets a number's routing rules (`[]`: none); it takes effect on the next call. The status follows: a
    /// number is active while its agent or one of its rules answers (one in `error` stays so).
    pub async fn set_number_rules(&self, e164: &E164, rules: &Value) -> Result<PhoneNumber, StoreError> {
        let Some(current) = self.number(e164).await? else {
            return Err(StoreError::NotFound(format!("number {e164}")));
        };
        self.check_rules(rules).await?;
        let rules = if rules.is_null() { Value::Array(vec![]) } else { rules.clone() };
        let status = if current.status == "error" { "error" } else { status_for(current.agent_id.as_deref(), &rules) };
        sqlx::query("UPDATE phone_numbers SET rules = $1, status = $2, updated_at = $3 WHERE e164 = $4")
            .bind(rules.to_string())
            .bind(status)
            .bind(now_rfc3339())
            .bind(e164.to_string())
            .execute(&self.pool)
            .await?;
        self.number(e164).await?.ok_or_else(|| StoreError::NotFound(e164.to_string()))
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
        .bind(status_for(agent_id, &Value::Null))
        .bind(&now)
        .execute(&self.pool)
        .await?;
        self.number(e164).await?.ok_or_else(|| StoreError::NotFound(e164.to_string()))
    }

    /// Assigns the number to an agent, or unassigns it (`None`): it takes effect on the next call.
    /// A number in `error` stays so (its Twilio configuration is what is wrong).
    pub async fn assign_number(&self, e164: &E164, agent_id: Option<&str>) -> Result<PhoneNumber, StoreError> {
        let Some(current) = self.number(e164).await? else {
            return Err(StoreError::NotFound(format!("number {e164}")));
        };
        self.check_agent(agent_id).await?;
        let status = if current.status == "error" { "error" } else { status_for(agent_id, &current.rules) };
        sqlx::query("UPDATE phone_numbers SET agent_id = $1, status = $2, updated_at = $3 WHERE e164 = $4")
            .bind(agent_id.map(str::to_string))
            .bind(status)
            .bind(now_rfc3339())
            .bind(e164.to_string())
            .execute(&self.pool)
            .await?;
        self.number(e164).await?.ok_or_else(|| StoreError::NotFound(e164.to_string()))
    }

    /// Sets a number's own SRTP policy; `None` makes it follow the server's `media.srtp`.
    pub async fn set_number_srtp(&self, e164: &E164, srtp: Option<SrtpPolicy>) -> Result<PhoneNumber, StoreError> {
        let sql = "UPDATE phone_numbers SET srtp = $1, updated_at = $2 WHERE e164 = $3";
        self.set_number_text(sql, e164, srtp.map(SrtpPolicy::as_str)).await
    }

    /// Sets a number's own word on recording; `None` makes it follow its agent's, then the server's.
    pub async fn set_number_record(&self, e164: &E164, record: Option<RecordMode>) -> Result<PhoneNumber, StoreError> {
        let sql = "UPDATE phone_numbers SET record = $1, updated_at = $2 WHERE e164 = $3";
        self.set_number_text(sql, e164, record.map(RecordMode::as_str)).await
    }

    /// Runs `sql` (an UPDATE of one text column of a number: the value, the time, the number) and reads the
    /// number back.
    async fn set_number_text(
        &self,
        sql: &'static str,
        e164: &E164,
        value: Option<&str>,
    ) -> Result<PhoneNumber, StoreError> {
        let done = sqlx::query(sql)
            .bind(value.map(str::to_string))
            .bind(now_rfc3339())
            .bind(e164.to_string())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("number {e164}")));
        }
        self.number(e164).await?.ok_or_else(|| StoreError::NotFound(format!("number {e164}")))
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
        let sql = format!("SELECT {NUMBER_COLUMNS} FROM phone_numbers WHERE e164 = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(e164.to_string()).fetch_optional(&self.pool).await?;
        row.map(|r| number_from(&r)).transpose()
    }

    pub async fn numbers(&self) -> Result<Vec<PhoneNumber>, StoreError> {
        let sql = format!("SELECT {NUMBER_COLUMNS} FROM phone_numbers ORDER BY e164");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await?;
        rows.iter().map(number_from).collect()
    }

    /// Every number with its agent, for routing (taken after each write, and at start).
    pub async fn routing_table(&self) -> Result<NumberTable, StoreError> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents");
        let agents: HashMap<String, Arc<AgentConfig>> = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| self.agent_from(r).map(|a| (a.id.clone(), Arc::new(a.to_config()))))
            .collect::<Result<_, _>>()?;
        let rows = sqlx::query("SELECT e164, agent_id, twilio_account_sid, srtp, record, rules FROM phone_numbers")
            .fetch_all(&self.pool)
            .await?;
        let mut table = NumberTable::new();
        for r in &rows {
            let e164: String = r.try_get(0)?;
            let Ok(e164) = E164::parse(&e164) else { continue };
            let agent = r.try_get::<Option<String>, _>(1)?.and_then(|id| agents.get(&id).cloned());
            table.insert(e164.clone(), agent, r.try_get(2)?);
            let srtp: Option<String> = r.try_get(3)?;
            table.set_srtp(&e164, srtp.as_deref().and_then(SrtpPolicy::parse));
            let record: Option<String> = r.try_get(4)?;
            table.set_record(&e164, record.as_deref().and_then(RecordMode::parse));
            // Rules were checked when written; ones that no longer parse (an agent deleted behind the API's
            // back) leave the number on its default agent, said in the log.
            let rules = json_column(r, 5)?;
            if rules.as_array().is_some_and(|l| !l.is_empty()) {
                match NumberRules::new(&rules, |id| agents.get(id).cloned()) {
                    Ok(rules) => table.set_rules(&e164, Some(rules)),
                    Err(e) => tracing::warn!(number = %e164, error = %e, "routing rules not applied"),
                }
            }
        }
        // Linked accounts are known even before they own a number here (sip.accounts' default).
        for r in sqlx::query("SELECT account_sid FROM twilio_accounts").fetch_all(&self.pool).await? {
            table.know_account(r.try_get(0)?);
        }
        Ok(table)
    }

    /// An agent from its row, its signing secret opened (a secret written before secrets were sealed is read
    /// as it is, and sealed at the agent's next change).
    fn agent_from(&self, r: &AnyRow) -> Result<Agent, StoreError> {
        let stored: Option<String> = r.try_get(7)?;
        let id: String = r.try_get(0)?;
        let secret = match stored {
            Some(sealed) if sealed.starts_with("v1:") => Some(self.secret()?.open(&signing_context(&id), &sealed)?),
            other => other,
        };
        agent_row(r, secret)
    }

    /// A signing secret as it is written: sealed with the store's key, bound to the agent's id.
    fn seal_signing_secret(&self, id: &str, secret: Option<&str>) -> Result<Option<String>, StoreError> {
        match secret.filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => Ok(Some(self.secret()?.seal(&signing_context(id), s)?)),
        }
    }

    async fn check_agent(&self, agent_id: Option<&str>) -> Result<(), StoreError> {
        match agent_id {
            Some(id) if self.agent(id).await?.is_none() => Err(StoreError::NotFound(format!("agent {id}"))),
            _ => Ok(()),
        }
    }
}

/// What a signing secret is sealed against: its agent (a sealed value copied to another agent does not open).
fn signing_context(agent_id: &str) -> String {
    format!("agent-signing-secret:{agent_id}")
}

/// The shortest signing secret taken: it also authenticates the agent's REST hang-up, as a password.
pub const MIN_SIGNING_SECRET: usize = 16;

/// A signing secret is empty (none) or at least [`MIN_SIGNING_SECRET`] characters.
fn validate_signing_secret(secret: Option<&str>) -> Result<(), StoreError> {
    match secret {
        Some(s) if !s.is_empty() && s.chars().count() < MIN_SIGNING_SECRET => Err(StoreError::Invalid(format!(
            "signing_secret must be at least {MIN_SIGNING_SECRET} characters (it is also the password of the \
             agent's REST hang-up), not {}",
            s.chars().count()
        ))),
        _ => Ok(()),
    }
}

fn validate_agent(
    name: &str,
    kind: &str,
    url: Option<&str>,
    providers: &Value,
    settings: &Value,
) -> Result<(), StoreError> {
    if name.trim().is_empty() || name.len() > 100 {
        return Err(StoreError::Invalid("name must be 1 to 100 characters".into()));
    }
    let ws =
        |u: &str| u.strip_prefix("ws://").or_else(|| u.strip_prefix("wss://")).is_some_and(|r| !r.trim().is_empty());
    if let Some(url) = url.filter(|u| !ws(u)) {
        return Err(StoreError::Invalid(format!(
            "stream_url must be a ws:// or wss:// URL, e.g. wss://agents.example.com/stream, not {url:?}"
        )));
    }
    match (kind, url) {
        ("echo", _) | ("websocket", Some(_)) => {}
        ("websocket", None) => {
            return Err(StoreError::Invalid(
                "stream_url must be a ws:// or wss:// URL for a websocket agent, e.g. wss://agents.example.com/stream"
                    .into(),
            ));
        }
        (other, _) => return Err(StoreError::Invalid(format!("kind must be websocket or echo, not {other:?}"))),
    }
    for (field, value) in [("providers", providers), ("settings", settings)] {
        if !value.is_object() {
            return Err(StoreError::Invalid(format!("{field} must be a JSON object")));
        }
    }
    if let Some(transfer) = settings.get("transfer") {
        TransferOverrides::from_json(transfer).map_err(|e| StoreError::Invalid(e.under("settings.transfer")))?;
    }
    if let Some(record) = settings.get("record")
        && record.as_str().and_then(RecordMode::parse).is_none()
    {
        return Err(StoreError::Invalid(format!("settings.record must be \"off\" or \"dual\", not {record}")));
    }
    Ok(())
}

/// `active` while some agent answers the number at some time (its own, or one a rule names), else `inactive`.
pub(crate) fn status_for(agent_id: Option<&str>, rules: &Value) -> &'static str {
    if agent_id.is_some() || a_rule_answers(rules) { "active" } else { "inactive" }
}

/// Whether some routing rule of a number names an agent (the number's calls are answered at some time).
pub fn a_rule_answers(rules: &Value) -> bool {
    rules.as_array().is_some_and(|l| l.iter().any(|r| r["agent_id"].is_string()))
}

fn json_column(r: &AnyRow, i: usize) -> Result<Value, StoreError> {
    let text: String = r.try_get(i)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Invalid(format!("stored JSON: {e}")))
}

/// An integer column, whichever width the driver reports.
fn int_column(r: &AnyRow, i: usize) -> Result<Option<i64>, StoreError> {
    match r.try_get::<Option<i64>, _>(i) {
        Ok(v) => Ok(v),
        Err(_) => Ok(r.try_get::<Option<i32>, _>(i)?.map(i64::from)),
    }
}

fn agent_row(r: &AnyRow, signing_secret: Option<String>) -> Result<Agent, StoreError> {
    Ok(Agent {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        kind: r.try_get(2)?,
        stream_url: r.try_get(3)?,
        system_prompt: r.try_get(4)?,
        providers: json_column(r, 5)?,
        settings: json_column(r, 6)?,
        signed: signing_secret.is_some(),
        signing_secret,
        builtin: r.try_get::<String, _>(0)? == BUILTIN_ECHO,
        created_at: r.try_get(8)?,
        updated_at: r.try_get(9)?,
    })
}

fn number_from(r: &AnyRow) -> Result<PhoneNumber, StoreError> {
    let e164: String = r.try_get(0)?;
    Ok(PhoneNumber {
        e164: E164::parse(&e164).map_err(|e| StoreError::Invalid(format!("stored number {e164}: {e}")))?,
        agent_id: r.try_get(1)?,
        status: r.try_get(2)?,
        status_detail: r.try_get(3)?,
        twilio_account_sid: r.try_get(4)?,
        twilio_number_sid: r.try_get(5)?,
        created_at: r.try_get(6)?,
        updated_at: r.try_get(7)?,
        twilio_snapshot: json_column(r, 8)?,
        srtp: r.try_get(9)?,
        twilio_now: json_column(r, 10)?,
        record: r.try_get(11)?,
        rules: json_column(r, 12)?,
    })
}

/// A random id with a prefix: 16 hex digits from the OS-seeded hasher.
pub fn new_id(prefix: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos());
    format!("{prefix}{:016x}", h.finish())
}

pub use crate::clock::{civil_date, now_rfc3339, rfc3339_millis, write_rfc3339_millis};

#[cfg(test)]
mod tests;
