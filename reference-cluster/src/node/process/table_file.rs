//! The image-table file (`kubeproof cluster up --runtime process --image-table FILE`): rows a
//! user adds in front of the built-in ones. The format is in `PROCESS.md` ("Image table");
//! every mistake is reported with the file, the row and the fix.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use super::images::{find_on_path, repository, ImageRule, ImageSource, DEFAULT_PATH};

const ROW_KEYS: &[&str] = &[
    "image",
    "rootfs",
    "busyboxRootfs",
    "busybox",
    "host",
    "entrypoint",
    "cmd",
    "env",
    "workingDir",
];

/// Reads the rows of the image-table file `path`.
pub fn load(path: &Path) -> Result<Vec<ImageRule>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the image table {}: {e}", path.display()))?;
    parse(&text, path, find_on_path("busybox", DEFAULT_PATH))
}

/// The rows of an image-table file's `text`; `path` names it in errors and anchors relative
/// `rootfs` directories; `busybox` is the host's busybox, for `busybox`/`busyboxRootfs` rows.
pub fn parse(text: &str, path: &Path, busybox: Option<PathBuf>) -> Result<Vec<ImageRule>, String> {
    let file = path.display();
    let doc: Value = serde_yaml_ng::from_str(text)
        .map_err(|e| format!("the image table {file} is not valid YAML: {e}"))?;
    let rows = match doc {
        Value::Sequence(rows) => rows,
        Value::Mapping(m) => {
            if let Some(k) = m.keys().find(|k| k.as_str() != Some("images")) {
                return Err(format!(
                    "the image table {file} has an unknown field {}: it holds only `images`, a list of rows",
                    show(k)
                ));
            }
            match m.get("images") {
                Some(Value::Sequence(rows)) => rows.clone(),
                Some(Value::Null) | None => Vec::new(),
                Some(other) => {
                    return Err(format!(
                        "the image table {file}: `images` must be a list of rows, not {}",
                        show(other)
                    ))
                }
            }
        }
        Value::Null => Vec::new(),
        other => {
            return Err(format!(
                "the image table {file} must be a mapping with `images:` (a list of rows), not {}",
                show(&other)
            ))
        }
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let n = i + 1;
        let Value::Mapping(m) = row else {
            return Err(format!(
                "the image table {file}, row {n}: a row must be a mapping such as `{{image: example.com/app, rootfs: /srv/app-root}}`, not {}",
                show(row)
            ));
        };
        let rule = parse_row(m, base, busybox.as_deref()).map_err(|e| {
            let image = m.get("image").and_then(Value::as_str).unwrap_or("");
            if image.is_empty() {
                format!("the image table {file}, row {n}: {e}")
            } else {
                format!("the image table {file}, row {n} (image {image}): {e}")
            }
        })?;
        if !seen.insert(rule.repository.clone()) {
            return Err(format!(
                "the image table {file}, row {n}: image {} is already mapped by an earlier row; keep one",
                rule.repository
            ));
        }
        out.push(rule);
    }
    Ok(out)
}

fn show(v: &Value) -> String {
    match serde_yaml_ng::to_string(v) {
        Ok(s) => format!("`{}`", s.trim()),
        Err(_) => "this value".into(),
    }
}

fn parse_row(m: &Mapping, base: &Path, busybox: Option<&Path>) -> Result<ImageRule, String> {
    for k in m.keys() {
        if !k.as_str().is_some_and(|k| ROW_KEYS.contains(&k)) {
            return Err(format!(
                "unknown field {}; a row has {}",
                show(k),
                ROW_KEYS.join(", ")
            ));
        }
    }
    let image = match m.get("image") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(v) => return Err(format!("`image` must be an image name, not {}", show(v))),
        None => return Err("`image` is missing: name the image the row maps".into()),
    };
    let flag = |k: &str| -> Result<bool, String> {
        match m.get(k) {
            None | Some(Value::Bool(false)) => Ok(false),
            Some(Value::Bool(true)) => Ok(true),
            Some(v) => Err(format!("`{k}` must be true or false, not {}", show(v))),
        }
    };
    let mut sources = Vec::new();
    if let Some(v) = m.get("rootfs") {
        let Some(dir) = v.as_str().filter(|d| !d.is_empty()) else {
            return Err(format!("`rootfs` must be a directory, not {}", show(v)));
        };
        let dir = std::path::absolute(base.join(dir)).unwrap_or_else(|_| base.join(dir));
        if !dir.is_dir() {
            return Err(format!(
                "`rootfs` {} is not a directory: create it (e.g. `docker export` of a container, unpacked) or fix the path",
                dir.display()
            ));
        }
        sources.push(ImageSource::RootFs { dir });
    }
    let need_busybox = |what: &str| {
        busybox.map(Path::to_path_buf).ok_or_else(|| {
            format!(
                "`{what}` needs busybox on this host: install it (apt-get install busybox-static)"
            )
        })
    };
    if flag("busyboxRootfs")? {
        sources.push(ImageSource::BusyboxRootFs {
            binary: need_busybox("busyboxRootfs")?,
        });
    }
    if flag("busybox")? {
        sources.push(ImageSource::Busybox {
            binary: need_busybox("busybox")?,
        });
    }
    if flag("host")? {
        sources.push(ImageSource::Host);
    }
    let source = match sources.len() {
        1 => sources.remove(0),
        0 => {
            return Err(
                "the row says nothing about what to run: give `rootfs: <directory>`, `busyboxRootfs: true`, `busybox: true` or `host: true`"
                    .into(),
            )
        }
        _ => {
            return Err(
                "give only one of `rootfs`, `busyboxRootfs`, `busybox` and `host`".into(),
            )
        }
    };
    let strings = |k: &str| -> Result<Vec<String>, String> {
        match m.get(k) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Sequence(items)) => items
                .iter()
                .map(|i| {
                    scalar(i).ok_or_else(|| {
                        format!("`{k}` must be a list of strings; {} is not one", show(i))
                    })
                })
                .collect(),
            Some(v) => Err(format!(
                "`{k}` must be a list of strings such as [\"/bin/sh\", \"-c\"], not {}",
                show(v)
            )),
        }
    };
    let entrypoint = strings("entrypoint")?;
    let cmd = strings("cmd")?;
    let env = match m.get("env") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Mapping(vars)) => vars
            .iter()
            .map(|(k, v)| match (k.as_str(), scalar(v)) {
                (Some(k), Some(v)) if !k.is_empty() => Ok((k.to_string(), v)),
                _ => Err(format!(
                    "`env` maps names to string values; {}: {} is not one",
                    show(k),
                    show(v)
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .and_then(|s| s.split_once('='))
                    .filter(|(k, _)| !k.is_empty())
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .ok_or_else(|| {
                        format!(
                            "`env` as a list holds NAME=value strings; {} is not one",
                            show(i)
                        )
                    })
            })
            .collect::<Result<_, _>>()?,
        Some(v) => {
            return Err(format!(
                "`env` must map names to values ({{LOG: debug}}), not {}",
                show(v)
            ))
        }
    };
    let working_dir = match m.get("workingDir") {
        None | Some(Value::Null) => None,
        Some(Value::String(w)) if w.starts_with('/') => Some(w.clone()),
        Some(v) => {
            return Err(format!(
                "`workingDir` must be an absolute path, not {}",
                show(v)
            ))
        }
    };
    Ok(ImageRule {
        repository: repository(&image),
        source,
        entrypoint,
        cmd,
        env,
        working_dir,
    })
}

/// A string, number or boolean as a string (YAML reads `8080` as a number).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in(dir: &Path, text: &str) -> Result<Vec<ImageRule>, String> {
        parse(text, &dir.join("images.yaml"), Some("/bin/busybox".into()))
    }

    #[test]
    fn rows_map_images_to_roots_and_their_config() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("app-root")).unwrap();
        let rows = parse_in(
            d.path(),
            r#"
images:
- image: example.com/app:v1
  rootfs: app-root
  entrypoint: [/app/server]
  cmd: [--port, 8080]
  env: {LOG: debug, N: 3}
  workingDir: /app
- image: busybox
  busyboxRootfs: true
- {image: tools, host: true, env: ["A=b=c"]}
"#,
        )
        .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].repository, "example.com/app");
        assert_eq!(
            rows[0].source,
            ImageSource::RootFs {
                dir: d.path().join("app-root")
            }
        );
        assert_eq!(rows[0].cmd, ["--port", "8080"]);
        assert_eq!(
            rows[0].env,
            [
                ("LOG".to_string(), "debug".to_string()),
                ("N".into(), "3".into())
            ]
        );
        assert_eq!(rows[0].working_dir.as_deref(), Some("/app"));
        assert_eq!(rows[1].repository, "docker.io/library/busybox");
        assert!(rows[1].source.needs_root());
        assert_eq!(rows[2].env, [("A".to_string(), "b=c".to_string())]);
        assert!(parse_in(d.path(), "").unwrap().is_empty());
        assert!(
            parse_in(d.path(), "- {image: x, host: true}")
                .unwrap()
                .len()
                == 1
        );
    }

    #[test]
    fn mistakes_name_the_file_the_row_and_the_fix() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("images.yaml").display().to_string();
        let err = |text: &str| parse_in(d.path(), text).unwrap_err();
        let e = err("images:\n- {image: a, host: true}\n- {image: b, rootfs: /no/such/dir}");
        assert!(
            e.starts_with(&format!(
                "the image table {f}, row 2 (image b): `rootfs` /no/such/dir is not a directory"
            )),
            "{e}"
        );
        let e = err("images: [{image: a}]");
        assert!(
            e.contains("row 1 (image a): the row says nothing about what to run"),
            "{e}"
        );
        let e = err("images: [{image: a, host: true, busyboxRootfs: true}]");
        assert!(e.contains("give only one of"), "{e}");
        let e = err("images: [{host: true}]");
        assert!(e.contains("row 1: `image` is missing"), "{e}");
        let e = err("images: [{image: a, host: true, entrypint: [x]}]");
        assert!(e.contains("unknown field `entrypint`"), "{e}");
        let e = err("images: [{image: a, host: true, cmd: sh}]");
        assert!(e.contains("`cmd` must be a list of strings"), "{e}");
        let e = err("images: [{image: a, host: true, workingDir: app}]");
        assert!(e.contains("`workingDir` must be an absolute path"), "{e}");
        let e = err("images: [{image: a, host: true, env: [NOEQUALS]}]");
        assert!(e.contains("NAME=value"), "{e}");
        let e =
            err("images: [{image: a, host: true}, {image: 'docker.io/library/a:2', host: true}]");
        assert!(
            e.contains("row 2: image docker.io/library/a is already mapped"),
            "{e}"
        );
        let e = err("imgs: []");
        assert!(
            e.contains(&format!("the image table {f} has an unknown field `imgs`")),
            "{e}"
        );
        let e = err("images: [oops]");
        assert!(e.contains("row 1: a row must be a mapping"), "{e}");
        let e = err("images: [{image: a, host: true]");
        assert!(
            e.starts_with(&format!("the image table {f} is not valid YAML")),
            "{e}"
        );
        let e = parse(
            "images: [{image: a, busyboxRootfs: true}]",
            Path::new("t.yaml"),
            None,
        )
        .unwrap_err();
        assert!(e.contains("needs busybox on this host"), "{e}");
        let e = load(Path::new("/no/such/table.yaml")).unwrap_err();
        assert!(
            e.starts_with("cannot read the image table /no/such/table.yaml"),
            "{e}"
        );
    }
}
