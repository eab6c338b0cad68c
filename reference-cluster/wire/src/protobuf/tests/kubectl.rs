//! Bodies captured from kubectl v1.32.5 talking to a loopback listener; the expected JSON is
//! `kubectl ... --dry-run=client -o json` for the same command (the object as a JSON client
//! sends it) without its `creationTimestamp: null` and empty `{}` structs, which Go's JSON
//! writes for zero non-pointer structs and we leave for the server to default.

use serde_json::json;

use super::hex;
use crate::protobuf::decode_request;

fn decoded(body: &str) -> serde_json::Value {
    decode_request(&hex(body)).unwrap_or_else(|e| panic!("did not decode: {e}"))
}

/// `kubectl create namespace demo`
#[test]
fn namespace() {
    let body = concat!(
        "6b3873000a0f0a02763112094e616d657370616365121c0a140a0464656d6f12001a0022002a003200380042",
        "0012001a020a001a002200",
    );
    assert_eq!(
        decoded(body),
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": "demo"
            }
        })
    );
}

/// `kubectl create deployment web --image=nginx --replicas=2`
#[test]
fn deployment() {
    let body = concat!(
        "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412ab010a1f0a0377656212001a0022002a",
        "003200380042005a0a0a036170701203776562127a0802120c0a0a0a0361707012037765621a600a1c0a0012",
        "001a0022002a003200380042005a0a0a036170701203776562124012220a056e67696e7812056e67696e782a",
        "0042006a007200800100880100900100a201001a00320042004a0052005800600068008201008a01009a0100",
        "c2010022020a00280038001a0c0800100018002000280038001a002200",
    );
    assert_eq!(
        decoded(body),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "labels": {
                    "app": "web"
                }
            },
            "spec": {
                "replicas": 2,
                "selector": {
                    "matchLabels": {
                        "app": "web"
                    }
                },
                "template": {
                    "metadata": {
                        "labels": {
                            "app": "web"
                        }
                    },
                    "spec": {
                        "containers": [
                            {
                                "name": "nginx",
                                "image": "nginx"
                            }
                        ]
                    }
                }
            }
        })
    );
}

/// `kubectl create deployment zero --image=nginx --replicas=0`
#[test]
fn deployment_with_zero_replicas() {
    let body = concat!(
        "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412af010a210a047a65726f12001a002200",
        "2a003200380042005a0b0a0361707012047a65726f127c0800120d0a0b0a0361707012047a65726f1a610a1d",
        "0a0012001a0022002a003200380042005a0b0a0361707012047a65726f124012220a056e67696e7812056e67",
        "696e782a0042006a007200800100880100900100a201001a00320042004a0052005800600068008201008a01",
        "009a0100c2010022020a00280038001a0c0800100018002000280038001a002200",
    );
    assert_eq!(
        decoded(body),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "zero",
                "labels": {
                    "app": "zero"
                }
            },
            "spec": {
                "replicas": 0,
                "selector": {
                    "matchLabels": {
                        "app": "zero"
                    }
                },
                "template": {
                    "metadata": {
                        "labels": {
                            "app": "zero"
                        }
                    },
                    "spec": {
                        "containers": [
                            {
                                "name": "nginx",
                                "image": "nginx"
                            }
                        ]
                    }
                }
            }
        })
    );
}

/// `kubectl create configmap c --from-literal=a=1`
#[test]
fn configmap() {
    let body = concat!(
        "6b3873000a0f0a0276311209436f6e6669674d6170121b0a110a016312001a0022002a003200380042001206",
        "0a01611201311a002200",
    );
    assert_eq!(
        decoded(body),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "c"
            },
            "data": {
                "a": "1"
            }
        })
    );
}

/// `kubectl create secret generic s --from-literal=p=q`
#[test]
fn secret() {
    let body = concat!(
        "6b3873000a0c0a0276311206536563726574121d0a110a017312001a0022002a0032003800420012060a0170",
        "1201711a001a002200",
    );
    assert_eq!(
        decoded(body),
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "s"
            },
            "data": {
                "p": "cQ=="
            }
        })
    );
}

/// `kubectl create service clusterip svc --tcp=80:8080`
#[test]
fn service() {
    let body = concat!(
        "6b3873000a0d0a02763112075365727669636512690a1f0a0373766312001a0022002a003200380042005a0a",
        "0a03617070120373766312420a1b0a0738302d38303830120354435018502207080010903f1a002800120a0a",
        "0361707012037376631a002209436c757374657249503a00420052005a00600068001a020a001a002200",
    );
    assert_eq!(
        decoded(body),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "svc",
                "labels": {
                    "app": "svc"
                }
            },
            "spec": {
                "ports": [
                    {
                        "name": "80-8080",
                        "protocol": "TCP",
                        "port": 80,
                        "targetPort": 8080
                    }
                ],
                "selector": {
                    "app": "svc"
                },
                "type": "ClusterIP"
            }
        })
    );
}

/// `kubectl create job j --image=busybox -- echo hi`
#[test]
fn job() {
    let body = concat!(
        "6b3873000a0f0a0862617463682f763112034a6f621282010a110a016a12001a0022002a0032003800420012",
        "6332610a100a0012001a0022002a00320038004200124d122a0a016a120762757379626f781a046563686f1a",
        "0268692a0042006a007200800100880100900100a201001a054e65766572320042004a005200580060006800",
        "8201008a01009a0100c201001a082000280030003a001a002200",
    );
    assert_eq!(
        decoded(body),
        json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": "j"
            },
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "j",
                                "image": "busybox",
                                "command": [
                                    "echo",
                                    "hi"
                                ]
                            }
                        ],
                        "restartPolicy": "Never"
                    }
                }
            }
        })
    );
}

/// `kubectl auth can-i create pods`
#[test]
fn self_subject_access_review() {
    let body = concat!(
        "6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f7631121753656c665375626a656374",
        "416363657373526576696577123c0a100a0012001a0022002a00320038004200121e0a1c0a0464656d6f1206",
        "6372656174651a0022002a04706f647332003a001a08080012001a0020001a002200",
    );
    assert_eq!(
        decoded(body),
        json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "namespace": "demo",
                    "verb": "create",
                    "resource": "pods"
                }
            },
            "status": {
                "allowed": false
            }
        })
    );
}

/// `kubectl auth whoami`
#[test]
fn self_subject_review() {
    let body = concat!(
        "6b3873000a2d0a1861757468656e7469636174696f6e2e6b38732e696f2f7631121153656c665375626a6563",
        "74526576696577121a0a100a0012001a0022002a0032003800420012060a040a0012001a002200",
    );
    assert_eq!(
        decoded(body),
        json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "SelfSubjectReview"
        })
    );
}

/// `kubectl create token sa1 --duration=1h`
#[test]
fn token_request() {
    let body = concat!(
        "6b3873000a280a1861757468656e7469636174696f6e2e6b38732e696f2f7631120c546f6b656e5265717565",
        "7374121d0a100a0012001a0022002a00320038004200120320901c1a040a0012001a002200",
    );
    assert_eq!(
        decoded(body),
        json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "expirationSeconds": 3600
            },
            "status": {
                "token": "",
                "expirationTimestamp": null
            }
        })
    );
}

/// `kubectl create ingress ing --rule=foo.com/bar=svc:80`
#[test]
fn ingress() {
    let body = concat!(
        "6b3873000a1f0a146e6574776f726b696e672e6b38732e696f2f76311207496e677265737312480a130a0369",
        "6e6712001a0022002a00320038004200122d1a2b0a07666f6f2e636f6d12200a1e0a1c0a042f626172120d22",
        "0b0a0373766312040a0010501a0545786163741a020a001a002200",
    );
    assert_eq!(
        decoded(body),
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {
                "name": "ing"
            },
            "spec": {
                "rules": [
                    {
                        "host": "foo.com",
                        "http": {
                            "paths": [
                                {
                                    "path": "/bar",
                                    "backend": {
                                        "service": {
                                            "name": "svc",
                                            "port": {
                                                "number": 80
                                            }
                                        }
                                    },
                                    "pathType": "Exact"
                                }
                            ]
                        }
                    }
                ]
            }
        })
    );
}

/// `kubectl create pdb pdb --selector=app=x --min-available=50%`
#[test]
fn pod_disruption_budget() {
    let body = concat!(
        "6b3873000a200a09706f6c6963792f76311213506f6444697372757074696f6e427564676574123a0a130a03",
        "70646212001a0022002a0032003800420012170a09080110001a03353025120a0a080a036170701201781a0a",
        "080018002000280030001a002200",
    );
    assert_eq!(
        decoded(body),
        json!({
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {
                "name": "pdb"
            },
            "spec": {
                "minAvailable": "50%",
                "selector": {
                    "matchLabels": {
                        "app": "x"
                    }
                }
            },
            "status": {
                "disruptionsAllowed": 0,
                "currentHealthy": 0,
                "desiredHealthy": 0,
                "expectedPods": 0
            }
        })
    );
}
