//! Linked Twilio accounts (their auth tokens sealed) and the Twilio side of phone numbers.

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{PhoneNumber, Store, StoreError, now_rfc3339, secret, status_for};
use crate::e164::E164;

/// A linked Twilio account, as listed: its auth token never leaves the store except through
/// [`Store::twilio_token`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TwilioAccount {
    pub account_sid: String,
    pub friendly_name: String,
    /// The account's vocals trunk, once created.
    pub trunk_sid: Option<String>,
    /// The trunk's domain (`….pstn.twilio.com`), as last read.
    pub trunk_domain: Option<String>,
    /// The trunk's origination URLs as last read: `[{sip_url, priority, weight, enabled}]`.
    pub origination: Value,
    /// When the trunk was last read from Twilio.
    pub trunk_read_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// What an account's trunk needs to place calls (its termination side), unsealed: the account's auth token
/// (what `Calls.json` requests for it must carry), the trunk's domain, and the credential or the IP access control
/// list vocals created.
#[derive(Clone, PartialEq, Eq)]
pub struct Termination {
    pub account_sid: String,
    pub auth_token: String,
    pub trunk_sid: Option<String>,
    /// `….pstn.twilio.com`, as last read from Twilio.
    pub domain: Option<String>,
    pub credential_list_sid: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The IP access control list vocals made instead, when the nodes' addresses identify its calls.
    pub ip_acl_sid: Option<String>,
}

impl std::fmt::Debug for Termination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Termination")
            .field("account_sid", &self.account_sid)
            .field("trunk_sid", &self.trunk_sid)
            .field("domain", &self.domain)
            .field("credential_list_sid", &self.credential_list_sid)
            .field("username", &self.username)
            .field("ip_acl_sid", &self.ip_acl_sid)
            .finish_non_exhaustive()
    }
}

/// What a credential's password is sealed against: its account and purpose (a sealed auth token does not open
/// as a password, nor one account's password as another's).
fn sip_password_context(account: &str) -> String {
    format!("sip-credential:{account}")
}

impl Store {
    /// The key Twilio auth tokens are sealed with (every node sharing a database needs the same one).
    pub fn with_secret(mut self, key: secret::SecretKey) -> Store {
        self.secret = Some(key);
        self
    }

    pub(super) fn secret(&self) -> Result<&secret::SecretKey, StoreError> {
        self.secret.as_ref().ok_or_else(|| {
            StoreError::Invalid("no secret key: secrets (Twilio auth tokens, signing secrets) cannot be stored".into())
        })
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
            "SELECT account_sid, friendly_name, created_at, updated_at, trunk_sid, trunk_domain, \
             trunk_origination, trunk_read_at FROM twilio_accounts \
             WHERE account_sid = $1",
        )
        .bind(sid)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| account_from(&r)).transpose()
    }

    pub async fn twilio_accounts(&self) -> Result<Vec<TwilioAccount>, StoreError> {
        let rows = sqlx::query(
            "SELECT account_sid, friendly_name, created_at, updated_at, trunk_sid, trunk_domain, \
             trunk_origination, trunk_read_at FROM twilio_accounts \
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

    /// The account's termination side, unsealed (`None`: not linked).
    pub async fn twilio_termination(&self, sid: &str) -> Result<Option<Termination>, StoreError> {
        let row = sqlx::query(
            "SELECT sealed_token, trunk_sid, trunk_domain, credential_list_sid, sip_username, sealed_sip_password, \
             ip_acl_sid FROM twilio_accounts WHERE account_sid = $1",
        )
        .bind(sid)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let key = self.secret()?;
        let sealed_password: Option<String> = r.try_get(5)?;
        Ok(Some(Termination {
            account_sid: sid.to_string(),
            auth_token: key.open(sid, &r.try_get::<String, _>(0)?)?,
            trunk_sid: r.try_get(1)?,
            domain: r.try_get::<Option<String>, _>(2)?.filter(|d| !d.is_empty()),
            credential_list_sid: r.try_get(3)?,
            username: r.try_get(4)?,
            password: sealed_password.map(|p| key.open(&sip_password_context(sid), &p)).transpose()?,
            ip_acl_sid: r.try_get(6)?,
        }))
    }

    /// Keeps the credential list vocals created for the account's trunk and its one credential (the password
    /// sealed), or forgets them (`None`).
    pub async fn set_account_credential(
        &self,
        sid: &str,
        credential: Option<(&str, &str, &str)>,
    ) -> Result<(), StoreError> {
        let (list, username, sealed) = match credential {
            Some((list, username, password)) => (
                Some(list.to_string()),
                Some(username.to_string()),
                Some(self.secret()?.seal(&sip_password_context(sid), password)?),
            ),
            None => (None, None, None),
        };
        let done = sqlx::query(
            "UPDATE twilio_accounts SET credential_list_sid = $1, sip_username = $2, sealed_sip_password = $3, \
             updated_at = $4 WHERE account_sid = $5",
        )
        .bind(list)
        .bind(username)
        .bind(sealed)
        .bind(now_rfc3339())
        .bind(sid)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("Twilio account {sid}")));
        }
        Ok(())
    }

    /// Keeps the IP access control list vocals made for the account's trunk, or forgets it (`None`).
    pub async fn set_account_ip_acl(&self, sid: &str, acl: Option<&str>) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE twilio_accounts SET ip_acl_sid = $1, updated_at = $2 WHERE account_sid = $3")
            .bind(acl.map(str::to_string))
            .bind(now_rfc3339())
            .bind(sid)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("Twilio account {sid}")));
        }
        Ok(())
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

    /// Keeps the account's trunk as just read from Twilio: its domain and origination URLs.
    pub async fn set_trunk_view(&self, sid: &str, domain: Option<&str>, origination: &Value) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE twilio_accounts SET trunk_domain = $1, trunk_origination = $2, trunk_read_at = $3 \
             WHERE account_sid = $4",
        )
        .bind(domain.map(str::to_string))
        .bind(origination.to_string())
        .bind(now_rfc3339())
        .bind(sid)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Keeps what Twilio has for the number now (read by configure, reconcile or a preview).
    pub async fn set_number_now(&self, e164: &E164, now: &Value) -> Result<(), StoreError> {
        sqlx::query("UPDATE phone_numbers SET twilio_now = $1 WHERE e164 = $2")
            .bind(now.to_string())
            .bind(e164.to_string())
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
        let status = if error.is_some() { "error" } else { status_for(n.agent_id.as_deref(), &n.rules) };
        sqlx::query("UPDATE phone_numbers SET status = $1, status_detail = $2, updated_at = $3 WHERE e164 = $4")
            .bind(status)
            .bind(error.unwrap_or(""))
            .bind(now_rfc3339())
            .bind(e164.to_string())
            .execute(&self.pool)
            .await?;
        self.number(e164).await?.ok_or_else(|| StoreError::NotFound(e164.to_string()))
    }

    /// [`StoreError::InUse`], naming them, when numbers still use the account.
    pub async fn twilio_account_unused(&self, sid: &str) -> Result<(), StoreError> {
        let rows = sqlx::query("SELECT e164 FROM phone_numbers WHERE twilio_account_sid = $1 ORDER BY e164")
            .bind(sid)
            .fetch_all(&self.pool)
            .await?;
        let numbers: Vec<String> = rows.iter().map(|r| r.try_get::<String, _>(0)).collect::<Result<_, _>>()?;
        if !numbers.is_empty() {
            return Err(StoreError::InUse { what: format!("Twilio account {sid}"), numbers });
        }
        Ok(())
    }

    /// Unlinks an account no number uses; otherwise [`StoreError::InUse`] names the numbers.
    pub async fn delete_twilio_account(&self, sid: &str) -> Result<(), StoreError> {
        self.twilio_account_unused(sid).await?;
        let done =
            sqlx::query("DELETE FROM twilio_accounts WHERE account_sid = $1").bind(sid).execute(&self.pool).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("Twilio account {sid}")));
        }
        Ok(())
    }
}

fn account_from(r: &AnyRow) -> Result<TwilioAccount, StoreError> {
    Ok(TwilioAccount {
        account_sid: r.try_get(0)?,
        friendly_name: r.try_get(1)?,
        created_at: r.try_get(2)?,
        updated_at: r.try_get(3)?,
        trunk_sid: r.try_get(4)?,
        trunk_domain: r.try_get(5)?,
        origination: super::json_column(r, 6)?,
        trunk_read_at: r.try_get(7)?,
    })
}
