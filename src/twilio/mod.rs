//! Twilio account linking (`docs/admin.md`, Twilio account linking): verify an account's credentials, list its numbers,
//! and configure Twilio so calls to a number reach vocals — one vocals trunk per account, its origination URLs pointing
//! at the configured SIP URIs, the number attached — and put the number back as it was when it is removed. The number's
//! voice settings are snapshotted before anything changes and kept until Twilio confirms the restore; any failure
//! leaves the number in the store in `error` with Twilio's code and message, retryable. A reconcile compares Twilio
//! with the store and flags drift. Never DELETE an IncomingPhoneNumber (that releases it from the account).
//! The trunk's termination side — its domain name, and vocals' credential list and credential or (`ip_acl`) its IP
//! access control list of the nodes' addresses, so linked accounts place calls on it — is `termination`'s.
//!
//! Beside them, the Twilio-compatible pieces of outbound calls, sans IO: `twiml` (the `<Connect><Stream>` /
//! `<Hangup/>` subset vocals runs), `signature` (`X-Twilio-Signature`, HMAC-SHA1) and `calls` (the Create Call
//! request, the Call resource, the status callbacks' parameters).

pub mod calls;
pub mod client;
pub mod ip_acl;
pub mod signature;
pub mod termination;
pub mod twiml;

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};

pub use client::{
    CredentialList, Credentials, Endpoints, IncomingNumber, IpAccessControlList, IpAddress, OriginationUrl,
    SipCredential, Trunk, Twilio, TwilioError,
};
pub use ip_acl::Ipv4Block;
pub use termination::TerminationAuth;

use crate::e164::E164;
use crate::store::{PhoneNumber, Store, StoreError, TwilioAccount};

/// Where Twilio should send calls: the SIP URIs (one per node) and their priority and weight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origination {
    pub sip_urls: Vec<String>,
    pub priority: u32,
    pub weight: u32,
    /// Create the trunk with Secure Trunking on (vocals serves TLS and SRTP).
    pub secure: bool,
}

/// Why a flow failed.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    /// Twilio refused or failed; the number (if any) is kept in `error` with this.
    #[error("{0}")]
    Twilio(#[from] TwilioError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A number of a linked account, as the add-number picker shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct AccountNumber {
    pub sid: String,
    pub phone_number: String,
    pub friendly_name: String,
    pub voice: bool,
    /// Something else answers it now (another trunk, a voice URL or an application): adding it to vocals
    /// takes it over (and removing it later puts that back).
    pub in_use: bool,
    pub in_use_by: Option<String>,
    /// Already added to vocals.
    pub added: bool,
}

/// The voice settings a number had before vocals took it, restored when it is removed.
fn snapshot(n: &IncomingNumber) -> Value {
    json!({
        "trunk_sid": n.trunk_sid,
        "voice_url": n.voice_url,
        "voice_method": n.voice_method,
        "voice_fallback_url": n.voice_fallback_url,
        "voice_fallback_method": n.voice_fallback_method,
        "voice_application_sid": n.voice_application_sid,
        "status_callback": n.status_callback,
        "status_callback_method": n.status_callback_method,
    })
}

fn text(v: &Value, key: &str) -> Option<String> {
    v[key].as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

/// What answers a number other than `our_trunk`, if anything.
fn used_by(n: &IncomingNumber, our_trunk: Option<&str>) -> Option<String> {
    let some = |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
    match (some(&n.trunk_sid), some(&n.voice_application_sid), some(&n.voice_url)) {
        (Some(t), _, _) if Some(t.as_str()) == our_trunk => None,
        (Some(t), _, _) => Some(format!("trunk {t}")),
        (None, Some(app), _) => Some(format!("application {app}")),
        (None, None, Some(url)) => Some(format!("voice URL {url}")),
        _ => None,
    }
}

/// Where Twilio sends a number's calls, in words, with no SIDs (they are in `now_of` for whoever expands
/// the details).
pub fn destination(n: &IncomingNumber, our_trunk: Option<&str>) -> String {
    let some = |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
    match (some(&n.trunk_sid), some(&n.voice_application_sid), some(&n.voice_url)) {
        (Some(t), _, _) if Some(t.as_str()) == our_trunk => "the vocals trunk".into(),
        (Some(_), _, _) => "another SIP trunk".into(),
        (None, Some(_), _) => "a TwiML application".into(),
        (None, None, Some(url)) => format!("the voice URL {url}"),
        _ => "nowhere (it has no voice URL, application or trunk, so its calls fail)".into(),
    }
}

/// What a number's snapshot (its settings before vocals) sends calls to, in words: what Remove restores.
pub fn restores(snapshot: &Value, our_trunk: Option<&str>) -> String {
    let n = IncomingNumber {
        trunk_sid: text(snapshot, "trunk_sid"),
        voice_url: text(snapshot, "voice_url"),
        voice_application_sid: text(snapshot, "voice_application_sid"),
        ..IncomingNumber::default()
    };
    // The snapshot names vocals' own trunk only if the number was on it before (then nothing is restored).
    match destination(&n, our_trunk).as_str() {
        "the vocals trunk" => "no voice settings (it was already on the vocals trunk)".into(),
        other => other.to_string(),
    }
}

/// What Twilio has for the number, as read now: kept in the store (`twilio_now`) for the details view.
fn now_of(n: &IncomingNumber) -> Value {
    json!({
        "trunk_sid": n.trunk_sid,
        "voice_url": n.voice_url,
        "voice_application_sid": n.voice_application_sid,
        "read_at": crate::store::now_rfc3339(),
    })
}

/// A fresh trunk domain name: `vocals-<12 hex digits>.pstn.twilio.com`.
fn fresh_domain() -> String {
    format!("vocals-{}.pstn.twilio.com", &crate::store::new_id("")[..12])
}

/// Twilio refused a domain name as taken (they are unique across Twilio).
fn domain_taken(e: &TwilioError) -> bool {
    matches!(e, TwilioError::Api { status: 400 | 409, .. }) && e.to_string().to_lowercase().contains("domain")
}

/// An account's vocals trunk as read: its SID and origination URLs.
type VocalsTrunk = (String, Vec<OriginationUrl>);

/// What Repair or Remove would do to a number, read from Twilio now, in words.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Preview {
    /// Where Twilio sends the number's calls now.
    pub now: String,
    /// Whether that is the vocals trunk.
    pub on_vocals: bool,
    /// What Repair would replace (and lose), if anything.
    pub repair_replaces: Option<String>,
    /// What Remove would put back.
    pub remove_restores: String,
}

/// The linking flows, over the shared Twilio client and the store.
pub struct Provisioner {
    twilio: Twilio,
    store: Arc<Store>,
    origination: Origination,
    termination: TerminationAuth,
}

impl Provisioner {
    pub fn new(
        twilio: Twilio,
        store: Arc<Store>,
        origination: Origination,
        termination: TerminationAuth,
    ) -> Provisioner {
        Provisioner { twilio, store, origination, termination }
    }

    /// Where this node asks Twilio to send calls.
    pub fn origination(&self) -> &Origination {
        &self.origination
    }

    /// How the trunks this node configures know the calls it places.
    pub fn termination(&self) -> &TerminationAuth {
        &self.termination
    }

    async fn credentials(&self, account: &str) -> Result<Credentials, FlowError> {
        let token = self.store.twilio_token(account).await?;
        let token = token.ok_or_else(|| FlowError::NotFound(format!("Twilio account {account}")))?;
        Ok(Credentials { account_sid: account.to_string(), auth_token: token })
    }

    /// Links an account once Twilio accepts its credentials.
    pub async fn link(&self, sid: &str, token: &str, friendly_name: &str) -> Result<TwilioAccount, FlowError> {
        let creds = Credentials { account_sid: sid.to_string(), auth_token: token.to_string() };
        if !(sid.len() == 34 && sid.starts_with("AC")) {
            return Err(FlowError::Invalid(format!("account_sid must be AC followed by 32 hex digits, not {sid:?}")));
        }
        match self.twilio.verify(&creds).await {
            Ok(()) => {}
            Err(TwilioError::Api { status: 401 | 403 | 404, code, message }) => {
                return Err(FlowError::Invalid(format!("Twilio refused these credentials ({code}: {message})")));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(self.store.put_twilio_account(sid, token, friendly_name).await?)
    }

    /// The account's numbers, with what answers each now.
    pub async fn account_numbers(&self, account: &str) -> Result<Vec<AccountNumber>, FlowError> {
        let creds = self.credentials(account).await?;
        let ours = self.store.twilio_account(account).await?.and_then(|a| a.trunk_sid);
        let added: std::collections::HashSet<String> =
            self.store.numbers().await?.into_iter().filter_map(|n| n.twilio_number_sid).collect();
        let numbers = self.twilio.numbers(&creds).await?;
        Ok(numbers
            .into_iter()
            .map(|n| {
                let in_use_by = used_by(&n, ours.as_deref());
                AccountNumber {
                    in_use: in_use_by.is_some(),
                    in_use_by,
                    added: added.contains(&n.sid),
                    voice: n.capabilities.voice,
                    sid: n.sid,
                    phone_number: n.phone_number,
                    friendly_name: n.friendly_name,
                }
            })
            .collect())
    }

    /// Adds one of the account's numbers: stored with its snapshot first, then Twilio is configured. The answer
    /// is the stored number: `active`/`inactive`, or `error` with Twilio's code and message (retryable).
    pub async fn add(&self, account: &str, e164: &E164, agent_id: Option<&str>) -> Result<PhoneNumber, FlowError> {
        let creds = self.credentials(account).await?;
        let found = self.twilio.numbers(&creds).await?.into_iter().find(|n| n.phone_number == e164.to_string());
        let Some(number) = found else {
            return Err(FlowError::Invalid(format!("{e164} is not a number of Twilio account {account}")));
        };
        if !number.capabilities.voice {
            return Err(FlowError::Invalid(format!("{e164} cannot take voice calls")));
        }
        self.store.add_twilio_number(e164, agent_id, account, &number.sid, &snapshot(&number)).await?;
        self.configure(e164).await
    }

    /// Configures Twilio for a stored number (again): the trunk (with a termination domain), its origination
    /// URLs, the attachment, read back, then the trunk's termination side (vocals' credential list, or its IP
    /// access control list). Used by
    /// add, retry and repair; the number's status says how it went.
    pub async fn configure(&self, e164: &E164) -> Result<PhoneNumber, FlowError> {
        let n = self.linked(e164).await?;
        let (account, pn) =
            (n.twilio_account_sid.clone().unwrap_or_default(), n.twilio_number_sid.clone().unwrap_or_default());
        let outcome = async {
            let creds = self.credentials(&account).await?;
            let trunk = self.ensure_trunk(&creds).await?;
            self.ensure_origination(&creds, &trunk).await?;
            let trunk = trunk.sid;
            self.twilio.attach(&creds, &trunk, &pn).await?;
            let back = self.twilio.number(&creds, &pn).await?;
            self.store.set_number_now(e164, &now_of(&back)).await?;
            if back.trunk_sid.as_deref() != Some(trunk.as_str()) {
                return Err(FlowError::Invalid(format!(
                    "Twilio did not keep {e164} on trunk {trunk} (it reads back {:?})",
                    back.trunk_sid
                )));
            }
            // Calls to the number work from here; what follows lets vocals place calls on the trunk.
            self.ensure_termination(&creds, &trunk).await.map_err(|e| match e {
                FlowError::Twilio(e) => FlowError::Invalid(format!("the trunk's termination side: {e}")),
                other => other,
            })?;
            Ok::<_, FlowError>(())
        }
        .await;
        match outcome {
            Ok(()) => Ok(self.store.set_number_status(e164, None).await?),
            Err(FlowError::Store(e)) => Err(e.into()),
            Err(e) => {
                tracing::warn!(number = %e164, error = %e, "Twilio configuration failed; the number is in error");
                Ok(self.store.set_number_status(e164, Some(&format!("configuring Twilio: {e}"))).await?)
            }
        }
    }

    async fn linked(&self, e164: &E164) -> Result<PhoneNumber, FlowError> {
        let n = self.store.number(e164).await?.ok_or_else(|| FlowError::NotFound(format!("number {e164}")))?;
        if n.twilio_number_sid.is_none() {
            return Err(FlowError::Invalid(format!("{e164} is not linked to a Twilio account")));
        }
        Ok(n)
    }

    /// The account's vocals trunk, created (with a fresh DomainName, another on collision) when it has none or
    /// it was deleted; one without a DomainName gets one.
    async fn ensure_trunk(&self, creds: &Credentials) -> Result<Trunk, FlowError> {
        let account = self.store.twilio_account(&creds.account_sid).await?;
        if let Some(sid) = account.and_then(|a| a.trunk_sid) {
            match self.twilio.trunk(creds, &sid).await {
                Ok(t) => return self.ensure_domain(creds, t).await,
                Err(e) if e.is_not_found() => {
                    tracing::warn!(trunk = %sid, "the vocals trunk is gone from Twilio; creating another");
                }
                Err(e) => return Err(e.into()),
            }
        }
        let mut last = None;
        for _ in 0..5 {
            let domain = fresh_domain();
            match self.twilio.create_trunk(creds, "vocals", &domain, self.origination.secure).await {
                Ok(t) => {
                    self.store.set_account_trunk(&creds.account_sid, Some(&t.sid)).await?;
                    return Ok(t);
                }
                Err(e) if domain_taken(&e) => last = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        Err(last.map_or_else(|| FlowError::Invalid("no trunk".into()), FlowError::Twilio))
    }

    /// Every configured SIP URI is an origination URL of the trunk; the trunk as it then is is kept in the store.
    async fn ensure_origination(&self, creds: &Credentials, trunk: &Trunk) -> Result<(), FlowError> {
        let mut present = self.twilio.origination_urls(creds, &trunk.sid).await?;
        let mut created = false;
        for url in &self.origination.sip_urls {
            if !present.iter().any(|o| &o.sip_url == url) {
                let (priority, weight) = (self.origination.priority, self.origination.weight);
                self.twilio.create_origination_url(creds, &trunk.sid, url, priority, weight).await?;
                created = true;
            }
        }
        // Read back only what changed, so the kept view is Twilio's (its SIDs, its enabled flags).
        if created {
            present = self.twilio.origination_urls(creds, &trunk.sid).await?;
        }
        self.keep_trunk_view(&creds.account_sid, trunk, &present).await
    }

    async fn keep_trunk_view(&self, account: &str, trunk: &Trunk, urls: &[OriginationUrl]) -> Result<(), FlowError> {
        let origination: Vec<Value> = urls
            .iter()
            .map(|o| json!({"sip_url": o.sip_url, "priority": o.priority, "weight": o.weight, "enabled": o.enabled}))
            .collect();
        Ok(self.store.set_trunk_view(account, trunk.domain_name.as_deref(), &Value::Array(origination)).await?)
    }

    /// What Repair and Remove would do to a linked number, read from Twilio now (and kept as `twilio_now`).
    pub async fn preview(&self, e164: &E164) -> Result<Preview, FlowError> {
        let n = self.linked(e164).await?;
        let account = n.twilio_account_sid.clone().unwrap_or_default();
        let creds = self.credentials(&account).await?;
        let ours = self.store.twilio_account(&account).await?.and_then(|a| a.trunk_sid);
        let back = self.twilio.number(&creds, n.twilio_number_sid.as_deref().unwrap_or_default()).await?;
        self.store.set_number_now(e164, &now_of(&back)).await?;
        let now = destination(&back, ours.as_deref());
        let on_vocals = ours.is_some() && back.trunk_sid == ours;
        Ok(Preview {
            repair_replaces: (!on_vocals && used_by(&back, ours.as_deref()).is_some()).then(|| now.clone()),
            now,
            on_vocals,
            remove_restores: restores(&n.twilio_snapshot, ours.as_deref()),
        })
    }

    /// Removes a number: detached from the trunk, its snapshot restored and read back, then deleted from the
    /// store. If Twilio fails, the number stays, in `error`, with its snapshot.
    pub async fn remove(&self, e164: &E164) -> Result<(), FlowError> {
        let n = self.store.number(e164).await?.ok_or_else(|| FlowError::NotFound(format!("number {e164}")))?;
        let (Some(account), Some(pn)) = (n.twilio_account_sid.clone(), n.twilio_number_sid.clone()) else {
            return Ok(self.store.delete_number(e164).await?);
        };
        let outcome = async {
            let creds = self.credentials(&account).await?;
            let ours = self.store.twilio_account(&account).await?.and_then(|a| a.trunk_sid);
            if let Some(trunk) = &ours {
                match self.twilio.detach(&creds, trunk, &pn).await {
                    Err(e) if !e.is_not_found() => return Err(FlowError::from(e)),
                    _ => {}
                }
            }
            let snap = &n.twilio_snapshot;
            let previous_trunk = text(snap, "trunk_sid").filter(|t| Some(t) != ours.as_ref());
            let field = |key: &str| text(snap, key).unwrap_or_default();
            let mut form = vec![
                ("VoiceUrl", field("voice_url")),
                ("VoiceFallbackUrl", field("voice_fallback_url")),
                ("StatusCallback", field("status_callback")),
            ];
            for (name, key) in [
                ("VoiceMethod", "voice_method"),
                ("VoiceFallbackMethod", "voice_fallback_method"),
                ("StatusCallbackMethod", "status_callback_method"),
            ] {
                if let Some(v) = text(snap, key) {
                    form.push((name, v));
                }
            }
            if let Some(app) = text(snap, "voice_application_sid") {
                form.push(("VoiceApplicationSid", app));
            } else if let Some(trunk) = &previous_trunk {
                form.push(("TrunkSid", trunk.clone()));
            }
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            self.twilio.update_number(&creds, &pn, &pairs).await?;
            let back = self.twilio.number(&creds, &pn).await?;
            let expected = snapshot(&back);
            let differs: Vec<&str> = ["voice_url", "voice_fallback_url", "status_callback", "voice_application_sid"]
                .into_iter()
                .filter(|k| text(&expected, k) != text(snap, k))
                .chain((back.trunk_sid != previous_trunk).then_some("trunk_sid"))
                .collect();
            if !differs.is_empty() {
                return Err(FlowError::Invalid(format!(
                    "Twilio did not take back the number's settings ({} differ)",
                    differs.join(", ")
                )));
            }
            Ok(())
        }
        .await;
        match outcome {
            Ok(()) => Ok(self.store.delete_number(e164).await?),
            Err(FlowError::Store(e)) => Err(e.into()),
            Err(e) => {
                tracing::warn!(number = %e164, error = %e, "restoring the number in Twilio failed; it is kept, in error");
                self.store.set_number_status(e164, Some(&format!("removing: {e}"))).await?;
                Err(e)
            }
        }
    }

    /// Compares Twilio with the store for every linked number: one moved off the vocals trunk, or a trunk that
    /// lost an origination URL, is put in `error` saying so in words (the SIDs are in `twilio_now`). Each
    /// account's trunk is read once, and kept for the numbers list. Returns the numbers found drifted.
    pub async fn reconcile(&self) -> Result<Vec<(E164, String)>, FlowError> {
        let mut drifted = Vec::new();
        let numbers = self.store.numbers().await?;
        // Per account: its trunk (SID and origination URLs), none, or unreadable (Err) this round.
        let mut trunks: std::collections::HashMap<String, Result<Option<VocalsTrunk>, ()>> =
            std::collections::HashMap::new();
        for n in numbers.iter().filter(|n| n.twilio_number_sid.is_some() && n.status != "error") {
            let account = n.twilio_account_sid.clone().unwrap_or_default();
            let found = async {
                let creds = self.credentials(&account).await?;
                if !trunks.contains_key(&account) {
                    let read = self.read_trunk(&creds).await;
                    if let Err(e) = &read {
                        tracing::warn!(%account, error = %e, "reconcile could not read the vocals trunk");
                    }
                    trunks.insert(account.clone(), read.map_err(|_| ()));
                }
                let trunk = match &trunks[&account] {
                    Ok(Some(t)) => t,
                    Ok(None) => {
                        return Ok(Some("drift: the account's vocals trunk is gone from Twilio".to_string()));
                    }
                    Err(()) => return Ok(None),
                };
                let pn = n.twilio_number_sid.clone().unwrap_or_default();
                let back = self.twilio.number(&creds, &pn).await?;
                self.store.set_number_now(&n.e164, &now_of(&back)).await?;
                if back.trunk_sid.as_deref() != Some(trunk.0.as_str()) {
                    let now = destination(&back, Some(&trunk.0));
                    return Ok(Some(format!("drift: Twilio now sends this number to {now}, not to vocals")));
                }
                let missing: Vec<&str> = self
                    .origination
                    .sip_urls
                    .iter()
                    .filter(|u| !trunk.1.iter().any(|o| &o.sip_url == *u))
                    .map(String::as_str)
                    .collect();
                if !missing.is_empty() {
                    return Ok(Some(format!(
                        "drift: the vocals trunk no longer sends calls to {} (its origination URL was removed)",
                        missing.join(", ")
                    )));
                }
                Ok::<_, FlowError>(None)
            }
            .await;
            match found {
                Ok(Some(detail)) => {
                    tracing::warn!(number = %n.e164, %detail, "Twilio drifted from the store");
                    self.store.set_number_status(&n.e164, Some(&detail)).await?;
                    drifted.push((n.e164.clone(), detail));
                }
                Ok(None) => {}
                Err(FlowError::Store(e)) => return Err(e.into()),
                // Twilio unreachable: nothing is known to have drifted; the next round tries again.
                Err(e) => tracing::warn!(number = %n.e164, error = %e, "reconcile could not read Twilio"),
            }
        }
        Ok(drifted)
    }

    /// The account's vocals trunk and its origination URLs, read from Twilio and kept for the numbers list;
    /// `None` when the account has no trunk or Twilio no longer has it.
    async fn read_trunk(&self, creds: &Credentials) -> Result<Option<VocalsTrunk>, FlowError> {
        let Some(sid) = self.store.twilio_account(&creds.account_sid).await?.and_then(|a| a.trunk_sid) else {
            return Ok(None);
        };
        let trunk = match self.twilio.trunk(creds, &sid).await {
            Ok(t) => t,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let urls = self.twilio.origination_urls(creds, &sid).await?;
        self.keep_trunk_view(&creds.account_sid, &trunk, &urls).await?;
        Ok(Some((sid, urls)))
    }
}
