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

/// What an agent sent first inside a tunnel.
pub enum Peeked {
    /// A TLS ClientHello.
    Hello(ClientHelloPeek),
    /// Bytes that are not TLS (to be replayed as they are).
    NotTls(Vec<u8>),
    /// Nothing within the wait: a protocol where the server speaks first.
    Silent,
}

/// Reads from `io` until rustls has a complete ClientHello, or the bytes
/// turn out not to be TLS, or the agent stays silent for `first_byte_wait`.
///
/// Every tunnel is peeked, not only IP-literal ones: a CONNECT to some
/// other name (an alias, a CNAME the agent controls) whose SNI says
/// `api.stripe.com` is a Stripe connection, and must be read like one.
pub async fn peek<S: AsyncRead + Unpin>(
    io: &mut S,
    first_byte_wait: std::time::Duration,
) -> io::Result<Peeked> {
    let mut acceptor = rustls::server::Acceptor::default();
    let mut bytes = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = if bytes.is_empty() {
            match tokio::time::timeout(first_byte_wait, io.read(&mut chunk)).await {
                Ok(read) => read?,
                Err(_) => return Ok(Peeked::Silent),
            }
        } else {
            io.read(&mut chunk).await?
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before a complete ClientHello",
            ));
        }
        let new = chunk.get(..n).unwrap_or_default();
        bytes.extend_from_slice(new);
        let mut reader = new;
        if acceptor.read_tls(&mut reader).is_err() {
            return Ok(Peeked::NotTls(bytes));
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => {
                let server_name = accepted
                    .client_hello()
                    .server_name()
                    .map(|s| s.to_ascii_lowercase());
                return Ok(Peeked::Hello(ClientHelloPeek { bytes, server_name }));
            }
            Ok(None) if bytes.len() < MAX_CLIENT_HELLO => continue,
            Ok(None) => return Ok(Peeked::NotTls(bytes)),
            Err(_) => return Ok(Peeked::NotTls(bytes)),
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
    async fn non_tls_bytes_are_replayed_not_a_hang() {
        let sent: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut input = sent;
        match peek(&mut input, std::time::Duration::from_secs(5))
            .await
            .unwrap()
        {
            Peeked::NotTls(bytes) => assert_eq!(bytes, sent),
            _ => panic!("not TLS"),
        }
    }

    #[tokio::test]
    async fn a_silent_client_is_a_server_first_protocol() {
        let (mut client_side, _server_side) = tokio::io::duplex(64);
        let peeked = peek(&mut client_side, std::time::Duration::from_millis(50))
            .await
            .unwrap();
        assert!(matches!(peeked, Peeked::Silent));
    }
}
