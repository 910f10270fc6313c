//! The requests behind `mast get`: collections in chunks of 500 (as kubectl asks for
//! them) or single objects, as server-rendered Tables or as plain objects.

use anyhow::Context;
use http::HeaderValue;
use http::header::ACCEPT;
use kube::api::{GetParams, ListParams};
use serde_json::Value;

use super::target::Visit;
use crate::ctl::Session;
use crate::ctl::printer::Table;

/// What kubectl sends to be answered with a Table (v1, else v1beta1, else objects).
pub const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,\
                                application/json;as=Table;v=v1beta1;g=meta.k8s.io,\
                                application/json";

/// kubectl's `--chunk-size` default.
const CHUNK_SIZE: u32 = 500;

/// Where and what to list.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// None: every namespace (or a cluster-scoped type).
    pub namespace: Option<String>,
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
}

/// The path of `visit`'s collection in `scope`.
pub fn collection_url(session: &Session, visit: &Visit, scope: &Scope) -> String {
    let namespace = visit.namespace.as_deref().or(scope.namespace.as_deref());
    session
        .api(&visit.resource, namespace)
        .resource_url()
        .to_string()
}

/// `visit` as a Table: the collection's rows (every chunk), or the one object's row.
pub async fn table(session: &Session, visit: &Visit, scope: &Scope) -> anyhow::Result<Table> {
    let url = collection_url(session, visit, scope);
    let request = kube::core::Request::new(&url);
    if let Some(name) = &visit.name {
        let mut http_request = request.get(name, &GetParams::default())?;
        accept_table(&mut http_request);
        return fetch_table(session, http_request).await;
    }
    let mut whole: Option<Table> = None;
    let mut continue_token = None;
    loop {
        let params = list_params(scope, continue_token.take());
        let mut http_request = request.list(&params)?;
        accept_table(&mut http_request);
        let chunk = fetch_table(session, http_request).await?;
        let next = chunk
            .metadata
            .continue_token
            .clone()
            .filter(|t| !t.is_empty());
        match &mut whole {
            Some(table) => {
                table.rows.extend(chunk.rows);
                table.metadata = chunk.metadata;
            }
            None => whole = Some(chunk),
        }
        match next {
            Some(token) => continue_token = Some(token),
            None => break,
        }
    }
    Ok(whole.unwrap_or_default())
}

/// `visit`'s objects: the collection's items (each with its apiVersion and kind, which
/// list items may lack) and the list's resourceVersion, or the one object.
pub async fn objects(
    session: &Session,
    visit: &Visit,
    scope: &Scope,
) -> anyhow::Result<(Vec<Value>, String)> {
    let url = collection_url(session, visit, scope);
    let request = kube::core::Request::new(&url);
    if let Some(name) = &visit.name {
        let object: Value = session
            .client
            .request(request.get(name, &GetParams::default())?)
            .await?;
        let version = resource_version(&object);
        return Ok((vec![object], version));
    }
    let mut items = Vec::new();
    let mut continue_token = None;
    loop {
        let params = list_params(scope, continue_token.take());
        let mut list: Value = session.client.request(request.list(&params)?).await?;
        if let Some(Value::Array(chunk)) = list.get_mut("items").map(Value::take) {
            items.extend(chunk.into_iter().map(|mut item| {
                fill_type(&mut item, visit);
                item
            }));
        }
        let version = list
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        match list
            .pointer("/metadata/continue")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            Some(token) => continue_token = Some(token.to_string()),
            None => return Ok((items, version)),
        }
    }
}

fn list_params(scope: &Scope, continue_token: Option<String>) -> ListParams {
    ListParams {
        label_selector: scope.label_selector.clone(),
        field_selector: scope.field_selector.clone(),
        limit: Some(CHUNK_SIZE),
        continue_token,
        ..ListParams::default()
    }
}

pub fn accept_table(request: &mut http::Request<Vec<u8>>) {
    request
        .headers_mut()
        .insert(ACCEPT, HeaderValue::from_static(TABLE_ACCEPT));
}

async fn fetch_table(session: &Session, request: http::Request<Vec<u8>>) -> anyhow::Result<Table> {
    let value: Value = session.client.request(request).await?;
    parse_table(value)
}

/// A Table from a response (or a watch event's object).
pub fn parse_table(value: Value) -> anyhow::Result<Table> {
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    anyhow::ensure!(
        kind == "Table",
        "the server answered with a {kind} where a Table was asked for"
    );
    serde_json::from_value(value).context("decoding the server's Table")
}

/// Sets `item`'s apiVersion and kind from its resource when the list left them out.
fn fill_type(item: &mut Value, visit: &Visit) {
    if let Some(map) = item.as_object_mut() {
        map.entry("apiVersion")
            .or_insert_with(|| Value::from(visit.resource.api.api_version.clone()));
        map.entry("kind")
            .or_insert_with(|| Value::from(visit.resource.api.kind.clone()));
    }
}

pub fn resource_version(object: &Value) -> String {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}
