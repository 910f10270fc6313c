//! Test support shipped with the crate, so every backend and every later crate tests
//! against the same contract and the same real etcd.
//!
//! - [`conformance`]: the suite every [`crate::Store`] backend must pass, one public
//!   async function per property; [`crate::conformance_tests!`] turns them into
//!   `#[tokio::test]`s for a backend.
//! - [`etcd_cluster`]: starts real etcd members (Debian's `etcd-server`) on free
//!   loopback ports in a temp dir, and kills them on drop.

pub mod conformance;
pub mod etcd_cluster;

pub use etcd_cluster::EtcdCluster;

/// Generates one `#[tokio::test]` per conformance case. `$open` is an async function
/// returning `(store, keep_alive)`; `keep_alive` (a temp dir, an etcd process) is held
/// until the case ends.
#[macro_export]
macro_rules! conformance_tests {
    ($open:path) => {
        $crate::conformance_tests!(@cases $open;
            crud_and_revisions,
            write_errors_change_nothing,
            guards,
            revisions_are_ordered,
            watch_replays_missed_events,
            watch_during_concurrent_writes,
            watch_from_now,
            watch_reports_deletes_with_previous_value,
            compaction,
            snapshot_reads,
            paging_is_consistent,
            prefix_isolation,
            size_limit,
            compare_and_swap_race,
        );
    };
    (@cases $open:path; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, _keep_alive) = $open().await;
                $crate::testing::conformance::$case(&store).await;
            }
        )+
    };
}
