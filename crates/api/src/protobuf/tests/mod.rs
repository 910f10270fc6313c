//! Bodies built by hand with a tiny encoder, one test per kind with the exact JSON
//! expected; bodies captured from kubectl compared with kubectl's own JSON; and
//! malformed input of every kind, which must fail cleanly.

mod fixtures;

use serde_json::{Value, json};

use super::{MAGIC, ProtobufError, decode};

/// A protobuf writer just big enough to build test bodies.
#[derive(Debug, Default, Clone)]
struct Pb(Vec<u8>);

impl Pb {
    fn new() -> Self {
        Pb::default()
    }

    fn put_varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, number: u32, wire_type: u8) {
        self.put_varint((u64::from(number) << 3) | u64::from(wire_type));
    }

    fn varint(mut self, number: u32, v: u64) -> Self {
        self.key(number, 0);
        self.put_varint(v);
        self
    }

    /// `int32` and `int64` alike: negative numbers take ten bytes.
    fn int(self, number: u32, v: i64) -> Self {
        self.varint(number, v as u64)
    }

    fn bool(self, number: u32, v: bool) -> Self {
        self.varint(number, u64::from(v))
    }

    fn bytes(mut self, number: u32, bytes: &[u8]) -> Self {
        self.key(number, 2);
        self.put_varint(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
        self
    }

    fn str(self, number: u32, s: &str) -> Self {
        self.bytes(number, s.as_bytes())
    }

    fn msg(self, number: u32, message: Pb) -> Self {
        self.bytes(number, &message.0)
    }

    /// A `map<string, string>` entry.
    fn entry(self, number: u32, key: &str, value: &str) -> Self {
        self.msg(number, Pb::new().str(1, key).str(2, value))
    }

    /// A `map<string, Quantity>` entry.
    fn quantity_entry(self, number: u32, key: &str, value: &str) -> Self {
        self.msg(number, Pb::new().str(1, key).msg(2, quantity(value)))
    }

    fn fixed64(mut self, number: u32, v: u64) -> Self {
        self.key(number, 1);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    fn fixed32(mut self, number: u32, v: u32) -> Self {
        self.key(number, 5);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
}

/// The full body: magic, then `runtime.Unknown` around `raw`.
fn body(api_version: &str, kind: &str, raw: Pb) -> Vec<u8> {
    let unknown = Pb::new()
        .msg(1, Pb::new().str(1, api_version).str(2, kind))
        .msg(2, raw)
        .str(3, "")
        .str(4, "");
    let mut out = MAGIC.to_vec();
    out.extend(unknown.0);
    out
}

fn time(seconds: i64) -> Pb {
    Pb::new().int(1, seconds)
}

fn quantity(s: &str) -> Pb {
    Pb::new().str(1, s)
}

fn int_value(v: i64) -> Pb {
    Pb::new().int(1, 0).int(2, v)
}

fn str_value(s: &str) -> Pb {
    Pb::new().int(1, 1).str(3, s)
}

fn name(name: &str) -> Pb {
    Pb::new().str(1, name)
}

/// 2024-05-06T12:53:20Z.
const T: i64 = 1_715_000_000;
const T_JSON: &str = "2024-05-06T12:53:20Z";

fn decoded(bytes: &[u8]) -> Value {
    match decode(bytes) {
        Ok(value) => value,
        Err(error) => panic!("decode failed: {error}"),
    }
}

// Kubectl's own bodies.

/// Upstream now declares `creationTimestamp` `omitzero`; kubectl 1.32 still prints a
/// zero one as `null`. Everything else must match kubectl byte for byte.
fn without_null_creation_timestamps(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if object.get("creationTimestamp") == Some(&Value::Null) {
                object.remove("creationTimestamp");
            }
            object
                .values_mut()
                .for_each(without_null_creation_timestamps);
        }
        Value::Array(items) => items.iter_mut().for_each(without_null_creation_timestamps),
        _ => {}
    }
}

#[test]
fn kubectl_bodies_decode_to_kubectls_json() {
    for capture in fixtures::ALL {
        let mut expected: Value = match serde_json::from_str(capture.json) {
            Ok(value) => value,
            Err(error) => panic!("{}: fixture json: {error}", capture.command),
        };
        without_null_creation_timestamps(&mut expected);
        let actual = match decode(capture.body) {
            Ok(value) => value,
            Err(error) => panic!("{}: {error}", capture.command),
        };
        assert_eq!(actual, expected, "{}", capture.command);
    }
}

#[test]
fn kubectl_drain_delete_options() {
    for capture in fixtures::DELETES {
        let expected: Value = match serde_json::from_str(capture.json) {
            Ok(value) => value,
            Err(error) => panic!("{}: fixture json: {error}", capture.command),
        };
        assert_eq!(decoded(capture.body), expected, "{}", capture.command);
    }
}

#[test]
fn kubectl_deployment_in_full() {
    assert_eq!(
        decoded(fixtures::DEPLOYMENT.body),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{
                        "name": "nginx",
                        "image": "nginx:1.27",
                        "ports": [{"containerPort": 80}],
                        "resources": {}
                    }]}
                },
                "strategy": {}
            },
            "status": {}
        })
    );
}

#[test]
fn kubectl_secret_data_is_base64() {
    assert_eq!(
        decoded(fixtures::SECRET_GENERIC.body)["data"],
        json!({"user": "YWRtaW4=", "pw": "cEBzcw=="})
    );
    assert_eq!(
        decoded(fixtures::CONFIG_MAP_FROM_FILES.body)["binaryData"],
        json!({"bin.dat": "AAH//g=="})
    );
}

// One hand-built body per kind.

fn full_meta() -> Pb {
    Pb::new()
        .str(1, "cm")
        .str(2, "cm-")
        .str(3, "default")
        .str(4, "")
        .str(5, "0d6f5d36-uid")
        .str(6, "42")
        .int(7, 3)
        .msg(8, time(T))
        .msg(9, time(T + 60))
        .int(10, 30)
        .entry(11, "app", "web")
        .entry(11, "tier", "front")
        .entry(12, "example.com/note", "")
        .msg(
            13,
            Pb::new()
                .str(1, "ReplicaSet")
                .str(3, "web-1")
                .str(4, "rs-uid")
                .str(5, "apps/v1")
                .bool(6, true)
                .bool(7, false),
        )
        .str(14, "example.com/guard")
        .str(14, "kubernetes")
        .msg(
            17,
            Pb::new()
                .str(1, "kubectl")
                .str(2, "Update")
                .str(3, "v1")
                .msg(4, time(T))
                .str(6, "FieldsV1")
                .msg(7, Pb::new().str(1, r#"{"f:data":{".":{}}}"#)),
        )
}

fn full_meta_json() -> Value {
    json!({
        "name": "cm",
        "generateName": "cm-",
        "namespace": "default",
        "uid": "0d6f5d36-uid",
        "resourceVersion": "42",
        "generation": 3,
        "creationTimestamp": T_JSON,
        "deletionTimestamp": "2024-05-06T12:54:20Z",
        "deletionGracePeriodSeconds": 30,
        "labels": {"app": "web", "tier": "front"},
        "annotations": {"example.com/note": ""},
        "ownerReferences": [{
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "web-1",
            "uid": "rs-uid",
            "controller": true,
            "blockOwnerDeletion": false
        }],
        "finalizers": ["example.com/guard", "kubernetes"],
        "managedFields": [{
            "manager": "kubectl",
            "operation": "Update",
            "apiVersion": "v1",
            "time": T_JSON,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {".": {}}}
        }]
    })
}

fn config_map_body() -> Vec<u8> {
    let raw = Pb::new()
        .msg(1, full_meta())
        .bool(4, true)
        .entry(2, "a", "1")
        .entry(2, "empty", "")
        .msg(3, Pb::new().str(1, "blob").bytes(2, &[0, 1, 2, 0xff]));
    body("v1", "ConfigMap", raw)
}

#[test]
fn config_map_with_every_metadata_field() {
    assert_eq!(
        decoded(&config_map_body()),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": full_meta_json(),
            "immutable": true,
            "data": {"a": "1", "empty": ""},
            "binaryData": {"blob": "AAEC/w=="}
        })
    );
}

fn namespace_body() -> Vec<u8> {
    let raw = Pb::new()
        .msg(1, name("team-a"))
        .msg(2, Pb::new().str(1, "kubernetes"))
        .msg(
            3,
            Pb::new().str(1, "Terminating").msg(
                2,
                Pb::new()
                    .str(1, "NamespaceDeletionContentFailure")
                    .str(2, "False")
                    .msg(4, time(T))
                    .str(5, "ContentDeleted")
                    .str(6, ""),
            ),
        );
    body("v1", "Namespace", raw)
}

#[test]
fn namespace_with_status() {
    assert_eq!(
        decoded(&namespace_body()),
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "team-a"},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {
                "phase": "Terminating",
                "conditions": [{
                    "type": "NamespaceDeletionContentFailure",
                    "status": "False",
                    "lastTransitionTime": T_JSON,
                    "reason": "ContentDeleted"
                }]
            }
        })
    );
}

fn secret_body() -> Vec<u8> {
    let raw = Pb::new()
        .msg(1, name("creds"))
        .bool(5, false)
        .msg(2, Pb::new().str(1, "password").bytes(2, b"s3cr3t!"))
        .msg(2, Pb::new().str(1, "empty").bytes(2, b""))
        // An entry without a value: Go reads an empty slice.
        .msg(2, Pb::new().str(1, "missing"))
        .entry(4, "plain", "text")
        .str(3, "Opaque");
    body("v1", "Secret", raw)
}

#[test]
fn secret_bytes_string_data_and_type() {
    assert_eq!(
        decoded(&secret_body()),
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds"},
            "immutable": false,
            "data": {"password": "czNjcjN0IQ==", "empty": "", "missing": ""},
            "stringData": {"plain": "text"},
            "type": "Opaque"
        })
    );
}

fn service_account_body() -> Vec<u8> {
    let raw = Pb::new()
        .msg(1, Pb::new().str(1, "builder").str(3, "ci"))
        .msg(
            2,
            Pb::new()
                .str(1, "Secret")
                .str(3, "builder-token")
                .str(2, ""),
        )
        .msg(3, name("registry"))
        .bool(4, false);
    body("v1", "ServiceAccount", raw)
}

#[test]
fn service_account() {
    assert_eq!(
        decoded(&service_account_body()),
        json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "builder", "namespace": "ci"},
            "secrets": [{"kind": "Secret", "name": "builder-token"}],
            "imagePullSecrets": [{"name": "registry"}],
            "automountServiceAccountToken": false
        })
    );
}

fn service_body() -> Vec<u8> {
    let spec = Pb::new()
        .msg(
            1,
            Pb::new()
                .str(1, "http")
                .str(2, "TCP")
                .str(6, "kubernetes.io/h2c")
                .int(3, 80)
                .msg(4, str_value("web"))
                .int(5, 0),
        )
        .msg(
            1,
            Pb::new()
                .str(2, "UDP")
                .int(3, 53)
                .msg(4, int_value(5353))
                .int(5, 31053),
        )
        .entry(2, "app", "web")
        .str(3, "10.96.0.10")
        .str(18, "10.96.0.10")
        .str(4, "NodePort")
        .str(7, "ClientIP")
        .str(11, "Local")
        .int(12, 0)
        .bool(13, true)
        .msg(14, Pb::new().msg(1, Pb::new().int(1, 10800)))
        .str(19, "IPv4")
        .str(17, "SingleStack")
        .str(22, "Cluster");
    let status = Pb::new()
        .msg(
            1,
            Pb::new().msg(
                1,
                Pb::new()
                    .str(1, "192.0.2.1")
                    .str(3, "VIP")
                    .msg(4, Pb::new().int(1, 80).str(2, "TCP")),
            ),
        )
        .msg(
            2,
            Pb::new()
                .str(1, "Ready")
                .str(2, "True")
                .int(3, 4)
                .msg(4, time(T))
                .str(5, "Ok")
                .str(6, ""),
        );
    let raw = Pb::new().msg(1, name("web")).msg(2, spec).msg(3, status);
    body("v1", "Service", raw)
}

#[test]
fn service_spec_and_status() {
    assert_eq!(
        decoded(&service_body()),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {
                "ports": [
                    {
                        "name": "http",
                        "protocol": "TCP",
                        "appProtocol": "kubernetes.io/h2c",
                        "port": 80,
                        "targetPort": "web"
                    },
                    {"protocol": "UDP", "port": 53, "targetPort": 5353, "nodePort": 31053}
                ],
                "selector": {"app": "web"},
                "clusterIP": "10.96.0.10",
                "clusterIPs": ["10.96.0.10"],
                "type": "NodePort",
                "sessionAffinity": "ClientIP",
                "externalTrafficPolicy": "Local",
                "publishNotReadyAddresses": true,
                "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
                "ipFamilies": ["IPv4"],
                "ipFamilyPolicy": "SingleStack",
                "internalTrafficPolicy": "Cluster"
            },
            "status": {
                "loadBalancer": {"ingress": [{
                    "ip": "192.0.2.1",
                    "ipMode": "VIP",
                    "ports": [{"port": 80, "protocol": "TCP"}]
                }]},
                "conditions": [{
                    "type": "Ready",
                    "status": "True",
                    "observedGeneration": 4,
                    "lastTransitionTime": T_JSON,
                    "reason": "Ok",
                    "message": ""
                }]
            }
        })
    );
}

fn pod_spec() -> Pb {
    let container = Pb::new()
        .str(1, "app")
        .str(2, "nginx:1.27")
        .str(3, "nginx")
        .str(4, "-g")
        .str(4, "daemon off;")
        .msg(
            6,
            Pb::new().str(1, "http").int(3, 80).str(4, "TCP").int(2, 0),
        )
        .msg(7, Pb::new().str(1, "A").str(2, "1"))
        .msg(
            7,
            Pb::new().str(1, "POD").msg(
                3,
                Pb::new().msg(1, Pb::new().str(1, "v1").str(2, "metadata.name")),
            ),
        )
        .msg(
            7,
            Pb::new().str(1, "PW").msg(
                3,
                Pb::new().msg(4, Pb::new().msg(1, name("creds")).str(2, "pw")),
            ),
        )
        .msg(
            7,
            Pb::new()
                .str(1, "MEM")
                .msg(3, Pb::new().msg(2, Pb::new().str(2, "limits.memory"))),
        )
        .msg(
            19,
            Pb::new()
                .str(1, "CFG_")
                .msg(2, Pb::new().msg(1, name("settings")).bool(2, true)),
        )
        .msg(
            8,
            Pb::new()
                .quantity_entry(1, "cpu", "500m")
                .quantity_entry(1, "memory", "128Mi")
                .quantity_entry(2, "cpu", "250m"),
        )
        .msg(9, Pb::new().str(1, "cache").bool(2, true).str(3, "/cache"))
        .msg(
            10,
            Pb::new()
                .msg(
                    1,
                    Pb::new().msg(
                        2,
                        Pb::new()
                            .str(1, "/healthz")
                            .msg(2, str_value("http"))
                            .msg(5, Pb::new().str(1, "X-Probe").str(2, "1")),
                    ),
                )
                .int(2, 5)
                .int(4, 10),
        )
        .msg(
            11,
            Pb::new().msg(1, Pb::new().msg(3, Pb::new().msg(1, int_value(80)))),
        )
        .msg(
            22,
            Pb::new().msg(1, Pb::new().msg(1, Pb::new().str(1, "true"))),
        )
        .msg(12, Pb::new().msg(2, Pb::new().msg(4, Pb::new().int(1, 5))))
        .str(13, "/dev/termination-log")
        .str(14, "IfNotPresent")
        .msg(
            15,
            Pb::new()
                .msg(1, Pb::new().str(2, "ALL"))
                .bool(7, false)
                .msg(11, Pb::new().str(1, "RuntimeDefault")),
        );
    let volumes = [
        Pb::new().str(1, "cache").msg(
            2,
            Pb::new().msg(2, Pb::new().str(1, "Memory").msg(2, quantity("1Gi"))),
        ),
        Pb::new().str(1, "conf").msg(
            2,
            Pb::new().msg(
                19,
                Pb::new()
                    .msg(1, name("cfg"))
                    .msg(2, Pb::new().str(1, "k").str(2, "p").int(3, 0o400))
                    .int(3, 0o644),
            ),
        ),
        Pb::new()
            .str(1, "creds")
            .msg(2, Pb::new().msg(6, Pb::new().str(1, "creds").bool(4, true))),
        Pb::new().str(1, "logs").msg(
            2,
            Pb::new().msg(1, Pb::new().str(1, "/var/log").str(2, "Directory")),
        ),
        Pb::new()
            .str(1, "data")
            .msg(2, Pb::new().msg(10, Pb::new().str(1, "data-0"))),
    ];
    let mut spec = Pb::new();
    for volume in volumes {
        spec = spec.msg(1, volume);
    }
    spec.msg(2, container)
        .str(3, "Always")
        .int(4, 30)
        .str(6, "ClusterFirst")
        .entry(7, "disk", "ssd")
        .str(8, "default")
        .str(10, "")
        .bool(11, false)
        .msg(
            14,
            Pb::new()
                .int(2, 1000)
                .bytes(4, &[1, 2]) // packed supplementalGroups
                .int(4, 3) // and one unpacked
                .int(5, 2000),
        )
        .msg(
            22,
            Pb::new()
                .str(1, "node.kubernetes.io/not-ready")
                .str(2, "Exists")
                .str(4, "NoExecute")
                .int(5, 300),
        )
        .int(25, 0)
        .bool(30, true)
}

fn pod_spec_json() -> Value {
    json!({
        "volumes": [
            {"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
            {"name": "conf", "configMap": {
                "name": "cfg",
                "items": [{"key": "k", "path": "p", "mode": 256}],
                "defaultMode": 420
            }},
            {"name": "creds", "secret": {"secretName": "creds", "optional": true}},
            {"name": "logs", "hostPath": {"path": "/var/log", "type": "Directory"}},
            {"name": "data", "persistentVolumeClaim": {"claimName": "data-0"}}
        ],
        "containers": [{
            "name": "app",
            "image": "nginx:1.27",
            "command": ["nginx"],
            "args": ["-g", "daemon off;"],
            "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
            "envFrom": [{"prefix": "CFG_", "configMapRef": {"name": "settings", "optional": true}}],
            "env": [
                {"name": "A", "value": "1"},
                {"name": "POD", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "pw"}}},
                {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "0"}}}
            ],
            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}},
            "volumeMounts": [{"name": "cache", "readOnly": true, "mountPath": "/cache"}],
            "livenessProbe": {
                "httpGet": {"path": "/healthz", "port": "http", "httpHeaders": [{"name": "X-Probe", "value": "1"}]},
                "initialDelaySeconds": 5,
                "periodSeconds": 10
            },
            "readinessProbe": {"tcpSocket": {"port": 80}},
            "startupProbe": {"exec": {"command": ["true"]}},
            "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
            "terminationMessagePath": "/dev/termination-log",
            "imagePullPolicy": "IfNotPresent",
            "securityContext": {
                "capabilities": {"drop": ["ALL"]},
                "allowPrivilegeEscalation": false,
                "seccompProfile": {"type": "RuntimeDefault"}
            }
        }],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "nodeSelector": {"disk": "ssd"},
        "serviceAccountName": "default",
        "securityContext": {"runAsUser": 1000, "supplementalGroups": [1, 2, 3], "fsGroup": 2000},
        "tolerations": [{
            "key": "node.kubernetes.io/not-ready",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300
        }],
        "priority": 0,
        "enableServiceLinks": true
    })
}

fn pod_body() -> Vec<u8> {
    let status = Pb::new()
        .str(1, "Running")
        .msg(2, Pb::new().str(1, "Ready").str(2, "True").msg(4, time(T)))
        .str(5, "10.0.0.1")
        .msg(16, Pb::new().str(1, "10.0.0.1"))
        .str(6, "10.1.0.5")
        .msg(12, Pb::new().str(1, "10.1.0.5"))
        .msg(7, time(T))
        .msg(
            8,
            Pb::new()
                .str(1, "app")
                .msg(2, Pb::new().msg(2, Pb::new().msg(1, time(T))))
                .msg(
                    3,
                    Pb::new().msg(
                        3,
                        Pb::new()
                            .int(1, 137)
                            .str(3, "OOMKilled")
                            .msg(5, time(T - 60))
                            .msg(6, time(T - 1)),
                    ),
                )
                .bool(4, true)
                .int(5, 1)
                .str(6, "nginx:1.27")
                .str(7, "")
                .str(8, "containerd://abc")
                .bool(9, true),
        )
        .str(9, "Burstable");
    let raw = Pb::new()
        .msg(1, Pb::new().str(1, "web-0").str(3, "default"))
        .msg(2, pod_spec())
        .msg(3, status);
    body("v1", "Pod", raw)
}

#[test]
fn pod_spec_and_status() {
    assert_eq!(
        decoded(&pod_body()),
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web-0", "namespace": "default"},
            "spec": pod_spec_json(),
            "status": {
                "phase": "Running",
                "conditions": [{
                    "type": "Ready",
                    "status": "True",
                    "lastProbeTime": null,
                    "lastTransitionTime": T_JSON
                }],
                "hostIP": "10.0.0.1",
                "hostIPs": [{"ip": "10.0.0.1"}],
                "podIP": "10.1.0.5",
                "podIPs": [{"ip": "10.1.0.5"}],
                "startTime": T_JSON,
                "containerStatuses": [{
                    "name": "app",
                    "state": {"running": {"startedAt": T_JSON}},
                    "lastState": {"terminated": {
                        "exitCode": 137,
                        "reason": "OOMKilled",
                        "startedAt": "2024-05-06T12:52:20Z",
                        "finishedAt": "2024-05-06T12:53:19Z"
                    }},
                    "ready": true,
                    "restartCount": 1,
                    "image": "nginx:1.27",
                    "imageID": "",
                    "containerID": "containerd://abc",
                    "started": true
                }],
                "qosClass": "Burstable"
            }
        })
    );
}

fn deployment_body() -> Vec<u8> {
    let template = Pb::new()
        .msg(1, Pb::new().entry(11, "app", "web"))
        .msg(2, Pb::new().msg(2, Pb::new().str(1, "web").str(2, "nginx")));
    let spec = Pb::new()
        .int(1, 0)
        .msg(
            2,
            Pb::new().entry(1, "app", "web").msg(
                2,
                Pb::new()
                    .str(1, "tier")
                    .str(2, "In")
                    .str(3, "a")
                    .str(3, "b"),
            ),
        )
        .msg(3, template)
        .msg(
            4,
            Pb::new()
                .str(1, "RollingUpdate")
                .msg(2, Pb::new().msg(1, int_value(0)).msg(2, str_value("25%"))),
        )
        .int(5, 0)
        .int(6, 10)
        .bool(7, false)
        .int(9, 600);
    let status = Pb::new()
        .int(1, 2)
        .int(2, 3)
        .int(3, 3)
        .int(7, 3)
        .int(4, 3)
        .int(5, 0)
        .msg(
            6,
            Pb::new()
                .str(1, "Available")
                .str(2, "True")
                .msg(6, time(T))
                .str(4, "MinimumReplicasAvailable")
                .str(5, ""),
        );
    let raw = Pb::new().msg(1, name("web")).msg(2, spec).msg(3, status);
    body("apps/v1", "Deployment", raw)
}

#[test]
fn deployment_with_strategy_and_status() {
    assert_eq!(
        decoded(&deployment_body()),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 0,
                "selector": {
                    "matchLabels": {"app": "web"},
                    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]
                },
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx", "resources": {}}]}
                },
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}
                },
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600
            },
            "status": {
                "observedGeneration": 2,
                "replicas": 3,
                "updatedReplicas": 3,
                "readyReplicas": 3,
                "availableReplicas": 3,
                "conditions": [{
                    "type": "Available",
                    "status": "True",
                    "lastUpdateTime": T_JSON,
                    "lastTransitionTime": null,
                    "reason": "MinimumReplicasAvailable"
                }]
            }
        })
    );
}

fn replica_set_body() -> Vec<u8> {
    let raw = Pb::new()
        .msg(1, name("web-1"))
        .msg(
            2,
            Pb::new()
                .int(1, 2)
                .msg(2, Pb::new().entry(1, "app", "web"))
                .msg(3, Pb::new().msg(2, Pb::new().msg(2, name("web")))),
        )
        .msg(3, Pb::new().int(1, 0));
    body("apps/v1", "ReplicaSet", raw)
}

#[test]
fn replica_set() {
    assert_eq!(
        decoded(&replica_set_body()),
        json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "web-1"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {}, "spec": {"containers": [{"name": "web", "resources": {}}]}}
            },
            "status": {"replicas": 0}
        })
    );
}

fn lease_body() -> Vec<u8> {
    let raw = Pb::new().msg(1, name("node-1")).msg(
        2,
        Pb::new()
            .str(1, "node-1")
            .int(2, 40)
            .msg(3, Pb::new().int(1, T).int(2, 123_456_789))
            .msg(4, time(T))
            .int(5, 0),
    );
    body("coordination.k8s.io/v1", "Lease", raw)
}

#[test]
fn lease_micro_times() {
    assert_eq!(
        decoded(&lease_body()),
        json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "node-1"},
            "spec": {
                "holderIdentity": "node-1",
                "leaseDurationSeconds": 40,
                "acquireTime": "2024-05-06T12:53:20.123456Z",
                "renewTime": "2024-05-06T12:53:20.000000Z",
                "leaseTransitions": 0
            }
        })
    );
}

#[test]
fn delete_options_in_any_group_version() {
    let raw = Pb::new()
        .int(1, 0)
        .msg(2, Pb::new().str(1, "uid-1").str(2, "7"))
        .bool(3, false)
        .str(4, "Foreground")
        .str(5, "All");
    for api_version in ["meta.k8s.io/v1", "v1", "apps/v1"] {
        assert_eq!(
            decoded(&body(api_version, "DeleteOptions", raw.clone())),
            json!({
                "apiVersion": api_version,
                "kind": "DeleteOptions",
                "gracePeriodSeconds": 0,
                "preconditions": {"uid": "uid-1", "resourceVersion": "7"},
                "orphanDependents": false,
                "propagationPolicy": "Foreground",
                "dryRun": ["All"]
            })
        );
    }
    assert_eq!(
        decoded(&body("meta.k8s.io/v1", "DeleteOptions", Pb::new())),
        json!({"apiVersion": "meta.k8s.io/v1", "kind": "DeleteOptions"})
    );
}

// Protobuf semantics.

#[test]
fn unknown_fields_of_every_wire_type_are_skipped() {
    let raw = Pb::new()
        .varint(99, 7)
        .msg(1, name("cm").fixed32(40, 1).str(41, "x"))
        .fixed64(98, u64::MAX)
        .fixed32(97, 1)
        .str(96, "future")
        .entry(2, "a", "1");
    assert_eq!(
        decoded(&body("v1", "ConfigMap", raw)),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "1"}})
    );
}

#[test]
fn repeated_messages_merge_and_the_last_scalar_wins() {
    let raw = Pb::new()
        .msg(1, Pb::new().str(1, "first").entry(11, "a", "1"))
        .msg(
            1,
            Pb::new().str(1, "second").str(3, "ns").entry(11, "b", "2"),
        )
        .bool(4, true)
        .bool(4, false);
    assert_eq!(
        decoded(&body("v1", "ConfigMap", raw)),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "second", "namespace": "ns", "labels": {"a": "1", "b": "2"}},
            "immutable": false
        })
    );
}

#[test]
fn integers_keep_their_sign_and_width() {
    let container = Pb::new()
        .str(1, "c")
        .msg(6, Pb::new().int(3, -1))
        // An int32 sent with bits above 32 set is truncated, as Go does.
        .msg(6, Pb::new().varint(3, (1 << 32) | 8080));
    let raw = Pb::new().msg(2, Pb::new().msg(2, container).int(4, -5));
    let pod = decoded(&body("v1", "Pod", raw));
    assert_eq!(
        pod["spec"]["containers"][0]["ports"],
        json!([{"containerPort": -1}, {"containerPort": 8080}])
    );
    assert_eq!(pod["spec"]["terminationGracePeriodSeconds"], json!(-5));
}

#[test]
fn invalid_utf8_is_replaced_as_go_does() {
    let raw = Pb::new().msg(1, Pb::new().bytes(1, b"bad\xffname"));
    assert_eq!(
        decoded(&body("v1", "Namespace", raw))["metadata"]["name"],
        json!("bad\u{fffd}name")
    );
}

#[test]
fn zero_times_are_null_and_left_out_where_upstream_omits_them() {
    // An empty Time message is Go's zero time.
    let raw = Pb::new()
        .msg(1, Pb::new().str(1, "n").msg(8, Pb::new()).msg(9, Pb::new()))
        .msg(
            3,
            Pb::new().msg(2, Pb::new().str(1, "T").str(2, "True").msg(4, Pb::new())),
        );
    assert_eq!(
        decoded(&body("v1", "Namespace", raw)),
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "n", "deletionTimestamp": null},
            "spec": {},
            "status": {"conditions": [{"type": "T", "status": "True", "lastTransitionTime": null}]}
        })
    );
}

// Errors.

#[test]
fn envelope_errors() {
    assert_eq!(decode(b""), Err(ProtobufError::MissingMagic));
    assert_eq!(decode(b"k8s"), Err(ProtobufError::MissingMagic));
    assert_eq!(
        decode(b"{\"kind\":\"Namespace\"}"),
        Err(ProtobufError::MissingMagic)
    );
    assert_eq!(decode(&MAGIC), Err(ProtobufError::MissingTypeMeta));
    assert_eq!(
        decode(&body("", "Namespace", Pb::new())),
        Err(ProtobufError::MissingTypeMeta)
    );
    assert_eq!(
        decode(&body("v1", "Node", Pb::new())),
        Err(ProtobufError::UnsupportedKind {
            api_version: "v1".to_owned(),
            kind: "Node".to_owned()
        })
    );
    assert_eq!(
        decode(&body("apps/v1", "Namespace", Pb::new())),
        Err(ProtobufError::UnsupportedKind {
            api_version: "apps/v1".to_owned(),
            kind: "Namespace".to_owned()
        })
    );
    let mut gzipped = MAGIC.to_vec();
    gzipped.extend(
        Pb::new()
            .msg(1, Pb::new().str(1, "v1").str(2, "Namespace"))
            .str(3, "gzip")
            .0,
    );
    assert_eq!(
        decode(&gzipped),
        Err(ProtobufError::UnsupportedContentEncoding("gzip".to_owned()))
    );
    let mut wrong_type = MAGIC.to_vec();
    wrong_type.extend(Pb::new().int(1, 5).0);
    assert_eq!(
        decode(&wrong_type),
        Err(ProtobufError::WireTypeMismatch {
            message: "Unknown",
            field: "typeMeta",
            expected: 2,
            found: 0
        })
    );
}

#[test]
fn malformed_objects_are_errors() {
    // The object's message claims more bytes than it holds.
    let truncated = Pb(vec![0x0a, 0x05, 0x0a, 0x01]);
    assert_eq!(
        decode(&body("v1", "Namespace", truncated)),
        Err(ProtobufError::Truncated {
            message: "Namespace"
        })
    );
    assert_eq!(
        decode(&body("v1", "ConfigMap", Pb::new().str(4, "yes"))),
        Err(ProtobufError::WireTypeMismatch {
            message: "ConfigMap",
            field: "immutable",
            expected: 0,
            found: 2
        })
    );
    assert_eq!(
        decode(&body("v1", "ConfigMap", Pb::new().int(1, 1))),
        Err(ProtobufError::WireTypeMismatch {
            message: "ConfigMap",
            field: "metadata",
            expected: 2,
            found: 0
        })
    );
    let bad_port = Pb::new().msg(
        2,
        Pb::new().msg(
            1,
            Pb::new().int(3, 80).msg(4, Pb::new().int(1, 2).int(2, 80)),
        ),
    );
    assert_eq!(
        decode(&body("v1", "Service", bad_port)),
        Err(ProtobufError::InvalidIntOrString {
            message: "ServicePort",
            field: "targetPort",
            type_tag: 2
        })
    );
    let far_future = Pb::new().msg(1, Pb::new().msg(8, time(300_000_000_000)));
    assert_eq!(
        decode(&body("v1", "Namespace", far_future)),
        Err(ProtobufError::TimeOutOfRange {
            message: "ObjectMeta",
            field: "creationTimestamp",
            seconds: 300_000_000_000
        })
    );
    let bad_fields = Pb::new().msg(
        1,
        Pb::new().msg(17, Pb::new().msg(7, Pb::new().str(1, "{not json"))),
    );
    assert!(matches!(
        decode(&body("v1", "Namespace", bad_fields)),
        Err(ProtobufError::InvalidFieldsV1 {
            message: "ManagedFieldsEntry",
            ..
        })
    ));
    // A group start: deprecated, never produced by Kubernetes.
    assert_eq!(
        decode(&body("v1", "Namespace", Pb(vec![0x0b, 0x0c]))),
        Err(ProtobufError::UnsupportedWireType {
            message: "Namespace",
            number: 1,
            wire_type: 3
        })
    );
}

#[test]
fn error_messages_are_lowercase() {
    let errors = [
        ProtobufError::MissingMagic,
        ProtobufError::Truncated { message: "Pod" },
        ProtobufError::MissingTypeMeta,
        ProtobufError::UnsupportedKind {
            api_version: "v1".to_owned(),
            kind: "Node".to_owned(),
        },
    ];
    for error in errors {
        let text = error.to_string();
        assert!(text.starts_with(char::is_lowercase), "{text}");
    }
    assert_eq!(
        ProtobufError::UnsupportedKind {
            api_version: "v1".to_owned(),
            kind: "Node".to_owned()
        }
        .to_string(),
        "protobuf bodies of kind Node in v1 are not supported"
    );
}

/// Every well-formed body of these tests: kubectl's and the hand-built ones.
fn corpus() -> Vec<Vec<u8>> {
    let mut bodies: Vec<Vec<u8>> = fixtures::ALL.iter().map(|c| c.body.to_vec()).collect();
    bodies.extend([
        config_map_body(),
        namespace_body(),
        secret_body(),
        service_account_body(),
        service_body(),
        pod_body(),
        deployment_body(),
        replica_set_body(),
        lease_body(),
    ]);
    bodies
}

/// The API server stores every object through its `k8s-openapi` type with strict
/// field validation: decoded bodies must fit those types with nothing left over.
#[test]
fn decoded_objects_fit_the_typed_round_trip() {
    for body in corpus() {
        let object = decoded(&body);
        let kind = object["kind"].as_str().unwrap_or_default().to_owned();
        let normalized = match crate::typed::normalize(&kind, object.clone()) {
            Ok(normalized) => normalized,
            Err(error) => panic!("{kind}: {error}"),
        };
        assert_eq!(
            crate::typed::unknown_fields(&object, &normalized),
            Vec::<String>::new(),
            "{kind}"
        );
    }
}

/// [`corpus`] and the bodies that are not objects.
fn all_bodies() -> Vec<Vec<u8>> {
    let mut bodies = corpus();
    bodies.extend(fixtures::DELETES.iter().map(|c| c.body.to_vec()));
    bodies
}

#[test]
fn every_truncation_fails_cleanly() {
    for body in all_bodies() {
        let whole = decode(&body);
        assert!(whole.is_ok(), "{whole:?}");
        for len in 0..body.len() {
            // Cut at a field boundary of the envelope, a shorter body may still be
            // valid; anywhere else it must be an error. Either way, no panic.
            let result = decode(&body[..len]);
            if len < MAGIC.len() {
                assert_eq!(result, Err(ProtobufError::MissingMagic));
            }
        }
        // Cutting the last byte always splits the envelope's final field.
        assert!(decode(&body[..body.len() - 1]).is_err());
    }
}

#[test]
fn corrupted_bytes_never_panic() {
    for body in all_bodies() {
        for at in MAGIC.len()..body.len() {
            for replacement in [
                0x00,
                0x01,
                0x7f,
                0x80,
                0xff,
                body[at] ^ 0x04,
                body[at] ^ 0x80,
            ] {
                let mut corrupt = body.clone();
                corrupt[at] = replacement;
                let _ = decode(&corrupt);
            }
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    // xorshift64: deterministic, good enough to wander through the wire format.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let len = (next() % 96) as usize;
        let mut body = MAGIC.to_vec();
        // Half the time, a plausible envelope around random object bytes.
        let random: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if next() % 2 == 0 {
            let kinds = [
                ("v1", "Pod"),
                ("v1", "Service"),
                ("apps/v1", "Deployment"),
                ("v1", "Secret"),
                ("coordination.k8s.io/v1", "Lease"),
            ];
            let (api_version, kind) = kinds[(next() % kinds.len() as u64) as usize];
            body = self::body(api_version, kind, Pb(random));
        } else {
            body.extend(random);
        }
        let _ = decode(&body);
    }
}
