//! Resolving the kind names people write in steps (`configmap`, `ConfigMaps`, `cm`,
//! `widgets.example.com`) and the `apiVersion`/`kind` of manifests to REST resources, through
//! the target's discovery documents, so built-ins and CRDs work alike.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Client;
use tokio::sync::RwLock;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceInfo {
    /// Empty for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub namespaced: bool,
    pub verbs: Vec<String>,
    /// Whether `version` is the group's preferred version.
    pub preferred: bool,
}

impl ResourceInfo {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    fn prefix(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// `/api/v1/namespaces/ns/configmaps`, or the cluster-wide list path when `ns` is `None`.
    pub fn collection_path(&self, ns: Option<&str>) -> String {
        match (self.namespaced, ns) {
            (true, Some(ns)) => format!("{}/namespaces/{}/{}", self.prefix(), ns, self.plural),
            _ => format!("{}/{}", self.prefix(), self.plural),
        }
    }

    pub fn object_path(&self, ns: Option<&str>, name: &str) -> String {
        format!("{}/{}", self.collection_path(ns), name)
    }

    /// Does a step's kind word name this resource?
    fn answers_to(&self, word: &str) -> bool {
        let w = word.to_ascii_lowercase();
        let (name, group) = match w.split_once('.') {
            Some((n, g)) => (n.to_string(), Some(g.to_string())),
            None => (w.clone(), None),
        };
        if let Some(g) = group {
            // `deployments.apps`, `widgets.example.com`, `deployments.v1.apps`
            let g_ok = g == self.group || g == format!("{}.{}", self.version, self.group);
            if !g_ok {
                return false;
            }
        }
        name == self.plural
            || name == self.singular
            || name == self.kind.to_ascii_lowercase()
            || self.short_names.contains(&name)
    }
}

/// A discovery cache shared by all scenarios of a run.
#[derive(Clone)]
pub struct Resolver {
    client: Client,
    cache: Arc<RwLock<Cache>>,
}

#[derive(Default)]
struct Cache {
    resources: Vec<ResourceInfo>,
    fetched: Option<Instant>,
}

/// How long a kind that is not (yet) served is looked for: a CRD's resource appears a moment
/// after the CRD is created.
const NEW_KIND_WAIT: Duration = Duration::from_secs(10);

impl Resolver {
    pub fn new(client: Client) -> Resolver {
        Resolver {
            client,
            cache: Arc::new(RwLock::new(Cache::default())),
        }
    }

    /// The resource a step's kind word names.
    pub async fn by_word(&self, word: &str) -> anyhow::Result<ResourceInfo> {
        self.find(|r| r.answers_to(word))
            .await
            .ok_or_else(|| anyhow::anyhow!("the server has no resource type \"{word}\""))
    }

    /// The resource serving `apiVersion`/`kind` of a manifest.
    pub async fn by_kind(&self, api_version: &str, kind: &str) -> anyhow::Result<ResourceInfo> {
        self.find(|r| r.api_version() == api_version && r.kind == kind)
            .await
            .ok_or_else(|| {
                anyhow::anyhow!("the server does not serve kind {kind} in {api_version}")
            })
    }

    async fn find(&self, pred: impl Fn(&ResourceInfo) -> bool) -> Option<ResourceInfo> {
        let deadline = Instant::now() + NEW_KIND_WAIT;
        loop {
            {
                let cache = self.cache.read().await;
                if cache.fetched.is_some() {
                    let mut hits: Vec<&ResourceInfo> =
                        cache.resources.iter().filter(|r| pred(r)).collect();
                    // Core before groups (discovery order), preferred versions first: the
                    // same rule kubectl uses for an unqualified name.
                    hits.sort_by_key(|r| !r.preferred);
                    if let Some(r) = hits.first() {
                        return Some((*r).clone());
                    }
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            self.refresh().await;
            let cache = self.cache.read().await;
            if cache.resources.iter().any(&pred) {
                continue;
            }
            drop(cache);
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Re-reads discovery, unless another scenario just did.
    pub async fn refresh(&self) {
        let mut cache = self.cache.write().await;
        if cache
            .fetched
            .is_some_and(|t| t.elapsed() < Duration::from_millis(200))
        {
            return;
        }
        match discover(&self.client).await {
            Ok(r) => {
                cache.resources = r;
                cache.fetched = Some(Instant::now());
            }
            Err(e) => tracing::warn!("discovery failed: {e}"),
        }
    }
}

pub async fn discover(client: &Client) -> anyhow::Result<Vec<ResourceInfo>> {
    let mut out = Vec::new();
    let core = client.list_core_api_resources("v1").await?;
    push_list(&mut out, "", "v1", true, core);
    let groups = client.list_api_groups().await?;
    for g in groups.groups {
        let preferred = g.preferred_version.as_ref().map(|p| p.version.clone());
        for v in &g.versions {
            let is_pref = preferred.as_deref() == Some(v.version.as_str());
            match client.list_api_group_resources(&v.group_version).await {
                Ok(list) => push_list(&mut out, &g.name, &v.version, is_pref, list),
                // An unavailable aggregated API must not hide everything else.
                Err(e) => tracing::debug!("discovery of {} failed: {e}", v.group_version),
            }
        }
    }
    Ok(out)
}

fn push_list(
    out: &mut Vec<ResourceInfo>,
    group: &str,
    version: &str,
    preferred: bool,
    list: k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList,
) {
    for r in list.resources {
        if r.name.contains('/') {
            continue; // subresources are reached through their parent
        }
        out.push(ResourceInfo {
            group: group.to_string(),
            version: version.to_string(),
            singular: if r.singular_name.is_empty() {
                r.kind.to_ascii_lowercase()
            } else {
                r.singular_name.clone()
            },
            kind: r.kind,
            plural: r.name,
            short_names: r.short_names.unwrap_or_default(),
            namespaced: r.namespaced,
            verbs: r.verbs,
            preferred,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm() -> ResourceInfo {
        ResourceInfo {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
            singular: "configmap".into(),
            short_names: vec!["cm".into()],
            namespaced: true,
            verbs: vec![],
            preferred: true,
        }
    }

    #[test]
    fn words_resolve_case_insensitively_by_any_name() {
        let r = cm();
        for w in ["configmap", "ConfigMap", "configmaps", "cm", "CM"] {
            assert!(r.answers_to(w), "{w}");
        }
        assert!(!r.answers_to("configmaps.apps"));
        let d = ResourceInfo {
            group: "apps".into(),
            kind: "Deployment".into(),
            plural: "deployments".into(),
            singular: "deployment".into(),
            short_names: vec!["deploy".into()],
            ..cm()
        };
        assert!(d.answers_to("deployments.apps"));
        assert!(d.answers_to("deploy"));
        assert!(d.answers_to("deployment.v1.apps"));
    }

    #[test]
    fn paths_follow_the_group_and_scope() {
        let r = cm();
        assert_eq!(
            r.object_path(Some("ns"), "a"),
            "/api/v1/namespaces/ns/configmaps/a"
        );
        assert_eq!(r.collection_path(None), "/api/v1/configmaps");
        let crd = ResourceInfo {
            group: "apiextensions.k8s.io".into(),
            kind: "CustomResourceDefinition".into(),
            plural: "customresourcedefinitions".into(),
            namespaced: false,
            ..cm()
        };
        assert_eq!(
            crd.object_path(Some("ignored"), "x"),
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/x"
        );
        assert_eq!(crd.api_version(), "apiextensions.k8s.io/v1");
    }
}
