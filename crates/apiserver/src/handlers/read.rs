//! get and list.

use api::registry::Resource;
use base64::Engine;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::handlers::Request;
use crate::meta;
use crate::query::ListOptions;

/// GET of one object.
pub async fn get(req: &Request<'_>) -> Result<Value, ApiError> {
    let name = req.name()?;
    let stored = req
        .state
        .objects()
        .get(req.resource, &req.key(name), name)
        .await?;
    Ok(stored.object)
}

/// A continue token: the revision of the list's snapshot and the last key returned.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Continue {
    v: String,
    rv: i64,
    start: String,
}

fn encode_continue(revision: i64, last_key: &[u8]) -> String {
    let token = Continue {
        v: "meta.k8s.io/v1".into(),
        rv: revision,
        start: String::from_utf8_lossy(last_key).into_owned(),
    };
    let json = serde_json::to_vec(&token).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE.encode(json)
}

fn decode_continue(token: &str, prefix: &str) -> Result<(i64, String), ApiError> {
    let bad = || ApiError::BadRequest(format!("continue key is not valid: {token}"));
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .map_err(|_| bad())?;
    let c: Continue = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    // The token must point inside the collection being listed.
    if c.rv <= 0 || !c.start.starts_with(prefix) {
        return Err(bad());
    }
    Ok((c.rv, c.start))
}

/// Whether an object passes the list's label and field selectors.
pub fn selected(resource: &Resource, options: &ListOptions, object: &Value) -> bool {
    (options.labels.is_empty() || options.labels.matches(&meta::labels(object)))
        && (options.fields.is_empty()
            || options.fields.matches(|field| {
                resource
                    .field_pointer(field)
                    .and_then(|p| meta::field_value(object, p))
            }))
}

/// The revision a list reads at, from resourceVersion and resourceVersionMatch.
async fn list_revision(req: &Request<'_>, options: &ListOptions) -> Result<i64, ApiError> {
    let Some(rv) = options.resource_version.as_deref() else {
        return Ok(0);
    };
    let version: i64 = rv
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("invalid resourceVersion: {rv}")))?;
    match options.resource_version_match.as_deref() {
        Some("Exact") if version > 0 => Ok(version),
        Some("Exact") => Err(ApiError::BadRequest(
            "resourceVersionMatch \"Exact\" requires a resourceVersion other than 0".into(),
        )),
        _ => {
            // NotOlderThan (or unset): the newest state is never older than any
            // resourceVersion this store has handed out; a later one is refused.
            let current = req.state.objects().current_revision().await?;
            if version > current {
                return Err(ApiError::Timeout(format!(
                    "Too large resource version: {version}, current: {current}"
                )));
            }
            Ok(0)
        }
    }
}

/// LIST, with selectors and paging at one revision.
pub async fn list(req: &Request<'_>, options: &ListOptions) -> Result<Value, ApiError> {
    let resource = req.resource;
    let prefix = resource.namespace_prefix(req.namespace.as_deref());
    let (mut revision, mut after) = match &options.continue_token {
        Some(token) => {
            let (rv, start) = decode_continue(token, &prefix)?;
            (rv, Some(start.into_bytes()))
        }
        None => (list_revision(req, options).await?, None),
    };
    let want = options.limit.unwrap_or(0);
    let mut items = Vec::new();
    let mut continue_after: Option<Vec<u8>> = None;
    'pages: loop {
        let page_size = if want == 0 { 0 } else { want.max(100) };
        let page = req
            .state
            .objects()
            .list(&prefix, revision, page_size, after.as_deref())
            .await
            .map_err(|e| match (e, options.continue_token.is_some()) {
                (ApiError::Expired(_), true) => ApiError::Expired(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.".into(),
                ),
                (e, _) => e,
            })?;
        revision = page.revision;
        for (key, stored) in page.items {
            if want > 0 && items.len() == want {
                // Full, and this item proves more remain: resume after the last one read.
                continue_after = after;
                break 'pages;
            }
            if selected(resource, options, &stored.object) {
                items.push(stored.object);
            }
            after = Some(key);
        }
        match page.more_after {
            Some(last) => after = Some(last),
            None => break,
        }
    }
    let mut metadata = json!({"resourceVersion": revision.to_string()});
    if let Some(last) = continue_after {
        metadata["continue"] = json!(encode_continue(revision, &last));
    }
    Ok(json!({
        "kind": format!("{}List", resource.kind),
        "apiVersion": resource.api_version(),
        "metadata": metadata,
        "items": items,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_stay_in_their_collection() {
        let token = encode_continue(42, b"/registry/pods/default/web");
        let (rv, start) = decode_continue(&token, "/registry/pods/default/").expect("decode");
        assert_eq!((rv, start.as_str()), (42, "/registry/pods/default/web"));
        assert!(decode_continue(&token, "/registry/secrets/").is_err());
        assert!(decode_continue("not base64!", "/registry/").is_err());
    }
}
