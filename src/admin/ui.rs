//! The Phone Numbers dashboard: three static files embedded in the binary (`src/admin/ui/`), served under
//! `/ui/` without authentication (they hold no data); the page asks for the admin token and then uses only
//! the public `/v1` API with it, so it can do nothing the API cannot. No build step, no external resources: a
//! strict Content-Security-Policy holds for it.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

const INDEX: &str = include_str!("ui/index.html");
const SCRIPT: &str = include_str!("ui/app.js");
const STYLE: &str = include_str!("ui/style.css");

/// Only this origin's scripts, styles, images and API; never framed. Recordings play from `blob:` URLs: the page
/// fetches them through the API with the token in a header, which an `<audio src>` could not send.
const CSP: &str = "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; object-src 'none'; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(|| async { file("text/html; charset=utf-8", INDEX) }))
        .route("/ui/app.js", get(|| async { file("text/javascript; charset=utf-8", SCRIPT) }))
        .route("/ui/style.css", get(|| async { file("text/css; charset=utf-8", STYLE) }))
}

fn file(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // The files change with the binary: always revalidate, so an upgrade is seen at the next load.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let app: Router = routes();
        let response = app.oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (parts.status, parts.headers, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn the_pages_are_served_with_their_types_and_a_strict_policy() {
        let (status, headers, body) = get("/ui/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert!(headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().starts_with("default-src 'self'"));
        assert!(body.contains("/ui/app.js") && body.contains("/ui/style.css"), "{body}");
        assert!(!body.contains("http://") && !body.contains("https://"), "no external resources");
        let (status, headers, body) = get("/ui/app.js").await;
        assert_eq!(
            (status, headers[header::CONTENT_TYPE].to_str().unwrap()),
            (StatusCode::OK, "text/javascript; charset=utf-8")
        );
        assert!(body.contains("/v1/numbers"));
        let (status, headers, _) = get("/ui/style.css").await;
        assert_eq!(
            (status, headers[header::CONTENT_TYPE].to_str().unwrap()),
            (StatusCode::OK, "text/css; charset=utf-8")
        );
        for path in ["/", "/ui"] {
            let (status, headers, _) = get(path).await;
            assert_eq!(
                (status, headers[header::LOCATION].to_str().unwrap()),
                (StatusCode::SEE_OTHER, "/ui/"),
                "{path}"
            );
        }
    }
}
