//! `mast images import FILE.tar…`: puts image archives where the kubelet finds them.
//!
//! Each archive is copied into `DATA_DIR/agent/images/` (the kubelet imports that
//! directory whenever it starts) and, when the kubelet's containerd is up, imported into
//! it at once. With `--container-runtime-endpoint`, archives go straight into that
//! runtime instead.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};

/// How long a running containerd gets to answer before the import is left for the
/// kubelet's next start.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `mast images …`.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    #[command(subcommand)]
    command: ImagesCommand,
}

#[derive(Debug, Subcommand)]
enum ImagesCommand {
    /// Import image archives (OCI or docker `save` tar files) for the kubelet.
    Import(ImportArgs),
}

#[derive(Debug, Args)]
struct ImportArgs {
    /// The archives.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The kubelet's data dir.
    #[arg(long, default_value = "/var/lib/mast/kubelet")]
    data_dir: PathBuf,
    /// Import into the runtime at this CRI endpoint (`unix:///…`) instead.
    #[arg(long)]
    container_runtime_endpoint: Option<String>,
}

/// The snapshotter our containerd's CRI plugin unpacks into, from its config (images
/// must be unpacked into the same one to run).
fn snapshotter(config: &Path) -> Option<String> {
    let text = std::fs::read_to_string(config).ok()?;
    text.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "snapshotter").then(|| value.trim().trim_matches('"').to_string())
    })
}

async fn import(args: ImportArgs) -> anyhow::Result<()> {
    if let Some(endpoint) = &args.container_runtime_endpoint {
        let socket = cri::client::socket_path(endpoint)?;
        let importer = cri::Importer::new(socket);
        for file in &args.files {
            for image in importer.import(file).await? {
                println!("imported {} ({})", image.name, image.digest);
            }
        }
        return Ok(());
    }
    let dir = args.data_dir.join("agent").join("images");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let containerd = args.data_dir.join("containerd");
    let socket = containerd.join("containerd.sock");
    let running = cri::CriClient::for_socket(&socket)
        .with_timeout(PROBE_TIMEOUT)
        .version()
        .await
        .is_ok();
    let mut importer = cri::Importer::new(&socket);
    if let Some(snapshotter) = snapshotter(&containerd.join("config.toml")) {
        importer = importer.with_snapshotter(snapshotter);
    }
    for file in &args.files {
        let name = file
            .file_name()
            .with_context(|| format!("{} is not a file", file.display()))?;
        let mut target = dir.join(name);
        if target.extension().is_none_or(|e| e != "tar") {
            // The kubelet's import reads `*.tar` only.
            target.as_mut_os_string().push(".tar");
        }
        let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
        std::fs::copy(file, &tmp).with_context(|| format!("copying {}", file.display()))?;
        std::fs::rename(&tmp, &target)
            .with_context(|| format!("moving the archive to {}", target.display()))?;
        println!("stored {}", target.display());
        if running {
            for image in importer.import(&target).await? {
                println!("imported {} ({})", image.name, image.digest);
            }
        }
    }
    if !running {
        println!("the kubelet's containerd is not running: the images are imported when it starts");
    }
    Ok(())
}

pub async fn run(args: ImagesArgs) -> anyhow::Result<()> {
    match args.command {
        ImagesCommand::Import(args) => import(args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshotter_from_config() {
        let dir = tempfile::tempdir().expect("dir");
        let config = dir.path().join("config.toml");
        std::fs::write(&config, "[plugins]\n  snapshotter = \"native\"\n").expect("write");
        assert_eq!(snapshotter(&config).as_deref(), Some("native"));
        assert_eq!(snapshotter(&dir.path().join("none")), None);
    }
}
