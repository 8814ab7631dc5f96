//! The `leash` binary as users run it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn leash(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leash"))
        .args(args)
        .current_dir(dir)
        .env_remove("LEASH_AGENT_TOKEN")
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_config_error_names_file_line_and_column_and_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("leash.yaml"),
        "listen: 127.0.0.1:18080\nupstream:\n  timeout: 60s\n  retries: 3\n",
    )
    .unwrap();
    let output = leash(dir.path(), &["run"]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("leash.yaml:4:3:"), "{err}");
    assert!(err.contains("retries"), "{err}");

    // Same through --config, given after the subcommand.
    std::fs::write(
        dir.path().join("other.yaml"),
        "limits: { max_body: lots }\n",
    )
    .unwrap();
    let output = leash(dir.path(), &["run", "--config", "other.yaml"]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("other.yaml:1:"), "{err}");
    assert!(err.contains("max_body"), "{err}");
}

#[test]
fn an_explicit_config_that_does_not_exist_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = leash(dir.path(), &["run", "--config", "nope.yaml"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("nope.yaml"));
}

#[test]
fn ca_init_creates_once_and_export_prints_it() {
    let dir = tempfile::tempdir().unwrap();
    let first = leash(dir.path(), &["ca", "init"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let key = dir.path().join("certs/leash-ca.key");
    let pem = std::fs::read_to_string(dir.path().join("certs/leash-ca.pem")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let second = leash(dir.path(), &["ca", "init"]);
    assert!(second.status.success());
    assert!(String::from_utf8_lossy(&second.stdout).contains("never overwrites"));
    let export = leash(dir.path(), &["ca", "export"]);
    assert_eq!(String::from_utf8_lossy(&export.stdout), pem);
}

#[test]
fn env_prints_proxy_and_trust_exports() {
    let dir = tempfile::tempdir().unwrap();
    let output = leash(dir.path(), &["env", "--agent", "cs-agent"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = String::from_utf8_lossy(&output.stdout);
    // An agent without a token in the config needs none in its URL.
    assert!(
        out.contains("export HTTPS_PROXY=\"http://cs-agent@127.0.0.1:8080\""),
        "{out}"
    );
    for var in [
        "https_proxy",
        "SSL_CERT_FILE",
        "REQUESTS_CA_BUNDLE",
        "AWS_CA_BUNDLE",
        "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
        "NODE_EXTRA_CA_CERTS",
    ] {
        assert!(
            out.contains(&format!("export {var}=")),
            "{var} missing: {out}"
        );
    }
    assert!(out.contains("export NODE_USE_ENV_PROXY=\"1\""), "{out}");
    let bundle = std::fs::read_to_string(dir.path().join("certs/leash-bundle.pem")).unwrap();
    let ca = std::fs::read_to_string(dir.path().join("certs/leash-ca.pem")).unwrap();
    assert!(bundle.ends_with(&ca), "the bundle carries leash's CA");
}

/// `growth-agent` with the token `dev-token-growth`.
const WITH_TOKEN: &str = "agents:\n  growth-agent: { token_sha256: \"be4c0cc3d836c84bc61b39a5ce84cd2275023d98d67b689432a7dee8820c06a4\" }\n";

fn leash_env(dir: &Path, token: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_leash"));
    command
        .arg("env")
        .args(args)
        .current_dir(dir)
        .env_remove("LEASH_AGENT_TOKEN");
    if let Some(token) = token {
        command.env("LEASH_AGENT_TOKEN", token);
    }
    command.output().unwrap()
}

#[test]
fn env_refuses_loudly_without_the_agents_token_and_with_a_wrong_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("leash.yaml"), WITH_TOKEN).unwrap();
    let missing = leash_env(dir.path(), None, &["--agent", "growth-agent"]);
    assert!(!missing.status.success());
    assert!(missing.stdout.is_empty(), "nothing to eval");
    let err = stderr(&missing);
    assert!(err.contains("LEASH_AGENT_TOKEN is not set"), "{err}");
    assert!(err.contains("407"), "{err}");

    let stranger = leash_env(dir.path(), None, &["--agent", "stranger"]);
    assert!(!stranger.status.success());
    let err = stderr(&stranger);
    assert!(
        err.contains("not in agents:") && err.contains("growth-agent"),
        "{err}"
    );

    let wrong = leash_env(
        dir.path(),
        Some("not-the-token"),
        &["--agent", "growth-agent"],
    );
    assert!(!wrong.status.success());
    let err = stderr(&wrong);
    assert!(err.contains("not agent \"growth-agent\"'s"), "{err}");
    assert!(
        !err.contains("not-the-token"),
        "the token is never echoed: {err}"
    );
}

#[test]
fn env_formats_agree_and_json_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("leash.yaml"), WITH_TOKEN).unwrap();
    let token = Some("dev-token-growth");
    let run = |format: &str| {
        let output = leash_env(
            dir.path(),
            token,
            &["--agent", "growth-agent", "--format", format],
        );
        assert!(output.status.success(), "{format}: {}", stderr(&output));
        String::from_utf8(output.stdout).unwrap()
    };
    let json: serde_json::Value = serde_json::from_str(&run("json")).unwrap();
    let json = json.as_object().unwrap();
    assert_eq!(
        json["HTTPS_PROXY"],
        "http://growth-agent:dev-token-growth@127.0.0.1:8080"
    );

    // sh: what a shell gets from eval is what json says.
    let sh = run("sh");
    assert!(
        sh.contains("http://growth-agent:${LEASH_AGENT_TOKEN}@"),
        "the shell names the variable: {sh}"
    );
    let script = format!("{sh}\nenv");
    let evaluated = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env("LEASH_AGENT_TOKEN", "dev-token-growth")
        .output()
        .unwrap();
    let evaluated = String::from_utf8_lossy(&evaluated.stdout);
    for (name, value) in json {
        let line = format!("{name}={}", value.as_str().unwrap());
        assert!(
            evaluated.lines().any(|l| l == line),
            "{line} after eval: {evaluated}"
        );
    }

    // dotenv: one NAME=value line per variable, the same values.
    let dotenv = run("dotenv");
    for (name, value) in json {
        let line = format!("{name}={}", value.as_str().unwrap());
        assert!(dotenv.lines().any(|l| l == line), "{line} in {dotenv}");
    }

    // fish: set -gx lines naming the variable fish expands.
    let fish = run("fish");
    assert!(
        fish.contains(
            "set -gx HTTPS_PROXY \"http://growth-agent:$LEASH_AGENT_TOKEN@127.0.0.1:8080\""
        ),
        "{fish}"
    );
    assert_eq!(
        fish.lines().filter(|l| l.starts_with("set -gx ")).count(),
        json.len()
    );
}

#[test]
fn run_with_defaults_listens_and_answers_healthz() {
    let dir = tempfile::tempdir().unwrap();
    // Ephemeral ports so tests never collide with a running leash.
    std::fs::write(
        dir.path().join("leash.yaml"),
        "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_leash"))
        .arg("run")
        .current_dir(dir.path())
        .env("LEASH_LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut admin = None;
    while admin.is_none() && Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        let json: serde_json::Value = serde_json::from_str(&line).unwrap();
        if json["fields"]["message"] == "leash is listening" {
            admin = json["fields"]["admin_addr"].as_str().map(str::to_string);
        }
    }
    let admin = admin.expect("leash logged its listening addresses");
    let body = http_get(&admin, "/healthz");
    child.kill().unwrap();
    let _ = child.wait();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.ends_with(r#"{"status":"ok"}"#), "{body}");
    assert!(dir.path().join("certs/leash-ca.pem").exists());
}

fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    out
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn policy_test_passes_on_the_default_policies_and_all_six_example_stacks() {
    let output = leash(repo(), &["policy", "test"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    for stack in [
        "growth-agent",
        "ops-agent",
        "cs-agent",
        "treasury-agent",
        "procurement-agent",
        "payout-agent",
    ] {
        let config = format!("policies/examples/{stack}/config/leash.yaml");
        let output = leash(repo(), &["policy", "test", "--config", &config]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stack}: {stdout}{}",
            stderr(&output)
        );
        assert!(stdout.contains(" 0 failed"), "{stack}: {stdout}");
        let check = leash(repo(), &["policy", "check", "--config", &config]);
        assert!(check.status.success(), "{stack}: {}", stderr(&check));
    }
}

#[test]
fn policy_check_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(
        policies.join("growth.yaml"),
        "agent: growth-agent\ncurrency: EUR\nrules:\n  - priority: 10\n    type: DAILY_CAP\n    action: REJECT\n    limitt: 5000\n",
    )
    .unwrap();
    let output = leash(dir.path(), &["policy", "check"]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("growth.yaml:7:5"), "{err}");
    assert!(err.contains("limitt"), "{err}");
}

#[test]
fn explain_prints_the_decision_and_every_verdict() {
    let output = leash(
        repo(),
        &[
            "explain",
            "--agent",
            "growth-agent",
            "--amount",
            "900",
            "--currency",
            "EUR",
            "--at",
            "2026-11-24T10:00:00+01:00",
            "--spent",
            "4200",
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", stderr(&output));
    assert!(stdout.contains("decision: REJECT (rule 10)"), "{stdout}");
    assert!(
        stdout.contains("spent 4,200.00 + 900.00 > 5,000.00 EUR"),
        "{stdout}"
    );
    assert!(
        stdout.contains("AMOUNT_THRESHOLD"),
        "every rule is listed: {stdout}"
    );
}

#[test]
fn policy_schema_is_json_naming_every_rule_type() {
    let output = leash(repo(), &["policy", "schema"]);
    assert!(output.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let text = schema.to_string();
    for name in [
        "AMOUNT_THRESHOLD",
        "DAILY_CAP",
        "BENEFICIARY_WHITELIST",
        "TIME_WINDOW",
        "AGENT_SCOPE",
        "CATEGORY_BLOCKLIST",
    ] {
        assert!(text.contains(name), "{name}");
    }
}

#[test]
fn policy_check_reports_a_stack_default_nobody_could_approve() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(
        dir.path().join("leash.yaml"),
        "approvers:\n  people:\n    maya: {}\n",
    )
    .unwrap();
    // Only a REJECT rule, so nobody is named; `unreadable` asks for a human.
    std::fs::write(
        policies.join("cs.yaml"),
        "agent: cs-agent\ndefault: REJECT\nunknown: REJECT\nunreadable: REQUIRE_HUMAN\nrules:\n  - { priority: 10, type: DAILY_CAP, action: REJECT, limit: 500 }\n",
    )
    .unwrap();
    let output = leash(dir.path(), &["policy", "check"]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("cs.yaml:4:13"), "{err}");
    assert!(err.contains("could be approved by nobody"), "{err}");

    // Naming who may release it fixes it.
    std::fs::write(
        policies.join("cs.yaml"),
        "agent: cs-agent\ndefault: REJECT\nunknown: REJECT\nunreadable: REQUIRE_HUMAN\napprovers: [maya]\nrules:\n  - { priority: 10, type: DAILY_CAP, action: REJECT, limit: 500 }\n",
    )
    .unwrap();
    let output = leash(dir.path(), &["policy", "check"]);
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn env_needs_the_proxy_address_when_listen_picks_a_port_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("leash.yaml"), "listen: 127.0.0.1:0\n").unwrap();
    let output = leash_env(dir.path(), None, &["--agent", "a"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("--proxy"), "{}", stderr(&output));
    let output = leash_env(
        dir.path(),
        None,
        &[
            "--agent",
            "a",
            "--proxy",
            "127.0.0.1:18080",
            "--format",
            "json",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["HTTPS_PROXY"], "http://a@127.0.0.1:18080");

    // A wildcard listen address is reached on loopback.
    std::fs::write(dir.path().join("leash.yaml"), "listen: 0.0.0.0:8080\n").unwrap();
    let output = leash_env(dir.path(), None, &["--agent", "a", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["HTTPS_PROXY"], "http://a@127.0.0.1:8080");
}
