//! Byte-for-byte tunnels, and reading the SNI of a ClientHello without
//! consuming it.
//!
//! A CONNECT to a bare IP address gives leash no host name; the name the
//! agent means is in the TLS ClientHello's SNI. leash reads the ClientHello
//! (rustls parses it; nothing is hand-parsed), decides from the SNI whether to
//! intercept, and then replays the bytes it read to whichever side handles the
//! connection — its own TLS acceptor or the real server.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// A ClientHello larger than this is not a ClientHello leash will read.
const MAX_CLIENT_HELLO: usize = 16 * 1024;

/// What the first bytes of a tunnel said.
pub struct ClientHelloPeek {
    /// The bytes read so far; they must be replayed.
    pub bytes: Vec<u8>,
    /// The SNI host name, if the client sent one.
    pub server_name: Option<String>,
}

/// Reads from `io` until rustls has a complete ClientHello.
///
/// Returns `Ok(None)` when the bytes are not TLS at all (the caller then
/// treats the connection as opaque).
pub async fn peek_client_hello<S: AsyncRead + Unpin>(io: &mut S) -> io::Result<ClientHelloPeek> {
    let mut acceptor = rustls::server::Acceptor::default();
    let mut bytes = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before a complete ClientHello",
            ));
        }
        let new = chunk.get(..n).unwrap_or_default();
        bytes.extend_from_slice(new);
        let mut reader = new;
        acceptor.read_tls(&mut reader)?;
        match acceptor.accept() {
            Ok(Some(accepted)) => {
                let server_name = accepted
                    .client_hello()
                    .server_name()
                    .map(|s| s.to_ascii_lowercase());
                return Ok(ClientHelloPeek { bytes, server_name });
            }
            Ok(None) if bytes.len() < MAX_CLIENT_HELLO => continue,
            Ok(None) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "ClientHello too large",
                ))
            }
            Err((error, _alert)) => {
                return Err(io::Error::new(io::ErrorKind::InvalidData, error));
            }
        }
    }
}

/// Copies bytes both ways between the agent and `server` until either closes,
/// after first sending `prefix` (bytes already read from the agent).
pub async fn splice<S>(mut agent: S, mut server: TcpStream, prefix: &[u8]) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if !prefix.is_empty() {
        server.write_all(prefix).await?;
    }
    tokio::io::copy_bidirectional(&mut agent, &mut server).await?;
    Ok(())
}

/// An I/O stream that first yields `prefix`, then reads from `inner`.
pub struct Rewind<S> {
    prefix: Vec<u8>,
    offset: usize,
    inner: S,
}

impl<S> Rewind<S> {
    pub fn new(prefix: Vec<u8>, inner: S) -> Self {
        Self {
            prefix,
            offset: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(rest) = this.prefix.get(this.offset..).filter(|r| !r.is_empty()) {
            let n = rest.len().min(buf.remaining());
            buf.put_slice(rest.get(..n).unwrap_or_default());
            this.offset += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rewind_replays_prefix_then_inner() {
        let inner: &[u8] = b" world";
        let mut io = Rewind::new(b"hello".to_vec(), inner);
        let mut out = String::new();
        io.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "hello world");
    }

    #[tokio::test]
    async fn non_tls_bytes_are_an_error_not_a_hang() {
        let mut input: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(peek_client_hello(&mut input).await.is_err());
    }
}
