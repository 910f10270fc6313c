//! `/readyz`, as upstream's health checks answer: `ok` when every check passes, and
//! with `?verbose` one `[+]name ok` / `[-]name failed: reason` line per check. The
//! checks: the store answers (named after its backend, `[+]sqlite ok` or
//! `[+]etcd ok`, as upstream names its `etcd` check) and every watch cache has
//! listed.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// How long the store gets to answer before it counts as down.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// One check's verdict: its name and, if it failed, why.
type Check = (String, Result<(), String>);

async fn checks(state: &AppState) -> Vec<Check> {
    let store = match tokio::time::timeout(STORE_TIMEOUT, state.objects().current_revision()).await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {}s", STORE_TIMEOUT.as_secs())),
    };
    let caches = if state.caches().ready() {
        Ok(())
    } else {
        Err("watch caches are not ready".to_string())
    };
    vec![
        ("ping".to_string(), Ok(())),
        (state.backend().to_string(), store),
        ("watch-caches".to_string(), caches),
    ]
}

/// The `?verbose` text of `checks`.
pub fn render(checks: &[Check]) -> String {
    let mut text = String::new();
    for (name, result) in checks {
        match result {
            Ok(()) => text.push_str(&format!("[+]{name} ok\n")),
            Err(reason) => text.push_str(&format!("[-]{name} failed: {reason}\n")),
        }
    }
    if checks.iter().all(|(_, r)| r.is_ok()) {
        text.push_str("readyz check passed\n");
    } else {
        text.push_str("readyz check failed\n");
    }
    text
}

/// `GET /readyz[?verbose]`: 200 when every check passes, else 503 with the list.
pub async fn ready(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let checks = checks(&state).await;
    let passed = checks.iter().all(|(_, r)| r.is_ok());
    match (passed, query.contains_key("verbose")) {
        (true, false) => "ok".into_response(),
        (true, true) => render(&checks).into_response(),
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, render(&checks)).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbose_lines() {
        let checks = vec![
            ("ping".to_string(), Ok(())),
            ("etcd".to_string(), Err("unavailable".to_string())),
        ];
        assert_eq!(
            render(&checks),
            "[+]ping ok\n[-]etcd failed: unavailable\nreadyz check failed\n"
        );
    }
}
