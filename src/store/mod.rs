//! The store: agents and phone numbers (and, to come, Twilio accounts and call records) in SQLite (the embedded
//! default) or PostgreSQL (several nodes sharing one configuration), through sqlx's `AnyPool` with runtime
//! queries, so building needs no database. Every SQL string of vocals lives in this module; the schema is the
//! embedded, portable `migrations/`. Routing never queries it at INVITE time: it reads a [`RoutingSnapshot`]
//! taken after each write.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::Value;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Row, SqlSafeStr};

use crate::config::{AgentConfig, AgentKind};
use crate::e164::E164;
use crate::routing::NumberTable;

pub mod catalog;
pub mod secret;

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
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrating the schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Secret(#[from] secret::SecretError),
}

/// A linked Twilio account, as listed: its auth token never leaves the store except through
/// [`Store::twilio_token`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TwilioAccount {
    pub account_sid: String,
    pub friendly_name: String,
    /// The account's vocals trunk, once created.
    pub trunk_sid: Option<String>,
    pub created_at: String,
    pub updated_at: String,
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
    pub created_at: String,
    pub updated_at: String,
}

impl Agent {
    /// The agent as calls use it. Its signing secret also authenticates its framework's REST hang-up (as a
    /// Twilio auth token does both); the prompt, providers and settings reach it in `start.customParameters`.
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
        }
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
    pub created_at: String,
    pub updated_at: String,
}

/// A call record: written when the call arrives, completed when it is answered and when it ends.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CallRecord {
    /// vocals' own id (`vc_…`).
    pub id: String,
    /// Twilio's CallSid (`X-Twilio-CallSid`), or the one vocals made up for a call not from Twilio.
    pub call_sid: Option<String>,
    pub sip_call_id: String,
    pub from: String,
    pub to: String,
    /// The agent's name (`None`: the call was not routed).
    pub agent: Option<String>,
    /// The vocals node that took the call.
    pub node: String,
    pub invite_at: String,
    pub answer_at: Option<String>,
    pub end_at: Option<String>,
    pub end_reason: Option<String>,
    /// The final status of the INVITE (200 when answered).
    pub sip_status: Option<u16>,
    pub codec: Option<String>,
    /// RTP and agent latency figures, written when the media ends.
    pub stats: Value,
}

/// Which calls to list: newest first, `limit` at a time, after `cursor` (the last call of the page before).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallQuery {
    /// `Some(true)`: only calls not ended; `Some(false)`: only ended ones.
    pub active: Option<bool>,
    pub agent: Option<String>,
    /// The dialed number.
    pub to: Option<String>,
    pub cursor: Option<String>,
    pub limit: u32,
}

/// The schema, embedded: a running vocals needs no files beside its binary.
fn migrator() -> Migrator {
    let init = include_str!("../../migrations/0001_init.sql");
    let accounts = include_str!("../../migrations/0002_twilio_accounts.sql");
    let trunks = include_str!("../../migrations/0003_twilio_trunks.sql");
    Migrator::with_migrations(vec![
        Migration::new(1, Cow::Borrowed("init"), MigrationType::Simple, init.into_sql_str(), false),
        Migration::new(2, Cow::Borrowed("twilio accounts"), MigrationType::Simple, accounts.into_sql_str(), false),
        Migration::new(3, Cow::Borrowed("twilio trunks"), MigrationType::Simple, trunks.into_sql_str(), false),
    ])
}

/// The columns every agent query reads, in [`agent_from`]'s order.
const AGENT_COLUMNS: &str =
    "id, name, kind, stream_url, system_prompt, providers, settings, signing_secret, created_at, updated_at";
const NUMBER_COLUMNS: &str = "e164, agent_id, status, status_detail, twilio_account_sid, twilio_number_sid, \
                              created_at, updated_at, twilio_snapshot";
const CALL_COLUMNS: &str = "id, call_sid, sip_call_id, from_number, to_number, agent, node, invite_at, answer_at, \
                            end_at, end_reason, sip_status, codec, stats";

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
        let pool = AnyPoolOptions::new()
            .max_connections(if sqlite { 1 } else { 8 })
            .acquire_timeout(Duration::from_secs(5))
            .connect(&full)
            .await?;
        if sqlite {
            sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
            sqlx::query("PRAGMA foreign_keys = ON").execute(&pool).await?;
            sqlx::query("PRAGMA busy_timeout = 5000").execute(&pool).await?;
        }
        migrator().run(&pool).await?;
        Ok(Store { pool, url: url.to_string(), postgres, secret: None })
    }

    /// The key Twilio auth tokens are sealed with (every node sharing a database needs the same one).
    pub fn with_secret(mut self, key: secret::SecretKey) -> Store {
        self.secret = Some(key);
        self
    }

    fn secret(&self) -> Result<&secret::SecretKey, StoreError> {
        self.secret
            .as_ref()
            .ok_or_else(|| StoreError::Invalid("no secret key: Twilio accounts cannot be stored".into()))
    }

    /// Links (or re-links, with a new token) a Twilio account; the token is sealed before it is written.
    pub async fn put_twilio_account(
        &self,
        sid: &str,
        token: &str,
        friendly_name: &str,
    ) -> Result<TwilioAccount, StoreError> {
        if !(sid.len() == 34 && sid.starts_with("AC") && sid[2..].bytes().all(|b| b.is_ascii_hexdigit())) {
            return Err(StoreError::Invalid(format!("account_sid must be AC followed by 32 hex digits, not {sid:?}")));
        }
        if token.trim().is_empty() {
            return Err(StoreError::Invalid("auth_token must not be empty".into()));
        }
        let sealed = self.secret()?.seal(sid, token)?;
        let now = now_rfc3339();
        let updated = sqlx::query(
            "UPDATE twilio_accounts SET sealed_token = $1, friendly_name = $2, updated_at = $3 WHERE account_sid = $4",
        )
        .bind(&sealed)
        .bind(friendly_name)
        .bind(&now)
        .bind(sid)
        .execute(&self.pool)
        .await?;
        if updated.rows_affected() == 0 {
            sqlx::query(
                "INSERT INTO twilio_accounts (account_sid, friendly_name, sealed_token, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $4)",
            )
            .bind(sid)
            .bind(friendly_name)
            .bind(&sealed)
            .bind(&now)
            .execute(&self.pool)
            .await?;
        }
        self.twilio_account(sid).await?.ok_or_else(|| StoreError::NotFound(format!("Twilio account {sid}")))
    }

    pub async fn twilio_account(&self, sid: &str) -> Result<Option<TwilioAccount>, StoreError> {
        let row = sqlx::query(
            "SELECT account_sid, friendly_name, created_at, updated_at, trunk_sid FROM twilio_accounts \
             WHERE account_sid = $1",
        )
        .bind(sid)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| account_from(&r)).transpose()
    }

    pub async fn twilio_accounts(&self) -> Result<Vec<TwilioAccount>, StoreError> {
        let rows = sqlx::query(
            "SELECT account_sid, friendly_name, created_at, updated_at, trunk_sid FROM twilio_accounts \
             ORDER BY account_sid",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(account_from).collect()
    }

    /// The account's auth token, unsealed, for calling Twilio.
    pub async fn twilio_token(&self, sid: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT sealed_token FROM twilio_accounts WHERE account_sid = $1")
            .bind(sid)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Some(self.secret()?.open(sid, &r.try_get::<String, _>(0)?)?)),
            None => Ok(None),
        }
    }

    pub async fn set_account_trunk(&self, sid: &str, trunk: Option<&str>) -> Result<(), StoreError> {
        sqlx::query("UPDATE twilio_accounts SET trunk_sid = $1, updated_at = $2 WHERE account_sid = $3")
            .bind(trunk.map(str::to_string))
            .bind(now_rfc3339())
            .bind(sid)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Adds a number of a linked Twilio account with the voice settings it had (restored when it is removed).
    /// It is in `error` ("being configured") until [`Store::set_number_status`] says how configuring went, so a
    /// crash half-way never leaves it looking active.
    pub async fn add_twilio_number(
        &self,
        e164: &E164,
        agent_id: Option<&str>,
        account: &str,
        number_sid: &str,
        snapshot: &Value,
    ) -> Result<PhoneNumber, StoreError> {
        if self.number(e164).await?.is_some() {
            return Err(StoreError::Conflict(format!("{e164} is already added")));
        }
        self.check_agent(agent_id).await?;
        let now = now_rfc3339();
        sqlx::query(
            "INSERT INTO phone_numbers (e164, agent_id, twilio_account_sid, twilio_number_sid, status, status_detail, \
             twilio_snapshot, created_at, updated_at) VALUES ($1, $2, $3, $4, 'error', $5, $6, $7, $7)",
        )
        .bind(e164.to_string())
        .bind(agent_id.map(str::to_string))
        .bind(account)
        .bind(number_sid)
        .bind("Twilio is being configured")
        .bind(snapshot.to_string())
        .bind(&now)
        .execute(&self.pool)
        .await?;
        self.number(e164).await?.ok_or_else(|| StoreError::NotFound(e164.to_string()))
    }

    /// `None`: configured fine (`active` with an agent, `inactive` without); `Some(detail)`: `error`.
    pub async fn set_number_status(&self, e164: &E164, error: Option<&str>) -> Result<PhoneNumber, StoreError> {
        let n = self.number(e164).await?.ok_or_else(|| StoreError::NotFound(format!("number {e164}")))?;
        let status = if error.is_some() { "error" } else { status_for(n.agent_id.as_deref()) };
        sqlx::query("UPDATE phone_numbers SET status = $1, status_detail = $2, updated_at = $3 WHERE e164 = $4")
            .bind(status)
            .bind(error.unwrap_or(""))
            .bind(now_rfc3339())
            .bind(e164.to_string())
            .execute(&self.pool)
            .await?;
        self.number(e164).await?.ok_or_else(|| StoreError::NotFound(e164.to_string()))
    }

    /// Unlinks an account no number uses; otherwise [`StoreError::InUse`] names the numbers.
    pub async fn delete_twilio_account(&self, sid: &str) -> Result<(), StoreError> {
        let rows = sqlx::query("SELECT e164 FROM phone_numbers WHERE twilio_account_sid = $1 ORDER BY e164")
            .bind(sid)
            .fetch_all(&self.pool)
            .await?;
        let numbers: Vec<String> = rows.iter().map(|r| r.try_get::<String, _>(0)).collect::<Result<_, _>>()?;
        if !numbers.is_empty() {
            return Err(StoreError::InUse { what: format!("Twilio account {sid}"), numbers });
        }
        let done =
            sqlx::query("DELETE FROM twilio_accounts WHERE account_sid = $1").bind(sid).execute(&self.pool).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("Twilio account {sid}")));
        }
        Ok(())
    }

    /// The URL, for a PostgreSQL LISTEN connection of its own.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
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
        .bind(new.signing_secret.clone().filter(|s| !s.is_empty()))
        .bind(&now)
        .execute(&self.pool)
        .await?;
        self.agent(&id).await?.ok_or_else(|| StoreError::NotFound(format!("agent {id}")))
    }

    /// Changes an agent; calls in progress keep the agent as it was.
    pub async fn update_agent(&self, id: &str, patch: &AgentPatch) -> Result<Agent, StoreError> {
        let mut a = self.agent(id).await?.ok_or_else(|| StoreError::NotFound(format!("agent {id}")))?;
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
        .bind(a.signing_secret.clone())
        .bind(now_rfc3339())
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.agent(id).await?.ok_or_else(|| StoreError::NotFound(format!("agent {id}")))
    }

    pub async fn agent(&self, id: &str) -> Result<Option<Agent>, StoreError> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?;
        row.map(|r| agent_from(&r)).transpose()
    }

    async fn agent_by_name(&self, name: &str) -> Result<Option<Agent>, StoreError> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE name = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(name).fetch_optional(&self.pool).await?;
        row.map(|r| agent_from(&r)).transpose()
    }

    pub async fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents ORDER BY name");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await?;
        rows.iter().map(agent_from).collect()
    }

    /// Deletes an agent no number uses; otherwise [`StoreError::InUse`] names the numbers.
    pub async fn delete_agent(&self, id: &str) -> Result<(), StoreError> {
        let agent = self.agent(id).await?.ok_or_else(|| StoreError::NotFound(format!("agent {id}")))?;
        let numbers = self.numbers_of(id).await?;
        if !numbers.is_empty() {
            return Err(StoreError::InUse { what: format!("agent {}", agent.name), numbers });
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
    /// A number in `error` stays so (its Twilio configuration is what is wrong).
    pub async fn assign_number(&self, e164: &E164, agent_id: Option<&str>) -> Result<PhoneNumber, StoreError> {
        let Some(current) = self.number(e164).await? else {
            return Err(StoreError::NotFound(format!("number {e164}")));
        };
        self.check_agent(agent_id).await?;
        let status = if current.status == "error" { "error" } else { status_for(agent_id) };
        sqlx::query("UPDATE phone_numbers SET agent_id = $1, status = $2, updated_at = $3 WHERE e164 = $4")
            .bind(agent_id.map(str::to_string))
            .bind(status)
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
            .map(|r| agent_from(r).map(|a| (a.id.clone(), Arc::new(a.to_config()))))
            .collect::<Result<_, _>>()?;
        let rows =
            sqlx::query("SELECT e164, agent_id, twilio_account_sid FROM phone_numbers").fetch_all(&self.pool).await?;
        let mut table = NumberTable::new();
        for r in &rows {
            let e164: String = r.try_get(0)?;
            let Ok(e164) = E164::parse(&e164) else { continue };
            let agent = r.try_get::<Option<String>, _>(1)?.and_then(|id| agents.get(&id).cloned());
            table.insert(e164, agent, r.try_get(2)?);
        }
        Ok(table)
    }

    async fn check_agent(&self, agent_id: Option<&str>) -> Result<(), StoreError> {
        match agent_id {
            Some(id) if self.agent(id).await?.is_none() => Err(StoreError::NotFound(format!("agent {id}"))),
            _ => Ok(()),
        }
    }

    /// Records a call as it arrives (or as it is refused, with its end already filled in).
    pub async fn insert_call(&self, c: &CallRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO calls (id, call_sid, sip_call_id, from_number, to_number, agent, node, invite_at, \
             answer_at, end_at, end_reason, sip_status, codec, stats) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&c.id)
        .bind(c.call_sid.clone())
        .bind(&c.sip_call_id)
        .bind(&c.from)
        .bind(&c.to)
        .bind(c.agent.clone())
        .bind(&c.node)
        .bind(&c.invite_at)
        .bind(c.answer_at.clone())
        .bind(c.end_at.clone())
        .bind(c.end_reason.clone())
        .bind(c.sip_status.map(i64::from))
        .bind(c.codec.clone())
        .bind(if c.stats.is_null() { "{}".to_string() } else { c.stats.to_string() })
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn call_answered(&self, id: &str, at: &str, codec: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE calls SET answer_at = $1, sip_status = 200, codec = $2 WHERE id = $3")
            .bind(at)
            .bind(codec)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The call ended: when, why, and the INVITE's final status (kept when already set).
    pub async fn call_ended(&self, id: &str, at: &str, reason: &str, sip_status: u16) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE calls SET end_at = $1, end_reason = $2, sip_status = COALESCE(sip_status, $3) WHERE id = $4",
        )
        .bind(at)
        .bind(reason)
        .bind(i64::from(sip_status))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn call_stats(&self, id: &str, stats: &Value) -> Result<(), StoreError> {
        sqlx::query("UPDATE calls SET stats = $1 WHERE id = $2")
            .bind(stats.to_string())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Calls `node` left unfinished (it stopped without ending them): marked ended now.
    pub async fn close_unfinished_calls(&self, node: &str) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE calls SET end_at = $1, end_reason = 'interrupted' \
             WHERE node = $2 AND end_at IS NULL",
        )
        .bind(now_rfc3339())
        .bind(node)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn call(&self, id: &str) -> Result<Option<CallRecord>, StoreError> {
        let sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = $1 OR call_sid = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?;
        row.map(|r| call_from(&r)).transpose()
    }

    /// A page of calls, newest first, and the cursor of the next page (`None`: this was the last).
    pub async fn calls(&self, q: &CallQuery) -> Result<(Vec<CallRecord>, Option<String>), StoreError> {
        let mut sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        match q.active {
            Some(true) => sql.push_str(" AND end_at IS NULL"),
            Some(false) => sql.push_str(" AND end_at IS NOT NULL"),
            None => {}
        }
        if let Some(agent) = &q.agent {
            binds.push(agent.clone());
            sql.push_str(&format!(" AND agent = ${}", binds.len()));
        }
        if let Some(to) = &q.to {
            binds.push(to.clone());
            sql.push_str(&format!(" AND to_number = ${}", binds.len()));
        }
        if let Some(cursor) = &q.cursor {
            let (at, id) = decode_cursor(cursor)?;
            binds.push(at.clone());
            binds.push(at);
            binds.push(id);
            let n = binds.len();
            sql.push_str(&format!(" AND (invite_at < ${} OR (invite_at = ${} AND id < ${n}))", n - 2, n - 1));
        }
        let limit = q.limit.clamp(1, 500);
        sql.push_str(&format!(" ORDER BY invite_at DESC, id DESC LIMIT {}", limit + 1));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            query = query.bind(b);
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut calls: Vec<CallRecord> = rows.iter().map(call_from).collect::<Result<_, _>>()?;
        let next = if calls.len() > limit as usize {
            calls.truncate(limit as usize);
            calls.last().map(|c| encode_cursor(&c.invite_at, &c.id))
        } else {
            None
        };
        Ok((calls, next))
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
    Ok(())
}

fn status_for(agent_id: Option<&str>) -> &'static str {
    if agent_id.is_some() { "active" } else { "inactive" }
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

fn agent_from(r: &AnyRow) -> Result<Agent, StoreError> {
    let signing_secret: Option<String> = r.try_get(7)?;
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
        created_at: r.try_get(8)?,
        updated_at: r.try_get(9)?,
    })
}

fn account_from(r: &AnyRow) -> Result<TwilioAccount, StoreError> {
    Ok(TwilioAccount {
        account_sid: r.try_get(0)?,
        friendly_name: r.try_get(1)?,
        created_at: r.try_get(2)?,
        updated_at: r.try_get(3)?,
        trunk_sid: r.try_get(4)?,
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
    })
}

fn call_from(r: &AnyRow) -> Result<CallRecord, StoreError> {
    Ok(CallRecord {
        id: r.try_get(0)?,
        call_sid: r.try_get(1)?,
        sip_call_id: r.try_get(2)?,
        from: r.try_get(3)?,
        to: r.try_get(4)?,
        agent: r.try_get(5)?,
        node: r.try_get(6)?,
        invite_at: r.try_get(7)?,
        answer_at: r.try_get(8)?,
        end_at: r.try_get(9)?,
        end_reason: r.try_get(10)?,
        sip_status: int_column(r, 11)?.and_then(|s| u16::try_from(s).ok()),
        codec: r.try_get(12)?,
        stats: json_column(r, 13)?,
    })
}

fn encode_cursor(invite_at: &str, id: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{invite_at}|{id}"))
}

fn decode_cursor(cursor: &str) -> Result<(String, String), StoreError> {
    use base64::Engine;
    let bad = || StoreError::Invalid(format!("cursor {cursor:?} is not one this API gave out"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (at, id) = text.split_once('|').ok_or_else(bad)?;
    Ok((at.to_string(), id.to_string()))
}

/// A random id with a prefix: 16 hex digits from the OS-seeded hasher.
pub fn new_id(prefix: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos());
    format!("{prefix}{:016x}", h.finish())
}

/// Now, as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
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
