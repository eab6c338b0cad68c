//! Request bodies as JSON objects, whatever their content type.

use serde_json::Value;

/// A request body that could not be decoded, as the API server's `Status` answer: `code` the
/// HTTP status (a 4xx: the client sent it), `reason` and `message` upstream's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
}

impl BodyError {
    fn bad_request(message: impl Into<String>) -> Self {
        BodyError {
            code: 400,
            reason: "BadRequest",
            message: message.into(),
        }
    }
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BodyError {}

/// Parses a request body as JSON, or YAML or Kubernetes protobuf when the content type says so.
/// The result is always a JSON object; anything else is a 400.
pub fn decode(content_type: &str, body: &[u8]) -> Result<Value, BodyError> {
    let ct = content_type.split(';').next().unwrap_or("").trim();
    let value: Value = if ct.ends_with("yaml") {
        serde_yaml_ng::from_slice(body)
            .map_err(|e| BodyError::bad_request(format!("error decoding YAML: {e}")))?
    } else if crate::protobuf::is_protobuf(ct) {
        crate::protobuf::decode_request(body)
            .map_err(|e| BodyError::bad_request(format!("error decoding protobuf: {e}")))?
    } else {
        if std::str::from_utf8(body).is_err() {
            return Err(BodyError::bad_request(
                "the request body is not valid UTF-8 JSON",
            ));
        }
        serde_json::from_slice(body).map_err(|e| {
            BodyError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?
    };
    if !value.is_object() {
        return Err(BodyError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_each_content_type_to_an_object() {
        let json = decode("application/json", br#"{"kind":"Pod"}"#).unwrap();
        assert_eq!(json["kind"], "Pod");
        let yaml = decode(
            "application/apply-patch+yaml; charset=utf-8",
            b"kind: Pod\n",
        )
        .unwrap();
        assert_eq!(yaml["kind"], "Pod");
        // k8s\0, then runtime.Unknown{typeMeta{apiVersion: v1, kind: Namespace}}.
        let pb = decode(
            "application/vnd.kubernetes.protobuf",
            b"k8s\0\n\x0f\n\x02v1\x12\tNamespace",
        )
        .unwrap();
        assert_eq!(
            (pb["apiVersion"].as_str(), pb["kind"].as_str()),
            (Some("v1"), Some("Namespace"))
        );
    }

    #[test]
    fn refusals_are_400_with_the_reason() {
        for (ct, body, says) in [
            ("application/json", &b"[1]"[..], "must be a JSON object"),
            ("application/json", &b"\xff{}"[..], "not valid UTF-8"),
            ("application/json", &b"{"[..], "json parse error"),
            ("application/yaml", &b"a: [b"[..], "error decoding YAML"),
            (
                "application/vnd.kubernetes.protobuf",
                &b"{}"[..],
                "no k8s\\0 prefix",
            ),
        ] {
            let e = decode(ct, body).unwrap_err();
            assert_eq!((e.code, e.reason), (400, "BadRequest"), "{ct} {body:?}");
            assert!(e.message.contains(says), "{ct}: {}", e.message);
        }
    }
}
