//! The kubelet's sandbox and container configs as CRI messages, with the labels
//! upstream's kubelet puts on them (which is how a restarted kubelet finds its pods,
//! and how `crictl` users recognize them).

use std::collections::HashMap;

use cri::proto;

use crate::runtime::{ContainerConfig, Resources, SandboxConfig};

pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";

/// The CFS period upstream uses; the quota is the limit's share of it.
const CPU_PERIOD_US: i64 = 100_000;
/// The kernel's minimum CPU shares (upstream's MinShares).
const MIN_SHARES: i64 = 2;

fn pod_labels(sandbox: &SandboxConfig) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_POD_UID.to_string(), sandbox.uid.clone()),
        (LABEL_POD_NAME.to_string(), sandbox.name.clone()),
        (LABEL_POD_NAMESPACE.to_string(), sandbox.namespace.clone()),
    ])
}

fn namespaces(host_network: bool) -> proto::NamespaceOption {
    proto::NamespaceOption {
        network: if host_network {
            proto::NamespaceMode::Node
        } else {
            proto::NamespaceMode::Pod
        } as i32,
        pid: proto::NamespaceMode::Container as i32,
        ipc: proto::NamespaceMode::Pod as i32,
        ..proto::NamespaceOption::default()
    }
}

/// CRI's PodSandboxConfig; `cgroup_parent` is the pod's cgroup (cgroupfs path).
pub fn sandbox(config: &SandboxConfig, cgroup_parent: &str) -> proto::PodSandboxConfig {
    // The pod's own labels first, so that ours win a clash.
    let mut labels: HashMap<String, String> = config
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.extend(pod_labels(config));
    proto::PodSandboxConfig {
        metadata: Some(proto::PodSandboxMetadata {
            name: config.name.clone(),
            uid: config.uid.clone(),
            namespace: config.namespace.clone(),
            attempt: config.attempt,
        }),
        hostname: if config.host_network {
            String::new()
        } else {
            config.hostname.clone()
        },
        log_directory: config.log_directory.to_string_lossy().into_owned(),
        dns_config: config.dns.as_ref().map(|dns| proto::DnsConfig {
            servers: dns.servers.clone(),
            searches: dns.searches.clone(),
            options: dns.options.clone(),
        }),
        labels,
        annotations: config
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        linux: Some(proto::LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent.to_string(),
            security_context: Some(proto::LinuxSandboxSecurityContext {
                namespace_options: Some(namespaces(config.host_network)),
                ..proto::LinuxSandboxSecurityContext::default()
            }),
            ..proto::LinuxPodSandboxConfig::default()
        }),
        ..proto::PodSandboxConfig::default()
    }
}

/// CPU and memory as CRI's LinuxContainerResources (upstream's
/// `calculateLinuxResources`): shares from the request (or the limit, or the minimum),
/// CFS quota from the limit, the memory limit as is.
pub fn resources(r: &Resources) -> proto::LinuxContainerResources {
    let millis_to_i64 = |m: u64| i64::try_from(m).unwrap_or(i64::MAX);
    let shares = r
        .cpu_request_millis
        .or(r.cpu_limit_millis)
        .map_or(MIN_SHARES, |m| {
            (millis_to_i64(m).saturating_mul(1024) / 1000).max(MIN_SHARES)
        });
    let (period, quota) = match r.cpu_limit_millis {
        // A quota under 1 ms is refused by the kernel: upstream's MinQuotaPeriod.
        Some(m) => (
            CPU_PERIOD_US,
            (millis_to_i64(m).saturating_mul(CPU_PERIOD_US) / 1000).max(1000),
        ),
        None => (0, 0),
    };
    proto::LinuxContainerResources {
        cpu_period: period,
        cpu_quota: quota,
        cpu_shares: shares,
        memory_limit_in_bytes: r.memory_limit_bytes.map_or(0, millis_to_i64),
        ..proto::LinuxContainerResources::default()
    }
}

/// CRI's ContainerConfig for `container` in `sandbox`, from image `image_ref`.
pub fn container(
    sandbox: &SandboxConfig,
    container: &ContainerConfig,
    image_ref: &str,
) -> proto::ContainerConfig {
    let mut labels = pod_labels(sandbox);
    labels.insert(LABEL_CONTAINER_NAME.to_string(), container.name.clone());
    let annotations = HashMap::from([(
        "io.kubernetes.container.restartCount".to_string(),
        container.attempt.to_string(),
    )]);
    proto::ContainerConfig {
        metadata: Some(proto::ContainerMetadata {
            name: container.name.clone(),
            attempt: container.attempt,
        }),
        image: Some(proto::ImageSpec {
            image: image_ref.to_string(),
            user_specified_image: container.image.clone(),
            ..proto::ImageSpec::default()
        }),
        command: container.command.clone(),
        args: container.args.clone(),
        working_dir: container.working_dir.clone().unwrap_or_default(),
        envs: container
            .env
            .iter()
            .map(|(key, value)| proto::KeyValue {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
        mounts: container
            .mounts
            .iter()
            .map(|m| proto::Mount {
                container_path: m.container_path.clone(),
                host_path: m.host_path.to_string_lossy().into_owned(),
                readonly: m.readonly,
                ..proto::Mount::default()
            })
            .collect(),
        labels,
        annotations,
        log_path: container.log_path.to_string_lossy().into_owned(),
        linux: Some(proto::LinuxContainerConfig {
            resources: Some(resources(&container.resources)),
            security_context: Some(proto::LinuxContainerSecurityContext {
                namespace_options: Some(namespaces(sandbox.host_network)),
                ..proto::LinuxContainerSecurityContext::default()
            }),
        }),
        ..proto::ContainerConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{ContainerKind, Mount, PullPolicy};

    #[test]
    fn cpu_and_memory() {
        let r = resources(&Resources {
            cpu_request_millis: Some(250),
            cpu_limit_millis: Some(500),
            memory_limit_bytes: Some(64 << 20),
        });
        assert_eq!(
            (r.cpu_shares, r.cpu_period, r.cpu_quota),
            (256, 100_000, 50_000)
        );
        assert_eq!(r.memory_limit_in_bytes, 64 << 20);
        let none = resources(&Resources::default());
        assert_eq!(
            (none.cpu_shares, none.cpu_quota, none.memory_limit_in_bytes),
            (2, 0, 0)
        );
        let tiny = resources(&Resources {
            cpu_limit_millis: Some(1),
            ..Resources::default()
        });
        assert_eq!((tiny.cpu_shares, tiny.cpu_quota), (2, 1000));
    }

    #[test]
    fn labels_find_the_pod_again() {
        let sandbox_config = SandboxConfig {
            uid: "u1".into(),
            namespace: "ns".into(),
            name: "web".into(),
            hostname: "web".into(),
            labels: [(LABEL_POD_UID.to_string(), "forged".to_string())].into(),
            log_directory: "/logs/ns_web_u1".into(),
            ..SandboxConfig::default()
        };
        let s = sandbox(&sandbox_config, "/kubepods/podu1");
        assert_eq!(s.labels.get(LABEL_POD_UID).map(String::as_str), Some("u1"));
        assert_eq!(s.dns_config, None);
        let with_dns = SandboxConfig {
            dns: Some(crate::runtime::DnsConfig {
                servers: vec!["10.43.0.10".into()],
                searches: vec!["ns.svc.cluster.local".into()],
                options: vec!["ndots:5".into()],
            }),
            ..sandbox_config.clone()
        };
        let dns = sandbox(&with_dns, "/kubepods/podu1")
            .dns_config
            .expect("dns config");
        assert_eq!(
            (dns.servers, dns.searches, dns.options),
            (
                vec!["10.43.0.10".to_string()],
                vec!["ns.svc.cluster.local".to_string()],
                vec!["ndots:5".to_string()]
            )
        );
        assert_eq!(
            s.linux.as_ref().map(|l| l.cgroup_parent.as_str()),
            Some("/kubepods/podu1")
        );
        let c = container(
            &sandbox_config,
            &ContainerConfig {
                name: "app".into(),
                image: "busybox".into(),
                kind: ContainerKind::App,
                attempt: 3,
                command: vec!["sh".into()],
                args: vec![],
                env: vec![("A".into(), "1".into())],
                working_dir: None,
                log_path: "app/3.log".into(),
                pull_policy: PullPolicy::IfNotPresent,
                mounts: vec![Mount {
                    container_path: "/data".into(),
                    host_path: "/var/x".into(),
                    readonly: true,
                }],
                resources: Resources::default(),
            },
            "sha256:abc",
        );
        assert_eq!(
            c.labels.get(LABEL_CONTAINER_NAME).map(String::as_str),
            Some("app")
        );
        assert_eq!(c.metadata.as_ref().map(|m| m.attempt), Some(3));
        assert_eq!(
            c.image.as_ref().map(|i| i.image.as_str()),
            Some("sha256:abc")
        );
        assert!(c.mounts[0].readonly);
        assert_eq!(c.envs[0].key, "A");
    }
}
