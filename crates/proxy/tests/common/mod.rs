//! Network namespaces for the proxy's tests and benchmark: each one is created with a
//! unique name and deleted by Drop on every exit path, so nothing touches the host's
//! tables or routes.

#![allow(dead_code)]

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, ensure};
use proxy::Nft;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Runs a command, failing with its stderr.
pub fn run(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    ensure!(
        out.status.success(),
        "{program} {}: {}: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// `prefix` is short: interface-free names, but `ip netns` names show in errors.
    pub fn new(prefix: &str) -> anyhow::Result<Netns> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "{prefix}-{}-{}-{nanos:x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        run("ip", &["netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// `ip -n NAME ARGS`.
    pub fn ip(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// `ip netns exec NAME ARGS`.
    pub fn exec(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut all = vec!["netns", "exec", &self.name];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// `nft` inside the namespace.
    pub fn nft(&self) -> Nft {
        Nft::with_command(
            ["ip", "netns", "exec", &self.name, "nft"]
                .map(String::from)
                .to_vec(),
        )
    }

    /// Runs `f` on a fresh thread that lives in the namespace (sockets it makes are
    /// born there and stay there).
    pub fn within<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let file = File::open(Path::new("/var/run/netns").join(&self.name))?;
        std::thread::spawn(move || -> anyhow::Result<T> {
            rustix::thread::move_into_link_name_space(
                file.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )?;
            Ok(f())
        })
        .join()
        .map_err(|_| anyhow::anyhow!("thread in the namespace panicked"))?
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = run("ip", &["netns", "del", &self.name]) {
            eprintln!("cleanup: {e:#}");
        }
    }
}
