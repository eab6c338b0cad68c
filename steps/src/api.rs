//! Raw API requests. Steps go through HTTP directly rather than typed clients so that every
//! response code, Status reason and header is visible to the assertions that follow.

use http::{HeaderMap, Request};
use kube::Client;
use serde_json::Value;

/// What the server answered to the last request a step made.
#[derive(Clone, Debug)]
pub struct ApiResponse {
    /// `METHOD path`, for messages.
    pub request: String,
    pub code: u16,
    pub headers: HeaderMap,
    pub body: String,
    /// The body parsed as JSON, when it is JSON.
    pub json: Option<Value>,
}

impl ApiResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// `reason` of a `Status` body (e.g. `AlreadyExists`, `Conflict`).
    pub fn reason(&self) -> Option<&str> {
        self.status_field("reason")
    }

    pub fn message(&self) -> Option<&str> {
        self.status_field("message")
    }

    fn status_field(&self, field: &str) -> Option<&str> {
        let j = self.json.as_ref()?;
        if j.get("kind").and_then(Value::as_str) != Some("Status") {
            return None;
        }
        j.get(field).and_then(Value::as_str)
    }

    /// One line describing the outcome, for failure messages.
    pub fn describe(&self) -> String {
        let mut s = format!("{} -> {}", self.request, self.code);
        if let Some(r) = self.reason() {
            s.push_str(&format!(" {r}"));
        }
        if let Some(m) = self.message() {
            s.push_str(&format!(": {m}"));
        } else if !self.is_success() && self.json.is_none() && !self.body.is_empty() {
            s.push_str(&format!(
                ": {}",
                self.body.chars().take(200).collect::<String>()
            ));
        }
        s
    }
}

/// Sends `req` and reads the whole answer. Transport failures are errors; HTTP error codes
/// are not (they are data for the assertions).
pub async fn send(client: &Client, req: Request<Vec<u8>>) -> anyhow::Result<ApiResponse> {
    let request = format!("{} {}", req.method(), req.uri());
    let resp = client.send(req.map(kube::client::Body::from)).await?;
    let code = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect_bytes().await?;
    let body = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_str(&body).ok();
    Ok(ApiResponse {
        request,
        code,
        headers,
        body,
        json,
    })
}

/// Builds a request with a JSON body.
pub fn request(
    method: http::Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> anyhow::Result<Request<Vec<u8>>> {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::ACCEPT, "application/json");
    if let Some(ct) = content_type {
        b = b.header(http::header::CONTENT_TYPE, ct);
    }
    Ok(b.body(body)?)
}
