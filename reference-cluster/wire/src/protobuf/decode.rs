//! Protobuf message → JSON, driven by the generated schema table.
//!
//! The JSON mirrors what Go's `encoding/json` writes for the struct upstream's protobuf decoder
//! fills, i.e. what a JSON client would have sent for the same object.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Map, Number, Value};

use super::go_format;
use super::table::{self, Card, Emit, Field, Message, Special, Ty};
use super::wire::{self, Reader};

/// Deepest nesting of messages accepted. Real objects stay far below it (a CRD schema nests
/// two messages per level); it keeps hostile input from exhausting the stack.
pub const MAX_DEPTH: usize = 100;

/// A decoding error and the JSON path where it happened.
#[derive(Debug)]
pub struct DecodeError {
    /// Innermost first; reversed when printed.
    path: Vec<&'static str>,
    message: String,
}

impl DecodeError {
    pub fn new(message: impl Into<String>) -> Self {
        DecodeError {
            path: Vec::new(),
            message: message.into(),
        }
    }

    fn at(mut self, field: &'static str) -> Self {
        if !field.is_empty() {
            self.path.push(field);
        }
        self
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            return f.write_str(&self.message);
        }
        let path: Vec<&str> = self.path.iter().rev().copied().collect();
        write!(f, "{}: {}", path.join("."), self.message)
    }
}

impl From<String> for DecodeError {
    fn from(message: String) -> Self {
        DecodeError::new(message)
    }
}

type Result<T> = std::result::Result<T, DecodeError>;

/// Decodes `buf` as the message at `index` of the table.
pub fn message_to_json(index: u16, buf: &[u8], depth: usize) -> Result<Value> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::new(format!(
            "messages nested deeper than {MAX_DEPTH} levels"
        )));
    }
    let msg = table::message(index);
    match msg.special {
        Special::None => Ok(Value::Object(object(msg, buf, depth)?)),
        Special::RawJson => raw_json(buf, depth, false),
        Special::RawExtension => raw_json(buf, depth, true),
        special => {
            let fields = collect(msg, buf, depth)?;
            special_value(special, &fields, buf.is_empty())
        }
    }
}

/// What one field of a message held on the wire, already converted to JSON.
struct Collected {
    field: &'static Field,
    value: Value,
}

/// Reads every field of `msg` from `buf`: scalars last-one-wins, a singular message merged
/// from all its occurrences (protobuf's rule), repeated fields in order, maps by key.
fn collect(msg: &'static Message, buf: &[u8], depth: usize) -> Result<Vec<Collected>> {
    /// What has been read of one field; which part is used depends on the field's shape.
    #[derive(Default)]
    struct Slot<'a> {
        seen: bool,
        scalar: Option<Value>,
        parts: Vec<&'a [u8]>,
        list: Vec<Value>,
        entries: BTreeMap<String, Value>,
    }
    let mut slots: Vec<Slot> = msg.fields.iter().map(|_| Slot::default()).collect();
    let mut reader = Reader::new(buf);
    while let Some(next) = reader.next_field() {
        let (tag, value) = next?;
        let Ok(pos) = msg.fields.binary_search_by_key(&tag, |f| f.tag) else {
            continue; // unknown fields are skipped, as upstream does
        };
        let field = &msg.fields[pos];
        let slot = &mut slots[pos];
        slot.seen = true;
        let located = |e: DecodeError| e.at(field.json);
        match (field.card, field.ty) {
            (Card::One, Ty::Msg(_)) => slot.parts.push(expect_len(value).map_err(located)?),
            (Card::One, ty) => slot.scalar = Some(scalar(ty, value).map_err(located)?),
            (Card::Many, ty) => repeated(ty, value, depth, &mut slot.list).map_err(located)?,
            (Card::Map, ty) => {
                let bytes = expect_len(value).map_err(located)?;
                let (key, value) = map_entry(ty, bytes, depth).map_err(located)?;
                slot.entries.insert(key, value);
            }
        }
    }
    let mut out = Vec::new();
    for (field, slot) in msg.fields.iter().zip(slots) {
        if !slot.seen {
            continue;
        }
        let value = match (field.card, field.ty) {
            (Card::One, Ty::Msg(index)) => {
                let joined;
                let bytes = if let [only] = slot.parts[..] {
                    only
                } else {
                    joined = slot.parts.concat();
                    &joined[..]
                };
                message_to_json(index, bytes, depth + 1).map_err(|e| e.at(field.json))?
            }
            (Card::One, _) => slot.scalar.unwrap_or(Value::Null),
            (Card::Many, _) => Value::Array(slot.list),
            (Card::Map, _) => Value::Object(slot.entries.into_iter().collect()),
        };
        out.push(Collected { field, value });
    }
    Ok(out)
}

/// An ordinary message: one key per field, by Go's JSON rules (see [`Emit`]).
fn object(msg: &'static Message, buf: &[u8], depth: usize) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for Collected { field, value } in collect(msg, buf, depth)? {
        match field.emit {
            Emit::Inline => {
                let Value::Object(inner) = value else {
                    return Err(DecodeError::new("an embedded field is not an object"));
                };
                for (k, v) in inner {
                    // The outer struct's own fields win over an embedded one's, as in Go.
                    if !msg
                        .fields
                        .iter()
                        .any(|f| f.json == k && f.emit != Emit::Inline)
                    {
                        out.entry(k).or_insert(v);
                    }
                }
            }
            Emit::OmitZero if is_zero(field, &value) => {}
            Emit::OmitZero | Emit::Always => {
                out.insert(field.json.to_string(), value);
            }
        }
    }
    Ok(out)
}

/// Zero as Go's `omitempty` sees it, plus the empty struct, the zero time and the zero
/// int-or-string (Go writes those; leaving them out lets the server default them alike).
fn is_zero(field: &Field, value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty() && !matches!(field.ty, Ty::Msg(_)),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

fn expect_len(value: wire::Value<'_>) -> Result<&[u8]> {
    match value {
        wire::Value::Len(bytes) => Ok(bytes),
        other => Err(wire_type_error(other, wire::LEN)),
    }
}

fn wire_type_error(got: wire::Value<'_>, want: u8) -> DecodeError {
    DecodeError::new(format!(
        "wire type {} where {want} was expected",
        got.wire_type()
    ))
}

/// A singular scalar field.
fn scalar(ty: Ty, value: wire::Value<'_>) -> Result<Value> {
    let want = match ty {
        Ty::Str | Ty::Bytes | Ty::Msg(_) => wire::LEN,
        Ty::I32 | Ty::I64 | Ty::Bool => wire::VARINT,
        Ty::F64 => wire::FIXED64,
    };
    Ok(match (ty, value) {
        // Go's JSON writes invalid UTF-8 in a string as U+FFFD.
        (Ty::Str, wire::Value::Len(b)) => Value::String(String::from_utf8_lossy(b).into_owned()),
        (Ty::Bytes, wire::Value::Len(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        // int32 is sign-extended to 64 bits on the wire; its low half is the value.
        (Ty::I32, wire::Value::Varint(v)) => Value::from(v as u32 as i32),
        (Ty::I64, wire::Value::Varint(v)) => Value::from(v as i64),
        (Ty::Bool, wire::Value::Varint(v)) => Value::Bool(v != 0),
        (Ty::F64, wire::Value::Fixed64(v)) => float(f64::from_bits(v))?,
        (_, other) => return Err(wire_type_error(other, want)),
    })
}

/// Go prints whole floats without a fraction (`5`, not `5.0`); NaN and infinities have no JSON
/// form, and Go's encoder refuses them too.
fn float(f: f64) -> Result<Value> {
    if !f.is_finite() {
        return Err(DecodeError::new(format!("{f} has no JSON representation")));
    }
    if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        return Ok(Value::from(f as i64));
    }
    Ok(Number::from_f64(f)
        .map(Value::Number)
        .unwrap_or(Value::Null))
}

/// One occurrence of a repeated field: an element, or a packed run of numbers.
fn repeated(ty: Ty, value: wire::Value<'_>, depth: usize, out: &mut Vec<Value>) -> Result<()> {
    match (ty, value) {
        (Ty::Msg(index), wire::Value::Len(bytes)) => {
            out.push(message_to_json(index, bytes, depth + 1)?);
        }
        (Ty::I32 | Ty::I64 | Ty::Bool | Ty::F64, wire::Value::Len(packed)) => {
            let mut r = Reader::new(packed);
            while !r.is_empty() {
                let element = if ty == Ty::F64 {
                    wire::Value::Fixed64(r.fixed64()?)
                } else {
                    wire::Value::Varint(r.varint()?)
                };
                out.push(scalar(ty, element)?);
            }
        }
        (ty, value) => out.push(scalar(ty, value)?),
    }
    Ok(())
}

/// A `map<string, ty>` entry message: key is field 1, value field 2; either may be absent.
fn map_entry(ty: Ty, buf: &[u8], depth: usize) -> Result<(String, Value)> {
    let mut key = String::new();
    let mut value = None;
    let mut parts: Vec<&[u8]> = Vec::new();
    let mut r = Reader::new(buf);
    while let Some(next) = r.next_field() {
        match next? {
            (1, wire::Value::Len(b)) => key = String::from_utf8_lossy(b).into_owned(),
            (1, other) => return Err(wire_type_error(other, wire::LEN)),
            (2, v) => match ty {
                Ty::Msg(_) => parts.push(expect_len(v)?),
                _ => value = Some(scalar(ty, v)?),
            },
            _ => {}
        }
    }
    let value = match ty {
        Ty::Msg(index) => message_to_json(index, &parts.concat(), depth + 1)?,
        _ => value.unwrap_or_else(|| zero(ty)),
    };
    Ok((key, value))
}

fn zero(ty: Ty) -> Value {
    match ty {
        Ty::Str | Ty::Bytes => Value::String(String::new()),
        Ty::I32 | Ty::I64 | Ty::F64 => Value::from(0),
        Ty::Bool => Value::Bool(false),
        Ty::Msg(_) => Value::Object(Map::new()),
    }
}

/// `{raw: bytes}` holding JSON; for RawExtension also a nested `k8s\0` protobuf object.
fn raw_json(buf: &[u8], depth: usize, nested_protobuf: bool) -> Result<Value> {
    let mut raw: &[u8] = &[];
    let mut r = Reader::new(buf);
    while let Some(next) = r.next_field() {
        if let (1, v) = next? {
            raw = expect_len(v).map_err(|e| e.at("raw"))?;
        }
    }
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    if nested_protobuf && raw.starts_with(super::MAGIC) {
        return super::decode_envelope(raw, depth + 1);
    }
    serde_json::from_slice(raw)
        .map_err(|e| DecodeError::new(format!("embedded JSON is invalid: {e}")))
}

fn special_value(special: Special, fields: &[Collected], empty: bool) -> Result<Value> {
    let get = |tag: u32| fields.iter().find(|c| c.field.tag == tag).map(|c| &c.value);
    let int = |tag: u32| get(tag).and_then(Value::as_i64).unwrap_or(0);
    let non_empty_array =
        |tag: u32| get(tag).filter(|v| v.as_array().is_some_and(|a| !a.is_empty()));
    Ok(match special {
        // Upstream writes the zero time as an empty message and reads it back as null.
        Special::Time if empty => Value::Null,
        Special::Time => Value::String(go_format::rfc3339(int(1))?),
        Special::MicroTime if empty => Value::Null,
        Special::MicroTime => Value::String(go_format::rfc3339_micro(
            int(1),
            i32::try_from(int(2)).unwrap_or(0),
        )?),
        Special::Duration => Value::String(go_format::duration(int(1))),
        Special::Quantity => get(1).cloned().unwrap_or_else(|| Value::String("0".into())),
        Special::IntOrString => match int(1) {
            0 => Value::from(int(2)),
            1 => get(3)
                .cloned()
                .unwrap_or_else(|| Value::String(String::new())),
            other => {
                return Err(DecodeError::new(format!(
                    "IntOrString has impossible type {other}"
                )))
            }
        },
        Special::Items => get(1).cloned().unwrap_or_else(|| Value::Array(Vec::new())),
        Special::SchemaOrArray => non_empty_array(2)
            .or_else(|| get(1))
            .cloned()
            .unwrap_or(Value::Null),
        Special::SchemaOrBool => match get(2) {
            Some(schema) => schema.clone(),
            None => Value::Bool(get(1).and_then(Value::as_bool).unwrap_or(false)),
        },
        Special::SchemaOrStringArray => non_empty_array(2)
            .or_else(|| get(1))
            .cloned()
            .unwrap_or(Value::Null),
        Special::None | Special::RawJson | Special::RawExtension => {
            unreachable!("handled by message_to_json")
        }
    })
}
