//! The notification sender against real HTTP receivers on loopback: what
//! arrives, how often, and what the caller is told.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use leash::audit::Checkpoint;
use leash::config::NotifyTarget;
use leash::notify::send::{
    AdminUrl, Callbacks, DeliveryOutcome, EventType, HoldEvent, Notifier, NotifyError, RetryPolicy,
    TargetKind, TriggeredRule,
};
use leash::notify::slack::{self, HoldSummary};
use leash::notify::webhook::{self, WebhookHeaders, WebhookSecret};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SECRET_VAR: &str = "LEASH_WEBHOOK_SECRET";
const HOLD: &str = "hold_3f2a9c0d1e4b4f6a8b7c6d5e4f3a2b1c";

/// What a test receiver does with its n-th request (the last entry repeats).
#[derive(Clone, Copy)]
enum Reply {
    Status(u16),
    /// Answer with this status after this long.
    Slow(Duration, u16),
    /// Read the request, then never answer.
    Hang,
}

struct Seen {
    headers: HeaderMap,
    body: Bytes,
}

/// A plain-HTTP receiver on 127.0.0.1 that records every request.
struct Receiver {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    answered: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start(script: Vec<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let answered = Arc::new(AtomicUsize::new(0));
        let script = Arc::new(script);
        let (record, done) = (Arc::clone(&seen), Arc::clone(&answered));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (record, done, script) =
                    (Arc::clone(&record), Arc::clone(&done), Arc::clone(&script));
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let (record, done, script) =
                            (Arc::clone(&record), Arc::clone(&done), Arc::clone(&script));
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.unwrap().to_bytes();
                            let n = {
                                let mut seen = record.lock().unwrap();
                                seen.push(Seen {
                                    headers: parts.headers,
                                    body,
                                });
                                seen.len() - 1
                            };
                            let reply = script[n.min(script.len() - 1)];
                            let status = match reply {
                                Reply::Status(s) => s,
                                Reply::Slow(wait, s) => {
                                    tokio::time::sleep(wait).await;
                                    s
                                }
                                Reply::Hang => std::future::pending().await,
                            };
                            done.fetch_add(1, Ordering::SeqCst);
                            let mut response = Response::builder().status(status);
                            if status == 429 {
                                response = response.header("retry-after", "0");
                            }
                            if (300..400).contains(&status) {
                                response = response.header("location", "http://127.0.0.1:1/");
                            }
                            Ok::<_, Infallible>(
                                response.body(Full::new(Bytes::from_static(b"ok"))).unwrap(),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver {
            addr,
            seen,
            answered,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn headers(&self, i: usize) -> HeaderMap {
        self.seen.lock().unwrap()[i].headers.clone()
    }

    fn body(&self, i: usize) -> Bytes {
        self.seen.lock().unwrap()[i].body.clone()
    }

    fn json(&self, i: usize) -> Value {
        serde_json::from_slice(&self.body(i)).unwrap()
    }
}

fn fast(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        attempt_timeout: Duration::from_secs(5),
        jitter: true,
    }
}

fn env(name: &str) -> Option<String> {
    match name {
        SECRET_VAR => Some(SECRET.to_string()),
        "SLACK_SIGNING_SECRET" => Some("8f742231b10e8888abcd99yyyzzz85a5".to_string()),
        _ => None,
    }
}

fn webhook_target(url: String) -> NotifyTarget {
    NotifyTarget::Webhook {
        url,
        secret_env: Some(SECRET_VAR.into()),
    }
}

fn slack_target(url: String) -> NotifyTarget {
    NotifyTarget::Slack {
        url,
        signing_secret_env: Some("SLACK_SIGNING_SECRET".into()),
    }
}

fn notifier(targets: &[NotifyTarget], retry: RetryPolicy) -> Notifier {
    leash::install_crypto_provider();
    Notifier::new(targets, env, retry).unwrap()
}

fn checkpoint() -> Checkpoint {
    Checkpoint {
        seq: 41,
        hash: "07".repeat(32),
        time: "2025-06-01T12:00:00.000000Z".into(),
        key_id: "ed25519:0123456789abcdef".into(),
        public_key: "O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=".into(),
        signature: "c2lnbmF0dXJl".into(),
    }
}

fn event() -> HoldEvent {
    let base = AdminUrl::parse("http://127.0.0.1:8081").unwrap();
    HoldEvent {
        kind: EventType::HoldCreated,
        hold_id: HOLD.into(),
        agent: "growth-agent".into(),
        vendor: "stripe".into(),
        operation: "charge".into(),
        intents: json!([{
            "amount": "1800.00",
            "currency": "EUR",
            "beneficiary": "cus_NffrFeUfNV2Hib",
            // A float that should never be here: it must leave as a string.
            "fx_rate": 0.92,
        }]),
        rules: vec![TriggeredRule {
            priority: Some(20),
            text: "AMOUNT_THRESHOLD: 1,800.00 EUR >= 1,500.00 EUR".into(),
        }],
        amount_required: false,
        approvers_needed: "maya".into(),
        expires_at: "2025-06-02T12:00:00Z".into(),
        callbacks: Callbacks::new(&base, HOLD),
        checkpoint: Some(checkpoint()),
        at: "2025-06-01T12:00:01.000000Z".into(),
    }
}

fn summary() -> HoldSummary {
    HoldSummary {
        hold_id: HOLD.into(),
        agent: "growth-agent".into(),
        vendor: "stripe".into(),
        operation: "charge".into(),
        amount: "1,800.00 EUR".into(),
        beneficiary: Some("cus_NffrFeUfNV2Hib".into()),
        rules: vec!["AMOUNT_THRESHOLD: 1,800.00 EUR >= 1,500.00 EUR".into()],
        approvers_needed: "maya".into(),
        expires_at: "2025-06-02T12:00:00Z".into(),
        ..HoldSummary::default()
    }
}

fn no_floats(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_i64() || n.is_u64(),
        Value::Array(a) => a.iter().all(no_floats),
        Value::Object(m) => m.values().all(no_floats),
        _ => true,
    }
}

#[tokio::test]
async fn webhook_arrives_once_signed_with_callbacks_and_checkpoint() {
    let rx = Receiver::start(vec![Reply::Status(200)]).await;
    let n = notifier(&[webhook_target(rx.url("/leash"))], fast(5));
    let reports = n.notify_hold_created(event(), summary()).finished().await;

    assert_eq!(rx.count(), 1);
    assert_eq!(reports.len(), 1);
    assert_eq!(
        reports[0].outcome,
        DeliveryOutcome::Delivered { status: 200 }
    );
    assert_eq!(reports[0].attempts, 1);

    let headers = rx.headers(0);
    let body = rx.body(0);
    let secret = WebhookSecret::parse(SECRET).unwrap();
    let received = WebhookHeaders::from_http(&headers).unwrap();
    let now = chrono::Utc::now().timestamp();
    assert_eq!(webhook::verify(&secret, &received, &body, now, 300), Ok(()));
    assert!(received.id.starts_with("msg_"), "{}", received.id);
    assert_eq!(Some(received.id), reports[0].webhook_id.as_deref());
    assert_eq!(headers["content-type"], "application/json");

    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["type"], "hold.created");
    assert_eq!(v["hold_id"], HOLD);
    assert_eq!(
        v["callbacks"],
        json!({
            "approve": format!("http://127.0.0.1:8081/v1/holds/{HOLD}/approve"),
            "reject": format!("http://127.0.0.1:8081/v1/holds/{HOLD}/reject"),
            "hold": format!("http://127.0.0.1:8081/v1/holds/{HOLD}"),
        })
    );
    assert_eq!(v["checkpoint"]["seq"], 41);
    assert_eq!(v["checkpoint"]["hash"], "07".repeat(32));
    assert_eq!(
        serde_json::from_value::<Checkpoint>(v["checkpoint"].clone()).unwrap(),
        checkpoint()
    );
    assert_eq!(v["rules"][0]["priority"], 20);
    assert_eq!(v["intents"][0]["amount"], "1800.00");
    assert_eq!(v["intents"][0]["fx_rate"], "0.92");
    assert!(no_floats(&v), "{v}");

    assert_eq!(n.deliveries().delivered(), 1);
    assert_eq!(n.deliveries().failed(), 0);
    assert_eq!(n.deliveries().attempts(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_under_one_webhook_id() {
    let rx = Receiver::start(vec![
        Reply::Status(500),
        Reply::Status(503),
        Reply::Status(200),
    ])
    .await;
    let n = notifier(&[webhook_target(rx.url("/"))], fast(5));
    let reports = n.notify_hold_created(event(), summary()).finished().await;

    assert_eq!(rx.count(), 3);
    assert_eq!(reports[0].attempts, 3);
    assert!(reports[0].delivered());
    let secret = WebhookSecret::parse(SECRET).unwrap();
    let ids: Vec<String> = (0..3)
        .map(|i| {
            let headers = rx.headers(i);
            let h = WebhookHeaders::from_http(&headers).unwrap();
            // Every attempt is signed afresh, and each one verifies.
            let now = chrono::Utc::now().timestamp();
            assert_eq!(webhook::verify(&secret, &h, &rx.body(i), now, 300), Ok(()));
            h.id.to_string()
        })
        .collect();
    assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
    // The same bytes every time.
    assert_eq!(rx.body(0), rx.body(2));
    assert_eq!(n.deliveries().attempts(), 3);
    assert_eq!(n.deliveries().delivered(), 1);

    // A second event is a new message: a new id.
    let rx2 = Receiver::start(vec![Reply::Status(200)]).await;
    let n2 = notifier(&[webhook_target(rx2.url("/"))], fast(5));
    n2.notify_hold_created(event(), summary()).finished().await;
    assert_ne!(rx2.headers(0)["webhook-id"], ids[0].as_str());
}

#[tokio::test]
async fn too_many_requests_is_retried() {
    let rx = Receiver::start(vec![Reply::Status(429), Reply::Status(204)]).await;
    let n = notifier(&[webhook_target(rx.url("/"))], fast(5));
    let reports = n.notify_hold_created(event(), summary()).finished().await;
    assert_eq!(rx.count(), 2);
    assert_eq!(
        reports[0].outcome,
        DeliveryOutcome::Delivered { status: 204 }
    );
}

#[tokio::test]
async fn client_errors_and_redirects_are_not_retried() {
    for status in [400, 401, 404, 410, 302] {
        let rx = Receiver::start(vec![Reply::Status(status), Reply::Status(200)]).await;
        let n = notifier(&[webhook_target(rx.url("/"))], fast(5));
        let reports = n.notify_hold_created(event(), summary()).finished().await;
        assert_eq!(rx.count(), 1, "{status}");
        assert_eq!(reports[0].attempts, 1);
        assert_eq!(
            reports[0].outcome,
            DeliveryOutcome::Refused {
                status,
                answer: "ok".into()
            }
        );
        assert_eq!(n.deliveries().failed(), 1);
        assert_eq!(n.deliveries().delivered(), 0);
    }
}

#[tokio::test]
async fn a_receiver_that_never_answers_is_retried_to_the_bound_then_reported() {
    let rx = Receiver::start(vec![Reply::Hang]).await;
    let retry = RetryPolicy {
        max_attempts: 3,
        attempt_timeout: Duration::from_millis(200),
        ..fast(3)
    };
    let n = notifier(&[webhook_target(rx.url("/hook"))], retry);
    let started = Instant::now();
    let reports = n.notify_hold_created(event(), summary()).finished().await;

    assert_eq!(rx.count(), 3);
    assert_eq!(reports[0].attempts, 3);
    match &reports[0].outcome {
        DeliveryOutcome::GaveUp { last_error } => {
            assert!(
                last_error.contains("no answer") || last_error.contains("timed out"),
                "{last_error}"
            )
        }
        other => panic!("{other:?}"),
    }
    // Three timeouts and two short waits: bounded, not forever.
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(n.deliveries().failed(), 1);
    assert_eq!(n.deliveries().attempts(), 3);
    let recent = n.deliveries().recent();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].kind, TargetKind::Webhook);
    assert_eq!(recent[0].host, rx.addr.to_string());
    assert_eq!(recent[0].hold_id.as_deref(), Some(HOLD));
}

#[tokio::test]
async fn slack_gets_block_kit_whose_buttons_carry_the_hold_id() {
    let rx = Receiver::start(vec![Reply::Status(200)]).await;
    let n = notifier(&[slack_target(rx.url("/services/T000/B000/XXXX"))], fast(5));
    let reports = n.notify_hold_created(event(), summary()).finished().await;

    assert!(reports[0].delivered());
    assert_eq!(reports[0].kind, TargetKind::Slack);
    assert_eq!(rx.count(), 1);
    let headers = rx.headers(0);
    assert_eq!(headers["content-type"], "application/json");
    // Slack targets are not Standard Webhooks receivers.
    assert!(headers.get("webhook-signature").is_none());

    let message = rx.json(0);
    assert_eq!(message, slack::hold_message(&summary()));
    let actions = message["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .unwrap();
    let buttons = actions["elements"].as_array().unwrap();
    let ids: Vec<&str> = buttons
        .iter()
        .map(|b| b["action_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [slack::APPROVE_ACTION_ID, slack::REJECT_ACTION_ID]);
    assert!(buttons.iter().all(|b| b["value"] == HOLD));
}

#[tokio::test]
async fn notify_returns_before_a_slow_receiver_answers() {
    let rx = Receiver::start(vec![Reply::Slow(Duration::from_millis(800), 200)]).await;
    let n = notifier(
        &[
            webhook_target(rx.url("/a")),
            slack_target(rx.url("/services/T/B/X")),
        ],
        fast(5),
    );
    let started = Instant::now();
    let dispatch = n.notify_hold_created(event(), summary());
    let returned = started.elapsed();
    assert!(returned < Duration::from_millis(100), "{returned:?}");
    assert_eq!(rx.answered.load(Ordering::SeqCst), 0);

    let reports = dispatch.finished().await;
    assert_eq!(rx.answered.load(Ordering::SeqCst), 2);
    assert!(reports.iter().all(|r| r.delivered()), "{reports:?}");
    // In `notify` order.
    assert_eq!(reports[0].kind, TargetKind::Webhook);
    assert_eq!(reports[1].kind, TargetKind::Slack);
    // Both at once: two 800 ms answers took well under 1.6 s.
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[tokio::test]
async fn one_stuck_target_does_not_delay_the_others() {
    let stuck = Receiver::start(vec![Reply::Hang]).await;
    let fine = Receiver::start(vec![Reply::Status(200)]).await;
    let retry = RetryPolicy {
        max_attempts: 2,
        attempt_timeout: Duration::from_millis(1500),
        ..fast(2)
    };
    let n = notifier(
        &[
            webhook_target(stuck.url("/")),
            slack_target(fine.url("/services/T/B/X")),
        ],
        retry,
    );
    let dispatch = n.notify_hold_created(event(), summary());
    let deadline = Instant::now() + Duration::from_secs(1);
    while n.deliveries().delivered() == 0 {
        assert!(Instant::now() < deadline, "the healthy target waited");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(fine.count(), 1);
    let reports = dispatch.finished().await;
    assert!(!reports[0].delivered());
    assert!(reports[1].delivered());
}

#[tokio::test]
async fn without_a_secret_events_go_unsigned_but_keep_id_and_timestamp() {
    let rx = Receiver::start(vec![Reply::Status(200)]).await;
    let target = NotifyTarget::Webhook {
        url: rx.url("/"),
        secret_env: None,
    };
    let n = notifier(&[target], fast(1));
    n.notify_hold_created(event(), summary()).finished().await;
    let headers = rx.headers(0);
    assert!(headers.get("webhook-signature").is_none());
    assert!(headers["webhook-id"].to_str().unwrap().starts_with("msg_"));
    assert!(headers.get("webhook-timestamp").is_some());
}

#[test]
fn secret_problems_stop_construction_naming_the_variable_not_the_value() {
    leash::install_crypto_provider();
    let target = webhook_target("https://ops.example/leash".into());

    let long_raw = "changeme-not-a-real-secret!";
    let short = "tooshort";
    for value in [short, "whsec_not base64!"] {
        let err = Notifier::new(
            std::slice::from_ref(&target),
            |_| Some(value.to_string()),
            RetryPolicy::default(),
        )
        .unwrap_err();
        assert!(matches!(err, NotifyError::SecretInvalid { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains(SECRET_VAR), "{text}");
        assert!(text.contains("notify[0]"), "{text}");
        assert!(!text.contains(value), "{text}");
    }
    // Long enough is fine, raw or whsec_.
    assert!(Notifier::new(
        std::slice::from_ref(&target),
        |_| Some(long_raw.to_string()),
        RetryPolicy::default()
    )
    .is_ok());

    // Named but unset (or empty): refused, not silently unsigned.
    for unset in [None, Some(String::new())] {
        let err = Notifier::new(
            std::slice::from_ref(&target),
            |_| unset.clone(),
            RetryPolicy::default(),
        )
        .unwrap_err();
        assert!(matches!(err, NotifyError::SecretMissing { .. }), "{err}");
        assert!(err.to_string().contains(SECRET_VAR));
    }

    // A Slack target needs no secret to send.
    let slack = slack_target("https://hooks.slack.com/services/T/B/X".into());
    assert!(Notifier::new(&[slack], |_| None, RetryPolicy::default()).is_ok());
}

#[tokio::test]
async fn failures_never_show_the_url_path_or_secret() {
    // A port nothing listens on: connection refused, every time.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let url = format!("http://{closed}/services/T0001/B0001/SECRETPATHxyz");
    let n = notifier(&[slack_target(url.clone()), webhook_target(url)], fast(2));
    let reports = n.notify_hold_created(event(), summary()).finished().await;
    for report in &reports {
        assert_eq!(report.attempts, 2);
        assert_eq!(report.host, closed.to_string());
        let DeliveryOutcome::GaveUp { last_error } = &report.outcome else {
            panic!("{report:?}");
        };
        assert!(last_error.starts_with("could not connect"), "{last_error}");
        let shown = format!("{report:?}");
        assert!(!shown.contains("SECRETPATH"), "{shown}");
        assert!(!shown.contains("/services"), "{shown}");
    }
    let shown = format!("{n:?}");
    assert!(
        !shown.contains("SECRETPATH") && !shown.contains("MfKQ9r8G"),
        "{shown}"
    );
    assert_eq!(n.deliveries().failed(), 2);
}

#[tokio::test]
async fn slack_messages_are_replaced_over_https_or_loopback_only() {
    let rx = Receiver::start(vec![Reply::Status(200)]).await;
    let n = notifier(&[], fast(3));
    let message = slack::resolved_message(&summary(), "approved", "maya");
    let report = n
        .update_slack_message(&rx.url("/actions/T/1/abc"), message.clone())
        .await
        .unwrap();
    assert!(report.delivered());
    assert_eq!(report.kind, TargetKind::SlackResponse);
    assert_eq!(rx.json(0), message);
    assert_eq!(rx.json(0)["replace_original"], true);

    for bad in [
        "http://hooks.slack.com/actions/T/1/abc",
        "http://localhost:9/actions",
        "http://10.0.0.1/actions",
        "ftp://hooks.slack.com/x",
        "not a url",
    ] {
        let err = n.update_slack_message(bad, message.clone()).await;
        assert!(matches!(err, Err(NotifyError::ResponseUrl)), "{bad}");
    }
    // Refusals by Slack are reported, not retried.
    let gone = Receiver::start(vec![Reply::Status(404)]).await;
    let report = n
        .update_slack_message(&gone.url("/actions/expired"), message)
        .await
        .unwrap();
    assert_eq!(gone.count(), 1);
    assert!(matches!(
        report.outcome,
        DeliveryOutcome::Refused { status: 404, .. }
    ));
}

#[tokio::test]
async fn no_targets_means_nothing_spawned() {
    let n = notifier(&[], fast(3));
    assert!(n.is_empty());
    assert!(n
        .notify_hold_created(event(), summary())
        .finished()
        .await
        .is_empty());
}
