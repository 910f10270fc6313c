//! Containers as kubectl describes them in pods and pod templates
//! (`describeContainers`): image, ports, command, state, resources, probes,
//! environment and mounts.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStatus, EnvVar, Probe, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::quantity::Amount;
use super::text::{Out, bool_title, or_none, rfc1123z};

/// Resolves a `fieldRef` environment variable to its value (pods have one; templates
/// do not, and show an empty value).
pub type EnvResolver<'a> = Option<&'a dyn Fn(&str) -> String>;

/// `Containers:` and each container; `space` is `"  "` inside a pod template.
pub fn describe(
    out: &mut Out,
    label: &str,
    containers: &[Container],
    statuses: Option<&[ContainerStatus]>,
    resolver: EnvResolver<'_>,
    space: &str,
) {
    let none = if containers.is_empty() { " <none>" } else { "" };
    out.write(0, &format!("{space}{label}:{none}\n"));
    for container in containers {
        let status = statuses
            .into_iter()
            .flatten()
            .find(|s| s.name == container.name);
        basic_info(out, container, status, space);
        command(out, container);
        if let Some(status) = status {
            state(out, status);
        }
        resources(out, container.resources.as_ref(), 2);
        probes(out, container);
        if container.env_from.as_ref().is_some_and(|e| !e.is_empty()) {
            env_from(out, container);
        }
        env(out, container, resolver);
        mounts(out, container);
    }
}

fn basic_info(out: &mut Out, c: &Container, status: Option<&ContainerStatus>, space: &str) {
    let name_indent = if space.is_empty() { "" } else { " " };
    out.write(1, &format!("{name_indent}{}:\n", c.name));
    if let Some(s) = status {
        out.write(
            2,
            &format!(
                "Container ID:\t{}\n",
                s.container_id.as_deref().unwrap_or("")
            ),
        );
    }
    out.write(
        2,
        &format!("Image:\t{}\n", c.image.as_deref().unwrap_or("")),
    );
    if let Some(s) = status {
        out.write(2, &format!("Image ID:\t{}\n", s.image_id));
    }
    let ports: Vec<_> = c.ports.iter().flatten().collect();
    let container_ports = ports
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                p.container_port,
                p.protocol.as_deref().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    if container_ports.contains(',') {
        out.write(2, &format!("Ports:\t{container_ports}\n"));
    } else {
        out.write(2, &format!("Port:\t{}\n", or_none(&container_ports)));
    }
    let host_ports = ports
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                p.host_port.unwrap_or(0),
                p.protocol.as_deref().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    if host_ports.contains(',') {
        out.write(2, &format!("Host Ports:\t{host_ports}\n"));
    } else {
        out.write(2, &format!("Host Port:\t{}\n", or_none(&host_ports)));
    }
    if let Some(profile) = c
        .security_context
        .as_ref()
        .and_then(|s| s.seccomp_profile.as_ref())
    {
        out.write(2, &format!("SeccompProfile:\t{}\n", profile.type_));
        if profile.type_ == "Localhost" {
            out.write(
                3,
                &format!(
                    "LocalhostProfile:\t{}\n",
                    profile.localhost_profile.as_deref().unwrap_or("")
                ),
            );
        }
    }
}

fn command(out: &mut Out, c: &Container) {
    for (title, items) in [("Command", &c.command), ("Args", &c.args)] {
        let items: Vec<&String> = items.iter().flatten().collect();
        if items.is_empty() {
            continue;
        }
        out.write(2, &format!("{title}:\n"));
        for item in items {
            for line in item.split('\n') {
                out.write(3, &format!("{line}\n"));
            }
        }
    }
}

/// `Limits:` and `Requests:`, each resource sorted by name (`describeResources`).
pub fn resources(out: &mut Out, resources: Option<&ResourceRequirements>, level: usize) {
    let Some(resources) = resources else {
        return;
    };
    for (title, list) in [
        ("Limits", &resources.limits),
        ("Requests", &resources.requests),
    ] {
        let Some(list) = list.as_ref().filter(|l| !l.is_empty()) else {
            continue;
        };
        out.write(level, &format!("{title}:\n"));
        for (name, quantity) in list {
            out.write(
                level + 1,
                &format!("{name}:\t{}\n", Amount::parse(&quantity.0).canonical()),
            );
        }
    }
}

fn state(out: &mut Out, status: &ContainerStatus) {
    describe_state(out, "State", status.state.as_ref());
    if let Some(last) = status
        .last_state
        .as_ref()
        .filter(|s| s.terminated.is_some())
    {
        describe_state(out, "Last State", Some(last));
    }
    out.write(2, &format!("Ready:\t{}\n", bool_title(status.ready)));
    out.write(2, &format!("Restart Count:\t{}\n", status.restart_count));
}

fn describe_state(out: &mut Out, name: &str, state: Option<&ContainerState>) {
    let state = state.cloned().unwrap_or_default();
    if let Some(running) = &state.running {
        out.write(2, &format!("{name}:\tRunning\n"));
        out.write(
            3,
            &format!("Started:\t{}\n", rfc1123z(running.started_at.as_ref())),
        );
    } else if let Some(waiting) = &state.waiting {
        out.write(2, &format!("{name}:\tWaiting\n"));
        if let Some(reason) = waiting.reason.as_deref().filter(|r| !r.is_empty()) {
            out.write(3, &format!("Reason:\t{reason}\n"));
        }
    } else if let Some(t) = &state.terminated {
        out.write(2, &format!("{name}:\tTerminated\n"));
        if let Some(reason) = t.reason.as_deref().filter(|r| !r.is_empty()) {
            out.write(3, &format!("Reason:\t{reason}\n"));
        }
        if let Some(message) = t.message.as_deref().filter(|m| !m.is_empty()) {
            out.write(3, &format!("Message:\t{message}\n"));
        }
        out.write(3, &format!("Exit Code:\t{}\n", t.exit_code));
        if let Some(signal) = t.signal.filter(|s| *s > 0) {
            out.write(3, &format!("Signal:\t{signal}\n"));
        }
        out.write(
            3,
            &format!("Started:\t{}\n", rfc1123z(t.started_at.as_ref())),
        );
        out.write(
            3,
            &format!("Finished:\t{}\n", rfc1123z(t.finished_at.as_ref())),
        );
    } else {
        out.write(2, &format!("{name}:\tWaiting\n"));
    }
}

fn probes(out: &mut Out, c: &Container) {
    for (title, probe) in [
        ("Liveness", &c.liveness_probe),
        ("Readiness", &c.readiness_probe),
        ("Startup", &c.startup_probe),
    ] {
        if let Some(probe) = probe {
            out.write(2, &format!("{title}:\t{}\n", describe_probe(probe)));
        }
    }
}

fn int_or_string(value: &IntOrString) -> String {
    match value {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// kubectl's `DescribeProbe`: the action and its timing, with upstream's defaults
/// as the API server fills them in.
pub fn describe_probe(probe: &Probe) -> String {
    let attrs = format!(
        "delay={}s timeout={}s period={}s #success={} #failure={}",
        probe.initial_delay_seconds.unwrap_or(0),
        probe.timeout_seconds.unwrap_or(0),
        probe.period_seconds.unwrap_or(0),
        probe.success_threshold.unwrap_or(0),
        probe.failure_threshold.unwrap_or(0)
    );
    if let Some(exec) = &probe.exec {
        let command = exec.command.clone().unwrap_or_default().join(" ");
        return format!("exec [{command}] {attrs}");
    }
    if let Some(http) = &probe.http_get {
        let scheme = http.scheme.as_deref().unwrap_or("").to_lowercase();
        let host = http.host.as_deref().unwrap_or("");
        let port = int_or_string(&http.port);
        let authority = if port.is_empty() {
            host.to_string()
        } else if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut path = http.path.clone().unwrap_or_default();
        if !path.is_empty() && !path.starts_with('/') && !authority.is_empty() {
            path.insert(0, '/');
        }
        let url = if scheme.is_empty() {
            format!("//{authority}{path}")
        } else {
            format!("{scheme}://{authority}{path}")
        };
        return format!("http-get {url} {attrs}");
    }
    if let Some(tcp) = &probe.tcp_socket {
        return format!(
            "tcp-socket {}:{} {attrs}",
            tcp.host.as_deref().unwrap_or(""),
            int_or_string(&tcp.port)
        );
    }
    if let Some(grpc) = &probe.grpc {
        return format!(
            "grpc <pod>:{} {} {attrs}",
            grpc.port,
            grpc.service.as_deref().unwrap_or("")
        );
    }
    format!("unknown {attrs}")
}

fn env_from(out: &mut Out, c: &Container) {
    out.write(2, "Environment Variables from:\n");
    for e in c.env_from.iter().flatten() {
        let (from, name, optional) = if let Some(r) = &e.config_map_ref {
            ("ConfigMap", r.name.as_str(), r.optional.unwrap_or(false))
        } else if let Some(r) = &e.secret_ref {
            ("Secret", r.name.as_str(), r.optional.unwrap_or(false))
        } else {
            ("", "", false)
        };
        match e.prefix.as_deref().filter(|p| !p.is_empty()) {
            None => out.write(3, &format!("{name}\t{from}\tOptional: {optional}\n")),
            Some(prefix) => out.write(
                3,
                &format!("{name}\t{from} with prefix '{prefix}'\tOptional: {optional}\n"),
            ),
        }
    }
}

fn env(out: &mut Out, c: &Container, resolver: EnvResolver<'_>) {
    let vars: &[EnvVar] = c.env.as_deref().unwrap_or(&[]);
    let none = if vars.is_empty() { "\t<none>" } else { "" };
    out.write(2, &format!("Environment:{none}\n"));
    for e in vars {
        let Some(from) = &e.value_from else {
            for (i, line) in e.value.as_deref().unwrap_or("").split('\n').enumerate() {
                if i == 0 {
                    out.write(3, &format!("{}:\t{line}\n", e.name));
                } else {
                    out.write(3, &format!("\t{line}\n"));
                }
            }
            continue;
        };
        if let Some(field) = &from.field_ref {
            let value = resolver.map(|r| r(&field.field_path)).unwrap_or_default();
            out.write(
                3,
                &format!(
                    "{}:\t{value} ({}:{})\n",
                    e.name,
                    field.api_version.as_deref().unwrap_or(""),
                    field.field_path
                ),
            );
        } else if let Some(r) = &from.resource_field_ref {
            let mut value = resource_field_value(c, &r.resource, r.divisor.as_ref());
            if value == "0" && (r.resource == "limits.cpu" || r.resource == "limits.memory") {
                value = "node allocatable".to_string();
            }
            out.write(3, &format!("{}:\t{value} ({})\n", e.name, r.resource));
        } else if let Some(s) = &from.secret_key_ref {
            out.write(
                3,
                &format!(
                    "{}:\t<set to the key '{}' in secret '{}'>\tOptional: {}\n",
                    e.name,
                    s.key,
                    s.name,
                    s.optional.unwrap_or(false)
                ),
            );
        } else if let Some(s) = &from.config_map_key_ref {
            out.write(
                3,
                &format!(
                    "{}:\t<set to the key '{}' of config map '{}'>\tOptional: {}\n",
                    e.name,
                    s.key,
                    s.name,
                    s.optional.unwrap_or(false)
                ),
            );
        }
    }
}

/// A container's `limits.cpu`-style resource over its divisor, rounded up (upstream's
/// `ExtractContainerResourceValue`).
fn resource_field_value(c: &Container, resource: &str, divisor: Option<&Quantity>) -> String {
    let Some((kind, name)) = resource.split_once('.') else {
        return String::new();
    };
    let list: Option<&BTreeMap<String, Quantity>> = c.resources.as_ref().and_then(|r| {
        if kind == "limits" {
            r.limits.as_ref()
        } else {
            r.requests.as_ref()
        }
    });
    let amount = list
        .and_then(|l| l.get(name))
        .map_or(Amount::ZERO, |q| Amount::parse(&q.0));
    let divisor = divisor.map_or(1000, |d| Amount::parse(&d.0).milli).max(1);
    let quotient = amount.milli / divisor;
    let rounded = if amount.milli % divisor > 0 {
        quotient + 1
    } else {
        quotient
    };
    rounded.to_string()
}

fn mounts(out: &mut Out, c: &Container) {
    let mut mounts: Vec<_> = c.volume_mounts.iter().flatten().collect();
    let none = if mounts.is_empty() { "\t<none>" } else { "" };
    out.write(2, &format!("Mounts:{none}\n"));
    mounts.sort_by(|a, b| a.mount_path.cmp(&b.mount_path));
    for m in mounts {
        let mut flags = vec![
            if m.read_only.unwrap_or(false) {
                "ro"
            } else {
                "rw"
            }
            .to_string(),
        ];
        if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            flags.push(format!("path={sub:?}"));
        }
        out.write(
            3,
            &format!("{} from {} ({})\n", m.mount_path, m.name, flags.join(",")),
        );
    }
    let mut devices: Vec<_> = c.volume_devices.iter().flatten().collect();
    if !devices.is_empty() {
        out.write(2, &format!("Devices:{none}\n"));
        devices.sort_by(|a, b| a.device_path.cmp(&b.device_path));
        for d in devices {
            out.write(3, &format!("{} from {}\n", d.device_path, d.name));
        }
    }
}
