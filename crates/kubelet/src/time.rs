//! API timestamps: `Time` has whole seconds on the wire, `MicroTime` microseconds, so
//! values are truncated when made; a status built twice in one second compares equal.

use std::time::SystemTime;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;

/// Now, to the second.
pub fn now() -> Time {
    from_system(SystemTime::now())
}

/// `time`, to the second.
pub fn from_system(time: SystemTime) -> Time {
    let seconds = Timestamp::try_from(time)
        .map(|t| t.as_second())
        .unwrap_or(0);
    Time(Timestamp::from_second(seconds).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// Now, to the microsecond.
pub fn micro_now() -> MicroTime {
    let micros = Timestamp::now().as_microsecond();
    MicroTime(Timestamp::from_microsecond(micros).unwrap_or(Timestamp::UNIX_EPOCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_750);
        assert_eq!(from_system(t).0.as_second(), 1_700_000_000);
        assert_eq!(from_system(t).0.subsec_nanosecond(), 0);
        assert_eq!(micro_now().0.subsec_nanosecond() % 1000, 0);
    }
}
