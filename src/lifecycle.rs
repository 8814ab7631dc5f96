//! Stopping gracefully: what the listeners and connections watch.
//!
//! A sidecar is stopped by its supervisor (SIGTERM from Kubernetes, systemd
//! or `docker stop`) or by Ctrl-C, and must not drop what agents are in the
//! middle of. [`Lifecycle`] is shared by the proxy and the admin API; once
//! [`Lifecycle::stop`] is called:
//!
//! - the accept loops return and drop their listeners, so no new connection
//!   is accepted;
//! - every connection served through [`Lifecycle::serve`] is asked to shut
//!   down gracefully: HTTP/1.1 answers the request it is reading or serving,
//!   then closes (an idle keep-alive connection closes at once), HTTP/2
//!   sends GOAWAY and finishes the streams it already has;
//! - [`Lifecycle::drained`] resolves once no tracked connection is left.
//!
//! Requests waiting on a hold are answered separately, by waking their
//! waiters ([`crate::holds::HoldWaiters::stop_waiting`]); the stop itself is
//! run by [`crate::server::Running::shutdown`].
//!
//! Blind tunnels (passthrough hosts) are not tracked: leash sees no request
//! boundaries in them, so it cannot tell a request in flight from an idle
//! keep-alive, and waiting for them would make every stop last the whole
//! grace period. They are cut when the process exits.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::watch;

/// How long a stop waits for requests in flight (forwards, releases) to
/// finish before leash exits anyway.
///
/// 8 s: `docker stop` sends SIGKILL 10 s after SIGTERM (and Kubernetes,
/// by default, 30 s after), and leash still needs a moment after the
/// grace period to write its `stopped` entry, sign a checkpoint and flush
/// the database. A payment API answers well within this (Stripe's p99 is
/// around a second or two); a forward still running after it is cut, and
/// is in the audit chain as decided without an outcome — a held request's
/// release found `releasing` at the next start becomes `outcome_unknown`
/// (SPEC §6).
pub const GRACE: Duration = Duration::from_secs(8);

/// Whether leash is stopping, and how many connections it still serves.
#[derive(Debug)]
pub struct Lifecycle {
    stopping: watch::Sender<bool>,
    active: watch::Sender<usize>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self {
            stopping: watch::Sender::new(false),
            active: watch::Sender::new(0),
        }
    }
}

/// One connection (or tunnel being set up) a stop waits for; dropping it
/// says it is done.
#[derive(Debug)]
pub struct Tracked {
    active: watch::Sender<usize>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.active.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Lifecycle {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the stop: accept loops return, connections shut down
    /// gracefully. Calling it again changes nothing.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Whether [`Lifecycle::stop`] was called.
    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Resolves once leash is stopping (at once if it already is).
    pub async fn stopping(&self) {
        let mut receiver = self.stopping.subscribe();
        // The sender lives in `self`, so this cannot fail while we wait.
        let _ = receiver.wait_for(|stopping| *stopping).await;
    }

    /// Counts one connection until the returned guard is dropped.
    pub fn track(&self) -> Tracked {
        self.active.send_modify(|n| *n += 1);
        Tracked {
            active: self.active.clone(),
        }
    }

    /// How many tracked connections are open.
    pub fn active(&self) -> usize {
        *self.active.borrow()
    }

    /// Resolves once no tracked connection is open.
    pub async fn drained(&self) {
        let mut receiver = self.active.subscribe();
        let _ = receiver.wait_for(|n| *n == 0).await;
    }

    /// Serves `connection` to its end, tracked; when leash starts stopping,
    /// `graceful` is called on it once (hyper's `graceful_shutdown`) and the
    /// connection is served on until it has finished what it had.
    pub async fn serve<C: Future>(
        &self,
        connection: C,
        graceful: impl FnOnce(Pin<&mut C>),
    ) -> C::Output {
        let _tracked = self.track();
        let mut connection = std::pin::pin!(connection);
        tokio::select! {
            biased;
            output = connection.as_mut() => return output,
            () = self.stopping() => {}
        }
        graceful(connection.as_mut());
        connection.await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_stop_asks_each_connection_once_and_drains_when_they_end() {
        let lifecycle = Arc::new(Lifecycle::new());
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let served = {
            let lifecycle = Arc::clone(&lifecycle);
            let asked = Arc::clone(&asked);
            tokio::spawn(async move {
                lifecycle
                    .serve(done_rx, |_| {
                        asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    })
                    .await
            })
        };
        tokio::task::yield_now().await;
        assert_eq!(lifecycle.active(), 1);
        lifecycle.stop();
        lifecycle.stop();
        assert!(lifecycle.is_stopping());
        // Still serving: the connection has not finished.
        let early = tokio::time::timeout(Duration::from_millis(50), lifecycle.drained()).await;
        assert!(early.is_err());
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
        done_tx.send(()).unwrap();
        served.await.unwrap().unwrap();
        tokio::time::timeout(Duration::from_secs(5), lifecycle.drained())
            .await
            .unwrap();
        assert_eq!(lifecycle.active(), 0);
    }

    #[tokio::test]
    async fn a_connection_served_after_the_stop_is_asked_at_once() {
        let lifecycle = Lifecycle::new();
        lifecycle.stop();
        lifecycle.stopping().await;
        let mut asked = false;
        let output = lifecycle.serve(async { 7 }, |_| asked = true).await;
        // `biased`: a connection that is already done is not asked.
        assert_eq!(output, 7);
        assert!(!asked);
        let mut asked = false;
        let pending = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            8
        };
        assert_eq!(lifecycle.serve(pending, |_| asked = true).await, 8);
        assert!(asked);
    }
}
