//! What `mast up` needs from the machine, checked before anything starts, so that each
//! missing piece is one clear line instead of a failure halfway through.

use std::path::Path;

/// Programs the node runs, and the Debian package that has each.
const PROGRAMS: &[(&str, &str)] = &[
    ("containerd", "containerd"),
    ("containerd-shim-runc-v2", "containerd"),
    ("runc", "runc"),
    ("nft", "nftables"),
    ("ip", "iproute2"),
];

/// One line per missing prerequisite; empty when all is there.
pub async fn missing_prerequisites(kubelet_dir: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    if !super::is_root() {
        missing.push(
            "mast up runs containers and sets network rules, which needs root: run it with sudo"
                .to_string(),
        );
    }
    for (program, package) in PROGRAMS {
        if on_path(program).is_none() {
            missing.push(format!(
                "{program} not found on PATH (Debian: apt-get install {package})"
            ));
        }
    }
    if let Err(e) = cri::containerd::find_cni_bin_dir().await {
        missing.push(format!(
            "{e} (Debian: apt-get install containernetworking-plugins)"
        ));
    }
    let images = kubelet_dir.join("agent").join("images");
    if !has_pause_image(&images) {
        missing.push(format!(
            "the pod sandbox image ({}) is not in {}: `bash scripts/build-images.sh {}` builds it",
            cri::containerd::PAUSE_IMAGE,
            images.display(),
            images.display()
        ));
    }
    missing
}

/// The first `program` in `$PATH` that is an executable file.
fn on_path(program: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Whether the images dir holds the pause archive (`scripts/build-images.sh` names it
/// `pause.tar`; the kubelet imports the dir whenever it starts).
fn has_pause_image(images: &Path) -> bool {
    images.join("pause.tar").is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_on_path() {
        assert!(on_path("sh").is_some());
        assert!(on_path("no-such-program-mast").is_none());
    }

    #[test]
    fn the_pause_archive_is_looked_for() {
        let dir = tempfile::tempdir().expect("dir");
        assert!(!has_pause_image(dir.path()));
        std::fs::write(dir.path().join("pause.tar"), b"x").expect("write");
        assert!(has_pause_image(dir.path()));
    }
}
