//! kubectl 1.32 against the bundled cluster, as a user would use it.

mod support;

use std::path::Path;
use std::process::{Command, Output};

struct Kubectl<'a> {
    kubeconfig: &'a Path,
    ns: &'a str,
}

impl Kubectl<'_> {
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new("kubectl");
        cmd.env("KUBECONFIG", self.kubeconfig)
            .env("KUBECTL_EXTERNAL_DIFF", "diff -u")
            .args(["-n", self.ns])
            .args(args);
        match stdin {
            Some(input) => {
                use std::io::Write;
                cmd.stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped());
                let mut child = cmd.spawn().expect("kubectl runs");
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(input.as_bytes())
                    .unwrap();
                child.wait_with_output().unwrap()
            }
            None => cmd.output().expect("kubectl runs"),
        }
    }

    /// Runs kubectl and returns stdout; fails the test with stderr on a non-zero exit.
    fn ok(&self, args: &[&str]) -> String {
        self.ok_in(args, None)
    }

    fn ok_in(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "kubectl {} failed:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            !out.status.success(),
            "kubectl {} should fail",
            args.join(" ")
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports: [{containerPort: 80}]
        env: [{name: A, value: "1"}]
"#;

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            description: The widget's desired state.
            properties:
              size: {type: integer, minimum: 1, description: How big the widget is.}
              color: {type: string, default: blue}
"#;

#[test]
fn kubectl_works_against_the_bundled_cluster() {
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: kubectl is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cluster = support::ClusterProcess::start(dir.path());
    let kc = cluster.kubeconfig();
    let k = Kubectl {
        kubeconfig: &kc,
        ns: "default",
    };

    let version = k.ok(&["version", "-o", "json"]);
    assert!(version.contains("\"minor\": \"32\""), "{version}");

    let resources = k.ok(&["api-resources"]);
    for line in [
        "deployments",
        "deploy",
        "apps/v1",
        "customresourcedefinitions",
        "leases",
    ] {
        assert!(
            resources.contains(line),
            "api-resources lacks {line}:\n{resources}"
        );
    }
    let versions = k.ok(&["api-versions"]);
    assert!(
        versions.contains("apps/v1") && versions.contains("v1\n"),
        "{versions}"
    );

    k.ok(&["create", "namespace", "tour"]);
    let k = Kubectl {
        kubeconfig: &kc,
        ns: "tour",
    };

    // create, get in every output form
    k.ok_in(&["create", "-f", "-"], Some(DEPLOYMENT));
    let table = k.ok(&["get", "deployments"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("READY") && table.contains("web"), "{table}");
    let wide = k.ok(&["get", "deploy", "-o", "wide"]);
    assert!(
        wide.contains("CONTAINERS") && wide.contains("nginx:1.27"),
        "{wide}"
    );
    let yaml = k.ok(&["get", "deploy", "web", "-o", "yaml"]);
    assert!(
        yaml.contains("maxSurge: 25%"),
        "defaults are applied:\n{yaml}"
    );
    let json = k.ok(&["get", "deploy", "web", "-o", "json"]);
    assert!(json.contains("\"resourceVersion\""), "{json}");
    assert_eq!(
        k.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "2"
    );
    assert_eq!(
        k.ok(&["get", "deploy", "-o", "name"]).trim(),
        "deployment.apps/web"
    );
    k.ok(&["create", "configmap", "b", "--from-literal=x=1"]);
    k.ok(&[
        "create",
        "configmap",
        "a",
        "--from-literal=x=1",
        "--from-literal=q=2",
    ]);
    let sorted = k.ok(&["get", "cm", "--sort-by=.metadata.name", "-o", "name"]);
    let names: Vec<&str> = sorted
        .lines()
        .filter(|l| !l.contains("kube-root-ca"))
        .collect();
    assert_eq!(names, vec!["configmap/a", "configmap/b"], "{sorted}");
    k.ok(&["label", "cm", "a", "tier=front"]);
    assert_eq!(
        k.ok(&["get", "cm", "-l", "tier=front", "-o", "name"])
            .trim(),
        "configmap/a"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "cm",
            "--field-selector",
            "metadata.name=b",
            "-o",
            "name"
        ])
        .trim(),
        "configmap/b"
    );
    k.ok(&["annotate", "cm", "a", "note=hello"]);
    assert_eq!(
        k.ok(&[
            "get",
            "cm",
            "a",
            "-o",
            "jsonpath={.metadata.annotations.note}"
        ]),
        "hello"
    );
    let described = k.ok(&["describe", "deployment", "web"]);
    assert!(
        described.contains("Replicas:") && described.contains("nginx:1.27"),
        "{described}"
    );

    // patch: strategic (containers merged by name), merge, json
    k.ok(&[
        "patch",
        "deploy",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.28"}]}}}}"#,
    ]);
    let c = k.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].env[0].name}"]);
    assert_eq!(
        c, "nginx:1.28 A",
        "strategic merge keeps the other container fields"
    );
    k.ok(&[
        "patch",
        "cm",
        "a",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"z":"3"}}"#,
    ]);
    k.ok(&[
        "patch",
        "cm",
        "a",
        "--type",
        "json",
        "-p",
        r#"[{"op":"remove","path":"/data/x"}]"#,
    ]);
    assert_eq!(
        k.ok(&["get", "cm", "a", "-o", "jsonpath={.data}"]),
        r#"{"q":"2","z":"3"}"#
    );

    // scale
    k.ok(&["scale", "deploy", "web", "--replicas=5"]);
    assert_eq!(
        k.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "5"
    );

    // apply (client-side), diff, server-side with a conflict
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  k: v1\n";
    k.ok_in(&["apply", "-f", "-"], Some(cm));
    k.ok_in(&["apply", "-f", "-"], Some(&cm.replace("k: v1", "k: v2")));
    assert_eq!(
        k.ok(&["get", "cm", "applied", "-o", "jsonpath={.data.k}"]),
        "v2"
    );
    let diff = k.run(&["diff", "-f", "-"], Some(&cm.replace("k: v1", "k: v3")));
    assert_eq!(
        diff.status.code(),
        Some(1),
        "kubectl diff exits 1 when there is a difference: {}",
        String::from_utf8_lossy(&diff.stderr)
    );
    assert!(String::from_utf8_lossy(&diff.stdout).contains("+  k: v3"));
    let ssa = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: owned\ndata:\n  k: mine\n";
    k.ok_in(
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "alice",
            "-f",
            "-",
        ],
        Some(ssa),
    );
    let err = k.fails(
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "bob",
            "-f",
            "-",
        ],
        Some(&ssa.replace("mine", "bobs")),
    );
    assert!(err.contains("conflict") && err.contains("alice"), "{err}");
    k.ok_in(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager",
            "bob",
            "-f",
            "-",
        ],
        Some(&ssa.replace("mine", "bobs")),
    );
    assert_eq!(
        k.ok(&["get", "cm", "owned", "-o", "jsonpath={.data.k}"]),
        "bobs"
    );

    // edit through $EDITOR
    let editor = dir.path().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/q: \"2\"/q: \"edited\"/' \"$1\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = Command::new("kubectl")
        .env("KUBECONFIG", &kc)
        .env("KUBE_EDITOR", &editor)
        .args(["-n", "tour", "edit", "cm", "a"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        k.ok(&["get", "cm", "a", "-o", "jsonpath={.data.q}"]),
        "edited"
    );

    // CRD, custom resources, explain
    k.ok_in(&["apply", "-f", "-"], Some(CRD));
    k.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=30s",
    ]);
    k.ok_in(
        &["apply", "-f", "-"],
        Some("apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 3\n"),
    );
    let widgets = k.ok(&["get", "wd"]);
    assert!(
        widgets.contains("SIZE") && widgets.contains('3'),
        "{widgets}"
    );
    assert_eq!(
        k.ok(&["get", "widget", "w1", "-o", "jsonpath={.spec.color}"]),
        "blue"
    );
    let err = k.fails(
        &["apply", "-f", "-"],
        Some("apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w2\nspec:\n  size: 0\n"),
    );
    assert!(err.contains("spec.size"), "{err}");
    let explain = k.ok(&["explain", "widgets.spec"]);
    assert!(explain.contains("How big the widget is"), "{explain}");
    let explain = k.ok(&["explain", "pods.spec.containers.image"]);
    assert!(explain.contains("image"), "{explain}");

    // raw
    assert_eq!(k.ok(&["get", "--raw", "/readyz"]), "ok");
    assert!(k
        .ok(&["get", "--raw", "/metrics"])
        .contains("apiserver_request_total"));

    // delete with cascade modes and wait
    k.ok(&["delete", "cm", "b", "--cascade=orphan"]);
    k.ok(&["delete", "cm", "applied", "--cascade=foreground"]);
    k.ok(&["delete", "cm", "owned", "--cascade=background"]);
    k.ok(&["wait", "--for=delete", "cm/b", "--timeout=10s"]);
    let left = k.ok(&["get", "cm", "-o", "name"]);
    assert!(
        !left.contains("configmap/b") && !left.contains("configmap/applied"),
        "{left}"
    );
    k.ok(&[
        "delete",
        "namespace",
        "tour",
        "--wait=true",
        "--timeout=60s",
    ]);

    // Another identity: `cluster user add` writes its kubeconfig; it holds no roles yet.
    let jane_kc = dir.path().join("jane.kubeconfig");
    let added = Command::new(env!("CARGO_BIN_EXE_kubeproof"))
        .args(["--output", "json", "cluster", "user", "add", "jane"])
        .args(["--group", "dev", "--data-dir"])
        .arg(dir.path())
        .arg("--out")
        .arg(&jane_kc)
        .output()
        .unwrap();
    assert!(added.status.success(), "{added:?}");
    let printed: serde_json::Value = serde_json::from_slice(&added.stdout).unwrap();
    assert_eq!(printed["user"], "jane", "{printed}");
    let jane = Kubectl {
        kubeconfig: &jane_kc,
        ns: "default",
    };
    let whoami = jane.ok(&["auth", "whoami", "-o", "json"]);
    assert!(
        whoami.contains("\"username\": \"jane\"") && whoami.contains("\"dev\""),
        "{whoami}"
    );
    let denied = jane.fails(&["get", "pods"], None);
    assert!(
        denied.contains("User \"jane\" cannot list resource \"pods\""),
        "{denied}"
    );
}
