//! The shape of the generated schema ([`super::schema`]) and lookups into it.

use super::schema::{GROUPS, MESSAGES};

/// One protobuf message of the Kubernetes API.
#[derive(Debug)]
pub struct Message {
    /// Fully qualified protobuf name, e.g. `k8s.io.api.apps.v1.Deployment`.
    pub name: &'static str,
    pub special: Special,
    /// Sorted by tag.
    pub fields: &'static [Field],
}

/// Messages whose Go types have their own JSON form instead of one key per field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    None,
    /// `metav1.Time`: seconds → RFC 3339, second precision; the empty message is `null`.
    Time,
    /// `metav1.MicroTime`: RFC 3339 with microseconds.
    MicroTime,
    /// `metav1.Duration`: nanoseconds → Go duration string (`1h0m0s`).
    Duration,
    /// `resource.Quantity`: its canonical string.
    Quantity,
    /// `intstr.IntOrString`: a number or a string.
    IntOrString,
    /// `{raw: bytes}` holding JSON (`FieldsV1`, apiextensions `JSON`).
    RawJson,
    /// `runtime.RawExtension`: JSON, or a nested Kubernetes protobuf object.
    RawExtension,
    /// A Go named slice (`Verbs`, `ExtraValue`): a JSON array of its `items`.
    Items,
    /// apiextensions `JSONSchemaPropsOrArray`: the array if non-empty, else the schema.
    SchemaOrArray,
    /// apiextensions `JSONSchemaPropsOrBool`: the schema if present, else the bool.
    SchemaOrBool,
    /// apiextensions `JSONSchemaPropsOrStringArray`: the strings if non-empty, else the schema.
    SchemaOrStringArray,
}

#[derive(Debug)]
pub struct Field {
    pub tag: u32,
    /// The JSON key (empty for [`Emit::Inline`]).
    pub json: &'static str,
    pub ty: Ty,
    pub card: Card,
    pub emit: Emit,
}

/// Protobuf value types the Kubernetes API uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Str,
    Bytes,
    I32,
    I64,
    Bool,
    F64,
    /// Index into the message table.
    Msg(u16),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Card {
    One,
    Many,
    /// `map<string, ty>`.
    Map,
}

/// When a decoded field appears in the JSON, mirroring Go's `encoding/json` over the Go struct
/// that upstream's protobuf decoder fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emit {
    /// Whenever it is on the wire: Go pointers, slices and maps (where `0`/`false` is a real
    /// value, e.g. `replicas: 0`), non-`omitempty` fields, and types we know no Go tags for.
    Always,
    /// A non-pointer `omitempty` field: the Go encoder writes it even when zero, but its JSON
    /// leaves a zero out, so we do too (an empty nested struct included, which the server
    /// defaults the same way).
    OmitZero,
    /// An embedded struct (`json:",inline"`): its fields become the parent's.
    Inline,
}

/// Shorthand the generated table is written with.
pub(super) const fn f(tag: u32, json: &'static str, ty: Ty, card: Card, emit: Emit) -> Field {
    Field {
        tag,
        json,
        ty,
        card,
        emit,
    }
}

pub fn message(index: u16) -> &'static Message {
    &MESSAGES[usize::from(index)]
}

/// The message of a fully qualified protobuf name.
pub fn message_named(name: &str) -> Option<u16> {
    let i = MESSAGES.binary_search_by(|m| m.name.cmp(name)).ok()?;
    u16::try_from(i).ok()
}

/// The message of an object's `apiVersion` and `kind`. Kinds of `meta.k8s.io` (DeleteOptions)
/// are accepted under every group version, as upstream registers them there.
pub fn message_for_kind(api_version: &str, kind: &str) -> Option<u16> {
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    if version.is_empty() || kind.is_empty() || version.contains('.') || kind.contains('.') {
        return None;
    }
    let own = GROUPS
        .iter()
        .find(|(g, _)| *g == group)
        .and_then(|(_, pkg)| message_named(&format!("{pkg}.{version}.{kind}")));
    own.or_else(|| {
        GROUPS.iter().find(|(g, _)| *g == group)?;
        message_named(&format!("k8s.io.apimachinery.pkg.apis.meta.v1.{kind}"))
            .filter(|_| kind.ends_with("Options"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_for_binary_search() {
        assert!(MESSAGES.windows(2).all(|w| w[0].name < w[1].name));
        for m in MESSAGES.iter() {
            assert!(
                m.fields.windows(2).all(|w| w[0].tag < w[1].tag),
                "{} fields are not sorted by tag",
                m.name
            );
        }
    }

    #[test]
    fn every_message_reference_is_in_range() {
        for m in MESSAGES.iter() {
            for f in m.fields {
                if let Ty::Msg(i) = f.ty {
                    assert!(usize::from(i) < MESSAGES.len(), "{}.{}", m.name, f.json);
                }
            }
        }
    }

    #[test]
    fn kinds_resolve_to_their_messages() {
        let name = |av, k| message_for_kind(av, k).map(|i| message(i).name);
        assert_eq!(
            name("v1", "Namespace"),
            Some("k8s.io.api.core.v1.Namespace")
        );
        assert_eq!(
            name("apps/v1", "Deployment"),
            Some("k8s.io.api.apps.v1.Deployment")
        );
        assert_eq!(
            name("policy/v1", "Eviction"),
            Some("k8s.io.api.policy.v1.Eviction")
        );
        assert_eq!(
            name("storage.k8s.io/v1", "CSIDriver"),
            Some("k8s.io.api.storage.v1.CSIDriver")
        );
        assert_eq!(
            name("apps/v1", "DeleteOptions"),
            Some("k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions")
        );
        assert_eq!(
            name("meta.k8s.io/v1", "DeleteOptions"),
            Some("k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions")
        );
        assert_eq!(name("example.com/v1", "Widget"), None);
        assert_eq!(name("v1", "ObjectMeta.x"), None);
        assert_eq!(name("apps/v1", "Status"), None);
    }
}
