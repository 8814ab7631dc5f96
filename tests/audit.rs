//! The audit chain against a real sled database: appends through
//! `AuditLog`, then tampering with raw access to the tree, then `verify`
//! naming what was done; recovery after reopen and after `kill -9`; card
//! numbers never reaching the disk.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use leash::audit::{
    one_line, parse_checkpoint_file, public_key_path, read_entries, to_canonical, verify, Appended,
    AuditError, AuditLog, Checkpoint, CheckpointPolicy, NewEntry, PublicKey, VerifyError,
};
use leash::store::Store;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// A data dir and key beside it, laid out like a real install.
struct Install {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Install {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        Self { _dir: dir, root }
    }

    fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    fn key(&self) -> PathBuf {
        self.root.join("certs/leash-audit.key")
    }

    fn note(&self) -> PathBuf {
        self.data().join("checkpoint")
    }

    fn open(&self, policy: CheckpointPolicy) -> Result<(Store, AuditLog), AuditError> {
        let store = Store::open(&self.data())?;
        let log = AuditLog::open(&store, &self.key(), policy, self.note())?;
        Ok((store, log))
    }

    fn trusted_key(&self) -> PublicKey {
        PublicKey::read_file(&public_key_path(&self.key())).unwrap()
    }

    fn note_copy(&self) -> Checkpoint {
        parse_checkpoint_file(&std::fs::read_to_string(self.note()).unwrap()).unwrap()
    }

    fn verify(
        &self,
        external: Option<&Checkpoint>,
    ) -> Result<leash::audit::VerifyReport, VerifyError> {
        let store = Store::open(&self.data()).unwrap();
        verify(&store, &self.trusted_key(), external)
    }

    /// Raw access to the chain's sled tree, as an attacker with the disk has.
    fn tamper(&self, f: impl FnOnce(&sled::Tree)) {
        let store = Store::open(&self.data()).unwrap();
        let tree = store.tree("audit").unwrap();
        f(&tree);
        store.flush().unwrap();
    }
}

fn no_checkpoints() -> CheckpointPolicy {
    CheckpointPolicy {
        every_entries: 0,
        every: Duration::ZERO,
    }
}

fn every(n: u64) -> CheckpointPolicy {
    CheckpointPolicy {
        every_entries: n,
        every: Duration::ZERO,
    }
}

fn decision(i: u64) -> NewEntry {
    NewEntry::decision(
        "growth-agent",
        json!({
            "agent": "growth-agent", "vendor": "stripe", "operation": "payment_intent.create",
            "amount": {"amount": format!("{i}.00"), "currency": "EUR"},
            "beneficiary": format!("cus_{i}"), "category": "payment",
            "idempotency_key": null, "fingerprint": hex::encode(Sha256::digest(i.to_be_bytes())),
            "at": "2025-06-01T12:00:00Z",
        }),
        if i.is_multiple_of(3) {
            "REJECT"
        } else {
            "AUTO_APPROVE"
        },
        Some(10),
        json!([{"priority": 10, "type": "cap", "action": "REJECT", "triggered": i.is_multiple_of(3),
                "shadow": false, "reason": "spent 0.00 + 1.00 <= 5000.00 EUR"}]),
        "ab".repeat(32),
    )
    .with_detail("fx", json!([{"from": "USD", "to": "EUR", "rate": "0.92"}]))
}

/// Appends `n` decisions one after another and closes the log.
fn build(install: &Install, n: u64, policy: CheckpointPolicy) -> Vec<Appended> {
    let (_store, log) = install.open(policy).unwrap();
    (0..n)
        .map(|i| log.append_blocking(decision(i)).unwrap())
        .collect()
}

fn get(tree: &sled::Tree, seq: u64) -> Value {
    serde_json::from_slice(&tree.get(seq.to_be_bytes()).unwrap().unwrap()).unwrap()
}

fn put(tree: &sled::Tree, seq: u64, entry: &Value) {
    tree.insert(seq.to_be_bytes(), serde_json::to_vec(entry).unwrap())
        .unwrap();
}

/// What a careful attacker does after editing an entry: recompute its hash
/// (anyone can; only checkpoints need the key).
fn rehash(entry: &mut Value) {
    let prev = hex::decode(entry["prev_hash"].as_str().unwrap()).unwrap();
    let mut without = entry.clone();
    without.as_object_mut().unwrap().remove("hash");
    let mut h = Sha256::new();
    h.update(&prev);
    h.update(to_canonical(&without).unwrap());
    entry["hash"] = json!(hex::encode(h.finalize()));
}

fn canonical_bytes(entry: &Value) -> Vec<u8> {
    to_canonical(entry).unwrap()
}

#[test]
fn a_clean_chain_verifies_and_reopening_resumes_it() {
    let install = Install::new();
    let first = build(&install, 25, every(10));
    // 25 decisions, a checkpoint after the 10th and 20th, and a final one
    // when the log closed: 28 entries.
    assert_eq!(first.last().unwrap().seq, 26);
    let report = install.verify(None).unwrap();
    assert_eq!(report.entries, 28);
    assert_eq!(report.checkpoints_checked, 3);
    assert_eq!(report.last_signed_seq, Some(26));
    let note = install.note_copy();
    assert_eq!(
        (note.seq, note.hash.as_str()),
        (26, first[24].hash.as_str())
    );

    let public_before = std::fs::read(public_key_path(&install.key())).unwrap();
    let (_store, log) = install.open(every(10)).unwrap();
    assert_eq!(log.latest_checkpoint(), Some(note.clone()));
    let next = log.append_blocking(decision(99)).unwrap();
    assert_eq!(next.seq, 28);
    drop(log);
    drop(_store);
    assert_eq!(
        std::fs::read(public_key_path(&install.key())).unwrap(),
        public_before
    );

    let report = install.verify(Some(&note)).unwrap();
    assert_eq!(report.entries, 30);
    assert!(report.external_checked);
    let store = Store::open(&install.data()).unwrap();
    let entries = read_entries(&store, Some(27), 10).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["seq"], json!(28));
    assert_eq!(entries[0]["hash"], json!(next.hash));
    assert_eq!(report.head_hash.as_deref(), entries[1]["hash"].as_str());
    let line = one_line(&entries[0]);
    assert!(
        line.contains("decision") && line.contains("amount=99.00 EUR"),
        "{line}"
    );
    assert!(line.contains(&format!("#{}", &next.hash[..12])), "{line}");
}

#[test]
fn an_edited_amount_is_named() {
    let install = Install::new();
    build(&install, 20, every(5));
    install.tamper(|tree| {
        let mut entry = get(tree, 7);
        entry["intent"]["amount"]["amount"] = json!("7000.00");
        tree.insert(7u64.to_be_bytes(), canonical_bytes(&entry))
            .unwrap();
    });
    let err = install.verify(None).unwrap_err();
    assert!(matches!(err, VerifyError::Changed { seq: 7, .. }), "{err}");
    assert_eq!(err.seq(), Some(7));
    assert!(err.to_string().starts_with("entry 7 was changed"), "{err}");
}

#[test]
fn an_edited_entry_with_a_recomputed_hash_breaks_the_next_link() {
    let install = Install::new();
    build(&install, 20, every(5));
    install.tamper(|tree| {
        let mut entry = get(tree, 8);
        assert_eq!(entry["decision"], json!("AUTO_APPROVE"));
        entry["decision"] = json!("REQUIRE_HUMAN");
        rehash(&mut entry);
        put(tree, 8, &entry);
    });
    let err = install.verify(None).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::BrokenLink {
                seq: 8,
                next: 9,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_removed_entry_is_named() {
    let install = Install::new();
    build(&install, 20, every(5));
    install.tamper(|tree| {
        tree.remove(11u64.to_be_bytes()).unwrap();
    });
    let err = install.verify(None).unwrap_err();
    assert!(
        matches!(err, VerifyError::Missing { seq: 11, next: 12 }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "entry 11 is missing: the chain goes from entry 10 to entry 12"
    );

    let install = Install::new();
    build(&install, 5, no_checkpoints());
    install.tamper(|tree| {
        tree.remove(0u64.to_be_bytes()).unwrap();
    });
    let err = install.verify(None).unwrap_err();
    assert!(matches!(err, VerifyError::Missing { seq: 0, .. }), "{err}");
}

#[test]
fn swapped_entries_are_named_at_the_first() {
    let install = Install::new();
    build(&install, 20, every(5));
    install.tamper(|tree| {
        let (a, b) = (get(tree, 4), get(tree, 13));
        put(tree, 4, &b);
        put(tree, 13, &a);
    });
    let err = install.verify(None).unwrap_err();
    assert!(
        matches!(err, VerifyError::Reordered { seq: 4, found: 13 }),
        "{err}"
    );
}

#[test]
fn a_tail_cut_below_a_checkpoint_is_caught_by_the_checkpoint_note() {
    let install = Install::new();
    build(&install, 30, every(8));
    // The note as copied off-box (a webhook carried it).
    let off_box = install.note_copy();
    assert_eq!(off_box.seq, 32);

    // Cut everything from entry 20 on: the remaining chain is consistent.
    install.tamper(|tree| {
        for seq in 20..=40u64 {
            tree.remove(seq.to_be_bytes()).unwrap();
        }
    });
    let report = install.verify(None).unwrap();
    assert_eq!(report.entries, 20);

    let err = install.verify(Some(&off_box)).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::CutShort {
                checkpoint_seq: 32,
                entries: 20,
                first_missing: 20
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("cut short"), "{err}");

    // leash itself refuses to write a fork over the cut.
    let err = install.open(every(8)).unwrap_err();
    assert!(
        matches!(
            err,
            AuditError::Truncated {
                checkpoint_seq: 32,
                entries: 20,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn rewriting_and_rehashing_the_whole_tail_is_caught_by_a_signed_checkpoint() {
    let install = Install::new();
    build(&install, 12, every(5));
    // Entries 0..=4, checkpoint 5 (signs 4), 6..=10, checkpoint 11, 12, 13.
    install.tamper(|tree| {
        let mut prev: Option<String> = None;
        for seq in 2..14u64 {
            let mut entry = get(tree, seq);
            if seq == 2 {
                entry["intent"]["amount"]["amount"] = json!("0.01");
            }
            if let Some(prev) = &prev {
                entry["prev_hash"] = json!(prev);
            }
            rehash(&mut entry);
            prev = entry["hash"].as_str().map(str::to_string);
            tree.insert(seq.to_be_bytes(), canonical_bytes(&entry))
                .unwrap();
        }
    });
    let err = install.verify(None).unwrap_err();
    assert!(
        matches!(err, VerifyError::BadCheckpoint { seq: 5, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("entries up to 4 were rewritten"),
        "{err}"
    );
}

#[test]
fn reformatted_bytes_and_foreign_keys_are_refused() {
    let install = Install::new();
    build(&install, 5, no_checkpoints());
    install.tamper(|tree| {
        let entry = get(tree, 3);
        tree.insert(
            3u64.to_be_bytes(),
            serde_json::to_vec_pretty(&entry).unwrap(),
        )
        .unwrap();
    });
    let err = install.verify(None).unwrap_err();
    assert!(matches!(err, VerifyError::NotCanonical { seq: 3 }), "{err}");

    let install = Install::new();
    build(&install, 5, every(2));
    let other = Install::new();
    build(&other, 1, every(1));
    // A checkpoint signed by someone else's key is not trusted.
    let err = {
        let store = Store::open(&install.data()).unwrap();
        verify(&store, &other.trusted_key(), None).unwrap_err()
    };
    assert!(
        matches!(err, VerifyError::BadCheckpoint { seq: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("not by the trusted key"), "{err}");
    let err = install.verify(Some(&other.note_copy())).unwrap_err();
    assert!(matches!(err, VerifyError::BadExternal(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_get_contiguous_unique_seqs() {
    let install = Install::new();
    let (store, log) = install.open(no_checkpoints()).unwrap();
    let tasks: Vec<_> = (0..64u64)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                for i in 0..40u64 {
                    got.push(log.append(decision(t * 1000 + i)).await.unwrap());
                }
                got
            })
        })
        .collect();
    let mut seqs = Vec::new();
    let mut hashes = BTreeSet::new();
    for task in tasks {
        for appended in task.await.unwrap() {
            seqs.push(appended.seq);
            hashes.insert(appended.hash);
        }
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (0..64 * 40).collect::<Vec<u64>>());
    assert_eq!(hashes.len(), 64 * 40);
    drop(log);
    drop(store);
    let report = install.verify(None).unwrap();
    // The 2560 entries and the closing checkpoint.
    assert_eq!(
        (report.entries, report.checkpoints_checked),
        (64 * 40 + 1, 1)
    );
}

#[test]
fn a_card_number_never_reaches_the_disk() {
    let install = Install::new();
    {
        let (_store, log) = install.open(every(2)).unwrap();
        let entry = NewEntry::decision(
            "agent-4111111111111111",
            json!({"description": "order-marker-77 paid with 4242 4242 4242 4242",
                   "metadata": {"pan": "4000-0566-5566-5556", "raw": 5555555555554444u64}}),
            "REQUIRE_HUMAN",
            None,
            json!([]),
            "ab".repeat(32),
        )
        .with_detail("note", json!("card 378282246310005 on file"));
        log.append_blocking(entry).unwrap();
        log.append_blocking(NewEntry::approval("hold_1", "maya", "approve", "slack"))
            .unwrap();
    }
    let cards = [
        "4242424242424242",
        "4242 4242 4242 4242",
        "4000-0566-5566-5556",
        "4000056655665556",
        "5555555555554444",
        "378282246310005",
        "4111111111111111",
    ];
    let mut files = Vec::new();
    collect_files(&install.root, &mut files);
    assert!(files.len() > 2, "{files:?}");
    let mut marker_seen = false;
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        marker_seen |= contains(&bytes, b"order-marker-77");
        for card in cards {
            assert!(
                !contains(&bytes, card.as_bytes()),
                "{card} found in {}",
                file.display()
            );
        }
    }
    // The files are plain enough to grep: the text around the card is there.
    assert!(marker_seen, "the test would not see a card either");
    let store = Store::open(&install.data()).unwrap();
    let first = &read_entries(&store, None, 1).unwrap()[0];
    assert_eq!(first["agent"], json!("agent-************1111"));
    assert_eq!(
        first["intent"]["description"],
        json!("order-marker-77 paid with **** **** **** 4242")
    );
    assert_eq!(
        first["intent"]["metadata"]["raw"],
        json!("************4444")
    );
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_chain_of_100_000_entries_verifies() {
    let install = Install::new();
    let total = 100_000u64;
    let appenders = 256u64;
    let started = Instant::now();
    {
        let (_store, log) = install.open(CheckpointPolicy::default()).unwrap();
        let tasks: Vec<_> = (0..appenders)
            .map(|t| {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut i = t;
                    while i < total {
                        log.append(decision(i)).await.unwrap();
                        i += appenders;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    }
    let built = started.elapsed();
    let started = Instant::now();
    let report = tokio::task::spawn_blocking({
        let data = install.data();
        let key = install.trusted_key();
        move || verify(&Store::open(&data).unwrap(), &key, None)
    })
    .await
    .unwrap()
    .unwrap();
    let verified = started.elapsed();
    // A checkpoint at the end of the group that reaches 1000 uncovered
    // entries, and one on close.
    assert_eq!(
        report.entries,
        total + report.checkpoints_checked,
        "{report:?}"
    );
    assert!(report.checkpoints_checked >= 80, "{report:?}");
    eprintln!(
        "100,000 entries: appended in {built:.2?} with 256 concurrent appenders, verified {} entries in {verified:.2?}",
        report.entries
    );
}

/// The child side of the crash test: appends from 8 tasks until killed,
/// printing every acknowledged entry. Does nothing unless the parent set
/// `LEASH_AUDIT_CRASH_DIR`.
#[test]
fn crash_child() {
    let Ok(root) = std::env::var("LEASH_AUDIT_CRASH_DIR") else {
        return;
    };
    let install = Install {
        _dir: tempfile::tempdir().unwrap(),
        root: PathBuf::from(root),
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (_store, log) = install.open(every(50)).unwrap();
        let tasks: Vec<_> = (0..8u64)
            .map(|t| {
                let log = log.clone();
                tokio::spawn(async move {
                    for i in 0.. {
                        let a = log.append(decision(t * 1_000_000 + i)).await.unwrap();
                        println!("ACK {} {}", a.seq, a.hash);
                    }
                })
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    });
}

#[test]
fn after_kill_9_the_chain_continues_without_gap_fork_or_lost_acks() {
    let install = Install::new();
    for (round, kill_after) in [(0, 150usize), (1, 700), (2, 37)].into_iter() {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env("LEASH_AUDIT_CRASH_DIR", &install.root)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut acked = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("ACK ") {
                let (seq, hash) = rest.split_once(' ').unwrap();
                acked.push((seq.parse::<u64>().unwrap(), hash.to_string()));
                if acked.len() == kill_after {
                    child.kill().unwrap(); // SIGKILL
                    break;
                }
            }
        }
        child.wait().unwrap();

        let report = install
            .verify(None)
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let store = Store::open(&install.data()).unwrap();
        let tree = store.tree("audit").unwrap();
        for (seq, hash) in &acked {
            let entry = get(&tree, *seq);
            assert_eq!(
                entry["hash"].as_str(),
                Some(hash.as_str()),
                "round {round}: entry {seq}"
            );
        }
        drop(tree);
        drop(store);

        let (_store, log) = install.open(every(50)).unwrap();
        let next = log.append_blocking(decision(0)).unwrap();
        assert_eq!(next.seq, report.entries, "round {round}");
    }
    let report = install.verify(Some(&install.note_copy())).unwrap();
    assert!(report.entries > 800);
}

/// A stand-in for a running leash's admin API: serves `entries` on
/// `GET /v1/audit?after=&limit=` to the bearer `token`, a page at a time,
/// as leash does. Returns its address.
fn admin_double(entries: Vec<Value>, token: &'static str) -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).to_string();
            let target = head.split(' ').nth(1).unwrap_or("").to_string();
            let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
            let mut after = None;
            let mut limit = 100usize;
            for (k, v) in form_urlencoded::parse(query.as_bytes()) {
                match k.as_ref() {
                    "after" => after = v.parse::<u64>().ok(),
                    "limit" => limit = v.parse().unwrap_or(100),
                    _ => {}
                }
            }
            let authorized = head.contains(&format!("Authorization: Bearer {token}\r\n"));
            let (status, body) = if !authorized {
                (
                    "401 Unauthorized",
                    json!({"error": {"code": "unauthorized"}}),
                )
            } else {
                let start = after.map_or(0, |a| a as usize + 1);
                let page: Vec<Value> = entries.iter().skip(start).take(limit).cloned().collect();
                ("200 OK", json!({ "entries": page }))
            };
            let body = body.to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

#[test]
fn verify_through_the_admin_api_checks_the_served_chain_with_the_local_key() {
    let install = Install::new();
    build(&install, 2500, every(1000));
    let entries = {
        let store = Store::open(&install.data()).unwrap();
        read_entries(&store, None, 10_000).unwrap()
    };
    assert!(entries.len() > 2500, "decisions and checkpoints");
    let key = public_key_path(&install.key());
    let run = |addr: std::net::SocketAddr, token: &str| {
        Command::new(env!("CARGO_BIN_EXE_leash"))
            .args(["audit", "verify", "--admin", &format!("http://{addr}")])
            .arg("--public-key")
            .arg(&key)
            .current_dir(&install.root)
            .env("LEASH_AUDIT_TOKEN", token)
            .output()
            .unwrap()
    };

    // The honest chain, served in pages of 1,000: verified here.
    let output = run(admin_double(entries.clone(), "auditor"), "auditor");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("ok: {} entries", entries.len())),
        "{stdout}"
    );
    assert!(stdout.contains("3 signed checkpoint(s)"), "{stdout}");

    // One entry changed and rehashed by the server: caught at the next
    // entry's link, named.
    let mut tampered = entries.clone();
    tampered[1234]["decision"] = json!("AUTO_APPROVE");
    tampered[1234]["details"]["rule"] = json!(null);
    rehash(&mut tampered[1234]);
    let output = run(admin_double(tampered, "auditor"), "auditor");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("FAILED"), "{stderr}");
    assert!(stderr.contains("entry 1234"), "{stderr}");

    // An entry left out of the pages: named as missing.
    let mut cut = entries.clone();
    cut.remove(700);
    let output = run(admin_double(cut, "auditor"), "auditor");
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("entry 700 is missing"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // A wrong token is an error, not a verified chain.
    let output = run(admin_double(entries, "auditor"), "someone-else");
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
