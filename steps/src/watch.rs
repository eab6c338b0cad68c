//! Watches started by a When step and checked by a later Then step.
//!
//! The watch runs in a background task from a known resourceVersion, so every change after
//! that version is delivered whatever the timing of the steps in between.

use std::sync::{Arc, Mutex};

use futures::TryStreamExt as _;
use kube::core::WatchEvent;
use kube::Client;
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchRecord {
    /// `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR`.
    pub event: String,
    pub name: String,
    pub resource_version: String,
    /// The HTTP-style code of an `ERROR` event (e.g. 410).
    pub code: Option<u16>,
}

pub struct WatchHandle {
    records: Arc<Mutex<Vec<WatchRecord>>>,
    task: tokio::task::JoinHandle<()>,
    /// What is watched, for messages (`configmaps in kp-x from 123`).
    pub description: String,
}

impl WatchHandle {
    pub fn records(&self) -> Vec<WatchRecord> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts watching `path` (a collection path) from `resource_version`, optionally narrowed by
/// a field selector.
pub fn start(
    client: Client,
    path: &str,
    resource_version: &str,
    field_selector: Option<&str>,
) -> anyhow::Result<WatchHandle> {
    let mut query = vec![
        ("watch", "1".to_string()),
        ("resourceVersion", resource_version.to_string()),
        ("allowWatchBookmarks", "false".to_string()),
    ];
    if let Some(fs) = field_selector {
        query.push(("fieldSelector", fs.to_string()));
    }
    let uri = format!("{path}?{}", encode_query(&query));
    let req = http::Request::get(&uri)
        .header(http::header::ACCEPT, "application/json")
        .body(Vec::new())?;
    let records = Arc::new(Mutex::new(Vec::new()));
    let sink = records.clone();
    let task = tokio::spawn(async move {
        let push = |r: WatchRecord| {
            if let Ok(mut v) = sink.lock() {
                v.push(r);
            }
        };
        let stream = match client.request_events::<Value>(req).await {
            Ok(s) => s,
            Err(e) => {
                push(error_record(&e));
                return;
            }
        };
        futures::pin_mut!(stream);
        loop {
            match stream.try_next().await {
                Ok(Some(ev)) => push(record(ev)),
                Ok(None) => return,
                Err(e) => {
                    push(error_record(&e));
                    return;
                }
            }
        }
    });
    Ok(WatchHandle {
        records,
        task,
        description: format!("{path} from resourceVersion {resource_version}"),
    })
}

fn record(ev: WatchEvent<Value>) -> WatchRecord {
    let meta = |o: &Value, f: &str| {
        o.pointer(&format!("/metadata/{f}"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let obj = |event: &str, o: &Value| WatchRecord {
        event: event.into(),
        name: meta(o, "name"),
        resource_version: meta(o, "resourceVersion"),
        code: None,
    };
    match ev {
        WatchEvent::Added(o) => obj("ADDED", &o),
        WatchEvent::Modified(o) => obj("MODIFIED", &o),
        WatchEvent::Deleted(o) => obj("DELETED", &o),
        WatchEvent::Bookmark(b) => WatchRecord {
            event: "BOOKMARK".into(),
            name: String::new(),
            resource_version: b.metadata.resource_version,
            code: None,
        },
        WatchEvent::Error(s) => WatchRecord {
            event: "ERROR".into(),
            name: s.reason.clone(),
            resource_version: String::new(),
            code: Some(s.code),
        },
    }
}

fn error_record(e: &kube::Error) -> WatchRecord {
    let code = match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    };
    WatchRecord {
        event: "ERROR".into(),
        name: e.to_string(),
        resource_version: String::new(),
        code,
    }
}

/// Percent-encodes query parameters (selectors contain `=`, `,` and `!`).
pub fn encode_query(params: &[(&str, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={}", percent(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        let q = encode_query(&[
            ("labelSelector", "app=web,tier!=db".into()),
            ("limit", "2".into()),
        ]);
        assert_eq!(q, "labelSelector=app%3Dweb%2Ctier%21%3Ddb&limit=2");
    }
}
