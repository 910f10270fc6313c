//! Resource amounts as the scheduler adds them up, and a pod's requests computed as
//! upstream's `resourcehelper.PodRequests`.

use std::collections::BTreeMap;

use api::validation::quantity::Quantity as ParsedQuantity;
use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::Serialize;

/// `cpu`.
pub const CPU: &str = "cpu";
/// `memory`.
pub const MEMORY: &str = "memory";
/// `ephemeral-storage`.
pub const EPHEMERAL_STORAGE: &str = "ephemeral-storage";
/// `pods`.
pub const PODS: &str = "pods";

/// Upstream's `DefaultMilliCPURequest`: what scoring assumes for a container that
/// requests no cpu (0.1 core).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Upstream's `DefaultMemoryRequest`: what scoring assumes for a container that
/// requests no memory (200 MiB).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Amounts of the resources the scheduler tracks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Resource {
    /// Thousandths of a cpu.
    pub milli_cpu: i64,
    /// Bytes.
    pub memory: i64,
    /// Bytes.
    pub ephemeral_storage: i64,
    /// How many pods fit (only meaningful for allocatable).
    pub allowed_pod_number: i64,
    /// Extended resources (`example.com/gpu`) and huge pages, in whole units.
    pub scalar: BTreeMap<String, i64>,
}

/// Parses a quantity, treating unparsable text as zero: objects reach the scheduler
/// through the API server, which already validated them.
fn parse(q: &Quantity) -> Option<ParsedQuantity> {
    ParsedQuantity::parse(&q.0).ok()
}

/// The quantity in thousandths, saturated to i64.
pub fn milli_value(q: &Quantity) -> i64 {
    parse(q).map_or(0, |p| saturate(p.milli_value()))
}

/// The quantity in whole units rounded up, as upstream's `Value()`.
pub fn value(q: &Quantity) -> i64 {
    parse(q).map_or(0, |p| {
        let milli = p.milli_value();
        let units = milli / 1000 + i128::from(milli % 1000 > 0);
        saturate(units)
    })
}

fn saturate(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// Upstream's `IsScalarResourceName`, approximately: extended resources (a domain
/// prefix outside `kubernetes.io/`), prefixed native resources and huge pages.
pub fn is_scalar_resource_name(name: &str) -> bool {
    name.starts_with("hugepages-") || name.contains('/')
}

impl Resource {
    /// Builds a resource from a resource list (`requests`, `allocatable`).
    pub fn from_list(list: &BTreeMap<String, Quantity>) -> Self {
        let mut r = Self::default();
        for (name, q) in list {
            r.set(name, q);
        }
        r
    }

    fn set(&mut self, name: &str, q: &Quantity) {
        match name {
            CPU => self.milli_cpu = milli_value(q),
            MEMORY => self.memory = value(q),
            EPHEMERAL_STORAGE => self.ephemeral_storage = value(q),
            PODS => self.allowed_pod_number = value(q),
            other if is_scalar_resource_name(other) => {
                self.scalar.insert(other.to_string(), value(q));
            }
            _ => {}
        }
    }

    /// Adds `other` to `self`, resource by resource.
    pub fn add(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.saturating_add(other.milli_cpu);
        self.memory = self.memory.saturating_add(other.memory);
        self.ephemeral_storage = self
            .ephemeral_storage
            .saturating_add(other.ephemeral_storage);
        self.allowed_pod_number = self
            .allowed_pod_number
            .saturating_add(other.allowed_pod_number);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = e.saturating_add(*v);
        }
    }

    /// Subtracts `other` from `self`, resource by resource.
    pub fn sub(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.saturating_sub(other.milli_cpu);
        self.memory = self.memory.saturating_sub(other.memory);
        self.ephemeral_storage = self
            .ephemeral_storage
            .saturating_sub(other.ephemeral_storage);
        self.allowed_pod_number = self
            .allowed_pod_number
            .saturating_sub(other.allowed_pod_number);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = e.saturating_sub(*v);
        }
    }

    /// Keeps, resource by resource, the larger of `self` and `other`.
    pub fn set_max(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        self.allowed_pod_number = self.allowed_pod_number.max(other.allowed_pod_number);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }

    /// Whether nothing at all is requested.
    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.allowed_pod_number == 0
            && self.scalar.values().all(|v| *v == 0)
    }
}

/// A container's requests; with `non_missing`, a container that does not mention cpu
/// or memory is assumed to request upstream's defaults (what scoring uses, so that
/// best-effort pods still spread).
fn container_requests(c: &Container, non_missing: bool) -> Resource {
    let requests = c.resources.as_ref().and_then(|r| r.requests.as_ref());
    let mut r = requests.map(Resource::from_list).unwrap_or_default();
    if non_missing {
        if !requests.is_some_and(|m| m.contains_key(CPU)) {
            r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !requests.is_some_and(|m| m.contains_key(MEMORY)) {
            r.memory = DEFAULT_MEMORY_REQUEST;
        }
    }
    r
}

/// A pod's effective requests as upstream computes them: the larger of the sum of its
/// containers (plus sidecars, the init containers with `restartPolicy: Always`, which
/// keep running) and the peak of the init phase (each init container plus the sidecars
/// started before it), plus the pod overhead.
pub fn pod_requests(pod: &Pod, non_missing: bool) -> Resource {
    let Some(spec) = pod.spec.as_ref() else {
        return Resource::default();
    };
    let mut reqs = Resource::default();
    for c in &spec.containers {
        reqs.add(&container_requests(c, non_missing));
    }
    let mut sidecars = Resource::default();
    let mut init_peak = Resource::default();
    for c in spec.init_containers.iter().flatten() {
        let own = container_requests(c, non_missing);
        let during = if c.restart_policy.as_deref() == Some("Always") {
            // A sidecar runs alongside the regular containers for the pod's lifetime.
            reqs.add(&own);
            sidecars.add(&own);
            sidecars.clone()
        } else {
            let mut during = own;
            during.add(&sidecars);
            during
        };
        init_peak.set_max(&during);
    }
    reqs.set_max(&init_peak);
    if let Some(overhead) = &spec.overhead {
        reqs.add(&Resource::from_list(overhead));
    }
    reqs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{PodBuilder, container};

    #[test]
    fn parses_quantities() {
        assert_eq!(milli_value(&Quantity("1".into())), 1000);
        assert_eq!(milli_value(&Quantity("250m".into())), 250);
        assert_eq!(value(&Quantity("1Gi".into())), 1 << 30);
        assert_eq!(value(&Quantity("1500m".into())), 2);
        assert_eq!(value(&Quantity("bogus".into())), 0);
    }

    #[test]
    fn pod_requests_as_upstream() {
        struct Case {
            name: &'static str,
            pod: Pod,
            want_cpu: i64,
            want_mem: i64,
            want_non_zero_cpu: i64,
        }
        let cases = [
            Case {
                name: "sum of containers",
                pod: PodBuilder::new("p")
                    .container(container("100m", "1Mi"))
                    .container(container("200m", "2Mi"))
                    .build(),
                want_cpu: 300,
                want_mem: 3 << 20,
                want_non_zero_cpu: 300,
            },
            Case {
                name: "init container larger than the sum",
                pod: PodBuilder::new("p")
                    .container(container("100m", "1Mi"))
                    .init_container(container("500m", "1Mi"), false)
                    .build(),
                want_cpu: 500,
                want_mem: 1 << 20,
                want_non_zero_cpu: 500,
            },
            Case {
                name: "sidecar adds to regular containers and to later init containers",
                pod: PodBuilder::new("p")
                    .container(container("100m", "1Mi"))
                    .init_container(container("200m", "1Mi"), true)
                    .init_container(container("250m", "1Mi"), false)
                    .build(),
                // regular 100 + sidecar 200 = 300; init phase 250 + 200 = 450.
                want_cpu: 450,
                want_mem: 2 << 20,
                want_non_zero_cpu: 450,
            },
            Case {
                name: "overhead is added",
                pod: PodBuilder::new("p")
                    .container(container("100m", "1Mi"))
                    .overhead("50m", "1Mi")
                    .build(),
                want_cpu: 150,
                want_mem: 2 << 20,
                want_non_zero_cpu: 150,
            },
            Case {
                name: "best effort: zero, but defaults for scoring",
                pod: PodBuilder::new("p").container(Container::default()).build(),
                want_cpu: 0,
                want_mem: 0,
                want_non_zero_cpu: DEFAULT_MILLI_CPU_REQUEST,
            },
        ];
        for c in cases {
            let r = pod_requests(&c.pod, false);
            assert_eq!(r.milli_cpu, c.want_cpu, "{}", c.name);
            assert_eq!(r.memory, c.want_mem, "{}", c.name);
            let nz = pod_requests(&c.pod, true);
            assert_eq!(nz.milli_cpu, c.want_non_zero_cpu, "{}", c.name);
        }
    }
}
