//! Waiting for deleted objects to be gone: an object is gone when it is not found, or
//! when the name now belongs to another object (another uid). Each round asks about
//! every object still pending (one list per type and namespace when several are),
//! backing off from 50 ms to one second; on a terminal, stderr shows how many are left.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use kube::api::{DynamicObject, ListParams};

use crate::ctl::Session;
use crate::ctl::apply::manifest::Located;

const FIRST_POLL: Duration = Duration::from_millis(50);
const MAX_POLL: Duration = Duration::from_secs(1);
/// Above this many objects of one type and namespace, one list beats a get each.
const LIST_ABOVE: usize = 3;

/// An object just deleted, and its uid when the server told it.
#[derive(Debug)]
pub struct Deleted {
    pub object: Located,
    pub uid: Option<String>,
}

impl Deleted {
    /// Whether `found` is this object (same name, and the same uid if known).
    fn is(&self, found: &DynamicObject) -> bool {
        found.metadata.name.as_deref() == Some(self.object.name.as_str())
            && (self.uid.is_none() || found.metadata.uid == self.uid)
    }
}

/// Waits until every object is gone or `timeout` passes; returns those still there.
pub async fn until_gone(
    session: &Session,
    objects: Vec<Deleted>,
    timeout: Duration,
) -> anyhow::Result<Vec<Located>> {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut progress = Progress::new();
    let mut pending = objects;
    let mut interval = FIRST_POLL;
    loop {
        pending = still_there(session, pending).await?;
        let now = Instant::now();
        if pending.is_empty() || now >= deadline {
            progress.clear();
            return Ok(pending.into_iter().map(|d| d.object).collect());
        }
        progress.show(pending.len(), now - started);
        tokio::time::sleep(interval.min(deadline - now)).await;
        interval = (interval * 2).min(MAX_POLL);
    }
}

/// The objects of `pending` that still exist with the same uid.
async fn still_there(session: &Session, pending: Vec<Deleted>) -> anyhow::Result<Vec<Deleted>> {
    // Per type and namespace.
    let mut groups: BTreeMap<(String, Option<String>), Vec<Deleted>> = BTreeMap::new();
    for deleted in pending {
        let key = (
            deleted.object.resource.qualified_plural(),
            deleted.object.namespace.clone(),
        );
        groups.entry(key).or_default().push(deleted);
    }
    let mut remaining = Vec::new();
    for ((_, namespace), group) in groups {
        let api = session.api(&group[0].object.resource, namespace.as_deref());
        if group.len() > LIST_ABOVE {
            let present = api.list(&ListParams::default()).await?.items;
            remaining.extend(
                group
                    .into_iter()
                    .filter(|d| present.iter().any(|p| d.is(p))),
            );
            continue;
        }
        for deleted in group {
            if let Some(found) = api.get_opt(&deleted.object.name).await?
                && deleted.is(&found)
            {
                remaining.push(deleted);
            }
        }
    }
    Ok(remaining)
}

/// A one-line count on stderr, rewritten in place; nothing unless stderr is a terminal.
struct Progress {
    terminal: bool,
    shown: bool,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            shown: false,
        }
    }

    fn show(&mut self, left: usize, elapsed: Duration) {
        if !self.terminal {
            return;
        }
        let noun = if left == 1 { "object" } else { "objects" };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[Kwaiting for {left} {noun} to be deleted ({}s)",
            elapsed.as_secs()
        );
        let _ = err.flush();
        self.shown = true;
    }

    fn clear(&mut self) {
        if self.shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
            self.shown = false;
        }
    }
}
