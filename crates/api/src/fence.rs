//! Leader fencing tokens, as they travel in a request header.
//!
//! A leader-elected component (scheduler, controller-manager) sends, with every write,
//! the Lease it leads by and what that Lease said when it won: holder identity and
//! transition count. The API server checks, atomically with the write, that the Lease
//! still says so; a deposed leader that wakes up after a pause can therefore never
//! write. Upstream's election gives no such guarantee.
//!
//! Wire form (header [`HEADER`]): `NAMESPACE/NAME/TRANSITIONS/HOLDER`, holder last so
//! that it may itself contain `/`. Every part is visible ASCII, as header values must
//! be.

use std::fmt;

/// The request header carrying a fence.
pub const HEADER: &str = "x-mast-fence";

/// What a leader's writes are conditional on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fence {
    /// Namespace of the Lease (`kube-system`).
    pub lease_namespace: String,
    /// Name of the Lease (`kube-scheduler`, `kube-controller-manager`).
    pub lease_name: String,
    /// `spec.leaseTransitions` when this holder acquired the Lease.
    pub transitions: i32,
    /// `spec.holderIdentity` of the leader.
    pub holder: String,
}

/// Why a header value is not a fence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FenceError {
    /// Fewer than four `/`-separated parts, or an empty one.
    #[error("fence {value:?} is not NAMESPACE/NAME/TRANSITIONS/HOLDER")]
    Shape { value: String },
    /// The transition count is not a non-negative integer.
    #[error("fence {value:?}: transitions {transitions:?} is not a non-negative integer")]
    Transitions { value: String, transitions: String },
    /// A part holds a character a header value cannot carry.
    #[error("fence part {part:?} must be visible ASCII")]
    Characters { part: String },
}

impl Fence {
    /// A fence after checking that every part can travel in a header.
    pub fn new(
        lease_namespace: impl Into<String>,
        lease_name: impl Into<String>,
        transitions: i32,
        holder: impl Into<String>,
    ) -> Result<Self, FenceError> {
        let fence = Fence {
            lease_namespace: lease_namespace.into(),
            lease_name: lease_name.into(),
            transitions,
            holder: holder.into(),
        };
        fence.check()?;
        Ok(fence)
    }

    /// Parses a header value.
    pub fn parse(value: &str) -> Result<Self, FenceError> {
        let shape = || FenceError::Shape {
            value: value.to_string(),
        };
        let mut parts = value.trim().splitn(4, '/');
        let (Some(namespace), Some(name), Some(transitions), Some(holder)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(shape());
        };
        if [namespace, name, transitions, holder]
            .iter()
            .any(|p| p.is_empty())
        {
            return Err(shape());
        }
        let transitions_number = transitions
            .parse::<i32>()
            .ok()
            .filter(|t| *t >= 0)
            .ok_or_else(|| FenceError::Transitions {
                value: value.to_string(),
                transitions: transitions.to_string(),
            })?;
        Fence::new(namespace, name, transitions_number, holder)
    }

    /// The header value.
    pub fn header_value(&self) -> String {
        self.to_string()
    }

    /// `namespace/name` of the Lease.
    pub fn lease(&self) -> String {
        format!("{}/{}", self.lease_namespace, self.lease_name)
    }

    fn check(&self) -> Result<(), FenceError> {
        let header_safe = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
        for part in [&self.lease_namespace, &self.lease_name, &self.holder] {
            if !header_safe(part) {
                return Err(FenceError::Characters { part: part.clone() });
            }
        }
        for part in [&self.lease_namespace, &self.lease_name] {
            if part.contains('/') {
                return Err(FenceError::Characters { part: part.clone() });
            }
        }
        if self.transitions < 0 {
            return Err(FenceError::Transitions {
                value: self.to_string(),
                transitions: self.transitions.to_string(),
            });
        }
        Ok(())
    }
}

impl fmt::Display for Fence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.lease_namespace, self.lease_name, self.transitions, self.holder
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_a_slash_in_the_holder() {
        let fence = Fence::new("kube-system", "kube-scheduler", 7, "host/a_1234").expect("fence");
        let text = fence.header_value();
        assert_eq!(text, "kube-system/kube-scheduler/7/host/a_1234");
        assert_eq!(Fence::parse(&text), Ok(fence));
    }

    #[test]
    fn rejects_malformed_values() {
        assert!(matches!(
            Fence::parse("kube-system/kube-scheduler/7"),
            Err(FenceError::Shape { .. })
        ));
        assert!(matches!(
            Fence::parse("kube-system//7/h"),
            Err(FenceError::Shape { .. })
        ));
        assert!(matches!(
            Fence::parse("kube-system/s/-1/h"),
            Err(FenceError::Transitions { .. })
        ));
        assert!(matches!(
            Fence::parse("kube-system/s/x/h"),
            Err(FenceError::Transitions { .. })
        ));
        assert!(matches!(
            Fence::new("kube-system", "s", 1, "has space"),
            Err(FenceError::Characters { .. })
        ));
        assert!(matches!(
            Fence::new("kube/system", "s", 1, "h"),
            Err(FenceError::Characters { .. })
        ));
    }
}
