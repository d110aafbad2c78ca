//! Benchmarks of signed tasks (not tests: nothing here asserts a time).
//!
//!   cargo bench --bench trust
//!
//! 10,000 queued tasks in one commit, signed in-process with an ed25519 key (as `submit --sign`
//! would, without 10,000 ssh-keygen processes), and the same tasks unsigned. Measured: one
//! `ssh-keygen -Y sign` (the submit cost per task), verifying every task cold and from the
//! verdict cache, the claim's eligibility pass over the whole queue with and without
//! `--allowed-signers`, and `git dgrid status` on both grids. Results go to BENCHMARKS.md by hand.

#[path = "../tests/it/common/mod.rs"]
mod common;

use common::Env;
use git_dgrid::grid::{load_spec, plan_claim, Admission, ClaimRequest, Snapshot, TaskTrust, Trust};
use git_dgrid::layout::{task_path, State};
use git_dgrid::odb::{self, Edit, Identity};
use git_dgrid::task::{parse_task, Limits, Origin, TaskSpec};
use git_dgrid::trust::{self, AllowedSigners};
use ssh_key::private::{Ed25519Keypair, PrivateKey};
use ssh_key::{HashAlg, LineEnding, SshSig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const N: usize = 10_000;

fn main() {
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&[7; 32]));
    let signers = AllowedSigners::parse(
        "allowed_signers",
        &format!("bench {}\n", key.public_key().to_openssh().unwrap()),
    )
    .unwrap();
    let env = Env::new();
    let limits = Limits::default();
    let specs: Vec<TaskSpec> = (0..N).map(|i| spec(i, &limits)).collect();
    let signed: Vec<TaskSpec> = specs.iter().map(|s| sign(s, &key)).collect();
    let plain_grid = grid(&env, "plain.git", &specs);
    let signed_grid = grid(&env, "signed.git", &signed);

    println!("| what | {N} tasks | per task |");
    println!("|---|---:|---:|");
    let keygen = ssh_keygen_sign(&env);
    println!(
        "| `ssh-keygen -Y sign` of one task (a process; `submit --sign`) | | {:.1} ms |",
        keygen.as_secs_f64() * 1e3
    );
    let cold = time(3, || {
        for s in &signed {
            trust::verify(s, &signers, chrono::Utc::now()).unwrap();
        }
    });
    row("verify, cold (canonical bytes + ed25519)", cold);

    let repo = odb::open(&signed_grid).unwrap();
    let tip = tip_of(&repo);
    let snap = Snapshot::read(&repo, Some(tip)).unwrap();
    let refs: Vec<_> = snap.in_state(State::Queue).collect();
    let loaded: Vec<TaskSpec> = refs
        .iter()
        .map(|r| load_spec(&repo, r, &limits).unwrap())
        .collect();
    let trust = Trust::new(Some(signers.clone()), None);
    for (r, s) in refs.iter().zip(&loaded) {
        trust.check(r, s).unwrap();
    }
    let cached = time(5, || {
        for (r, s) in refs.iter().zip(&loaded) {
            trust.check(r, s).unwrap();
        }
    });
    row("verify, from the verdict cache (by blob id)", cached);

    for (name, grid, signatures) in [
        ("unsigned, no --allowed-signers", &plain_grid, false),
        ("signed, --allowed-signers, cold cache", &signed_grid, true),
    ] {
        let repo = odb::open(grid).unwrap();
        let tip = tip_of(&repo);
        let snap = Snapshot::read(&repo, Some(tip)).unwrap();
        let check: Option<Arc<dyn TaskTrust>> =
            signatures.then(|| Arc::new(Trust::new(Some(signers.clone()), None)) as _);
        let request = ClaimRequest {
            node_id: "bench".into(),
            max: 1,
            ahead: 0,
            lease: Duration::from_secs(60),
            labels: Vec::new(),
            allow_network: false,
            admission: Arc::new({
                let mut gate = Admission::default();
                gate.signatures = check;
                gate
            }),
        };
        let plan = || {
            plan_claim(&repo, &snap, &request, &limits, chrono::Utc::now())
                .unwrap()
                .unwrap()
        };
        let first = time(1, plan);
        row(&format!("claim over the queue, {name}"), first);
        if signatures {
            row(
                "claim over the queue, signed, --allowed-signers, cached",
                time(3, plan),
            );
        }
    }
    for (name, grid) in [("unsigned", &plain_grid), ("signed", &signed_grid)] {
        let status = time(3, || {
            let out = env
                .cmd(env!("CARGO_BIN_EXE_git-dgrid"), grid)
                .args(["status", "--json"])
                .output()
                .unwrap();
            assert!(out.status.success());
        });
        row(
            &format!("`git dgrid status --json` (a process), {name}"),
            status,
        );
    }
}

fn row(what: &str, total: Duration) {
    println!(
        "| {what} | {:.0} ms | {:.1} µs |",
        total.as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e6 / N as f64
    );
}

fn spec(i: usize, limits: &Limits) -> TaskSpec {
    let json = format!(
        r#"{{"id":"t{i:06}","image":"alpine:3","command":"echo {i}","created_at":"2026-01-01T00:00:00Z","timeout":60,"submitted_by":"bench"}}"#
    );
    parse_task("bench", json.as_bytes(), limits, Origin::Required).unwrap()
}

fn sign(spec: &TaskSpec, key: &PrivateKey) -> TaskSpec {
    let sig = SshSig::sign(
        key,
        trust::NAMESPACE,
        HashAlg::Sha512,
        &trust::canonical_bytes(spec),
    )
    .unwrap();
    let mut out = spec.clone();
    out.signature = Some(sig.to_pem(LineEnding::LF).unwrap());
    out
}

/// A bare grid with `specs` queued in one commit, repacked.
fn grid(env: &Env, name: &str, specs: &[TaskSpec]) -> PathBuf {
    let grid = env.grid(name);
    let repo = odb::open(&grid).unwrap();
    let edits: Vec<Edit> = specs
        .iter()
        .map(|s| Edit::Write {
            path: task_path(State::Queue, &s.id),
            content: s.to_json(),
        })
        .collect();
    let identity = Identity {
        name: "bench".into(),
        email: "bench@localhost".into(),
    };
    let commit =
        odb::write_commit(&repo, Some(tip_of(&repo)), &edits, &identity, "bench\n").unwrap();
    env.git(
        &grid,
        &["update-ref", "refs/heads/main", &commit.to_string()],
    );
    env.git(&grid, &["gc", "--quiet"]);
    grid
}

fn tip_of(repo: &gix::Repository) -> gix::ObjectId {
    repo.find_reference("refs/heads/main")
        .unwrap()
        .id()
        .detach()
}

/// One `ssh-keygen -Y sign` of a task's canonical bytes, median of 10.
fn ssh_keygen_sign(env: &Env) -> Duration {
    let key = env.path("bench_ed25519");
    let made = env
        .cmd("ssh-keygen", env.tmp.path())
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let data = env.path("data");
    std::fs::write(&data, trust::canonical_bytes(&spec(1, &Limits::default()))).unwrap();
    time(10, || sign_file(env, &key, &data))
}

fn sign_file(env: &Env, key: &Path, data: &Path) {
    let out = env
        .cmd("ssh-keygen", env.tmp.path())
        .args(["-Y", "sign", "-n", trust::NAMESPACE, "-q", "-f"])
        .arg(key)
        .stdin(std::fs::File::open(data).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success());
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    let mut samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(f());
            start.elapsed()
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}
