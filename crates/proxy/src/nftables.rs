//! The nftables data path: generates the script for a model and applies it,
//! incrementally when the table is known to hold the last script's objects, in full
//! otherwise (first sync, or after a failure — someone may have changed the table).

use std::time::{Duration, Instant};

use crate::model::Model;
use crate::nft::{Nft, NftError};
use crate::rules::{self, Objects, RuleOptions};

/// Figures of one sync, for logs and the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncStats {
    /// Building the script.
    pub generate: Duration,
    /// Running `nft -f -`.
    pub apply: Duration,
    /// The script's size in bytes.
    pub bytes: usize,
    /// Whether the whole table was replaced.
    pub full: bool,
}

/// Owns the table `ip mast-proxy`.
#[derive(Debug)]
pub struct NftProxier {
    nft: Nft,
    options: RuleOptions,
    /// What the last applied script left; `None` forces a full script.
    applied: Option<Objects>,
}

impl NftProxier {
    pub fn new(nft: Nft, options: RuleOptions) -> NftProxier {
        NftProxier {
            nft,
            options,
            applied: None,
        }
    }

    /// Makes the table match `model`. An incremental script that fails is followed
    /// at once by a full one.
    pub async fn sync(&mut self, model: &Model) -> Result<SyncStats, NftError> {
        if let Some(previous) = self.applied.take() {
            match self.apply(model, Some(&previous)).await {
                Ok(stats) => return Ok(stats),
                Err(e) => {
                    tracing::warn!(error = %e, "incremental sync failed; replacing the table")
                }
            }
        }
        self.apply(model, None).await
    }

    async fn apply(
        &mut self,
        model: &Model,
        previous: Option<&Objects>,
    ) -> Result<SyncStats, NftError> {
        let start = Instant::now();
        let script = rules::script(model, &self.options, previous);
        let generate = start.elapsed();
        let start = Instant::now();
        self.nft.apply(&script.text).await?;
        self.applied = Some(script.objects);
        Ok(SyncStats {
            generate,
            apply: start.elapsed(),
            bytes: script.text.len(),
            full: previous.is_none(),
        })
    }

    /// Removes the table (clean exit).
    pub async fn cleanup(&mut self) -> Result<(), NftError> {
        self.applied = None;
        self.nft.delete_table().await
    }
}
