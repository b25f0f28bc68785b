//! `Transport` over `wasi:http/outgoing-handler` (the host applies its policy to every request) and
//! backoff sleeps over `wasi:clocks/monotonic-clock`.

use super::{BodyStream, HttpRequest, HttpResponse, Transport, TransportError};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, HeaderError, IncomingBody, InputStream, Method, OutgoingBody,
    OutgoingRequest, RequestOptions, Scheme,
};
use wasip2::io::streams::StreamError;

/// Largest read asked of the host at once; streamed tokens arrive much smaller anyway.
const READ_CHUNK: u64 = 64 * 1024;
/// `blocking-write-and-flush` accepts at most 4096 bytes per call.
const WRITE_CHUNK: usize = 4096;

pub struct WasiHttp;

impl Transport for WasiHttp {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        send(request)
    }

    fn sleep_ms(&self, ms: u64) {
        wasip2::clocks::monotonic_clock::subscribe_duration(ms.saturating_mul(1_000_000)).block();
    }

    fn random_bytes(&self, n: usize) -> Vec<u8> {
        wasip2::random::random::get_random_bytes(n as u64)
    }
}

fn send(request: &HttpRequest) -> Result<HttpResponse, TransportError> {
    let (scheme, rest) = request
        .url
        .split_once("://")
        .ok_or_else(|| TransportError::Failed(format!("not an absolute URL: {}", request.url)))?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };

    let entries: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    let headers = Fields::from_list(&entries).map_err(|e| match e {
        HeaderError::Forbidden => {
            TransportError::Denied("the host forbids one of the request headers".into())
        }
        other => TransportError::Failed(format!("invalid request header: {other:?}")),
    })?;
    let outgoing = OutgoingRequest::new(headers);
    let invalid =
        |what: &str| TransportError::Failed(format!("the host rejected the request {what}"));
    outgoing
        .set_method(&method(&request.method))
        .map_err(|()| invalid("method"))?;
    let scheme = match scheme {
        "https" => Scheme::Https,
        "http" => Scheme::Http,
        other => Scheme::Other(other.to_owned()),
    };
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|()| invalid("scheme"))?;
    outgoing
        .set_authority(Some(authority))
        .map_err(|()| invalid("authority"))?;
    outgoing
        .set_path_with_query(Some(&path))
        .map_err(|()| invalid("path"))?;

    let options = RequestOptions::new();
    let ns = |ms: u64| ms.saturating_mul(1_000_000);
    // A host may not support some timeouts; it then applies its own, so an error here is not fatal.
    let _ = options.set_connect_timeout(Some(ns(request.timeouts.connect_ms)));
    let _ = options.set_first_byte_timeout(Some(ns(request.timeouts.first_byte_ms)));
    let _ = options.set_between_bytes_timeout(Some(ns(request.timeouts.between_bytes_ms)));

    let body = outgoing
        .body()
        .map_err(|()| TransportError::Failed("request body unavailable".into()))?;
    // Hand the request to the host first, then stream the body: writing a large body before `handle`
    // could fill the pipe with nobody reading it.
    let future = outgoing_handler::handle(outgoing, Some(options))
        .map_err(|e| map_error_code(e, request))?;
    let written = write_body(body, request.body.as_deref());

    future.subscribe().block();
    let response = match future.get() {
        // An answer to a request whose body did not go out whole only counts if it is an error
        // answer (e.g. 413); a success would describe a request that was not sent.
        Some(Ok(Ok(response))) if written.is_ok() || response.status() >= 400 => response,
        Some(Ok(Ok(_))) => return Err(written.unwrap_err()),
        // A host that refuses the request closes the body stream: its reason beats "stream closed".
        Some(Ok(Err(code))) => return Err(map_error_code(code, request)),
        Some(Err(())) => {
            return Err(TransportError::Failed(
                "the response was already taken".into(),
            ));
        }
        None => {
            written?;
            return Err(TransportError::Failed("no response arrived".into()));
        }
    };

    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let incoming = response
        .consume()
        .map_err(|()| TransportError::Failed("response body unavailable".into()))?;
    let stream = incoming
        .stream()
        .map_err(|()| TransportError::Failed("response body stream unavailable".into()))?;
    Ok(HttpResponse {
        status,
        headers,
        body: Box::new(WasiBody {
            stream: Some(stream),
            _body: Some(incoming),
            between_bytes_ms: request.timeouts.between_bytes_ms,
        }),
    })
}

fn method(name: &str) -> Method {
    match name {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.to_owned()),
    }
}

fn write_body(body: OutgoingBody, bytes: Option<&[u8]>) -> Result<(), TransportError> {
    if let Some(bytes) = bytes {
        let stream = body
            .write()
            .map_err(|()| TransportError::Failed("request body stream unavailable".into()))?;
        for chunk in bytes.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| stream_error("writing the request body", e))?;
        }
        // The stream must be dropped before the body is finished.
        drop(stream);
    }
    OutgoingBody::finish(body, None)
        .map_err(|e| TransportError::Failed(format!("finishing the request body: {e:?}")))
}

fn stream_error(what: &str, e: StreamError) -> TransportError {
    match e {
        StreamError::Closed => TransportError::Failed(format!("{what}: the stream was closed")),
        StreamError::LastOperationFailed(err) => match wasip2::http::types::http_error_code(&err) {
            Some(code) if is_timeout(&code) => TransportError::Timeout(format!("{what}: {code:?}")),
            Some(ErrorCode::HttpRequestBodySize(limit)) => {
                TransportError::Denied(body_too_big(limit))
            }
            Some(ErrorCode::InternalError(Some(text))) => TransportError::from_policy_text(&text)
                .unwrap_or_else(|| TransportError::Failed(format!("{what}: {text}"))),
            Some(code) => TransportError::Failed(format!("{what}: {code:?}")),
            None => TransportError::Failed(format!("{what}: {}", err.to_debug_string())),
        },
    }
}

/// The host cut a request body at its size limit.
fn body_too_big(limit: Option<u64>) -> String {
    match limit {
        Some(n) => {
            format!("limit: the request body is over the host's request-size limit of {n} bytes")
        }
        None => "limit: the request body is over the host's request-size limit".into(),
    }
}

fn is_timeout(code: &ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::DnsTimeout
            | ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::ConnectionWriteTimeout
            | ErrorCode::HttpResponseTimeout
    )
}

fn map_error_code(code: ErrorCode, request: &HttpRequest) -> TransportError {
    let t = &request.timeouts;
    match code {
        ErrorCode::InternalError(Some(text)) => TransportError::from_policy_text(&text)
            .unwrap_or_else(|| TransportError::Failed(format!("host error: {text}"))),
        ErrorCode::ConnectionTimeout | ErrorCode::DnsTimeout => TransportError::Timeout(format!(
            "no connection within the connect timeout of {} ms",
            t.connect_ms
        )),
        ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => {
            TransportError::Timeout(format!(
                "no response within the first-byte timeout of {} ms (or the host's lower limit)",
                t.first_byte_ms
            ))
        }
        ErrorCode::ConnectionWriteTimeout => {
            TransportError::Timeout("the request could not be sent in time".into())
        }
        ErrorCode::HttpRequestDenied => {
            TransportError::Denied(format!("{} {}", request.method, request.url))
        }
        ErrorCode::HttpRequestBodySize(limit) => TransportError::Denied(body_too_big(limit)),
        other => TransportError::Failed(format!("{other:?}")),
    }
}

/// The response body; the stream is a child of the body resource, so it is dropped first.
struct WasiBody {
    stream: Option<InputStream>,
    _body: Option<IncomingBody>,
    between_bytes_ms: u64,
}

impl BodyStream for WasiBody {
    fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
        let Some(stream) = &self.stream else {
            return Ok(None);
        };
        loop {
            match stream.blocking_read(READ_CHUNK) {
                Ok(bytes) if bytes.is_empty() => continue,
                Ok(bytes) => return Ok(Some(bytes)),
                Err(StreamError::Closed) => {
                    self.stream = None;
                    return Ok(None);
                }
                Err(e) => {
                    self.stream = None;
                    return Err(match stream_error("reading the response", e) {
                        TransportError::Timeout(_) => TransportError::Timeout(format!(
                            "no data for {} ms while reading the response (between-bytes timeout)",
                            self.between_bytes_ms
                        )),
                        other => other,
                    });
                }
            }
        }
    }
}
