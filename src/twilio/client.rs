//! Twilio's REST APIs, the subset vocals uses: the 2010-04-01 API (IncomingPhoneNumbers, SIP CredentialLists and
//! their Credentials, SIP IpAccessControlLists and their IpAddresses) and trunking v1 (Trunks, OriginationUrls,
//! trunk PhoneNumbers, trunk CredentialLists and IpAccessControlLists). One shared reqwest client (rustls on ring,
//! the system's roots); every request has a timeout; 429 (20429) and 5xx are retried with backoff (honouring
//! `Retry-After`); both base URLs are configurable so tests point them at a local stand-in.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

/// An account's credentials: HTTP Basic `AccountSid:AuthToken`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub account_sid: String,
    pub auth_token: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, …)", self.account_sid)
    }
}

/// Why a Twilio request failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TwilioError {
    /// Twilio answered with an error: its HTTP status, error code and message.
    #[error("Twilio {code}: {message}")]
    Api { status: u16, code: u32, message: String },
    /// No answer (connection refused, timeout) or one that is not Twilio's JSON.
    #[error("Twilio unreachable: {0}")]
    Transport(String),
}

impl TwilioError {
    pub fn status(&self) -> Option<u16> {
        match self {
            TwilioError::Api { status, .. } => Some(*status),
            TwilioError::Transport(_) => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

/// An IncomingPhoneNumber, as read.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq, serde::Serialize)]
pub struct IncomingNumber {
    pub sid: String,
    pub phone_number: String,
    #[serde(default)]
    pub friendly_name: String,
    pub voice_url: Option<String>,
    pub voice_method: Option<String>,
    pub voice_fallback_url: Option<String>,
    pub voice_fallback_method: Option<String>,
    pub voice_application_sid: Option<String>,
    pub trunk_sid: Option<String>,
    pub status_callback: Option<String>,
    pub status_callback_method: Option<String>,
    #[serde(default)]
    pub capabilities: Capabilities,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq, serde::Serialize)]
pub struct Capabilities {
    #[serde(default)]
    pub voice: bool,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Trunk {
    pub sid: String,
    #[serde(default)]
    pub friendly_name: String,
    pub domain_name: Option<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct OriginationUrl {
    pub sid: String,
    pub sip_url: String,
    pub priority: u32,
    pub weight: u32,
    pub enabled: bool,
}

/// A SIP CredentialList (2010-04-01 `SIP/CredentialLists`), or one associated with a trunk (trunking v1
/// `Trunks/{TK}/CredentialLists`): the same SID.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct CredentialList {
    pub sid: String,
    #[serde(default)]
    pub friendly_name: String,
}

/// A credential of a CredentialList: Twilio never answers its password.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct SipCredential {
    pub sid: String,
    pub username: String,
}

/// A SIP IpAccessControlList (2010-04-01 `SIP/IpAccessControlLists`), or one associated with a trunk (trunking
/// v1 `Trunks/{TK}/IpAccessControlLists`): the same SID (`AL…`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct IpAccessControlList {
    pub sid: String,
    #[serde(default)]
    pub friendly_name: String,
}

/// An IpAddress of an IpAccessControlList (`IP…`): an IPv4 address, and the length of the prefix Twilio accepts
/// from (none or 0 as Twilio answers an address given without one: the whole address).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct IpAddress {
    pub sid: String,
    pub ip_address: String,
    #[serde(default)]
    pub cidr_prefix_length: Option<u8>,
    #[serde(default)]
    pub friendly_name: String,
}

impl IpAddress {
    /// The prefix length Twilio applies: the whole address when none was given.
    pub fn prefix(&self) -> u8 {
        match self.cidr_prefix_length {
            None | Some(0) => 32,
            Some(p) => p,
        }
    }
}

/// Where the two APIs are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// `https://api.twilio.com`
    pub api: String,
    /// `https://trunking.twilio.com`
    pub trunking: String,
}

/// The Twilio client: one per process, shared by every flow.
#[derive(Clone)]
pub struct Twilio {
    http: reqwest::Client,
    endpoints: Endpoints,
    /// Attempts per request when Twilio answers 429 or 5xx (or does not answer).
    attempts: u32,
}

impl Twilio {
    /// The client over `tls`, the process's TLS client configuration (the daemon's, from the system's roots):
    /// given, not built here, so this module needs nothing of the shell's.
    pub fn new(endpoints: Endpoints, timeout: Duration, tls: &rustls::ClientConfig) -> Result<Twilio, TwilioError> {
        let mut tls = tls.clone();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("vocals/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TwilioError::Transport(e.to_string()))?;
        Ok(Twilio { http, endpoints: endpoints.trim(), attempts: 4 })
    }

    /// The process's one HTTP client (status callbacks and TwiML fetches use it too).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    fn v2010(&self, creds: &Credentials, rest: &str) -> String {
        format!("{}/2010-04-01/Accounts/{}/{rest}", self.endpoints.api, creds.account_sid)
    }

    fn trunking(&self, rest: &str) -> String {
        format!("{}/v1/{rest}", self.endpoints.trunking)
    }

    /// One request, retried on 429/5xx/no answer with backoff (250 ms doubling, or `Retry-After`).
    async fn send(
        &self,
        creds: &Credentials,
        method: reqwest::Method,
        url: &str,
        form: Option<&[(&str, &str)]>,
    ) -> Result<Value, TwilioError> {
        let mut backoff = Duration::from_millis(250);
        let mut attempt = 1;
        loop {
            let mut req = self
                .http
                .request(method.clone(), url)
                .basic_auth(&creds.account_sid, Some(&creds.auth_token))
                .header("Accept", "application/json");
            if let Some(form) = form {
                req = req.form(form);
            }
            let outcome = match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .map(|s| Duration::from_secs(s.min(30)));
                    let body = resp.bytes().await.map_err(|e| TwilioError::Transport(e.to_string()));
                    match body {
                        Ok(body) => Ok((status, retry_after, body)),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(TwilioError::Transport(e.to_string())),
            };
            let (retry, wait) = match &outcome {
                Ok((status, retry_after, _)) => (*status == 429 || *status >= 500, retry_after.unwrap_or(backoff)),
                Err(_) => (true, backoff),
            };
            if retry && attempt < self.attempts {
                tracing::debug!(%url, attempt, wait_ms = wait.as_millis() as u64, "Twilio busy or unreachable; retrying");
                tokio::time::sleep(wait).await;
                backoff *= 2;
                attempt += 1;
                continue;
            }
            let (status, _, body) = outcome?;
            if (200..300).contains(&status) {
                if body.is_empty() {
                    return Ok(Value::Null);
                }
                return serde_json::from_slice(&body)
                    .map_err(|_| TwilioError::Transport(format!("{url}: an answer that is not JSON")));
            }
            let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let code = json["code"].as_u64().unwrap_or(u64::from(status)) as u32;
            let message = json["message"].as_str().map_or_else(|| format!("HTTP {status} from {url}"), str::to_string);
            return Err(TwilioError::Api { status, code, message });
        }
    }

    fn parse<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, TwilioError> {
        serde_json::from_value(value).map_err(|e| TwilioError::Transport(format!("an unexpected answer: {e}")))
    }

    /// Checks the credentials (`GET IncomingPhoneNumbers.json?PageSize=1`).
    pub async fn verify(&self, creds: &Credentials) -> Result<(), TwilioError> {
        let url = self.v2010(creds, "IncomingPhoneNumbers.json?PageSize=1");
        self.send(creds, reqwest::Method::GET, &url, None).await.map(|_| ())
    }

    /// Every number of the account, following `next_page_uri`.
    pub async fn numbers(&self, creds: &Credentials) -> Result<Vec<IncomingNumber>, TwilioError> {
        let mut url = self.v2010(creds, "IncomingPhoneNumbers.json?PageSize=1000");
        let mut all = Vec::new();
        for _ in 0..1000 {
            let page = self.send(creds, reqwest::Method::GET, &url, None).await?;
            let items: Vec<IncomingNumber> = Self::parse(page["incoming_phone_numbers"].clone())?;
            all.extend(items);
            match page["next_page_uri"].as_str() {
                Some(next) if !next.is_empty() => url = format!("{}{next}", self.endpoints.api),
                _ => return Ok(all),
            }
        }
        Err(TwilioError::Transport("more than 1000 pages of numbers".into()))
    }

    pub async fn number(&self, creds: &Credentials, sid: &str) -> Result<IncomingNumber, TwilioError> {
        let url = self.v2010(creds, &format!("IncomingPhoneNumbers/{sid}.json"));
        Self::parse(self.send(creds, reqwest::Method::GET, &url, None).await?)
    }

    /// Updates a number; an empty value clears a field, a key left out leaves it.
    pub async fn update_number(
        &self,
        creds: &Credentials,
        sid: &str,
        fields: &[(&str, &str)],
    ) -> Result<IncomingNumber, TwilioError> {
        let url = self.v2010(creds, &format!("IncomingPhoneNumbers/{sid}.json"));
        Self::parse(self.send(creds, reqwest::Method::POST, &url, Some(fields)).await?)
    }

    /// A 2010-04-01 list, following `next_page_uri`.
    async fn list_v2010<T: serde::de::DeserializeOwned>(
        &self,
        creds: &Credentials,
        path: &str,
        key: &str,
    ) -> Result<Vec<T>, TwilioError> {
        let mut url = self.v2010(creds, &format!("{path}?PageSize=1000"));
        let mut all = Vec::new();
        for _ in 0..1000 {
            let page = self.send(creds, reqwest::Method::GET, &url, None).await?;
            let items: Vec<T> = Self::parse(page[key].clone())?;
            all.extend(items);
            match page["next_page_uri"].as_str() {
                Some(next) if !next.is_empty() => url = format!("{}{next}", self.endpoints.api),
                _ => return Ok(all),
            }
        }
        Err(TwilioError::Transport(format!("more than 1000 pages of {key}")))
    }

    /// A trunking v1 list, following `meta.next_page_url`.
    async fn list<T: serde::de::DeserializeOwned>(
        &self,
        creds: &Credentials,
        path: &str,
        key: &str,
    ) -> Result<Vec<T>, TwilioError> {
        let mut url = self.trunking(&format!("{path}?PageSize=1000"));
        let mut all = Vec::new();
        for _ in 0..1000 {
            let page = self.send(creds, reqwest::Method::GET, &url, None).await?;
            let items: Vec<T> = Self::parse(page[key].clone())?;
            all.extend(items);
            match page["meta"]["next_page_url"].as_str() {
                Some(next) if !next.is_empty() => url = next.to_string(),
                _ => return Ok(all),
            }
        }
        Err(TwilioError::Transport(format!("more than 1000 pages of {key}")))
    }

    pub async fn trunk(&self, creds: &Credentials, sid: &str) -> Result<Trunk, TwilioError> {
        Self::parse(self.send(creds, reqwest::Method::GET, &self.trunking(&format!("Trunks/{sid}")), None).await?)
    }

    /// A trunk named `name` on `domain`; `secure` turns Secure Trunking on (TLS and SRTP required).
    pub async fn create_trunk(
        &self,
        creds: &Credentials,
        name: &str,
        domain: &str,
        secure: bool,
    ) -> Result<Trunk, TwilioError> {
        let secure = if secure { "true" } else { "false" };
        let form = [("FriendlyName", name), ("DomainName", domain), ("TransferMode", "enable-all"), ("Secure", secure)];
        Self::parse(self.send(creds, reqwest::Method::POST, &self.trunking("Trunks"), Some(&form)).await?)
    }

    /// Sets a trunk's termination domain name (`….pstn.twilio.com`, unique across Twilio).
    pub async fn set_trunk_domain(&self, creds: &Credentials, trunk: &str, domain: &str) -> Result<Trunk, TwilioError> {
        let url = self.trunking(&format!("Trunks/{trunk}"));
        Self::parse(self.send(creds, reqwest::Method::POST, &url, Some(&[("DomainName", domain)])).await?)
    }

    pub async fn credential_list(&self, creds: &Credentials, list: &str) -> Result<CredentialList, TwilioError> {
        let url = self.v2010(creds, &format!("SIP/CredentialLists/{list}.json"));
        Self::parse(self.send(creds, reqwest::Method::GET, &url, None).await?)
    }

    pub async fn create_credential_list(&self, creds: &Credentials, name: &str) -> Result<CredentialList, TwilioError> {
        let url = self.v2010(creds, "SIP/CredentialLists.json");
        Self::parse(self.send(creds, reqwest::Method::POST, &url, Some(&[("FriendlyName", name)])).await?)
    }

    /// Deletes a credential list and its credentials.
    pub async fn delete_credential_list(&self, creds: &Credentials, list: &str) -> Result<(), TwilioError> {
        let url = self.v2010(creds, &format!("SIP/CredentialLists/{list}.json"));
        self.send(creds, reqwest::Method::DELETE, &url, None).await.map(|_| ())
    }

    pub async fn sip_credentials(&self, creds: &Credentials, list: &str) -> Result<Vec<SipCredential>, TwilioError> {
        self.list_v2010(creds, &format!("SIP/CredentialLists/{list}/Credentials.json"), "credentials").await
    }

    /// A credential in a list; Twilio wants the password at least 12 characters with a digit and mixed case.
    pub async fn create_sip_credential(
        &self,
        creds: &Credentials,
        list: &str,
        username: &str,
        password: &str,
    ) -> Result<SipCredential, TwilioError> {
        let url = self.v2010(creds, &format!("SIP/CredentialLists/{list}/Credentials.json"));
        let form = [("Username", username), ("Password", password)];
        Self::parse(self.send(creds, reqwest::Method::POST, &url, Some(&form)).await?)
    }

    /// The credential lists a trunk authenticates termination (calls to it) against.
    pub async fn trunk_credential_lists(
        &self,
        creds: &Credentials,
        trunk: &str,
    ) -> Result<Vec<CredentialList>, TwilioError> {
        self.list(creds, &format!("Trunks/{trunk}/CredentialLists"), "credential_lists").await
    }

    pub async fn associate_credential_list(
        &self,
        creds: &Credentials,
        trunk: &str,
        list: &str,
    ) -> Result<(), TwilioError> {
        let url = self.trunking(&format!("Trunks/{trunk}/CredentialLists"));
        self.send(creds, reqwest::Method::POST, &url, Some(&[("CredentialListSid", list)])).await.map(|_| ())
    }

    /// Takes a credential list off a trunk (the list stays in the account).
    pub async fn disassociate_credential_list(
        &self,
        creds: &Credentials,
        trunk: &str,
        list: &str,
    ) -> Result<(), TwilioError> {
        let url = self.trunking(&format!("Trunks/{trunk}/CredentialLists/{list}"));
        self.send(creds, reqwest::Method::DELETE, &url, None).await.map(|_| ())
    }

    pub async fn ip_acl(&self, creds: &Credentials, acl: &str) -> Result<IpAccessControlList, TwilioError> {
        let url = self.v2010(creds, &format!("SIP/IpAccessControlLists/{acl}.json"));
        Self::parse(self.send(creds, reqwest::Method::GET, &url, None).await?)
    }

    pub async fn create_ip_acl(&self, creds: &Credentials, name: &str) -> Result<IpAccessControlList, TwilioError> {
        let url = self.v2010(creds, "SIP/IpAccessControlLists.json");
        Self::parse(self.send(creds, reqwest::Method::POST, &url, Some(&[("FriendlyName", name)])).await?)
    }

    /// Deletes an IP access control list and its addresses.
    pub async fn delete_ip_acl(&self, creds: &Credentials, acl: &str) -> Result<(), TwilioError> {
        let url = self.v2010(creds, &format!("SIP/IpAccessControlLists/{acl}.json"));
        self.send(creds, reqwest::Method::DELETE, &url, None).await.map(|_| ())
    }

    pub async fn ip_addresses(&self, creds: &Credentials, acl: &str) -> Result<Vec<IpAddress>, TwilioError> {
        self.list_v2010(creds, &format!("SIP/IpAccessControlLists/{acl}/IpAddresses.json"), "ip_addresses").await
    }

    /// An address (IPv4, dotted) and its prefix length in a list; Twilio takes up to 100 per list.
    pub async fn create_ip_address(
        &self,
        creds: &Credentials,
        acl: &str,
        name: &str,
        address: &str,
        prefix: u8,
    ) -> Result<IpAddress, TwilioError> {
        let url = self.v2010(creds, &format!("SIP/IpAccessControlLists/{acl}/IpAddresses.json"));
        let prefix = prefix.to_string();
        let form = [("FriendlyName", name), ("IpAddress", address), ("CidrPrefixLength", prefix.as_str())];
        Self::parse(self.send(creds, reqwest::Method::POST, &url, Some(&form)).await?)
    }

    pub async fn delete_ip_address(&self, creds: &Credentials, acl: &str, address: &str) -> Result<(), TwilioError> {
        let url = self.v2010(creds, &format!("SIP/IpAccessControlLists/{acl}/IpAddresses/{address}.json"));
        self.send(creds, reqwest::Method::DELETE, &url, None).await.map(|_| ())
    }

    /// The IP access control lists a trunk accepts termination (calls to it) from.
    pub async fn trunk_ip_acls(
        &self,
        creds: &Credentials,
        trunk: &str,
    ) -> Result<Vec<IpAccessControlList>, TwilioError> {
        self.list(creds, &format!("Trunks/{trunk}/IpAccessControlLists"), "ip_access_control_lists").await
    }

    pub async fn associate_ip_acl(&self, creds: &Credentials, trunk: &str, acl: &str) -> Result<(), TwilioError> {
        let url = self.trunking(&format!("Trunks/{trunk}/IpAccessControlLists"));
        self.send(creds, reqwest::Method::POST, &url, Some(&[("IpAccessControlListSid", acl)])).await.map(|_| ())
    }

    /// Takes an IP access control list off a trunk (the list stays in the account).
    pub async fn disassociate_ip_acl(&self, creds: &Credentials, trunk: &str, acl: &str) -> Result<(), TwilioError> {
        let url = self.trunking(&format!("Trunks/{trunk}/IpAccessControlLists/{acl}"));
        self.send(creds, reqwest::Method::DELETE, &url, None).await.map(|_| ())
    }

    pub async fn origination_urls(&self, creds: &Credentials, trunk: &str) -> Result<Vec<OriginationUrl>, TwilioError> {
        self.list(creds, &format!("Trunks/{trunk}/OriginationUrls"), "origination_urls").await
    }

    pub async fn create_origination_url(
        &self,
        creds: &Credentials,
        trunk: &str,
        sip_url: &str,
        priority: u32,
        weight: u32,
    ) -> Result<OriginationUrl, TwilioError> {
        let (priority, weight) = (priority.to_string(), weight.to_string());
        let form = [
            ("FriendlyName", "vocals"),
            ("SipUrl", sip_url),
            ("Priority", priority.as_str()),
            ("Weight", weight.as_str()),
            ("Enabled", "true"),
        ];
        let url = self.trunking(&format!("Trunks/{trunk}/OriginationUrls"));
        Self::parse(self.send(creds, reqwest::Method::POST, &url, Some(&form)).await?)
    }

    /// Puts a number on a trunk (moving it from any other).
    pub async fn attach(&self, creds: &Credentials, trunk: &str, number: &str) -> Result<(), TwilioError> {
        let url = self.trunking(&format!("Trunks/{trunk}/PhoneNumbers"));
        self.send(creds, reqwest::Method::POST, &url, Some(&[("PhoneNumberSid", number)])).await.map(|_| ())
    }

    /// Takes a number off a trunk (the number stays in the account).
    pub async fn detach(&self, creds: &Credentials, trunk: &str, number: &str) -> Result<(), TwilioError> {
        let url = self.trunking(&format!("Trunks/{trunk}/PhoneNumbers/{number}"));
        self.send(creds, reqwest::Method::DELETE, &url, None).await.map(|_| ())
    }
}

impl Endpoints {
    fn trim(self) -> Endpoints {
        Endpoints {
            api: self.api.trim_end_matches('/').to_string(),
            trunking: self.trunking.trim_end_matches('/').to_string(),
        }
    }
}
