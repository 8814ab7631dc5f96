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

/// A ClientHello larger than this is not one leash will read. Real clients
/// send a few hundred bytes to a few KiB (a post-quantum key share is about
/// 1.2 KiB); rustls itself caps a handshake message at 64 KiB.
pub const MAX_CLIENT_HELLO: usize = 64 * 1024;

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// A complete ClientHello, read but not consumed.
pub struct ClientHelloPeek {
    /// The bytes read; they must be replayed to whoever handles the tunnel.
    pub bytes: Vec<u8>,
    /// The SNI host name (lower case), if the client sent one.
    pub server_name: Option<String>,
}

/// Why a tunnel's first flight is not a ClientHello leash can act on. Each
/// of these is refused: a tunnel leash cannot see into must not carry a
/// vendor's traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAHello {
    /// Nothing, or not a whole ClientHello, within the wait.
    Silent,
    /// The client closed before a whole ClientHello arrived.
    Closed,
    /// The first byte is not a TLS handshake record.
    NotTls,
    /// TLS records that rustls cannot read as a ClientHello.
    Unparseable,
    /// More than [`MAX_CLIENT_HELLO`] bytes without a complete ClientHello.
    TooLarge,
}

impl NotAHello {
    /// Whether the client spoke TLS (so a TLS alert is what it understands).
    pub fn spoke_tls(self) -> bool {
        matches!(self, NotAHello::Unparseable | NotAHello::TooLarge)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NotAHello::Silent => "no ClientHello within limits.header_read_timeout",
            NotAHello::Closed => "closed before a complete ClientHello",
            NotAHello::NotTls => "the first bytes are not TLS",
            NotAHello::Unparseable => "a ClientHello leash cannot parse",
            NotAHello::TooLarge => "a ClientHello larger than 64 KiB",
        }
    }
}

/// Reads from `io` until rustls has a complete ClientHello, within `wait`
/// in all (not per read: a client that trickles a byte at a time gets no
/// more time than one that sends nothing).
///
/// Every tunnel no adapter claims by name is read this way before a single
/// byte is relayed: its SNI decides whether leash intercepts, tunnels or
/// refuses it, and without a readable SNI it is refused.
pub async fn peek<S: AsyncRead + Unpin>(
    io: &mut S,
    wait: std::time::Duration,
) -> io::Result<Result<ClientHelloPeek, NotAHello>> {
    match tokio::time::timeout(wait, read_hello(io)).await {
        Ok(result) => result,
        Err(_) => Ok(Err(NotAHello::Silent)),
    }
}

async fn read_hello<S: AsyncRead + Unpin>(
    io: &mut S,
) -> io::Result<Result<ClientHelloPeek, NotAHello>> {
    let mut acceptor = rustls::server::Acceptor::default();
    let mut bytes = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Ok(Err(NotAHello::Closed));
        }
        let new = chunk.get(..n).unwrap_or_default();
        if bytes.is_empty() && new.first() != Some(&TLS_HANDSHAKE) {
            return Ok(Err(NotAHello::NotTls));
        }
        bytes.extend_from_slice(new);
        if bytes.len() > MAX_CLIENT_HELLO {
            return Ok(Err(NotAHello::TooLarge));
        }
        // rustls grows its buffer past one record only once it knows it is
        // joining a handshake message that spans records, which it learns in
        // `accept`: so feed it record-sized reads and ask after each one.
        let mut reader = new;
        while !reader.is_empty() {
            if acceptor.read_tls(&mut reader).is_err() {
                return Ok(Err(NotAHello::Unparseable));
            }
            match acceptor.accept() {
                Ok(Some(accepted)) => {
                    let server_name = accepted
                        .client_hello()
                        .server_name()
                        .map(|s| s.to_ascii_lowercase());
                    return Ok(Ok(ClientHelloPeek { bytes, server_name }));
                }
                Ok(None) => {}
                Err(_) => return Ok(Err(NotAHello::Unparseable)),
            }
        }
    }
}

/// A fatal TLS `access_denied` alert, sent in the clear before any
/// ServerHello: what a TLS client understands as "refused" (its library
/// reports a handshake failure instead of hanging or retrying blind).
pub const ACCESS_DENIED_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x31];

/// What a refused tunnel answers after the 200 (the peek needed the
/// client's first flight, which follows the 200): a TLS alert to a TLS
/// client, a plain 403 to anything that spoke first in clear text, nothing
/// to a silent one. Then the tunnel is closed.
pub async fn refuse_inside<S: AsyncWrite + Unpin>(io: &mut S, why: NotAHelloOr<'_>) {
    let bytes: Vec<u8> = match why {
        NotAHelloOr::Tls(_) => ACCESS_DENIED_ALERT.to_vec(),
        NotAHelloOr::NotAHello(n) if n.spoke_tls() => ACCESS_DENIED_ALERT.to_vec(),
        NotAHelloOr::NotAHello(NotAHello::NotTls) => {
            let body = "leash refused this tunnel: it reads the TLS ClientHello of every tunnel to a host no adapter claims, and this one did not start with TLS\n";
            format!(
                "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        }
        NotAHelloOr::NotAHello(_) => Vec::new(),
    };
    if !bytes.is_empty() {
        let _ = io.write_all(&bytes).await;
    }
    let _ = io.shutdown().await;
}

/// Why a tunnel is refused after its first flight was read.
#[derive(Debug, Clone, Copy)]
pub enum NotAHelloOr<'a> {
    /// The first flight was no usable ClientHello.
    NotAHello(NotAHello),
    /// A complete ClientHello whose SNI (or its absence) is refused; the
    /// text says why.
    Tls(&'a str),
}

/// Copies bytes both ways between the agent and `server` until either
/// closes or neither side sends anything for `idle`, after first sending
/// `prefix` (bytes already read from the agent).
pub async fn splice<S>(
    agent: S,
    mut server: TcpStream,
    prefix: &[u8],
    idle: std::time::Duration,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if !prefix.is_empty() {
        server.write_all(prefix).await?;
    }
    let (mut agent, activity) = crate::idle::Watched::new(agent);
    let copy = tokio::io::copy_bidirectional(&mut agent, &mut server);
    match activity.until_idle(copy, idle).await {
        Some(result) => result.map(|_| ()),
        None => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "tunnel idle for passthrough.idle_timeout",
        )),
    }
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
    async fn non_tls_bytes_are_refused_not_a_hang() {
        let sent: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut input = sent;
        let peeked = peek(&mut input, std::time::Duration::from_secs(5))
            .await
            .unwrap();
        assert!(matches!(peeked, Err(NotAHello::NotTls)));
    }

    #[tokio::test]
    async fn a_silent_client_is_refused_after_the_wait() {
        let (mut client_side, _server_side) = tokio::io::duplex(64);
        let peeked = peek(&mut client_side, std::time::Duration::from_millis(50))
            .await
            .unwrap();
        assert!(matches!(peeked, Err(NotAHello::Silent)));
    }

    #[tokio::test]
    async fn a_handshake_record_that_is_not_a_hello_is_unparseable() {
        // A handshake record holding a ServerHello-typed message.
        let sent: &[u8] = &[0x16, 0x03, 0x01, 0x00, 0x05, 0x02, 0x00, 0x00, 0x01, 0x00];
        let mut input = sent;
        let peeked = peek(&mut input, std::time::Duration::from_secs(5))
            .await
            .unwrap();
        assert!(
            matches!(peeked, Err(NotAHello::Unparseable)),
            "{:?}",
            peeked.err()
        );
    }

    #[tokio::test]
    async fn an_endless_hello_is_too_large() {
        // One record header announcing 16 KiB, repeated: never a whole hello.
        let mut sent = Vec::new();
        while sent.len() <= MAX_CLIENT_HELLO + 8 {
            sent.extend_from_slice(&[0x16, 0x03, 0x01, 0x40, 0x00]);
            sent.extend_from_slice(&[0x01, 0x00, 0xff, 0xff]);
            sent.resize(sent.len() + 0x4000 - 4, 0);
        }
        let mut input = sent.as_slice();
        let peeked = peek(&mut input, std::time::Duration::from_secs(5))
            .await
            .unwrap();
        assert!(
            matches!(
                peeked,
                Err(NotAHello::TooLarge) | Err(NotAHello::Unparseable)
            ),
            "{:?}",
            peeked.err()
        );
    }

    #[tokio::test]
    async fn a_20_kib_hello_is_read_whole() {
        crate::install_crypto_provider();
        let mut config = rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let mut alpn: Vec<Vec<u8>> = (0..100)
            .map(|i| format!("x-{i:03}-{}", "p".repeat(190)).into_bytes())
            .collect();
        alpn.push(b"http/1.1".to_vec());
        config.alpn_protocols = alpn;
        let mut conn = rustls::ClientConnection::new(
            std::sync::Arc::new(config),
            "api.example.com".try_into().unwrap(),
        )
        .unwrap();
        let mut hello = Vec::new();
        while conn.wants_write() {
            conn.write_tls(&mut hello).unwrap();
        }
        assert!(hello.len() > 16 * 1024);
        let mut input = hello.as_slice();
        let peeked = peek(&mut input, std::time::Duration::from_secs(5))
            .await
            .unwrap();
        match peeked {
            Ok(h) => {
                assert_eq!(h.server_name.as_deref(), Some("api.example.com"));
                assert_eq!(h.bytes, hello);
            }
            Err(e) => panic!("{e:?}"),
        }
    }
}
