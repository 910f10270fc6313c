//! Pod cgroups. The sandbox's cgroup parent is `ROOT/pod<uid>` (cgroupfs driver);
//! runc creates and removes each container's cgroup under it but never the parent, so
//! the kubelet removes it when the pod goes, in every v1 hierarchy and the v2 one.

use std::path::Path;

/// Where cgroup hierarchies are mounted.
const CGROUP_FS: &str = "/sys/fs/cgroup";

/// The cgroup parent of pod `uid` under `root`.
pub fn pod_parent(root: &str, uid: &str) -> String {
    format!("/{}/pod{uid}", root.trim_matches('/'))
}

/// Removes the pod's cgroup (and anything runc left under it) from every hierarchy.
/// Best effort: a cgroup still holding processes stays, and is retried next time.
pub fn remove_pod(parent: &str) {
    remove_under(Path::new(CGROUP_FS), parent);
}

fn remove_under(fs: &Path, parent: &str) {
    let Ok(hierarchies) = std::fs::read_dir(fs) else {
        return;
    };
    for h in hierarchies.flatten() {
        // `cpu,cpuacct` style links point at a hierarchy visited under its own name.
        if h.path().is_symlink() {
            continue;
        }
        let dir = h.path().join(parent.trim_start_matches('/'));
        if dir.is_dir() {
            remove_tree(&dir);
        }
    }
}

/// rmdir, deepest first (cgroup directories only go away empty of children).
fn remove_tree(dir: &Path) {
    if let Ok(children) = std::fs::read_dir(dir) {
        for child in children.flatten() {
            if child.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&child.path());
            }
        }
    }
    if let Err(e) = std::fs::remove_dir(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::debug!(dir = %dir.display(), error = %e, "pod cgroup not removed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents() {
        assert_eq!(pod_parent("/kubepods", "u1"), "/kubepods/podu1");
        assert_eq!(pod_parent("kubepods/", "u1"), "/kubepods/podu1");
    }

    #[test]
    fn trees_are_removed_deepest_first() {
        let dir = std::env::temp_dir().join(format!("mast-cgroups-{}", std::process::id()));
        let pod = dir.join("memory/kubepods/podu1/c1");
        std::fs::create_dir_all(&pod).expect("dirs");
        remove_under(&dir, "/kubepods/podu1");
        assert!(!dir.join("memory/kubepods/podu1").exists());
        assert!(dir.join("memory/kubepods").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
