//! The client side of fencing: the current fence, and a tower layer that puts it on
//! every write.
//!
//! The slot is never empty and never cleared. A deposed leader that keeps writing (it
//! paused, or its renewals hung) must send the fence it won with, so that the API
//! server rejects the write; an unfenced write would be accepted.
//!
//! What counts as a rejection: a 409 answer to a fenced request whose `Status` message
//! starts with [`REJECTION_PREFIX`] (the API server's wording). Ordinary 409s
//! (resourceVersion conflicts, AlreadyExists) are passed through uncounted. Only 409
//! bodies are read; every other response streams through untouched.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};

use api::fence::{Fence, HEADER};
use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full};
use tower::{BoxError, Layer, Service};

/// How the API server's fencing rejections begin (`write fenced: ...`).
pub const REJECTION_PREFIX: &str = "write fenced";

/// The fence a component's writes carry now. Cheap to clone; all clones share it.
#[derive(Clone, Debug)]
pub struct FenceSlot {
    inner: Arc<SlotInner>,
}

#[derive(Debug)]
struct SlotInner {
    fence: RwLock<Fence>,
    rejections: AtomicU64,
}

impl FenceSlot {
    /// A slot holding `fence` until the elector replaces it.
    pub fn new(fence: Fence) -> Self {
        FenceSlot {
            inner: Arc::new(SlotInner {
                fence: RwLock::new(fence),
                rejections: AtomicU64::new(0),
            }),
        }
    }

    /// The fence writes carry now.
    pub fn current(&self) -> Fence {
        // A poisoned lock still holds a whole Fence (it is only ever replaced whole).
        self.inner
            .fence
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many fenced writes the API server rejected for fencing.
    pub fn rejections(&self) -> u64 {
        self.inner.rejections.load(Ordering::Relaxed)
    }

    pub(crate) fn set(&self, fence: Fence) {
        *self
            .inner
            .fence
            .write()
            .unwrap_or_else(PoisonError::into_inner) = fence;
    }

    fn rejected(&self) -> u64 {
        self.inner.rejections.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Adds [`HEADER`] with the slot's fence to POST, PUT, PATCH and DELETE requests.
#[derive(Clone, Debug)]
pub struct FenceLayer {
    slot: FenceSlot,
}

impl FenceLayer {
    /// Fences with whatever `slot` holds at the time of each request.
    pub fn new(slot: FenceSlot) -> Self {
        FenceLayer { slot }
    }
}

impl<S> Layer<S> for FenceLayer {
    type Service = FenceService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FenceService {
            inner,
            slot: self.slot.clone(),
        }
    }
}

/// The service [`FenceLayer`] builds.
#[derive(Clone, Debug)]
pub struct FenceService<S> {
    inner: S,
    slot: FenceSlot,
}

/// Only writes are fenced: reads and watches of a stale leader harm nothing.
fn is_write(method: &Method) -> bool {
    [Method::POST, Method::PUT, Method::PATCH, Method::DELETE].contains(method)
}

impl<S, B, RB> Service<Request<B>> for FenceService<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    RB: http_body::Body<Data = Bytes> + Send + 'static,
    RB::Error: Into<BoxError>,
{
    type Response = Response<Either<RB, Full<Bytes>>>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if !is_write(request.method()) {
            let response = self.inner.call(request);
            return Box::pin(async move {
                let response = response.await.map_err(Into::into)?;
                Ok(response.map(Either::Left))
            });
        }
        let fence = self.slot.current();
        // Fence::new checked every part for header safety, so this cannot fail; if it
        // did, the write must fail rather than travel unfenced.
        let value = match HeaderValue::from_str(&fence.header_value()) {
            Ok(value) => value,
            Err(e) => return Box::pin(async move { Err(e.into()) }),
        };
        request.headers_mut().insert(HEADER, value);
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let slot = self.slot.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await.map_err(Into::into)?;
            if response.status() != StatusCode::CONFLICT {
                return Ok(response.map(Either::Left));
            }
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await.map_err(Into::into)?.to_bytes();
            let message = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|status| status.get("message")?.as_str().map(str::to_string))
                .unwrap_or_default();
            if message.starts_with(REJECTION_PREFIX) {
                let rejections = slot.rejected();
                tracing::warn!(
                    fence = %fence,
                    %method,
                    path,
                    rejections,
                    message,
                    "write rejected by fencing"
                );
            }
            Ok(Response::from_parts(parts, Either::Right(Full::new(bytes))))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Mutex;

    use tower::{ServiceBuilder, ServiceExt};

    use super::*;

    type Seen = Arc<Mutex<Vec<(Method, Option<String>)>>>;

    /// An echo that records each request's fence header and answers `status` and `body`.
    fn echo(
        seen: Seen,
        status: StatusCode,
        body: &'static str,
    ) -> impl Service<
        Request<Full<Bytes>>,
        Response = Response<Full<Bytes>>,
        Error = Infallible,
        Future = impl Send + 'static,
    > + Clone {
        tower::service_fn(move |request: Request<Full<Bytes>>| {
            let header = request
                .headers()
                .get(HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            seen.lock()
                .expect("lock")
                .push((request.method().clone(), header));
            async move {
                let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
                *response.status_mut() = status;
                Ok::<_, Infallible>(response)
            }
        })
    }

    fn fence(transitions: i32) -> Fence {
        Fence::new("kube-system", "kube-scheduler", transitions, "host_1").expect("fence")
    }

    async fn send(
        service: &mut (
                 impl Service<
            Request<Full<Bytes>>,
            Response = Response<Either<Full<Bytes>, Full<Bytes>>>,
            Error = BoxError,
        > + Send
             ),
        method: Method,
    ) -> (StatusCode, String) {
        let request = Request::builder()
            .method(method)
            .uri("/api/v1/namespaces/a/pods")
            .body(Full::new(Bytes::new()))
            .expect("request");
        let response = service
            .ready()
            .await
            .expect("ready")
            .call(request)
            .await
            .expect("call");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn writes_carry_the_current_fence_and_reads_do_not() {
        let seen = Seen::default();
        let slot = FenceSlot::new(fence(0));
        let mut service = ServiceBuilder::new()
            .layer(FenceLayer::new(slot.clone()))
            .service(echo(seen.clone(), StatusCode::OK, "{}"));
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ] {
            let (status, body) = send(&mut service, method).await;
            assert_eq!((status, body.as_str()), (StatusCode::OK, "{}"));
        }
        slot.set(fence(3));
        send(&mut service, Method::POST).await;

        let seen = seen.lock().expect("lock").clone();
        let old = Some("kube-system/kube-scheduler/0/host_1".to_string());
        let new = Some("kube-system/kube-scheduler/3/host_1".to_string());
        assert_eq!(
            seen,
            vec![
                (Method::GET, None),
                (Method::POST, old.clone()),
                (Method::PUT, old.clone()),
                (Method::PATCH, old.clone()),
                (Method::DELETE, old),
                (Method::POST, new),
            ]
        );
        assert_eq!(slot.rejections(), 0);
    }

    #[tokio::test]
    async fn counts_fencing_rejections_but_not_other_conflicts() {
        let fenced = r#"{"kind":"Status","status":"Failure","code":409,"reason":"Conflict","message":"write fenced: lease kube-system/kube-scheduler is held by other"}"#;
        let conflict = r#"{"kind":"Status","status":"Failure","code":409,"reason":"Conflict","message":"the object has been modified"}"#;
        let slot = FenceSlot::new(fence(1));

        let mut rejected = FenceLayer::new(slot.clone()).layer(echo(
            Seen::default(),
            StatusCode::CONFLICT,
            fenced,
        ));
        let (status, body) = send(&mut rejected, Method::PUT).await;
        // The body is handed on whole, so the caller still sees the Status.
        assert_eq!((status, body.as_str()), (StatusCode::CONFLICT, fenced));
        assert_eq!(slot.rejections(), 1);
        // A read is not fenced, so its 409 (if any) is not a fencing rejection.
        send(&mut rejected, Method::GET).await;
        assert_eq!(slot.rejections(), 1);

        let mut conflicting = FenceLayer::new(slot.clone()).layer(echo(
            Seen::default(),
            StatusCode::CONFLICT,
            conflict,
        ));
        let (status, body) = send(&mut conflicting, Method::PUT).await;
        assert_eq!((status, body.as_str()), (StatusCode::CONFLICT, conflict));
        assert_eq!(slot.rejections(), 1);
    }

    /// The lead builds fenced clients with `ClientBuilder::with_layer`; this must type-check
    /// over kube's own stack and put the header on a kube-rs write.
    #[tokio::test]
    async fn fits_a_kube_client() {
        let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
        let recorder = seen.clone();
        let inner = tower::service_fn(move |request: Request<kube::client::Body>| {
            recorder.lock().expect("lock").push(
                request
                    .headers()
                    .get(HEADER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
            );
            async move {
                let body = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"a"}}"#;
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                    body.as_bytes(),
                ))))
            }
        });
        let slot = FenceSlot::new(fence(5));
        let client = kube::Client::new(FenceLayer::new(slot).layer(inner), "a");
        let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
            kube::Api::namespaced(client, "a");
        api.get("c").await.expect("get");
        api.create(&Default::default(), &Default::default())
            .await
            .expect("create");
        assert_eq!(
            *seen.lock().expect("lock"),
            vec![
                None,
                Some("kube-system/kube-scheduler/5/host_1".to_string())
            ]
        );
    }
}
