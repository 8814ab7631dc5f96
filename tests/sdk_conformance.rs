//! The official SDKs through the real `leash` binary, observed from the
//! SDK's side, and the README quickstart run as it stands.
//!
//! Each SDK test starts the stand-in vendors in-process, `leash run` as a
//! child with one stack ([`Stack`]), takes the agent's environment from
//! `leash env --format json`, and runs one script in `tests/sdk/` per step.
//! It checks what the SDK returned or raised, and that leash read exactly
//! one request per SDK call: with the SDK's retries on (stripe's
//! `max_network_retries = 2`, botocore's standard mode with 3 attempts), a
//! refusal that invited a retry would show up as a second request.
//!
//! - stripe-python, stripe-node, requests: the shipped cs-agent stack
//!   (refunds up to €100 go through, €100 to €500 wait for a CS supervisor,
//!   €500 or more are refused; its €1,500 daily cap is never near).
//! - boto3 (EC2): the shipped ops-agent stack with its EC2 prices (up to
//!   $500 per intent goes through, more waits for the CTO, reserved GPU
//!   capacity is refused; its $10,000 daily cap is never near).
//! - facebook-business (Graph): a stack written here (under €100 goes
//!   through, €100 to €1,000 waits for a growth lead, €1,000 or more is
//!   refused): the shipped growth-agent stack's decisions depend on the
//!   hour of the day.
//!
//! No decision depends on the clock.
//!
//! The SDKs come from `LEASH_SDK_CACHE` (`.ci/run` installs pinned versions
//! into `.ci/cache`): `python/` for `PYTHONPATH`, `node/node_modules` for
//! `NODE_PATH`. Without them a test prints `skipped: …` and passes, unless
//! `CI` is set: then a missing SDK fails it.

#[path = "common/child.rs"]
mod child;
mod common;
#[path = "common/stand_in.rs"]
mod stand_in;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use child::ChildLeash;
use common::{TestCa, AUDITOR_TOKEN, AUDITOR_TOKEN_SHA256};
use stand_in::StandIn;

/// cs-agent's proxy token in examples/quickstart.yaml (and here).
const AGENT_TOKEN: &str = "dev-token-cs";
const AGENT_TOKEN_SHA256: &str = "ac193914f13be086a4d03b67e44d6326cc41cddd1722e842897c4540e89fb348";
/// chen: a CS supervisor, the CTO and a growth lead (one approver for
/// every stack's holds).
const APPROVER_TOKEN: &str = "dev-token-chen";
const APPROVER_TOKEN_SHA256: &str =
    "37dbec4b9a2bb7867987b085afb9a8ed1fab9dcae2179ce8d2af89e82eb324ff";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// Variables of the test's own environment that would change what a
/// script or the quickstart does: another proxy, another trust store,
/// another SDK, leash tokens. Removed before `leash env`'s are set.
const INHERITED: &[&str] = &[
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "AWS_CA_BUNDLE",
    "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
    "NODE_EXTRA_CA_CERTS",
    "NODE_USE_ENV_PROXY",
    "NODE_OPTIONS",
    "NODE_PATH",
    "PYTHONPATH",
    "PYTHONHOME",
    "LEASH_AGENT_TOKEN",
    "LEASH_APPROVER_TOKEN",
    "LEASH_AUDIT_TOKEN",
    "LEASH_LOG",
    "LEASH_LOG_FORMAT",
    // boto3's own settings: another endpoint, profile, region, retry mode
    // or credentials than the script's.
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_EC2",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_RETRY_MODE",
    "AWS_MAX_ATTEMPTS",
];

/// The stack an SDK test runs under: the agent, its policies, its vendor.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stack {
    /// The shipped cs-agent stack, Stripe refunds.
    Cs,
    /// The shipped ops-agent stack with its EC2 prices.
    Ops,
    /// A growth-agent stack written here, Meta ad budgets.
    Growth,
}

/// The growth-agent stack of the facebook-business test: amounts only,
/// none of the shipped stack's business hours.
const GROWTH_STACK: &str = "\
agent: growth-agent
currency: EUR
default: AUTO_APPROVE
rules:
  - priority: 10
    type: AMOUNT_THRESHOLD
    action: REJECT
    amount: { gte: 1000 }
    description: A budget of €1,000 or more is set by people
  - priority: 20
    type: AMOUNT_THRESHOLD
    action: REQUIRE_HUMAN
    amount: { gte: 100 }
    approvers: [growth-leads]
    description: A budget of €100 or more needs a growth lead
";

impl Stack {
    fn agent(self) -> &'static str {
        match self {
            Stack::Cs => "cs-agent",
            Stack::Ops => "ops-agent",
            Stack::Growth => "growth-agent",
        }
    }

    fn token(self) -> &'static str {
        match self {
            Stack::Cs => AGENT_TOKEN,
            Stack::Ops => "sdk-token-ops",
            Stack::Growth => "sdk-token-growth",
        }
    }

    /// The adapter's name, as leash logs it for each request it reads.
    fn vendor(self) -> &'static str {
        match self {
            Stack::Cs => "stripe",
            Stack::Ops => "aws",
            Stack::Growth => "meta",
        }
    }

    /// The hosts the agent's SDK calls, all sent to the stand-in.
    fn hosts(self) -> &'static [&'static str] {
        match self {
            Stack::Cs => &["api.stripe.com"],
            Stack::Ops => stand_in::aws::HOSTS,
            Stack::Growth => stand_in::meta::HOSTS,
        }
    }

    /// The `policies:` directory, written into `dir` for a stack of this
    /// file's.
    fn policies(self, dir: &Path) -> PathBuf {
        match self {
            Stack::Cs => repo().join("policies/examples/cs-agent"),
            Stack::Ops => repo().join("policies/examples/ops-agent"),
            Stack::Growth => {
                let policies = dir.join("policies");
                std::fs::create_dir_all(&policies).unwrap();
                std::fs::write(policies.join("growth-agent.yaml"), GROWTH_STACK).unwrap();
                policies
            }
        }
    }

    /// What leash.yaml needs beyond the common part: ops-agent's
    /// `vendors.aws` (EC2 prices), as its shipped config has them.
    fn vendors(self) -> String {
        match self {
            Stack::Cs | Stack::Growth => String::new(),
            Stack::Ops => {
                let shipped = std::fs::read_to_string(
                    repo().join("policies/examples/ops-agent/config/leash.yaml"),
                )
                .unwrap();
                let shipped: serde_yaml::Value = serde_yaml::from_str(&shipped).unwrap();
                let aws = shipped["vendors"]["aws"].clone();
                assert!(aws["prices"]["p4d.24xlarge"].is_string(), "{aws:?}");
                let mut vendors = serde_yaml::Mapping::new();
                vendors.insert("aws".into(), aws);
                let mut top = serde_yaml::Mapping::new();
                top.insert("vendors".into(), serde_yaml::Value::Mapping(vendors));
                serde_yaml::to_string(&top).unwrap()
            }
        }
    }
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// An official SDK, as the cache holds it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sdk {
    StripePython,
    Requests,
    StripeNode,
    Boto3,
    FacebookBusiness,
}

impl Sdk {
    fn name(self) -> &'static str {
        match self {
            Sdk::StripePython => "stripe-python",
            Sdk::Requests => "requests",
            Sdk::StripeNode => "stripe-node",
            Sdk::Boto3 => "boto3",
            Sdk::FacebookBusiness => "facebook-business",
        }
    }

    fn stack(self) -> Stack {
        match self {
            Sdk::StripePython | Sdk::Requests | Sdk::StripeNode => Stack::Cs,
            Sdk::Boto3 => Stack::Ops,
            Sdk::FacebookBusiness => Stack::Growth,
        }
    }

    fn interpreter(self) -> &'static str {
        match self {
            Sdk::StripePython | Sdk::Requests | Sdk::Boto3 | Sdk::FacebookBusiness => "python3",
            Sdk::StripeNode => "node",
        }
    }

    /// Variables `leash env` prints that the script does not get, so that
    /// the one the README names is the one that works: boto3 trusts
    /// leash's CA through `AWS_CA_BUNDLE`, facebook-business (requests)
    /// through `REQUESTS_CA_BUNDLE`, which overrides its bundled CA.
    fn withheld(self) -> &'static [&'static str] {
        match self {
            Sdk::StripePython | Sdk::Requests | Sdk::StripeNode => &[],
            Sdk::Boto3 => &["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"],
            Sdk::FacebookBusiness => &["SSL_CERT_FILE", "AWS_CA_BUNDLE", "CURL_CA_BUNDLE"],
        }
    }

    /// The cache's subdirectory that goes on `PYTHONPATH` / `NODE_PATH`,
    /// and the files that show the SDK is there.
    fn layout(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Sdk::StripePython => ("python", &["stripe/__init__.py", "requests/__init__.py"]),
            Sdk::Requests => ("python", &["requests/__init__.py"]),
            Sdk::StripeNode => (
                "node/node_modules",
                &["stripe/package.json", "https-proxy-agent/package.json"],
            ),
            Sdk::Boto3 => ("python", &["boto3/__init__.py", "botocore/__init__.py"]),
            Sdk::FacebookBusiness => ("python", &["facebook_business/__init__.py"]),
        }
    }

    fn path_var(self) -> &'static str {
        match self {
            Sdk::StripePython | Sdk::Requests | Sdk::Boto3 | Sdk::FacebookBusiness => "PYTHONPATH",
            Sdk::StripeNode => "NODE_PATH",
        }
    }

    fn script(self) -> PathBuf {
        repo().join("tests/sdk").join(match self {
            Sdk::StripePython => "stripe_python.py",
            Sdk::Requests => "requests_plain.py",
            Sdk::StripeNode => "stripe_node.js",
            Sdk::Boto3 => "boto3_ec2.py",
            // Not facebook_business.py: the script's directory comes first on
            // sys.path, and the script would shadow the SDK.
            Sdk::FacebookBusiness => "facebook_graph.py",
        })
    }

    /// Where the SDK is installed; `None` (after printing why) when it is
    /// not and `CI` is unset. Under `CI` a missing SDK fails the test.
    fn installed(self) -> Option<PathBuf> {
        self.installed_for(self.name())
    }

    /// [`Sdk::installed`], for a test named `what` that needs the SDK.
    fn installed_for(self, what: &str) -> Option<PathBuf> {
        let (sub, markers) = self.layout();
        let missing = match std::env::var_os("LEASH_SDK_CACHE") {
            None => "LEASH_SDK_CACHE is not set".to_string(),
            Some(cache) => {
                let dir = PathBuf::from(cache).join(sub);
                match markers.iter().find(|m| !dir.join(m).exists()) {
                    Some(marker) => format!("no {}", dir.join(marker).display()),
                    None => match Command::new(self.interpreter()).arg("--version").output() {
                        Ok(out) if out.status.success() => return Some(dir),
                        _ => format!("{} is not on the PATH", self.interpreter()),
                    },
                }
            }
        };
        let needs = if what == self.name() {
            String::new()
        } else {
            format!("{what}: ")
        };
        assert!(
            !ci(),
            "CI is set and {} is not installed ({missing}); .ci/run installs it",
            self.name()
        );
        println!(
            "skipped: {needs}{} not installed; .ci/run installs it ({missing})",
            self.name()
        );
        None
    }
}

/// leash.yaml for the SDK tests: the stack's policies, its agent with its
/// token, chen as every group's approver (the CS supervisors, the CTO, the
/// growth leads), a test auditor, the stack's hosts sent to the stand-in.
/// A held call is answered (403 leash_held) after half a second.
fn config(
    stack: Stack,
    policies: &Path,
    listen: &str,
    admin: &str,
    stand_in: std::net::SocketAddr,
) -> String {
    let agent = stack.agent();
    let token_sha256 = sha256_hex(stack.token());
    if stack == Stack::Cs {
        assert_eq!(token_sha256, AGENT_TOKEN_SHA256);
    }
    let overrides: String = stack
        .hosts()
        .iter()
        .map(|host| format!("    {host}: {stand_in}\n"))
        .collect();
    format!(
        "listen: {listen}\n\
         admin: {admin}\n\
         policies: {policies}\n\
         agents:\n  {agent}: {{ token_sha256: \"{token_sha256}\" }}\n\
         passthrough: tunnel\n\
         upstream:\n  extra_ca: upstream-ca.pem\n  overrides:\n{overrides}\
         fx:\n  base: EUR\n  rates: {{ USD: \"0.92\", GBP: \"1.17\" }}\n\
         holds: {{ wait: 500ms, ttl: 1h }}\n\
         approvers:\n  people:\n    chen: {{ token_sha256: \"{APPROVER_TOKEN_SHA256}\" }}\n    ines: {{}}\n\
         \x20 groups:\n    cs-supervisors: [chen, ines]\n    cto: [chen]\n    growth-leads: [chen]\n\
         \x20 auditors:\n    test-auditor: {{ token_sha256: \"{AUDITOR_TOKEN_SHA256}\" }}\n\
         {vendors}",
        policies = policies.display(),
        vendors = stack.vendors(),
    )
}

/// The stand-in on its own runtime (the tests themselves are synchronous:
/// they run scripts and the leash binary), leash in front of it, and the
/// agent's environment from `leash env`.
struct Governed {
    leash: ChildLeash,
    stand_in: StandIn,
    runtime: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    /// What `leash env --format json` printed.
    agent_env: Map<String, Value>,
    sdk: Sdk,
    sdk_dir: PathBuf,
}

impl Governed {
    fn start(sdk: Sdk, sdk_dir: PathBuf) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let ca = TestCa::new("sdk conformance stand-in CA");
        let stand_in = runtime.block_on(StandIn::start(&ca));
        let dir = tempfile::tempdir().unwrap();
        let stack = sdk.stack();
        let policies = stack.policies(dir.path());
        std::fs::write(dir.path().join("upstream-ca.pem"), &ca.cert_pem).unwrap();
        std::fs::write(
            dir.path().join("leash.yaml"),
            config(
                stack,
                &policies,
                "127.0.0.1:0",
                "127.0.0.1:0",
                stand_in.addr,
            ),
        )
        .unwrap();
        let leash = ChildLeash::spawn_with_log(dir.path(), "info");

        // `leash env` prints the proxy address from the config: the one an
        // agent's config names, here the port `leash run` was given.
        std::fs::write(
            dir.path().join("agent.yaml"),
            config(
                stack,
                &policies,
                &leash.proxy.to_string(),
                &leash.admin.to_string(),
                stand_in.addr,
            ),
        )
        .unwrap();
        let mut env = Command::new(env!("CARGO_BIN_EXE_leash"));
        env.args([
            "env",
            "--config",
            "agent.yaml",
            "--agent",
            stack.agent(),
            "--format",
            "json",
        ])
        .current_dir(dir.path())
        .env("LEASH_AGENT_TOKEN", stack.token());
        let output = env.output().unwrap();
        assert!(output.status.success(), "leash env: {}", text(&output));
        let agent_env: Map<String, Value> = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("leash env --format json: {e}: {}", text(&output)));
        assert_eq!(
            agent_env["HTTPS_PROXY"],
            format!("http://{}:{}@{}", stack.agent(), stack.token(), leash.proxy),
            "{agent_env:?}"
        );
        for var in [
            "SSL_CERT_FILE",
            "REQUESTS_CA_BUNDLE",
            "AWS_CA_BUNDLE",
            "NODE_EXTRA_CA_CERTS",
        ] {
            let path = agent_env[var].as_str().unwrap();
            assert!(Path::new(path).is_file(), "{var}={path}");
        }
        Self {
            leash,
            stand_in,
            runtime,
            dir,
            agent_env,
            sdk,
            sdk_dir,
        }
    }

    /// Runs the SDK's script for `step` (one SDK call) with the agent's
    /// environment; returns the JSON line it printed.
    fn call(&self, step: &str) -> Value {
        let mut command = Command::new(self.sdk.interpreter());
        command.arg(self.sdk.script()).arg(step);
        for var in INHERITED {
            command.env_remove(var);
        }
        for (name, value) in &self.agent_env {
            if !self.sdk.withheld().contains(&name.as_str()) {
                command.env(name, value.as_str().unwrap());
            }
        }
        // No AWS config or credentials file of this machine's (boto3 reads
        // ~/.aws otherwise): the script's own settings are the only ones.
        command
            .env("AWS_CONFIG_FILE", self.dir.path().join("no-aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.dir.path().join("no-aws-credentials"),
            )
            .env(self.sdk.path_var(), &self.sdk_dir)
            .current_dir(self.dir.path());
        let started = Instant::now();
        let output = command.output().unwrap();
        let took = started.elapsed();
        let out = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{} {step} failed: {}\nleash logs:\n{}",
            self.sdk.name(),
            text(&output),
            self.leash.logs()
        );
        let line = out.lines().last().unwrap_or_default();
        let seen: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{} {step}: {e}: {}", self.sdk.name(), text(&output)));
        println!("{} {step} ({took:.1?}): {line}", self.sdk.name());
        seen
    }

    /// The audit chain's `decision` entries, read through the admin API as
    /// an auditor (each is written before its request is answered).
    fn decisions(&self) -> Vec<Value> {
        let url = format!("http://{}/v1/audit?limit=1000", self.leash.admin);
        let body: Value = self.runtime.block_on(async {
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap()
                .get(url)
                .bearer_auth(AUDITOR_TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        });
        body["entries"]
            .as_array()
            .unwrap_or_else(|| panic!("GET /v1/audit: {body}"))
            .iter()
            .filter(|e| e["kind"] == "decision")
            .cloned()
            .collect()
    }

    /// How many of the agent's requests to the stack's vendor leash read
    /// (its log line per request), whatever it then did with them.
    fn requests_read(&self) -> usize {
        let vendor = self.sdk.stack().vendor();
        self.leash
            .logs
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|json| {
                json["fields"]["message"] == "request classified"
                    && json["fields"]["vendor"] == vendor
            })
            .count()
    }

    /// How many of the agent's `POST`s reached the stand-in at the stack's
    /// hosts (leash's own lookups are `GET`s, and not counted).
    fn posts_forwarded(&self) -> usize {
        let hosts = self.sdk.stack().hosts();
        self.stand_in
            .seen()
            .iter()
            .filter(|s| {
                let host = s.host.rsplit_once(':').map_or(s.host.as_str(), |(h, _)| h);
                s.method == "POST" && hosts.contains(&host)
            })
            .count()
    }

    /// Runs `step`, one SDK call, and checks that leash read exactly one
    /// request for it (no SDK retry), decided it `decision` (`None`: no
    /// new decision, the release of an approved hold) and forwarded
    /// `forwarded` of it.
    fn one_call(&self, step: &str, decision: Option<&str>, forwarded: usize) -> Value {
        self.calls(step, 1, decision.as_slice(), forwarded).0
    }

    /// Runs `step`, `sdk_calls` SDK calls, and checks that leash read
    /// exactly one request per call (no SDK retry), wrote the audit
    /// `decisions` for them (the release of an approved hold writes none)
    /// and that `forwarded` of them reached the stand-in. Returns what the
    /// script printed and the new decision entries.
    fn calls(
        &self,
        step: &str,
        sdk_calls: usize,
        decisions: &[&str],
        forwarded: usize,
    ) -> (Value, Vec<Value>) {
        let (read, decided, sent) = (
            self.requests_read(),
            self.decisions(),
            self.posts_forwarded(),
        );
        let seen = self.call(step);
        // leash's log lines reach the test through a reader thread.
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.requests_read() < read + sdk_calls && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100));
        let requests = self.requests_read() - read;
        assert_eq!(
            requests,
            sdk_calls,
            "{} {step}: leash read {requests} requests for {sdk_calls} SDK call(s) (more: the SDK retried): {seen}\n{}",
            self.sdk.name(),
            self.leash.logs()
        );
        let new: Vec<Value> = self.decisions().split_off(decided.len());
        let kinds: Vec<&str> = new
            .iter()
            .map(|d| d["decision"].as_str().unwrap_or("?"))
            .collect();
        assert_eq!(
            kinds,
            decisions,
            "{} {step}: audit decisions {new:?}",
            self.sdk.name()
        );
        assert_eq!(
            self.posts_forwarded() - sent,
            forwarded,
            "{} {step}: requests the stand-in received",
            self.sdk.name()
        );
        println!(
            "  leash read {requests} request(s), audit decision(s) {}, {forwarded} forwarded",
            if decisions.is_empty() {
                "none (a retry of a held request)".to_string()
            } else {
                decisions.join(", ")
            }
        );
        (seen, new)
    }

    /// chen approves `hold` through the admin API.
    fn approve(&self, hold: &str) {
        let url = format!("http://{}/v1/holds/{hold}/approve", self.leash.admin);
        let (status, body) = self.runtime.block_on(async {
            let response = reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap()
                .post(url)
                .bearer_auth(APPROVER_TOKEN)
                .header("content-type", "application/json")
                .body(r#"{"comment":"sdk conformance"}"#)
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        });
        assert_eq!(status, 200, "approve {hold}: {body}");
        println!(
            "approved {hold} through the admin API: state {}",
            body["state"]
        );
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The refusal as a Stripe SDK raises it: a permission error (403) whose
/// code is leash's, with nothing inviting a retry. stripe-node puts the
/// code in `err.code`; stripe-python gives `PermissionError` no `code`
/// (only 400/402/404 errors get one), so it is in `e.error.code`, as the
/// README says.
fn assert_refused(sdk: Sdk, seen: &Value, class: &str, code: &str) {
    assert_eq!(seen["raised"], class, "{seen}");
    assert_eq!(seen["permission_error"], true, "{seen}");
    assert_eq!(seen["http_status"], 403, "{seen}");
    if sdk == Sdk::StripePython {
        assert_eq!(seen["error_code"], code, "e.error.code: {seen}");
        assert_eq!(seen["code"], Value::Null, "e.code: {seen}");
    } else {
        assert_eq!(seen["code"], code, "err.code: {seen}");
    }
    assert_eq!(seen["should_retry"], "false", "{seen}");
    assert!(
        seen["user_message"]
            .as_str()
            .is_some_and(|m| m.contains("leash")),
        "{seen}"
    );
}

fn assert_refund(seen: &Value, amount: u64) {
    assert_eq!(seen["object"], "refund", "{seen}");
    assert_eq!(seen["status"], "succeeded", "{seen}");
    assert_eq!(seen["amount"], amount, "{seen}");
    assert_eq!(seen["currency"], "eur", "{seen}");
}

/// Approved, rejected, held then released by the retry with the same
/// idempotency key: the same for both Stripe SDKs.
fn stripe_sdk(sdk: Sdk, permission_error: &str, amounts: (u64, u64)) {
    let Some(sdk_dir) = sdk.installed() else {
        return;
    };
    let leash = Governed::start(sdk, sdk_dir);

    let approved = leash.one_call("approved", Some("AUTO_APPROVE"), 1);
    assert_refund(&approved, amounts.0);

    let rejected = leash.one_call("rejected", Some("REJECT"), 0);
    assert_refused(sdk, &rejected, permission_error, "leash_rejected");

    let held = leash.one_call("held", Some("REQUIRE_HUMAN"), 0);
    assert_refused(sdk, &held, permission_error, "leash_held");
    let hold = held["hold_id"]
        .as_str()
        .expect("X-Leash-Hold-Id")
        .to_string();
    assert!(hold.starts_with("hold_"), "{held}");
    assert!(
        held["user_message"].as_str().unwrap().contains(&hold),
        "{held}"
    );

    leash.approve(&hold);
    let released = leash.one_call("retry", None, 1);
    assert_refund(&released, amounts.1);
    assert_eq!(
        leash
            .stand_in
            .object("ch_demo")
            .map(|c| c["amount_refunded"].clone()),
        Some((amounts.0 + amounts.1).into())
    );
}

#[test]
fn stripe_python_sees_approved_rejected_and_held_then_released() {
    stripe_sdk(Sdk::StripePython, "PermissionError", (2500, 12000));
}

#[test]
fn stripe_node_sees_approved_rejected_and_held_then_released() {
    stripe_sdk(Sdk::StripeNode, "StripePermissionError", (2000, 12000));
}

#[test]
fn plain_requests_gets_the_refund_and_the_refusals_json_code() {
    let Some(sdk_dir) = Sdk::Requests.installed() else {
        return;
    };
    let leash = Governed::start(Sdk::Requests, sdk_dir);
    let approved = leash.one_call("approved", Some("AUTO_APPROVE"), 1);
    assert_eq!(approved["http_status"], 200, "{approved}");
    assert_eq!(approved["object"], "refund", "{approved}");
    assert_eq!(approved["status"], "succeeded", "{approved}");
    assert_eq!(approved["amount"], 3000, "{approved}");

    let rejected = leash.one_call("rejected", Some("REJECT"), 0);
    assert_eq!(rejected["http_status"], 403, "{rejected}");
    assert_eq!(rejected["code"], "leash_rejected", "{rejected}");
    assert_eq!(rejected["type"], "invalid_request_error", "{rejected}");
}

/// The one intent of a decision entry.
fn decided_intent(entry: &Value) -> Value {
    match entry["intent"].as_array().map(Vec::as_slice) {
        Some([intent]) => intent.clone(),
        _ => panic!("one intent expected: {entry}"),
    }
}

/// A leash refusal as botocore raises it: `ClientError` with EC2's
/// `UnauthorizedOperation` (a code no retry mode retries) and leash's code
/// at the start of the message, 403, and no retry: botocore's own count,
/// `RetryAttempts`, is 0 (the test counts the requests leash read too).
fn assert_ec2_refused(seen: &Value, operation: &str, code: &str) {
    assert_eq!(seen["raised"], "ClientError", "{seen}");
    assert_eq!(seen["operation"], operation, "{seen}");
    assert_eq!(seen["code"], "UnauthorizedOperation", "{seen}");
    assert_eq!(seen["http_status"], 403, "{seen}");
    assert!(
        seen["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(&format!("{code}: "))),
        "{seen}"
    );
    assert_eq!(seen["retry_attempts"], 0, "{seen}");
    assert_eq!(seen["max_attempts_reached"], false, "{seen}");
}

/// An instance boto3 saw launched, as the stand-in has it.
fn assert_launched(leash: &Governed, seen: &Value, instance_type: &str) {
    assert_eq!(seen["instance_type"], instance_type, "{seen}");
    assert_eq!(seen["state"], "pending", "{seen}");
    assert_eq!(seen["retry_attempts"], 0, "{seen}");
    let id = seen["instance_id"].as_str().expect("InstanceId");
    assert!(id.starts_with("i-"), "{seen}");
    let stored = leash.stand_in.object(id).expect("the stand-in's instance");
    assert_eq!(stored["instanceType"], instance_type, "{stored}");
}

/// boto3 against EC2 under the ops-agent stack: a t3.micro launched; a p5
/// capacity block found (a safe read leash learns the price from) and its
/// purchase refused as reserved GPU capacity; a p4d launch held, approved,
/// and released by the retry with the same `ClientToken`; a g5 launch
/// without one held, and its retries (each with a new `ClientToken`
/// botocore drew) recognised as the same request: the same hold while it
/// waits, released once approved.
#[test]
fn boto3_ec2_sees_approved_rejected_and_held_then_released() {
    let Some(sdk_dir) = Sdk::Boto3.installed() else {
        return;
    };
    let leash = Governed::start(Sdk::Boto3, sdk_dir);

    let (approved, decided) = leash.calls("approved", 1, &["AUTO_APPROVE"], 1);
    assert_launched(&leash, &approved, "t3.micro");
    let intent = decided_intent(&decided[0]);
    assert_eq!(intent["operation"], "RunInstances", "{intent}");
    // $0.0104 an hour (ops-agent's price) over the 24h horizon.
    assert_eq!(intent["amount"]["amount"], "0.2496", "{intent}");
    assert_eq!(intent["category"], "compute", "{intent}");

    // DescribeCapacityBlockOfferings is safe: forwarded, no decision.
    let (rejected, decided) = leash.calls("rejected", 2, &["REJECT"], 1);
    assert!(
        rejected["offering_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("cb-")),
        "{rejected}"
    );
    assert_ec2_refused(&rejected, "PurchaseCapacityBlock", "leash_rejected");
    let intent = decided_intent(&decided[0]);
    assert_eq!(intent["operation"], "PurchaseCapacityBlock", "{intent}");
    // The offering's upfront fee, learned from boto3's own Describe.
    assert_eq!(rejected["upfront_fee"], "2359.68", "{rejected}");
    assert_eq!(intent["amount"]["amount"], "2359.68", "{intent}");
    assert_eq!(intent["category"], "gpu_reserved_capacity", "{intent}");
    assert_eq!(
        leash.stand_in.object("ec2:purchases"),
        Some(serde_json::json!([]))
    );

    let (held, decided) = leash.calls("held", 1, &["REQUIRE_HUMAN"], 0);
    assert_ec2_refused(&held, "RunInstances", "leash_held");
    let intent = decided_intent(&decided[0]);
    // $32.7726 an hour over 24h: above ops-agent's $500.
    assert_eq!(intent["amount"]["amount"], "786.5424", "{intent}");
    assert_eq!(intent["category"], "gpu_compute", "{intent}");
    let hold = held["hold_id"]
        .as_str()
        .expect("X-Leash-Hold-Id")
        .to_string();
    assert!(hold.starts_with("hold_"), "{held}");
    assert!(held["message"].as_str().unwrap().contains(&hold), "{held}");

    leash.approve(&hold);
    let released = leash.one_call("retry", None, 1);
    assert_launched(&leash, &released, "p4d.24xlarge");

    let (held, decided) = leash.calls("fresh-token", 1, &["REQUIRE_HUMAN"], 0);
    assert_ec2_refused(&held, "RunInstances", "leash_held");
    let intent = decided_intent(&decided[0]);
    // $1.006 an hour × 21 × 24h.
    assert_eq!(intent["amount"]["amount"], "507.024", "{intent}");
    let first_token = intent["idempotency_key"].clone();
    assert!(first_token.is_string(), "botocore's ClientToken: {intent}");
    let hold = held["hold_id"]
        .as_str()
        .expect("X-Leash-Hold-Id")
        .to_string();
    // The same call again, before approval: another ClientToken, the same
    // hold, no second decision.
    let again = leash.one_call("fresh-token", None, 0);
    assert_ec2_refused(&again, "RunInstances", "leash_held");
    assert_eq!(again["hold_id"], hold.as_str(), "{again}");
    leash.approve(&hold);
    let released = leash.one_call("fresh-token", None, 1);
    assert_launched(&leash, &released, "g5.xlarge");
    let tokens: Vec<String> = leash
        .stand_in
        .seen()
        .iter()
        .filter_map(|s| {
            let body = String::from_utf8_lossy(&s.body).into_owned();
            body.contains("InstanceType=g5.xlarge").then(|| {
                form_urlencoded::parse(body.as_bytes())
                    .find(|(k, _)| k == "ClientToken")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            })
        })
        .collect();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_ne!(
        Some(tokens[0].as_str()),
        first_token.as_str(),
        "the released retry carries its own ClientToken"
    );
}

/// A leash refusal as facebook-business raises it: `FacebookRequestError`
/// with a permission code (200), `is_transient` false, leash's code as
/// `error_user_title`; the SDK does not retry (it never does).
fn assert_graph_refused(seen: &Value, code: &str) {
    assert_eq!(seen["raised"], "FacebookRequestError", "{seen}");
    assert_eq!(seen["http_status"], 403, "{seen}");
    assert_eq!(seen["api_error_code"], 200, "{seen}");
    assert_eq!(seen["api_error_type"], "OAuthException", "{seen}");
    assert_eq!(seen["api_transient_error"], false, "{seen}");
    assert_eq!(seen["error_user_title"], code, "{seen}");
    assert_eq!(seen["error_user_msg"], seen["api_error_message"], "{seen}");
    assert!(
        seen["api_error_message"]
            .as_str()
            .is_some_and(|m| m.contains("leash")),
        "{seen}"
    );
}

/// An ad set the SDK saw created (its id: create_ad_set answers with an
/// object holding only that), as the stand-in has it.
fn assert_ad_set(leash: &Governed, seen: &Value, name: &str, daily_budget: &str) {
    let id = seen["id"].as_str().expect("the ad set's id");
    assert!(id.bytes().all(|b| b.is_ascii_digit()), "{seen}");
    let stored = leash.stand_in.object(id).expect("the stand-in's ad set");
    assert_eq!(stored["object_type"], "adset", "{stored}");
    assert_eq!(stored["account_id"], "1001", "{stored}");
    assert_eq!(stored["name"], name, "{stored}");
    assert_eq!(stored["daily_budget"], daily_budget, "{stored}");
}

/// facebook-business against Graph: an ad set with a €20 daily budget
/// created; the campaign's budget raised to €1,500 refused; an ad set of
/// €250 a day held, approved, and released by the same call again (Graph
/// has no idempotency key: leash knows the retry by its fingerprint).
#[test]
fn facebook_business_sees_approved_rejected_and_held_then_released() {
    let Some(sdk_dir) = Sdk::FacebookBusiness.installed() else {
        return;
    };
    let leash = Governed::start(Sdk::FacebookBusiness, sdk_dir);

    let (approved, decided) = leash.calls("approved", 1, &["AUTO_APPROVE"], 1);
    assert_ad_set(&leash, &approved, "SDK conformance approved", "2000");
    let intent = decided_intent(&decided[0]);
    assert_eq!(intent["operation"], "adset.create", "{intent}");
    // 2000 at EUR's offset of 100 (act_1001's currency, looked up).
    assert_eq!(intent["amount"]["amount"], "20.00", "{intent}");
    assert_eq!(intent["amount"]["currency"], "EUR", "{intent}");

    let (rejected, decided) = leash.calls("rejected", 1, &["REJECT"], 0);
    assert_graph_refused(&rejected, "leash_rejected");
    let intent = decided_intent(&decided[0]);
    assert_eq!(intent["operation"], "object.update", "{intent}");
    assert_eq!(intent["amount"]["amount"], "1500.00", "{intent}");
    let campaign = leash.stand_in.object("120200000000000001").unwrap();
    assert_eq!(campaign.get("daily_budget"), None, "{campaign}");

    let held = leash.one_call("held", Some("REQUIRE_HUMAN"), 0);
    assert_graph_refused(&held, "leash_held");
    let hold = held["hold_id"]
        .as_str()
        .expect("X-Leash-Hold-Id")
        .to_string();
    assert!(hold.starts_with("hold_"), "{held}");
    assert!(
        held["api_error_message"].as_str().unwrap().contains(&hold),
        "{held}"
    );

    leash.approve(&hold);
    let released = leash.one_call("retry", None, 1);
    assert_ad_set(&leash, &released, "SDK conformance held", "25000");
}

// ---------------------------------------------------------------------------
// The README quickstart, run as it stands.

const QUICKSTART_PORTS: [u16; 3] = [8080, 8081, 12111];

/// One quickstart at a time on this machine (it needs fixed ports): an
/// advisory lock on a file in the temp dir, released when the test ends
/// (or its process dies).
fn quickstart_lock() -> std::fs::File {
    let path = std::env::temp_dir().join("leash-quickstart-test.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut said = false;
    loop {
        match file.try_lock() {
            Ok(()) => return file,
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                if !said {
                    println!(
                        "waiting for another copy of the quickstart test ({} is locked)",
                        path.display()
                    );
                    said = true;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(error) => panic!(
                "{}: {error}: another copy of the quickstart test has run for 3 minutes",
                path.display()
            ),
        }
    }
}

/// The commands between `<!-- quickstart:begin -->` and
/// `<!-- quickstart:end -->` in README.md, without the code fence.
fn quickstart_block() -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let begin = readme
        .find("<!-- quickstart:begin -->")
        .expect("README.md has <!-- quickstart:begin -->");
    let end = readme
        .find("<!-- quickstart:end -->")
        .expect("README.md has <!-- quickstart:end -->");
    let block = readme[begin..end].trim();
    let body = block
        .split_once("```sh\n")
        .expect("the quickstart is a ```sh block")
        .1;
    body.rsplit_once("```")
        .expect("the quickstart's fence is closed")
        .0
        .to_string()
}

/// Every JSON object in `text`, in order: the curl answers, pretty-printed
/// (the stand-in's) or on one line with no newline after them (leash's).
fn json_objects(text: &str) -> Vec<Value> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(offset) = text[at..].find('{') {
        let start = at + offset;
        let mut stream = serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>();
        match stream.next() {
            Some(Ok(value)) => {
                found.push(value);
                at = start + stream.byte_offset();
            }
            _ => at = start + 1,
        }
    }
    found
}

#[test]
fn the_readme_quickstart_runs_as_written() {
    // Its python line needs stripe-python.
    let Some(python) = Sdk::StripePython.installed_for("the README quickstart") else {
        return;
    };
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_leash")).parent().unwrap();
    let stand_in_bin = bin_dir.join("examples/stand-in");
    if !stand_in_bin.is_file() {
        let why = format!(
            "{} is not built (`cargo test` builds the examples; or `cargo build --example stand-in`)",
            stand_in_bin.display()
        );
        assert!(!ci(), "CI is set and {why}");
        println!("skipped: {why}");
        return;
    }
    // `cargo test` rebuilds the example; `cargo test --test sdk_conformance`
    // alone does not.
    let built = std::fs::metadata(&stand_in_bin)
        .and_then(|m| m.modified())
        .ok();
    for source in ["examples/stand-in.rs", "tests/common/stand_in.rs"] {
        let changed = std::fs::metadata(repo().join(source))
            .and_then(|m| m.modified())
            .ok();
        if changed > built {
            println!(
                "note: {source} changed after {} was built; `cargo build --example stand-in` rebuilds it",
                stand_in_bin.display()
            );
        }
    }
    for tool in ["bash", "curl"] {
        let ok = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            assert!(!ci(), "CI is set and {tool} is not on the PATH");
            println!("skipped: {tool} is not on the PATH");
            return;
        }
    }
    let _lock = quickstart_lock();
    for port in QUICKSTART_PORTS {
        if let Err(error) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            panic!(
                "127.0.0.1:{port} is taken ({error}): the README quickstart needs 127.0.0.1:8080, \
                 8081 (examples/quickstart.yaml) and 12111 (the stand-in); stop what listens there"
            );
        }
    }

    // A copy of what the block names by relative path, so the repo's own
    // data/, certs/ and stand-in/ are untouched: examples/, policies/, and
    // target/release/ with the binaries this `cargo test` built.
    let top = tempfile::tempdir().unwrap();
    for dir in ["examples", "policies"] {
        copy_dir(&repo().join(dir), &top.path().join(dir));
    }
    let release = top.path().join("target/release");
    std::fs::create_dir_all(release.join("examples")).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_leash"), release.join("leash")).unwrap();
    std::os::unix::fs::symlink(&stand_in_bin, release.join("examples/stand-in")).unwrap();

    let block = quickstart_block();
    let kept: Vec<&str> = block
        .lines()
        .filter(|line| !line.starts_with("cargo build"))
        .collect();
    assert_eq!(
        kept.len() + 1,
        block.lines().count(),
        "the block starts with one `cargo build` line:\n{block}"
    );
    let script = format!(
        "# The README quickstart block, without its `cargo build` line (target/release/ \
         links to the binaries cargo test built), with stripe-python from the SDK cache.\n\
         export PYTHONPATH={}\n{}\n",
        python.display(),
        kept.join("\n")
    );
    std::fs::write(top.path().join("quickstart.sh"), &script).unwrap();

    let stdout_path = top.path().join("stdout.txt");
    let stderr_path = top.path().join("stderr.txt");
    let mut command = Command::new("bash");
    command
        .args(["-euo", "pipefail", "quickstart.sh"])
        .current_dir(top.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap());
    for var in INHERITED {
        command.env_remove(var);
    }
    // Its own process group: whatever it leaves running is ended with it.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let started = Instant::now();
    let mut child = command.spawn().unwrap();
    let group = child.id();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(240) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .stderr(std::process::Stdio::null())
        .status();
    let _ = child.wait();
    let took = started.elapsed();
    // The next copy (see quickstart_lock) finds the ports free.
    let deadline = Instant::now() + Duration::from_secs(10);
    while QUICKSTART_PORTS
        .iter()
        .any(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_err())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = std::fs::read_to_string(&stdout_path).unwrap();
    let err = std::fs::read_to_string(&stderr_path).unwrap();
    let report = format!("script:\n{script}\nstdout:\n{out}\nstderr:\n{err}");
    match status {
        Some(status) => assert!(
            status.success(),
            "the quickstart failed ({status})\n{report}"
        ),
        None => panic!("the quickstart did not finish in 4 minutes\n{report}"),
    }
    println!("quickstart ({took:.1?}), its stdout:\n{out}");

    // Its relative paths landed in the copy.
    for made in [
        "data/quickstart",
        "certs/leash-ca.pem",
        "stand-in/stand-in-ca.pem",
    ] {
        assert!(top.path().join(made).exists(), "{made}\n{report}");
    }

    let answers = json_objects(&out);
    assert_eq!(
        answers.len(),
        4,
        "four curl answers: {answers:#?}\n{report}"
    );
    // €40: approved, forwarded, the stand-in's refund.
    assert_eq!(answers[0]["object"], "refund", "{report}");
    assert_eq!(answers[0]["amount"], 4000, "{report}");
    assert_eq!(answers[0]["charge"], "ch_demo", "{report}");
    assert_eq!(answers[0]["currency"], "eur", "{report}");
    assert_eq!(answers[0]["status"], "succeeded", "{report}");
    // stripe-python's €25, printed as the refund's status.
    assert!(
        out.lines().any(|l| l.trim() == "succeeded"),
        "the python line prints the status\n{report}"
    );
    // €600: refused by leash, in Stripe's error shape.
    assert_eq!(answers[1]["error"]["code"], "leash_rejected", "{report}");
    assert!(
        answers[1]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("rule 20")),
        "{report}"
    );
    // €120: held, its id in the answer.
    assert_eq!(answers[2]["error"]["code"], "leash_held", "{report}");
    let message = answers[2]["error"]["message"].as_str().unwrap_or_default();
    let hold = message
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .find(|word| word.starts_with("hold_"))
        .unwrap_or_else(|| panic!("the held answer names its hold\n{report}"));
    // chen's approval, through the CLI.
    assert!(
        out.contains(&format!(
            "{hold}: approve by chen counted; the hold is approved"
        )),
        "the approval of {hold}\n{report}"
    );
    // The retry: released, forwarded once, the stand-in's refund.
    assert_eq!(answers[3]["object"], "refund", "{report}");
    assert_eq!(answers[3]["amount"], 12000, "{report}");
    assert_eq!(answers[3]["status"], "succeeded", "{report}");
    // The stand-in answered three refunds (€40, €25, €120) with 200: the
    // refused and the held one never reached it.
    let refunds: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("POST /v1/refunds "))
        .collect();
    assert_eq!(
        refunds, ["POST /v1/refunds 200"; 3],
        "what the stand-in answered\n{report}"
    );
    // audit verify, through the running leash.
    assert!(
        out.lines()
            .any(|l| l.starts_with("ok: ") && l.contains(" entries, head ")),
        "audit verify says ok\n{report}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
