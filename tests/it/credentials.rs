//! Tokens against a real HTTPS git server with basic authentication (lighttpd + git http-backend):
//! they reach the server and nothing else: no commit, result, log, `.git/config`, credential store
//! or container.

use crate::common::*;
use std::path::Path;
use std::process::{Command, Output};

const USER: &str = "grid-bot";

/// A token no other byte sequence in the test can match by accident.
fn token() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("tok3n-{nanos:x}-{}", std::process::id())
}

/// `git dgrid ARGS` trusting the server's certificate, with the token in GIT_TOKEN (and the user in
/// GIT_USERNAME) or not at all.
fn dgrid(env: &Env, server: &HttpsServer, token: Option<&str>, args: &[&str]) -> Command {
    let mut cmd = env.cmd(env!("CARGO_BIN_EXE_git-dgrid"), env.tmp.path());
    cmd.env("GIT_SSL_CAINFO", &server.cert).args(args);
    match token {
        Some(token) => cmd.env("GIT_TOKEN", token).env("GIT_USERNAME", USER),
        None => cmd.env_remove("GIT_TOKEN"),
    };
    cmd
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file below `dir` that contains `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let bytes = std::fs::read(&path).unwrap_or_default();
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    found.push(path.display().to_string());
                }
            }
        }
    }
    found
}

#[test]
#[cfg_attr(
    not(all(have_https, have_docker)),
    ignore = "needs lighttpd with mod_openssl, and openssl (apt-get install lighttpd lighttpd-mod-openssl openssl) and a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_token_reaches_the_server_and_nowhere_else() {
    if !https_ready() || !docker_ready() {
        return;
    }
    let env = Env::new();
    let srv = env.path("srv");
    std::fs::create_dir_all(&srv).unwrap();
    env.dgrid_ok(&srv, &["init", "--bare", "g.git"], 0);
    let token = token();
    let server = HttpsServer::start(&env, &srv, USER, &token);
    let url = server.url("g.git");
    // The user has a `store` helper: it must neither answer for the grid nor learn the token.
    env.git(
        &env.home,
        &["config", "--global", "credential.helper", "store"],
    );
    let state = env.path("state");
    let state_arg = state.to_str().unwrap();

    // Without a token: a clean refusal that says so, exit 2, and no prompt.
    let denied = dgrid(&env, &server, None, &["status", "--repo", &url])
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(denied.status.code(), Some(2), "{}", text(&denied));
    assert!(
        text(&denied).contains("refused access"),
        "{}",
        text(&denied)
    );

    // With GIT_TOKEN: a task that shows its container's environment, and a worker that runs it.
    let submitted = dgrid(&env, &server, Some(&token), &["submit", "--repo", &url])
        .args(["--state-dir", state_arg, "--id", "show-env", "--image"])
        .args(["dgrid/busybox:latest", "--", "env; cat /proc/1/environ"])
        .output()
        .unwrap();
    assert!(submitted.status.success(), "{}", text(&submitted));
    let worked = dgrid(&env, &server, Some(&token), &["work", "--repo", &url])
        .args(["--state-dir", state_arg, "--node-id", "tokened", "-v"])
        .args(["--until-empty", "--poll-interval", "1"])
        .output()
        .unwrap();
    assert!(worked.status.success(), "{}", text(&worked));
    let (state_name, result) = find_task(&env, &srv.join("g.git"), "show-env").unwrap();
    assert_eq!(state_name, "completed", "{result}");
    let container_env = result["stdout"].as_str().unwrap();
    assert!(container_env.contains("PATH="), "{container_env}");

    // The token inside the URL instead: used the same way, kept out of the cache clone's config.
    let with_token = url.replace("https://", &format!("https://{USER}:{token}@"));
    let other_state = env.path("state-url");
    let status = dgrid(&env, &server, None, &["status", "--repo", &with_token])
        .arg("--state-dir")
        .arg(&other_state)
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", text(&status));
    assert!(text(&status).contains("show-env"), "{}", text(&status));

    // Nowhere: not in the grid's objects (commits, tasks, results, the container's environment),
    // the outputs and logs of every command, the state folders with their cache clones, or HOME.
    let objects = env
        .cmd("git", &srv.join("g.git"))
        .args(["cat-file", "--batch-all-objects", "--batch"])
        .output()
        .unwrap();
    assert!(objects.status.success() && objects.stdout.len() > 1000);
    assert!(!String::from_utf8_lossy(&objects.stdout).contains(&token));
    for out in [&denied, &submitted, &worked, &status] {
        assert!(!text(out).contains(&token), "{}", text(out));
    }
    for dir in [&state, &other_state, &env.home] {
        assert_eq!(files_containing(dir, &token), Vec::<String>::new());
    }
    assert!(!env.home.join(".git-credentials").exists());
    // And the server really checked it: a wrong token is refused.
    let wrong = url.replace("https://", &format!("https://{USER}:not-{token}@"));
    let refused = dgrid(&env, &server, None, &["status", "--repo", &wrong])
        .arg("--state-dir")
        .arg(env.path("state-wrong"))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
}
