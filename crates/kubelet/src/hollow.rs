//! Hollow nodes: N fake nodes in one process, for scale tests (upstream's kubemark).
//! They share everything that can be shared, so a node costs a few kilobytes:
//! one kube client, one pod watch (all bound pods, dispatched by spec.nodeName), one
//! node watch, one task renewing every lease and one updating every status (each spread
//! over its period), one HTTP server whose port every node publishes. Each node keeps
//! its own fake runtime, hence its own pod IP range.

use std::sync::Arc;

use crate::runtime::Runtime;
use crate::runtime::fake::FakeRuntime;

/// `base-0` … `base-(count-1)`.
pub fn node_names(base: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{base}-{i}")).collect()
}

/// `count` hollow nodes named after `base`, each with its fake runtime.
pub fn fake_nodes(base: &str, count: usize) -> Vec<(String, Arc<dyn Runtime>)> {
    node_names(base, count)
        .into_iter()
        .map(|name| {
            let runtime: Arc<dyn Runtime> = Arc::new(FakeRuntime::new(&name));
            (name, runtime)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            node_names("hollow", 3),
            ["hollow-0", "hollow-1", "hollow-2"]
        );
        assert!(node_names("x", 0).is_empty());
        let nodes = fake_nodes("h", 2);
        assert_eq!(nodes[1].0, "h-1");
        assert_eq!(nodes[1].1.version().name, "fake");
    }
}
