//! CRI statuses as the kubelet's runtime types.

use std::time::{Duration, SystemTime};

use cri::proto;

use crate::runtime::{ContainerState, ContainerStatus, SandboxState, SandboxStatus};

/// CRI timestamps are nanoseconds since the epoch; 0 (or garbage) is "unset".
pub fn time(nanos: i64) -> SystemTime {
    u64::try_from(nanos)
        .ok()
        .and_then(|n| SystemTime::UNIX_EPOCH.checked_add(Duration::from_nanos(n)))
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

pub fn sandbox(s: &proto::PodSandboxStatus) -> SandboxStatus {
    SandboxStatus {
        id: s.id.clone(),
        attempt: s.metadata.as_ref().map_or(0, |m| m.attempt),
        state: if s.state == proto::PodSandboxState::SandboxReady as i32 {
            SandboxState::Ready
        } else {
            SandboxState::NotReady
        },
        ip: s.network.as_ref().and_then(|n| n.ip.parse().ok()),
        created_at: time(s.created_at),
    }
}

/// One container's status; its id carries the runtime's scheme (`containerd://`).
pub fn container(runtime_name: &str, s: &proto::ContainerStatus) -> ContainerStatus {
    let state = match proto::ContainerState::try_from(s.state) {
        Ok(proto::ContainerState::ContainerCreated) => ContainerState::Created,
        Ok(proto::ContainerState::ContainerRunning) => ContainerState::Running {
            started_at: time(s.started_at),
        },
        Ok(proto::ContainerState::ContainerExited) => ContainerState::Exited {
            // A container that never started (its start failed) reports 0: use its
            // creation, so timestamps stay ordered.
            started_at: time(if s.started_at > 0 {
                s.started_at
            } else {
                s.created_at
            }),
            finished_at: time(s.finished_at),
            exit_code: s.exit_code,
            reason: if s.reason.is_empty() {
                if s.exit_code == 0 {
                    "Completed"
                } else {
                    "Error"
                }
                .to_string()
            } else {
                s.reason.clone()
            },
            message: s.message.clone(),
        },
        _ => ContainerState::Unknown,
    };
    ContainerStatus {
        id: format!("{runtime_name}://{}", s.id),
        name: s
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default(),
        attempt: s.metadata.as_ref().map_or(0, |m| m.attempt),
        image: s
            .image
            .as_ref()
            .map(|i| i.image.clone())
            .unwrap_or_default(),
        image_ref: s.image_ref.clone(),
        state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exited_containers() {
        let s = proto::ContainerStatus {
            id: "abc".into(),
            metadata: Some(proto::ContainerMetadata {
                name: "app".into(),
                attempt: 2,
            }),
            state: proto::ContainerState::ContainerExited as i32,
            created_at: 1_000_000_000,
            started_at: 2_000_000_000,
            finished_at: 3_000_000_000,
            exit_code: 1,
            ..proto::ContainerStatus::default()
        };
        let c = container("containerd", &s);
        assert_eq!(c.id, "containerd://abc");
        assert_eq!(c.attempt, 2);
        match c.state {
            ContainerState::Exited {
                exit_code,
                reason,
                finished_at,
                ..
            } => {
                assert_eq!((exit_code, reason.as_str()), (1, "Error"));
                assert_eq!(finished_at, time(3_000_000_000));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(time(-5), SystemTime::UNIX_EPOCH);
    }
}
