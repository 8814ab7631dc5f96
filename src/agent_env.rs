//! What `leash env` prints: the environment an agent's process needs so
//! that every HTTP stack it may use goes through leash and trusts its CA.
//!
//! Each variable is here because some client reads it and no other
//! (research §0.1): the proxy variables in both cases (gRPC and some
//! Python stacks read only the lower-case ones), `SSL_CERT_FILE` (OpenSSL,
//! Go, httpx), `REQUESTS_CA_BUNDLE` (requests), `AWS_CA_BUNDLE` (botocore
//! reads it before `REQUESTS_CA_BUNDLE`, so a pre-set one would silently
//! win), `CURL_CA_BUNDLE`, `GRPC_DEFAULT_SSL_ROOTS_FILE_PATH` (the only CA
//! variable gRPC reads; google-ads), `NODE_EXTRA_CA_CERTS` and
//! `NODE_USE_ENV_PROXY=1` (Node ≥ 22.21 / 24.5 route `fetch` and the
//! global agents through the proxy variables only when it is set).
//!
//! The variables that *replace* a trust store point at the bundle (system
//! roots plus leash's CA), so hosts leash tunnels keep verifying; Node's
//! `NODE_EXTRA_CA_CERTS` adds to its roots and gets leash's CA alone.

use std::path::Path;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{Map, Value};

/// The environment variable that holds the agent's proxy token.
pub const TOKEN_VAR: &str = "LEASH_AGENT_TOKEN";

/// How `leash env` writes the variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `export NAME="value"` for sh, bash, zsh: `eval "$(leash env)"`.
    Sh,
    /// `set -gx NAME "value"` for fish: `leash env --format fish | source`.
    Fish,
    /// `NAME=value` lines for `.env` files and `docker run --env-file`.
    Dotenv,
    /// One JSON object, for container specs and programs.
    Json,
}

/// The agent's proxy token, and how the output may name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// The agent needs none.
    None,
    /// Set in [`TOKEN_VAR`]: the shell formats name the variable (the
    /// secret stays out of the output); the file formats, which no shell
    /// expands, carry the value.
    FromEnv(String),
    /// Given on the command line: written out in every format.
    Given(String),
}

/// Bytes kept as they are in a URL's user name or password: RFC 3986's
/// unreserved characters. Everything else (`@`, `:`, `/`, `%`, …) is
/// percent-encoded, or the URL would mean another host or user.
const USERINFO: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The variables, in the order they are printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentEnv {
    vars: Vec<(&'static str, Piece)>,
}

/// A value, possibly with the token inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Plain(String),
    /// `before` + the token + `after`.
    WithToken {
        before: String,
        token: Token,
        after: String,
    },
}

impl AgentEnv {
    /// The environment for `agent` going through the proxy at `listen`,
    /// trusting `bundle` (roots + leash's CA) and `ca` (leash's CA alone).
    pub fn new(agent: &str, token: Token, listen: &str, bundle: &Path, ca: &Path) -> AgentEnv {
        let user = utf8_percent_encode(agent, USERINFO).to_string();
        let proxy = match token {
            Token::None => Piece::Plain(format!("http://{user}@{listen}")),
            token => Piece::WithToken {
                before: format!("http://{user}:"),
                token,
                after: format!("@{listen}"),
            },
        };
        let bundle = bundle.display().to_string();
        let ca = ca.display().to_string();
        let plain = |v: &str| Piece::Plain(v.to_owned());
        AgentEnv {
            vars: vec![
                ("HTTPS_PROXY", proxy.clone()),
                ("HTTP_PROXY", proxy.clone()),
                ("https_proxy", proxy.clone()),
                ("http_proxy", proxy),
                ("SSL_CERT_FILE", plain(&bundle)),
                ("REQUESTS_CA_BUNDLE", plain(&bundle)),
                ("AWS_CA_BUNDLE", plain(&bundle)),
                ("CURL_CA_BUNDLE", plain(&bundle)),
                ("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", plain(&bundle)),
                ("NODE_EXTRA_CA_CERTS", plain(&ca)),
                ("NODE_USE_ENV_PROXY", plain("1")),
            ],
        }
    }

    /// The variables with their values as the process will see them
    /// (the token in full): what the JSON and dotenv formats write.
    pub fn resolved(&self) -> Vec<(&'static str, String)> {
        self.vars
            .iter()
            .map(|(name, piece)| (*name, piece.resolved()))
            .collect()
    }

    /// The text `leash env` prints in `format`.
    pub fn render(&self, format: Format, comment: &str) -> String {
        let mut out = String::new();
        match format {
            Format::Sh | Format::Fish | Format::Dotenv => {
                out.push_str(&format!("# {comment}\n"));
                for (name, piece) in &self.vars {
                    let line = match format {
                        Format::Sh => format!("export {name}=\"{}\"", piece.shell("${", "}")),
                        Format::Fish => format!("set -gx {name} \"{}\"", piece.shell("$", "")),
                        _ => format!("{name}={}", dotenv_value(&piece.resolved())),
                    };
                    out.push_str(&line);
                    out.push('\n');
                }
            }
            Format::Json => {
                let object: Map<String, Value> = self
                    .resolved()
                    .into_iter()
                    .map(|(name, value)| (name.to_owned(), Value::String(value)))
                    .collect();
                out.push_str(&Value::Object(object).to_string());
                out.push('\n');
            }
        }
        out
    }
}

impl Piece {
    fn resolved(&self) -> String {
        match self {
            Piece::Plain(value) => value.clone(),
            Piece::WithToken {
                before,
                token,
                after,
            } => {
                let token = match token {
                    Token::None => String::new(),
                    Token::FromEnv(t) | Token::Given(t) => {
                        utf8_percent_encode(t, USERINFO).to_string()
                    }
                };
                format!("{before}{token}{after}")
            }
        }
    }

    /// The value inside a double-quoted shell string, naming the token's
    /// variable (`open` + name + `close`) when the shell can expand it to
    /// the same URL. A token that must be percent-encoded in a URL is
    /// written encoded instead: the shell would expand it raw.
    fn shell(&self, open: &str, close: &str) -> String {
        match self {
            Piece::WithToken {
                before,
                token: Token::FromEnv(t),
                after,
            } if utf8_percent_encode(t, USERINFO).to_string() == *t => format!(
                "{}{open}{TOKEN_VAR}{close}{}",
                shell_escape(before),
                shell_escape(after)
            ),
            other => shell_escape(&other.resolved()),
        }
    }
}

/// Escapes what a double-quoted string in sh (and fish) would expand.
fn shell_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A dotenv value: bare when every reader takes it literally, else
/// double-quoted with `"` and `\` escaped.
fn dotenv_value(value: &str) -> String {
    let bare = value
        .chars()
        .all(|c| !c.is_whitespace() && !matches!(c, '"' | '\'' | '#' | '\\' | '$' | '`'));
    if bare {
        value.to_owned()
    } else {
        let mut out = String::from("\"");
        for c in value.chars() {
            if matches!(c, '"' | '\\' | '$' | '`') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn env(token: Token) -> AgentEnv {
        AgentEnv::new(
            "growth-agent",
            token,
            "127.0.0.1:8080",
            &PathBuf::from("/srv/leash/certs/leash-bundle.pem"),
            &PathBuf::from("/srv/leash/certs/leash-ca.pem"),
        )
    }

    fn value(env: &AgentEnv, name: &str) -> String {
        env.resolved()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
            .unwrap()
    }

    #[test]
    fn every_stack_gets_its_variable() {
        let env = env(Token::None);
        let names: Vec<&str> = env.resolved().iter().map(|(n, _)| *n).collect();
        for name in [
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "SSL_CERT_FILE",
            "REQUESTS_CA_BUNDLE",
            "AWS_CA_BUNDLE",
            "CURL_CA_BUNDLE",
            "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
            "NODE_EXTRA_CA_CERTS",
            "NODE_USE_ENV_PROXY",
        ] {
            assert!(names.contains(&name), "{name}");
        }
        assert_eq!(
            value(&env, "HTTPS_PROXY"),
            "http://growth-agent@127.0.0.1:8080"
        );
        assert_eq!(
            value(&env, "NODE_EXTRA_CA_CERTS"),
            "/srv/leash/certs/leash-ca.pem"
        );
        assert_eq!(
            value(&env, "AWS_CA_BUNDLE"),
            "/srv/leash/certs/leash-bundle.pem"
        );
    }

    #[test]
    fn shells_name_the_token_variable_files_carry_the_value() {
        let env = env(Token::FromEnv("dev-token-growth".into()));
        let sh = env.render(Format::Sh, "c");
        assert!(
            sh.contains(
                r#"export HTTPS_PROXY="http://growth-agent:${LEASH_AGENT_TOKEN}@127.0.0.1:8080""#
            ),
            "{sh}"
        );
        assert!(!sh.contains("dev-token-growth"), "{sh}");
        let fish = env.render(Format::Fish, "c");
        assert!(
            fish.contains(
                r#"set -gx https_proxy "http://growth-agent:$LEASH_AGENT_TOKEN@127.0.0.1:8080""#
            ),
            "{fish}"
        );
        let dotenv = env.render(Format::Dotenv, "c");
        assert!(
            dotenv.contains("HTTPS_PROXY=http://growth-agent:dev-token-growth@127.0.0.1:8080\n"),
            "{dotenv}"
        );
        let json: Value = serde_json::from_str(&env.render(Format::Json, "c")).unwrap();
        assert_eq!(
            json["HTTP_PROXY"],
            "http://growth-agent:dev-token-growth@127.0.0.1:8080"
        );
        assert_eq!(json["NODE_USE_ENV_PROXY"], "1");
    }

    #[test]
    fn a_token_a_url_cannot_carry_raw_is_encoded_even_for_shells() {
        let env = env(Token::FromEnv("p@ss:w/rd$x".into()));
        let expected = "http://growth-agent:p%40ss%3Aw%2Frd%24x@127.0.0.1:8080";
        assert_eq!(value(&env, "HTTPS_PROXY"), expected);
        let sh = env.render(Format::Sh, "c");
        assert!(
            sh.contains(&format!("export HTTPS_PROXY=\"{expected}\"")),
            "{sh}"
        );
        let given = super::AgentEnv::new(
            "a",
            Token::Given("t".into()),
            "[::1]:8080",
            Path::new("b"),
            Path::new("c"),
        );
        assert!(given
            .render(Format::Sh, "c")
            .contains("http://a:t@[::1]:8080"));
    }

    #[test]
    fn odd_paths_are_quoted_so_every_format_reads_them_back() {
        let env = AgentEnv::new(
            "a",
            Token::None,
            "127.0.0.1:8080",
            Path::new("/home/j d/$HOME/\"x\".pem"),
            Path::new("/c.pem"),
        );
        let sh = env.render(Format::Sh, "c");
        assert!(
            sh.contains(r#"export SSL_CERT_FILE="/home/j d/\$HOME/\"x\".pem""#),
            "{sh}"
        );
        let dotenv = env.render(Format::Dotenv, "c");
        assert!(
            dotenv.contains(r#"SSL_CERT_FILE="/home/j d/\$HOME/\"x\".pem""#),
            "{dotenv}"
        );
    }
}
