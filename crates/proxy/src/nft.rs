//! Running `nft`: a script goes in on stdin (`nft -f -`), so one script is one kernel
//! transaction: it applies whole or not at all.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::rules::{self, TABLE};

/// Why `nft` failed.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// The program could not be started.
    #[error("starting {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// Writing the script or reading the answer failed.
    #[error("talking to {program}: {source}")]
    Io {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// `nft` refused (its message says which line).
    #[error("{program} {args} exited with {status}: {stderr}")]
    Failed {
        program: String,
        args: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
}

/// How to run `nft`: the program and the arguments before `nft`'s own (tests run it
/// as `ip netns exec NAME nft` to stay inside their namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nft {
    argv: Vec<String>,
}

impl Default for Nft {
    fn default() -> Self {
        Nft {
            argv: vec!["nft".to_string()],
        }
    }
}

impl Nft {
    /// `argv` is the command that stands for `nft` (e.g. `["ip", "netns", "exec",
    /// "ns1", "nft"]`); an empty one means plain `nft`.
    pub fn with_command(argv: Vec<String>) -> Nft {
        if argv.is_empty() {
            Nft::default()
        } else {
            Nft { argv }
        }
    }

    /// Applies a script as one transaction.
    pub async fn apply(&self, script: &str) -> Result<(), NftError> {
        self.run(&["-f", "-"], Some(script)).await.map(drop)
    }

    /// `nft list table ip mast-proxy`.
    pub async fn list_table(&self) -> Result<String, NftError> {
        self.run(&["list", "table", "ip", TABLE], None).await
    }

    /// Removes the table (nothing happens when it does not exist).
    pub async fn delete_table(&self) -> Result<(), NftError> {
        self.apply(&rules::delete_script()).await
    }

    async fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<String, NftError> {
        let program = self.argv.join(" ");
        let (first, rest) = self.argv.split_first().unwrap_or((&program, &[]));
        let mut child = Command::new(first)
            .args(rest)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| NftError::Spawn {
                program: program.clone(),
                source,
            })?;
        let io = |source| NftError::Io {
            program: program.clone(),
            source,
        };
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // A refused script can make nft exit before reading it all; its status
            // and message then tell more than the broken pipe.
            let written = pipe.write_all(text.as_bytes()).await;
            drop(pipe);
            let out = child.wait_with_output().await.map_err(io)?;
            return finish(&program, args, out, written.err());
        }
        let out = child.wait_with_output().await.map_err(io)?;
        finish(&program, args, out, None)
    }
}

fn finish(
    program: &str,
    args: &[&str],
    out: std::process::Output,
    write_error: Option<std::io::Error>,
) -> Result<String, NftError> {
    if !out.status.success() {
        return Err(NftError::Failed {
            program: program.to_string(),
            args: args.join(" "),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    if let Some(source) = write_error {
        return Err(NftError::Io {
            program: program.to_string(),
            source,
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
