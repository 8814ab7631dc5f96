//! Slack: the hold message with its buttons, and the clicks that come back
//! (SPEC §6, §9).
//!
//! A click on Approve moves money, so three things must hold before leash
//! believes one:
//!
//! 1. **Slack sent it.** [`verify_request`] checks the `X-Slack-Signature`
//!    HMAC over the raw body with the app's signing secret, inside a
//!    five-minute window, exactly as Slack documents it
//!    (<https://api.slack.com/authentication/verifying-requests-from-slack>).
//! 2. **It names one hold and one decision, unambiguously.** [`parse_action`]
//!    accepts only leash's own two buttons, with the hold id as the button's
//!    value; anything else is an error, never a default decision. There is no
//!    "unknown means reject" fallback either: a malformed click is answered
//!    as malformed, and the hold stays as it was.
//! 3. **The clicker may approve.** The Slack member ID ([`SlackAction::user_id`])
//!    is what the caller matches against the approvers' `slack:` IDs. Display
//!    names and e-mail addresses are never read: anyone can change theirs.
//!
//! # Button format
//!
//! Approve and Reject are two buttons whose `action_id` carries the decision
//! ([`APPROVE_ACTION_ID`], [`REJECT_ACTION_ID`]) and whose `value` is the hold
//! id, as is (`hold_…`). Keeping the decision in `action_id` rather than in a
//! `approve:hold_…` value means the value has one meaning and needs no
//! second parser; both fields are inside the signed body either way.
//!
//! # What the message shows
//!
//! [`hold_message`] is what an approver sees before deciding, and much of it
//! (beneficiary, operation, even the agent's name) ultimately comes from the
//! agent, which is the party being supervised. So every such value is made
//! inert before it reaches Slack: `&`, `<` and `>` are escaped (Slack's only
//! control characters in `mrkdwn`: without this an agent could write
//! `<!channel>` or a link whose text lies about its target), line breaks and
//! other control characters become spaces (so a value cannot fake extra
//! lines like "*Amount* 1.00 EUR"), bidirectional-override characters are
//! dropped (so `evil\u{202E}moc.lapyap` cannot display as `paypal.com…`),
//! values are cut to a bounded length, and the text objects are marked
//! `verbatim` so Slack does not turn bare URLs or channel names into links.
//! No secret ever goes into a message; the hold id is not one (it is only
//! useful together with an approver's identity).

use chrono::DateTime;
use hmac::Mac;
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use super::{keyed, parse_unix_seconds, skew, snippet, tag, Skew, TAG_LEN};

/// Slack's replay window: "more than five minutes" from local time is refused.
pub const MAX_SKEW_SECS: u64 = 5 * 60;

/// Header carrying the request's Unix timestamp, part of the signed string.
pub const HEADER_TIMESTAMP: &str = "x-slack-request-timestamp";
/// Header carrying `v0=` and the hex HMAC-SHA256.
pub const HEADER_SIGNATURE: &str = "x-slack-signature";

/// `action_id` of the Approve button.
pub const APPROVE_ACTION_ID: &str = "leash_approve";
/// `action_id` of the Reject button.
pub const REJECT_ACTION_ID: &str = "leash_reject";

/// Prefix of every hold id (`hold_` followed by 32 hex digits today).
pub const HOLD_ID_PREFIX: &str = "hold_";

/// Longest hold id accepted back from a button. Generous against today's 37
/// characters, and far below Slack's 2,000-character limit on a value.
const MAX_HOLD_ID_LEN: usize = 128;

/// Longest Slack member ID accepted (they are around 9–11 characters).
const MAX_USER_ID_LEN: usize = 64;

/// Length limit applied to each agent-supplied value shown in a message,
/// in characters. Keeps every field well inside Block Kit's 2,000-character
/// limit per field even after escaping grows `&` to `&amp;`.
const MAX_VALUE_CHARS: usize = 200;

/// At most this many triggered rules are listed; the rest are counted.
const MAX_RULES_SHOWN: usize = 10;

/// Why a Slack request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlackError {
    /// No signing secret is configured. An HMAC under an empty key is one
    /// anybody can compute, so this refuses instead of "verifying".
    #[error("no Slack signing secret is configured")]
    EmptySecret,
    /// `X-Slack-Request-Timestamp` was not a plain integer of seconds.
    #[error("`X-Slack-Request-Timestamp` is not an integer Unix timestamp")]
    InvalidTimestamp,
    /// Signed more than five minutes ago: possibly a replay.
    #[error("Slack request timestamp is more than five minutes old")]
    TimestampTooOld,
    /// Signed more than five minutes in the future.
    #[error("Slack request timestamp is more than five minutes in the future")]
    TimestampTooNew,
    /// `X-Slack-Signature` was not `v0=` and 64 hex digits.
    #[error("`X-Slack-Signature` is not `v0=` followed by 64 hex digits")]
    MalformedSignature,
    /// The signature did not match the body.
    #[error("Slack signature does not match")]
    SignatureMismatch,
    /// The form body had no `payload` field.
    #[error("the request has no `payload` field")]
    MissingPayload,
    /// The form body had `payload` more than once; which one Slack meant is
    /// not for leash to guess.
    #[error("the request has more than one `payload` field")]
    DuplicatePayload,
    /// `payload` was not JSON of the expected shape.
    #[error("`payload` is not a Slack interaction: {0}")]
    InvalidJson(String),
    /// An interaction other than a button click (a modal, a shortcut…).
    #[error("interaction type {0:?} is not handled (only block_actions)")]
    UnsupportedType(String),
    /// `user.id` was absent.
    #[error("the interaction names no user")]
    MissingUser,
    /// `user.id` is not a Slack member ID.
    #[error("user id {0:?} is not a Slack member ID")]
    InvalidUser(String),
    /// A click carries exactly one action; this carried another number.
    #[error("expected exactly one action, found {0}")]
    ActionCount(usize),
    /// The action was not a button.
    #[error("the action is not a button")]
    NotAButton,
    /// The button is not one of leash's.
    #[error("unknown action {0:?}")]
    UnknownAction(String),
    /// The button's value is not a hold id.
    #[error("button value {0:?} is not a hold id")]
    InvalidHoldId(String),
    /// `response_url` was present but not an https URL.
    #[error("`response_url` is not an https URL")]
    InvalidResponseUrl,
}

/// Checks that a request came from Slack: `v0=` + hex HMAC-SHA256 of
/// `v0:{timestamp_header}:{body}` under `signing_secret`, with the timestamp
/// within five minutes of `now` either way.
///
/// `body` must be the raw bytes as received, before any form decoding:
/// Slack signs what it sent, and decoding then re-encoding is not guaranteed
/// to reproduce it. The timestamp header is signed as the text it is; it is
/// only parsed for the window check.
///
/// The comparison is constant-time, so the time taken does not tell a forger
/// how many leading bytes of a guess were right.
pub fn verify_request(
    signing_secret: &[u8],
    timestamp_header: &str,
    signature_header: &str,
    body: &[u8],
    now: i64,
) -> Result<(), SlackError> {
    if signing_secret.is_empty() {
        return Err(SlackError::EmptySecret);
    }
    let timestamp = parse_unix_seconds(timestamp_header).ok_or(SlackError::InvalidTimestamp)?;
    match skew(timestamp, now, MAX_SKEW_SECS) {
        Skew::Within => {}
        Skew::TooOld => return Err(SlackError::TimestampTooOld),
        Skew::TooNew => return Err(SlackError::TimestampTooNew),
    }
    let candidate = signature_header
        .strip_prefix("v0=")
        .filter(|hex| hex.len() == 2 * TAG_LEN)
        .and_then(|hex| hex::decode(hex).ok())
        .ok_or(SlackError::MalformedSignature)?;

    let mut mac = keyed(signing_secret).ok_or(SlackError::EmptySecret)?;
    mac.update(b"v0:");
    mac.update(timestamp_header.as_bytes());
    mac.update(b":");
    mac.update(body);
    let expected = tag(mac);

    if bool::from(candidate.as_slice().ct_eq(&expected)) {
        Ok(())
    } else {
        Err(SlackError::SignatureMismatch)
    }
}

/// What an approver decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Approve,
    Reject,
}

/// A verified-shape click on one of leash's buttons.
///
/// Parsing proves only the shape; call [`verify_request`] on the raw body
/// first, and match [`user_id`](Self::user_id) against the approvers before
/// acting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackAction {
    /// The clicker's Slack member ID (`U…` or `W…`), to be matched against
    /// approvers' `slack:` IDs.
    pub user_id: String,
    pub decision: Decision,
    /// The hold the button belongs to.
    pub hold_id: String,
    /// Where to post the replacement message (Slack's `response_url`; valid
    /// for 30 minutes and 5 uses). Absent for some surfaces.
    pub response_url: Option<String>,
    /// The channel the message is in, when Slack says (`channel.id`).
    pub channel_id: Option<String>,
    /// The message's timestamp (`message.ts`, else `container.message_ts`),
    /// which identifies it to `chat.update`.
    pub message_ts: Option<String>,
}

/// The part of a `block_actions` payload leash reads. Every other field is
/// ignored; a field leash does read but of the wrong JSON type, or given
/// twice, is an error (serde's derive refuses duplicate fields).
#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "type")]
    kind: String,
    user: Option<User>,
    #[serde(default)]
    actions: Vec<ActionPayload>,
    response_url: Option<String>,
    channel: Option<Channel>,
    message: Option<Message>,
    container: Option<Container>,
}

#[derive(Deserialize)]
struct User {
    id: Option<String>,
}

#[derive(Deserialize)]
struct ActionPayload {
    #[serde(rename = "type")]
    kind: Option<String>,
    action_id: Option<String>,
    value: Option<String>,
}

#[derive(Deserialize)]
struct Channel {
    id: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    ts: Option<String>,
}

#[derive(Deserialize)]
struct Container {
    message_ts: Option<String>,
}

/// Reads a button click from the body Slack posts to `POST /slack/actions`:
/// `application/x-www-form-urlencoded` with one `payload` field holding the
/// interaction as JSON.
///
/// Strict by design: exactly one `payload`, `type` `block_actions`, a user
/// with a member ID, exactly one action, which is a button, whose
/// `action_id` is [`APPROVE_ACTION_ID`] or [`REJECT_ACTION_ID`] and whose
/// `value` is a hold id. Slack sends one action per button click, so "take
/// the first of several" would only ever serve a forged body.
pub fn parse_action(body: &[u8]) -> Result<SlackAction, SlackError> {
    let mut payload = None;
    for (key, value) in form_urlencoded::parse(body) {
        if key == "payload" {
            if payload.is_some() {
                return Err(SlackError::DuplicatePayload);
            }
            payload = Some(value);
        }
    }
    let payload = payload.ok_or(SlackError::MissingPayload)?;
    let payload: Payload = serde_json::from_str(&payload).map_err(|e| {
        // serde's message can quote input; keep it short.
        let message = e.to_string();
        SlackError::InvalidJson(snippet_long(&message))
    })?;

    if payload.kind != "block_actions" {
        return Err(SlackError::UnsupportedType(snippet(&payload.kind)));
    }
    let user_id = payload
        .user
        .and_then(|u| u.id)
        .ok_or(SlackError::MissingUser)?;
    if !is_slack_member_id(&user_id) {
        return Err(SlackError::InvalidUser(snippet(&user_id)));
    }

    let [action] = <[ActionPayload; 1]>::try_from(payload.actions)
        .map_err(|actions| SlackError::ActionCount(actions.len()))?;
    if action.kind.as_deref() != Some("button") {
        return Err(SlackError::NotAButton);
    }
    let decision = match action.action_id.as_deref() {
        Some(APPROVE_ACTION_ID) => Decision::Approve,
        Some(REJECT_ACTION_ID) => Decision::Reject,
        Some(other) => return Err(SlackError::UnknownAction(snippet(other))),
        None => return Err(SlackError::UnknownAction(String::new())),
    };
    let hold_id = action.value.unwrap_or_default();
    if !is_hold_id(&hold_id) {
        return Err(SlackError::InvalidHoldId(snippet(&hold_id)));
    }

    let response_url = match payload.response_url {
        Some(url) if is_response_url(&url) => Some(url),
        Some(_) => return Err(SlackError::InvalidResponseUrl),
        None => None,
    };
    let message_ts = payload
        .message
        .and_then(|m| m.ts)
        .or_else(|| payload.container.and_then(|c| c.message_ts));

    Ok(SlackAction {
        user_id,
        decision,
        hold_id,
        response_url,
        channel_id: payload.channel.and_then(|c| c.id),
        message_ts,
    })
}

/// A Slack member ID as leash's configuration accepts one: upper-case ASCII
/// letters and digits (`U024BE7LH`, `W012A3CDE`).
fn is_slack_member_id(s: &str) -> bool {
    (2..=MAX_USER_ID_LEN).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// An https URL with a host, or plain http to a loopback IP address (where
/// there is no network to read it on; tests run their receiver there). The
/// same rule as [`super::send::Notifier::update_slack_message`] applies
/// when the message is sent.
fn is_response_url(s: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(s) else {
        return false;
    };
    match url.scheme() {
        "https" => url.host_str().is_some_and(|h| !h.is_empty()),
        "http" => super::send::is_loopback(&url),
        _ => false,
    }
}

/// `hold_` followed by letters, digits, `_` or `-`, bounded in length.
fn is_hold_id(s: &str) -> bool {
    s.len() <= MAX_HOLD_ID_LEN
        && s.strip_prefix(HOLD_ID_PREFIX).is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

/// Longer bound than [`snippet`], for parser messages that are mostly ours.
fn snippet_long(s: &str) -> String {
    const MAX: usize = 160;
    let mut out: String = s.chars().take(MAX).collect();
    if s.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

/// What an approver needs to decide a hold, already formatted for people.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HoldSummary {
    pub hold_id: String,
    /// The agent's name, as leash identified it.
    pub agent: String,
    /// The vendor's name: its adapter's name (a built-in one, or a custom
    /// vendor's `name`).
    pub vendor: String,
    /// What the request does (`charge`, `payout`, a custom operation).
    pub operation: String,
    /// Amount and currency, formatted (`1,800.00 EUR`).
    pub amount: String,
    /// Who receives the money, when the request says.
    pub beneficiary: Option<String>,
    /// The triggered rules, human-readable (name and reason).
    pub rules: Vec<String>,
    /// Who must approve (`2 of finance`, `alice and bob`).
    pub approvers_needed: String,
    /// When the hold expires, RFC 3339.
    pub expires_at: String,
    /// The request has no amount leash could read (unknown, unreadable):
    /// approving it needs an amount stated through the API or CLI, so the
    /// message offers Reject only, and says how to approve.
    pub amount_required: bool,
    /// What leash read of such a request: `field = value` (masked), and
    /// why it could not read an amount.
    pub read: Vec<String>,
}

/// The Block Kit message announcing a new hold, for an incoming webhook:
/// a header, the key facts as fields, the triggered rules, who must approve
/// and the expiry, and Approve / Reject buttons bound to the hold id.
///
/// Approve asks for confirmation (a misclick there releases a payment);
/// Reject does not (a misclick there fails closed, and the agent can retry).
/// The top-level `text` is the notification and screen-reader fallback.
pub fn hold_message(hold: &HoldSummary) -> Value {
    let mut blocks = summary_blocks("Payment held for approval", hold);
    if hold.amount_required {
        // A button cannot state an amount, and an amountless approval would
        // let any amount past the caps: Reject only, and the CLI line.
        let mut text = String::from("*No amount leash could read*");
        for line in hold.read.iter().take(MAX_RULES_SHOWN) {
            text.push_str("\n• ");
            text.push_str(&inert(line));
        }
        text.push_str(&format!(
            "\nApprove with: `leash holds approve {} --amount <AMOUNT> --currency <CUR>`",
            inert(&hold.hold_id)
        ));
        blocks.push(json!({ "type": "section", "text": mrkdwn(&text) }));
        blocks.push(json!({
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": REJECT_ACTION_ID,
                    "text": plain("Reject"),
                    "style": "danger",
                    "value": hold.hold_id,
                },
            ],
        }));
        return json!({
            "text": format!(
                "Approval needed (state the amount): {} request by {} (hold {})",
                inert(&hold.vendor),
                inert(&hold.agent),
                inert(&hold.hold_id),
            ),
            "blocks": blocks,
        });
    }
    blocks.push(json!({
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": APPROVE_ACTION_ID,
                "text": plain("Approve"),
                "style": "primary",
                "value": hold.hold_id,
                "confirm": {
                    "title": plain("Approve this payment?"),
                    "text": plain("leash forwards the held request to the vendor once every required approver has approved. A forwarded payment cannot be recalled from here."),
                    "confirm": plain("Approve"),
                    "deny": plain("Cancel"),
                    "style": "primary",
                },
            },
            {
                "type": "button",
                "action_id": REJECT_ACTION_ID,
                "text": plain("Reject"),
                "style": "danger",
                "value": hold.hold_id,
            },
        ],
    }));
    json!({
        "text": format!(
            "Approval needed: {} to {} requested by {} (hold {})",
            inert(&hold.amount),
            inert(&hold.vendor),
            inert(&hold.agent),
            inert(&hold.hold_id),
        ),
        "blocks": blocks,
    })
}

/// The message that replaces [`hold_message`] once the hold is decided:
/// the same facts, the outcome and who decided, and no buttons, so that
/// nobody clicks on a settled hold.
///
/// `outcome` is leash's word for the end state (`approved`, `rejected`,
/// `expired`); `by` is shown as plain text (an approver's name, or
/// `leash` for an expiry), and may be empty. Meant for Slack's
/// `response_url`, hence `replace_original`.
pub fn resolved_message(hold: &HoldSummary, outcome: &str, by: &str) -> Value {
    let outcome = flatten(outcome, 40);
    let header = format!("Hold {outcome}");
    let mut blocks = summary_blocks(&header, hold);
    let decided = if by.trim().is_empty() {
        format!("*{}*", escape(&outcome))
    } else {
        format!("*{}* by {}", escape(&outcome), inert(by))
    };
    blocks.push(json!({
        "type": "section",
        "text": mrkdwn(&decided),
    }));
    json!({
        "replace_original": true,
        "text": format!("Hold {} {}", inert(&hold.hold_id), decided),
        "blocks": blocks,
    })
}

/// The blocks both messages share: header, fact fields, rules, context.
fn summary_blocks(header: &str, hold: &HoldSummary) -> Vec<Value> {
    let beneficiary = match hold.beneficiary.as_deref() {
        Some(b) if !b.trim().is_empty() => inert(b),
        _ => "_not stated in the request_".to_string(),
    };
    let vendor = if hold.operation.trim().is_empty() {
        inert(&hold.vendor)
    } else {
        format!("{} · {}", inert(&hold.vendor), inert(&hold.operation))
    };
    let fields = vec![
        mrkdwn(&format!("*Amount*\n{}", inert(&hold.amount))),
        mrkdwn(&format!("*Vendor*\n{vendor}")),
        mrkdwn(&format!("*Beneficiary*\n{beneficiary}")),
        mrkdwn(&format!("*Agent*\n{}", inert(&hold.agent))),
    ];

    let mut rules = String::from("*Triggered rules*");
    if hold.rules.is_empty() {
        rules.push_str("\n_none recorded_");
    }
    for rule in hold.rules.iter().take(MAX_RULES_SHOWN) {
        rules.push_str("\n• ");
        rules.push_str(&inert(rule));
    }
    if hold.rules.len() > MAX_RULES_SHOWN {
        rules.push_str(&format!(
            "\n…and {} more",
            hold.rules.len() - MAX_RULES_SHOWN
        ));
    }

    let context = format!(
        "Needs: {} · Expires {} · Hold `{}`",
        inert(&hold.approvers_needed),
        expiry(&hold.expires_at),
        inert(&hold.hold_id),
    );

    vec![
        json!({ "type": "header", "text": plain(&flatten(header, 150)) }),
        json!({ "type": "section", "fields": fields }),
        json!({ "type": "section", "text": mrkdwn(&rules) }),
        json!({ "type": "context", "elements": [mrkdwn(&context)] }),
    ]
}

/// The expiry as a Slack date token, which each reader sees in their own
/// time zone, with the RFC 3339 text as the fallback; or just the escaped
/// text if it does not parse.
fn expiry(rfc3339: &str) -> String {
    match DateTime::parse_from_rfc3339(rfc3339.trim()) {
        Ok(at) => format!(
            "<!date^{}^{{date_short_pretty}} at {{time}}|{}>",
            at.timestamp(),
            inert(rfc3339)
        ),
        Err(_) => inert(rfc3339),
    }
}

/// A `plain_text` object. Slack does not parse plain text for markup, so
/// only the length is bounded (by the caller, where a limit applies).
fn plain(text: &str) -> Value {
    json!({ "type": "plain_text", "text": text, "emoji": false })
}

/// A `mrkdwn` object with auto-linking off: bare URLs and `#channel` names
/// in agent-supplied text stay text.
fn mrkdwn(text: &str) -> Value {
    json!({ "type": "mrkdwn", "text": text, "verbatim": true })
}

/// Makes an untrusted value safe to embed in `mrkdwn`: flattened to one line,
/// bounded, and escaped.
fn inert(value: &str) -> String {
    escape(&flatten(value, MAX_VALUE_CHARS))
}

/// One line, no invisible direction tricks, at most `max` characters.
fn flatten(value: &str, max: usize) -> String {
    let mut out = String::with_capacity(value.len().min(max * 4));
    let mut count = 0;
    let mut truncated = false;
    for c in value.trim().chars() {
        let c = if c.is_control() {
            ' '
        } else if is_bidi_control(c) {
            continue;
        } else {
            c
        };
        if count == max {
            truncated = true;
            break;
        }
        out.push(c);
        count += 1;
    }
    if truncated {
        out.pop();
        out.push('…');
    }
    out
}

/// Unicode's explicit directional formatting characters (marks, embeddings,
/// overrides, isolates): invisible, and able to reorder what is displayed.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Escapes Slack's three control characters in `mrkdwn`.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Slack's worked example, from "Verifying requests from Slack"
    // (https://api.slack.com/authentication/verifying-requests-from-slack):
    // the example signing secret, the X-Slack-Request-Timestamp, the raw
    // body of a slash-command request, and the resulting X-Slack-Signature.
    const DOC_SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
    const DOC_TIMESTAMP: &str = "1531420618";
    const DOC_NOW: i64 = 1_531_420_618;
    const DOC_BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const DOC_SIGNATURE: &str =
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    #[test]
    fn verifies_slacks_documented_example() {
        assert_eq!(
            verify_request(DOC_SECRET, DOC_TIMESTAMP, DOC_SIGNATURE, DOC_BODY, DOC_NOW),
            Ok(())
        );
        // Upper-case hex is the same bytes.
        let upper = format!("v0={}", DOC_SIGNATURE[3..].to_ascii_uppercase());
        assert_eq!(
            verify_request(DOC_SECRET, DOC_TIMESTAMP, &upper, DOC_BODY, DOC_NOW),
            Ok(())
        );
    }

    #[test]
    fn tampered_body_timestamp_or_secret_is_refused() {
        let mut body = DOC_BODY.to_vec();
        // "roadrunner" → "roadrunnes"
        let at = body.windows(10).position(|w| w == b"roadrunner").unwrap();
        body[at + 9] = b's';
        assert_eq!(
            verify_request(DOC_SECRET, DOC_TIMESTAMP, DOC_SIGNATURE, &body, DOC_NOW),
            Err(SlackError::SignatureMismatch)
        );
        // One second later is inside the window, but the timestamp is signed.
        assert_eq!(
            verify_request(DOC_SECRET, "1531420619", DOC_SIGNATURE, DOC_BODY, DOC_NOW),
            Err(SlackError::SignatureMismatch)
        );
        assert_eq!(
            verify_request(
                b"8f742231b10e8888abcd99yyyzzz85a6",
                DOC_TIMESTAMP,
                DOC_SIGNATURE,
                DOC_BODY,
                DOC_NOW
            ),
            Err(SlackError::SignatureMismatch)
        );
        let mut flipped = DOC_SIGNATURE.to_string();
        flipped.replace_range(66.., "4");
        assert_eq!(
            verify_request(DOC_SECRET, DOC_TIMESTAMP, &flipped, DOC_BODY, DOC_NOW),
            Err(SlackError::SignatureMismatch)
        );
    }

    #[test]
    fn stale_and_future_requests_are_refused_at_five_minutes() {
        let ok = |now| verify_request(DOC_SECRET, DOC_TIMESTAMP, DOC_SIGNATURE, DOC_BODY, now);
        assert_eq!(ok(DOC_NOW + 300), Ok(()));
        assert_eq!(ok(DOC_NOW - 300), Ok(()));
        assert_eq!(ok(DOC_NOW + 301), Err(SlackError::TimestampTooOld));
        assert_eq!(ok(DOC_NOW - 301), Err(SlackError::TimestampTooNew));
        // The example itself, checked against a real clock, is years stale.
        assert_eq!(ok(1_800_000_000), Err(SlackError::TimestampTooOld));
    }

    #[test]
    fn malformed_headers_and_empty_secret_are_refused() {
        let check =
            |secret: &[u8], ts: &str, sig: &str| verify_request(secret, ts, sig, DOC_BODY, DOC_NOW);
        assert_eq!(
            check(b"", DOC_TIMESTAMP, DOC_SIGNATURE),
            Err(SlackError::EmptySecret)
        );
        for ts in ["", "soon", "+1531420618", "1531420618.0", "-1"] {
            assert_eq!(
                check(DOC_SECRET, ts, DOC_SIGNATURE),
                Err(SlackError::InvalidTimestamp),
                "{ts:?}"
            );
        }
        for sig in [
            "",
            "v0=",
            "a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
            "v1=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b5",
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b50300",
            "v0=z2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
        ] {
            assert_eq!(
                check(DOC_SECRET, DOC_TIMESTAMP, sig),
                Err(SlackError::MalformedSignature),
                "{sig:?}"
            );
        }
    }

    /// A `block_actions` payload in the shape of the example in Slack's
    /// reference ("block_actions payload",
    /// https://api.slack.com/reference/interaction-payloads/block-actions),
    /// with leash's button in place of the example's.
    fn slack_payload(action_id: &str, value: &str) -> Value {
        json!({
            "type": "block_actions",
            "team": { "id": "T9TK3CUKW", "domain": "example" },
            "user": { "id": "UA8RXUSPL", "username": "jtorrance", "team_id": "T9TK3CUKW" },
            "api_app_id": "AABA1ABCD",
            "token": "9s8d9as89d8as9d8as989",
            "container": {
                "type": "message",
                "message_ts": "1548261231.000200",
                "channel_id": "CBR2V3XEX",
                "is_ephemeral": false
            },
            "trigger_id": "12321423423.333649436676.d8c1bb837935619ccad0f624c448ffb3",
            "channel": { "id": "CBR2V3XEX", "name": "review-updates" },
            "message": {
                "bot_id": "BAH5CA16Z",
                "type": "message",
                "text": "This content can't be displayed.",
                "user": "UAJ2RU415",
                "ts": "1548261231.000200"
            },
            "response_url": "https://hooks.slack.com/actions/AABA1ABCD/1232321423432/D09sSasdasdAS9091209",
            "actions": [{
                "action_id": action_id,
                "block_id": "=qXel",
                "text": { "type": "plain_text", "text": "Approve", "emoji": true },
                "value": value,
                "style": "primary",
                "type": "button",
                "action_ts": "1548426417.840180"
            }]
        })
    }

    /// The form body Slack posts: `payload=` and the URL-encoded JSON.
    fn form(payload: &Value) -> Vec<u8> {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &payload.to_string())
            .finish()
            .into_bytes()
    }

    const HOLD: &str = "hold_3f2a9c0d1e4b4f6a8b7c6d5e4f3a2b1c";

    #[test]
    fn parses_a_realistic_approve_click() {
        let action = parse_action(&form(&slack_payload(APPROVE_ACTION_ID, HOLD))).unwrap();
        assert_eq!(
            action,
            SlackAction {
                user_id: "UA8RXUSPL".into(),
                decision: Decision::Approve,
                hold_id: HOLD.into(),
                response_url: Some(
                    "https://hooks.slack.com/actions/AABA1ABCD/1232321423432/D09sSasdasdAS9091209"
                        .into()
                ),
                channel_id: Some("CBR2V3XEX".into()),
                message_ts: Some("1548261231.000200".into()),
            }
        );
        let action = parse_action(&form(&slack_payload(REJECT_ACTION_ID, HOLD))).unwrap();
        assert_eq!(action.decision, Decision::Reject);
    }

    #[test]
    fn the_buttons_leash_sends_parse_back_to_their_hold() {
        // Round trip: take each button out of hold_message, click it the way
        // Slack reports a click, and read the same hold and decision back.
        let message = hold_message(&summary());
        let buttons = message["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["type"] == "actions")
            .unwrap()["elements"]
            .as_array()
            .unwrap()
            .clone();
        let mut decisions = Vec::new();
        for button in buttons {
            let mut payload = slack_payload("", "");
            payload["actions"][0]["action_id"] = button["action_id"].clone();
            payload["actions"][0]["value"] = button["value"].clone();
            let action = parse_action(&form(&payload)).unwrap();
            assert_eq!(action.hold_id, summary().hold_id);
            decisions.push(action.decision);
        }
        assert_eq!(decisions, [Decision::Approve, Decision::Reject]);
    }

    #[test]
    fn a_verified_click_end_to_end() {
        // Sign a click body the way Slack does, verify it, then parse it.
        let body = form(&slack_payload(APPROVE_ACTION_ID, HOLD));
        let secret = b"8f742231b10e8888abcd99yyyzzz85a5";
        let ts = "1700000000";
        let mut mac = keyed(secret).unwrap();
        mac.update(format!("v0:{ts}:").as_bytes());
        mac.update(&body);
        let sig = format!("v0={}", hex::encode(tag(mac)));
        assert_eq!(
            verify_request(secret, ts, &sig, &body, 1_700_000_060),
            Ok(())
        );
        assert_eq!(parse_action(&body).unwrap().hold_id, HOLD);
    }

    #[test]
    fn unknown_actions_and_missing_users_are_refused() {
        let refused = |payload: &Value| parse_action(&form(payload)).unwrap_err();

        // The example's own button is not one of leash's.
        assert_eq!(
            refused(&slack_payload("WaXA", "click_me_123")),
            SlackError::UnknownAction("WaXA".into())
        );
        // Near misses of the action id are unknown, not approvals.
        for id in ["leash_Approve", "leash_approve ", "approve", ""] {
            assert!(matches!(
                refused(&slack_payload(id, HOLD)),
                SlackError::UnknownAction(_)
            ));
        }
        let mut p = slack_payload(APPROVE_ACTION_ID, HOLD);
        p["actions"][0].as_object_mut().unwrap().remove("action_id");
        assert_eq!(refused(&p), SlackError::UnknownAction(String::new()));

        let mut p = slack_payload(APPROVE_ACTION_ID, HOLD);
        p.as_object_mut().unwrap().remove("user");
        assert_eq!(refused(&p), SlackError::MissingUser);
        let mut p = slack_payload(APPROVE_ACTION_ID, HOLD);
        p["user"].as_object_mut().unwrap().remove("id");
        assert_eq!(refused(&p), SlackError::MissingUser);
        // A user object with a display name but no ID is still no user.
        let mut p = slack_payload(APPROVE_ACTION_ID, HOLD);
        p["user"] = json!({ "username": "alice", "name": "alice" });
        assert_eq!(refused(&p), SlackError::MissingUser);
        for id in ["", "alice@example.com", "ua8rxuspl", "U"] {
            let mut p = slack_payload(APPROVE_ACTION_ID, HOLD);
            p["user"]["id"] = json!(id);
            assert!(matches!(refused(&p), SlackError::InvalidUser(_)), "{id:?}");
        }
        // A number where Slack sends a string is malformed JSON for us.
        let mut p = slack_payload(APPROVE_ACTION_ID, HOLD);
        p["user"]["id"] = json!(12345);
        assert!(matches!(refused(&p), SlackError::InvalidJson(_)));
    }

    #[test]
    fn malformed_clicks_are_errors_not_decisions() {
        let refused = |payload: &Value| parse_action(&form(payload)).unwrap_err();

        let mut p = slack_payload(APPROVE_ACTION_ID, HOLD);
        p["type"] = json!("view_submission");
        assert_eq!(
            refused(&p),
            SlackError::UnsupportedType("view_submission".into())
        );

        let mut p = slack_payload(APPROVE_ACTION_ID, HOLD);
        p["actions"] = json!([]);
        assert_eq!(refused(&p), SlackError::ActionCount(0));
        let mut p = slack_payload(REJECT_ACTION_ID, HOLD);
        let approve = slack_payload(APPROVE_ACTION_ID, HOLD)["actions"][0].clone();
        p["actions"].as_array_mut().unwrap().push(approve);
        assert_eq!(refused(&p), SlackError::ActionCount(2));

        let mut p = slack_payload(APPROVE_ACTION_ID, HOLD);
        p["actions"][0]["type"] = json!("static_select");
        assert_eq!(refused(&p), SlackError::NotAButton);

        for value in [
            "",
            "hold_",
            "approve:hold_1",
            "hold_1 ",
            "hold_a/b",
            "HOLD_1",
            &format!("hold_{}", "a".repeat(200)),
        ] {
            assert!(
                matches!(
                    refused(&slack_payload(APPROVE_ACTION_ID, value)),
                    SlackError::InvalidHoldId(_)
                ),
                "{value:?}"
            );
        }
        let mut p = slack_payload(APPROVE_ACTION_ID, HOLD);
        p["actions"][0].as_object_mut().unwrap().remove("value");
        assert!(matches!(refused(&p), SlackError::InvalidHoldId(_)));

        let mut p = slack_payload(APPROVE_ACTION_ID, HOLD);
        p["response_url"] = json!("http://169.254.169.254/latest/meta-data");
        assert_eq!(refused(&p), SlackError::InvalidResponseUrl);
        for url in [
            "http://example.com/x",
            "ftp://127.0.0.1/x",
            "https://",
            "http://localhost/x",
        ] {
            let mut p = slack_payload(APPROVE_ACTION_ID, HOLD);
            p["response_url"] = json!(url);
            assert_eq!(refused(&p), SlackError::InvalidResponseUrl, "{url}");
        }
        let mut p = slack_payload(APPROVE_ACTION_ID, HOLD);
        p["response_url"] = json!("http://127.0.0.1:9/response");
        assert!(parse_action(&form(&p)).unwrap().response_url.is_some());
        let mut p = slack_payload(APPROVE_ACTION_ID, HOLD);
        p.as_object_mut().unwrap().remove("response_url");
        assert_eq!(parse_action(&form(&p)).unwrap().response_url, None);
    }

    #[test]
    fn form_framing_is_strict() {
        assert_eq!(parse_action(b"").unwrap_err(), SlackError::MissingPayload);
        assert_eq!(
            parse_action(b"token=x&user=y").unwrap_err(),
            SlackError::MissingPayload
        );
        let one = String::from_utf8(form(&slack_payload(APPROVE_ACTION_ID, HOLD))).unwrap();
        let two = format!(
            "{one}&{}",
            String::from_utf8(form(&slack_payload(REJECT_ACTION_ID, HOLD))).unwrap()
        );
        assert_eq!(
            parse_action(two.as_bytes()).unwrap_err(),
            SlackError::DuplicatePayload
        );
        for body in [
            &b"payload="[..],
            b"payload=%7B",
            b"payload=null",
            b"payload=%5B%5D",
            b"payload=\xff\xfe",
        ] {
            assert!(
                matches!(parse_action(body).unwrap_err(), SlackError::InvalidJson(_)),
                "{body:?}"
            );
        }
        // A JSON key given twice is refused, not resolved first- or last-wins
        // (parsers disagree on which, and that disagreement is an attack).
        let twice = r#"{"type":"block_actions","user":{"id":"UA8RXUSPL"},"actions":[{"type":"button","action_id":"leash_reject","action_id":"leash_approve","value":"hold_1"}]}"#;
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", twice)
            .finish();
        assert!(matches!(
            parse_action(body.as_bytes()).unwrap_err(),
            SlackError::InvalidJson(_)
        ));
        // Unrelated extra form fields are ignored.
        let extra = format!("{one}&utf8=%E2%9C%93");
        assert!(parse_action(extra.as_bytes()).is_ok());
    }

    #[test]
    fn message_ts_falls_back_to_the_container() {
        let mut p = slack_payload(APPROVE_ACTION_ID, HOLD);
        p.as_object_mut().unwrap().remove("message");
        p["container"]["message_ts"] = json!("1700000000.000100");
        assert_eq!(
            parse_action(&form(&p)).unwrap().message_ts.as_deref(),
            Some("1700000000.000100")
        );
    }

    fn summary() -> HoldSummary {
        HoldSummary {
            hold_id: HOLD.into(),
            agent: "invoice-bot".into(),
            vendor: "acme".into(),
            operation: "payout".into(),
            amount: "1,800.00 EUR".into(),
            beneficiary: Some("ACME GmbH".into()),
            rules: vec![
                "large-payouts: amount above 1,000.00 EUR".into(),
                "new-beneficiary: beneficiary not in the whitelist".into(),
            ],
            approvers_needed: "1 of finance".into(),
            expires_at: "2026-11-26T09:30:00Z".into(),
            ..HoldSummary::default()
        }
    }

    fn blocks_of_type<'a>(message: &'a Value, kind: &str) -> Vec<&'a Value> {
        message["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == kind)
            .collect()
    }

    #[test]
    fn hold_message_has_the_facts_and_both_buttons_bound_to_the_hold() {
        let m = hold_message(&summary());
        assert_eq!(blocks_of_type(&m, "header").len(), 1);

        let actions = blocks_of_type(&m, "actions");
        assert_eq!(actions.len(), 1);
        let buttons = actions[0]["elements"].as_array().unwrap();
        assert_eq!(buttons.len(), 2);
        assert_eq!(buttons[0]["type"], "button");
        assert_eq!(buttons[0]["action_id"], APPROVE_ACTION_ID);
        assert_eq!(buttons[0]["style"], "primary");
        assert_eq!(buttons[0]["value"], HOLD);
        assert_eq!(buttons[0]["text"]["text"], "Approve");
        assert!(buttons[0]["confirm"].is_object());
        assert_eq!(buttons[1]["action_id"], REJECT_ACTION_ID);
        assert_eq!(buttons[1]["style"], "danger");
        assert_eq!(buttons[1]["value"], HOLD);
        assert_eq!(buttons[1]["text"]["text"], "Reject");

        let fields: Vec<&str> = blocks_of_type(&m, "section")[0]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["text"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "*Amount*\n1,800.00 EUR",
                "*Vendor*\nacme · payout",
                "*Beneficiary*\nACME GmbH",
                "*Agent*\ninvoice-bot",
            ]
        );
        let text = m.to_string();
        assert!(text.contains("large-payouts: amount above 1,000.00 EUR"));
        assert!(text.contains("new-beneficiary"));
        assert!(text.contains("1 of finance"));
        // 2026-11-26T09:30:00Z, as a date token with the RFC 3339 fallback.
        assert!(
            text.contains("<!date^1795685400^{date_short_pretty} at {time}|2026-11-26T09:30:00Z>")
        );
        assert!(m["text"].as_str().unwrap().contains("1,800.00 EUR"));
    }

    #[test]
    fn agent_supplied_text_cannot_inject_markup() {
        let mut hold = summary();
        hold.beneficiary = Some("<!channel> <https://evil.example|ACME GmbH> & co".into());
        hold.agent = "bot\n*Amount*\n1.00 EUR".into();
        hold.operation = "payout\u{202E}moc.lapyap".into();
        hold.rules = vec!["r1: <@U024BE7LH> said ok".into()];
        let m = hold_message(&hold);

        let fields = blocks_of_type(&m, "section")[0]["fields"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(
            fields[2]["text"],
            "*Beneficiary*\n&lt;!channel&gt; &lt;https://evil.example|ACME GmbH&gt; &amp; co"
        );
        // Line breaks flattened: the agent cannot add a fake "Amount" line.
        assert_eq!(fields[3]["text"], "*Agent*\nbot *Amount* 1.00 EUR");
        // The override character is gone.
        assert_eq!(fields[1]["text"], "*Vendor*\nacme · payoutmoc.lapyap");
        for f in &fields {
            assert_eq!(f["verbatim"], true);
        }
        let all = m.to_string();
        assert!(!all.contains("<!channel>"));
        assert!(!all.contains("<@U024BE7LH>"));
        assert!(!all.contains("<https://evil"));
    }

    #[test]
    fn long_values_and_many_rules_are_bounded() {
        let mut hold = summary();
        hold.beneficiary = Some("&".repeat(10_000));
        hold.rules = (0..25).map(|i| format!("rule-{i}")).collect();
        let m = hold_message(&hold);
        let sections = blocks_of_type(&m, "section");
        let beneficiary = sections[0]["fields"][2]["text"].as_str().unwrap();
        assert!(beneficiary.chars().count() < 2000, "{}", beneficiary.len());
        let rules = sections[1]["text"]["text"].as_str().unwrap();
        assert!(rules.contains("rule-9"));
        assert!(!rules.contains("rule-10"));
        assert!(rules.ends_with("…and 15 more"));
        assert!(rules.len() < 3000);
    }

    #[test]
    fn missing_beneficiary_and_unparseable_expiry_are_shown_as_such() {
        let mut hold = summary();
        hold.beneficiary = None;
        hold.expires_at = "tomorrow <soon>".into();
        hold.rules.clear();
        let m = hold_message(&hold);
        let text = m.to_string();
        assert!(text.contains("*Beneficiary*\\n_not stated in the request_"));
        assert!(text.contains("Expires tomorrow &lt;soon&gt;"));
        assert!(text.contains("_none recorded_"));
    }

    #[test]
    fn resolved_message_has_no_buttons_and_says_who_decided() {
        let m = resolved_message(&summary(), "approved", "alice <admin>");
        assert!(blocks_of_type(&m, "actions").is_empty());
        assert!(!m.to_string().contains(APPROVE_ACTION_ID));
        assert_eq!(m["replace_original"], true);
        assert_eq!(
            blocks_of_type(&m, "header")[0]["text"]["text"],
            "Hold approved"
        );
        let last = m["blocks"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["text"]["text"], "*approved* by alice &lt;admin&gt;");
        // The facts are still there, for the record.
        assert!(m.to_string().contains("1,800.00 EUR"));

        let expired = resolved_message(&summary(), "expired", "");
        let last = expired["blocks"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(last["text"]["text"], "*expired*");
    }

    #[test]
    fn flatten_and_escape() {
        assert_eq!(flatten("  a\r\nb\tc  ", 100), "a  b c");
        assert_eq!(flatten("abcdef", 3), "ab…");
        assert_eq!(flatten("abc", 3), "abc");
        assert_eq!(flatten("\u{2066}x\u{2069}", 3), "x");
        assert_eq!(escape("a&b<c>d"), "a&amp;b&lt;c&gt;d");
        assert_eq!(inert("<&>"), "&lt;&amp;&gt;");
    }
}
