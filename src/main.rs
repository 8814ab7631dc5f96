//! The `leash` command line (SPEC §10).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use leash::ca::{CaOrigin, CertificateAuthority};
use leash::config::Config;

/// `println!` for command output, in a function returning
/// `Result<_, String>`: a reader that went away (`leash audit export |
/// head -1`) ends leash quietly with exit 0, the way SIGPIPE ends a C tool
/// (Rust ignores SIGPIPE, and `println!` would panic); any other write
/// error is returned (`?` is inside the macro).
macro_rules! outln {
    ($($arg:tt)*) => {
        write_stdout(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

/// `print!` for command output; see [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {
        write_stdout(format_args!($($arg)*))?
    };
}

/// `eprintln!` that never panics: with stderr gone (`2>&1 | head`) there
/// is no one left to tell.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Writes to stdout for [`outln!`] and [`out!`].
fn write_stdout(text: std::fmt::Arguments) -> Result<(), String> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_fmt(text).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(error) => Err(format!("cannot write to stdout: {error}")),
    }
}

/// leash: a sidecar proxy that puts AI agents on a leash when they spend money.
///
/// Agents send their HTTPS traffic through leash (HTTPS_PROXY). leash reads
/// every money-moving request to the vendors its adapters know and
/// forwards it, refuses it, or holds it for a human, writing every decision
/// to a tamper-evident audit chain.
#[derive(Parser, Debug)]
#[command(name = "leash", version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug)]
struct Global {
    /// Configuration file [default: ./leash.yaml if present, else built-in defaults]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "LEASH_LOG_FORMAT")]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines with key=value fields.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the proxy and the admin API.
    ///
    /// Reads ./leash.yaml (or --config FILE) if present, otherwise runs with
    /// the defaults: proxy on 127.0.0.1:8080, admin on 127.0.0.1:8081, CA in
    /// certs/, database in ./data, policies from ./policies. Log verbosity:
    /// LEASH_LOG (e.g. LEASH_LOG=debug).
    Run,
    /// Manage leash's certificate authority.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Print the environment an agent needs to go through leash.
    ///
    /// The proxy variables (HTTPS_PROXY, HTTP_PROXY and their lower-case
    /// twins, which gRPC reads) with the agent's proxy credentials; the CA
    /// variables every measured client reads (SSL_CERT_FILE,
    /// REQUESTS_CA_BUNDLE, AWS_CA_BUNDLE, CURL_CA_BUNDLE,
    /// GRPC_DEFAULT_SSL_ROOTS_FILE_PATH: the bundle of system roots plus
    /// leash's CA, written to certs/leash-bundle.pem so tunnelled hosts keep
    /// verifying; NODE_EXTRA_CA_CERTS: leash's CA alone); and
    /// NODE_USE_ENV_PROXY=1 (Node >= 22.21 / 24.5 route fetch through the
    /// proxy variables only then).
    ///
    /// An agent with a token needs it in LEASH_AGENT_TOKEN (or --token):
    /// without it every request would be refused 407, so leash env refuses
    /// instead. Shell formats name the variable; dotenv and json, which no
    /// shell expands, carry the token itself.
    ///
    ///     eval "$(leash env --agent growth-agent)"
    ///     leash env --agent growth-agent --format fish | source
    ///     leash env --agent growth-agent --format dotenv > agent.env
    Env(EnvArgs),
    /// Check, test and describe policy stacks.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Verify, export and follow the audit chain.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Show the decision and every rule's verdict for a described intent.
    ///
    /// Nothing is sent anywhere: the intent is decided against the policies
    /// directory (policies: in leash.yaml) at the given time and prior spend.
    /// Example: leash explain --agent growth-agent
    ///   --operation payment_intent.create --amount 1800 --currency EUR
    ///   --at 2026-11-24T10:00:00+01:00 --spent 4200
    Explain(ExplainArgs),
    /// List, approve and reject held requests, through the admin API.
    ///
    /// Authenticates with an approver's token, read from LEASH_APPROVER_TOKEN
    /// or --token-file (never from the command line, where other users can
    /// see it). The approver is whoever owns the token; votes are recorded
    /// in the audit chain with channel "cli".
    #[command(subcommand)]
    Holds(HoldsCommand),
    /// Show where each cap stands: its window, spent, reserved and left.
    ///
    /// Asks the running leash (GET /v1/spend on the admin API), so the
    /// numbers are the live ledger's, measured by the policies in force:
    /// "left" is the most the next request may add before the cap fires.
    /// "reserved" is approved spend whose vendor answer has not come yet
    /// (it counts). A cap counted per beneficiary or per category shows
    /// numbers for the one named with --beneficiary or --category.
    ///
    /// Needs an approver's or auditor's token, from LEASH_AUDIT_TOKEN (else
    /// LEASH_APPROVER_TOKEN) or --token-file.
    ///
    ///     leash spend --agent growth-agent
    Spend(SpendArgs),
}

#[derive(Args, Debug)]
struct SpendArgs {
    /// Only this agent's caps [default: every agent the config and the
    /// policies name].
    #[arg(long)]
    agent: Option<String>,
    /// The beneficiary whose per-beneficiary caps to show.
    #[arg(long)]
    beneficiary: Option<String>,
    /// The category whose per-category caps to show.
    #[arg(long)]
    category: Option<String>,
    /// The admin API's base URL [default: http:// and admin: from the config]
    #[arg(long, value_name = "URL")]
    admin: Option<String>,
    /// A file holding the token [default: $LEASH_AUDIT_TOKEN, else
    /// $LEASH_APPROVER_TOKEN]
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Print the API's JSON answer instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum HoldsCommand {
    /// List holds, oldest pending first (all states with --state all).
    List {
        /// pending, approved, rejected, expired, releasing, released, outcome_unknown, or all.
        #[arg(long, default_value = "pending")]
        state: String,
        #[command(flatten)]
        api: AdminArgs,
    },
    /// Show one hold: its request, rules, approvals and what is still needed.
    Show {
        /// The hold id (hold_…), as in X-Leash-Hold-Id or the notification.
        id: String,
        #[command(flatten)]
        api: AdminArgs,
    },
    /// Approve a hold. It is released once every rule has its approvals.
    Approve {
        id: String,
        /// A note kept with the vote in the audit chain.
        #[arg(long)]
        comment: Option<String>,
        /// For a hold with no amount leash could read (unknown, unreadable):
        /// the amount the request moves, exact (4000.00). The REJECT rules
        /// and caps check it at release, and it is what is reserved.
        #[arg(long, requires = "currency", value_name = "AMOUNT")]
        amount: Option<String>,
        /// The stated amount's ISO 4217 currency (EUR).
        #[arg(long, requires = "amount", value_name = "CUR")]
        currency: Option<String>,
        #[command(flatten)]
        api: AdminArgs,
    },
    /// Reject a hold. One eligible rejection rejects it.
    Reject {
        id: String,
        /// Why, kept with the vote in the audit chain.
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        api: AdminArgs,
    },
}

#[derive(Args, Debug)]
struct AdminArgs {
    /// The admin API's base URL [default: http:// and admin: from the config]
    #[arg(long, value_name = "URL")]
    admin: Option<String>,
    /// A file holding the approver's token [default: $LEASH_APPROVER_TOKEN]
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Print the API's JSON answer instead of a summary.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum PolicyCommand {
    /// Validate every policy file; errors as file:line:column.
    ///
    /// Checks unknown keys, wrong types, unknown currencies, timezones and
    /// approvers, and priorities that collide in any agent's merged stack.
    /// Exits non-zero when any file has an error; warnings do not fail.
    Check(PolicyDirArgs),
    /// Run the policy tests in <policies>/tests/*.yaml.
    ///
    /// Each case gives an intent, a clock time and prior spend, and expects
    /// an action and deciding rule (like `opa test`). Exits non-zero when a
    /// case fails, printing every rule's verdict for it.
    Test(PolicyDirArgs),
    /// Print the JSON Schema of a policy file (for editors).
    Schema,
    /// Re-decide the audited requests under candidate policies and list
    /// every decision that would change (a backtest before shipping).
    ///
    /// Each decision is re-decided at the time it was made, with the spend
    /// it saw (rebuilt from the chain). Needs the database, so run it on a
    /// stopped leash or on a copy of data_dir.
    Replay(ReplayArgs),
}

#[derive(Args, Debug)]
struct ReplayArgs {
    /// The candidate policies directory.
    #[arg(long, value_name = "DIR")]
    policies: PathBuf,
    /// Only report decisions from this sequence number on.
    #[arg(long, value_name = "SEQ", default_value_t = 0)]
    since: u64,
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Walk the chain and check every hash, link and checkpoint signature.
    ///
    /// Exit 0 with the entry count and head hash, or non-zero naming the
    /// first entry that was changed, removed or reordered. Also checks the
    /// chain against a checkpoint note (a copy of data_dir/checkpoint kept
    /// off-box), so a chain cut shorter than it is detected. Reads the
    /// database of a stopped leash (or a copy of data_dir); while leash
    /// runs, streams its chain through the admin API (with
    /// LEASH_AUDIT_TOKEN or --token-file) and checks it here.
    Verify {
        /// A checkpoint note to check the chain against [default:
        /// data_dir/checkpoint when present].
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        /// The public key to check signatures with [default:
        /// leash-audit.pub beside the CA key]. Repeat it for chains of
        /// several instances signed with different keys: each chain must
        /// verify with one of them.
        #[arg(long, value_name = "FILE")]
        public_key: Vec<PathBuf>,
        /// Verify a running leash's chain through its admin API at ADDR
        /// (host:port, or http://host:port) instead of a database. The
        /// entries are streamed with GET /v1/audit and checked here, with
        /// the key and checkpoint given here. Without it, the database is
        /// read, or the admin API from the config when leash holds it.
        #[arg(long, value_name = "ADDR")]
        admin: Option<String>,
        /// A file holding the token for the admin API [default:
        /// $LEASH_AUDIT_TOKEN]
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// Chains to verify instead of the config's data_dir: data dirs
        /// (of stopped leash, or copies) and `leash audit export` files,
        /// one per instance sharing a ledger (SPEC §11). Each is verified
        /// on its own; a data dir is checked against its own `checkpoint`
        /// note when it has one.
        #[arg(value_name = "DIR_OR_EXPORT")]
        sources: Vec<PathBuf>,
    },
    /// Write entries as JSON Lines to stdout.
    ///
    /// Reads the database directly, or through the admin API
    /// (GET /v1/audit) when a running leash holds it; the API needs an
    /// approver's or auditor's token, from LEASH_AUDIT_TOKEN or
    /// --token-file (never from the command line, where other users of the
    /// machine could read it).
    Export {
        /// Start at this sequence number.
        #[arg(long, value_name = "SEQ")]
        since: Option<u64>,
        /// Only entries of this agent.
        #[arg(long)]
        agent: Option<String>,
        /// A file holding the token for the admin API [default:
        /// $LEASH_AUDIT_TOKEN]
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
    },
    /// Print the latest entries, one line each; -f follows new ones.
    ///
    /// Like export, reads the database or, while leash runs, the admin API
    /// with the token from LEASH_AUDIT_TOKEN or --token-file.
    Tail {
        /// Keep printing new entries as they are appended.
        #[arg(short, long)]
        follow: bool,
        /// How many of the latest entries to show first.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: u64,
        /// A file holding the token for the admin API [default:
        /// $LEASH_AUDIT_TOKEN]
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
struct PolicyDirArgs {
    /// The policies directory [default: policies: from the config]
    #[arg(long, value_name = "DIR")]
    policies: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct ExplainArgs {
    /// The agent sending the request.
    #[arg(long)]
    agent: String,
    /// The vendor: a built-in adapter's name or a custom vendor's.
    #[arg(long, default_value = leash::adapters::DEFAULT_VENDOR)]
    vendor: String,
    /// The operation (payment_intent.create, refund.create, ...).
    #[arg(long, default_value = "payment_intent.create")]
    operation: String,
    /// The amount in major units, as an exact decimal (120, 1500.50).
    #[arg(long)]
    amount: Option<rust_decimal::Decimal>,
    /// The amount's currency (EUR, USD, JPY, BTC, ...).
    #[arg(long)]
    currency: Option<String>,
    /// Who receives the money (customer, account, IBAN, wallet).
    #[arg(long)]
    beneficiary: Option<String>,
    /// The intent's category.
    #[arg(long, default_value = "payment")]
    category: String,
    /// When the request is made (RFC 3339) [default: now].
    #[arg(long)]
    at: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// Prior spend of this agent in the current window, in the intent's
    /// currency (repeatable).
    #[arg(long)]
    spent: Vec<rust_decimal::Decimal>,
}

#[derive(Subcommand, Debug)]
enum CaCommand {
    /// Create the CA if it does not exist yet (never overwrites one).
    Init,
    /// Print the CA certificate (PEM) to stdout, for agents to trust.
    Export,
}

#[derive(Args, Debug)]
struct EnvArgs {
    /// Agent name to put in the proxy URL [default: default_agent, else the
    /// first agent in agents:, else "agent"]
    #[arg(long)]
    agent: Option<String>,
    /// Token to put in the proxy URL. Tokens are not stored by leash (only
    /// their SHA-256), so by default the URL says ${LEASH_AGENT_TOKEN}.
    #[arg(long, env = "LEASH_AGENT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The proxy address agents reach leash at [default: listen: from the
    /// config]. Needed when listen: has port 0 (chosen at start), or when
    /// agents reach leash by another address (a container's service name).
    #[arg(long, value_name = "HOST:PORT")]
    proxy: Option<String>,
    /// sh (export lines), fish (set -gx), dotenv (NAME=value; values with
    /// spaces or quotes double-quoted), json (one object).
    #[arg(long, value_enum, default_value = "sh")]
    format: leash::agent_env::Format,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.global.log_format);
    leash::install_crypto_provider();
    match dispatch(cli) {
        Ok(code) => code,
        Err(message) => {
            errln!("leash: {message}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LEASH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour_on_stderr());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Colours in the text logs only for a person: stderr is a terminal, and
/// `NO_COLOR` (https://no-color.org) is unset or empty.
fn colour_on_stderr() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn dispatch(cli: Cli) -> Result<ExitCode, String> {
    let config = Config::load(cli.global.config.as_deref()).map_err(|e| e.to_string())?;
    match cli.command {
        Command::Run => run(config, cli.global.log_format),
        Command::Ca(CaCommand::Init) => {
            let (_, origin) = load_ca(&config)?;
            match origin {
                CaOrigin::Created => outln!("created {}", config.ca.cert.display()),
                CaOrigin::Loaded => outln!(
                    "{} already exists; leash never overwrites a CA",
                    config.ca.cert.display()
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Ca(CaCommand::Export) => {
            let (ca, _) = load_ca(&config)?;
            out!("{}", ca.cert_pem());
            Ok(ExitCode::SUCCESS)
        }
        Command::Env(args) => env(&config, args),
        Command::Explain(args) => explain(&config, args),
        Command::Policy(PolicyCommand::Check(args)) => policy_check(&config, args),
        Command::Policy(PolicyCommand::Test(args)) => policy_test(&config, args),
        Command::Policy(PolicyCommand::Replay(args)) => policy_replay(&config, args),
        Command::Audit(command) => audit_command(&config, command),
        Command::Holds(command) => holds_command(&config, command),
        Command::Spend(args) => spend_command(&config, args),
        Command::Policy(PolicyCommand::Schema) => {
            let schema = leash::policy::schema::policy_json_schema();
            let text = serde_json::to_string_pretty(&schema)
                .map_err(|e| format!("cannot render the schema: {e}"))?;
            outln!("{text}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn load_policies(config: &Config) -> Result<leash::policy::model::PolicySet, String> {
    leash::policy::load::load_policy_set(&config.policies, config).map_err(join_errors)
}

fn policy_check(config: &Config, args: PolicyDirArgs) -> Result<ExitCode, String> {
    let dir = args.policies.unwrap_or_else(|| config.policies.clone());
    let check = leash::policy::load::check_dir(&dir, config);
    for warning in &check.warnings {
        errln!("warning: {warning}");
    }
    for error in &check.errors {
        errln!("error: {error}");
    }
    match &check.set {
        Some(set) if check.ok() && set.stacks.is_empty() => {
            errln!("error: {}", no_stacks(&dir));
            Ok(ExitCode::FAILURE)
        }
        Some(set) if check.ok() => {
            outln!(
                "{}: {} stack file(s), {} test case(s), policy set {}",
                dir.display(),
                set.stacks.len(),
                check.test_cases,
                set.hash
            );
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            errln!("{} error(s)", check.errors.len());
            Ok(ExitCode::FAILURE)
        }
    }
}

fn policy_test(config: &Config, args: PolicyDirArgs) -> Result<ExitCode, String> {
    let dir = args.policies.unwrap_or_else(|| config.policies.clone());
    let set = leash::policy::load::load_policy_set(&dir, config).map_err(join_errors)?;
    if set.stacks.is_empty() {
        return Err(no_stacks(&dir));
    }
    let report = leash::policy::testing::run_tests(&set, &dir).map_err(join_errors)?;
    out!("{report}");
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Why `policy check` and `policy test` fail on a directory without a
/// stack: nothing to check is almost always the wrong directory (`leash
/// run` only warns, and refuses every request that may move money).
fn no_stacks(dir: &Path) -> String {
    let what = if dir.is_dir() {
        "has no policy files (*.yaml or *.yml directly in it)"
    } else {
        "does not exist"
    };
    format!(
        "{}: the policies directory {what}, so there is nothing to check; give the directory with --policies DIR or policies: in leash.yaml",
        dir.display()
    )
}

fn policy_replay(config: &Config, args: ReplayArgs) -> Result<ExitCode, String> {
    let candidate =
        leash::policy::load::load_policy_set(&args.policies, config).map_err(join_errors)?;
    let source = AuditSource::Local(open_store(config)?);
    let mut entries = Vec::new();
    source.each_after(None, |entry| {
        entries.push(entry.clone());
        Ok(())
    })?;
    let report = leash::replay::replay(entries, &candidate, args.since);
    for change in &report.changes {
        let rule = |r: Option<u32>| r.map(|p| format!(" (rule {p})")).unwrap_or_default();
        outln!(
            "seq {:>6}  {}  {}  {}  {}{} -> {}{}  {}",
            change.seq,
            change.at.to_rfc3339(),
            change.agent,
            change.what,
            change.before.0,
            rule(change.before.1),
            change.after.0,
            rule(change.after.1),
            change.reason
        );
    }
    for (seq, why) in &report.skipped {
        errln!("seq {seq}: not replayed: {why}");
    }
    outln!(
        "{} decision(s) replayed under policy set {}: {} would change",
        report.replayed,
        candidate.hash,
        report.changes.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn open_store(config: &Config) -> Result<leash::store::Store, String> {
    leash::store::Store::open(&config.data_dir).map_err(|e| match e {
        leash::store::StoreError::Locked { .. } => format!(
            "{e}\n(to read the database while leash runs, copy data_dir and point --config at a leash.yaml whose data_dir is the copy)"
        ),
        other => other.to_string(),
    })
}

/// Where audit entries are read from: the database, or a running leash's
/// admin API when it holds the database.
enum AuditSource {
    Local(leash::store::Store),
    /// The admin API's address and the bearer token it needs.
    Admin(std::net::SocketAddr, String),
}

impl AuditSource {
    /// The database when leash is not running; else the admin API, with
    /// the token from `token_file` or `LEASH_AUDIT_TOKEN`.
    fn open(config: &Config, token_file: Option<&Path>) -> Result<Self, String> {
        match leash::store::Store::open(&config.data_dir) {
            Ok(store) => Ok(AuditSource::Local(store)),
            // Not locked: a database that does not open is the error.
            Err(error @ leash::store::StoreError::Open { .. })
            | Err(error @ leash::store::StoreError::Sled(_))
            | Err(error @ leash::store::StoreError::Corrupt { .. }) => Err(error.to_string()),
            Err(leash::store::StoreError::Locked { .. }) => Ok(AuditSource::Admin(
                loopback_if_unspecified(config.admin),
                audit_token(token_file).map_err(|e| {
                    format!("the database is in use by a running leash, so entries are read through its admin API: {e}")
                })?,
            )),
        }
    }

    /// The admin API at `addr` (`host:port` or `http://host:port`), with
    /// the token from `token_file` or `LEASH_AUDIT_TOKEN`.
    fn admin(addr: &str, token_file: Option<&Path>) -> Result<Self, String> {
        let bare = addr
            .strip_prefix("http://")
            .unwrap_or(addr)
            .trim_end_matches('/');
        let addr = std::net::ToSocketAddrs::to_socket_addrs(bare)
            .map_err(|e| format!("--admin {addr}: {e}"))?
            .next()
            .ok_or_else(|| format!("--admin {addr}: no address"))?;
        Ok(AuditSource::Admin(addr, audit_token(token_file)?))
    }

    /// Verifies the chain the admin API serves, page by page, here: an
    /// error reading a page is `Err`, a chain that does not verify is
    /// `Ok(Err)`.
    fn verify_served(
        &self,
        key: &leash::audit::PublicKey,
        external: Option<&leash::audit::Checkpoint>,
    ) -> Result<Result<leash::audit::VerifyReport, leash::audit::VerifyError>, String> {
        let mut walk = match leash::audit::ChainWalk::new(key, external) {
            Ok(walk) => walk,
            Err(error) => return Ok(Err(error)),
        };
        loop {
            let after = walk.next_seq().checked_sub(1);
            let page = self.fetch(after, 1000)?;
            if page.is_empty() {
                return Ok(walk.finish());
            }
            for entry in page {
                if let Err(error) = walk.served(entry) {
                    return Ok(Err(error));
                }
            }
        }
    }

    /// Calls `f` on every entry after `after`, in order, a page at a time;
    /// returns the last sequence number seen.
    fn each_after(
        &self,
        mut after: Option<u64>,
        mut f: impl FnMut(&serde_json::Value) -> Result<(), String>,
    ) -> Result<Option<u64>, String> {
        loop {
            let batch = self.fetch(after, 1000)?;
            let Some(last) = batch
                .last()
                .and_then(|e| e.get("seq"))
                .and_then(|s| s.as_u64())
            else {
                return Ok(after);
            };
            for entry in &batch {
                f(entry)?;
            }
            after = Some(last);
        }
    }

    fn fetch(&self, after: Option<u64>, limit: usize) -> Result<Vec<serde_json::Value>, String> {
        match self {
            AuditSource::Local(store) => {
                leash::audit::read_entries(store, after, limit).map_err(|e| e.to_string())
            }
            AuditSource::Admin(addr, token) => {
                let mut path = format!("/v1/audit?limit={limit}");
                if let Some(after) = after {
                    path.push_str(&format!("&after={after}"));
                }
                let body = admin_get(*addr, &path, token)?;
                let json: serde_json::Value =
                    serde_json::from_str(&body).map_err(|e| format!("admin API at {addr}: {e}"))?;
                Ok(json
                    .get("entries")
                    .and_then(|e| e.as_array())
                    .cloned()
                    .unwrap_or_default())
            }
        }
    }
}

/// A plain HTTP/1.1 GET to the admin listener (loopback, no TLS).
/// The token for `GET /v1/audit`: from `token_file`, else
/// `LEASH_AUDIT_TOKEN`.
fn audit_token(token_file: Option<&Path>) -> Result<String, String> {
    let token = match token_file {
        Some(file) => std::fs::read_to_string(file)
            .map_err(|e| format!("{}: {e}", file.display()))?
            .trim()
            .to_string(),
        None => std::env::var("LEASH_AUDIT_TOKEN").map_err(|_| {
            "the admin API needs a token: set LEASH_AUDIT_TOKEN or pass --token-file FILE (an approver's or an auditor's token)".to_string()
        })?,
    };
    if token.is_empty() || token.chars().any(char::is_control) {
        return Err("the audit token is empty or holds control characters".to_string());
    }
    Ok(token)
}

fn admin_get(addr: std::net::SocketAddr, path: &str, token: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let unreachable = |e: std::io::Error| format!("the admin API at {addr} does not answer: {e}");
    let mut stream = std::net::TcpStream::connect(addr).map_err(unreachable)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .map_err(unreachable)?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(unreachable)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("admin API at {addr}: malformed answer"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "admin API at {addr}: {}",
            head.lines().next().unwrap_or("")
        ));
    }
    Ok(body.to_string())
}

/// `leash audit verify DIR_OR_EXPORT...`: verifies each chain on its own
/// (the chains of the instances sharing a ledger, SPEC §11) and reports
/// each, with the instance id its entries name. Fails if any fails.
fn verify_chains(
    config: &Config,
    sources: &[PathBuf],
    key_paths: &[PathBuf],
    checkpoint: Option<&Path>,
) -> Result<ExitCode, String> {
    if checkpoint.is_some() && sources.len() > 1 {
        return Err("--checkpoint names one chain's note: with several chains, each data dir is checked against its own data_dir/checkpoint".to_string());
    }
    let key_paths = if key_paths.is_empty() {
        vec![leash::audit::public_key_path(
            &leash::server::audit_key_path(config),
        )]
    } else {
        key_paths.to_vec()
    };
    let mut keys = Vec::new();
    for path in &key_paths {
        keys.push(leash::audit::PublicKey::read_file(path).map_err(|e| e.to_string())?);
    }
    let mut failed = false;
    let mut owners: std::collections::BTreeMap<String, PathBuf> = Default::default();
    for source in sources {
        let shown = source.display();
        match verify_one_chain(source, &keys, checkpoint) {
            Ok((report, instances)) => {
                let instance = match instances.as_slice() {
                    [] => "no instance id (written before instance ids)".to_string(),
                    [one] => format!("instance {one}"),
                    many => format!("instances {}", many.join(", ")),
                };
                outln!(
                    "{shown}: ok: {} entries, head {}, {} signed checkpoint(s) checked, {instance}",
                    report.entries,
                    report.head_hash.as_deref().unwrap_or("(empty chain)"),
                    report.checkpoints_checked,
                );
                for id in instances {
                    if let Some(other) = owners.insert(id.clone(), source.clone()) {
                        errln!("warning: {shown} and {} both name instance {id}: instances sharing a ledger need distinct instance ids", other.display());
                    }
                }
            }
            Err(error) => {
                failed = true;
                errln!("{shown}: audit chain verification FAILED: {error}");
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// One chain: a data dir (its database, and its `checkpoint` note unless
/// `checkpoint` is given) or an export file (JSON Lines, from entry 0).
/// Verified with each key until one verifies it; returns the report and
/// the instance ids its entries name, in order of first appearance.
fn verify_one_chain(
    source: &Path,
    keys: &[leash::audit::PublicKey],
    checkpoint: Option<&Path>,
) -> Result<(leash::audit::VerifyReport, Vec<String>), String> {
    let note = match checkpoint {
        Some(path) => Some(path.to_path_buf()),
        None => {
            let default = source.join("checkpoint");
            (source.is_dir() && default.exists()).then_some(default)
        }
    };
    let external = match &note {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Some(
                leash::audit::parse_checkpoint_file(&text)
                    .map_err(|e| format!("{}: {e}", path.display()))?,
            )
        }
        None => None,
    };
    let mut instances: Vec<String> = Vec::new();
    let mut note_instance = |entry: &serde_json::Value| {
        if let Some(id) = entry["details"]["instance"].as_str() {
            if !instances.iter().any(|i| i == id) {
                instances.push(id.to_string());
            }
        }
    };
    let mut last_error = None;
    if source.is_dir() {
        // Opening a directory that holds no database would create one.
        if !source.join("db").exists() && !source.join("conf").exists() {
            return Err("not a leash data_dir (no database in it)".to_string());
        }
        let store = leash::store::Store::open(source).map_err(|e| match e {
            leash::store::StoreError::Locked { .. } => {
                format!("{e}\n(verify a running leash with --admin, or a copy of its data_dir)")
            }
            other => other.to_string(),
        })?;
        let mut after = None;
        loop {
            let page =
                leash::audit::read_entries(&store, after, 1000).map_err(|e| e.to_string())?;
            let Some(last) = page.last().and_then(|e| e["seq"].as_u64()) else {
                break;
            };
            page.iter().for_each(&mut note_instance);
            after = Some(last);
        }
        for key in keys {
            match leash::audit::verify(&store, key, external.as_ref()) {
                Ok(report) => return Ok((report, instances)),
                Err(error) => last_error = Some(error.to_string()),
            }
        }
    } else {
        let text =
            std::fs::read_to_string(source).map_err(|e| format!("{}: {e}", source.display()))?;
        let mut entries = Vec::new();
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let entry: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| format!("line {}: not a JSON entry: {e}", n + 1))?;
            note_instance(&entry);
            entries.push(entry);
        }
        'keys: for key in keys {
            let mut walk = match leash::audit::ChainWalk::new(key, external.as_ref()) {
                Ok(walk) => walk,
                Err(error) => {
                    last_error = Some(error.to_string());
                    continue;
                }
            };
            for entry in &entries {
                if let Err(error) = walk.served(entry.clone()) {
                    last_error = Some(error.to_string());
                    continue 'keys;
                }
            }
            match walk.finish() {
                Ok(report) => return Ok((report, instances)),
                Err(error) => last_error = Some(error.to_string()),
            }
        }
    }
    Err(last_error.unwrap_or_else(|| "no public key to check it with".to_string()))
}

fn audit_command(config: &Config, command: AuditCommand) -> Result<ExitCode, String> {
    match command {
        AuditCommand::Verify {
            checkpoint,
            public_key,
            admin,
            token_file,
            sources,
        } => {
            if !sources.is_empty() {
                if admin.is_some() {
                    return Err("--admin verifies one running leash: give data dirs and exports without it, or --admin alone".to_string());
                }
                return verify_chains(config, &sources, &public_key, checkpoint.as_deref());
            }
            let public_key = public_key.into_iter().next();
            let source = match admin {
                Some(addr) => AuditSource::admin(&addr, token_file.as_deref())?,
                None => AuditSource::open(config, token_file.as_deref())?,
            };
            let key_path = public_key.unwrap_or_else(|| {
                leash::audit::public_key_path(&leash::server::audit_key_path(config))
            });
            let key = leash::audit::PublicKey::read_file(&key_path).map_err(|e| e.to_string())?;
            let note_path = checkpoint.clone().or_else(|| {
                let default = config.data_dir.join("checkpoint");
                default.exists().then_some(default)
            });
            let external = match &note_path {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    Some(
                        leash::audit::parse_checkpoint_file(&text)
                            .map_err(|e| format!("{}: {e}", path.display()))?,
                    )
                }
                None => None,
            };
            let verified = match &source {
                AuditSource::Local(store) => leash::audit::verify(store, &key, external.as_ref()),
                AuditSource::Admin(..) => source.verify_served(&key, external.as_ref())?,
            };
            match verified {
                Ok(report) => {
                    outln!(
                        "ok: {} entries, head {}, {} signed checkpoint(s) checked{}",
                        report.entries,
                        report.head_hash.as_deref().unwrap_or("(empty chain)"),
                        report.checkpoints_checked,
                        note_path
                            .map(|p| format!(", consistent with {}", p.display()))
                            .unwrap_or_default()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => {
                    errln!("audit chain verification FAILED: {error}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        AuditCommand::Export {
            since,
            agent,
            token_file,
        } => {
            let source = AuditSource::open(config, token_file.as_deref())?;
            source.each_after(since.and_then(|s| s.checked_sub(1)), |entry| {
                let matches = agent
                    .as_deref()
                    .is_none_or(|a| entry.get("agent").and_then(|v| v.as_str()) == Some(a));
                if matches {
                    outln!("{entry}");
                }
                Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Tail {
            follow,
            lines,
            token_file,
        } => {
            let source = AuditSource::open(config, token_file.as_deref())?;
            // Find the head, then show the last `lines` entries.
            let head = source.each_after(None, |_| Ok(()))?;
            // From the start when the chain is shorter than `lines`.
            let mut after = head.and_then(|h| h.checked_sub(lines));
            loop {
                after = source.each_after(after, |entry| {
                    outln!("{}", leash::audit::one_line(entry));
                    Ok(())
                })?;
                if !follow {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn join_errors(errors: Vec<leash::yaml::YamlError>) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn explain(config: &Config, args: ExplainArgs) -> Result<ExitCode, String> {
    let set = load_policies(config)?;
    let described = leash::explain::Described {
        agent: args.agent,
        vendor: args.vendor,
        operation: args.operation,
        amount: args.amount,
        currency: args.currency,
        beneficiary: args.beneficiary,
        category: args.category,
        at: args
            .at
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_else(chrono::Utc::now),
        spent: args.spent,
    };
    let decision = leash::explain::explain(&set, &described)?;
    outln!("policy set {}", set.hash);
    out!("{}", leash::explain::render(&decision));
    Ok(ExitCode::SUCCESS)
}

fn load_ca(config: &Config) -> Result<(CertificateAuthority, CaOrigin), String> {
    CertificateAuthority::load_or_create(&config.ca.cert, &config.ca.key).map_err(|e| e.to_string())
}

/// `leash run`: serves until SIGTERM or SIGINT (Ctrl-C), then stops
/// gracefully ([`leash::server::Running::shutdown`], within
/// [`leash::lifecycle::GRACE`]) and exits 0; a second signal exits at once
/// (128 + the signal's number).
///
/// Once listening, it says what it runs with ([`leash::startup`]): a short
/// block for a person when stderr is a terminal and the log format is text,
/// log lines (one per agent, one per policy stack, the approvers, the next
/// command) otherwise, since then a log collector reads stderr.
fn run(config: Config, format: LogFormat) -> Result<ExitCode, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let result = runtime.block_on(async {
        // Before start-up: a signal during it then stops leash gracefully
        // once it has started, instead of killing it half-way.
        let mut signals = Signals::install()?;
        if let Some(source) = &config.source {
            tracing::info!(config = %source.display(), "configuration loaded");
        } else {
            tracing::info!("no leash.yaml: running with the built-in defaults");
        }
        let mut running = leash::server::start(&config)
            .await
            .map_err(|e| e.to_string())?;
        let summary = leash::startup::Summary::new(
            &config,
            &running.policies(),
            running.proxy_addr,
            running.admin_addr,
            &program_name(),
        );
        let human = matches!(format, LogFormat::Text)
            && std::io::IsTerminal::is_terminal(&std::io::stderr());
        if human {
            errln!("{}", summary.human().trim_end());
        } else {
            summary.log();
        }
        let signal = tokio::select! {
            signal = signals.next() => signal,
            () = running.listener_ended() => {
                return Err("a listener stopped on its own; leash serves nothing there, so it exits".to_string());
            }
        };
        let grace = leash::lifecycle::GRACE;
        tracing::info!(
            signal = signal.name,
            grace = %humantime::format_duration(grace),
            "{}: stopping gracefully (the same signal again stops at once)",
            signal.name
        );
        let stop = running.shutdown(grace, signal.name);
        tokio::pin!(stop);
        tokio::select! {
            stopped = &mut stop => {
                tracing::info!(
                    drained = stopped.drained,
                    connections_cut = stopped.cut,
                    recorded = stopped.recorded,
                    "leash stopped"
                );
                Ok(ExitCode::SUCCESS)
            }
            again = signals.next() => {
                tracing::warn!(signal = again.name, "second signal: exiting at once");
                std::process::exit(again.code);
            }
        }
    });
    // What is still running (a connection cut at the end of the grace
    // period) is dropped, not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

/// How the user ran leash (argv[0]), so that a suggested command works as
/// printed (`target/release/leash env ...` under cargo).
fn program_name() -> String {
    std::env::args_os()
        .next()
        .map(|arg| arg.to_string_lossy().into_owned())
        .filter(|arg| !arg.is_empty())
        .unwrap_or_else(|| "leash".to_string())
}

/// The signals that stop `leash run`: SIGTERM (Kubernetes, systemd,
/// `docker stop`) and SIGINT (Ctrl-C), handled alike.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

/// A signal received: its name, and the exit code of a stop at once.
#[derive(Debug, Clone, Copy)]
struct Caught {
    name: &'static str,
    code: i32,
}

impl Signals {
    fn install() -> Result<Self, String> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let term = signal(SignalKind::terminate())
                .map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
            let interrupt = signal(SignalKind::interrupt())
                .map_err(|e| format!("cannot handle SIGINT: {e}"))?;
            Ok(Self { term, interrupt })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// The next signal. A stream that can deliver no more never resolves.
    async fn next(&mut self) -> Caught {
        #[cfg(unix)]
        {
            let Self { term, interrupt } = self;
            tokio::select! {
                Some(()) = term.recv() => Caught { name: "SIGTERM", code: 128 + 15 },
                Some(()) = interrupt.recv() => Caught { name: "SIGINT", code: 128 + 2 },
                else => std::future::pending().await,
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
            Caught {
                name: "Ctrl-C",
                code: 128 + 2,
            }
        }
    }
}

fn env(config: &Config, args: EnvArgs) -> Result<ExitCode, String> {
    use leash::agent_env::{AgentEnv, Token, TOKEN_VAR};
    let (ca, _) = load_ca(config)?;
    let agent = args
        .agent
        .or_else(|| config.default_agent.clone())
        .or_else(|| config.agents.keys().next().cloned())
        .unwrap_or_else(|| "agent".to_string());
    if !config.agents.is_empty() && !config.agents.contains_key(&agent) {
        let known: Vec<&str> = config.agents.keys().map(String::as_str).collect();
        return Err(format!(
            "agent {agent:?} is not in agents:, so leash would refuse its requests with 407; \
             list it in the config, or use one of: {}",
            known.join(", ")
        ));
    }
    let needs = config.agents.get(&agent).and_then(|a| a.token_sha256);
    let token = match (needs, args.token) {
        (None, _) => Token::None,
        (Some(_), None) => {
            return Err(format!(
                "agent {agent:?} has a token (agents.{agent}.token_sha256), and {TOKEN_VAR} is not set: \
                 every request it sends would be refused with 407. Set {TOKEN_VAR} to its token \
                 (or pass --token), then run leash env again"
            ))
        }
        (Some(sha), Some(token)) => {
            let got: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()).into();
            if !bool::from(subtle::ConstantTimeEq::ct_eq(&got[..], &sha[..])) {
                return Err(format!(
                    "the token in {TOKEN_VAR} (or --token) is not agent {agent:?}'s: its SHA-256 \
                     does not match agents.{agent}.token_sha256, so leash would refuse it with 407"
                ));
            }
            if std::env::var(TOKEN_VAR).ok().as_deref() == Some(token.as_str()) {
                Token::FromEnv(token)
            } else {
                Token::Given(token)
            }
        }
    };
    let bundle = write_trust_bundle(config, &ca)?;
    let ca_path = absolute(ca.cert_path());
    let proxy = match args.proxy {
        Some(proxy) => proxy,
        None if config.listen.port() == 0 => {
            return Err(format!(
                "listen: {} has port 0, chosen when leash starts: pass the address it printed with --proxy HOST:PORT",
                config.listen
            ))
        }
        None => loopback_if_unspecified(config.listen).to_string(),
    };
    let vars = AgentEnv::new(&agent, token, &proxy, &bundle, &ca_path);
    let comment =
        format!("leash: route this agent through the proxy as {agent:?} and trust leash's CA");
    out!("{}", vars.render(args.format, &comment));
    Ok(ExitCode::SUCCESS)
}

/// Writes `leash-bundle.pem` beside the CA: the system roots plus leash's CA.
///
/// `SSL_CERT_FILE` replaces a client's trust store rather than adding to it;
/// pointing it at leash's CA alone would break every tunnelled (not
/// intercepted) host. The bundle keeps both working.
fn write_trust_bundle(config: &Config, ca: &CertificateAuthority) -> Result<PathBuf, String> {
    let native = rustls_native_certs::load_native_certs();
    let mut pem = leash::ca::pem_encode_certificates(native.certs.iter().map(|c| c.as_ref()));
    pem.push_str(ca.cert_pem());
    let path = config
        .ca
        .cert
        .parent()
        .map(|dir| dir.join("leash-bundle.pem"))
        .unwrap_or_else(|| PathBuf::from("leash-bundle.pem"));
    std::fs::write(&path, pem).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(absolute(&path))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// `leash holds …`: one call to the admin API, summarised for people.
/// One call to the admin API at `admin` (a base URL; default: `admin:`
/// from the config), with `token` as the bearer: its status and JSON.
fn admin_call(
    config: &Config,
    admin: Option<&str>,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
    token: &str,
) -> Result<(reqwest::StatusCode, serde_json::Value), String> {
    let base = match admin {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => format!("http://{}", loopback_if_unspecified(config.admin)),
    };
    let url = format!("{base}{path}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        let mut request = client
            .request(method, &url)
            .bearer_auth(token)
            .header("x-leash-channel", "cli");
        if let Some(body) = body {
            // reqwest's `json` feature is not enabled for the binary.
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("the admin API at {base} does not answer: {e}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        let answer: serde_json::Value = serde_json::from_str(&text)
            .map_err(|_| format!("the admin API at {base} answered {status} without JSON"))?;
        Ok::<_, String>((status, answer))
    })
}

fn spend_command(config: &Config, args: SpendArgs) -> Result<ExitCode, String> {
    let token = match &args.token_file {
        Some(file) => audit_token(Some(file))?,
        None => match std::env::var("LEASH_AUDIT_TOKEN") {
            Ok(_) => audit_token(None)?,
            Err(_) => std::env::var("LEASH_APPROVER_TOKEN").map_err(|_| {
                "leash spend needs a token: set LEASH_AUDIT_TOKEN (or LEASH_APPROVER_TOKEN) or pass --token-file FILE (an approver's or an auditor's token)".to_string()
            })?,
        },
    };
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in [
        ("agent", &args.agent),
        ("beneficiary", &args.beneficiary),
        ("category", &args.category),
    ] {
        if let Some(value) = value {
            query.append_pair(key, value);
        }
    }
    let query = query.finish();
    let path = if query.is_empty() {
        "/v1/spend".to_string()
    } else {
        format!("/v1/spend?{query}")
    };
    let (status, answer) = admin_call(
        config,
        args.admin.as_deref(),
        reqwest::Method::GET,
        &path,
        None,
        &token,
    )?;
    if !status.is_success() {
        let message = answer["error"]["message"].as_str().unwrap_or("refused");
        return Err(format!("{status}: {message}"));
    }
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&answer).unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let agents = answer["agents"].as_array().cloned().unwrap_or_default();
    if agents.is_empty() {
        outln!("no agents");
    }
    for agent in &agents {
        let name = agent["agent"].as_str().unwrap_or("?");
        let caps = agent["caps"].as_array().cloned().unwrap_or_default();
        if caps.is_empty() {
            outln!("{name}: no caps");
            continue;
        }
        outln!("{name}");
        for cap in &caps {
            outln!("{}", spend_line(cap));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One cap of `GET /v1/spend`, as two lines: what it counts, then its
/// numbers (or why there are none).
fn spend_line(cap: &serde_json::Value) -> String {
    let text = |key: &str| cap[key].as_str().unwrap_or("").to_string();
    let currency = text("currency");
    let money = |key: &str| -> Option<String> {
        let value: rust_decimal::Decimal = cap[key].as_str()?.parse().ok()?;
        let code = leash::money::Currency::parse(&currency).ok()?;
        Some(leash::policy::engine::fmt_number(value, code))
    };
    let scope = match (text("scope").as_str(), cap["scope_value"].as_str()) {
        ("all_agents", _) => "all agents".to_string(),
        (scope, Some(value)) => format!("{scope} {value}"),
        (scope, None) => format!("per {scope}"),
    };
    let tz: Option<chrono_tz::Tz> = text("timezone").parse().ok();
    let local = |key: &str| -> Option<String> {
        let at: chrono::DateTime<chrono::Utc> = cap[key].as_str()?.parse().ok()?;
        Some(at.with_timezone(&tz?).format("%Y-%m-%d %H:%M").to_string())
    };
    let window = match (local("from"), local("until")) {
        (Some(from), Some(until)) => format!("{from} to {until} {}", text("timezone")),
        _ => text("timezone"),
    };
    let shadow = if cap["shadow"].as_bool() == Some(true) {
        " (shadow)"
    } else {
        ""
    };
    let head = format!(
        "  #{} {} cap, {scope}: {window}{shadow}",
        cap["priority"],
        text("window"),
    );
    let numbers = match (
        money("limit"),
        money("spent"),
        money("reserved"),
        money("left"),
    ) {
        (Some(limit), Some(spent), Some(reserved), Some(left)) => format!(
            "      limit {limit} {currency}   spent {spent}   reserved {reserved}   left {left}"
        ),
        _ => format!(
            "      limit {} {currency}   {}",
            money("limit").unwrap_or_default(),
            cap["note"].as_str().unwrap_or("no numbers")
        ),
    };
    format!("{head}\n{numbers}")
}

fn holds_command(config: &Config, command: HoldsCommand) -> Result<ExitCode, String> {
    let (method, path, body, api) = match command {
        HoldsCommand::List { state, api } => {
            let path = if state == "all" {
                "/v1/holds".to_string()
            } else {
                state
                    .parse::<leash::holds::HoldState>()
                    .map_err(|e| format!("--state: {e}, or all"))?;
                format!("/v1/holds?state={state}")
            };
            (reqwest::Method::GET, path, None, api)
        }
        HoldsCommand::Show { id, api } => (
            reqwest::Method::GET,
            format!("/v1/holds/{}", segment(&id)?),
            None,
            api,
        ),
        HoldsCommand::Approve {
            id,
            comment,
            amount,
            currency,
            api,
        } => {
            // Sent as strings: the API takes no JSON numbers for money.
            let mut body = serde_json::json!({ "comment": comment });
            if let (Some(amount), Some(currency)) = (amount, currency) {
                body["amount"] = serde_json::Value::String(amount);
                body["currency"] = serde_json::Value::String(currency);
            }
            (
                reqwest::Method::POST,
                format!("/v1/holds/{}/approve", segment(&id)?),
                Some(body),
                api,
            )
        }
        HoldsCommand::Reject { id, comment, api } => (
            reqwest::Method::POST,
            format!("/v1/holds/{}/reject", segment(&id)?),
            Some(serde_json::json!({ "comment": comment })),
            api,
        ),
    };
    let token = match &api.token_file {
        Some(file) => std::fs::read_to_string(file)
            .map_err(|e| format!("{}: {e}", file.display()))?
            .trim()
            .to_string(),
        None => std::env::var("LEASH_APPROVER_TOKEN").map_err(|_| {
            "no approver token: set LEASH_APPROVER_TOKEN or pass --token-file FILE".to_string()
        })?,
    };
    let (status, answer) = admin_call(config, api.admin.as_deref(), method, &path, body, &token)?;
    if !status.is_success() {
        let message = answer["error"]["message"]
            .as_str()
            .unwrap_or("refused")
            .to_string();
        if api.json {
            outln!("{answer}");
        }
        return Err(format!("{status}: {message}"));
    }
    if api.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&answer).unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(holds) = answer["holds"].as_array() {
        if holds.is_empty() {
            outln!("no holds");
        }
        for hold in holds {
            outln!("{}", hold_line(hold));
        }
    } else if answer.get("vote").is_some() {
        outln!(
            "{}: {} by {} counted; the hold is {}",
            answer["hold"]["id"].as_str().unwrap_or(""),
            answer["vote"].as_str().unwrap_or(""),
            answer["approver"].as_str().unwrap_or(""),
            answer["state"].as_str().unwrap_or("")
        );
        if let Some(message) = answer["message"].as_str() {
            outln!("  {message}");
        }
    } else {
        let hold = &answer["hold"];
        outln!("{}", hold_line(hold));
        outln!("  why: {}", hold["reason"].as_str().unwrap_or(""));
        for approval in hold["approvals"].as_array().into_iter().flatten() {
            outln!(
                "  {} {} via {} at {}{}",
                approval["approver"].as_str().unwrap_or(""),
                approval["decision"].as_str().unwrap_or(""),
                approval["channel"].as_str().unwrap_or(""),
                approval["at"].as_str().unwrap_or(""),
                approval["comment"]
                    .as_str()
                    .map(|c| format!(": {c}"))
                    .unwrap_or_default()
            );
        }
        if let Some(resolution) = hold["resolution"].as_str() {
            outln!("  {resolution}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A hold id as one URL path segment; anything else is refused rather than
/// escaped, since hold ids never need it.
fn segment(id: &str) -> Result<&str, String> {
    if !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(id)
    } else {
        Err(format!("{id:?} is not a hold id (hold_…)"))
    }
}

/// `0.0.0.0:8081` is reached as `127.0.0.1:8081` from the same machine.
fn loopback_if_unspecified(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, addr.port()))
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

/// One line per hold: id, state, agent, what, how much, what is missing.
fn hold_line(hold: &serde_json::Value) -> String {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    let intents = hold["intents"].as_array().cloned().unwrap_or_default();
    let amounts: Vec<String> = intents
        .iter()
        .filter_map(|i| {
            Some(format!(
                "{} {}",
                i["amount"]["amount"].as_str()?,
                i["amount"]["currency"].as_str()?
            ))
        })
        .collect();
    let operation = intents
        .first()
        .map(|i| text(&i["operation"]))
        .unwrap_or_else(|| text(&hold["intents"]["operation"]));
    let needed: Vec<String> = hold["still_needed"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text)
        .collect();
    let mut line = format!(
        "{}  {}  {}  {} {}  {}",
        text(&hold["id"]),
        text(&hold["state"]),
        text(&hold["agent"]),
        text(&hold["vendor"]),
        operation,
        if amounts.is_empty() {
            "(no amount)".to_string()
        } else {
            amounts.join(" + ")
        }
    );
    if !needed.is_empty() {
        line.push_str(&format!("  needs {}", needed.join("; ")));
    }
    if text(&hold["state"]) == "pending" {
        line.push_str(&format!("  expires {}", text(&hold["expires_at"])));
    }
    line
}
