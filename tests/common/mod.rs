//! Test harness: a real leash on loopback, a real TLS "vendor" upstream with
//! its own test CA, and real clients going through the proxy with CONNECT.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use leash::config::Config;

pub mod api;
pub mod google_ads;
/// The ledgers cap tests run on (sled, and PostgreSQL when there is one).
pub mod pg;

/// The bearer token of the auditor every test leash knows (`test-auditor`),
/// for reading `GET /v1/audit`.
pub const AUDITOR_TOKEN: &str = "auditor-token";
/// SHA-256 of [`AUDITOR_TOKEN`], hex.
pub const AUDITOR_TOKEN_SHA256: &str =
    "ba1315421b7c58d465abec0bd552af5ff314ed8f9c5c0a7b7a6a6ecbac9bcbe5";

/// `GET url` on the admin API as the test auditor.
pub async fn admin_get(_leash: &Harness, url: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(url)
        .bearer_auth(AUDITOR_TOKEN)
        .send()
        .await
        .unwrap()
}

/// Every entry (the first 1000) of the audit chain served by the admin API
/// at `admin`, oldest first, read as the test auditor.
pub async fn audit_entries(admin: SocketAddr) -> Vec<serde_json::Value> {
    api::AdminApi::at(admin, AUDITOR_TOKEN).audit().await
}

/// The decision entries of `leash`'s audit chain, oldest first (read as
/// the test auditor).
pub async fn decisions(leash: &Harness) -> Vec<serde_json::Value> {
    audit_entries(leash.running.admin_addr)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "decision")
        .collect()
}

/// A test CA and a plain upstream playing `api.stripe.com` with it: the
/// usual start of a test through the proxy.
pub async fn stripe_upstream() -> (TestCa, Upstream) {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let upstream = Upstream::start(Some(ca.server_config(&["api.stripe.com"]))).await;
    (ca, upstream)
}

/// A config tweak: approver `maya` (no token, no Slack), whom most test
/// stacks name.
pub fn with_maya(config: &mut Config) {
    config.approvers.people.insert(
        "maya".to_string(),
        leash::config::Person {
            token_sha256: None,
            slack: None,
        },
    );
}

/// A Stripe PaymentIntent of `minor` euro cents for `cus_1`, form-encoded
/// as the SDKs send it.
pub async fn payment_intent(client: &reqwest::Client, minor: u64) -> reqwest::Response {
    client
        .post("https://api.stripe.com/v1/payment_intents")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("amount={minor}&currency=eur&customer=cus_1"))
        .send()
        .await
        .unwrap()
}

/// A vendor (`api.stripe.com`, certificate from `ca`) that completes TLS,
/// reads whatever comes, and never answers.
pub async fn silent_vendor(ca: &TestCa) -> std::net::SocketAddr {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(ca.server_config(&["api.stripe.com"])));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    let mut sink = [0u8; 4096];
                    while matches!(tls.read(&mut sink).await, Ok(n) if n > 0) {}
                }
            });
        }
    });
    addr
}

/// The body every test upstream answers with; tests check it arrives
/// unchanged. A whole enough charge for leash's refund lookups (a refund of
/// `ch_…` without a currency is in EUR, at most €10.99).
pub const UPSTREAM_BODY: &str = r#"{"id":"ch_3MmlLrLkdIwHu7ix0snN0B15","object":"charge","amount":1099,"amount_refunded":0,"currency":"eur"}"#;

/// A certificate authority made by the test, standing in for a public CA.
pub struct TestCa {
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Self {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A TLS server config for `names`, offering h2 and http/1.1.
    pub fn server_config(&self, names: &[&str]) -> rustls::ServerConfig {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config
    }

    pub fn reqwest_cert(&self) -> reqwest::Certificate {
        reqwest::Certificate::from_pem(self.cert_pem.as_bytes()).unwrap()
    }
}

/// A request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path_and_query: String,
    pub version: Version,
    /// `:authority` (HTTP/2) or `Host` (HTTP/1.1).
    pub host: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// A fake vendor: answers every request with [`UPSTREAM_BODY`] and records it.
pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// Answers for particular `GET` targets (a lookup's charge), by
    /// path and query: status and JSON body.
    pub answers: Arc<Mutex<std::collections::BTreeMap<String, (u16, String)>>>,
}

impl Upstream {
    /// Starts on 127.0.0.1; TLS when `tls` is given, plain HTTP otherwise.
    pub async fn start(tls: Option<rustls::ServerConfig>) -> Self {
        Self::start_with_status(tls, 200).await
    }

    pub async fn start_with_status(tls: Option<rustls::ServerConfig>, status: u16) -> Self {
        Self::start_on("127.0.0.1", tls, status).await
    }

    /// Starts on `ip` (another loopback address, such as 127.0.0.2, plays a
    /// vendor reached by its address).
    pub async fn start_on(ip: &str, tls: Option<rustls::ServerConfig>, status: u16) -> Self {
        let addr: std::net::IpAddr = ip.parse().unwrap();
        Self::start_at(SocketAddr::new(addr, 0), tls, status).await
    }

    /// Starts on exactly `addr` (a vendor that comes up late on the
    /// address leash was told).
    pub async fn start_at(
        addr: SocketAddr,
        tls: Option<rustls::ServerConfig>,
        status: u16,
    ) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let answers: Arc<Mutex<std::collections::BTreeMap<String, (u16, String)>>> = Arc::default();
        let acceptor = tls.map(|c| tokio_rustls::TlsAcceptor::from(Arc::new(c)));
        let record = Arc::clone(&seen);
        let table = Arc::clone(&answers);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let record = Arc::clone(&record);
                let table = Arc::clone(&table);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let record = Arc::clone(&record);
                        let table = Arc::clone(&table);
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.unwrap().to_bytes();
                            let target = parts
                                .uri
                                .path_and_query()
                                .map(|p| p.to_string())
                                .unwrap_or_default();
                            let special = {
                                let table = table.lock().unwrap();
                                let by_method = table.get(&format!("{} {target}", parts.method));
                                match by_method {
                                    Some(answer) => Some(answer.clone()),
                                    None if parts.method == http::Method::GET => {
                                        table.get(&target).cloned()
                                    }
                                    None => None,
                                }
                            };
                            record.lock().unwrap().push(Seen {
                                method: parts.method.to_string(),
                                path_and_query: parts
                                    .uri
                                    .path_and_query()
                                    .map(|p| p.to_string())
                                    .unwrap_or_default(),
                                version: parts.version,
                                host: parts
                                    .uri
                                    .authority()
                                    .map(|a| a.to_string())
                                    .or_else(|| {
                                        parts
                                            .headers
                                            .get("host")
                                            .and_then(|h| h.to_str().ok())
                                            .map(str::to_string)
                                    })
                                    .unwrap_or_default(),
                                headers: parts.headers,
                                body,
                            });
                            let (status, body) = match special {
                                Some((status, body)) => (status, Bytes::from(body)),
                                None => (status, Bytes::from_static(UPSTREAM_BODY.as_bytes())),
                            };
                            let response = Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .header("request-id", "req_upstream_1")
                                .body(Full::new(body))
                                .unwrap();
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(tls) = acceptor.accept(stream).await {
                                let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                            }
                        }
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        });
        Self {
            addr,
            seen,
            answers,
        }
    }

    /// Answers `GET target` with `status` and `body` from now on.
    pub fn answer(&self, target: &str, status: u16, body: &str) {
        self.answers
            .lock()
            .unwrap()
            .insert(target.to_string(), (status, body.to_string()));
    }

    /// Answers `method target` (any method) with `status` and `body`.
    pub fn answer_to(&self, method: &str, target: &str, status: u16, body: &str) {
        self.answers
            .lock()
            .unwrap()
            .insert(format!("{method} {target}"), (status, body.to_string()));
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A policy that lets everything through: for tests of the data path itself.
pub const ALLOW_ALL: &str = r#"
agent: "*"
currency: EUR
default: AUTO_APPROVE
unknown: AUTO_APPROVE
unreadable: REQUIRE_HUMAN
rules: []
"#;

/// A running leash with its temp dir, pointed at a Stripe upstream.
pub struct Harness {
    pub running: leash::server::Running,
    pub dir: tempfile::TempDir,
    pub config: Config,
    pub leash_ca_pem: String,
    /// What `secret_env` / `signing_secret_env` names resolve to.
    pub env: std::collections::BTreeMap<String, String>,
}

impl Harness {
    /// Starts leash with `api.stripe.com` overridden to `stripe` (an upstream
    /// whose certificate chains to `upstream_ca`), then lets `tweak` adjust
    /// the config.
    pub async fn start(
        stripe: SocketAddr,
        upstream_ca: &TestCa,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        Self::start_with_policy(stripe, upstream_ca, ALLOW_ALL, tweak).await
    }

    /// Like [`Harness::start`], with `policy` as the only stack.
    pub async fn start_with_policy(
        stripe: SocketAddr,
        upstream_ca: &TestCa,
        policy: &str,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        Self::start_with_env(stripe, upstream_ca, policy, Default::default(), tweak).await
    }

    /// Like [`Harness::start_with_policy`], with caps kept in `ledger`.
    pub async fn start_on_ledger(
        ledger: &pg::TestLedger,
        stripe: SocketAddr,
        upstream_ca: &TestCa,
        policy: &str,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        Self::start_with_env(stripe, upstream_ca, policy, ledger.env(), |config| {
            ledger.apply(config);
            tweak(config);
        })
        .await
    }

    /// Like [`Harness::start_with_policy`]; the secrets the config names
    /// (`secret_env`, `signing_secret_env`) are looked up in `env`.
    pub async fn start_with_env(
        stripe: SocketAddr,
        upstream_ca: &TestCa,
        policy: &str,
        env: std::collections::BTreeMap<String, String>,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        leash::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("policies")).unwrap();
        std::fs::write(dir.path().join("policies/policy.yaml"), policy).unwrap();
        let extra_ca = dir.path().join("upstream-ca.pem");
        std::fs::write(&extra_ca, &upstream_ca.cert_pem).unwrap();
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            admin: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        config.ca.cert = dir.path().join("certs/leash-ca.pem");
        config.ca.key = dir.path().join("certs/leash-ca.key");
        config.policies = dir.path().join("policies");
        config.default_agent = Some("growth-agent".to_string());
        // A held request waits this long on its connection; short, so that
        // tests of the held answer do not wait the 25 s default.
        config.holds.wait = std::time::Duration::from_millis(300);
        config.upstream.extra_ca = Some(extra_ca);
        config.upstream.overrides.insert(
            "api.stripe.com".to_string(),
            leash::config::HostPort {
                host: stripe.ip().to_string(),
                port: stripe.port(),
            },
        );
        let mut auditor = [0u8; 32];
        hex::decode_to_slice(AUDITOR_TOKEN_SHA256, &mut auditor).unwrap();
        config.approvers.auditors.insert(
            "test-auditor".to_string(),
            leash::config::Auditor {
                token_sha256: auditor,
            },
        );
        tweak(&mut config);
        let running = leash::server::start_with_env(&config, &|name: &str| env.get(name).cloned())
            .await
            .unwrap();
        let leash_ca_pem = std::fs::read_to_string(&config.ca.cert).unwrap();
        Self {
            running,
            dir,
            config,
            leash_ca_pem,
            env,
        }
    }

    /// Stops this leash and starts a new one on the same data, CA and
    /// policies (new ports).
    pub async fn restart(self) -> Self {
        let Harness {
            running,
            dir,
            config,
            leash_ca_pem,
            env,
        } = self;
        drop(running);
        // sled holds a lock on its directory until every handle is gone;
        // the old tasks are aborted, give them a moment to drop theirs.
        let mut attempt = 0;
        let running = loop {
            match leash::server::start_with_env(&config, &|name: &str| env.get(name).cloned()).await
            {
                Ok(running) => break running,
                Err(error) if attempt < 100 => {
                    attempt += 1;
                    let _ = error;
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(error) => panic!("restart failed: {error}"),
            }
        };
        Self {
            running,
            dir,
            config,
            leash_ca_pem,
            env,
        }
    }

    /// Replaces the policy file (hot reload picks it up).
    pub fn write_policy(&self, policy: &str) {
        std::fs::write(self.config.policies.join("policy.yaml"), policy).unwrap();
    }

    pub fn proxy_url(&self) -> String {
        format!("http://{}", self.running.proxy_addr)
    }

    pub fn leash_ca(&self) -> reqwest::Certificate {
        reqwest::Certificate::from_pem(self.leash_ca_pem.as_bytes()).unwrap()
    }

    /// A reqwest client going through leash, trusting only leash's CA.
    pub fn client(&self) -> reqwest::Client {
        self.client_builder().build().unwrap()
    }

    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .proxy(reqwest::Proxy::all(self.proxy_url()).unwrap())
            .tls_certs_only([self.leash_ca()])
    }

    pub fn client_as(&self, agent: &str, token: &str) -> reqwest::Client {
        reqwest::Client::builder()
            .proxy(
                reqwest::Proxy::all(self.proxy_url())
                    .unwrap()
                    .basic_auth(agent, token),
            )
            .tls_certs_only([self.leash_ca()])
            .build()
            .unwrap()
    }

    /// A rustls client config trusting only leash's CA.
    pub fn leash_tls_client(&self, alpn: &[&[u8]]) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.leash_ca_pem.as_bytes()).unwrap())
            .unwrap();
        let mut config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config
    }
}

/// Sends a raw `CONNECT target` on a fresh connection to `proxy`, returning
/// the status code and the stream (positioned after the response head).
pub async fn raw_connect(proxy: SocketAddr, target: &str, auth: Option<&str>) -> (u16, TcpStream) {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    let mut head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = auth {
        head.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut byte = [0u8; 1];
    while !response.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.unwrap();
        assert!(n > 0, "proxy closed during CONNECT response");
        response.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    (status, stream)
}

/// Opens TLS over an established tunnel with `server_name` as SNI.
pub async fn tls_over(
    stream: TcpStream,
    config: rustls::ClientConfig,
    server_name: &str,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(
            ServerName::try_from(server_name.to_string()).unwrap(),
            stream,
        )
        .await
        .unwrap()
}
