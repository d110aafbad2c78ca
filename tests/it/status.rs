//! `status`, `show`, `logs` and the dashboard on a grid generated with known content.

use crate::common;
use crate::common::{assert_success, Env, TaskJson};
use git_dgrid::layout::{node_path, task_path, State};
use std::path::{Path, PathBuf};

const NOW: &str = "2026-01-01T12:00:00Z";

/// A task of the known grid: it echoes its id.
fn task(id: &str, created: &str) -> TaskJson {
    TaskJson::file(id)
        .command(format!("echo {id}"))
        .created_at(created)
}

fn result(id: &str, node: &str, status: &str, code: i64, finished: &str, stdout: &str) -> String {
    serde_json::json!({
        "task_id": id, "node_id": node, "exit_code": code, "stdout": stdout, "stderr": "",
        "timestamp": finished, "status": status, "finished_at": finished, "duration_ms": 1500, "attempt": 1,
        "task": task(id, "2026-01-01T09:00:00Z").value(),
    })
    .to_string()
}

fn node(id: &str, heartbeat: &str, running: &[&str], completed: u64, failed: u64) -> String {
    serde_json::json!({
        "id": id, "hostname": "host", "version": "0.1.0", "labels": [], "slots": 1, "cpus": 1.0,
        "memory": 1, "docker_version": "20.10", "started_at": "2026-01-01T08:00:00Z",
        "last_heartbeat": heartbeat, "state": "running", "heartbeat_interval": 300,
        "running": running, "completed": completed, "failed": failed,
    })
    .to_string()
}

/// Commits `files` with a fixed date, so commit ids (and the snapshot) are reproducible.
fn commit(env: &Env, repo: &Path, files: &[(String, String)], date: &str, message: &str) {
    for (path, content) in files {
        let full = repo.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
        env.git(repo, &["add", path]);
    }
    let out = env
        .cmd("git", repo)
        .args(["commit", "--quiet", "-m", message])
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date)
        .output()
        .unwrap();
    assert_success(&out);
}

/// A grid with every state, an alive node and a dead one; returns a clone to look from.
fn known_grid(env: &Env) -> PathBuf {
    let remote = env.path("g.git");
    env.git(
        env.tmp.path(),
        &[
            "init",
            "--quiet",
            "--bare",
            "--initial-branch=main",
            remote.to_str().unwrap(),
        ],
    );
    let author = env.path("author");
    env.git(
        env.tmp.path(),
        &[
            "init",
            "--quiet",
            "--initial-branch=main",
            author.to_str().unwrap(),
        ],
    );
    commit(
        env,
        &author,
        &[
            (
                task_path(State::Queue, "q-first"),
                task("q-first", "2026-01-01T10:00:00Z")
                    .set("priority", 5)
                    .to_string(),
            ),
            (
                task_path(State::Queue, "q-second"),
                task("q-second", "2026-01-01T11:00:00Z").to_string(),
            ),
            (
                node_path("dead-node"),
                node("dead-node", "2026-01-01T09:00:00Z", &[], 0, 1),
            ),
        ],
        "2026-01-01T10:00:00Z",
        "dgrid: submit",
    );
    commit(
        env,
        &author,
        &[(
            task_path(State::Completed, "c-one"),
            result(
                "c-one",
                "alive-node",
                "success",
                0,
                "2026-01-01T11:40:00Z",
                "one\n",
            ),
        )],
        "2026-01-01T11:40:00Z",
        "dgrid: complete c-one",
    );
    commit(
        env,
        &author,
        &[(
            task_path(State::Failed, "f-one"),
            result(
                "f-one",
                "dead-node",
                "failed",
                2,
                "2026-01-01T11:45:00Z",
                "boom\n",
            ),
        )],
        "2026-01-01T11:45:00Z",
        "dgrid: fail f-one",
    );
    commit(
        env,
        &author,
        &[
            (
                task_path(State::Completed, "c-two"),
                result(
                    "c-two",
                    "alive-node",
                    "success",
                    0,
                    "2026-01-01T11:50:00Z",
                    "two\n",
                ),
            ),
            (
                task_path(State::InProgress, "r-one"),
                task("r-one", "2026-01-01T09:30:00Z")
                    .claim(
                        "alive-node",
                        "2026-01-01T11:50:00Z",
                        "2026-01-01T12:05:00Z",
                        1,
                    )
                    .to_string(),
            ),
            (
                node_path("alive-node"),
                node("alive-node", "2026-01-01T11:59:50Z", &["r-one"], 2, 0),
            ),
        ],
        "2026-01-01T11:50:00Z",
        "dgrid: complete c-two, claim r-one",
    );
    env.git(
        &author,
        &["push", "--quiet", remote.to_str().unwrap(), "main"],
    );
    env.clone(remote.to_str().unwrap(), "viewer")
}

#[test]
fn json_counts_and_node_states_are_exact() {
    let env = Env::new();
    let viewer = known_grid(&env);
    env.dgrid_ok(&viewer, &["validate"], 0);
    let out = env.dgrid_ok(&viewer, &["status", "--json", "--now", NOW], 0);
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        status["counts"],
        serde_json::json!({"queue": 2, "in_progress": 1, "completed": 2, "failed": 1})
    );
    let nodes: Vec<(&str, &str, &str)> = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["id"].as_str().unwrap(),
                n["state"].as_str().unwrap(),
                n["last_heartbeat"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        nodes,
        vec![
            ("alive-node", "alive", "2026-01-01T11:59:50Z"),
            ("dead-node", "dead", "2026-01-01T09:00:00Z")
        ]
    );
    assert_eq!(status["queue"]["oldest_wait"], 7200);
    assert_eq!(
        status["queue"]["next"][0]["id"], "q-first",
        "priority first"
    );
    assert_eq!(status["in_progress"][0]["node_id"], "alive-node");
    assert_eq!(status["in_progress"][0]["elapsed"], 600);
    let recent: Vec<&str> = status["recent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(recent, vec!["c-two", "f-one", "c-one"], "newest first");
}

#[test]
fn terminal_table_matches_the_snapshot() {
    let env = Env::new();
    let viewer = known_grid(&env);
    let out = env.dgrid_ok(
        &viewer,
        &["status", "--ref", "origin/main", "--now", NOW],
        0,
    );
    // Exact, commit id included: the grid is made with fixed dates. If the table changes on
    // purpose: `cargo insta review` (or INSTA_UPDATE=always).
    insta::assert_snapshot!("known_grid_table", out);
    assert!(
        out.ends_with("Z\n"),
        "one newline at the end (insta ignores it)"
    );
    assert!(!out.contains('\x1b'), "no colour in a pipe");
}

#[test]
fn show_and_logs() {
    let env = Env::new();
    let viewer = known_grid(&env);
    let out = env.dgrid_ok(&viewer, &["show", "f-one", "--json"], 0);
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["state"], "failed");
    assert_eq!(shown["result"]["exit_code"], 2);
    assert_eq!(shown["history"][0]["subject"], "dgrid: fail f-one");
    assert_eq!(
        env.dgrid_ok(&viewer, &["logs", "f-one", "--stdout"], 0),
        "boom\n"
    );
    let missing = env.dgrid(&viewer, &["show", "no-such-task"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no task \"no-such-task\""));
    assert_eq!(
        env.dgrid(&viewer, &["logs", "no-such-task"]).status.code(),
        Some(1)
    );
    assert_eq!(
        env.dgrid(&viewer, &["logs", "q-first"]).status.code(),
        Some(1),
        "no output yet"
    );
}

fn chromium() -> Option<String> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if std::process::Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Some(name.to_string());
        }
    }
    common::missing("CHROMIUM", "no chromium is installed");
    None
}

fn browser(name: &str, env: &Env, args: &[&str]) -> std::process::Output {
    let profile = env.path("chromium-profile");
    std::process::Command::new(name)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
        ])
        .args([
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            "--disable-quic",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .unwrap()
}

#[test]
#[cfg_attr(
    not(have_chromium),
    ignore = "needs chromium (apt-get install chromium)"
)]
fn the_dashboard_in_a_real_browser_shows_counts_and_runs_nothing() {
    let Some(chromium) = chromium() else { return };
    let env = Env::new();
    let viewer = known_grid(&env);
    let author = env.path("author");
    let evil =
        "<script>document.title='PWNED'</script><img src=x onerror=\"document.title='PWNED'\">";
    let queued = TaskJson::file("evil")
        .image("alpine")
        .command(evil)
        .created_at("2026-01-01T11:00:00Z")
        .timeout(5)
        .set("submitted_by", "<b>mallory</b>");
    let mut done: serde_json::Value = serde_json::from_str(&result(
        "evil-out",
        "alive-node",
        "success",
        0,
        "2026-01-01T11:55:00Z",
        evil,
    ))
    .unwrap();
    done["task"]["command"] = evil.into();
    commit(
        &env,
        &author,
        &[
            (task_path(State::Queue, "evil"), queued.to_string()),
            (task_path(State::Completed, "evil-out"), done.to_string()),
        ],
        "2026-01-01T11:55:00Z",
        "dgrid: hostile strings",
    );
    env.git(
        &author,
        &[
            "push",
            "--quiet",
            env.path("g.git").to_str().unwrap(),
            "main",
        ],
    );
    let site = env.path("site");
    env.dgrid_ok(
        &viewer,
        &[
            "status",
            "--html",
            site.to_str().unwrap(),
            "--now",
            NOW,
            "--title",
            "test <grid>",
        ],
        0,
    );
    let page = std::fs::read_to_string(site.join("index.html")).unwrap();
    assert!(!page.contains("<script"), "no script element at all");
    assert!(page.contains("&lt;script&gt;document.title="));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(site.join("status.json")).unwrap()).unwrap();
    assert_eq!(json["counts"]["queue"], 3);

    let url = format!("file://{}", site.join("index.html").display());
    let out = browser(&chromium, &env, &["--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("<title>test &lt;grid&gt; · git-dgrid</title>"),
        "the title is untouched: {}",
        &dom[..dom.len().min(400)]
    );
    assert!(!dom.contains("PWNED</title>"));
    for (id, n) in [
        ("count-queue", 3),
        ("count-in_progress", 1),
        ("count-completed", 3),
        ("count-failed", 1),
        ("count-nodes-alive", 1),
    ] {
        assert!(
            dom.contains(&format!(r#"id="{id}">{n}</div>"#)),
            "{id} should be {n}"
        );
    }
    assert!(
        dom.contains("&lt;script&gt;document.title='PWNED'&lt;/script&gt;"),
        "hostile text shown as text"
    );
    assert!(
        !dom.contains("<img src=\"x\""),
        "no element made from task text"
    );
    let shot = site.join("screenshot.png");
    let out = browser(
        &chromium,
        &env,
        &[
            "--window-size=1280,1400",
            &format!("--screenshot={}", shot.display()),
            &url,
        ],
    );
    assert!(shot.exists(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Removes terminal escape sequences (`ESC [ ... letter`), so frames can be read as text.
fn strip_escapes(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `status --watch 1` on a real terminal (a pty from `script`): colour, a redraw that shows a task
/// submitted meanwhile, and a refresh that fails while the remote is away keeps the last table on
/// screen with the error instead of ending the watch.
#[test]
#[cfg_attr(
    not(have_script),
    ignore = "needs script (apt-get install bsdutils, util-linux)"
)]
fn status_watch_redraws_in_colour_and_rides_out_a_lost_remote() {
    if !common::script_ready() {
        return;
    }
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    let submit = |id: &str| {
        env.dgrid_ok(
            &clone,
            &["submit", "--id", id, "--image", "busybox", "--", "true"],
            0,
        );
    };
    submit("watched-1");
    let mut child = env
        .cmd("script", &clone)
        .args(["-qfec"])
        .arg(format!(
            "{} status --watch 1",
            env!("CARGO_BIN_EXE_git-dgrid")
        ))
        .arg("/dev/null")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let sink = seen.clone();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = std::io::Read::read(&mut stdout, &mut buffer) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    });
    let shows =
        |text: &str| common::wait_for(300, || strip_escapes(&seen.lock().unwrap()).contains(text));
    assert!(shows("queued 1"), "{}", seen.lock().unwrap());
    submit("watched-2");
    assert!(shows("queued 2"), "{}", seen.lock().unwrap());
    let away = env.path("g.git.away");
    std::fs::rename(&grid, &away).unwrap();
    assert!(shows("could not refresh"), "{}", seen.lock().unwrap());
    assert!(child.try_wait().unwrap().is_none(), "the watch goes on");
    std::fs::rename(&away, &grid).unwrap();
    let raw = seen.lock().unwrap().clone();
    assert!(raw.matches("\x1b[2J").count() >= 3, "redrawn: {raw}");
    assert!(
        raw.contains("\x1b[1m") || raw.contains("\x1b[3"),
        "in colour: {raw}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// In a pipe, `status --watch` writes one table after another, with no terminal codes.
#[test]
fn status_watch_in_a_pipe_appends_plain_tables() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    let mut child = env
        .cmd(env!("CARGO_BIN_EXE_git-dgrid"), &clone)
        .args(["status", "--watch", "1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = std::io::Read::read(&mut stdout, &mut buf) {
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    // Two tables, however long a loaded machine takes to draw them (a fixed 2.6 s could miss).
    let text = || String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    let two = common::wait_for(300, || text().matches("TASKS").count() >= 2);
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    let out = text();
    assert!(two && out.matches("TASKS").count() >= 2, "{out}");
    assert!(!out.contains('\x1b'), "{out:?}");
}
