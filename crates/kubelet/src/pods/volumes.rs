//! Pod volumes on the node: each gets a host path the containers' mounts bind.
//!
//! - emptyDir: a directory under `DATA_DIR/pods/<uid>/volumes/kubernetes.io~empty-dir/`;
//! - hostPath: the path itself (created for `DirectoryOrCreate` / `FileOrCreate`);
//! - configMap, secret: their keys written as files under the pod's directory
//!   (rewritten when the content changes), mounted read-only.
//!
//! Everything under the pod's directory goes when the pod does.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, KeyToPath, Pod, Secret, Volume};
use kube::Client;
use kube::api::Api;

use crate::runtime::Mount;

/// Why a volume could not be prepared (upstream reports these as FailedMount and the
/// containers wait in ContainerCreating).
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("volume {volume}: {path}: {source}")]
    Io {
        volume: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("volume {volume}: {message}")]
    Source { volume: String, message: String },
    #[error("volume {volume}: unsupported volume type")]
    Unsupported { volume: String },
    #[error("container {container}: no volume named {volume}")]
    UnknownVolume { container: String, volume: String },
    #[error("container {container}: invalid subPath {sub_path:?}")]
    SubPath { container: String, sub_path: String },
}

/// The pod's directory: `DATA_DIR/pods/<uid>`.
pub fn pod_dir(data_dir: &Path, uid: &str) -> PathBuf {
    data_dir.join("pods").join(uid)
}

/// Removes the pod's directory (volumes included). hostPath volumes are elsewhere.
pub fn remove(data_dir: &Path, uid: &str) {
    let dir = pod_dir(data_dir, uid);
    if let Err(e) = std::fs::remove_dir_all(&dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %e, "removing the pod directory");
    }
}

/// A relative path that stays inside its directory (no `..`, not absolute).
fn safe_relative(path: &str) -> bool {
    !path.is_empty()
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// Writes `files` (relative path → content) into `dir`, leaving unchanged files alone
/// and removing files no longer listed.
fn write_files(
    volume: &str,
    dir: &Path,
    files: &BTreeMap<String, (Vec<u8>, u32)>,
) -> Result<(), VolumeError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        let volume = volume.to_string();
        move |source| VolumeError::Io {
            volume,
            path,
            source,
        }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    for (name, (content, mode)) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        if std::fs::read(&path).ok().as_deref() != Some(content.as_slice()) {
            // Write aside and rename: a reader never sees half a file.
            let tmp = path.with_file_name(format!(
                ".{}.tmp",
                path.file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default()
            ));
            std::fs::write(&tmp, content).map_err(io(&tmp))?;
            std::fs::rename(&tmp, &path).map_err(io(&path))?;
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))
            .map_err(io(&path))?;
    }
    // Keys that went away.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let listed = files
                .keys()
                .any(|k| k == &name || k.starts_with(&format!("{name}/")));
            if !listed && entry.file_type().is_ok_and(|t| t.is_file()) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(())
}

/// The files of a configMap or secret volume: every key, or the listed items.
fn projected(
    volume: &str,
    data: BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    default_mode: Option<i32>,
) -> Result<BTreeMap<String, (Vec<u8>, u32)>, VolumeError> {
    let mode = |m: Option<i32>| u32::try_from(m.or(default_mode).unwrap_or(0o644)).unwrap_or(0o644);
    let mut files = BTreeMap::new();
    match items {
        None => {
            for (key, content) in data {
                files.insert(key, (content, mode(None)));
            }
        }
        Some(items) => {
            for item in items {
                let Some(content) = data.get(&item.key) else {
                    return Err(VolumeError::Source {
                        volume: volume.to_string(),
                        message: format!("key {:?} not found", item.key),
                    });
                };
                files.insert(item.path.clone(), (content.clone(), mode(item.mode)));
            }
        }
    }
    if let Some(bad) = files.keys().find(|k| !safe_relative(k)) {
        return Err(VolumeError::Source {
            volume: volume.to_string(),
            message: format!("invalid file name {bad:?}"),
        });
    }
    Ok(files)
}

/// Prepares every volume of `pod`; returns each volume's host path by name.
pub async fn prepare(
    client: &Client,
    data_dir: &Path,
    pod: &Pod,
) -> Result<HashMap<String, PathBuf>, VolumeError> {
    let uid = pod.metadata.uid.as_deref().unwrap_or("");
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let volumes_dir = pod_dir(data_dir, uid).join("volumes");
    let mut paths = HashMap::new();
    let volumes: &[Volume] = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or(&[]);
    for volume in volumes {
        let name = volume.name.as_str();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| VolumeError::Io {
                volume: name.to_string(),
                path,
                source,
            }
        };
        let source_err = |message: String| VolumeError::Source {
            volume: name.to_string(),
            message,
        };
        let path = if volume.empty_dir.is_some() {
            let dir = volumes_dir.join("kubernetes.io~empty-dir").join(name);
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            // Writable by whatever user the container runs as, as upstream's are.
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
                .map_err(io(&dir))?;
            dir
        } else if let Some(host) = &volume.host_path {
            let path = PathBuf::from(&host.path);
            match host.type_.as_deref() {
                Some("DirectoryOrCreate") => {
                    std::fs::create_dir_all(&path).map_err(io(&path))?;
                }
                Some("FileOrCreate") if !path.exists() => {
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent).map_err(io(parent))?;
                    }
                    std::fs::write(&path, b"").map_err(io(&path))?;
                }
                Some("Directory") if !path.is_dir() => {
                    return Err(source_err(format!("{} is not a directory", host.path)));
                }
                Some("File") if !path.is_file() => {
                    return Err(source_err(format!("{} is not a file", host.path)));
                }
                _ => {}
            }
            path
        } else if let Some(source) = &volume.config_map {
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
            let found = api
                .get_opt(&source.name)
                .await
                .map_err(|e| source_err(e.to_string()))?;
            let data = match found {
                Some(cm) => {
                    let mut data: BTreeMap<String, Vec<u8>> = cm
                        .data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.into_bytes()))
                        .collect();
                    data.extend(
                        cm.binary_data
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, v.0)),
                    );
                    data
                }
                None if source.optional == Some(true) => BTreeMap::new(),
                None => {
                    return Err(source_err(format!("configmap {:?} not found", source.name)));
                }
            };
            let dir = volumes_dir.join("kubernetes.io~configmap").join(name);
            let files = projected(name, data, source.items.as_deref(), source.default_mode)?;
            write_files(name, &dir, &files)?;
            dir
        } else if let Some(source) = &volume.secret {
            let secret_name = source.secret_name.clone().unwrap_or_default();
            let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
            let found = api
                .get_opt(&secret_name)
                .await
                .map_err(|e| source_err(e.to_string()))?;
            let data = match found {
                Some(secret) => {
                    let mut data: BTreeMap<String, Vec<u8>> = secret
                        .data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.0))
                        .collect();
                    data.extend(
                        secret
                            .string_data
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, v.into_bytes())),
                    );
                    data
                }
                None if source.optional == Some(true) => BTreeMap::new(),
                None => {
                    return Err(source_err(format!("secret {secret_name:?} not found")));
                }
            };
            let dir = volumes_dir.join("kubernetes.io~secret").join(name);
            let files = projected(name, data, source.items.as_deref(), source.default_mode)?;
            write_files(name, &dir, &files)?;
            dir
        } else {
            return Err(VolumeError::Unsupported {
                volume: name.to_string(),
            });
        };
        paths.insert(name.to_string(), path);
    }
    Ok(paths)
}

/// The container's mounts over the prepared `volumes`.
pub fn mounts(
    pod: &Pod,
    container: &k8s_openapi::api::core::v1::Container,
    volumes: &HashMap<String, PathBuf>,
) -> Result<Vec<Mount>, VolumeError> {
    let read_only_source = |name: &str| {
        pod.spec
            .as_ref()
            .and_then(|s| s.volumes.as_ref())
            .and_then(|vs| vs.iter().find(|v| v.name == name))
            .is_some_and(|v| v.config_map.is_some() || v.secret.is_some())
    };
    let mut out = Vec::new();
    for m in container.volume_mounts.iter().flatten() {
        let Some(base) = volumes.get(&m.name) else {
            return Err(VolumeError::UnknownVolume {
                container: container.name.clone(),
                volume: m.name.clone(),
            });
        };
        let host_path = match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) if safe_relative(sub) => {
                let path = base.join(sub);
                if !path.exists() && base.is_dir() {
                    // Upstream creates a missing subPath as a directory.
                    let _ = std::fs::create_dir_all(&path);
                }
                path
            }
            Some(sub) => {
                return Err(VolumeError::SubPath {
                    container: container.name.clone(),
                    sub_path: sub.to_string(),
                });
            }
            None => base.clone(),
        };
        out.push(Mount {
            container_path: m.mount_path.clone(),
            host_path,
            readonly: m.read_only.unwrap_or(false) || read_only_source(&m.name),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_stay_inside() {
        assert!(safe_relative("a/b.txt"));
        for bad in ["", "/etc/passwd", "../x", "a/../../x"] {
            assert!(!safe_relative(bad), "{bad}");
        }
    }

    #[test]
    fn items_pick_keys() {
        let data = BTreeMap::from([
            ("a".to_string(), b"1".to_vec()),
            ("b".to_string(), b"2".to_vec()),
        ]);
        let all = projected("v", data.clone(), None, Some(0o400)).expect("all");
        assert_eq!(all.get("a"), Some(&(b"1".to_vec(), 0o400)));
        let items = [KeyToPath {
            key: "b".into(),
            path: "dir/b.conf".into(),
            ..KeyToPath::default()
        }];
        let some = projected("v", data.clone(), Some(&items), None).expect("items");
        assert_eq!(some.keys().collect::<Vec<_>>(), ["dir/b.conf"]);
        let missing = [KeyToPath {
            key: "zz".into(),
            path: "z".into(),
            ..KeyToPath::default()
        }];
        assert!(projected("v", data, Some(&missing), None).is_err());
    }

    #[test]
    fn files_are_written_and_pruned() {
        let dir = std::env::temp_dir().join(format!("mast-volumes-{}", std::process::id()));
        let files = BTreeMap::from([
            ("a".to_string(), (b"1".to_vec(), 0o644)),
            ("d/b".to_string(), (b"2".to_vec(), 0o600)),
        ]);
        write_files("v", &dir, &files).expect("write");
        assert_eq!(std::fs::read(dir.join("d/b")).expect("b"), b"2");
        let fewer = BTreeMap::from([("d/b".to_string(), (b"3".to_vec(), 0o600))]);
        write_files("v", &dir, &fewer).expect("rewrite");
        assert!(!dir.join("a").exists());
        assert_eq!(std::fs::read(dir.join("d/b")).expect("b"), b"3");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
