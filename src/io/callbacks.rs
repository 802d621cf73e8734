//! Status callbacks of the calls vocals places, posted as Twilio posts them: the call's form parameters
//! (`CallSid`, `CallStatus`, …) to the request's `StatusCallback` URL, by POST (a form body) or GET (a query),
//! signed with `X-Twilio-Signature` (HMAC-SHA1 with the account's auth token over the URL and the sorted
//! parameters), each in its own task so a slow URL delays no other call; once each, as Twilio does.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};

use crate::call::Callback;
use crate::twilio::calls::HttpMethod;

/// Callbacks waiting to be posted; beyond it they are dropped (counted and logged).
pub const QUEUE: usize = 1024;
/// Callbacks being posted at once.
const IN_FLIGHT: usize = 64;
/// The longest a callback's URL may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the sender on the process's HTTP client; the call layer's callbacks go to the returned queue.
pub fn spawn(http: reqwest::Client) -> mpsc::Sender<Callback> {
    let (tx, mut rx) = mpsc::channel::<Callback>(QUEUE);
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    tokio::spawn(async move {
        while let Some(cb) = rx.recv().await {
            let Ok(permit) = slots.clone().acquire_owned().await else { return };
            let http = http.clone();
            tokio::spawn(async move {
                post(&http, cb).await;
                drop(permit);
            });
        }
    });
    tx
}

/// Posts one callback; the outcome is counted and logged, never retried.
async fn post(http: &reqwest::Client, cb: Callback) {
    let request = match cb.method {
        HttpMethod::Post => {
            let signature = crate::twilio::signature::sign(&cb.auth_token, &cb.url, &cb.params);
            http.post(&cb.url).form(&cb.params).header("X-Twilio-Signature", signature)
        }
        HttpMethod::Get => {
            // A GET is signed over the whole URL, its query included.
            let mut url = match reqwest::Url::parse(&cb.url) {
                Ok(u) => u,
                Err(e) => return failed(&cb.url, &e.to_string()),
            };
            url.query_pairs_mut().extend_pairs(cb.params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let signature = crate::twilio::signature::sign(&cb.auth_token, url.as_str(), &[]);
            http.get(url).header("X-Twilio-Signature", signature)
        }
    };
    match request.timeout(TIMEOUT).send().await {
        Ok(r) if r.status().is_success() => {
            metrics::counter!(crate::metrics::CALLBACKS, "result" => "sent").increment(1);
        }
        Ok(r) => failed(&cb.url, &format!("answered {}", r.status())),
        Err(e) => failed(&cb.url, &e.to_string()),
    }
}

fn failed(url: &str, why: &str) {
    metrics::counter!(crate::metrics::CALLBACKS, "result" => "failed").increment(1);
    tracing::warn!(%url, %why, "status callback failed");
}
