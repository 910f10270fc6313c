//! mast's API machinery, pure and free of I/O: what the API server needs to know about
//! each resource and its objects.
//!
//! Layout:
//! - [`registry`]: one table describing every served resource (group, version, kind,
//!   plural, scope, subresources, short names, selectable fields); it drives routing,
//!   discovery and storage keys.
//! - [`apply`]: server-side apply: merging applied configurations, managedFields,
//!   conflicts between managers.
//! - [`defaults`]: upstream defaulting per kind.
//! - [`openapi`]: OpenAPI v3 schemas of the served kinds, from the `k8s-openapi` types.
//! - [`validation`]: upstream validation per kind, reported as field causes.
//! - [`selectors`]: label and field selectors, parsed and matched.
//! - [`fence`]: leader fencing tokens as they travel in a request header.
//! - [`tolerations`]: which tolerations tolerate which taints.
//! - [`patch`]: JSON patch, JSON merge patch, and strategic merge patch with upstream's
//!   merge keys and directives.
//! - [`typed`]: the round trip through the `k8s-openapi` types that every stored object
//!   takes, and the unknown fields it drops (for field validation).
//! - [`tables`]: server-side Table output with kubectl's columns per kind.
//! - [`protobuf`]: decoding of Kubernetes protobuf request bodies (kubectl sends them
//!   for `kubectl create namespace|configmap|secret|deployment|service`).
//!
//! Objects travel as `serde_json::Value` between these modules so that the API server
//! can handle every kind generically; a module that needs the typed form
//! (`k8s-openapi`) converts inside.

pub mod apply;
pub mod defaults;
pub mod fence;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod registry;
pub mod selectors;
pub mod tables;
pub mod tolerations;
pub mod typed;
pub mod validation;
