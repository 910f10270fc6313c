//! The in-tree plugins, one module each, with upstream's names.

pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_ready;
pub mod node_resources_balanced_allocation;
pub mod node_resources_fit;
pub mod node_resources_least_allocated;
pub mod node_unschedulable;
pub mod selector_spread;
pub mod taint_toleration;

pub use node_affinity::NodeAffinity;
pub use node_name::NodeName;
pub use node_ports::NodePorts;
pub use node_ready::NodeReady;
pub use node_resources_balanced_allocation::NodeResourcesBalancedAllocation;
pub use node_resources_fit::NodeResourcesFit;
pub use node_resources_least_allocated::NodeResourcesLeastAllocated;
pub use node_unschedulable::NodeUnschedulable;
pub use selector_spread::SelectorSpread;
pub use taint_toleration::TaintToleration;
