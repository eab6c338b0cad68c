#!/usr/bin/env python3
"""Generate `reference-cluster/wire/src/protobuf/schema.rs`, the table that drives the
Kubernetes protobuf request decoder.

Inputs (all read-only):
  * the `k8s-pb` crate sources (prost-generated from upstream's generated.proto files): every
    message, its fields' tag numbers, protobuf types, labels and message types;
  * `go_fields.tsv` beside this script (made by `go_struct_tags.py` from a kubectl 1.32 binary):
    upstream's Go struct tags, i.e. each field's JSON name, `omitempty`, `,inline` and whether
    the Go field is a pointer/slice/map (so a zero value on the wire is meaningful);
  * the `k8s-openapi` crate sources: JSON names of the types the Go table lacks (kinds of
    versions newer than 1.32, kube-aggregator), used only as a fallback.

Usage (from the repository root):
    python3 reference-cluster/tools/protobuf/gen_schema.py \
        > reference-cluster/wire/src/protobuf/schema.rs
The crate locations default to the cargo registry (`~/.cargo/registry/src/*/k8s-pb-0.9.0`,
`.../k8s-openapi-0.28.0`); override with K8S_PB_DIR / K8S_OPENAPI_DIR. The output is
rustfmt-formatted when `rustfmt` is on PATH.
"""
import glob
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def registry_dir(env, name):
    if os.environ.get(env):
        return os.environ[env]
    hits = sorted(glob.glob(os.path.expanduser("~/.cargo/registry/src/*/%s" % name)))
    if not hits:
        sys.exit("cannot find %s in the cargo registry; set %s" % (name, env))
    return hits[0]


PB_DIR = registry_dir("K8S_PB_DIR", "k8s-pb-0.9.0")
OPENAPI_DIR = registry_dir("K8S_OPENAPI_DIR", "k8s-openapi-0.28.0")

# Messages whose Go types marshal to JSON by hand-written code rather than field by field.
SPECIAL = {
    "k8s.io.apimachinery.pkg.apis.meta.v1.Time": "Time",
    "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime": "MicroTime",
    "k8s.io.apimachinery.pkg.apis.meta.v1.Duration": "Duration",
    "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1": "RawJson",
    "k8s.io.apimachinery.pkg.runtime.RawExtension": "RawExtension",
    "k8s.io.apimachinery.pkg.api.resource.Quantity": "Quantity",
    "k8s.io.apimachinery.pkg.api.resource.QuantityValue": "Quantity",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": "IntOrString",
}
for _v in ("v1", "v1beta1"):
    _p = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.%s." % _v
    SPECIAL[_p + "JSON"] = "RawJson"
    SPECIAL[_p + "JSONSchemaPropsOrArray"] = "SchemaOrArray"
    SPECIAL[_p + "JSONSchemaPropsOrBool"] = "SchemaOrBool"
    SPECIAL[_p + "JSONSchemaPropsOrStringArray"] = "SchemaOrStringArray"

# Not part of the built-in API a kube-apiserver serves (aggregated metrics servers, a test group).
EXCLUDED = ("k8s.io.metrics.", "k8s.io.apimachinery.pkg.apis.testapigroup.")

SCALARS = {"string": "Str", "bytes": "Bytes", "int32": "I32", "int64": "I64", "bool": "Bool",
           "double": "F64"}


def package_of(module_path):
    """`api/core/v1` -> `k8s.io.api.core.v1`."""
    return "k8s.io." + module_path.replace("/", ".")


def go_package_of(package):
    """`k8s.io.apiextensions_apiserver.pkg...` -> `k8s.io/apiextensions-apiserver/pkg/...`."""
    parts = package.split(".")[2:]
    parts[0] = parts[0].replace("_", "-")
    return "k8s.io/" + "/".join(parts)


def norm(name):
    """Names compared across sources: `podIPs`, `pod_ips`, `$ref`, `r#type` all agree."""
    return re.sub(r"[^a-z0-9]", "", name.lower().replace("r#", ""))


def strip_comments(text):
    return "\n".join(l for l in text.split("\n") if not l.strip().startswith("//"))


FIELD_RE = re.compile(r"#\[prost\((.*?)\)\]\s*pub\s+(r#)?(\w+)\s*:\s*(.*?),\s*(?=#\[prost|$)", re.S)


def parse_pb():
    messages = {}  # package.RustName -> dict
    resources = []  # (package, rust name, api version, kind)
    for path in glob.glob(os.path.join(PB_DIR, "src", "**", "mod.rs"), recursive=True):
        module = os.path.relpath(os.path.dirname(path), os.path.join(PB_DIR, "src"))
        if module.count("/") < 1:
            continue
        pkg = package_of(module)
        if any(pkg.startswith(p) for p in EXCLUDED):
            continue
        text = strip_comments(open(path).read())
        for m in re.finditer(r"pub struct (\w+) \{(\}|.*?\n\})", text, re.S):
            name, body = m.group(1), m.group(2)[:-1]
            fields = []
            for fm in FIELD_RE.finditer(body.strip() + "\n"):
                attr, rust, ty = fm.group(1), fm.group(3), "".join(fm.group(4).split())
                ty = ty.replace(",>", ">")
                fields.append(parse_field(module, attr, rust, ty))
            messages[pkg + "." + name] = {"package": pkg, "rust": name, "fields": fields}
        for m in re.finditer(r"impl crate::Resource for (\w+) \{(.*?)\n\}", text, re.S):
            av = re.search(r'API_VERSION: &\'static str = "([^"]*)"', m.group(2)).group(1)
            kind = re.search(r'KIND: &\'static str = "([^"]*)"', m.group(2)).group(1)
            resources.append((pkg, m.group(1), av, kind))
    return messages, resources


def parse_field(module, attr, rust, ty):
    tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
    f = {"rust": rust, "tag": tag}
    mm = re.match(r'btree_map = "string, (\w+)"', attr)
    if mm:
        f["card"] = "Map"
        kind = mm.group(1)
        if kind == "message":
            value = re.search(r"BTreeMap<::prost::alloc::string::String,(.*)>$", ty).group(1)
            f["msg"] = resolve(module, value)
        else:
            f["scalar"] = kind
        return f
    kind = attr.split(",")[0].split("=")[0].strip()
    f["card"] = "Many" if "repeated" in attr else "One"
    if kind == "message":
        inner = re.sub(r"^::core::option::Option<|^::prost::alloc::vec::Vec<", "", ty)
        inner = re.sub(r"^::prost::alloc::boxed::Box<", "", inner).rstrip(">")
        f["msg"] = resolve(module, inner)
    else:
        f["scalar"] = kind
    return f


def resolve(module, path):
    """A Rust path to a message, relative to `module`, as `package.RustName`."""
    parts = path.split("::")
    base = module.split("/")
    while parts[0] == "super":
        base = base[:-1]
        parts = parts[1:]
    return package_of("/".join(base + parts[:-1])) + "." + parts[-1]


def parse_go():
    go = {}
    for line in open(os.path.join(HERE, "go_fields.tsv")):
        if line.startswith("#") or not line.strip():
            continue
        pkg, name, tag, json_tag, kind = line.rstrip("\n").split("\t")
        go.setdefault((pkg, name.lower()), {"name": name, "fields": {}})
        go[(pkg, name.lower())]["fields"][int(tag)] = (json_tag, kind)
    return go


def parse_openapi():
    """Definition name -> {normalised rust field: json name}, over every Kubernetes version the
    crate knows (fields are only ever added, so the union is right for each)."""
    defs = {}
    versions = sorted(os.listdir(os.path.join(OPENAPI_DIR, "src")))
    versions = [v for v in versions if v.startswith("v1_")]
    for v in versions:
        for path in glob.glob(os.path.join(OPENAPI_DIR, "src", v, "**", "*.rs"), recursive=True):
            text = open(path).read()
            m = re.match(r"// Generated from definition ([\w.-]+)", text)
            if not m:
                continue
            names = defs.setdefault(m.group(1), {})
            for fm in re.finditer(r'"([^"]+)" => Field::Key_(\w+),', text):
                names.setdefault(norm(fm.group(2)), fm.group(1))
    return defs


def openapi_package(package):
    """`k8s.io.apiextensions_apiserver...` -> `io.k8s.apiextensions-apiserver...`."""
    return "io." + package.replace("k8s.io.", "k8s.", 1).replace("_", "-")


def openapi_def(package, name):
    return openapi_package(package) + "." + name


def camel(rust):
    head, *rest = rust.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def main():
    messages, resources = parse_pb()
    go = parse_go()
    openapi = parse_openapi()
    kinds = {(pkg, rust): kind for pkg, rust, _, kind in resources}

    # Proto (= Go) message names: the Rust names were re-cased by k8s-pb (`CsiDriver`).
    openapi_names = {}
    for d in openapi:
        pkg, _, name = d.rpartition(".")
        openapi_names[(pkg, name.lower())] = name
    full = {}
    for key, m in messages.items():
        pkg, rust = m["package"], m["rust"]
        g = go.get((go_package_of(pkg), rust.lower()))
        name = (g and g["name"]) or openapi_names.get((openapi_package(pkg), rust.lower())) \
            or kinds.get((pkg, rust)) or rust
        m["go"] = g
        m["name"] = pkg + "." + name
        full[key] = m["name"]
    if len(set(full.values())) != len(full):
        sys.exit("message names collide")

    order = sorted(full.values())
    index = {n: i for i, n in enumerate(order)}
    by_name = {m["name"]: m for m in messages.values()}
    warnings = []

    out = []
    for name in order:
        m = by_name[name]
        special = SPECIAL.get(name)
        if special is None and is_items_wrapper(m):
            special = "Items"
        simple = name.rpartition(".")[2]
        oa = openapi.get(openapi_def(m["package"], simple))
        rows = []
        for f in sorted(m["fields"], key=lambda f: f["tag"]):
            ty = "Msg(%d)" % index[full[f["msg"]]] if "msg" in f else SCALARS[f["scalar"]]
            json_name, emit = None, "Always"
            gf = m["go"] and m["go"]["fields"].get(f["tag"])
            if gf:
                json_tag, kind = gf
                tag_name, *opts = json_tag.split(",")
                json_name = tag_name
                if "inline" in opts:
                    emit = "Inline"
                elif kind in ("ptr", "slice", "map"):
                    emit = "Always"
                elif "omitempty" in opts:
                    emit = "OmitZero"
            if emit != "Inline" and not json_name:
                json_name = oa.get(norm(f["rust"])) if oa else None
            if emit != "Inline" and not json_name and oa is not None and "msg" in f \
                    and f["card"] == "One" and embedded_in(by_name[full[f["msg"]]], oa):
                # An embedded Go struct (`json:",inline"`) has no JSON name of its own; its
                # fields are the outer definition's.
                emit = "Inline"
            if emit != "Inline" and not json_name:
                if oa is not None and special is None:
                    warnings.append("%s.%s: not in the openapi definition" % (name, f["rust"]))
                json_name = camel(f["rust"])
            if emit == "Inline":
                json_name = ""
            rows.append("f(%d, %s, %s, %s, %s)" % (f["tag"], rust_str(json_name), ty, f["card"], emit))
        fields = "".join("\n            %s," % r for r in rows)
        out.append("    Message {\n        name: %s,\n        special: Special::%s,\n"
                   "        fields: &[%s],\n    },"
                   % (rust_str(name), special or "None", fields + "\n        " if rows else ""))

    # Options kinds (DeleteOptions) belong to every group version and are also served under
    # their own group, meta.k8s.io.
    groups = {"meta.k8s.io": "k8s.io.apimachinery.pkg.apis.meta"}
    for pkg, _, av, _ in resources:
        group = av.rpartition("/")[0] if "/" in av else ""
        prefix = pkg.rpartition(".")[0]
        if groups.setdefault(group, prefix) != prefix:
            sys.exit("group %r maps to two packages" % group)

    for w in warnings:
        print("warning: " + w, file=sys.stderr)

    src = HEADER + "pub(super) static MESSAGES: [Message; %d] = [\n%s\n];\n\n" % (len(out), "\n".join(out))
    src += ("/// API group (`\"\"` for the core group) -> protobuf package of its versions, without "
            "the version.\npub(super) static GROUPS: [(&str, &str); %d] = [\n%s\n];\n"
            % (len(groups), "\n".join("    (%s, %s)," % (rust_str(g), rust_str(p))
                                       for g, p in sorted(groups.items()))))
    try:
        src = subprocess.run(["rustfmt", "--edition", "2021"], input=src, capture_output=True,
                             text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        print("warning: rustfmt failed: %s" % e, file=sys.stderr)
    sys.stdout.write(src)


def embedded_in(inner, outer_names):
    names = [norm(f["rust"]) for f in inner["fields"]]
    return bool(names) and all(n in outer_names for n in names)


def is_items_wrapper(m):
    """Go named slice types (`Verbs`, `ExtraValue`) become one-field messages on the wire but
    plain JSON arrays."""
    f = m["fields"]
    return (len(f) == 1 and f[0]["rust"] == "items" and f[0]["card"] == "Many"
            and "scalar" in f[0] and m["go"] is None)


def rust_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


HEADER = """\
//! The protobuf schema of every Kubernetes API message, as the decoder needs it.
//!
//! @generated by `reference-cluster/tools/protobuf/gen_schema.py` from the k8s-pb crate's
//! messages, upstream's Go struct tags (`tools/protobuf/go_fields.tsv`) and k8s-openapi's JSON
//! names. Do not edit by hand; regenerate with
//! `python3 reference-cluster/tools/protobuf/gen_schema.py > reference-cluster/wire/src/protobuf/schema.rs`
//! (see `reference-cluster/tools/protobuf/README.md`).

use super::table::{f, Card::*, Emit::*, Message, Special, Ty::*};

"""

if __name__ == "__main__":
    main()
