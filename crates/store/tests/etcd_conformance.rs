//! The conformance suite on a real etcd (Debian's `etcd-server`), one member per case.

use store::EtcdStore;
use store::testing::EtcdCluster;

async fn open() -> (EtcdStore, EtcdCluster) {
    let cluster = EtcdCluster::start(1).await.expect("start etcd");
    let store = cluster.store().await.expect("connect to etcd");
    (store, cluster)
}

store::conformance_tests!(open);
