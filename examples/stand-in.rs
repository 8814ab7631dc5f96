//! The stand-in vendors: small in-memory Stripe, bank, Meta Graph (…) on loopback, so leash can
//! be tried offline, with no Stripe account (`tests/common/stand_in.rs`).
//!
//! ```text
//! cargo run --release --example stand-in -- [--listen 127.0.0.1:12111] [--dir ./stand-in]
//! ```
//!
//! Writes its CA certificate (a new one each start) to
//! `<dir>/stand-in-ca.pem`, prints the `upstream:` lines leash.yaml needs
//! (examples/quickstart.yaml has them), then one line per request it
//! answers, until Ctrl-C.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/common/stand_in.rs"]
mod stand_in;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use common::TestCa;
use stand_in::{Answered, StandIn};

const USAGE: &str = "\
stand-in: small in-memory vendors over TLS, for trying leash without vendor
accounts. Nothing leaves this machine; objects live in memory until it stops.

  Stripe       api.stripe.com      any sk_test_ key
  SEPA bank    api.bank.example    pain.001 uploads, Berlin Group JSON payments
  Meta Graph   graph.facebook.com  any access_token
  EC2          ec2.us-east-1.amazonaws.com, ec2.amazonaws.com  XML answers; any
               SigV4 Authorization (signatures are not checked)
  Wise         api.wise.com, api.transferwise.com, api.wise-sandbox.com  any bearer token
  Fireblocks   api.fireblocks.io, sandbox-api.fireblocks.io  a JWT whose claims match the request
  Google Ads   googleads.googleapis.com  gRPC and REST; any Bearer token and
               developer-token

usage: cargo run --release --example stand-in -- [--listen ADDR] [--dir DIR]

  --listen ADDR  address to serve on (default 127.0.0.1:12111)
  --dir DIR      where to write stand-in-ca.pem, its CA certificate, made
                 anew on each start (default ./stand-in)
  -h, --help     this text

Seeded objects: customer cus_demo, charge ch_demo (EUR 200.00, captured),
PaymentIntent pi_demo (EUR 120.00, requires_confirmation), price price_demo
(EUR 15.00), invoice in_demo (EUR 80.00 open), product prod_demo.
Graph: ad accounts act_1001, act_1002, act_9999 (EUR), act_2002 (JPY),
act_3003 (HUF); campaign 120200000000000001; ad set 120200000000000777.
Google Ads customers 1234567890 (EUR) and 5550001111 (USD).

Point leash at it with the upstream: lines it prints (examples/quickstart.yaml
has them), or try it directly:

  curl --cacert stand-in/stand-in-ca.pem --resolve api.stripe.com:12111:127.0.0.1 \\
       -u sk_test_x: https://api.stripe.com:12111/v1/charges/ch_demo
  curl --cacert stand-in/stand-in-ca.pem --resolve graph.facebook.com:12111:127.0.0.1 \
       'https://graph.facebook.com:12111/v25.0/act_1001?fields=currency&access_token=x'
";

struct Args {
    listen: SocketAddr,
    dir: PathBuf,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        listen: "127.0.0.1:12111".parse().unwrap(),
        dir: PathBuf::from("./stand-in"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                (name.to_string(), Some(value.to_string()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or(format!("{name} needs a value"))
        };
        match name.as_str() {
            "--listen" => {
                let text = value()?;
                args.listen = text
                    .parse()
                    .map_err(|_| format!("--listen {text}: not an address like 127.0.0.1:12111"))?;
            }
            "--dir" => args.dir = PathBuf::from(value()?),
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other} (see --help)")),
        }
    }
    Ok(Some(args))
}

/// `dir/name` as written in leash.yaml: `./stand-in/stand-in-ca.pem`.
fn shown_path(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    let text = path.display().to_string();
    if path.is_absolute() || text.starts_with("./") || text.starts_with("../") {
        text
    } else {
        format!("./{text}")
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("stand-in: {error}");
            return ExitCode::from(2);
        }
    };
    let ca = TestCa::new("leash stand-in CA (for development only)");
    if let Err(error) = std::fs::create_dir_all(&args.dir) {
        eprintln!("stand-in: cannot create {}: {error}", args.dir.display());
        return ExitCode::FAILURE;
    }
    let pem = args.dir.join("stand-in-ca.pem");
    if let Err(error) = std::fs::write(&pem, &ca.cert_pem) {
        eprintln!("stand-in: cannot write {}: {error}", pem.display());
        return ExitCode::FAILURE;
    }
    if let Err(error) = std::net::TcpListener::bind(args.listen) {
        eprintln!("stand-in: cannot listen on {}: {error}", args.listen);
        return ExitCode::FAILURE;
    }
    let print = Arc::new(|a: &Answered| println!("{} {} {}", a.method, a.path, a.status));
    let stand_in = StandIn::start_with(args.listen, &ca, Some(print)).await;
    // What leash dials: a wildcard listen address is reached on loopback.
    let mut reach = stand_in.addr;
    if reach.ip().is_unspecified() {
        reach.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let hosts = stand_in.hosts();
    println!(
        "stand-in: vendors ({}) on {}; CA certificate in {}",
        hosts.join(", "),
        stand_in.addr,
        pem.display()
    );
    println!("Put these lines in leash.yaml (paths are relative to that file; examples/quickstart.yaml has them):");
    println!();
    println!("upstream:");
    println!("  extra_ca: {}", shown_path(&args.dir, "stand-in-ca.pem"));
    println!("  overrides:");
    for host in &hosts {
        println!("    {host}: {reach}");
    }
    println!();
    println!("Any sk_test_ key works. Seeded: cus_demo, ch_demo (EUR 200.00), pi_demo (EUR 120.00), price_demo (EUR 15.00), in_demo (EUR 80.00 open).");
    println!("Graph: any access_token; ad accounts act_1001, act_1002, act_9999 (EUR), act_2002 (JPY), act_3003 (HUF). Ctrl-C stops.");
    println!("Google Ads: customers 1234567890 (EUR) and 5550001111 (USD).");
    match tokio::signal::ctrl_c().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("stand-in: cannot wait for Ctrl-C: {error}");
            ExitCode::FAILURE
        }
    }
}
