//! Content negotiation: which representation the client asked for in `Accept`.
//! Upstream lists alternatives in preference order; we serve the first one we support.

/// The representation of a response body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum As {
    /// The object itself (JSON).
    Object,
    /// `meta.k8s.io/v1 Table` (`kubectl get`).
    Table,
    /// `meta.k8s.io/v1 PartialObjectMetadata(List)`.
    Metadata,
    /// `apidiscovery.k8s.io/v2 APIGroupDiscoveryList`.
    DiscoveryV2,
    /// `apidiscovery.k8s.io/v2beta1 APIGroupDiscoveryList`.
    DiscoveryV2Beta1,
}

/// Whether the client wants YAML rather than JSON.
pub fn wants_yaml(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .map(|m| m.trim().starts_with("application/yaml"))
        .unwrap_or(false)
}

/// Whether Kubernetes protobuf is the only encoding the client accepts. Clients that also
/// accept JSON (client-go's typed clients send `protobuf,json`) keep getting JSON, which they
/// read as well as upstream's protobuf answer.
pub fn wants_only_protobuf(accept: &str) -> bool {
    let mut media = accept
        .split(',')
        .map(|alt| alt.split(';').next().unwrap_or("").trim());
    media.clone().next() == Some(super::protobuf::MEDIA_TYPE)
        && media.all(|m| m == super::protobuf::MEDIA_TYPE)
}

pub fn negotiate(accept: &str) -> As {
    for alt in accept.split(',') {
        let mut params = alt.split(';').map(str::trim);
        let media = params.next().unwrap_or("");
        if !(media == "application/json" || media == "*/*" || media.is_empty()) {
            // Protobuf and other media types: we answer JSON, which every client also accepts.
            continue;
        }
        let mut as_ = None;
        let mut version = None;
        let mut group = None;
        for p in params {
            if let Some((k, v)) = p.split_once('=') {
                match k {
                    "as" => as_ = Some(v),
                    "v" => version = Some(v),
                    "g" => group = Some(v),
                    _ => {}
                }
            }
        }
        match (as_, group, version) {
            (None, _, _) => return As::Object,
            (Some("Table"), Some("meta.k8s.io"), Some("v1" | "v1beta1")) => return As::Table,
            (
                Some("PartialObjectMetadata" | "PartialObjectMetadataList"),
                Some("meta.k8s.io"),
                Some("v1" | "v1beta1"),
            ) => return As::Metadata,
            (Some("APIGroupDiscoveryList"), Some("apidiscovery.k8s.io"), Some("v2")) => {
                return As::DiscoveryV2
            }
            (Some("APIGroupDiscoveryList"), Some("apidiscovery.k8s.io"), Some("v2beta1")) => {
                return As::DiscoveryV2Beta1
            }
            _ => continue,
        }
    }
    As::Object
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_first_supported_alternative() {
        let kubectl_get = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(negotiate(kubectl_get), As::Table);
        let discovery = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(negotiate(discovery), As::DiscoveryV2);
        assert_eq!(
            negotiate("application/vnd.kubernetes.protobuf,application/json"),
            As::Object
        );
        assert_eq!(negotiate(""), As::Object);
        assert!(wants_only_protobuf("application/vnd.kubernetes.protobuf"));
        assert!(!wants_only_protobuf(
            "application/vnd.kubernetes.protobuf,application/json"
        ));
        assert!(!wants_only_protobuf("application/json"));
        assert!(!wants_only_protobuf(""));
        assert_eq!(
            negotiate("application/json;as=Unknown;g=x;v=y,application/json"),
            As::Object
        );
    }
}
