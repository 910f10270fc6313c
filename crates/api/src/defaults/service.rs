//! Service and endpoint defaults, as upstream's `SetDefaults_Service`,
//! `SetDefaults_Endpoints` and discovery's `SetDefaults_EndpointPort`.

use k8s_openapi::api::core::v1::{ClientIPConfig, Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::pod::fill;
use crate::validation::service::externally_accessible;

/// Upstream's `DefaultClientIPServiceAffinitySeconds` (three hours).
const CLIENT_IP_AFFINITY_SECONDS: i32 = 10800;

/// Upstream's `SetDefaults_Service`, filling only what is absent.
pub fn service(svc: &mut Service) {
    let spec = svc.spec.get_or_insert_with(Default::default);
    fill(&mut spec.session_affinity, "None");
    if spec.session_affinity.as_deref() == Some("ClientIP") {
        let config = spec
            .session_affinity_config
            .get_or_insert_with(Default::default);
        let client_ip = config.client_ip.get_or_insert_with(ClientIPConfig::default);
        if client_ip.timeout_seconds.is_none() {
            client_ip.timeout_seconds = Some(CLIENT_IP_AFFINITY_SECONDS);
        }
    }
    fill(&mut spec.type_, "ClusterIP");
    for port in spec.ports.iter_mut().flatten() {
        fill(&mut port.protocol, "TCP");
        let unset = match &port.target_port {
            None => true,
            Some(IntOrString::Int(0)) => true,
            Some(IntOrString::String(s)) => s.is_empty(),
            Some(IntOrString::Int(_)) => false,
        };
        if unset {
            port.target_port = Some(IntOrString::Int(port.port));
        }
    }
    if externally_accessible(spec) {
        fill(&mut spec.external_traffic_policy, "Cluster");
    }
    let ty = spec.type_.clone().unwrap_or_default();
    if spec.internal_traffic_policy.is_none()
        && matches!(ty.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP")
    {
        spec.internal_traffic_policy = Some("Cluster".to_string());
    }
    if ty == "LoadBalancer" {
        if spec.allocate_load_balancer_node_ports.is_none() {
            spec.allocate_load_balancer_node_ports = Some(true);
        }
        let ingress = svc
            .status
            .as_mut()
            .and_then(|s| s.load_balancer.as_mut())
            .and_then(|lb| lb.ingress.as_mut());
        for ing in ingress.into_iter().flatten() {
            if ing.ip.as_deref().is_some_and(|ip| !ip.is_empty()) && ing.ip_mode.is_none() {
                ing.ip_mode = Some("VIP".to_string());
            }
        }
    }
}

/// Upstream's `SetDefaults_Endpoints`: ports are TCP unless said otherwise.
pub fn endpoints(ep: &mut Endpoints) {
    let ports = ep
        .subsets
        .iter_mut()
        .flatten()
        .flat_map(|s| s.ports.iter_mut().flatten());
    for port in ports {
        fill(&mut port.protocol, "TCP");
    }
}

/// Discovery's `SetDefaults_EndpointPort`: an unnamed TCP port.
pub fn endpoint_slice(slice: &mut EndpointSlice) {
    for port in slice.ports.iter_mut().flatten() {
        if port.name.is_none() {
            port.name = Some(String::new());
        }
        if port.protocol.is_none() {
            port.protocol = Some("TCP".to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn defaulted(v: Value) -> Value {
        let mut s: Service = serde_json::from_value(v).expect("service");
        service(&mut s);
        serde_json::to_value(&s).expect("serialize")
    }

    #[test]
    fn service_defaults() {
        let cases: Vec<(Value, Vec<(&str, Value)>)> = vec![
            (
                json!({"spec": {"ports": [{"port": 80}, {"port": 81, "targetPort": "http", "protocol": "UDP"}]}}),
                vec![
                    ("/spec/type", json!("ClusterIP")),
                    ("/spec/sessionAffinity", json!("None")),
                    ("/spec/internalTrafficPolicy", json!("Cluster")),
                    ("/spec/ports/0/protocol", json!("TCP")),
                    ("/spec/ports/0/targetPort", json!(80)),
                    ("/spec/ports/1/protocol", json!("UDP")),
                    ("/spec/ports/1/targetPort", json!("http")),
                ],
            ),
            (
                json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "targetPort": 0}]}}),
                vec![
                    ("/spec/externalTrafficPolicy", json!("Cluster")),
                    ("/spec/ports/0/targetPort", json!(80)),
                ],
            ),
            (
                json!({"spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local"},
                       "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}}),
                vec![
                    ("/spec/externalTrafficPolicy", json!("Local")),
                    ("/spec/allocateLoadBalancerNodePorts", json!(true)),
                    ("/status/loadBalancer/ingress/0/ipMode", json!("VIP")),
                ],
            ),
            (
                json!({"spec": {"sessionAffinity": "ClientIP"}}),
                vec![(
                    "/spec/sessionAffinityConfig",
                    json!({"clientIP": {"timeoutSeconds": 10800}}),
                )],
            ),
        ];
        for (input, expected) in cases {
            let out = defaulted(input.clone());
            for (pointer, want) in expected {
                assert_eq!(out.pointer(pointer), Some(&want), "{input} {pointer}");
            }
        }
        let out = defaulted(json!({"spec": {"type": "ExternalName", "externalName": "x.example"}}));
        assert_eq!(out.pointer("/spec/internalTrafficPolicy"), None);
        assert_eq!(out.pointer("/spec/externalTrafficPolicy"), None);
    }

    #[test]
    fn endpoint_defaults() {
        let mut ep: Endpoints = serde_json::from_value(json!({
            "subsets": [{"ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}]
        }))
        .expect("endpoints");
        endpoints(&mut ep);
        let out = serde_json::to_value(&ep).expect("serialize");
        assert_eq!(
            out.pointer("/subsets/0/ports/0/protocol"),
            Some(&json!("TCP"))
        );
        assert_eq!(
            out.pointer("/subsets/0/ports/1/protocol"),
            Some(&json!("UDP"))
        );

        let mut slice: EndpointSlice = serde_json::from_value(json!({
            "addressType": "IPv4", "ports": [{"port": 80}]
        }))
        .expect("slice");
        endpoint_slice(&mut slice);
        let out = serde_json::to_value(&slice).expect("serialize");
        assert_eq!(
            out.pointer("/ports/0"),
            Some(&json!({"name": "", "port": 80, "protocol": "TCP"}))
        );
    }
}
