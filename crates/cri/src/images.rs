//! Offline images: importing OCI/docker image archives into containerd's `k8s.io`
//! namespace (the one its CRI plugin serves) with `ctr images import`.
//!
//! No registry is reachable on our machines, so the kubelet imports every
//! `DATA_DIR/agent/images/*.tar` at start and `mast images import` feeds single files.
//! `ctr` ships with Debian's containerd package; importing the same archive twice is a
//! no-op for containerd.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

/// The containerd namespace of CRI's images and containers.
pub const K8S_NAMESPACE: &str = "k8s.io";
/// Deadline of one import (unpacking a large image takes a while).
pub const IMPORT_TIMEOUT: Duration = Duration::from_secs(300);

/// Errors of image import.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// `ctr` could not be started.
    #[error("running {ctr}: {source}")]
    Spawn {
        /// The ctr binary.
        ctr: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `ctr images import` failed.
    #[error("importing {archive}: ctr exited with {status}: {stderr}")]
    Failed {
        /// The archive.
        archive: PathBuf,
        /// ctr's exit status.
        status: std::process::ExitStatus,
        /// The end of what ctr wrote on stderr.
        stderr: String,
    },
    /// The import did not finish within its deadline (ctr is killed).
    #[error("importing {archive}: not done within {after:?}")]
    Timeout {
        /// The archive.
        archive: PathBuf,
        /// The deadline.
        after: Duration,
    },
    /// The images directory could not be read.
    #[error("reading {dir}: {source}")]
    ReadDir {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// One image an archive held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedImage {
    /// Its name, e.g. `docker.io/library/busybox:latest`.
    pub name: String,
    /// Its manifest (or index) digest, `sha256:…`.
    pub digest: String,
}

/// What [`Importer::import_dir`] did: the images imported, the archives that failed.
#[derive(Debug, Default)]
pub struct DirImport {
    /// Every image of every archive that imported.
    pub imported: Vec<ImportedImage>,
    /// The archives that did not, with why.
    pub failed: Vec<ImportError>,
}

/// Imports image archives into one containerd.
#[derive(Clone, Debug)]
pub struct Importer {
    /// The `ctr` binary (default: `ctr` on PATH).
    pub ctr: PathBuf,
    /// containerd's gRPC socket.
    pub address: PathBuf,
    /// The containerd namespace (default [`K8S_NAMESPACE`]).
    pub namespace: String,
    /// The snapshotter to unpack into; must be the CRI plugin's (default: ctr's own
    /// default, overlayfs).
    pub snapshotter: Option<String>,
    /// Deadline of one archive's import.
    pub timeout: Duration,
}

impl Importer {
    /// An importer for the containerd listening on `address`.
    pub fn new(address: impl Into<PathBuf>) -> Self {
        Importer {
            ctr: PathBuf::from("ctr"),
            address: address.into(),
            namespace: K8S_NAMESPACE.to_owned(),
            snapshotter: None,
            timeout: IMPORT_TIMEOUT,
        }
    }

    /// The same importer unpacking into `snapshotter`.
    pub fn with_snapshotter(mut self, snapshotter: impl Into<String>) -> Self {
        self.snapshotter = Some(snapshotter.into());
        self
    }

    /// Imports one archive; returns the images it held.
    pub async fn import(&self, archive: &Path) -> Result<Vec<ImportedImage>, ImportError> {
        let mut cmd = Command::new(&self.ctr);
        cmd.arg("--address")
            .arg(&self.address)
            .arg("--namespace")
            .arg(&self.namespace)
            .args(["images", "import"]);
        if let Some(snapshotter) = &self.snapshotter {
            cmd.arg("--snapshotter").arg(snapshotter);
        }
        cmd.arg(archive)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let output = match tokio::time::timeout(self.timeout, cmd.output()).await {
            Ok(Ok(output)) => output,
            Ok(Err(source)) => {
                return Err(ImportError::Spawn {
                    ctr: self.ctr.clone(),
                    source,
                });
            }
            // Dropping the future drops the child: kill_on_drop ends ctr.
            Err(_) => {
                return Err(ImportError::Timeout {
                    archive: archive.to_path_buf(),
                    after: self.timeout,
                });
            }
        };
        if !output.status.success() {
            return Err(ImportError::Failed {
                archive: archive.to_path_buf(),
                status: output.status,
                stderr: tail(&String::from_utf8_lossy(&output.stderr), 2000),
            });
        }
        let images = parse_import_output(&String::from_utf8_lossy(&output.stdout));
        tracing::info!(archive = %archive.display(), ?images, "imported image archive");
        Ok(images)
    }

    /// Imports every `*.tar` in `dir`, in name order. A missing directory imports
    /// nothing; an archive that fails is reported and the others still go in.
    pub async fn import_dir(&self, dir: &Path) -> Result<DirImport, ImportError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DirImport::default()),
            Err(source) => {
                return Err(ImportError::ReadDir {
                    dir: dir.to_path_buf(),
                    source,
                });
            }
        };
        let mut archives = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| ImportError::ReadDir {
                dir: dir.to_path_buf(),
                source,
            })?;
            let path = entry.path();
            if path.extension().is_some_and(|ext| ext == "tar") && path.is_file() {
                archives.push(path);
            }
        }
        archives.sort();
        let mut report = DirImport::default();
        for archive in archives {
            match self.import(&archive).await {
                Ok(images) => report.imported.extend(images),
                Err(e) => {
                    tracing::warn!(error = %e, "image archive not imported");
                    report.failed.push(e);
                }
            }
        }
        Ok(report)
    }
}

/// ctr prints `unpacking NAME (sha256:…)...done` per image it unpacked.
fn parse_import_output(stdout: &str) -> Vec<ImportedImage> {
    stdout
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("unpacking ")?;
            let (name, rest) = rest.split_once(" (")?;
            let (digest, _) = rest.split_once(')')?;
            Some(ImportedImage {
                name: name.to_owned(),
                digest: digest.to_owned(),
            })
        })
        .collect()
}

/// The last `max` bytes of `s` (on a char boundary), trimmed.
pub(crate) fn tail(s: &str, max: usize) -> String {
    let s = s.trim();
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s[start..].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ctr_output() {
        let out = "unpacking docker.io/library/busybox:latest (sha256:b28b)...done\n\
                   unpacking mast.local/pause:1 (sha256:8b4b)...done\n";
        assert_eq!(
            parse_import_output(out),
            vec![
                ImportedImage {
                    name: "docker.io/library/busybox:latest".into(),
                    digest: "sha256:b28b".into()
                },
                ImportedImage {
                    name: "mast.local/pause:1".into(),
                    digest: "sha256:8b4b".into()
                },
            ]
        );
        assert!(parse_import_output("ctr: something else\n").is_empty());
    }

    #[test]
    fn tails_on_char_boundaries() {
        assert_eq!(tail("  abc  ", 10), "abc");
        assert_eq!(tail("héllo", 4), "llo");
    }

    #[tokio::test]
    async fn missing_dir_imports_nothing() {
        let report = Importer::new("/nonexistent.sock")
            .import_dir(Path::new("/nonexistent/mast-images"))
            .await
            .expect("missing dir is fine");
        assert!(report.imported.is_empty() && report.failed.is_empty());
    }

    #[tokio::test]
    async fn missing_ctr_is_a_spawn_error() {
        let mut importer = Importer::new("/nonexistent.sock");
        importer.ctr = PathBuf::from("/nonexistent/ctr");
        let err = importer.import(Path::new("/x.tar")).await;
        assert!(matches!(err, Err(ImportError::Spawn { .. })), "{err:?}");
    }
}
