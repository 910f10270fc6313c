//! The admin kubeconfig `--write-kubeconfig` writes: one cluster, one user, one
//! context, accepted by kubectl, the Python client and kube-rs.

use std::io::Write;
use std::path::Path;

/// The kubeconfig text for a server URL.
pub fn render(server: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: mast
  cluster:
    server: {server}
users:
- name: mast-admin
  user: {{}}
contexts:
- name: mast
  context:
    cluster: mast
    user: mast-admin
current-context: mast
preferences: {{}}
"
    )
}

/// Writes the kubeconfig atomically (a temp file renamed into place), so a reader
/// polling for the file never sees half of it; only the owner may read it.
pub fn write(path: &Path, server: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    {
        let mut file = std::fs::File::create(&tmp)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(render(server).as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_atomically_with_the_server() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/kubeconfig");
        write(&path, "http://127.0.0.1:6443").expect("write");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains("server: http://127.0.0.1:6443"));
        assert!(text.contains("current-context: mast"));
        assert!(!path.with_extension("tmp").exists());
    }
}
