//! Approvals on the admin listener (SPEC §6, §9).
//!
//! - `GET /v1/holds[?state=S]`, `GET /v1/holds/{id}`,
//!   `POST /v1/holds/{id}/approve`, `POST /v1/holds/{id}/reject`: every call
//!   carries `Authorization: Bearer <approver token>`, and the approver is
//!   whoever owns the token. A vote may carry a JSON body
//!   `{"comment": "..."}`; an approval of a hold with no amount leash could
//!   read must carry `"amount": "4000.00", "currency": "EUR"` (a string,
//!   never a JSON number), checked against the REJECT rules and caps at
//!   release; `X-Leash-Channel: cli` marks votes sent by
//!   `leash holds` (recorded as channel `cli`, else `api`).
//! - `POST /slack/actions`: a button click, signed by Slack; the clicking
//!   member ID must be an approver's `slack:` id.
//!
//! Answers are JSON: the hold (with its state as of now and what is still
//! needed), or `{"error": {"code", "message"}}`.

use bytes::Bytes;
use chrono::Utc;
use http::header::AUTHORIZATION;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::json;

use super::{error, json};
use crate::answer::ProxyBody;
use crate::desk::{DeskError, HoldDesk};
use crate::holds::{Channel, HoldError, HoldState, Vote};
use crate::notify::slack::{self, Decision};

/// Largest body accepted: a comment, or a Slack payload (a few KiB).
const MAX_BODY: usize = 64 * 1024;

/// `/v1/holds…`.
pub(super) async fn route(desk: &HoldDesk, request: Request<Incoming>) -> Response<ProxyBody> {
    let Some(approver) = bearer(request.headers()).and_then(|t| desk.approver_by_token(t)) else {
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send an approver's token: Authorization: Bearer <token>",
        );
        response
            .headers_mut()
            .insert("www-authenticate", http::HeaderValue::from_static("Bearer"));
        return response;
    };
    let path = request.uri().path().to_string();
    let segments: Vec<&str> = path
        .trim_start_matches("/v1/holds")
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let method = request.method().clone();
    match (&method, segments.as_slice()) {
        (&Method::GET, []) => list(desk, request.uri().query()),
        (&Method::GET, [id]) => get(desk, id),
        (&Method::POST, [id, action @ ("approve" | "reject")]) => {
            let vote = if *action == "approve" {
                Vote::Approve
            } else {
                Vote::Reject
            };
            let channel = match request.headers().get("x-leash-channel") {
                Some(v) if v.as_bytes().eq_ignore_ascii_case(b"cli") => Channel::Cli,
                _ => Channel::Api,
            };
            let id = id.to_string();
            let body = match read_body(request).await {
                Ok(body) => body,
                Err(response) => return *response,
            };
            let VoteBody {
                comment,
                amount,
                currency,
            } = match vote_body(&body) {
                Ok(body) => body,
                Err(message) => return error(StatusCode::BAD_REQUEST, "bad_request", message),
            };
            let stated = match (vote, stated_amount(amount.as_deref(), currency.as_deref())) {
                (Vote::Reject, _) => None,
                (Vote::Approve, Ok(stated)) => stated,
                (Vote::Approve, Err(message)) => {
                    return error(StatusCode::BAD_REQUEST, "bad_amount", message)
                }
            };
            vote_answer(
                desk,
                desk.vote(
                    &id,
                    &approver,
                    vote,
                    channel,
                    comment.as_deref(),
                    stated,
                    Utc::now(),
                )
                .await,
                &approver,
                vote,
            )
        }
        (_, [] | [_] | [_, "approve" | "reject"]) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "GET /v1/holds, GET /v1/holds/{id}, POST /v1/holds/{id}/approve, POST /v1/holds/{id}/reject",
        ),
        _ => super::not_found(),
    }
}

/// `GET /v1/holds[?state=…]`: newest first; `?state=pending` oldest first,
/// the order approvers should take them in.
fn list(desk: &HoldDesk, query: Option<&str>) -> Response<ProxyBody> {
    let mut state = None;
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if key == "state" {
            match value.parse::<HoldState>() {
                Ok(s) => state = Some(s),
                Err(message) => return error(StatusCode::BAD_REQUEST, "bad_request", message),
            }
        }
    }
    let now = Utc::now();
    // Pending holds come from the open index, not the whole history.
    let holds = match state {
        Some(HoldState::Pending) => desk.store.pending(),
        _ => desk.store.list(None),
    };
    match holds {
        Ok(holds) => {
            let holds: Vec<_> = holds
                .iter()
                // Filter on the state as of now: an overdue pending hold is
                // listed as expired before the sweep has written it.
                .filter(|h| state.is_none_or(|s| h.state_at(now) == s))
                .map(|h| HoldDesk::view(h, now))
                .collect();
            json(StatusCode::OK, json!({ "holds": holds }))
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "holds_unreadable",
            e.to_string(),
        ),
    }
}

fn get(desk: &HoldDesk, id: &str) -> Response<ProxyBody> {
    match desk.store.get(id) {
        Ok(Some(hold)) => json(
            StatusCode::OK,
            json!({ "hold": HoldDesk::view(&hold, Utc::now()) }),
        ),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "hold_not_found",
            format!("no hold {id}"),
        ),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "holds_unreadable",
            e.to_string(),
        ),
    }
}

/// The answer to a vote: the hold's new state and what is still needed.
fn vote_answer(
    desk: &HoldDesk,
    result: Result<crate::holds::ApprovalOutcome, DeskError>,
    approver: &str,
    vote: Vote,
) -> Response<ProxyBody> {
    match result {
        Ok(outcome) => {
            let now = Utc::now();
            let state = outcome.hold.state_at(now);
            let message = match (state, outcome.still_needed.is_empty()) {
                (HoldState::Pending, false) => format!(
                    "{vote} by {approver} counted; still needed: {}",
                    outcome.still_needed.join("; ")
                ),
                (HoldState::Approved, _) => format!(
                    "approved: the request is forwarded when the agent's connection or retry collects it (by {})",
                    outcome
                        .hold
                        .release_by
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        .unwrap_or_default()
                ),
                (state, _) => format!("{vote} by {approver} counted; the hold is {state}"),
            };
            json(
                StatusCode::OK,
                json!({
                    "approver": approver,
                    "vote": vote.as_str(),
                    "state": state.as_str(),
                    "still_needed": outcome.still_needed,
                    "message": message,
                    "hold": HoldDesk::view(&outcome.hold, now),
                }),
            )
        }
        Err(e) => {
            let (status, code) = status_of(&e);
            let mut body = json!({"error": {"code": code, "message": e.to_string()}});
            if let Ok(Some(hold)) = desk.store.get(hold_id_of(&e).unwrap_or_default()) {
                body["hold"] = HoldDesk::view(&hold, Utc::now());
            }
            json(status, body)
        }
    }
}

/// The HTTP status and error code for a refused vote.
fn status_of(e: &DeskError) -> (StatusCode, &'static str) {
    match e {
        DeskError::Audit(_) => (StatusCode::SERVICE_UNAVAILABLE, "audit_unavailable"),
        DeskError::Hold(e) => match e {
            HoldError::NotFound(_) => (StatusCode::NOT_FOUND, "hold_not_found"),
            HoldError::NotEligible { .. } => (StatusCode::FORBIDDEN, "not_eligible"),
            HoldError::AlreadyVoted { .. } => (StatusCode::CONFLICT, "already_voted"),
            HoldError::NotPending(_) => (StatusCode::CONFLICT, "not_pending"),
            HoldError::Expired { .. } => (StatusCode::CONFLICT, "hold_expired"),
            HoldError::Invalid(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            HoldError::AmountRequired { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "amount_required")
            }
            HoldError::AmountNotExpected { .. } => (StatusCode::BAD_REQUEST, "amount_not_expected"),
            HoldError::AmountMismatch { .. } => (StatusCode::CONFLICT, "amount_mismatch"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "holds_unavailable"),
        },
    }
}

fn hold_id_of(e: &DeskError) -> Option<&str> {
    match e {
        DeskError::Hold(
            HoldError::NotEligible { id, .. }
            | HoldError::AlreadyVoted { id, .. }
            | HoldError::Expired { id, .. }
            | HoldError::AmountRequired { id }
            | HoldError::AmountNotExpected { id }
            | HoldError::AmountMismatch { id, .. },
        ) => Some(id),
        _ => None,
    }
}

/// `POST /slack/actions`: verify Slack's signature on the raw body, read
/// the click, map the member ID to an approver, count the vote, and replace
/// the message with the outcome.
pub(super) async fn slack_actions(
    desk: &HoldDesk,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let timestamp = header("x-slack-request-timestamp");
    let signature = header("x-slack-signature");
    let body = match read_body(request).await {
        Ok(body) => body,
        Err(response) => return *response,
    };
    if let Err(e) = desk.verify_slack(&timestamp, &signature, &body, Utc::now().timestamp()) {
        tracing::warn!(error = %e, "refused a Slack action that does not verify");
        return error(StatusCode::UNAUTHORIZED, "bad_signature", e.to_string());
    }
    let action = match slack::parse_action(&body) {
        Ok(action) => action,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_request", e.to_string()),
    };
    let Some(approver) = desk.approver_by_slack_id(&action.user_id) else {
        tracing::warn!(slack_user = %action.user_id, hold = %action.hold_id, "a Slack user who is not an approver clicked a hold button");
        let message = format!(
            "Slack user {} is not a leash approver (approvers.people.*.slack)",
            action.user_id
        );
        if let Some(url) = action.response_url.clone() {
            desk.tell_slack_user(url, format!("Not counted: {message}."));
        }
        return error(StatusCode::FORBIDDEN, "not_an_approver", message);
    };
    let vote = match action.decision {
        Decision::Approve => Vote::Approve,
        Decision::Reject => Vote::Reject,
    };
    let result = desk
        .vote(
            &action.hold_id,
            &approver,
            vote,
            Channel::Slack,
            None,
            // A button states no amount: an amountless hold has no Approve
            // button, and a forged or stale click is refused
            // (`AmountRequired`) and explained to the clicker.
            None,
            Utc::now(),
        )
        .await;
    if let Some(url) = action.response_url.clone() {
        match &result {
            Ok(outcome) => desk.update_slack_message(url, &outcome.hold, &approver),
            // The clicker sees why nothing happened, not just Slack's
            // warning sign.
            Err(e) => desk.tell_slack_user(url, format!("Not counted: {e}.")),
        }
    }
    vote_answer(desk, result, &approver, vote)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

async fn read_body(request: Request<Incoming>) -> Result<Bytes, Box<Response<ProxyBody>>> {
    match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Box::new(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("at most {MAX_BODY} bytes"),
        ))),
        Err(e) => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            e.to_string(),
        ))),
    }
}

/// A vote's optional JSON body.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct VoteBody {
    #[serde(default)]
    comment: Option<String>,
    /// The amount an amountless hold moves: a decimal *string*
    /// (`"4000.00"`), never a JSON number, which most readers take as a
    /// float.
    #[serde(default)]
    amount: Option<String>,
    /// Its ISO 4217 code.
    #[serde(default)]
    currency: Option<String>,
}

/// `{"comment": "...", "amount": "4000.00", "currency": "EUR"}`, every key
/// optional; an empty body is none of them.
fn vote_body(body: &[u8]) -> Result<VoteBody, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(VoteBody::default());
    }
    serde_json::from_slice::<VoteBody>(body).map_err(|e| {
        format!("the body must be JSON like {{\"comment\": \"...\", \"amount\": \"4000.00\", \"currency\": \"EUR\"}} (amount as a string): {e}")
    })
}

/// The stated amount, read as exactly as an amount on the wire: both or
/// neither of `amount` and `currency`.
fn stated_amount(
    amount: Option<&str>,
    currency: Option<&str>,
) -> Result<Option<crate::money::Money>, String> {
    match (amount, currency) {
        (None, None) => Ok(None),
        (Some(amount), Some(currency)) => {
            let value = crate::money::parse_decimal_amount(amount.trim()).map_err(|e| {
                format!("`amount` must be a plain decimal string like \"4000.00\": {e}")
            })?;
            let currency = crate::money::Currency::parse(currency.trim())
                .map_err(|e| format!("`currency` must be an ISO 4217 code like EUR: {e}"))?;
            Ok(Some(crate::money::Money::new(value, currency)))
        }
        _ => Err("state both `amount` and `currency`".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_case_insensitively_and_empty_is_none() {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(AUTHORIZATION, "bearer  abc ".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
        h.insert(AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn comments_are_optional_and_strict() {
        let comment_of = |b: &[u8]| vote_body(b).map(|b| b.comment);
        assert_eq!(comment_of(b"").unwrap(), None);
        assert_eq!(comment_of(b"{}").unwrap(), None);
        assert_eq!(
            comment_of(br#"{"comment":"ok by me"}"#).unwrap().as_deref(),
            Some("ok by me")
        );
        assert!(comment_of(br#"{"comment":1}"#).is_err());
        assert!(comment_of(br#"{"approver":"maya"}"#).is_err());
        assert!(comment_of(b"not json").is_err());
    }

    #[test]
    fn stated_amounts_are_exact_strings_with_a_known_currency() {
        // A JSON number is refused: it would be read as a float.
        assert!(vote_body(br#"{"amount":4000.5,"currency":"EUR"}"#).is_err());
        let body = vote_body(br#"{"amount":"4000.50","currency":"eur"}"#).unwrap();
        let stated = stated_amount(body.amount.as_deref(), body.currency.as_deref())
            .unwrap()
            .unwrap();
        assert_eq!(stated.to_string(), "4000.50 EUR");
        assert_eq!(stated_amount(None, None).unwrap(), None);
        assert!(stated_amount(Some("4000"), None).is_err());
        assert!(stated_amount(Some("1e3"), Some("EUR")).is_err());
        assert!(stated_amount(Some("-5"), Some("EUR")).is_err());
        assert!(stated_amount(Some("5"), Some("XYZ")).is_err());
    }
}
