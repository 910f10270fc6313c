//! mast's container-runtime groundwork: what the kubelet stands on to run pods through
//! CRI on containerd + runc with CNI bridge networking.
//!
//! # Layout
//!
//! - [`containerd`]: containerd's config, written into a data dir, and a supervisor that
//!   starts it (optionally inside a network namespace), waits until it answers CRI,
//!   restarts it with backoff and stops it; or an existing endpoint ([`Runtime`]).
//! - [`client`]: a CRI v1 client (RuntimeService, ImageService) over the unix socket,
//!   wrapping the calls the kubelet makes in a small typed API ([`CriClient`]).
//! - [`images`]: offline images: `ctr images import` of archives, one file or a
//!   directory of `*.tar` ([`Importer`]).
//! - [`cni`]: the node's pod network as a CNI conflist (bridge + host-local IPAM over
//!   the podCIDR) in containerd's CNI conf dir ([`BridgeNetwork`]).
//!
//! The CRI message types are the `k8s-cri` crate's, re-exported as [`proto`]; test
//! images come from `scripts/build-images.sh` (busybox and the pause image).

pub mod client;
pub mod cni;
pub mod containerd;
pub mod images;

pub use client::{ClientError, ContainerFilter, CriClient, SandboxFilter};
pub use cni::{BridgeNetwork, CniError};
pub use containerd::{Containerd, ContainerdConfig, ContainerdError, Runtime, RuntimeSource};
pub use images::{ImportError, Importer};
/// The CRI v1 messages and enums (from the `k8s-cri` crate).
pub use k8s_cri::v1 as proto;
