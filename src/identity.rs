//! Which agent is speaking (SPEC §2).
//!
//! Agents name themselves with proxy credentials, which every common HTTP
//! client takes from the proxy URL (`http://growth-agent:TOKEN@127.0.0.1:8080`).
//! Policies are chosen by agent name, so a name must never be claimable
//! without its token: tokens are compared as SHA-256 digests in constant time.

use std::collections::BTreeMap;

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::AgentCredential;

/// Why a request could not be tied to an agent. Every variant becomes a 407.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("proxy credentials required (no Proxy-Authorization and no default_agent)")]
    Missing,
    #[error("Proxy-Authorization is not Basic credentials")]
    Malformed,
    #[error("agent {0:?} is not listed under agents:")]
    UnknownAgent(String),
    #[error("wrong token for agent {0:?}")]
    WrongToken(String),
}

impl IdentityError {
    /// What the agent is told. An unlisted agent, a wrong token and
    /// unreadable credentials get the same words, so the answer never says
    /// which agent names exist; the detail (`Display`) goes to leash's log.
    pub fn public_message(&self) -> &'static str {
        match self {
            IdentityError::Missing => {
                "proxy credentials required: send the agent name and token in the proxy URL (http://AGENT:TOKEN@host:port)"
            }
            IdentityError::Malformed
            | IdentityError::UnknownAgent(_)
            | IdentityError::WrongToken(_) => {
                "proxy authentication failed: the agent name and token in the proxy URL were not accepted"
            }
        }
    }
}

/// Resolves proxy credentials to an agent name.
#[derive(Debug, Clone, Default)]
pub struct Identities {
    agents: BTreeMap<String, AgentCredential>,
    default_agent: Option<String>,
}

impl Identities {
    pub fn new(agents: BTreeMap<String, AgentCredential>, default_agent: Option<String>) -> Self {
        Self {
            agents,
            default_agent,
        }
    }

    /// The agent a request speaks for, from its `Proxy-Authorization` value.
    ///
    /// - No credentials: `default_agent`, or an error.
    /// - Credentials for an agent listed with a `token_sha256`: the password
    ///   must hash to it.
    /// - Credentials for an agent not listed: accepted only while `agents:`
    ///   is empty (a dev setup with no credentials at all). Once any agent is
    ///   listed, leash knows every agent it serves, and an unknown name is a
    ///   typo or an impersonation attempt.
    pub fn identify(&self, proxy_authorization: Option<&[u8]>) -> Result<String, IdentityError> {
        let Some(header) = proxy_authorization else {
            return self.default_agent.clone().ok_or(IdentityError::Missing);
        };
        let (user, password) = parse_basic(header).ok_or(IdentityError::Malformed)?;
        if user.is_empty() {
            return Err(IdentityError::Malformed);
        }
        match self.agents.get(&user) {
            Some(credential) => match &credential.token_sha256 {
                Some(expected) => {
                    let actual: [u8; 32] = Sha256::digest(password.as_bytes()).into();
                    if bool::from(actual.ct_eq(expected)) {
                        Ok(user)
                    } else {
                        Err(IdentityError::WrongToken(user))
                    }
                }
                None => Ok(user),
            },
            None if self.agents.is_empty() => Ok(user),
            None => Err(IdentityError::UnknownAgent(user)),
        }
    }
}

/// Parses `Basic base64(user:password)`; the scheme is case-insensitive.
fn parse_basic(header: &[u8]) -> Option<(String, String)> {
    let header = std::str::from_utf8(header).ok()?.trim();
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':').unwrap_or((decoded.as_str(), ""));
    Some((user.to_string(), password.to_string()))
}

/// `Basic` credentials for a user and password, as clients send them.
pub fn basic_credentials(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    fn identities() -> Identities {
        let mut agents = BTreeMap::new();
        agents.insert(
            "growth-agent".to_string(),
            AgentCredential {
                token_sha256: Some(digest("s3cret")),
            },
        );
        agents.insert(
            "open-agent".to_string(),
            AgentCredential { token_sha256: None },
        );
        Identities::new(agents, None)
    }

    #[test]
    fn right_token_names_the_agent() {
        let header = basic_credentials("growth-agent", "s3cret");
        assert_eq!(
            identities().identify(Some(header.as_bytes())),
            Ok("growth-agent".to_string())
        );
    }

    #[test]
    fn wrong_or_missing_token_is_refused() {
        for password in ["wrong", "", "s3cret "] {
            let header = basic_credentials("growth-agent", password);
            assert_eq!(
                identities().identify(Some(header.as_bytes())),
                Err(IdentityError::WrongToken("growth-agent".to_string()))
            );
        }
    }

    #[test]
    fn unlisted_agent_is_refused_once_agents_are_listed() {
        let header = basic_credentials("payout-agent", "anything");
        assert_eq!(
            identities().identify(Some(header.as_bytes())),
            Err(IdentityError::UnknownAgent("payout-agent".to_string()))
        );
        let open = Identities::default();
        assert_eq!(
            open.identify(Some(header.as_bytes())),
            Ok("payout-agent".to_string())
        );
    }

    #[test]
    fn listed_agent_without_token_needs_no_password() {
        let header = basic_credentials("open-agent", "");
        assert_eq!(
            identities().identify(Some(header.as_bytes())),
            Ok("open-agent".to_string())
        );
    }

    #[test]
    fn no_credentials_fall_back_to_default_agent() {
        assert_eq!(identities().identify(None), Err(IdentityError::Missing));
        let with_default = Identities::new(BTreeMap::new(), Some("cs-agent".to_string()));
        assert_eq!(with_default.identify(None), Ok("cs-agent".to_string()));
    }

    #[test]
    fn unknown_agent_and_wrong_token_read_the_same() {
        let unknown = IdentityError::UnknownAgent("ghost".into());
        let wrong = IdentityError::WrongToken("growth-agent".into());
        assert_eq!(unknown.public_message(), wrong.public_message());
        assert_eq!(
            IdentityError::Malformed.public_message(),
            wrong.public_message()
        );
        assert!(!wrong.public_message().contains("growth-agent"));
    }

    #[test]
    fn malformed_headers_are_refused() {
        for header in [
            "Bearer abc",
            "Basic !!!",
            "Basic",
            "Basic OnBhc3N3b3Jk", /* ":password" */
        ] {
            assert_eq!(
                identities().identify(Some(header.as_bytes())),
                Err(IdentityError::Malformed),
                "{header}"
            );
        }
    }
}
