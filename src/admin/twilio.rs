//! `/v1/twilio/…` and the Twilio side of `/v1/numbers`: linking accounts, listing their numbers, and the
//! add / retry / repair / remove flows of [`crate::twilio::Provisioner`].

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::v1::{ApiError, Body, e164_path, path};
use crate::twilio::{FlowError, Provisioner};

impl From<FlowError> for ApiError {
    fn from(e: FlowError) -> ApiError {
        match e {
            FlowError::Invalid(message) => ApiError::invalid(message),
            FlowError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            FlowError::Twilio(e) => ApiError::new(StatusCode::BAD_GATEWAY, "twilio_error", e.to_string()),
            FlowError::Store(e) => e.into(),
        }
    }
}

pub fn routes() -> axum::Router<Arc<AppState>> {
    axum::Router::new()
        .route("/v1/twilio/accounts", post(link).get(accounts))
        .route("/v1/twilio/accounts/{sid}", delete(unlink))
        .route("/v1/twilio/accounts/{sid}/numbers", get(account_numbers))
        .route("/v1/twilio/reconcile", post(reconcile))
        .route("/v1/numbers/{number}/twilio", get(preview))
        .route("/v1/numbers/{number}/twilio/retry", post(configure))
        .route("/v1/numbers/{number}/twilio/repair", post(configure))
}

pub fn provisioner(state: &AppState) -> Result<&Arc<Provisioner>, ApiError> {
    state.twilio.as_ref().ok_or_else(|| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Twilio linking is not set up on this node")
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Link {
    account_sid: String,
    auth_token: String,
    #[serde(default)]
    friendly_name: String,
}

/// Links an account once Twilio accepts the credentials (422 with Twilio's message otherwise).
async fn link(State(state): State<Arc<AppState>>, Body(l): Body<Link>) -> Result<Response, ApiError> {
    let account = provisioner(&state)?.link(l.account_sid.trim(), l.auth_token.trim(), &l.friendly_name).await?;
    Ok((StatusCode::CREATED, Json(account)).into_response())
}

async fn accounts(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let store = super::v1::catalog(&state)?.store();
    Ok(Json(json!({ "accounts": store.twilio_accounts().await? })))
}

/// Unlinks an account no number uses (409 names them), removing the credential list vocals created on its
/// trunk first (502 with Twilio's message when Twilio fails; the account then stays linked).
async fn unlink(
    State(state): State<Arc<AppState>>,
    sid: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let sid = path(sid)?;
    match &state.twilio {
        Some(p) => p.unlink(&sid).await?,
        None => super::v1::catalog(&state)?.store().delete_twilio_account(&sid).await?,
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn account_numbers(
    State(state): State<Arc<AppState>>,
    sid: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let sid = path(sid)?;
    let numbers = provisioner(&state)?.account_numbers(&sid).await?;
    Ok(Json(json!({ "numbers": numbers })))
}

/// What Twilio has for the number now, and what Repair and Remove would do to it, in words (read live).
async fn preview(
    State(state): State<Arc<AppState>>,
    number: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let number = e164_path(&path(number)?)?;
    Ok(Json(json!(provisioner(&state)?.preview(&number).await?)))
}

/// Retry (a number in error) and repair (after drift) both configure Twilio again.
async fn configure(
    State(state): State<Arc<AppState>>,
    number: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let number = e164_path(&path(number)?)?;
    let n = provisioner(&state)?.configure(&number).await?;
    super::v1::catalog(&state)?.changed().await;
    Ok(Json(n).into_response())
}

async fn reconcile(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let drifted = provisioner(&state)?.reconcile().await?;
    let drift: Vec<Value> =
        drifted.into_iter().map(|(number, detail)| json!({"phone_number": number, "detail": detail})).collect();
    Ok(Json(json!({ "drift": drift })))
}
