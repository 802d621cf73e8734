//! The termination side of a linked account's vocals trunk (issue 22): what Twilio needs so vocals can place
//! calls on it. When vocals configures the trunk it makes sure the trunk has a termination domain name
//! (`vocals-….pstn.twilio.com`, an existing one kept), and then, as `[outbound] termination_auth` says, either
//! (`credentials`, the default) creates one credential list (`vocals`) with one credential whose username and
//! password it generates (the password from the OS CSPRNG, meeting Twilio's rules) and associates the list with
//! the trunk, or (`ip`) an IP access control list of the nodes' addresses (`ip_acl`). What it created is kept in
//! the store (the password sealed), so a second number reuses it; Twilio is read to find what is missing (a list
//! or credential deleted in the console, a new trunk) and only that is made again. What vocals made for the other
//! way (before the operator switched) is taken off the trunk and deleted, since Twilio would want calls to pass
//! both. Unlinking the account takes whatever vocals made off the trunk and deletes it.

use ring::rand::{SecureRandom, SystemRandom};

use super::ip_acl::Ipv4Block;
use super::{Credentials, FlowError, Provisioner, Trunk, TwilioError};
use crate::store::Termination;

/// How a linked account's trunk knows the calls vocals places on it (`[outbound] termination_auth` and
/// `termination_ips`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TerminationAuth {
    /// A credential list holding one credential vocals generates; calls answer the trunk's digest challenge
    /// with it.
    #[default]
    Credentials,
    /// An IP access control list of the addresses the nodes place calls from; calls carry no credentials.
    Ip(Vec<Ipv4Block>),
}

impl TerminationAuth {
    pub fn is_ip(&self) -> bool {
        matches!(self, TerminationAuth::Ip(_))
    }
}

/// The credential list's name in the account.
pub const CREDENTIAL_LIST_NAME: &str = "vocals";

/// Generated passwords' length (Twilio wants at least 12).
pub const PASSWORD_LEN: usize = 32;

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const LOWER_ALPHANUMERIC: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Twilio's rules for a SIP credential's password: at least 12 characters, a digit, an upper- and a lower-case
/// letter.
pub fn meets_twilio_rules(password: &str) -> bool {
    password.chars().count() >= 12
        && password.chars().any(|c| c.is_ascii_digit())
        && password.chars().any(|c| c.is_ascii_uppercase())
        && password.chars().any(|c| c.is_ascii_lowercase())
}

/// `len` characters of `alphabet`, uniformly, from the OS CSPRNG (bytes past the largest multiple of the
/// alphabet's size are drawn again, so no character is likelier than another).
fn random_text(len: usize, alphabet: &[u8]) -> Result<String, FlowError> {
    let rng = SystemRandom::new();
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(len);
    let mut bytes = [0u8; 64];
    while out.len() < len {
        rng.fill(&mut bytes).map_err(|_| FlowError::Invalid("no randomness available".into()))?;
        for &b in bytes.iter().filter(|&&b| usize::from(b) < limit) {
            if out.len() == len {
                break;
            }
            out.push(char::from(alphabet[usize::from(b) % alphabet.len()]));
        }
    }
    Ok(out)
}

/// A fresh password meeting Twilio's rules: [`PASSWORD_LEN`] letters and digits from the OS CSPRNG (drawn
/// again in the rare case one kind is missing).
pub fn generate_password() -> Result<String, FlowError> {
    loop {
        let password = random_text(PASSWORD_LEN, ALPHANUMERIC)?;
        if meets_twilio_rules(&password) {
            return Ok(password);
        }
    }
}

/// A fresh username: `vocals-` and 12 lower-case letters and digits (Twilio allows up to 32 characters).
pub fn generate_username() -> Result<String, FlowError> {
    Ok(format!("vocals-{}", random_text(12, LOWER_ALPHANUMERIC)?))
}

/// A 404 from Twilio is what was wanted when removing something.
pub(super) fn gone_is_fine(outcome: Result<(), TwilioError>) -> Result<(), TwilioError> {
    match outcome {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}

impl Provisioner {
    /// The trunk as it is when it has a termination domain name; otherwise it is given a fresh one (another on
    /// a collision, as when the trunk is created).
    pub(super) async fn ensure_domain(&self, creds: &Credentials, trunk: Trunk) -> Result<Trunk, FlowError> {
        if trunk.domain_name.as_deref().is_some_and(|d| !d.is_empty()) {
            return Ok(trunk);
        }
        let mut last = None;
        for _ in 0..5 {
            let domain = super::fresh_domain();
            match self.twilio.set_trunk_domain(creds, &trunk.sid, &domain).await {
                Ok(t) => {
                    tracing::info!(trunk = %t.sid, %domain, "the vocals trunk had no termination domain; set one");
                    return Ok(t);
                }
                Err(e) if super::domain_taken(&e) => last = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        Err(last.map_or_else(|| FlowError::Invalid("no domain".into()), FlowError::Twilio))
    }

    /// The trunk knows vocals' calls as configured (vocals' credential list, or its IP access control list):
    /// whatever of that is missing is made, and what vocals made for the other way is removed.
    pub(super) async fn ensure_termination(&self, creds: &Credentials, trunk: &str) -> Result<(), FlowError> {
        let account = creds.account_sid.as_str();
        let kept = self.store.twilio_termination(account).await?;
        let kept = kept.ok_or_else(|| FlowError::NotFound(format!("Twilio account {account}")))?;
        match &self.termination {
            TerminationAuth::Credentials => {
                self.ensure_credential_list(creds, trunk, &kept).await?;
                if let Some(acl) = &kept.ip_acl_sid {
                    tracing::info!(%account, %acl, "termination_auth is credentials: removing vocals' IP access control list");
                    self.remove_ip_acl(creds, Some(trunk), acl).await?;
                    self.store.set_account_ip_acl(account, None).await?;
                }
            }
            TerminationAuth::Ip(blocks) => {
                self.ensure_ip_acl(creds, trunk, kept.ip_acl_sid.as_deref(), blocks).await?;
                if let Some(list) = &kept.credential_list_sid {
                    tracing::info!(%account, %list, "termination_auth is ip: removing vocals' credential list");
                    self.remove_credential_list(creds, Some(trunk), list).await?;
                    self.store.set_account_credential(account, None).await?;
                }
            }
        }
        Ok(())
    }

    /// The trunk authenticates calls to it against vocals' credential list, which holds vocals' credential:
    /// whatever of that is missing is created (the list and credential once per account, kept in the store).
    async fn ensure_credential_list(
        &self,
        creds: &Credentials,
        trunk: &str,
        kept: &Termination,
    ) -> Result<(), FlowError> {
        let account = creds.account_sid.as_str();
        let existing = match (&kept.credential_list_sid, &kept.username, &kept.password) {
            (Some(list), Some(username), Some(password)) => match self.twilio.credential_list(creds, list).await {
                Ok(_) => Some((list.clone(), username.clone(), password.clone())),
                Err(e) if e.is_not_found() => {
                    tracing::warn!(%account, %list, "vocals' credential list is gone from Twilio; creating another");
                    None
                }
                Err(e) => return Err(e.into()),
            },
            _ => None,
        };
        let list = match existing {
            Some((list, username, password)) => {
                let present = self.twilio.sip_credentials(creds, &list).await?;
                if !present.iter().any(|c| c.username == username) {
                    self.twilio.create_sip_credential(creds, &list, &username, &password).await?;
                }
                list
            }
            None => {
                let (username, password) = (generate_username()?, generate_password()?);
                let list = self.twilio.create_credential_list(creds, CREDENTIAL_LIST_NAME).await?.sid;
                // Kept before the credential is created: a failure from here on is finished by a retry, and no
                // list is ever left in the account that vocals does not know of.
                self.store.set_account_credential(account, Some((&list, &username, &password))).await?;
                self.twilio.create_sip_credential(creds, &list, &username, &password).await?;
                list
            }
        };
        let attached = self.twilio.trunk_credential_lists(creds, trunk).await?;
        if !attached.iter().any(|l| l.sid == list) {
            self.twilio.associate_credential_list(creds, trunk, &list).await?;
        }
        Ok(())
    }

    /// Takes vocals' credential list off `trunk` and deletes it with its credential (either already gone is fine).
    async fn remove_credential_list(
        &self,
        creds: &Credentials,
        trunk: Option<&str>,
        list: &str,
    ) -> Result<(), TwilioError> {
        if let Some(trunk) = trunk {
            gone_is_fine(self.twilio.disassociate_credential_list(creds, trunk, list).await)?;
        }
        gone_is_fine(self.twilio.delete_credential_list(creds, list).await)
    }

    /// Unlinks an account no number uses ([`crate::store::StoreError::InUse`] names them otherwise): what vocals
    /// made for the trunk's termination side (its credential list with its credential, its IP access control
    /// list) is taken off the trunk and deleted first. The trunk, with its domain and origination URLs, stays in
    /// the account. When Twilio no longer accepts the account's credentials (401/403) the account is unlinked
    /// anyway, the lists left behind, saying so in the log.
    pub async fn unlink(&self, sid: &str) -> Result<(), FlowError> {
        self.store.twilio_account_unused(sid).await?;
        let kept = self.store.twilio_termination(sid).await?;
        let kept = kept.ok_or_else(|| FlowError::NotFound(format!("Twilio account {sid}")))?;
        let creds = Credentials { account_sid: sid.to_string(), auth_token: kept.auth_token.clone() };
        let trunk = kept.trunk_sid.as_deref();
        if let Some(list) = &kept.credential_list_sid {
            let outcome = self.remove_credential_list(&creds, trunk, list).await;
            if removed(sid, "credential list", list, outcome)? {
                self.store.set_account_credential(sid, None).await?;
            }
        }
        if let Some(acl) = &kept.ip_acl_sid {
            let outcome = self.remove_ip_acl(&creds, trunk, acl).await;
            if removed(sid, "IP access control list", acl, outcome)? {
                self.store.set_account_ip_acl(sid, None).await?;
            }
        }
        Ok(self.store.delete_twilio_account(sid).await?)
    }
}

/// Whether what vocals made (`what`, `sid`) was removed from Twilio, or is left behind because Twilio refuses the
/// account's credentials (401/403: said in the log, and unlinking goes on).
fn removed(account: &str, what: &str, sid: &str, outcome: Result<(), TwilioError>) -> Result<bool, FlowError> {
    match outcome {
        Ok(()) => Ok(true),
        Err(e @ TwilioError::Api { status: 401 | 403, .. }) => {
            tracing::warn!(
                %account, %sid, error = %e,
                "Twilio refuses the account's credentials: unlinking it anyway; delete the {what} in Twilio's console"
            );
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_meet_twilios_rules_and_differ() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2000 {
            let p = generate_password().unwrap();
            assert_eq!(p.len(), PASSWORD_LEN);
            assert!(meets_twilio_rules(&p), "{p}");
            assert!(p.bytes().all(|b| b.is_ascii_alphanumeric()), "{p}");
            assert!(seen.insert(p), "a repeated password");
        }
    }

    #[test]
    fn every_character_of_the_alphabet_comes_up_about_as_often() {
        let text = random_text(62 * 2000, ALPHANUMERIC).unwrap();
        let mut counts = [0usize; 256];
        for b in text.bytes() {
            counts[usize::from(b)] += 1;
        }
        for &c in ALPHANUMERIC {
            let n = counts[usize::from(c)];
            assert!((1500..2500).contains(&n), "{} came up {n} times in 124,000", char::from(c));
        }
    }

    #[test]
    fn the_rules_want_twelve_characters_a_digit_and_both_cases() {
        assert!(meets_twilio_rules("IWasAtSignal2018"));
        assert!(meets_twilio_rules("abcdefghiJK1"));
        for bad in ["abcdefghiJ1", "abcdefghijk1", "ABCDEFGHIJK1", "abcdefghiJKL", ""] {
            assert!(!meets_twilio_rules(bad), "{bad:?}");
        }
    }

    #[test]
    fn generated_usernames_are_short_and_plain() {
        let u = generate_username().unwrap();
        assert!(u.starts_with("vocals-") && u.len() == 19 && u.len() <= 32, "{u}");
        assert!(u[7..].bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()), "{u}");
        assert_ne!(u, generate_username().unwrap());
    }
}
