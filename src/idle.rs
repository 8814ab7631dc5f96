//! Noticing connections where nothing moves.
//!
//! A blind tunnel and an admin connection both hold a file descriptor for as
//! long as the peer keeps them open; a peer that opens many and sends
//! nothing would exhaust descriptors and stop agent traffic. [`Watched`]
//! notes when bytes last moved through a stream, and
//! [`Activity::until_idle`] ends a future once nothing moved for a while.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// When bytes last moved through a tunnel, shared between the copying
/// stream and the idle check.
#[derive(Clone)]
pub struct Activity {
    started: std::time::Instant,
    /// Milliseconds since `started` of the last read or write.
    last: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Activity {
    fn new() -> Self {
        Self {
            started: std::time::Instant::now(),
            last: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0)),
        }
    }

    fn touch(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(now, std::sync::atomic::Ordering::Relaxed);
    }

    fn idle_for(&self) -> std::time::Duration {
        let last = self.last.load(std::sync::atomic::Ordering::Relaxed);
        self.started
            .elapsed()
            .saturating_sub(std::time::Duration::from_millis(last))
    }
}

/// The agent's side of a tunnel, noting every byte that moves through it
/// (both directions pass here: reads go upstream, writes come back).
pub struct Watched<S> {
    inner: S,
    activity: Activity,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S> Watched<S> {
    /// Wraps `inner`; the [`Activity`] is its clock.
    pub fn new(inner: S) -> (Self, Activity) {
        let activity = Activity::new();
        (
            Self {
                inner,
                activity: activity.clone(),
            },
            activity,
        )
    }
}

impl Activity {
    /// Runs `work` until it finishes (`Some`) or nothing moved through the
    /// watched stream for `idle` (`None`; `work` is dropped, which closes
    /// whatever it owned).
    pub async fn until_idle<F: std::future::Future>(
        &self,
        work: F,
        idle: std::time::Duration,
    ) -> Option<F::Output> {
        tokio::pin!(work);
        let check = (idle / 4).max(std::time::Duration::from_millis(50));
        loop {
            tokio::select! {
                output = &mut work => return Some(output),
                _ = tokio::time::sleep(check) => {
                    if self.idle_for() >= idle {
                        return None;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_silent_stream_is_idle_and_a_busy_one_is_not() {
        let (client, server) = tokio::io::duplex(64);
        let (mut watched, activity) = Watched::new(server);
        let quiet = activity
            .until_idle(
                std::future::pending::<()>(),
                std::time::Duration::from_millis(100),
            )
            .await;
        assert!(quiet.is_none());
        drop(client);
        let _ = watched.write_all(b"x").await;
    }
}
