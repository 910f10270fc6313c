//! Manifests as `kubectl -f` reads them: files, directories (their `.json`, `.yaml` and
//! `.yml` files, in name order; subdirectories too with `-R`) and stdin (`-`). A file
//! is a YAML stream of documents or JSON (one value or several); a `List` (any kind
//! ending in `List` with `items`) stands for its items. Then each object is located:
//! its resource from discovery, its name, and the namespace it goes to.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::Value;

use crate::ctl::{Resource, Session};

/// The extensions kubectl picks up in a directory.
const EXTENSIONS: [&str; 3] = ["json", "yaml", "yml"];

/// One object read from a manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Where it came from, as kubectl names it in errors (`web.yaml`, `STDIN`).
    pub source: String,
    pub object: Value,
}

/// Reads every object from `paths` (`-` is stdin), in order. A missing path or a
/// document that does not parse fails the whole read: nothing is half-applied.
pub fn read(paths: &[PathBuf], recursive: bool) -> anyhow::Result<Vec<Manifest>> {
    let mut manifests = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading STDIN")?;
            push_objects(&mut manifests, &text, "STDIN")?;
            continue;
        }
        for file in files(path, recursive)? {
            let source = file.display().to_string();
            let text =
                std::fs::read_to_string(&file).with_context(|| format!("reading {source}"))?;
            push_objects(&mut manifests, &text, &source)?;
        }
    }
    Ok(manifests)
}

fn push_objects(out: &mut Vec<Manifest>, text: &str, source: &str) -> anyhow::Result<()> {
    let objects = parse(text).with_context(|| format!("error parsing {source}"))?;
    out.extend(objects.into_iter().map(|object| Manifest {
        source: source.to_string(),
        object,
    }));
    Ok(())
}

/// The files `path` names: itself, or a directory's manifests in name order.
fn files(path: &Path, recursive: bool) -> anyhow::Result<Vec<PathBuf>> {
    let metadata = std::fs::metadata(path)
        .map_err(|_| anyhow::anyhow!("the path \"{}\" does not exist", path.display()))?;
    if !metadata.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("reading the directory {}", path.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading the directory {}", path.display()))?;
    entries.sort();
    let mut found = Vec::new();
    for entry in entries {
        if entry.is_dir() {
            if recursive {
                found.extend(files(&entry, true)?);
            }
        } else if has_manifest_extension(&entry) {
            found.push(entry);
        }
    }
    Ok(found)
}

fn has_manifest_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e))
}

/// The objects in one file's text: JSON values, or the documents of a YAML stream
/// (empty documents skipped), with lists unwrapped.
pub fn parse(text: &str) -> anyhow::Result<Vec<Value>> {
    let mut values = Vec::new();
    if text.trim_start().starts_with(['{', '[']) {
        for value in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
            values.push(value?);
        }
    } else {
        for document in serde_yaml::Deserializer::from_str(text) {
            values.push(Value::deserialize(document)?);
        }
    }
    let mut objects = Vec::new();
    for value in values {
        unwrap_lists(value, &mut objects)?;
    }
    Ok(objects)
}

fn unwrap_lists(value: Value, out: &mut Vec<Value>) -> anyhow::Result<()> {
    match value {
        Value::Null => Ok(()),
        Value::Array(items) => items.into_iter().try_for_each(|v| unwrap_lists(v, out)),
        Value::Object(mut map) => {
            let is_list = map
                .get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| k.ends_with("List"));
            match map.remove("items") {
                Some(Value::Array(items)) if is_list => {
                    items.into_iter().try_for_each(|v| unwrap_lists(v, out))
                }
                items => {
                    if let Some(items) = items {
                        map.insert("items".to_string(), items);
                    }
                    out.push(Value::Object(map));
                    Ok(())
                }
            }
        }
        other => bail!("expected an object, found {other}"),
    }
}

/// Where an object from a manifest lives on the server.
#[derive(Debug, Clone)]
pub struct Located {
    /// The manifest it came from (`web.yaml`, `STDIN`), empty when named otherwise.
    pub source: String,
    pub resource: Resource,
    pub name: String,
    /// None for cluster-scoped objects.
    pub namespace: Option<String>,
}

/// Finds `manifest`'s resource, name and namespace: the object's own namespace, else
/// the session's. `explicit_namespace` is `-n` when given, which must agree with the
/// object's, as kubectl insists.
pub async fn locate(
    session: &Session,
    manifest: &Manifest,
    explicit_namespace: Option<&str>,
) -> anyhow::Result<Located> {
    let object = &manifest.object;
    let field = |name: &str| object.get(name).and_then(Value::as_str).unwrap_or("");
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    if kind.is_empty() {
        bail!(
            "unable to decode \"{}\": Object 'Kind' is missing",
            manifest.source
        );
    }
    if api_version.is_empty() {
        bail!(
            "unable to decode \"{}\": Object 'apiVersion' is missing",
            manifest.source
        );
    }
    let metadata = |name: &str| {
        object
            .pointer(&format!("/metadata/{name}"))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let (name, own_namespace) = (metadata("name"), metadata("namespace"));
    let resource = resource_of(session, api_version, kind)
        .await?
        .with_context(|| {
            format!(
                "resource mapping not found for name: \"{name}\" namespace: \"{own_namespace}\" \
                 from \"{}\": no matches for kind \"{kind}\" in version \"{api_version}\"",
                manifest.source
            )
        })?;
    if name.is_empty() {
        bail!("resource name may not be empty");
    }
    let namespace = if resource.namespaced {
        if let Some(explicit) = explicit_namespace
            && !own_namespace.is_empty()
            && own_namespace != explicit
        {
            bail!(
                "the namespace from the provided object \"{own_namespace}\" does not match the \
                 namespace \"{explicit}\". You must pass '--namespace={own_namespace}' to \
                 perform this operation."
            );
        }
        Some(if own_namespace.is_empty() {
            session.namespace.clone()
        } else {
            own_namespace.to_string()
        })
    } else {
        None
    };
    Ok(Located {
        source: manifest.source.clone(),
        resource,
        name: name.to_string(),
        namespace,
    })
}

/// The resource serving `kind` in `api_version`: discovery knows each group's preferred
/// version, and a manifest may name another one the server also serves.
async fn resource_of(
    session: &Session,
    api_version: &str,
    kind: &str,
) -> anyhow::Result<Option<Resource>> {
    if let Ok(preferred) = session.resolve_kind(api_version, kind).await {
        return Ok(Some(preferred));
    }
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let same_kind = |r: &&Resource| r.api.group == group && r.api.kind == kind;
    let resources = session.resources().await?;
    Ok(resources.iter().find(same_kind).map(|r| {
        let mut other = r.clone();
        other.api.version = version.to_string();
        other.api.api_version = api_version.to_string();
        other
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_streams_json_and_lists() {
        let yaml = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n\n---\n\
                    apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Secret, metadata: {name: b}}\n";
        let objects = parse(yaml).expect("parse");
        let names: Vec<&str> = objects
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(names, ["a", "b"]);

        let json_text = r#"{"apiVersion":"v1","kind":"ConfigMapList","items":[{"kind":"ConfigMap","metadata":{"name":"c"}}]}
                           {"kind":"ConfigMap","metadata":{"name":"d"},"items":[1]}"#;
        let objects = parse(json_text).expect("parse json");
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[1]["items"], json!([1]), "only lists are unwrapped");
    }

    #[test]
    fn bad_documents_are_errors() {
        assert!(parse("foo: [").is_err());
        assert!(parse("just a string").is_err());
        assert!(parse("{\"a\": ").is_err());
        assert!(parse("").expect("empty is fine").is_empty());
    }

    #[test]
    fn directories_yield_manifests_in_name_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).expect("mkdir");
        for (path, name) in [
            (dir.path().join("b.yaml"), "b"),
            (dir.path().join("a.json"), "a"),
            (sub.join("c.yml"), "c"),
        ] {
            let text = format!("{{\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"{name}\"}}}}");
            std::fs::write(path, text).expect("write");
        }
        std::fs::write(dir.path().join("notes.txt"), "not a manifest").expect("write");
        let names = |recursive| -> Vec<String> {
            read(&[dir.path().to_path_buf()], recursive)
                .expect("read")
                .iter()
                .map(|m| {
                    m.object["metadata"]["name"]
                        .as_str()
                        .unwrap_or("")
                        .to_string()
                })
                .collect()
        };
        assert_eq!(names(false), ["a", "b"]);
        assert_eq!(names(true), ["a", "b", "c"]);
        let missing = read(&[dir.path().join("nope")], false).expect_err("missing");
        assert!(missing.to_string().contains("does not exist"), "{missing}");
    }
}
