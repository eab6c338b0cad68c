//! Raw HTTP steps: requests with chosen headers (Accept, impersonation, …) and credentials
//! other than the runner's own, and assertions on what came back as bytes, YAML or a watch
//! stream. They exist for behaviours that live on the wire (content negotiation, API Priority
//! and Fairness headers, authentication, bookmarks) rather than in objects.

use http::header::{HeaderName, HeaderValue};
use kube::Client;
use serde_json::{json, Value};

use super::support::{parse_documents, StepArgs, StepFailure, StepResult};
use crate::api::{self, ApiResponse};
use crate::jsonpath;
use crate::world::KubeWorld;

/// The credentials a raw request is sent with.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Credentials {
    /// The runner's own (no retries of 429, so a rejection is seen as the server sent it).
    Runner,
    /// A token the API issues for a ServiceAccount of the scenario's namespace.
    ServiceAccount(String),
    /// No credentials at all.
    Anonymous,
    /// A bearer token written in the scenario (usually a bad one).
    Token(String),
}

impl Credentials {
    fn from_args(args: &StepArgs) -> Credentials {
        if let Some(sa) = args.get("sa") {
            Credentials::ServiceAccount(sa.to_string())
        } else if args.get("anon").is_some() {
            Credentials::Anonymous
        } else if let Some(t) = args.get("token") {
            Credentials::Token(t.to_string())
        } else {
            Credentials::Runner
        }
    }
}

/// A doc string in the shape of an HTTP message after its request line: `Name: value`
/// header lines, then, after an empty line, the body.
#[derive(Debug, Default, PartialEq)]
struct Message {
    headers: Vec<(String, String)>,
    body: String,
}

fn parse_message(text: &str) -> Result<Message, StepFailure> {
    let mut msg = Message::default();
    // Doc strings may come with a leading newline; the message starts at its first header.
    let mut lines = text.trim_start_matches(['\n', '\r']).lines();
    for line in lines.by_ref() {
        if line.trim().is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').ok_or_else(|| {
            StepFailure::msg(format!(
                "\"{line}\" is not a header line: write \"Name: value\", then an empty line before any body"
            ))
        })?;
        msg.headers
            .push((name.trim().to_string(), value.trim().to_string()));
    }
    msg.body = lines.collect::<Vec<_>>().join("\n");
    Ok(msg)
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as sent: a JSON content type (or none) lets the body be written in YAML.
    fn body_bytes(&self) -> Result<Vec<u8>, StepFailure> {
        if self.body.trim().is_empty() {
            return Ok(Vec::new());
        }
        let json_like = self
            .header("Content-Type")
            .is_none_or(|ct| ct.contains("json"));
        if !json_like {
            return Ok(self.body.clone().into_bytes());
        }
        let docs = parse_documents(&self.body)?;
        let [doc] = docs.as_slice() else {
            return Err(StepFailure::msg(
                "a request body must be exactly one document",
            ));
        };
        Ok(serde_json::to_vec(doc)?)
    }
}

/// Asks the API for a short-lived token of a ServiceAccount (TokenRequest), as
/// `kubectl create token` does, so requests can be made as that account on any cluster.
async fn service_account_token(world: &KubeWorld, sa: &str) -> Result<String, StepFailure> {
    let path = format!(
        "/api/v1/namespaces/{}/serviceaccounts/{sa}/token",
        world.namespace
    );
    // 600 s is the shortest expiry the API accepts.
    let body = json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": 600},
    });
    let req = api::request(
        http::Method::POST,
        &path,
        Some("application/json"),
        serde_json::to_vec(&body)?,
    )?;
    let resp = api::send(world.client()?, req).await?;
    resp.json
        .as_ref()
        .and_then(|j| j.pointer("/status/token"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            StepFailure::msg(format!(
                "no token was issued for service account \"{sa}\" (create it first): {}",
                resp.describe()
            ))
        })
}

/// A client for the target with the given credentials instead of the runner's.
async fn client_for(world: &KubeWorld, creds: &Credentials) -> Result<Client, StepFailure> {
    let target = world.target()?;
    let token = match creds {
        Credentials::Runner => return Ok(target.exact_client.clone()),
        Credentials::Anonymous => None,
        Credentials::Token(t) => Some(t.clone()),
        Credentials::ServiceAccount(sa) => Some(service_account_token(world, sa).await?),
    };
    let mut config = target.config.clone();
    config.auth_info = kube::config::AuthInfo {
        token: token.map(Into::into),
        ..Default::default()
    };
    config.default_retry = false;
    Client::try_from(config)
        .map_err(|e| StepFailure::msg(format!("cannot build a client with other credentials: {e}")))
}

/// A client acting as a ServiceAccount of the scenario namespace, with a token from the API.
pub(super) async fn service_account_client(
    world: &KubeWorld,
    sa: &str,
) -> Result<Client, StepFailure> {
    client_for(world, &Credentials::ServiceAccount(sa.to_string())).await
}

pub async fn request(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let method = http::Method::from_bytes(args.req("method")?.as_bytes())
        .map_err(|e| StepFailure::msg(e.to_string()))?;
    let path = args.req("path")?;
    let wants_doc = args.get("hdr1").is_some() || args.get("hdr2").is_some();
    let msg = match (&args.doc, wants_doc) {
        (Some(d), true) => parse_message(d)?,
        (None, true) => return Err(StepFailure::msg(
            "\"with headers:\" needs a doc string of \"Name: value\" lines (and, after an empty line, a body)",
        )),
        (Some(_), false) => {
            return Err(StepFailure::msg(
                "end the step with \"with headers:\" to send a doc string",
            ))
        }
        (None, false) => Message::default(),
    };
    let body = msg.body_bytes()?;
    let content_type = msg
        .header("Content-Type")
        .or((!body.is_empty()).then_some("application/json"));
    let mut req = api::request(method, path, content_type, body)?;
    for (name, value) in &msg.headers {
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| StepFailure::msg(format!("\"{name}\" is not a valid header name")))?;
        let v = HeaderValue::from_str(value).map_err(|_| {
            StepFailure::msg(format!(
                "\"{value}\" cannot be sent in a header (use printable ASCII)"
            ))
        })?;
        if n == http::header::ACCEPT || n == http::header::CONTENT_TYPE {
            req.headers_mut().insert(n, v);
        } else {
            // Impersonate-Group may be repeated.
            req.headers_mut().append(n, v);
        }
    }
    let client = client_for(world, &Credentials::from_args(&args)).await?;
    let resp = api::send(&client, req).await?;
    world.last = Some(resp);
    // Made to look at the answer, whatever its code.
    Ok(())
}

fn last(world: &KubeWorld) -> Result<&ApiResponse, StepFailure> {
    world
        .last
        .as_ref()
        .ok_or_else(|| StepFailure::msg("no request has been made yet"))
}

pub async fn remember_header(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let name = args.req("header")?;
    let resp = last(world)?;
    let value = resp
        .headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .ok_or_else(|| {
            StepFailure::msg(format!(
                "the response of {} has no header {name}",
                resp.request
            ))
        })?;
    world.vars.insert(args.req("var")?.to_string(), value);
    Ok(())
}

pub async fn failed_with_either(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let resp = last(world)?;
    let a: u16 = args.number("a")?;
    let b: u16 = args.number("b")?;
    if resp.code == a || resp.code == b {
        Ok(())
    } else {
        Err(StepFailure::msg(format!(
            "expected code {a} or {b}, got {}",
            resp.describe()
        )))
    }
}

pub async fn body_begins_with(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let resp = last(world)?;
    let hex = args.req("hex")?;
    let want = decode_hex(hex)?;
    let got = resp.body.as_bytes();
    if got.starts_with(&want) {
        Ok(())
    } else {
        let head: String = got
            .iter()
            .take(want.len().max(8))
            .map(|b| format!("{b:02x}"))
            .collect();
        Err(StepFailure::msg(format!(
            "the body of {} begins with {head}, not {hex}",
            resp.request
        )))
    }
}

fn decode_hex(hex: &str) -> Result<Vec<u8>, StepFailure> {
    if !hex.len().is_multiple_of(2) {
        return Err(StepFailure::msg(format!(
            "\"{hex}\" is not an even number of hex digits"
        )));
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&hex[i..i + 2], 16)
                .map_err(|_| StepFailure::msg(format!("\"{hex}\" is not hexadecimal")))
        })
        .collect()
}

pub async fn yaml_field(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let resp = last(world)?;
    let docs = parse_documents(&resp.body)
        .map_err(|e| StepFailure::msg(format!("the body of {} is not YAML: {e}", resp.request)))?;
    let [doc] = docs.as_slice() else {
        return Err(StepFailure::msg(format!(
            "the body of {} holds {} YAML documents, not one",
            resp.request,
            docs.len()
        )));
    };
    let got = jsonpath::query_string(doc, args.req("path")?)?;
    let want = args.req("value")?;
    if got == want {
        Ok(())
    } else {
        Err(StepFailure::msg(format!(
            "{} of the YAML body is \"{got}\", expected \"{want}\"",
            args.req("path")?
        )))
    }
}

/// The events of a watch response (one JSON object per line).
pub(super) fn watch_events(resp: &ApiResponse) -> Result<Vec<Value>, StepFailure> {
    resp.body
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Value>(l).map_err(|e| {
                StepFailure::msg(format!(
                    "the body of {} is not a watch stream (line {l:?}: {e})",
                    resp.request
                ))
            })
        })
        .collect()
}

pub(super) fn event_type(ev: &Value) -> &str {
    ev.get("type").and_then(Value::as_str).unwrap_or("")
}

pub(super) fn summary(events: &[Value]) -> String {
    let types: Vec<&str> = events.iter().map(event_type).collect();
    if types.is_empty() {
        "no events".into()
    } else {
        types.join(", ")
    }
}

pub async fn stream_has_event(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let resp = last(world)?;
    let events = watch_events(resp)?;
    let ty = args.req("type")?;
    let present = events.iter().any(|e| event_type(e) == ty);
    let want = args.req("op")? == "with";
    if present == want {
        Ok(())
    } else {
        Err(StepFailure::msg(format!(
            "the watch {} {} a {ty} event; it delivered {}",
            resp.request,
            if want { "lacks" } else { "has" },
            summary(&events)
        )))
    }
}

/// Why a BOOKMARK's object carries more than its resourceVersion, if it does. The object is
/// an empty one of the watched kind: only kind, apiVersion and metadata.resourceVersion may
/// hold values (serializers may write empty fields as null).
fn bookmark_extra(object: &Value) -> Option<String> {
    let Some(map) = object.as_object() else {
        return Some("its object is not a JSON object".into());
    };
    for (k, v) in map {
        match k.as_str() {
            "kind" | "apiVersion" => {}
            "metadata" => {
                let Some(meta) = v.as_object() else {
                    return Some("its metadata is not an object".into());
                };
                if meta
                    .get("resourceVersion")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    return Some("it has no metadata.resourceVersion".into());
                }
                if let Some((mk, _)) = meta
                    .iter()
                    .find(|(mk, mv)| *mk != "resourceVersion" && !is_empty(mv))
                {
                    return Some(format!("it carries metadata.{mk}"));
                }
            }
            other if !is_empty(v) => return Some(format!("it carries {other}")),
            _ => {}
        }
    }
    None
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.values().all(is_empty),
        Value::Array(a) => a.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

pub async fn bookmarks_only_carry_rv(world: &mut KubeWorld, _args: StepArgs) -> StepResult {
    let resp = last(world)?;
    let events = watch_events(resp)?;
    let bookmarks: Vec<&Value> = events
        .iter()
        .filter(|e| event_type(e) == "BOOKMARK")
        .collect();
    if bookmarks.is_empty() {
        return Err(StepFailure::msg(format!(
            "the watch {} delivered no BOOKMARK ({})",
            resp.request,
            summary(&events)
        )));
    }
    for b in bookmarks {
        let object = b.get("object").cloned().unwrap_or(Value::Null);
        if let Some(why) = bookmark_extra(&object) {
            return Err(StepFailure::msg(format!(
                "a BOOKMARK of {} carries more than a resourceVersion: {why} ({object})",
                resp.request
            )));
        }
    }
    Ok(())
}

pub async fn remember_event_rv(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let resp = last(world)?;
    let events = watch_events(resp)?;
    let ty = args.req("type")?;
    let rv = events
        .iter()
        .rev()
        .find(|e| event_type(e) == ty)
        .and_then(|e| e.pointer("/object/metadata/resourceVersion"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            StepFailure::msg(format!(
                "the watch {} delivered no {ty} event with a resourceVersion ({})",
                resp.request,
                summary(&events)
            ))
        })?;
    world.vars.insert(args.req("var")?.to_string(), rv);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_split_headers_from_the_body() {
        let m = parse_message("\nAccept: application/yaml\nImpersonate-User: bob\n\na: 1\nb: 2")
            .unwrap();
        assert_eq!(m.header("accept"), Some("application/yaml"));
        assert_eq!(m.headers.len(), 2);
        assert_eq!(m.body, "a: 1\nb: 2");
        assert_eq!(m.body_bytes().unwrap(), br#"{"a":1,"b":2}"#.to_vec());
        let err = parse_message("not a header").unwrap_err();
        assert!(err.message.contains("Name: value"), "{}", err.message);
        let raw = parse_message("Content-Type: application/yaml\n\na: 1").unwrap();
        assert_eq!(raw.body_bytes().unwrap(), b"a: 1".to_vec());
        assert!(parse_message("X: y")
            .unwrap()
            .body_bytes()
            .unwrap()
            .is_empty());
    }

    #[test]
    fn credentials_follow_the_captures() {
        let mut args = StepArgs::default();
        assert_eq!(Credentials::from_args(&args), Credentials::Runner);
        args.caps
            .insert("anon".into(), "without credentials".into());
        assert_eq!(Credentials::from_args(&args), Credentials::Anonymous);
        args.caps.insert("sa".into(), "robot".into());
        assert_eq!(
            Credentials::from_args(&args),
            Credentials::ServiceAccount("robot".into())
        );
    }

    #[test]
    fn a_bookmark_may_carry_only_its_resource_version() {
        let ok = json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"resourceVersion": "7", "creationTimestamp": null}});
        assert_eq!(bookmark_extra(&ok), None);
        let named = json!({"kind": "ConfigMap", "metadata": {"resourceVersion": "7", "name": "x"}});
        assert_eq!(bookmark_extra(&named).unwrap(), "it carries metadata.name");
        let data = json!({"metadata": {"resourceVersion": "7"}, "data": {"k": "v"}});
        assert_eq!(bookmark_extra(&data).unwrap(), "it carries data");
        let no_rv = json!({"metadata": {}});
        assert!(bookmark_extra(&no_rv).unwrap().contains("resourceVersion"));
    }

    #[test]
    fn hex_prefixes_decode() {
        assert_eq!(decode_hex("6b387300").unwrap(), b"k8s\0".to_vec());
        assert!(decode_hex("6b3").is_err());
        assert!(decode_hex("zz").is_err());
    }
}
