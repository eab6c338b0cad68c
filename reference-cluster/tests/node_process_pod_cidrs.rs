//! Two process-runtime clusters running at once on one host: their pods get addresses from
//! distinct ranges (each cluster claims its own host-wide, see PROCESS.md "Pod addresses"), so
//! servers in both bind without colliding. Without busybox the test prints why and returns.

#[path = "node_support/process.rs"]
mod process_support;
#[path = "node_support/mod.rs"]
mod support;

use kubeproof_refcluster::node::ipam::Cidr;
use serde_json::json;

/// The podCIDR of the cluster's node-0.
async fn block(env: &process_support::Env) -> Cidr {
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(env.client.clone());
    let node = nodes.get("node-0").await.unwrap();
    Cidr::parse(&node.spec.unwrap().pod_cidr.unwrap()).unwrap()
}

async fn pod_ip(env: &process_support::Env) -> String {
    env.create(
        "server",
        json!({"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}),
    )
    .await;
    env.running("server").await;
    let pod = env.pods().get("server").await.unwrap();
    pod.status.unwrap().pod_ip.expect("a pod IP")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clusters_on_one_host_hand_out_distinct_pod_addresses() {
    let Some(a) = process_support::start_or_skip().await else {
        return;
    };
    let b = process_support::start().await;
    let (ip_a, ip_b) = (pod_ip(&a).await, pod_ip(&b).await);
    assert_ne!(ip_a, ip_b);
    let (block_a, block_b) = (block(&a).await, block(&b).await);
    assert_ne!(
        block_a, block_b,
        "each cluster's node-0 has its own podCIDR"
    );
    for (ip, block) in [(&ip_a, block_a), (&ip_b, block_b)] {
        let ip: std::net::Ipv4Addr = ip.parse().unwrap();
        let base = u32::from(block.base);
        assert!(
            u32::from(ip) >= base && u64::from(u32::from(ip) - base) < block.size(),
            "{ip} in {block}"
        );
        assert_eq!(ip.octets()[0], 127);
    }
    a.finish().await;
    b.finish().await;
}
