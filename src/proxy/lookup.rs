//! Lookups (SPEC §4.2a): the GETs (or, for a vendor whose reads are POSTs,
//! the read POSTs) leash makes when a request leaves out
//! what its policy needs, such as a refund's currency, which is its
//! charge's.
//!
//! A lookup goes to the request's own host through the upstream client,
//! with the agent's own credentials (`Authorization`) and acting account
//! (the adapter's account header): leash learns only what the agent itself
//! may read, about the account the request acts as. The answer must be a
//! 2xx with a strict-JSON body; anything else is a failure, which leaves the
//! request unreadable (never approved). Successful answers are cached for
//! [`CACHE_FOR`], keyed by everything that could change them: agent, host,
//! path, account and a digest of the credentials (never the credentials).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use http::request::Parts;
use http::{Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use sha2::{Digest, Sha256};

use super::intercept::Tunnel;
use super::Proxy;
use crate::adapters::json::{self, Json};
use crate::intent::Lookup;

/// How long a looked-up object is reused: long enough for an SDK's retry
/// and a held request's release, short enough that a refund made meanwhile
/// elsewhere shows in the refundable amount soon.
pub const CACHE_FOR: Duration = Duration::from_secs(30);

/// How long one lookup may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// A looked-up object larger than this is refused.
const MAX_ANSWER: usize = 1024 * 1024;

/// At most this many cached answers; the oldest go first beyond it.
const MAX_ENTRIES: usize = 4096;

/// Looked-up objects by [`cache_key`].
#[derive(Default)]
pub struct LookupCache {
    entries: Mutex<HashMap<[u8; 32], Cached>>,
}

/// One cached object: when it was put, what it is, and the request whose
/// answer taught it (`None`: it was looked up).
#[derive(Debug, Clone)]
struct Cached {
    at: Instant,
    json: Json,
    learned_from: Option<String>,
}

/// A lookup's answer: the object, and whether it was learned rather than
/// looked up (then the request whose answer taught it).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Looked {
    pub json: Json,
    pub learned_from: Option<String>,
}

impl LookupCache {
    fn get(&self, key: &[u8; 32]) -> Option<Looked> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|c| c.at.elapsed() < CACHE_FOR)
            .map(|c| Looked {
                json: c.json.clone(),
                learned_from: c.learned_from.clone(),
            })
    }

    fn put(&self, key: [u8; 32], json: Json, learned_from: Option<String>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        // Expired entries are swept only when the cache is full: a sweep
        // per put would walk every entry under the lock on each lookup.
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, c| c.at.elapsed() < CACHE_FOR);
        }
        if entries.len() >= MAX_ENTRIES {
            if let Some(oldest) = entries.iter().min_by_key(|(_, c)| c.at).map(|(k, _)| *k) {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            key,
            Cached {
                at: Instant::now(),
                json,
                learned_from,
            },
        );
    }

    fn remove(&self, keys: &[[u8; 32]]) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        for key in keys {
            entries.remove(key);
        }
    }

    /// Drops what was looked up at `paths` for `scope`: a write that was
    /// forwarded may have changed it (a refund changes its charge's
    /// `amount_refunded`), and a cached copy would then read the next
    /// request against the old object.
    pub(super) fn forget(&self, scope: &Scope, paths: &[String]) {
        let keys: Vec<[u8; 32]> = paths.iter().map(|path| scope.key(path)).collect();
        self.remove(&keys);
    }

    /// Keeps what an adapter learned from the vendor's answer to `from`
    /// (`POST /v1/payment_intents`) as if it had been looked up, for the
    /// same scope; intents cite it as learned.
    pub(super) fn learned(&self, scope: &Scope, from: &str, objects: Vec<(String, Json)>) {
        for (path, json) in objects {
            self.put(scope.key(&path), json, Some(from.to_owned()));
        }
    }
}

/// Whose view of the vendor a lookup (or a learned object) is: the
/// agent, the host, the credentials and the acting account of the request
/// it is for. Two requests share cached objects only when all agree.
pub(super) struct Scope {
    agent: String,
    host: String,
    /// The adapter's [`lookup_headers`](crate::adapters::Adapter::lookup_headers)
    /// as the request carried them: credentials, API version.
    credentials: Vec<(HeaderName, HeaderValue)>,
    /// The adapter's [`secret_params`](crate::adapters::Adapter::secret_params)
    /// as the request's query carried them, raw `name=value` pieces: the
    /// Graph API's `access_token` lives there, not in a header.
    query_credentials: Vec<String>,
    account: Option<(HeaderName, HeaderValue)>,
    /// The account as the adapter reads it in that header
    /// ([`Adapter::account_of`](crate::adapters::Adapter::account_of)):
    /// what the cache key holds, never a signature.
    account_id: Option<String>,
}

impl Scope {
    /// The scope of a request of `tunnel` whose head is `parts`.
    pub(super) fn of(tunnel: &Tunnel, parts: &Parts) -> Scope {
        let account = tunnel
            .shape()
            .and_then(|a| a.account_header())
            .and_then(|name| HeaderName::from_bytes(name.as_bytes()).ok())
            .and_then(|name| {
                let value = parts.headers.get(&name)?.clone();
                Some((name, value))
            });
        let copied = tunnel
            .shape()
            .map(|a| a.lookup_headers())
            .unwrap_or_else(|| vec![AUTHORIZATION.as_str()]);
        let credentials = copied
            .into_iter()
            .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
            .filter_map(|name| {
                let value = parts.headers.get(&name)?.clone();
                Some((name, value))
            })
            .collect();
        let secret = tunnel
            .shape()
            .map(|a| a.secret_params())
            .unwrap_or_default();
        let query_credentials = query_pieces(parts.uri.query(), &secret);
        let account_id = tunnel.shape().and_then(|adapter| {
            let (_, value) = account.as_ref()?;
            adapter.account_of(value.to_str().ok()?).map(str::to_owned)
        });
        Scope {
            agent: tunnel.agent.clone(),
            host: tunnel.host.clone(),
            credentials,
            query_credentials,
            account,
            account_id,
        }
    }

    /// `path` with the query credentials appended: what is sent. The path
    /// itself (without them) is what logs, reasons and the cache name.
    fn target(&self, path: &str) -> String {
        if self.query_credentials.is_empty() {
            return path.to_owned();
        }
        let joiner = if path.contains('?') { '&' } else { '?' };
        format!("{path}{joiner}{}", self.query_credentials.join("&"))
    }

    fn key(&self, path: &str) -> [u8; 32] {
        // Every copied header is part of what the vendor answers to: name
        // and value framed, so no two sets share a key.
        let mut credentials = Vec::new();
        for (name, value) in &self.credentials {
            for part in [name.as_str().as_bytes(), value.as_bytes()] {
                credentials.extend_from_slice(&(part.len() as u64).to_be_bytes());
                credentials.extend_from_slice(part);
            }
        }
        for piece in &self.query_credentials {
            credentials.extend_from_slice(&(piece.len() as u64).to_be_bytes());
            credentials.extend_from_slice(piece.as_bytes());
        }
        cache_key(
            &self.agent,
            &self.host,
            path,
            (!credentials.is_empty()).then_some(&credentials[..]),
            self.account_id.as_deref().map(str::as_bytes),
        )
    }
}

impl Proxy {
    /// Performs `lookup` for a request of `tunnel` in `scope`.
    pub(super) async fn look_up(
        &self,
        tunnel: &Tunnel,
        scope: &Scope,
        lookup: &Lookup,
    ) -> Result<Looked, String> {
        let method = if lookup.body.is_some() {
            Method::POST
        } else {
            Method::GET
        };
        let what = format!("{method} {}", lookup.path);
        // Keyed by path alone, like the facts: an adapter gives lookups
        // with different bodies different paths (see `Lookup::path`).
        let key = scope.key(&lookup.path);
        if let Some(looked) = self.lookups.get(&key) {
            self.metrics.lookup(tunnel.vendor(), "cached");
            return Ok(looked);
        }
        if !tunnel.shape().is_some_and(|a| a.can_look_up()) {
            // A vendor leash cannot ask itself (AWS: every request is
            // signed with a key leash never holds): only learned facts.
            return Err(self.failed(
                tunnel,
                &what,
                &format!(
                    "it was not learned from an answer that passed through leash, and leash cannot ask {} itself",
                    tunnel.vendor()
                ),
            ));
        }
        let uri = format!(
            "https://{}{}",
            tunnel.authority(),
            scope.target(&lookup.path)
        );
        let mut request = Request::builder().method(method).uri(uri);
        if lookup.body.is_some() {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in &scope.credentials {
            request = request.header(name, value);
        }
        if let Some((name, account)) = &scope.account {
            request = request.header(name, account);
        }
        let body = Bytes::from(lookup.body.clone().unwrap_or_default());
        let request = match request.body(Full::new(body)) {
            Ok(request) => request,
            Err(error) => return Err(self.failed(tunnel, &what, &error.to_string())),
        };
        let answer = tokio::time::timeout(TIMEOUT, async {
            let response = self
                .upstream
                .send(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| format!("its answer could not be read: {e}"))?
                .to_bytes();
            if !status.is_success() {
                return Err(format!("{} answered {status}", tunnel.vendor()));
            }
            json::parse(&body).map_err(|e| e.to_string())
        })
        .await;
        match answer {
            Ok(Ok(json)) => {
                self.metrics.lookup(tunnel.vendor(), "ok");
                tracing::debug!(agent = %tunnel.agent, host = %tunnel.host, lookup = %what, why = %lookup.why, "looked up");
                self.lookups.put(key, json.clone(), None);
                Ok(Looked {
                    json,
                    learned_from: None,
                })
            }
            Ok(Err(reason)) => Err(self.failed(tunnel, &what, &reason)),
            Err(_) => Err(self.failed(
                tunnel,
                &what,
                &format!("no answer within {}s", TIMEOUT.as_secs()),
            )),
        }
    }

    fn failed(&self, tunnel: &Tunnel, what: &str, reason: &str) -> String {
        self.metrics.lookup(tunnel.vendor(), "failed");
        let reason = crate::audit::mask_card_numbers(reason);
        tracing::warn!(agent = %tunnel.agent, host = %tunnel.host, lookup = %crate::audit::mask_card_numbers(what), %reason, "lookup failed");
        format!("the lookup {what} failed: {reason}")
    }
}

/// The raw `name=value` pieces of `query` whose (percent-decoded) name is
/// one of `names`, in order, exactly as the agent sent them.
fn query_pieces(query: Option<&str>, names: &[&str]) -> Vec<String> {
    let Some(query) = query else {
        return Vec::new();
    };
    if names.is_empty() {
        return Vec::new();
    }
    query
        .split('&')
        .filter(|piece| {
            let name = piece.split('=').next().unwrap_or("");
            let decoded: String = form_urlencoded::parse(name.as_bytes())
                .map(|(k, _)| k.into_owned())
                .next()
                .unwrap_or_default();
            names.contains(&decoded.as_str())
        })
        .map(str::to_owned)
        .collect()
}

/// SHA-256 over everything that decides what a lookup answers, framed so
/// that no two different tuples share a key.
fn cache_key(
    agent: &str,
    host: &str,
    path: &str,
    credentials: Option<&[u8]>,
    account: Option<&[u8]>,
) -> [u8; 32] {
    let mut h = Sha256::new();
    let parts: [&[u8]; 4] = [
        agent.as_bytes(),
        host.as_bytes(),
        path.as_bytes(),
        credentials.unwrap_or(b"\0none"),
    ];
    for part in parts.into_iter().chain(account) {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_key_separates_agents_hosts_credentials_and_accounts() {
        let charge = "/v1/charges/ch_1";
        let key = |agent: &str, host: &str, path: &str, creds: Option<&[u8]>, account| {
            cache_key(agent, host, path, creds, account)
        };
        let host = "api.example.com";
        let sk1: Option<&[u8]> = Some(b"Bearer sk_1");
        let base = key("a", host, charge, sk1, None);
        assert_eq!(base, key("a", host, charge, sk1, None));
        assert_ne!(base, key("b", host, charge, sk1, None));
        assert_ne!(base, key("a", "api.example.org", charge, sk1, None));
        assert_ne!(base, key("a", host, "/v1/charges/ch_2", sk1, None));
        assert_ne!(base, key("a", host, charge, Some(b"Bearer sk_2"), None));
        assert_ne!(base, key("a", host, charge, None, None));
        assert_ne!(base, key("a", host, charge, sk1, Some(b"acct_1")));
    }

    #[test]
    fn forgetting_drops_only_the_paths_of_that_scope() {
        let cache = LookupCache::default();
        let scope = |agent: &str| Scope {
            agent: agent.into(),
            host: "api.example.com".into(),
            credentials: Vec::new(),
            query_credentials: Vec::new(),
            account: None,
            account_id: None,
        };
        let (a, b) = (scope("a"), scope("b"));
        cache.learned(
            &a,
            "POST /x",
            vec![
                ("/x/1".into(), Json::Bool(true)),
                ("/x/2".into(), Json::Null),
            ],
        );
        cache.learned(&b, "POST /x", vec![("/x/1".into(), Json::Bool(false))]);
        cache.forget(&a, &["/x/1".to_owned()]);
        let json = |key: [u8; 32]| cache.get(&key).map(|l| l.json);
        assert_eq!(json(a.key("/x/1")), None);
        assert_eq!(json(a.key("/x/2")), Some(Json::Null));
        assert_eq!(json(b.key("/x/1")), Some(Json::Bool(false)));
        assert_eq!(
            cache.get(&a.key("/x/2")).and_then(|l| l.learned_from),
            Some("POST /x".to_owned())
        );
    }

    #[test]
    fn query_credentials_are_copied_as_sent_and_key_the_cache() {
        let names = ["access_token", "appsecret_proof"];
        assert_eq!(
            query_pieces(
                Some("fields=x&access_token=EA%41B&appsecret_proof=ab&access%5Ftoken=2"),
                &names
            ),
            vec![
                "access_token=EA%41B",
                "appsecret_proof=ab",
                "access%5Ftoken=2"
            ]
        );
        assert!(query_pieces(Some("access_token=x"), &[]).is_empty());
        assert!(query_pieces(None, &names).is_empty());
        let scope = |pieces: Vec<String>| Scope {
            agent: "a".into(),
            host: "graph.facebook.com".into(),
            credentials: Vec::new(),
            query_credentials: pieces,
            account: None,
            account_id: None,
        };
        let a = scope(vec!["access_token=1".into()]);
        let b = scope(vec!["access_token=2".into()]);
        assert_ne!(
            a.key("/act_1?fields=currency"),
            b.key("/act_1?fields=currency")
        );
        assert_eq!(
            a.target("/act_1?fields=currency"),
            "/act_1?fields=currency&access_token=1"
        );
        assert_eq!(a.target("/act_1"), "/act_1?access_token=1");
        assert_eq!(scope(Vec::new()).target("/x"), "/x");
    }

    #[test]
    fn cached_answers_expire_and_the_cache_is_bounded() {
        let cache = LookupCache::default();
        for i in 0..(MAX_ENTRIES + 10) {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(i as u64).to_be_bytes());
            cache.put(key, Json::Null, None);
        }
        assert!(cache.entries.lock().unwrap().len() <= MAX_ENTRIES);
        let key = [9u8; 32];
        cache.put(key, Json::Bool(true), None);
        assert_eq!(cache.get(&key).map(|l| l.json), Some(Json::Bool(true)));
        cache.entries.lock().unwrap().get_mut(&key).unwrap().at =
            Instant::now() - CACHE_FOR - Duration::from_secs(1);
        assert_eq!(cache.get(&key), None);
    }
}
