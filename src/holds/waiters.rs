//! Waking the agent's connection when its hold is decided.
//!
//! An agent's request waits up to `holds.wait` for a decision (SPEC §6).
//! Waiting must cost next to nothing — hundreds of held connections are a
//! normal afternoon for a busy agent fleet — so there is no task and no
//! polling per hold: each hold that someone is waiting on has one
//! [`tokio::sync::watch`] channel, the waiting connections hold receivers,
//! and whoever decides the hold sends the new state into it. The channel
//! exists only while someone waits: the last subscription to go (answered,
//! timed out, or the agent hung up) removes it.
//!
//! This is a doorbell, not the record. Notifications for a hold nobody is
//! waiting on are dropped, and a notification can race a subscription; so
//! a waiter subscribes first, then reads the hold from the store, and only
//! then waits:
//!
//! ```no_run
//! # async fn f(waiters: leash::holds::HoldWaiters, store: &leash::holds::HoldStore, id: &str) -> Result<(), leash::holds::HoldError> {
//! let mut subscription = waiters.subscribe(id);
//! let now = chrono::Utc::now();
//! let state = match store.get(id)? {
//!     Some(hold) if hold.state_at(now) == leash::holds::HoldState::Pending => subscription
//!         .wait_for_decision(std::time::Duration::from_secs(25))
//!         .await
//!         .unwrap_or(leash::holds::HoldState::Pending),
//!     Some(hold) => hold.state_at(now),
//!     None => return Ok(()),
//! };
//! # let _ = state; Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::HoldState;

type Channels = Arc<Mutex<HashMap<String, watch::Sender<HoldState>>>>;

/// The doorbells of holds someone is waiting on. Cheap to clone (shared).
#[derive(Clone)]
pub struct HoldWaiters {
    channels: Channels,
    /// True once leash is stopping: every wait ends at once, as if
    /// `holds.wait` had run out ([`HoldWaiters::stop_waiting`]).
    stopped: Arc<watch::Sender<bool>>,
}

impl Default for HoldWaiters {
    fn default() -> Self {
        Self {
            channels: Channels::default(),
            stopped: Arc::new(watch::Sender::new(false)),
        }
    }
}

impl std::fmt::Debug for HoldWaiters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HoldWaiters")
            .field("holds_waited_on", &self.waited_on())
            .finish()
    }
}

impl HoldWaiters {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts waiting on hold `id`. The subscription starts at `pending`;
    /// read the hold from the store after subscribing (see the module
    /// documentation).
    pub fn subscribe(&self, id: &str) -> HoldSubscription {
        let mut channels = lock(&self.channels);
        let receiver = match channels.get(id) {
            Some(sender) => sender.subscribe(),
            None => {
                let (sender, receiver) = watch::channel(HoldState::Pending);
                channels.insert(id.to_string(), sender);
                receiver
            }
        };
        HoldSubscription {
            id: id.to_string(),
            receiver: Some(receiver),
            channels: Arc::clone(&self.channels),
            stopped: self.stopped.subscribe(),
        }
    }

    /// Ends every wait, now and from now on, as if `holds.wait` had run
    /// out: leash is stopping, and each waiting agent gets the hold answer
    /// (`leash_held`, with the hold's id to retry against) instead of a
    /// dropped connection. The holds themselves stay open.
    pub fn stop_waiting(&self) {
        self.stopped.send_replace(true);
    }

    /// Tells everyone waiting on hold `id` that it is now `state`; returns
    /// how many were waiting. Call it after the transition's audit entries
    /// are appended: a woken connection may forward at once.
    pub fn notify(&self, id: &str, state: HoldState) -> usize {
        let channels = lock(&self.channels);
        match channels.get(id) {
            Some(sender) => {
                sender.send_replace(state);
                sender.receiver_count()
            }
            None => 0,
        }
    }

    /// How many holds have someone waiting (for metrics and tests).
    pub fn waited_on(&self) -> usize {
        lock(&self.channels).len()
    }
}

fn lock(
    channels: &Mutex<HashMap<String, watch::Sender<HoldState>>>,
) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<HoldState>>> {
    // The map only ever holds whole entries; a panic elsewhere cannot
    // leave it half-updated.
    channels.lock().unwrap_or_else(|p| p.into_inner())
}

/// One connection waiting on one hold. Dropping it stops waiting, and the
/// last one dropped for a hold frees that hold's channel.
pub struct HoldSubscription {
    id: String,
    /// Always `Some` until `drop`, which needs to release it before
    /// counting the receivers left.
    receiver: Option<watch::Receiver<HoldState>>,
    channels: Channels,
    stopped: watch::Receiver<bool>,
}

impl std::fmt::Debug for HoldSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HoldSubscription")
            .field("id", &self.id)
            .field("state", &self.state())
            .finish()
    }
}

impl HoldSubscription {
    /// The hold this waits on.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The last state notified (`pending` if none yet).
    pub fn state(&self) -> HoldState {
        self.receiver
            .as_ref()
            .map_or(HoldState::Pending, |r| *r.borrow())
    }

    /// Waits until the hold is notified as anything but `pending`, for at
    /// most `timeout`: the new state, or `None` if time ran out first or
    /// leash is stopping ([`HoldWaiters::stop_waiting`]).
    pub async fn wait_for_decision(&mut self, timeout: Duration) -> Option<HoldState> {
        let receiver = self.receiver.as_mut()?;
        let decided = receiver.wait_for(|state| *state != HoldState::Pending);
        let stopped = &mut self.stopped;
        let stopping = async move {
            if stopped.wait_for(|stopped| *stopped).await.is_err() {
                // The waiters were dropped without a stop: nothing will
                // stop this wait but its own end.
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            // A decision already made wins over a stop.
            biased;
            decided = tokio::time::timeout(timeout, decided) => match decided {
                Ok(Ok(state)) => Some(*state),
                // The sender lives in the map while any receiver does, so
                // it cannot close under us; if it ever did, there is
                // nothing to wait for.
                Ok(Err(_)) | Err(_) => None,
            },
            () = stopping => None,
        }
    }
}

impl Drop for HoldSubscription {
    fn drop(&mut self) {
        let mut channels = lock(&self.channels);
        drop(self.receiver.take());
        if channels
            .get(&self.id)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            channels.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_every_waiter_and_cleans_up() {
        let waiters = HoldWaiters::new();
        let mut a = waiters.subscribe("hold_1");
        let mut b = waiters.subscribe("hold_1");
        let other = waiters.subscribe("hold_2");
        assert_eq!(waiters.waited_on(), 2);

        let wait_a = tokio::spawn(async move {
            let state = a.wait_for_decision(Duration::from_secs(10)).await;
            (state, a)
        });
        tokio::task::yield_now().await;
        assert_eq!(waiters.notify("hold_1", HoldState::Approved), 2);
        assert_eq!(
            b.wait_for_decision(Duration::from_secs(10)).await,
            Some(HoldState::Approved)
        );
        let (state, a) = wait_a.await.unwrap();
        assert_eq!(state, Some(HoldState::Approved));
        // A decision already notified is seen at once by a later wait.
        let mut b = b;
        assert_eq!(
            b.wait_for_decision(Duration::from_millis(1)).await,
            Some(HoldState::Approved)
        );

        drop(a);
        assert_eq!(waiters.waited_on(), 2);
        drop(b);
        assert_eq!(waiters.waited_on(), 1);
        drop(other);
        assert_eq!(waiters.waited_on(), 0);
        // Nobody waiting: the notification goes nowhere and leaves nothing.
        assert_eq!(waiters.notify("hold_1", HoldState::Rejected), 0);
        assert_eq!(waiters.waited_on(), 0);
    }

    #[tokio::test]
    async fn stop_waiting_ends_every_wait_now_and_later() {
        let waiters = HoldWaiters::new();
        let mut waiting = waiters.subscribe("hold_1");
        let wait = tokio::spawn(async move {
            let started = std::time::Instant::now();
            let state = waiting.wait_for_decision(Duration::from_secs(60)).await;
            (state, started.elapsed())
        });
        tokio::task::yield_now().await;
        waiters.stop_waiting();
        let (state, took) = wait.await.unwrap();
        assert_eq!(state, None);
        assert!(took < Duration::from_secs(10), "{took:?}");
        // A wait that starts after the stop ends at once.
        let mut later = waiters.subscribe("hold_2");
        assert_eq!(later.wait_for_decision(Duration::from_secs(60)).await, None);
        // A decision already made still wins over the stop.
        let mut decided = waiters.subscribe("hold_3");
        waiters.notify("hold_3", HoldState::Approved);
        assert_eq!(
            decided.wait_for_decision(Duration::from_secs(60)).await,
            Some(HoldState::Approved)
        );
    }

    #[tokio::test]
    async fn times_out_while_pending() {
        let waiters = HoldWaiters::new();
        let mut s = waiters.subscribe("hold_1");
        waiters.notify("hold_1", HoldState::Pending);
        assert_eq!(s.wait_for_decision(Duration::from_millis(50)).await, None);
        assert_eq!(s.state(), HoldState::Pending);
        drop(s);
        assert_eq!(waiters.waited_on(), 0);
    }
}
