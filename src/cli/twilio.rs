//! `vocals twilio`: link, list and unlink Twilio accounts, list an account's numbers, and reconcile, through
//! `/v1/twilio`.

use clap::Subcommand;

use super::Shown;
use super::client::{self, Client, ClientError, segment};

#[derive(Subcommand)]
pub enum TwilioCommand {
    /// Link an account (its credentials are checked with Twilio).
    Link {
        /// The account's SID (AC…).
        account_sid: String,
        /// The auth token (or set TWILIO_AUTH_TOKEN, to keep it out of the shell history).
        #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
        auth_token: String,
        /// A name to show for the account.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List linked accounts.
    Accounts,
    /// The account's numbers and what answers each now.
    Numbers {
        /// A linked account's SID (AC…).
        account_sid: String,
    },
    /// Unlink an account no number uses.
    Unlink {
        /// A linked account's SID (AC…).
        account_sid: String,
    },
    /// Compare Twilio with the store now.
    Reconcile,
}

/// One `vocals twilio` command.
pub fn run(c: &Client, command: TwilioCommand) -> Result<Shown, ClientError> {
    Ok(match command {
        TwilioCommand::Link { account_sid, auth_token, name } => {
            let body = serde_json::json!({"account_sid": account_sid, "auth_token": auth_token, "friendly_name": name});
            Shown::One(c.request("POST", "/v1/twilio/accounts", Some(&body))?)
        }
        TwilioCommand::Accounts => {
            Shown::List(c.request("GET", "/v1/twilio/accounts", None)?, "accounts", client::ACCOUNT_COLUMNS)
        }
        TwilioCommand::Numbers { account_sid } => {
            let url = format!("/v1/twilio/accounts/{}/numbers", segment(&account_sid));
            Shown::List(c.request("GET", &url, None)?, "numbers", client::TWILIO_NUMBER_COLUMNS)
        }
        TwilioCommand::Unlink { account_sid } => {
            c.request("DELETE", &format!("/v1/twilio/accounts/{}", segment(&account_sid)), None)?;
            Shown::Line(format!("unlinked {account_sid}"))
        }
        TwilioCommand::Reconcile => {
            Shown::List(c.request("POST", "/v1/twilio/reconcile", None)?, "drift", client::DRIFT_COLUMNS)
        }
    })
}
