//! Task secrets on a real grid with real Docker: `submit --secret TOKEN=@FILE` encrypts the value
//! to the keys in `.dgrid/recipients`; a worker whose `--identity` opens it runs the task with the
//! value as `/dgrid/secrets/TOKEN` (and `$TOKEN`), its stored output masked; the plaintext is
//! nowhere in the remote's objects, the worker's log, its state dir or `docker inspect`. A worker
//! without a matching key never claims the task, and `status` says what it waits for.

use crate::common::{assert_success, docker_ready, find_task, Env};
use crate::secrets_kit::{age_identity, publish_recipients};
use crate::trust_kit::{keygen, Key};
use crate::worker_kit::*;
use std::path::{Path, PathBuf};

/// Submits `command` with the secret file `token` as TOKEN (also as an environment variable).
fn submit_with_secret(env: &Env, clone: &Path, id: &str, token: &Path, command: &str) {
    let secret = format!("TOKEN=@{}", token.display());
    let out = env.dgrid(
        clone,
        &[
            "submit",
            "--id",
            id,
            "--image",
            IMAGE,
            "--timeout",
            "60",
            "--secret",
            &secret,
            "--secrets-env",
            "--",
            command,
        ],
    );
    assert_success(&out);
}

/// Every file under `dir`, read whole.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, bytes));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn secret_value() -> String {
    format!(
        "tok-{:08x}{:08x}-secret",
        fastrand_u32(),
        std::process::id()
    )
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_secret_is_used_by_the_task_masked_in_its_output_and_stored_nowhere() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let worker_key: Key = keygen(&env, "w1");
    publish_recipients(&env, &clone, &[format!("w1 {}", worker_key.line)]);
    let value = secret_value();
    let token = env.path("token");
    std::fs::write(&token, format!("{value}\n")).unwrap();
    let id = unique("secret");
    let command = r#"cat /dgrid/secrets/TOKEN; echo "env=$TOKEN"; [ "$(cat /dgrid/secrets/TOKEN)" = "$TOKEN" ] && echo used-ok; ls -ln /dgrid/secrets; echo "b64=$(base64 /dgrid/secrets/TOKEN)"; echo "err=$TOKEN" >&2"#;
    submit_with_secret(&env, &clone, &id, &token, command);

    let (state, queued) = find_task(&env, &grid, &id).unwrap();
    assert_eq!(state, "queue");
    let armored = queued["secrets"]["TOKEN"].as_str().unwrap();
    assert!(
        armored.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"),
        "{queued}"
    );
    assert_eq!(queued["secrets_env"], true);

    let out = worker(
        &env,
        &grid,
        "secret-node",
        &[
            "--until-empty",
            "--identity",
            worker_key.private.to_str().unwrap(),
        ],
    )
    .env("DGRID_TEST_KEEP_CONTAINER", "1")
    .output()
    .unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");

    let containers = containers_with_label(&format!("dgrid.task={id}"));
    let inspected = std::process::Command::new("docker")
        .arg("inspect")
        .args(&containers)
        .output()
        .unwrap();
    remove_containers(&format!("dgrid.task={id}"));
    assert_eq!(containers.len(), 1, "the container was kept for inspection");

    let (state, result) = find_task(&env, &grid, &id).unwrap();
    assert_eq!(state, "completed", "{result}\n{log}");
    let stdout = result["stdout"].as_str().unwrap();
    let stderr = result["stderr"].as_str().unwrap();
    assert!(
        stdout.contains("used-ok"),
        "the file and the variable agree: {stdout}"
    );
    assert!(
        stdout.starts_with("[MASKED]\nenv=[MASKED]\nused-ok\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("b64=[MASKED]"),
        "its base64 form too: {stdout}"
    );
    assert!(stderr.contains("err=[MASKED]"), "{stderr}");
    // Mode 0400, owned by the task's user (nobody), on a tmpfs.
    assert!(stdout.contains("-r--------    1 65534"), "{stdout}");

    // Nowhere: every object of the remote, the worker's log and state dir, docker inspect.
    let objects = env
        .cmd("git", &grid)
        .args(["cat-file", "--batch-all-objects", "--batch"])
        .output()
        .unwrap();
    assert_success(&objects);
    assert!(
        !contains(&objects.stdout, &value),
        "the remote holds the plaintext"
    );
    assert!(!log.contains(&value), "the worker's log holds it: {log}");
    for (path, bytes) in files_under(&env.path("state-secret-node")) {
        assert!(!contains(&bytes, &value), "{} holds it", path.display());
    }
    assert_success(&inspected);
    assert!(
        !contains(&inspected.stdout, &value),
        "docker inspect shows it: {}",
        String::from_utf8_lossy(&inspected.stdout)
    );
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_worker_that_cannot_decrypt_leaves_the_task_for_one_that_can() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let (key, public) = age_identity(&env, "w2.age");
    let (stranger, _) = age_identity(&env, "stranger.age");
    publish_recipients(&env, &clone, &[format!("w2 labels=\"eu\" {public}")]);
    let value = secret_value();
    let token = env.path("token");
    std::fs::write(&token, &value).unwrap();
    let id = unique("locked");
    submit_with_secret(&env, &clone, &id, &token, "echo \"$TOKEN\" | wc -c");

    for (node, extra) in [
        ("no-identity", vec![]),
        (
            "wrong-identity",
            vec!["--identity", stranger.to_str().unwrap()],
        ),
    ] {
        let mut args = vec!["--until-empty"];
        args.extend(extra);
        let out = run_worker(&env, &grid, node, &args);
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "nothing it can run keeps it alive: {log}"
        );
        assert_eq!(find_task(&env, &grid, &id).unwrap().0, "queue", "{log}");
        let said: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(&id) && l.contains("(secrets)"))
            .collect();
        assert_eq!(said.len(), 1, "said once, with the reason: {log}");
    }

    let status = env.dgrid(&clone, &["status"]);
    assert_success(&status);
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains(&format!(
            "{id} waits for a node that can decrypt its secrets (TOKEN)"
        )),
        "{status}"
    );

    let out = run_worker(
        &env,
        &grid,
        "key-holder",
        &["--until-empty", "--identity", key.to_str().unwrap()],
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let (state, result) = find_task(&env, &grid, &id).unwrap();
    assert_eq!(state, "completed", "{result}\n{log}");
    assert_eq!(result["node_id"], "key-holder");
    assert_eq!(
        result["stdout"].as_str().unwrap().trim(),
        (value.len() + 1).to_string()
    );
}
