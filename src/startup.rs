//! What `leash run` says once it listens: which agents may use it (and
//! whether they need a token), which policy file governs which agent, who
//! approves holds, and the command to run next.
//!
//! Two renderings of the same [`Summary`]: a short block for a person
//! ([`Summary::human`], printed when stderr is a terminal and the log format
//! is text), and structured log lines ([`Summary::log`], one per agent and
//! per stack) everywhere else, where a log collector reads stderr and a
//! block of prose would be split into lines without fields.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;

use crate::config::Config;
use crate::policy::model::{AgentSelector, Mode, PolicySet};

/// One agent listed under `agents:` (or named by `default_agent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentLine {
    pub name: String,
    /// It must send its token as the proxy password.
    pub token: bool,
    /// It is `default_agent`: requests without credentials are its.
    pub default: bool,
}

/// One policy stack: its file and whom it governs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackLine {
    pub file: String,
    /// The agent's name, or `*` for every agent.
    pub agent: String,
    pub shadow: bool,
}

/// What a started leash reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub version: &'static str,
    pub proxy: SocketAddr,
    pub admin: SocketAddr,
    pub agents: Vec<AgentLine>,
    /// `agents:` is empty: any name in the proxy URL is accepted.
    pub any_agent: bool,
    pub stacks: Vec<StackLine>,
    pub people: Vec<String>,
    /// Group name, and its members.
    pub groups: Vec<(String, Vec<String>)>,
    pub auditors: Vec<String>,
    /// The command that points an agent at leash.
    pub next: String,
}

impl Summary {
    /// The summary of a leash started with `config` and `set`, listening on
    /// `proxy` and `admin`. `program` is how the user ran leash (argv[0]),
    /// so the suggested command works as it is printed.
    pub fn new(
        config: &Config,
        set: &PolicySet,
        proxy: SocketAddr,
        admin: SocketAddr,
        program: &str,
    ) -> Self {
        let mut agents: Vec<AgentLine> = config
            .agents
            .iter()
            .map(|(name, credential)| AgentLine {
                name: name.clone(),
                token: credential.token_sha256.is_some(),
                default: config.default_agent.as_deref() == Some(name.as_str()),
            })
            .collect();
        if let Some(default) = &config.default_agent {
            if !config.agents.contains_key(default) {
                agents.push(AgentLine {
                    name: default.clone(),
                    token: false,
                    default: true,
                });
            }
        }
        let stacks = set
            .stacks
            .iter()
            .map(|stack| StackLine {
                file: stack.file.display().to_string(),
                agent: match &stack.agent {
                    AgentSelector::All => "*".to_string(),
                    AgentSelector::Named(name) => name.clone(),
                },
                shadow: stack.mode == Mode::Shadow,
            })
            .collect();
        Summary {
            version: env!("CARGO_PKG_VERSION"),
            proxy,
            admin,
            any_agent: config.agents.is_empty(),
            stacks,
            people: config.approvers.people.keys().cloned().collect(),
            groups: config
                .approvers
                .groups
                .iter()
                .map(|(name, members)| (name.clone(), members.clone()))
                .collect(),
            auditors: config.approvers.auditors.keys().cloned().collect(),
            next: next_command(config, &agents, program),
            agents,
        }
    }

    /// The block printed for a person at a terminal.
    pub fn human(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "leash {} is running", self.version);
        let _ = writeln!(
            out,
            "  proxy      http://{}  (agents' HTTPS_PROXY)",
            self.proxy
        );
        let _ = writeln!(out, "  admin      http://{}", self.admin);
        let agents = if self.agents.is_empty() {
            "none listed: any agent name is accepted, without a token".to_string()
        } else {
            let mut listed: Vec<String> = self.agents.iter().map(agent_text).collect();
            if self.any_agent {
                listed.push("any other name, without a token".to_string());
            }
            listed.join(", ")
        };
        let _ = writeln!(out, "  agents     {agents}");
        if self.stacks.is_empty() {
            let _ = writeln!(
                out,
                "  policies   none: every request that may move money is refused"
            );
        }
        for (i, stack) in self.stacks.iter().enumerate() {
            let label = if i == 0 { "policies" } else { "" };
            let _ = writeln!(out, "  {label:<10} {}", stack_text(stack));
        }
        let _ = writeln!(out, "  approvers  {}", self.approvers_text());
        let _ = writeln!(out, "  next       {}", self.next);
        let _ = writeln!(
            out,
            "Ctrl-C or SIGTERM stops leash gracefully (again: at once)."
        );
        out
    }

    /// The same as log lines: one per agent and per stack, then the
    /// approvers and the next command.
    pub fn log(&self) {
        if self.agents.is_empty() {
            tracing::info!("agent: none listed, any agent name is accepted without a token");
        }
        for agent in &self.agents {
            tracing::info!(
                agent = %agent.name,
                token = agent.token,
                default = agent.default,
                "agent: {}",
                agent_text(agent)
            );
        }
        for stack in &self.stacks {
            tracing::info!(
                file = %stack.file,
                agent = %stack.agent,
                shadow = stack.shadow,
                "policy stack: {}",
                stack_text(stack)
            );
        }
        tracing::info!(
            people = %self.people.join(","),
            groups = %self.groups.iter().map(|(g, _)| g.as_str()).collect::<Vec<_>>().join(","),
            auditors = %self.auditors.join(","),
            "approvers: {}",
            self.approvers_text()
        );
        tracing::info!(command = %self.next, "next: {}", self.next);
    }

    fn approvers_text(&self) -> String {
        if self.people.is_empty() {
            return "none (approvers: in leash.yaml): nobody can release a hold, so requests that need a human are refused".to_string();
        }
        let mut text = self.people.join(", ");
        for (group, members) in &self.groups {
            let _ = write!(text, "; group {group} ({})", members.join(", "));
        }
        if !self.auditors.is_empty() {
            let _ = write!(text, "; auditors {}", self.auditors.join(", "));
        }
        text
    }
}

fn agent_text(agent: &AgentLine) -> String {
    let mut text = agent.name.clone();
    text.push_str(if agent.token {
        " (token)"
    } else {
        " (no token)"
    });
    if agent.default {
        text.push_str(" [default_agent]");
    }
    text
}

fn stack_text(stack: &StackLine) -> String {
    let whom = if stack.agent == "*" {
        "every agent (*)".to_string()
    } else {
        stack.agent.clone()
    };
    let mode = if stack.shadow { ", shadow" } else { "" };
    format!("{} -> {whom}{mode}", stack.file)
}

/// `eval "$(leash env --agent NAME)"`, for the agent `leash env` would pick
/// (default_agent, else the first listed), with the token variable first
/// when that agent needs one, and `--config` when leash did not read
/// `./leash.yaml`.
fn next_command(config: &Config, agents: &[AgentLine], program: &str) -> String {
    let chosen = config
        .default_agent
        .clone()
        .or_else(|| config.agents.keys().next().cloned());
    let mut env = format!("{} env", shell_word(program));
    if let Some(agent) = &chosen {
        let _ = write!(env, " --agent {}", shell_word(agent));
    }
    if let Some(source) = &config.source {
        if source != Path::new(crate::config::DEFAULT_FILE) {
            let _ = write!(
                env,
                " --config {}",
                shell_word(&source.display().to_string())
            );
        }
    }
    let needs_token = chosen
        .as_ref()
        .is_some_and(|name| agents.iter().any(|a| &a.name == name && a.token));
    let command = format!("eval \"$({env})\"");
    match chosen {
        Some(agent) if needs_token => format!(
            "export {}=<{agent}'s token>; {command}",
            crate::agent_env::TOKEN_VAR
        ),
        _ => command,
    }
}

/// `word` as one shell word: bare when nothing in it is special, else in
/// single quotes.
fn shell_word(word: &str) -> String {
    let bare = !word.is_empty()
        && word.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':' | '+' | '=' | ',')
        });
    if bare {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        Config::parse(Path::new("leash.yaml"), yaml).unwrap()
    }

    fn summary(config: &Config) -> Summary {
        let set = crate::policy::load::load_policy_set(Path::new("/nonexistent"), config).unwrap();
        Summary::new(
            config,
            &set,
            "127.0.0.1:8080".parse().unwrap(),
            "127.0.0.1:8081".parse().unwrap(),
            "leash",
        )
    }

    #[test]
    fn names_agents_tokens_and_the_next_command() {
        let c = config(
            "default_agent: dev-agent\nagents:\n  growth-agent: { token_sha256: \"2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae\" }\n  dev-agent: {}\napprovers:\n  people:\n    maya: {}\n    sam: {}\n  groups:\n    partners: [maya, sam]\n",
        );
        let s = summary(&c);
        assert_eq!(s.agents.len(), 2);
        let human = s.human();
        assert!(human.contains("growth-agent (token)"), "{human}");
        assert!(
            human.contains("dev-agent (no token) [default_agent]"),
            "{human}"
        );
        assert!(
            human.contains("maya, sam; group partners (maya, sam)"),
            "{human}"
        );
        assert!(
            human.contains("policies   none: every request that may move money is refused"),
            "{human}"
        );
        assert_eq!(s.next, "eval \"$(leash env --agent dev-agent)\"");
    }

    #[test]
    fn an_agent_with_a_token_is_told_to_set_it_and_another_config_is_named() {
        let mut c = config(
            "agents:\n  growth-agent: { token_sha256: \"2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae\" }\n",
        );
        c.source = Some("conf/my leash.yaml".into());
        let s = summary(&c);
        assert_eq!(
            s.next,
            "export LEASH_AGENT_TOKEN=<growth-agent's token>; eval \"$(leash env --agent growth-agent --config 'conf/my leash.yaml')\""
        );
        assert!(s.human().contains("approvers  none"), "{}", s.human());
    }

    #[test]
    fn no_agents_listed_means_any_name() {
        let s = summary(&Config::default());
        assert!(s.any_agent);
        assert!(s.human().contains("any agent name is accepted"));
        assert_eq!(s.next, "eval \"$(leash env)\"");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
