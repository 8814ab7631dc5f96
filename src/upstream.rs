//! The leg from leash to the vendor.
//!
//! Intercepted requests leave over TLS to the host the agent asked for (or its
//! `upstream.overrides` address), verified against the system roots plus
//! `upstream.extra_ca`. Connections are pooled and speak HTTP/2 when the
//! vendor offers it by ALPN. The certificate is always checked against the
//! vendor's *name*, even when an override sends the bytes elsewhere: an
//! override changes where leash connects, never whom it trusts.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::config::{HostPort, UpstreamConfig};

/// Why the upstream client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamSetupError {
    #[error("{path}: {reason}")]
    ExtraCa { path: PathBuf, reason: String },
    #[error("no trusted roots: the system store is empty and no upstream.extra_ca is set")]
    NoRoots,
}

/// Why a forwarded request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No answer in time. Bytes may have been sent (the time covers the
    /// connect too, so this is never taken to mean "nothing left").
    #[error("upstream did not answer within {0:?}")]
    Timeout(Duration),
    /// Connecting failed (DNS, TCP or TLS) before a byte of the request
    /// was written: the vendor cannot have acted on it.
    #[error("{0}")]
    NotSent(String),
    /// The request may have been (partly) sent: the money may have moved.
    #[error("{0}")]
    Failed(String),
}

impl UpstreamError {
    /// Whether it is certain that no byte of the request reached the vendor.
    pub fn nothing_sent(&self) -> bool {
        matches!(self, UpstreamError::NotSent(_))
    }
}

/// The pooled TLS client used for every intercepted request.
#[derive(Clone)]
pub struct UpstreamClient {
    client: Client<UpstreamConnector, Full<Bytes>>,
    timeout: Duration,
}

impl UpstreamClient {
    pub fn new(config: &UpstreamConfig) -> Result<Self, UpstreamSetupError> {
        let roots = trusted_roots(config.extra_ca.as_deref())?;
        let mut tls = ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let connector = UpstreamConnector {
            tls: TlsConnector::from(Arc::new(tls)),
            overrides: Arc::new(config.overrides.clone()),
            connect_timeout: config.timeout,
        };
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        Ok(Self {
            client,
            timeout: config.timeout,
        })
    }

    /// Sends `request` (absolute `https://` URI) and waits for the response
    /// head; the body then streams on its own.
    pub async fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        match tokio::time::timeout(self.timeout, self.client.request(request)).await {
            Err(_) => Err(UpstreamError::Timeout(self.timeout)),
            // hyper-util marks errors of the connector (which here includes
            // leash's TLS handshake) as connect errors: the request was
            // never written. A pooled connection that fails later is not.
            Ok(Err(e)) if e.is_connect() => Err(UpstreamError::NotSent(describe_client_error(&e))),
            Ok(Err(e)) => Err(UpstreamError::Failed(describe_client_error(&e))),
            Ok(Ok(response)) => Ok(response),
        }
    }
}

/// The system roots plus the optional extra CA file.
fn trusted_roots(extra_ca: Option<&Path>) -> Result<RootCertStore, UpstreamSetupError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::warn!(%error, "could not read part of the system certificate store");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(added, ignored, "system roots loaded for upstream TLS");
    if let Some(path) = extra_ca {
        let ca_err = |reason: String| UpstreamSetupError::ExtraCa {
            path: path.to_path_buf(),
            reason,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| ca_err(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| ca_err(e.to_string()))?;
        if certs.is_empty() {
            return Err(ca_err("no certificate in the file".to_string()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| ca_err(e.to_string()))?;
        }
    }
    if roots.is_empty() {
        return Err(UpstreamSetupError::NoRoots);
    }
    Ok(roots)
}

/// hyper's errors nest the useful cause (a certificate problem, a refused
/// connection) a few levels down; show the whole chain.
fn describe_client_error(error: &hyper_util::client::legacy::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Connects to the vendor (or its override address) and completes TLS.
#[derive(Clone)]
struct UpstreamConnector {
    tls: TlsConnector,
    overrides: Arc<BTreeMap<String, HostPort>>,
    connect_timeout: Duration,
}

impl tower_service::Service<Uri> for UpstreamConnector {
    type Response = UpstreamStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<UpstreamStream>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.connect(uri).await })
    }
}

impl UpstreamConnector {
    async fn connect(&self, uri: Uri) -> io::Result<UpstreamStream> {
        let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_string());
        if uri.scheme_str() != Some("https") {
            return Err(invalid("upstream URI is not https"));
        }
        let host = uri
            .host()
            .ok_or_else(|| invalid("upstream URI has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(443);
        let (dial_host, dial_port) = match self.overrides.get(&host) {
            Some(target) => (target.host.clone(), target.port),
            None => (host.clone(), port),
        };
        let server_name = ServerName::try_from(host.clone())
            .map_err(|_| invalid("upstream host is not a valid TLS server name"))?;
        let tcp = tokio::time::timeout(
            self.connect_timeout,
            TcpStream::connect((dial_host.as_str(), dial_port)),
        )
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        tcp.set_nodelay(true)?;
        let tls = tokio::time::timeout(self.connect_timeout, self.tls.connect(server_name, tcp))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        Ok(UpstreamStream {
            io: TokioIo::new(tls),
            h2,
        })
    }
}

/// A TLS connection to a vendor that tells hyper whether ALPN chose HTTP/2.
struct UpstreamStream {
    io: TokioIo<TlsStream<TcpStream>>,
    h2: bool,
}

impl Connection for UpstreamStream {
    fn connected(&self) -> Connected {
        let connected = Connected::new();
        if self.h2 {
            connected.negotiated_h2()
        } else {
            connected
        }
    }
}

impl hyper::rt::Read for UpstreamStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for UpstreamStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}
