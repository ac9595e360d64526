//! The `-metrics-addr` listener: `/metrics` (OpenMetrics text, which
//! Prometheus scrapes), `/health` and `/ready`. HTTP/1.1 through hyper's
//! server half (hyper is already built for the backends' client), bound
//! only to the address given, with a bounded number of connections and a
//! time limit on request headers so a slow client cannot pile them up.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;

use super::Ops;

/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 16;
/// How long a client may take to send its request headers.
const HEADER_LIMIT: Duration = Duration::from_secs(5);
/// The content type of `/metrics`.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Binds `addr` (`HOST:PORT`); the error is one line naming the flag.
pub fn bind(addr: &str) -> Result<TcpListener, String> {
    let fail = |why: String| format!("-metrics-addr {addr:?}: {why}");
    let resolved: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| fail(format!("not a HOST:PORT address ({e})")))?
        .collect();
    // A host name may resolve to several addresses; the first is the one
    // meant (localhost → 127.0.0.1), and only that one is bound.
    let first = resolved
        .first()
        .ok_or_else(|| fail("resolves to no address".to_string()))?;
    let listener =
        TcpListener::bind(first).map_err(|e| fail(format!("cannot listen on {first}: {e}")))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| fail(format!("cannot listen on {first}: {e}")))?;
    Ok(listener)
}

/// Serves requests on `listener` until the runtime stops.
pub async fn serve(listener: TcpListener, ops: Ops) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!(error = %e, "cannot serve -metrics-addr");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "metrics listener: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let ops = ops.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = respond(&request, &ops);
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_LIMIT)
                // One request per connection: an idle client cannot hold a slot.
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(permit);
        });
    }
}

fn respond(request: &Request<Incoming>, ops: &Ops) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    }
    match request.uri().path() {
        "/metrics" => {
            let mut response = Response::new(Full::from(ops.metrics().encode()));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS));
            response
        }
        "/health" if ops.alive() => text(StatusCode::OK, "ok\n"),
        "/health" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the event loop has stopped answering\n",
        ),
        "/ready" => match ops.readiness() {
            Ok(()) => json(StatusCode::OK, &serde_json::json!({ "ready": true })),
            Err(super::NotReady {
                failing,
                first_pass_done,
            }) => {
                let failing: serde_json::Map<String, serde_json::Value> = failing
                    .into_iter()
                    .map(|(name, step)| (name, serde_json::Value::from(step)))
                    .collect();
                json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &serde_json::json!({
                        "ready": false,
                        "first_pass_done": first_pass_done,
                        "failing": failing,
                    }),
                )
            }
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; try /metrics, /health or /ready\n",
        ),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::from(format!("{body}\n")));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
