//! Steps for the signals a user reads when troubleshooting: which pods a Service's endpoints
//! hold (the first thing to look at when a Service "does not work").
//!
//! Endpoint addresses carry no stable order and EndpointSlices have generated names, so these
//! steps compare the set of pods behind a Service instead of positions in a list.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::library::support::{self, StepArgs, StepFailure, StepResult};
use crate::world::KubeWorld;

/// Which endpoints a step looks at: every address, or only ready / not-ready ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Readiness {
    Any,
    Ready,
    NotReady,
}

impl Readiness {
    fn parse(raw: Option<&str>) -> Readiness {
        match raw.map(str::trim) {
            Some("ready") => Readiness::Ready,
            Some("not-ready") => Readiness::NotReady,
            _ => Readiness::Any,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Readiness::Any => "",
            Readiness::Ready => "ready ",
            Readiness::NotReady => "not-ready ",
        }
    }
}

fn target_name(address: &Value) -> String {
    address
        .pointer("/targetRef/name")
        .and_then(Value::as_str)
        .map(str::to_string)
        // An address without a pod behind it (a manually managed Endpoints) is named by IP.
        .or_else(|| {
            address
                .get("ip")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default()
}

/// The pods an Endpoints object names: `addresses` are ready, `notReadyAddresses` are not.
fn endpoints_pods(endpoints: &Value, which: Readiness) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let subsets = endpoints
        .get("subsets")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for subset in &subsets {
        let lists: &[(&str, bool)] = &[("addresses", true), ("notReadyAddresses", false)];
        for (field, ready) in lists {
            let wanted = match which {
                Readiness::Any => true,
                Readiness::Ready => *ready,
                Readiness::NotReady => !*ready,
            };
            if !wanted {
                continue;
            }
            for a in subset
                .get(*field)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                out.insert(target_name(a));
            }
        }
    }
    out
}

/// The pods the EndpointSlices name. A missing `conditions.ready` means ready, as the
/// discovery API defines it for consumers.
fn slice_pods(slices: &[Value], which: Readiness) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for slice in slices {
        for ep in slice
            .get("endpoints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let ready = ep
                .pointer("/conditions/ready")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            let wanted = match which {
                Readiness::Any => true,
                Readiness::Ready => ready,
                Readiness::NotReady => !ready,
            };
            if wanted {
                out.insert(target_name(ep));
            }
        }
    }
    out
}

fn resource_version(object: &Value) -> String {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string()
}

fn show(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "none".into()
    } else {
        set.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// `Then the (Endpoints|EndpointSlices) of service "web" list (ready |not-ready )?pods "a, b"`:
/// exactly these pods (none for `""`) stand behind the Service, as `kubectl get endpoints` or
/// `kubectl get endpointslices -l kubernetes.io/service-name=web` shows them.
pub async fn service_endpoints(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let service = args.req("name")?.to_string();
    let ns = support::namespace_for(world, args.get("ns")).to_string();
    let api = args.req("api")?.to_string();
    let which = Readiness::parse(args.get("which"));
    let want: BTreeSet<String> = support::parse_groups(args.req("pods")?)
        .into_iter()
        .collect();
    let world = &*world;
    support::over_time(&args, async || {
        // Every object read, so that a mismatch can show the rest of what was there.
        let (have, seen, versions) = if api == "Endpoints" {
            let path = format!("/api/v1/namespaces/{ns}/endpoints/{service}");
            let resp = support::send(world, http::Method::GET, &path, None, Vec::new()).await?;
            match resp.code {
                200 => {
                    let doc = resp.json.clone().unwrap_or(Value::Null);
                    let rv = resource_version(&doc);
                    (endpoints_pods(&doc, which), vec![doc], rv)
                }
                // No Endpoints object at all is not "<none>": the controller has not seen
                // the Service, or the Service has no selector.
                404 => {
                    return Err(StepFailure::msg(format!(
                        "service \"{service}\" has no Endpoints object in namespace \"{ns}\""
                    )))
                }
                _ => {
                    return Err(StepFailure::msg(format!(
                        "reading the Endpoints of service \"{service}\": {}",
                        resp.describe()
                    )))
                }
            }
        } else {
            let path = format!(
                "/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3D{service}"
            );
            let resp = support::send(world, http::Method::GET, &path, None, Vec::new()).await?;
            if !resp.is_success() {
                return Err(StepFailure::msg(format!(
                    "listing the EndpointSlices of service \"{service}\": {}",
                    resp.describe()
                )));
            }
            let items = resp
                .json
                .as_ref()
                .and_then(|j| j.get("items"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if items.is_empty() {
                return Err(StepFailure::msg(format!(
                    "no EndpointSlice in namespace \"{ns}\" carries the label kubernetes.io/service-name={service}"
                )));
            }
            let rv = items
                .iter()
                .map(resource_version)
                .collect::<Vec<_>>()
                .join(", ");
            (slice_pods(&items, which), items, rv)
        };
        if have == want {
            return Ok(());
        }
        let mut msg = format!(
            "the {api} of service \"{service}\" (resourceVersion {versions}) list {}pods {}, expected {}",
            which.describe(),
            show(&have),
            show(&want)
        );
        if !matches!(which, Readiness::Any) {
            let read = |w| {
                if api == "Endpoints" {
                    endpoints_pods(&seen[0], w)
                } else {
                    slice_pods(&seen, w)
                }
            };
            msg.push_str(&format!(
                "; they list ready pods {} and not-ready pods {}",
                show(&read(Readiness::Ready)),
                show(&read(Readiness::NotReady))
            ));
        }
        Err(StepFailure::msg(msg))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn endpoints_split_ready_and_not_ready_addresses() {
        let ep = json!({"subsets": [{
            "addresses": [{"ip": "10.0.0.1", "targetRef": {"kind": "Pod", "name": "a"}}],
            "notReadyAddresses": [{"ip": "10.0.0.2", "targetRef": {"kind": "Pod", "name": "b"}}],
            "ports": [{"port": 80}],
        }]});
        assert_eq!(endpoints_pods(&ep, Readiness::Any), set(&["a", "b"]));
        assert_eq!(endpoints_pods(&ep, Readiness::Ready), set(&["a"]));
        assert_eq!(endpoints_pods(&ep, Readiness::NotReady), set(&["b"]));
        assert!(endpoints_pods(&json!({"metadata": {}}), Readiness::Any).is_empty());
    }

    #[test]
    fn slices_treat_a_missing_ready_condition_as_ready() {
        let slices = vec![
            json!({"endpoints": [
                {"addresses": ["10.0.0.1"], "conditions": {"ready": true}, "targetRef": {"name": "a"}},
                {"addresses": ["10.0.0.2"], "conditions": {"ready": false}, "targetRef": {"name": "b"}},
            ]}),
            json!({"endpoints": [{"addresses": ["10.0.0.3"], "targetRef": {"name": "c"}}]}),
            json!({"endpoints": null}),
        ];
        assert_eq!(slice_pods(&slices, Readiness::Ready), set(&["a", "c"]));
        assert_eq!(slice_pods(&slices, Readiness::NotReady), set(&["b"]));
        assert_eq!(slice_pods(&slices, Readiness::Any), set(&["a", "b", "c"]));
    }

    #[test]
    fn readiness_words_parse() {
        assert_eq!(Readiness::parse(Some("ready ")), Readiness::Ready);
        assert_eq!(Readiness::parse(Some("not-ready ")), Readiness::NotReady);
        assert_eq!(Readiness::parse(None), Readiness::Any);
        assert_eq!(show(&BTreeSet::new()), "none");
    }
}
