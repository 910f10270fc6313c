//! Label and field selectors, parsed and matched as upstream does.
//!
//! - [`labels`]: label selectors, from the query-string form or the API form
//!   (`matchLabels`/`matchExpressions`), with upstream's canonical rendering.
//! - [`fields`]: field selectors (`metadata.name=web,status.phase!=Running`).

pub mod fields;
pub mod labels;

pub use fields::FieldSelector;
pub use labels::LabelSelector;

/// A selector that does not parse; the message is upstream's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(pub String);
