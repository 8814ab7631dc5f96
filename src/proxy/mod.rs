//! The proxy agents talk to (SPEC §3).
//!
//! The front door is an HTTP/1.1 forward proxy. For each CONNECT it decides,
//! before answering, what the tunnel will be:
//!
//! - **intercept**: a vendor adapter claims the host, so leash terminates TLS
//!   with its own CA and reads every request ([`intercept`]);
//! - **sniff**: any other target. leash reads the TLS ClientHello first:
//!   when its SNI names a vendor host, the tunnel is intercepted as if the
//!   agent had asked for that host (so neither an IP literal nor an alias
//!   name gets around the policy); otherwise the bytes are tunnelled
//!   untouched (or dropped with `passthrough: deny`, which also refuses
//!   non-vendor host names up front with 403).
//!
//! The agent's identity is fixed at CONNECT time and holds for every request
//! inside the tunnel.

#[cfg(test)]
mod forwarded_is_classified;
mod held;
pub mod intercept;
mod lookup;
mod replayed_body;
pub mod tunnel;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::header::PROXY_AUTHORIZATION;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};

use crate::adapters::Registry;
use crate::answer::{self, full, Answer, ProxyBody};
use crate::ca::CertificateAuthority;
use crate::config::{HostPort, Passthrough, PassthroughMode};
use crate::identity::Identities;
use crate::upstream::UpstreamClient;

use self::intercept::Tunnel;

/// Everything the proxy needs to serve a connection; shared by all of them.
pub struct Proxy {
    pub identities: Identities,
    pub ca: Arc<CertificateAuthority>,
    pub vendors: Registry,
    pub upstream: UpstreamClient,
    /// Decides every request that is not safe.
    pub gate: crate::gate::Gate,
    /// Holds: opened here on REQUIRE_HUMAN, decided by approvers.
    pub desk: crate::desk::Desk,
    /// Every decision is written here before it takes effect.
    pub audit: crate::audit::AuditLog,
    /// How long connecting to a plain-HTTP host may take.
    pub upstream_timeout: std::time::Duration,
    pub passthrough: Passthrough,
    /// `upstream.overrides`: where a vendor host is reached, and so what it
    /// resolves to when an IP-literal CONNECT's SNI is checked.
    pub overrides: std::collections::BTreeMap<String, HostPort>,
    pub max_body: usize,
    /// `limits.header_read_timeout`: the time a client has to send a request
    /// head, or to finish a TLS handshake with leash.
    pub header_read_timeout: std::time::Duration,
    /// leash's own listeners: never a forwarding target.
    pub own_listeners: Vec<SocketAddr>,
    /// Counted here, at the edge: requests, decisions, leash's own
    /// answers, upstream latency.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Objects looked up for requests that leave something out.
    pub lookups: lookup::LookupCache,
    /// Stopping: the accept loop returns, connections finish what they
    /// have and close (see [`crate::lifecycle`]).
    pub lifecycle: Arc<crate::lifecycle::Lifecycle>,
}

impl Proxy {
    /// Accepts agent connections until leash stops (or the task is
    /// dropped); the listener is closed on return.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let accepted = tokio::select! {
                biased;
                () = self.lifecycle.stopping() => return,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(%error, "accept failed on the proxy listener");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let proxy = Arc::clone(&self);
            let lifecycle = Arc::clone(&self.lifecycle);
            tokio::spawn(async move {
                let header_read_timeout = proxy.header_read_timeout;
                let service = service_fn(move |request| {
                    let proxy = Arc::clone(&proxy);
                    async move {
                        let response = Arc::clone(&proxy).front(request).await;
                        proxy.count_answer(&response);
                        Ok::<_, Infallible>(response)
                    }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_read_timeout)
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades();
                let served = lifecycle
                    .serve(connection, |connection| connection.graceful_shutdown())
                    .await;
                if let Err(error) = served {
                    tracing::debug!(%peer, %error, "agent connection ended with an error");
                }
            });
        }
    }

    /// One request on the front door: a CONNECT or an absolute-form request.
    async fn front(self: Arc<Self>, request: Request<Incoming>) -> Response<ProxyBody> {
        let agent = match self.identities.identify(
            request
                .headers()
                .get(PROXY_AUTHORIZATION)
                .map(|v| v.as_bytes()),
        ) {
            Ok(agent) => agent,
            Err(error) => {
                tracing::info!(%error, method = %request.method(), "proxy authentication refused");
                return answer::proxy_auth_required(error.public_message());
            }
        };
        if request.method() == Method::CONNECT {
            self.connect(agent, request).await
        } else {
            self.absolute_form(agent, request).await
        }
    }

    async fn connect(
        self: Arc<Self>,
        agent: String,
        mut request: Request<Incoming>,
    ) -> Response<ProxyBody> {
        let Some((host, port)) = request
            .uri()
            .authority()
            .map(|a| (normalize_host(a.host()), a.port_u16().unwrap_or(443)))
        else {
            return refuse(
                StatusCode::BAD_REQUEST,
                "leash_bad_connect",
                "CONNECT needs host:port",
            );
        };
        let plan = if self.vendors.for_host(&host).is_some() {
            Plan::Intercept
        } else {
            match self.plan_unclaimed(&agent, &host, port).await {
                Ok(plan) => plan,
                Err(refusal) => return *refusal,
            }
        };

        tracing::debug!(%agent, %host, port, plan = ?plan, "CONNECT accepted");
        let on_upgrade = hyper::upgrade::on(&mut request);
        // A stop waits for the tunnel from here (the front connection ends
        // with the upgrade) until it is known to be blind (see `sniff`).
        let tracked = self.lifecycle.track();
        tokio::spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => TokioIo::new(upgraded),
                Err(error) => {
                    tracing::debug!(%error, "CONNECT upgrade failed");
                    return;
                }
            };
            let result = match plan {
                Plan::Intercept => {
                    let adapter = self.vendors.for_host(&host).cloned();
                    let tunnel = Tunnel::new(agent, host, port, adapter);
                    let result = self.intercept(tunnel, upgraded).await;
                    drop(tracked);
                    result
                }
                Plan::Sniff(target) => self.sniff(agent, target, upgraded, tracked).await,
            };
            if let Err(error) = result {
                tracing::debug!(%error, "tunnel ended with an error");
            }
        });
        Response::new(full(""))
    }

    /// Decides, from the CONNECT line alone, whether a CONNECT no adapter
    /// claims by name can lead anywhere; the refusals that can be made now
    /// are the CONNECT's own answer (403), so nothing is relayed.
    ///
    /// What is left (an address to dial, or an IP that might be a vendor's)
    /// is decided by the ClientHello in [`Self::sniff`].
    async fn plan_unclaimed(
        &self,
        agent: &str,
        host: &str,
        port: u16,
    ) -> Result<Plan, Box<Response<ProxyBody>>> {
        let ip_literal = host.parse::<IpAddr>().ok();
        let deny = self.passthrough.mode == PassthroughMode::Deny;
        if deny && ip_literal.is_none() {
            tracing::info!(%agent, %host, port, "CONNECT refused: passthrough is deny");
            return Err(Box::new(refuse(
                StatusCode::FORBIDDEN,
                "leash_passthrough_denied",
                format!("{host} is not a host leash inspects, and passthrough is deny"),
            )));
        }
        if ip_literal.is_none() && !self.passthrough.allows_host(host) {
            tracing::info!(%agent, %host, port, "CONNECT refused: not in passthrough.allow");
            return Err(Box::new(refuse(
                StatusCode::FORBIDDEN,
                "leash_passthrough_not_allowed",
                format!(
                    "{host} is not a host leash inspects, and passthrough.allow does not list it"
                ),
            )));
        }

        // Resolved once: the address checked here is the one dialled.
        let resolved = match self.resolve(host, port).await {
            Ok(addrs) => addrs,
            Err(error) => {
                return Err(Box::new(refuse(
                    StatusCode::BAD_GATEWAY,
                    "leash_resolve_failed",
                    format!("cannot resolve {host}: {error}"),
                )))
            }
        };
        if resolved.iter().any(|addr| self.is_own_listener(*addr)) {
            tracing::warn!(%agent, %host, port, "CONNECT to leash's own listener refused");
            return Err(Box::new(refuse(
                StatusCode::FORBIDDEN,
                "leash_loop",
                "leash does not forward to its own listeners",
            )));
        }
        // An IP may be a vendor's address reached without its name: then
        // the ClientHello can still make it an intercepted tunnel.
        let vendor_addrs = self.vendor_addresses().await;
        let vendor_ip = ip_literal.is_some_and(|ip| {
            vendor_addrs
                .iter()
                .any(|v| v.ip().to_canonical() == ip.to_canonical())
        });
        let mut dial: Vec<SocketAddr> = if deny {
            Vec::new()
        } else {
            resolved
                .into_iter()
                .filter(|addr| !self.passthrough.deny_networks.denies(addr.ip()))
                .collect()
        };
        // A blind tunnel never leads to a vendor's own address: a name
        // that resolves there (a CNAME the agent controls, with an SNI of
        // its own and a client that does not verify) would reach the
        // vendor unread.
        let dials_a_vendor = dial.iter().any(|d| {
            vendor_addrs
                .iter()
                .any(|v| v.ip().to_canonical() == d.ip().to_canonical() && v.port() == d.port())
        });
        if dials_a_vendor {
            if ip_literal.is_none() {
                tracing::warn!(%agent, %host, port, "CONNECT refused: the name resolves to a vendor's address");
                return Err(Box::new(refuse(
                    StatusCode::FORBIDDEN,
                    "leash_vendor_by_other_name",
                    format!("{host} resolves to the address of a host leash inspects; CONNECT to that host by its name"),
                )));
            }
            dial.clear();
        }
        if dial.is_empty() && !vendor_ip {
            let why = if deny {
                format!(
                    "{host} is not an address of a host leash inspects, and passthrough is deny"
                )
            } else {
                format!("{host} is in passthrough.deny_networks; leash does not tunnel there")
            };
            tracing::info!(%agent, %host, port, "CONNECT refused: {why}");
            let code = if deny {
                "leash_passthrough_denied"
            } else {
                "leash_passthrough_network_denied"
            };
            return Err(Box::new(refuse(StatusCode::FORBIDDEN, code, why)));
        }
        Ok(Plan::Sniff(Target {
            host: host.to_string(),
            port,
            ip: ip_literal,
            dial,
        }))
    }

    /// A CONNECT no adapter claims by name. Nothing is relayed before the
    /// whole ClientHello is read; then its SNI decides:
    ///
    /// - a vendor host, on an IP-literal CONNECT to an address of that host:
    ///   intercepted, as if the agent had asked for the host by name;
    /// - the CONNECT's own host (or, for an IP, a name that resolves to it)
    ///   that `passthrough` lets through: tunnelled to the checked address;
    /// - anything else — no SNI, no readable hello, an SNI naming another
    ///   host than the CONNECT: refused, nothing relayed.
    ///
    /// `tracked` keeps a stop waiting until the tunnel turns out blind,
    /// which a stop does not wait for ([`crate::lifecycle`]).
    async fn sniff(
        self: Arc<Self>,
        agent: String,
        target: Target,
        mut upgraded: TokioIo<hyper::upgrade::Upgraded>,
        tracked: crate::lifecycle::Tracked,
    ) -> std::io::Result<()> {
        let hello = match tunnel::peek(&mut upgraded, self.header_read_timeout).await? {
            Ok(hello) => hello,
            Err(not_a_hello) => {
                tracing::info!(%agent, target = %target.host, port = target.port, reason = not_a_hello.as_str(), "tunnel refused before relaying anything");
                tunnel::refuse_inside(&mut upgraded, tunnel::NotAHelloOr::NotAHello(not_a_hello))
                    .await;
                return Ok(());
            }
        };
        match self.judge_sni(&target, hello.server_name.as_deref()).await {
            Sni::Intercept(name) => {
                tracing::info!(%agent, target = %target.host, sni = %name, "CONNECT intercepted by its SNI");
                // Forward to the vendor by name (never to the address the
                // agent gave), so its certificate is checked against the
                // name the agent meant.
                let adapter = self.vendors.for_host(&name).cloned();
                let tunnel = Tunnel::new(agent, name, target.port, adapter);
                let result = self
                    .intercept(tunnel, tunnel::Rewind::new(hello.bytes, upgraded))
                    .await;
                drop(tracked);
                result
            }
            Sni::Tunnel => {
                drop(tracked);
                self.tunnel(upgraded, &target.dial, &hello.bytes).await
            }
            Sni::Refuse(why) => {
                tracing::info!(%agent, target = %target.host, port = target.port, sni = ?hello.server_name, reason = %why, "tunnel refused before relaying anything");
                tunnel::refuse_inside(&mut upgraded, tunnel::NotAHelloOr::Tls(&why)).await;
                Ok(())
            }
        }
    }

    /// What the SNI of a complete ClientHello makes of a tunnel to `target`.
    async fn judge_sni(&self, target: &Target, sni: Option<&str>) -> Sni {
        let Some(sni) = sni.map(normalize_host) else {
            return Sni::Refuse("the ClientHello names no host (no SNI)".into());
        };
        let is_vendor = self.vendors.for_host(&sni).is_some();
        match target.ip {
            None if sni != target.host => Sni::Refuse(format!(
                "the ClientHello names {sni}, a different host than the CONNECT ({})",
                target.host
            )),
            // The CONNECT host is not a vendor's (else it was intercepted by
            // name), and the SNI equals it.
            None => Sni::Tunnel,
            Some(ip) => {
                let resolves_here = match self.resolve(&sni, target.port).await {
                    Ok(addrs) => addrs
                        .iter()
                        .any(|a| a.ip().to_canonical() == ip.to_canonical()),
                    Err(_) => false,
                };
                if !resolves_here {
                    return Sni::Refuse(format!(
                        "the ClientHello names {sni}, which does not resolve to {ip}"
                    ));
                }
                if is_vendor {
                    return Sni::Intercept(sni);
                }
                if self.passthrough.mode == PassthroughMode::Deny {
                    return Sni::Refuse(format!(
                        "{sni} is not a host leash inspects, and passthrough is deny"
                    ));
                }
                if !self.passthrough.allows_host(&sni) {
                    return Sni::Refuse(format!("{sni} is not listed in passthrough.allow"));
                }
                if target.dial.is_empty() {
                    return Sni::Refuse(format!("{ip} is in passthrough.deny_networks"));
                }
                Sni::Tunnel
            }
        }
    }

    /// A host's addresses: its `upstream.overrides` address when it has one
    /// (so tests and staging need no DNS), else DNS. An IP literal is
    /// itself.
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let (host, port) = match self.overrides.get(host) {
            Some(target) => (target.host.as_str(), target.port),
            None => (host, port),
        };
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }

    /// Where the hosts adapters claim are reached: their override
    /// addresses, else their DNS answers on 443. Resolved once per CONNECT
    /// that needs it, for both checks below.
    async fn vendor_addresses(&self) -> Vec<SocketAddr> {
        let mut all = Vec::new();
        for host in self.vendors.hosts() {
            if let Ok(addrs) = self.resolve(&host, 443).await {
                all.extend(addrs);
            }
        }
        all
    }

    /// A blind byte-for-byte tunnel to exactly the addresses checked.
    async fn tunnel<S>(
        &self,
        agent_io: S,
        dial: &[SocketAddr],
        prefix: &[u8],
    ) -> std::io::Result<()>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let server = TcpStream::connect(dial).await?;
        if self.is_connection_to_self(&server) {
            return Err(std::io::Error::other("tunnel would loop into leash itself"));
        }
        tunnel::splice(agent_io, server, prefix, self.passthrough.idle_timeout).await
    }

    /// An absolute-form request (`GET http://host/path`), i.e. plain HTTP.
    async fn absolute_form(
        self: Arc<Self>,
        agent: String,
        request: Request<Incoming>,
    ) -> Response<ProxyBody> {
        let Some(host) = request.uri().host().map(normalize_host) else {
            return refuse(
                StatusCode::BAD_REQUEST,
                "leash_not_a_proxy_request",
                "leash is a proxy: send CONNECT or an absolute-form URI",
            );
        };
        let port = request.uri().port_u16();
        if let Some(adapter) = self.vendors.for_host(&host).cloned() {
            // A vendor API reached over plain HTTP: read it like any other
            // request to that vendor, and forward it over TLS (leash never
            // sends a vendor's traffic in clear text).
            let tunnel = Tunnel::new(agent, host, 443, Some(adapter));
            return self.handle_intercepted(&tunnel, request).await;
        }
        if request.uri().scheme_str() != Some("http") {
            return refuse(
                StatusCode::BAD_REQUEST,
                "leash_use_connect",
                "use CONNECT for https:// URIs",
            );
        }
        if self.passthrough.mode == PassthroughMode::Deny {
            return refuse(
                StatusCode::FORBIDDEN,
                "leash_passthrough_denied",
                format!("{host} is not a host leash inspects, and passthrough is deny"),
            );
        }
        if host.parse::<IpAddr>().is_err() && !self.passthrough.allows_host(&host) {
            return refuse(
                StatusCode::FORBIDDEN,
                "leash_passthrough_not_allowed",
                format!(
                    "{host} is not a host leash inspects, and passthrough.allow does not list it"
                ),
            );
        }
        let port = port.unwrap_or(80);
        // Resolved once; the address checked is the address dialled (the
        // request's URI is never handed to a client that would resolve it
        // again, or pick another address of the name).
        let addrs = match self.resolve(&host, port).await {
            Ok(addrs) => addrs,
            Err(error) => {
                return refuse(
                    StatusCode::BAD_GATEWAY,
                    "leash_resolve_failed",
                    format!("cannot resolve {host}: {error}"),
                )
            }
        };
        if addrs.iter().any(|addr| self.is_own_listener(*addr)) {
            tracing::warn!(%agent, %host, port, "plain-HTTP request to leash's own listener refused");
            return refuse(
                StatusCode::FORBIDDEN,
                "leash_loop",
                "leash does not forward to its own listeners",
            );
        }
        let dial: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|addr| !self.passthrough.deny_networks.denies(addr.ip()))
            .collect();
        if dial.is_empty() {
            return refuse(
                StatusCode::FORBIDDEN,
                "leash_passthrough_network_denied",
                format!("{host} is in passthrough.deny_networks; leash does not forward there"),
            );
        }
        let server =
            match tokio::time::timeout(self.upstream_timeout, TcpStream::connect(dial.as_slice()))
                .await
            {
                Ok(Ok(server)) => server,
                Ok(Err(error)) => {
                    return refuse(
                        StatusCode::BAD_GATEWAY,
                        "leash_upstream_unreachable",
                        format!("{host}: {error}"),
                    )
                }
                Err(_) => {
                    return refuse(
                        StatusCode::GATEWAY_TIMEOUT,
                        "leash_upstream_unreachable",
                        format!("{host}: connect timed out"),
                    )
                }
            };
        if self.is_connection_to_self(&server) {
            tracing::warn!(%agent, %host, port, "plain-HTTP request would loop into leash itself");
            return refuse(
                StatusCode::FORBIDDEN,
                "leash_loop",
                "leash does not forward to its own listeners",
            );
        }
        let (mut sender, connection) =
            match hyper::client::conn::http1::handshake(TokioIo::new(server)).await {
                Ok(pair) => pair,
                Err(error) => {
                    return refuse(
                        StatusCode::BAD_GATEWAY,
                        "leash_upstream_unreachable",
                        format!("{host}: {error}"),
                    )
                }
            };
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "plain-HTTP upstream connection ended with an error");
            }
        });
        let (mut parts, body) = request.into_parts();
        intercept::strip_hop_by_hop(&mut parts.headers);
        // Origin-form on the wire, as a server expects from a client.
        if let Some(path) = parts.uri.path_and_query().cloned() {
            parts.uri = http::Uri::from(path);
        }
        let outgoing = Request::from_parts(parts, http_body_util::BodyExt::boxed(body));
        match sender.send_request(outgoing).await {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                intercept::strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, http_body_util::BodyExt::boxed(body))
            }
            Err(error) => refuse(
                StatusCode::BAD_GATEWAY,
                "leash_upstream_unreachable",
                format!("{host}: {error}"),
            ),
        }
    }

    /// Counts `response` by its code if leash made it itself (every answer
    /// rendered from an [`Answer`] carries its code in its extensions).
    fn count_answer(&self, response: &Response<ProxyBody>) {
        if let Some(answer::AnswerCode(code)) = response.extensions().get() {
            self.metrics.answer(code);
        }
    }

    /// Whether `addr` is one of leash's own listeners. A listener bound to an
    /// unspecified address (0.0.0.0) answers on every local address; loopback
    /// is the one leash can name without enumerating interfaces, and
    /// [`Self::is_connection_to_self`] catches the rest after connecting.
    ///
    /// Every spelling of "this machine" counts: a target of 0.0.0.0 or `::`
    /// (which the kernel connects to locally), any 127/8 address, and the
    /// IPv4-mapped forms of all of these (`::ffff:127.0.0.1`) reach a
    /// listener bound to loopback or to an unspecified address.
    fn is_own_listener(&self, addr: SocketAddr) -> bool {
        let target = addr.ip().to_canonical();
        let local = |ip: IpAddr| ip.is_loopback() || ip.is_unspecified();
        self.own_listeners.iter().any(|own| {
            let own_ip = own.ip().to_canonical();
            own.port() == addr.port() && (own_ip == target || (local(own_ip) && local(target)))
        })
    }

    /// A connection whose two ends share an IP address stays on this machine;
    /// if it also lands on one of leash's ports, it is leash itself.
    fn is_connection_to_self(&self, stream: &TcpStream) -> bool {
        match (stream.local_addr(), stream.peer_addr()) {
            (Ok(local), Ok(peer)) => {
                local.ip() == peer.ip()
                    && self
                        .own_listeners
                        .iter()
                        .any(|own| own.port() == peer.port())
            }
            _ => false,
        }
    }
}

#[derive(Debug)]
enum Plan {
    Intercept,
    /// Read the ClientHello, then decide.
    Sniff(Target),
}

/// A CONNECT no adapter claims by name, as checked on its CONNECT line.
#[derive(Debug)]
struct Target {
    /// Normalised: lower case, no brackets, no trailing dot.
    host: String,
    port: u16,
    /// The CONNECT named an IP address.
    ip: Option<IpAddr>,
    /// The resolved addresses a tunnel may dial: outside deny_networks and
    /// not leash's own. Empty when only interception is possible.
    dial: Vec<SocketAddr>,
}

/// What a ClientHello's SNI makes of a tunnel.
enum Sni {
    Intercept(String),
    Tunnel,
    Refuse(String),
}

/// Lowercase, without IPv6 brackets or a trailing dot.
fn normalize_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// A refusal on the front door (outside any vendor tunnel).
fn refuse(
    status: StatusCode,
    code: &'static str,
    message: impl Into<String>,
) -> Response<ProxyBody> {
    Answer::new(status, code, "error", message).render(None)
}
