//! A leash running as a child process: the real binary, for tests that kill
//! it or read its logs. Included with `#[path = "common/child.rs"] mod child;`
//! next to `mod common;` (examples cannot use it: they have no binary path).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::common::TestCa;

/// A leash running as a child process (the real binary), for tests that kill
/// it or read its logs.
pub struct ChildLeash {
    pub child: std::process::Child,
    pub proxy: SocketAddr,
    pub admin: SocketAddr,
    /// Every line it wrote to stderr so far.
    pub logs: Arc<Mutex<Vec<String>>>,
}

impl ChildLeash {
    /// Writes `dir/leash.yaml` (proxy and admin on ephemeral ports, Stripe
    /// sent to `stripe`, trusting `upstream_ca`, held requests answered
    /// after 300 ms, one approver `maya`, without a token: holds stay
    /// pending unless a test adds one) and `dir/policies/policy.yaml`, then
    /// starts `leash run` there, logging at debug. A stack whose holds
    /// nobody could release does not load: the fixtures name `maya`.
    pub fn start(
        dir: &std::path::Path,
        stripe: SocketAddr,
        upstream_ca: &TestCa,
        policy: &str,
    ) -> Self {
        Self::start_with(
            dir,
            stripe,
            upstream_ca,
            policy,
            "{ wait: 300ms, ttl: 1h }",
            "debug",
        )
    }

    /// Like [`ChildLeash::start`], with `holds` as the value of `holds:` in
    /// leash.yaml (e.g. `{ wait: 2m, ttl: 1h }`) and `log` as `LEASH_LOG`.
    pub fn start_with(
        dir: &std::path::Path,
        stripe: SocketAddr,
        upstream_ca: &TestCa,
        policy: &str,
        holds: &str,
        log: &str,
    ) -> Self {
        std::fs::create_dir_all(dir.join("policies")).unwrap();
        std::fs::write(dir.join("policies/policy.yaml"), policy).unwrap();
        std::fs::write(dir.join("upstream-ca.pem"), &upstream_ca.cert_pem).unwrap();
        std::fs::write(
            dir.join("leash.yaml"),
            format!(
                "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\ndefault_agent: growth-agent\n\
                 upstream:\n  overrides:\n    api.stripe.com: {stripe}\n  extra_ca: upstream-ca.pem\n\
                 audit:\n  checkpoint_every: 50\n  checkpoint_interval: 1s\n\
                 holds: {holds}\n\
                 approvers:\n  people:\n    maya: {{}}\n  auditors:\n    test-auditor: {{ token_sha256: \"{auditor}\" }}\n",
                auditor = crate::common::AUDITOR_TOKEN_SHA256
            ),
        )
        .unwrap();
        Self::spawn_with_log(dir, log)
    }

    /// Starts `leash run` in `dir` (its leash.yaml already written),
    /// logging at debug.
    pub fn spawn(dir: &std::path::Path) -> Self {
        Self::spawn_with_log(dir, "debug")
    }

    /// Starts `leash run` in `dir` with `log` as `LEASH_LOG`.
    pub fn spawn_with_log(dir: &std::path::Path, log: &str) -> Self {
        Self::spawn_with_env(dir, log, &[])
    }

    /// [`ChildLeash::spawn_with_log`], with `env` added to the child's
    /// environment (the shared ledger's URL).
    pub fn spawn_with_env(dir: &std::path::Path, log: &str, env: &[(&str, &str)]) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_leash"))
            .arg("run")
            .current_dir(dir)
            .envs(env.iter().copied())
            .env("LEASH_LOG_FORMAT", "json")
            .env("LEASH_LOG", log)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) {
                    if json["fields"]["message"] == "leash is listening" {
                        let addr = |k: &str| json["fields"][k].as_str().unwrap().parse().unwrap();
                        let _ = tx.send((addr("proxy_addr"), addr("admin_addr")));
                    }
                }
                sink.lock().unwrap().push(line);
            }
        });
        let (proxy, admin) = match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(addrs) => addrs,
            Err(_) => {
                let _ = child.kill();
                panic!("leash did not start: {:#?}", logs.lock().unwrap());
            }
        };
        Self {
            child,
            proxy,
            admin,
            logs,
        }
    }

    /// A client through this leash trusting only its CA in `dir`.
    pub fn client(&self, dir: &std::path::Path) -> reqwest::Client {
        let pem = std::fs::read(dir.join("certs/leash-ca.pem")).unwrap();
        reqwest::Client::builder()
            .proxy(reqwest::Proxy::all(format!("http://{}", self.proxy)).unwrap())
            .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap()
    }

    /// The child's process id (for reading its memory in `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, no goodbye.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }
}

impl Drop for ChildLeash {
    /// A test that fails half-way leaves no leash running behind it.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs the leash binary with `args` in `dir`.
pub fn leash_cli(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_leash"))
        .args(args)
        .current_dir(dir)
        .env("LEASH_AUDIT_TOKEN", crate::common::AUDITOR_TOKEN)
        .output()
        .unwrap()
}
