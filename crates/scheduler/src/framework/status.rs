//! The result of running one plugin on one node, as upstream's `framework.Status`.

use serde::Serialize;

/// What a plugin concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Code {
    /// The node passes.
    Success,
    /// The node does not fit now, but might after preemption or other changes.
    Unschedulable,
    /// The node does not fit, and preempting pods on it would not help.
    UnschedulableAndUnresolvable,
    /// The plugin failed; the whole scheduling cycle is aborted.
    Error,
}

/// A plugin's verdict, with its reasons and the name of the plugin that gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The verdict.
    pub code: Code,
    /// Human-readable reasons; each one is counted separately in FailedScheduling
    /// messages.
    pub reasons: Vec<String>,
    /// The plugin that produced this status (empty for success).
    pub plugin: String,
}

impl Status {
    /// A passing status.
    pub fn success() -> Self {
        Self {
            code: Code::Success,
            reasons: Vec::new(),
            plugin: String::new(),
        }
    }

    /// A status with a code and reasons.
    pub fn new(code: Code, reasons: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            code,
            reasons: reasons.into_iter().map(Into::into).collect(),
            plugin: String::new(),
        }
    }

    /// `Unschedulable` with one reason.
    pub fn unschedulable(reason: impl Into<String>) -> Self {
        Self::new(Code::Unschedulable, [reason.into()])
    }

    /// `UnschedulableAndUnresolvable` with one reason.
    pub fn unresolvable(reason: impl Into<String>) -> Self {
        Self::new(Code::UnschedulableAndUnresolvable, [reason.into()])
    }

    /// `Error` with one message.
    pub fn error(message: impl Into<String>) -> Self {
        Self::new(Code::Error, [message.into()])
    }

    /// Records the plugin that produced the status.
    #[must_use]
    pub fn with_plugin(mut self, plugin: &str) -> Self {
        self.plugin = plugin.to_string();
        self
    }

    /// Whether the node passes.
    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }

    /// Whether the node was rejected (either unschedulable code).
    pub fn is_rejected(&self) -> bool {
        matches!(
            self.code,
            Code::Unschedulable | Code::UnschedulableAndUnresolvable
        )
    }

    /// The reasons joined as upstream's `Status.Message()` does.
    pub fn message(&self) -> String {
        self.reasons.join(", ")
    }
}

impl Default for Status {
    fn default() -> Self {
        Self::success()
    }
}
