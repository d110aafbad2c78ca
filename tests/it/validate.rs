//! The task contract, through `git dgrid validate`: the accepted and rejected corpora under
//! `tests/corpus/`, generated edge cases, and the rules that need a whole tree.

use crate::common::{Env, TaskJson};
use std::path::{Path, PathBuf};

fn corpus(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(kind)
}

fn problems(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("--json prints JSON lines"))
        .collect()
}

#[test]
fn accepted_corpus_validates() {
    let env = Env::new();
    let mut files: Vec<String> = std::fs::read_dir(corpus("accepted"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    files.sort();
    assert!(files.len() >= 5);
    let mut args = vec!["validate", "--json"];
    args.extend(files.iter().map(String::as_str));
    let out = env.dgrid_ok(env.tmp.path(), &args, 0);
    assert_eq!(out, "");
}

#[test]
fn rejected_corpus_names_file_field_and_reason() {
    let env = Env::new();
    let dir = corpus("rejected");
    let expectations = std::fs::read_to_string(dir.join("expectations.tsv")).unwrap();
    let mut covered = std::collections::BTreeSet::new();
    for line in expectations
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let [file, field, message] = line.split('\t').collect::<Vec<_>>()[..] else {
            panic!("bad expectations line {line:?}");
        };
        covered.insert(file.to_string());
        let path = dir.join(file);
        let out = env.dgrid_ok(
            env.tmp.path(),
            &["validate", "--json", path.to_str().unwrap()],
            1,
        );
        let found = problems(&out);
        let hit = found.iter().any(|p| {
            p["file"].as_str().unwrap().ends_with(file)
                && p["field"].as_str().unwrap_or("-") == field
                && p["message"].as_str().unwrap().contains(message)
        });
        assert!(
            hit,
            "{file}: expected field {field:?} with {message:?}, got {found:#?}"
        );
    }
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".json") {
            assert!(
                covered.contains(&name),
                "{name} has no line in expectations.tsv"
            );
        }
    }
}

#[test]
fn human_output_names_file_field_and_value() {
    let env = Env::new();
    let path = corpus("rejected").join("timeout-string.json");
    let out = env.dgrid_ok(env.tmp.path(), &["validate", path.to_str().unwrap()], 1);
    assert!(
        out.contains(
            "timeout-string.json: \"timeout\": expected an integer from 1 to 86400, got \"abc\""
        ),
        "{out}"
    );
}

#[test]
fn a_replicated_task_with_an_unpinned_image_is_warned_and_still_valid() {
    let env = Env::new();
    let path = env.tmp.path().join("rep-1.json");
    std::fs::write(
        &path,
        r#"{"id":"rep-1","image":"alpine:3","command":"true","created_at":"2026-12-03T00:00:00Z","timeout":1,"submitted_by":"x","replicas":3}"#,
    )
    .unwrap();
    let out = env.dgrid(
        env.tmp.path(),
        &["validate", "--json", path.to_str().unwrap()],
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(stdout, "", "a warning is not a problem");
    assert!(
        stderr.contains("warning: ")
            && stderr.contains(
                "rep-1.json: \"image\": a replicated task should pin its image by digest"
            )
            && stderr.contains("1 file(s) checked, 0 problem(s), 1 warning(s)"),
        "{stderr}"
    );
    // The accepted corpus pins its replicated tasks: no warning there.
    let pinned = corpus("accepted").join("replicated-001.json");
    let out = env.dgrid(env.tmp.path(), &["validate", pinned.to_str().unwrap()]);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("warning"),
        "{out:?}"
    );
}

#[test]
fn huge_files_and_commands_are_refused() {
    let env = Env::new();
    let big = env.path("big.json");
    std::fs::write(
        &big,
        format!("{{\"id\":\"big\",\"pad\":\"{}\"}}", "x".repeat(300 * 1024)),
    )
    .unwrap();
    let out = env.dgrid_ok(env.tmp.path(), &["validate", big.to_str().unwrap()], 1);
    assert!(out.contains("task files are at most 262144 bytes"), "{out}");

    let long = env.path("long.json");
    let task = TaskJson::file("long")
        .image("alpine")
        .command("x".repeat(64 * 1024 + 1))
        .timeout(5);
    std::fs::write(&long, task.to_string()).unwrap();
    let out = env.dgrid_ok(env.tmp.path(), &["validate", long.to_str().unwrap()], 1);
    assert!(
        out.contains("\"command\": must be at most 65536 bytes"),
        "{out}"
    );
}

/// A valid task file (shorthand: the tree rules below need many).
fn task(id: &str) -> String {
    TaskJson::file(id).timeout(5).to_string()
}

fn write(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

#[test]
fn whole_tree_rules() {
    let env = Env::new();
    let repo = env.path("repo");
    env.git(env.tmp.path(), &["init", "--quiet", repo.to_str().unwrap()]);
    let running = TaskJson::file("running")
        .timeout(5)
        .claim("n1", "2026-01-01T00:00:00Z", "2026-01-01T00:15:00Z", 1)
        .to_string();
    write(&repo, "tasks/queue/ok.json", &task("ok"));
    write(&repo, "tasks/queue/twice.json", &task("twice"));
    write(&repo, "tasks/completed/twice.json", &task("twice"));
    write(
        &repo,
        "tasks/queue/00/wrong-shard.json",
        &task("wrong-shard"),
    );
    write(&repo, "tasks/done/x.json", &task("x"));
    write(
        &repo,
        "tasks/in_progress/unclaimed.json",
        &task("unclaimed"),
    );
    write(&repo, "tasks/in_progress/running.json", &running);
    write(
        &repo,
        "tasks/queue/claimed.json",
        &running.replace("running", "claimed"),
    );
    write(&repo, "tasks/queue/notes.txt", "hello");
    // The seed's result format, unchanged, is a valid completed result.
    write(
        &repo,
        "tasks/completed/task-001.json",
        r#"{"task_id":"task-001","node_id":"worker-001","exit_code":0,"stdout":"Hello, D-GRID!","stderr":"","timestamp":"2025-10-16T10:01:23Z","status":"success"}"#,
    );
    write(
        &repo,
        "tasks/completed/bad-status.json",
        r#"{"task_id":"bad-status","node_id":"w","exit_code":1,"stdout":"","stderr":"","timestamp":"2025-10-16T10:01:23Z","status":"failed"}"#,
    );
    write(&repo, "nodes/n1.json", r#"{"id":"n2"}"#);
    write(&repo, "tasks/queue/.gitkeep", "");
    std::os::unix::fs::symlink("/etc/passwd", repo.join("tasks/queue/link.json")).unwrap();

    let out = env.dgrid_ok(&repo, &["validate", "--json"], 1);
    let found = problems(&out);
    let has = |file: &str, text: &str| {
        found.iter().any(|p| {
            p["file"] == file
                && (p["message"].as_str().unwrap().contains(text) || p["field"] == text)
        })
    };
    for (file, text) in [
        (
            "tasks/queue/twice.json",
            "is also in tasks/completed/twice.json",
        ),
        (
            "tasks/completed/twice.json",
            "is also in tasks/queue/twice.json",
        ),
        ("tasks/queue/00/wrong-shard.json", "belongs in"),
        ("tasks/done/x.json", "unknown state folder"),
        (
            "tasks/in_progress/unclaimed.json",
            "is required in tasks/in_progress",
        ),
        (
            "tasks/queue/claimed.json",
            "a queued task cannot carry a claim",
        ),
        ("tasks/queue/notes.txt", "task files are named <id>.json"),
        (
            "tasks/completed/bad-status.json",
            "must have status \"success\"",
        ),
        ("nodes/n1.json", "is \"n2\" but the file is named"),
        ("tasks/queue/link.json", "is a symbolic link"),
    ] {
        assert!(has(file, text), "expected {file}: {text}\n{found:#?}");
    }
    let flagged: std::collections::BTreeSet<&str> =
        found.iter().map(|p| p["file"].as_str().unwrap()).collect();
    for clean in [
        "tasks/queue/ok.json",
        "tasks/completed/task-001.json",
        "tasks/in_progress/running.json",
        "tasks/queue/.gitkeep",
    ] {
        assert!(
            !flagged.contains(clean),
            "{clean} is valid but was flagged: {found:#?}"
        );
    }
}

#[test]
fn rev_range_checks_only_what_the_commits_changed() {
    let env = Env::new();
    let repo = env.path("repo");
    env.git(env.tmp.path(), &["init", "--quiet", repo.to_str().unwrap()]);
    // An invalid file that is already in history is not the range's business...
    write(&repo, "tasks/queue/old-bad.json", "{");
    env.git(&repo, &["add", "-A"]);
    env.git(&repo, &["commit", "--quiet", "-m", "old"]);
    write(&repo, "tasks/queue/good.json", &task("good"));
    env.git(&repo, &["add", "-A"]);
    env.git(&repo, &["commit", "--quiet", "-m", "good"]);
    env.dgrid_ok(&repo, &["validate", "--rev", "HEAD~1..HEAD"], 0);
    // ...but one the range adds is.
    write(
        &repo,
        "tasks/queue/new-bad.json",
        &TaskJson::file("new-bad").timeout("abc").to_string(),
    );
    env.git(&repo, &["add", "-A"]);
    env.git(&repo, &["commit", "--quiet", "-m", "bad"]);
    let out = env.dgrid_ok(&repo, &["validate", "--json", "--rev", "HEAD~2..HEAD"], 1);
    let found = problems(&out);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["file"], "tasks/queue/new-bad.json");
    assert_eq!(found[0]["field"], "timeout");
    // A range git cannot resolve is a usage error.
    env.dgrid_ok(&repo, &["validate", "--rev", "nope..HEAD"], 2);
}

#[test]
fn bare_repository_validates_head() {
    let env = Env::new();
    let grid = env.grid("g.git");
    env.dgrid_ok(&grid, &["validate"], 0);
}

#[test]
fn project_tasks_validate() {
    let env = Env::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let queue = root.join("tasks/queue");
    let count = std::fs::read_dir(&queue)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count();
    assert!(count >= 3, "the project's tasks/queue holds example tasks");
    env.dgrid_ok(root, &["validate", "tasks", "nodes"], 0);
}

/// Hostile input never panics the readers: every corpus file and a result, mutated thousands of
/// times (bytes flipped, cut, repeated, JSON-ish tokens and extreme numbers spliced in), goes through
/// the task and result parsers and the id and image checks, which must answer, not crash.
#[test]
fn mutated_files_never_panic_the_parsers() {
    use git_dgrid::task::{check_id, check_image, parse_result, parse_task, Limits, Origin};
    let mut seeds: Vec<Vec<u8>> = ["accepted", "rejected"]
        .iter()
        .flat_map(|kind| std::fs::read_dir(corpus(kind)).unwrap())
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    seeds.push(
        br#"{"task_id":"t","node_id":"n","exit_code":0,"stdout":"ok","stderr":"","timestamp":"2026-01-01T00:00:00Z","status":"success","attempt":1,"stdout_info":{"total_bytes":2,"sha256":"00","truncated":false},"late_results":[{"node_id":"m","attempt":1,"status":"failed"}]}"#
            .to_vec(),
    );
    const SPLICES: [&str; 14] = [
        "{",
        "}",
        "[",
        "]",
        "\"",
        ",",
        ":",
        "null",
        "1e999",
        "-1",
        "18446744073709551616",
        "\"\\ud800\"",
        "\u{0}",
        "\"../../x\"",
    ];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n.max(1) as u64) as usize
    };
    let limits = Limits::default();
    let mut parsed = 0;
    for seed in &seeds {
        for _ in 0..400 {
            let mut bytes = seed.clone();
            for _ in 0..1 + next(4) {
                let at = next(bytes.len() + 1);
                match next(5) {
                    0 if at < bytes.len() => bytes[at] ^= 1 << next(8),
                    1 => bytes.truncate(at),
                    2 => {
                        let piece = bytes[at..]
                            .iter()
                            .take(next(64))
                            .copied()
                            .collect::<Vec<_>>();
                        bytes.splice(at..at, piece);
                    }
                    _ => {
                        let token = SPLICES[next(SPLICES.len())].as_bytes();
                        bytes.splice(at..at, token.iter().copied());
                    }
                }
            }
            let _ = parse_task("tasks/queue/t.json", &bytes, &limits, Origin::Unchecked);
            let _ = parse_result("tasks/completed/t.json", &bytes, &limits);
            let text = String::from_utf8_lossy(&bytes);
            let _ = check_id(&text);
            let _ = check_image(&text);
            parsed += 1;
        }
    }
    assert!(parsed >= 40 * 400, "{parsed} mutations");
}
