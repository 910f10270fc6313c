//! Service cluster IPs and node ports through the router, over a SQLite store in a temp
//! dir: allocation on create, requested values, upstream's 422s, headless and
//! ExternalName Services, type changes, release on delete, two API servers racing on
//! one store, the repair pass, and the API server's own `kubernetes` Service.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use apiserver::allocator::{IP_PREFIX, NODE_PORT_PREFIX, ServiceRanges};
use apiserver::{AppState, router};
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use store::{AnyStore, DatastoreConfig, Store};
use tower::ServiceExt;

struct Fixture {
    state: AppState,
    app: Router,
    store: AnyStore,
    _dir: tempfile::TempDir,
}

async fn fixture_with(ranges: ServiceRanges) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = DatastoreConfig::from_endpoint(dir.path(), None).expect("config");
    let store = AnyStore::open(config).await.expect("open store");
    let state = AppState::with_services(store.clone(), 100, Default::default(), ranges);
    apiserver::server::bootstrap(&state)
        .await
        .expect("bootstrap");
    Fixture {
        app: router(state.clone()),
        state,
        store,
        _dir: dir,
    }
}

async fn fixture() -> Fixture {
    fixture_with(ServiceRanges::default()).await
}

async fn send(
    app: &Router,
    method: Method,
    uri: &str,
    content_type: &str,
    body: Value,
) -> (StatusCode, Value) {
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type)
        .body(Body::from(text))
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("response");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

const SERVICES: &str = "/api/v1/namespaces/default/services";

async fn create(app: &Router, name: &str, spec: Value) -> (StatusCode, Value) {
    let body =
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec});
    send(app, Method::POST, SERVICES, "application/json", body).await
}

fn web(extra: Value) -> Value {
    let mut spec = json!({"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    spec
}

fn cluster_ip(svc: &Value) -> String {
    svc["spec"]["clusterIP"].as_str().unwrap_or("").to_string()
}

fn in_default_range(ip: &str) -> bool {
    let Ok(addr) = ip.parse::<Ipv4Addr>() else {
        return false;
    };
    let o = addr.octets();
    o[0] == 10 && o[1] == 43 && ip != "10.43.0.0" && ip != "10.43.255.255"
}

async fn keys(store: &AnyStore, prefix: &str) -> Vec<String> {
    store
        .list(prefix.as_bytes(), 0, 0, None)
        .await
        .expect("list")
        .items
        .iter()
        .map(|kv| String::from_utf8_lossy(&kv.key[prefix.len()..]).into_owned())
        .collect()
}

fn message(status: &Value) -> &str {
    status["message"].as_str().unwrap_or("")
}

#[tokio::test]
async fn create_allocates_a_cluster_ip_from_the_range() {
    let f = fixture().await;
    let (code, svc) = create(&f.app, "web", web(json!({}))).await;
    assert_eq!(code, StatusCode::CREATED, "{svc}");
    let ip = cluster_ip(&svc);
    assert!(in_default_range(&ip), "{ip}");
    assert_ne!(ip, "10.43.0.1");
    assert_ne!(ip, "10.43.0.10");
    assert_eq!(svc["spec"]["clusterIPs"], json!([ip]));
    assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv4"]));
    assert_eq!(svc["spec"]["ipFamilyPolicy"], json!("SingleStack"));
    // Dynamic allocation prefers the upper band: above the first 256 addresses.
    let index =
        u32::from(ip.parse::<Ipv4Addr>().expect("ip")) - u32::from(Ipv4Addr::new(10, 43, 0, 1));
    assert!(index >= 256, "{ip}");
    assert_eq!(keys(&f.store, IP_PREFIX).await, vec![ip.clone()]);
    // The allocation is no Service: a list shows the one Service only.
    let (_, list) = send(
        &f.app,
        Method::GET,
        SERVICES,
        "application/json",
        Value::Null,
    )
    .await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
    // The stored object reads back the same.
    let (_, got) = send(
        &f.app,
        Method::GET,
        &format!("{SERVICES}/web"),
        "application/json",
        Value::Null,
    )
    .await;
    assert_eq!(cluster_ip(&got), ip);
}

#[tokio::test]
async fn requested_cluster_ips_are_honoured_once() {
    let f = fixture().await;
    let (code, svc) = create(&f.app, "dns", web(json!({"clusterIP": "10.43.0.10"}))).await;
    assert_eq!(code, StatusCode::CREATED, "{svc}");
    assert_eq!(cluster_ip(&svc), "10.43.0.10");
    assert_eq!(svc["spec"]["clusterIPs"], json!(["10.43.0.10"]));

    let (code, status) = create(&f.app, "dns2", web(json!({"clusterIP": "10.43.0.10"}))).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{status}");
    assert_eq!(
        message(&status),
        "Service \"dns2\" is invalid: spec.clusterIPs: Invalid value: [\"10.43.0.10\"]: failed to allocate IP 10.43.0.10: provided IP is already allocated"
    );
    assert_eq!(
        status["details"]["causes"][0]["field"],
        json!("spec.clusterIPs")
    );

    let (code, status) = create(&f.app, "far", web(json!({"clusterIP": "10.99.0.1"}))).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{status}");
    assert_eq!(
        message(&status),
        "Service \"far\" is invalid: spec.clusterIPs: Invalid value: [\"10.99.0.1\"]: failed to allocate IP 10.99.0.1: provided IP 10.99.0.1 is not in the valid range"
    );
    // Failed creates leave nothing behind.
    assert_eq!(
        keys(&f.store, IP_PREFIX).await,
        vec!["10.43.0.10".to_string()]
    );
}

#[tokio::test]
async fn headless_and_external_name_services_take_nothing() {
    let f = fixture().await;
    let (code, svc) = create(&f.app, "db", web(json!({"clusterIP": "None"}))).await;
    assert_eq!(code, StatusCode::CREATED, "{svc}");
    assert_eq!(svc["spec"]["clusterIP"], json!("None"));
    assert_eq!(svc["spec"]["clusterIPs"], json!(["None"]));
    assert_eq!(svc["spec"]["ipFamilyPolicy"], json!("SingleStack"));

    let spec = json!({"type": "ExternalName", "externalName": "db.example.com"});
    let (code, svc) = create(&f.app, "ext", spec).await;
    assert_eq!(code, StatusCode::CREATED, "{svc}");
    for absent in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
        assert_eq!(svc["spec"].get(absent), None, "{absent}: {svc}");
    }
    assert!(keys(&f.store, IP_PREFIX).await.is_empty());
    assert!(keys(&f.store, NODE_PORT_PREFIX).await.is_empty());
}

#[tokio::test]
async fn node_ports_are_allocated_and_requested_ones_checked() {
    let f = fixture().await;
    let spec = json!({"type": "NodePort", "selector": {"app": "web"}, "ports": [
        {"name": "http", "port": 80},
        {"name": "fixed", "port": 81, "nodePort": 30081},
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
    ]});
    let (code, svc) = create(&f.app, "edge", spec).await;
    assert_eq!(code, StatusCode::CREATED, "{svc}");
    let ports: Vec<i64> = (0..4)
        .map(|i| svc["spec"]["ports"][i]["nodePort"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(ports[1], 30081);
    assert!(
        ports.iter().all(|p| (30000..=32767).contains(p)),
        "{ports:?}"
    );
    // A UDP and a TCP port of one number share one node port, as upstream.
    assert_eq!(ports[2], ports[3]);
    assert!(in_default_range(&cluster_ip(&svc)));
    assert_eq!(keys(&f.store, NODE_PORT_PREFIX).await.len(), 3);

    let taken = json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30081}]});
    let (code, status) = create(&f.app, "clash", taken).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{status}");
    assert_eq!(
        message(&status),
        "Service \"clash\" is invalid: spec.ports[0].nodePort: Invalid value: 30081: provided port is already allocated"
    );
    let outside = json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 40000}]});
    let (code, status) = create(&f.app, "outside", outside).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{status}");
    assert!(
        message(&status).ends_with("spec.ports[0].nodePort: Invalid value: 40000: provided port is not in the valid range. The range of valid ports is 30000-32767"),
        "{status}"
    );
    // The failed creates gave back the cluster IPs they had taken.
    assert_eq!(keys(&f.store, IP_PREFIX).await.len(), 1);
}

#[tokio::test]
async fn type_changes_take_and_give_back_node_ports() {
    let f = fixture().await;
    let (code, svc) = create(&f.app, "web", web(json!({}))).await;
    assert_eq!(code, StatusCode::CREATED, "{svc}");
    let ip = cluster_ip(&svc);
    let uri = format!("{SERVICES}/web");
    let merge = "application/merge-patch+json";

    let (code, svc) = send(
        &f.app,
        Method::PATCH,
        &uri,
        merge,
        json!({"spec": {"type": "NodePort"}}),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{svc}");
    let node_port = svc["spec"]["ports"][0]["nodePort"].as_i64().unwrap_or(0);
    assert!((30000..=32767).contains(&node_port), "{svc}");
    assert_eq!(cluster_ip(&svc), ip, "the cluster IP stays");
    assert_eq!(
        keys(&f.store, NODE_PORT_PREFIX).await,
        vec![node_port.to_string()]
    );

    let (code, svc) = send(
        &f.app,
        Method::PATCH,
        &uri,
        merge,
        json!({"spec": {"type": "ClusterIP"}}),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{svc}");
    assert_eq!(svc["spec"]["ports"][0].get("nodePort"), None, "{svc}");
    assert_eq!(svc["spec"].get("externalTrafficPolicy"), None, "{svc}");
    assert!(keys(&f.store, NODE_PORT_PREFIX).await.is_empty());

    // The cluster IP cannot change, with upstream's message.
    let (code, status) = send(
        &f.app,
        Method::PATCH,
        &uri,
        merge,
        json!({"spec": {"clusterIP": "10.43.0.99"}}),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{status}");
    assert_eq!(
        message(&status),
        "Service \"web\" is invalid: spec.clusterIPs[0]: Invalid value: [\"10.43.0.99\"]: may not change once set"
    );

    // Resubmitting the original body (no clusterIP) keeps the allocated address.
    let body = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": web(json!({}))});
    let (code, svc) = send(&f.app, Method::PUT, &uri, "application/json", body).await;
    assert_eq!(code, StatusCode::OK, "{svc}");
    assert_eq!(cluster_ip(&svc), ip);

    // To ExternalName and back: the address goes, a new one comes.
    let (code, svc) = send(
        &f.app,
        Method::PATCH,
        &uri,
        merge,
        json!({"spec": {"type": "ExternalName", "externalName": "x.example.com"}}),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{svc}");
    assert_eq!(svc["spec"].get("clusterIP"), None, "{svc}");
    assert!(keys(&f.store, IP_PREFIX).await.is_empty());
    let (code, svc) = send(
        &f.app,
        Method::PATCH,
        &uri,
        merge,
        json!({"spec": {"type": "ClusterIP", "externalName": null}}),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{svc}");
    assert!(in_default_range(&cluster_ip(&svc)), "{svc}");
    assert_eq!(keys(&f.store, IP_PREFIX).await, vec![cluster_ip(&svc)]);
}

#[tokio::test]
async fn delete_releases_everything() {
    let f = fixture().await;
    let spec = json!({"type": "NodePort", "clusterIP": "10.43.7.7", "ports": [{"port": 80, "nodePort": 30500}]});
    let (code, svc) = create(&f.app, "a", spec.clone()).await;
    assert_eq!(code, StatusCode::CREATED, "{svc}");
    let (code, _) = send(
        &f.app,
        Method::DELETE,
        &format!("{SERVICES}/a"),
        "application/json",
        Value::Null,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert!(keys(&f.store, IP_PREFIX).await.is_empty());
    assert!(keys(&f.store, NODE_PORT_PREFIX).await.is_empty());
    // Both can be had again at once.
    let (code, svc) = create(&f.app, "b", spec).await;
    assert_eq!(code, StatusCode::CREATED, "{svc}");
    assert_eq!(cluster_ip(&svc), "10.43.7.7");
}

#[tokio::test]
async fn a_full_range_says_so() {
    let ranges = ServiceRanges {
        cluster_ips: "10.50.0.0/29".parse().expect("cidr"),
        node_ports: "30000-30001".parse().expect("ports"),
    };
    let f = fixture_with(ranges).await;
    // /29: six usable addresses; the first is the kubernetes Service's.
    let mut ips = BTreeSet::new();
    for i in 0..5 {
        let (code, svc) = create(&f.app, &format!("s{i}"), web(json!({}))).await;
        assert_eq!(code, StatusCode::CREATED, "{svc}");
        ips.insert(cluster_ip(&svc));
    }
    let want: BTreeSet<String> = (2..=6).map(|i| format!("10.50.0.{i}")).collect();
    assert_eq!(ips, want);
    let (code, status) = create(&f.app, "s5", web(json!({}))).await;
    assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR, "{status}");
    assert_eq!(
        message(&status),
        "Internal error occurred: failed to allocate a serviceIP: range is full"
    );
    // Requested, the reserved first address is still there.
    let (code, svc) = create(&f.app, "first", web(json!({"clusterIP": "10.50.0.1"}))).await;
    assert_eq!(code, StatusCode::CREATED, "{svc}");

    let (code, _) = send(
        &f.app,
        Method::DELETE,
        &format!("{SERVICES}/s0"),
        "application/json",
        Value::Null,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let np = json!({"type": "NodePort", "ports": [{"name": "a", "port": 1}, {"name": "b", "port": 2}, {"name": "c", "port": 3}]});
    let (code, status) = create(&f.app, "np", np).await;
    assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR, "{status}");
    assert_eq!(
        message(&status),
        "Internal error occurred: failed to allocate a nodePort: range is full"
    );
    // The two ports it took and the address were given back.
    assert!(keys(&f.store, NODE_PORT_PREFIX).await.is_empty());
    assert_eq!(keys(&f.store, IP_PREFIX).await.len(), 5);
}

#[tokio::test]
async fn two_api_servers_never_hand_out_one_address_twice() {
    let ranges = ServiceRanges {
        cluster_ips: "10.60.0.0/24".parse().expect("cidr"),
        node_ports: ServiceRanges::default().node_ports,
    };
    let f = fixture_with(ranges).await;
    // A second API server over the same store.
    let second = router(AppState::with_services(
        f.store.clone(),
        100,
        Default::default(),
        ranges,
    ));
    let apps = [f.app.clone(), second];
    let mut tasks = Vec::new();
    for i in 0..120 {
        let app = apps[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            let spec = json!({"type": "NodePort", "ports": [{"port": 80}]});
            create(&app, &format!("s{i}"), spec).await
        }));
    }
    let mut ips = BTreeSet::new();
    let mut ports = BTreeSet::new();
    for task in tasks {
        let (code, svc) = task.await.expect("task");
        assert_eq!(code, StatusCode::CREATED, "{svc}");
        assert!(ips.insert(cluster_ip(&svc)), "duplicate address {svc}");
        assert!(
            ports.insert(svc["spec"]["ports"][0]["nodePort"].as_i64().unwrap_or(0)),
            "duplicate port {svc}"
        );
    }
    // A /24 has 238 addresses in its upper band: 120 services fill half, so many
    // random probes collide and fall back to the listed scan.
    assert_eq!(ips.len(), 120);
    assert_eq!(keys(&f.store, IP_PREFIX).await.len(), 120);
}

#[tokio::test]
async fn repair_frees_leaks_and_records_what_is_missing() {
    let f = fixture().await;
    let (code, svc) = create(&f.app, "web", web(json!({}))).await;
    assert_eq!(code, StatusCode::CREATED, "{svc}");
    let ip = cluster_ip(&svc);
    // A leak: an allocation written by a create that never wrote its Service.
    let leak = json!({"namespace": "default", "name": "gone", "uid": "x", "allocatedAt": 0});
    f.store
        .create(
            format!("{IP_PREFIX}10.43.9.9").as_bytes(),
            leak.to_string().into(),
            None,
        )
        .await
        .expect("leak");
    // A missing record: the Service's own allocation lost.
    let kv = f
        .store
        .get(format!("{IP_PREFIX}{ip}").as_bytes())
        .await
        .expect("get");
    f.store
        .delete(kv.key.as_ref(), None, None)
        .await
        .expect("delete");
    // A fresh leak is left alone during the grace period.
    let fresh =
        json!({"namespace": "default", "name": "racing", "uid": "y", "allocatedAt": i64::MAX / 2});
    f.store
        .create(
            format!("{IP_PREFIX}10.43.9.10").as_bytes(),
            fresh.to_string().into(),
            None,
        )
        .await
        .expect("fresh");

    let report = f
        .state
        .allocators()
        .repair(Duration::from_secs(60))
        .await
        .expect("repair");
    assert_eq!((report.freed, report.recorded), (1, 1), "{report:?}");
    let mut want = vec![ip.clone(), "10.43.9.10".to_string()];
    want.sort();
    assert_eq!(keys(&f.store, IP_PREFIX).await, want);
    // The freed address is allocatable again.
    let (code, svc) = create(&f.app, "again", web(json!({"clusterIP": "10.43.9.9"}))).await;
    assert_eq!(code, StatusCode::CREATED, "{svc}");
    // Deleting the recorded Service releases its (re-recorded) address.
    let (code, _) = send(
        &f.app,
        Method::DELETE,
        &format!("{SERVICES}/web"),
        "application/json",
        Value::Null,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert!(!keys(&f.store, IP_PREFIX).await.contains(&ip));
}

#[tokio::test]
async fn the_kubernetes_service_names_this_api_server() {
    let f = fixture().await;
    let advertise = "127.0.0.1:6443".parse().expect("address");
    apiserver::kubernetes_service::reconcile(&f.state, advertise)
        .await
        .expect("reconcile");
    // Twice is the same as once.
    apiserver::kubernetes_service::reconcile(&f.state, advertise)
        .await
        .expect("reconcile again");
    let get = |path: &'static str| send(&f.app, Method::GET, path, "application/json", Value::Null);
    let (code, svc) = get("/api/v1/namespaces/default/services/kubernetes").await;
    assert_eq!(code, StatusCode::OK, "{svc}");
    assert_eq!(cluster_ip(&svc), "10.43.0.1");
    assert_eq!(
        svc["spec"]["ports"],
        json!([{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}])
    );
    assert_eq!(svc["spec"].get("selector"), None);
    let (_, endpoints) = get("/api/v1/namespaces/default/endpoints/kubernetes").await;
    assert_eq!(
        endpoints["subsets"],
        json!([{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}])
    );
    let (_, slice) =
        get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes").await;
    assert_eq!(
        slice["metadata"]["labels"]["kubernetes.io/service-name"],
        json!("kubernetes")
    );
    assert_eq!(slice["endpoints"][0]["addresses"], json!(["127.0.0.1"]));
    assert_eq!(slice["ports"][0]["port"], json!(6443));
    // A user cannot take the address.
    let (code, status) = create(&f.app, "thief", web(json!({"clusterIP": "10.43.0.1"}))).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{status}");
    // A second API server adds itself and keeps the first.
    apiserver::kubernetes_service::reconcile(&f.state, "10.0.0.2:6443".parse().expect("address"))
        .await
        .expect("second");
    let (_, endpoints) = get("/api/v1/namespaces/default/endpoints/kubernetes").await;
    assert_eq!(
        endpoints["subsets"][0]["addresses"],
        json!([{"ip": "10.0.0.2"}, {"ip": "127.0.0.1"}])
    );
}
