//! Authorization benchmark: the node fleet's impersonation checks (`impersonate` on
//! `users/system:node:<n>` and `groups/system:nodes`, through the API server's `Node,RBAC`
//! chain) with the bootstrap policy plus the fleet's ClusterRole naming every node, with and
//! without the per-identity grants cache. "uncached" is the chain over the same RBAC index with
//! its cache hidden, i.e. the walk every request made before the cache: every ClusterRoleBinding,
//! then a linear scan of the role's resourceNames.
//!
//! `cargo bench -p kubeproof-refcluster --bench rbac` (plain `main`, no bench harness).
//! Knobs: `RBAC_BENCH_NODES` (comma-separated fleet sizes, default `100,1000,5000`),
//! `RBAC_BENCH_CHECKS` (impersonations timed per run, default 20000).

use std::sync::Arc;
use std::time::Instant;

use kubeproof_refcluster::apiserver::authz::Authorizer;
use kubeproof_refcluster::apiserver::AuthorizationMode;
use kubeproof_refcluster::node::api::{fleet_rbac, FLEET_USER};
use kubeproof_refcluster::security::authorizer::{
    self, Authorize, NodeAuthorizer, PrivilegedGroups, RbacAuthorizer,
};
use kubeproof_refcluster::security::bootstrap;
use kubeproof_refcluster::security::node_authorizer::NodeGraph;
use kubeproof_refcluster::security::rbac::{
    impersonate, Binding, GrantsCache, ImpersonationRequest, RbacObjects, Role,
};
use kubeproof_refcluster::security::UserInfo;
use serde_json::Value;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// The server's RBAC index with its grants cache hidden.
struct Uncached<'a>(&'a dyn RbacObjects);

impl RbacObjects for Uncached<'_> {
    fn cluster_role(&self, name: &str) -> Option<Arc<Role>> {
        self.0.cluster_role(name)
    }
    fn role(&self, namespace: &str, name: &str) -> Option<Arc<Role>> {
        self.0.role(namespace, name)
    }
    fn cluster_role_bindings(&self) -> Vec<Arc<Binding>> {
        self.0.cluster_role_bindings()
    }
    fn role_bindings(&self, namespace: &str) -> Vec<Arc<Binding>> {
        self.0.role_bindings(namespace)
    }
    fn grants_cache(&self) -> Option<&GrantsCache> {
        None
    }
}

/// Storage keys as the API server's RBAC informer hands them in.
fn keyed(objects: Vec<Value>) -> Vec<(String, Value)> {
    objects
        .into_iter()
        .filter_map(|o| {
            let plural = match o["kind"].as_str()? {
                "ClusterRole" => "clusterroles",
                "ClusterRoleBinding" => "clusterrolebindings",
                _ => return None,
            };
            let name = o.pointer("/metadata/name")?.as_str()?.to_string();
            Some((format!("/registry/{plural}/{name}"), o))
        })
        .collect()
}

/// Nanoseconds per impersonation over `requests`, repeated to `checks`.
fn time(
    authz: &dyn Authorize,
    fleet: &UserInfo,
    requests: &[ImpersonationRequest],
    checks: usize,
) -> f64 {
    let started = Instant::now();
    for i in 0..checks {
        let req = &requests[i % requests.len()];
        let user = impersonate(fleet, req, authz).expect("the fleet may impersonate its nodes");
        std::hint::black_box(user);
    }
    started.elapsed().as_nanos() as f64 / checks as f64
}

fn main() {
    let sizes: Vec<usize> = env_or("RBAC_BENCH_NODES", "100,1000,5000")
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let checks: usize = env_or("RBAC_BENCH_CHECKS", "20000")
        .parse()
        .unwrap_or(20000);
    let fleet = UserInfo::new(FLEET_USER, &["system:authenticated"]);
    println!("impersonation checks of the node fleet, Node,RBAC chain, {checks} per run");
    println!(
        "{:>8} {:>16} {:>16} {:>9}",
        "nodes", "uncached ns/op", "cached ns/op", "speed-up"
    );
    for nodes in sizes {
        let names: Vec<String> = (0..nodes).map(|i| format!("node-{i}")).collect();
        let (role, binding) = fleet_rbac(names.iter().map(String::as_str));
        let mut objects = bootstrap::all();
        objects.extend([role, binding]);
        let server = Authorizer::new(&[AuthorizationMode::Node, AuthorizationMode::Rbac]);
        server.rbac.reset(&keyed(objects), 1);
        let requests: Vec<ImpersonationRequest> = names
            .iter()
            .map(|n| ImpersonationRequest {
                user: format!("system:node:{n}"),
                groups: vec!["system:nodes".into()],
                ..Default::default()
            })
            .collect();

        let index = server.rbac.read();
        let uncached_rbac = Uncached(&*index);
        let graph = NodeGraph::default();
        let node_rules = bootstrap::node_rules();
        let node = NodeAuthorizer {
            graph: &graph,
            rules: &node_rules,
        };
        let rbac = RbacAuthorizer(&uncached_rbac);
        struct Chain<'a>(Vec<&'a dyn Authorize>);
        impl Authorize for Chain<'_> {
            fn decide(
                &self,
                attrs: &kubeproof_refcluster::security::rbac::Attributes,
                fs: Option<&str>,
            ) -> kubeproof_refcluster::security::rbac::Decision {
                authorizer::union_decide(&self.0, attrs, fs)
            }
            fn rules_for(&self, user: &UserInfo, ns: &str) -> authorizer::UserRules {
                authorizer::union_rules_for(&self.0, user, ns)
            }
        }
        let uncached = Chain(vec![&PrivilegedGroups, &node, &rbac]);
        let before = time(&uncached, &fleet, &requests, checks);
        drop(uncached);
        drop(index);
        // Warm the cache once, as the running server is after its first request.
        time(&server, &fleet, &requests, 1);
        let after = time(&server, &fleet, &requests, checks);
        println!(
            "{nodes:>8} {before:>16.0} {after:>16.0} {:>8.1}x",
            before / after
        );
    }
}
