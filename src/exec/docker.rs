//! Running one task in a container with the docker CLI (DESIGN §4). The container has a fixed name
//! and labels so a timeout or a shutdown can `docker kill` it: killing only the CLI would leave the
//! container running. This module never touches git.

use crate::exec::capture::{capture, Captured};
use crate::settings;
use crate::task::{Attempt, Network, Status, TaskCommand, TaskSpec};
use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Operator settings for every container this node starts.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    pub docker: String,
    /// Bytes kept per stream; the rest is counted and hashed.
    pub output_cap: usize,
    /// Whether tasks may ask for `"network": "bridge"`.
    pub allow_network: bool,
    pub default_cpus: f64,
    pub max_cpus: f64,
    pub default_memory: u64,
    pub max_memory: u64,
    pub pids_limit: u32,
    pub tmpfs_size: String,
    /// `missing` (docker's default) or `never`.
    pub pull: String,
    /// The node's folder in the state dir, as a label on its containers: one process at a time
    /// holds that folder's lock, so a restart removes the leftovers of that folder only, never the
    /// containers of another worker that shares the node id (another grid, another state dir).
    pub node_dir: String,
}

impl Default for DockerConfig {
    fn default() -> Self {
        // The operator's settings default as the settings table says; the rest are fixed here.
        DockerConfig {
            docker: settings::DOCKER.fixed().into(),
            output_cap: settings::OUTPUT_CAP.fixed(),
            allow_network: settings::ALLOW_NETWORK.fixed(),
            default_cpus: 1.0,
            max_cpus: settings::MAX_CPUS.fixed(),
            default_memory: 512 << 20,
            max_memory: memory_bytes(settings::MAX_MEMORY.fixed())
                .expect("the default max memory is docker's syntax"),
            pids_limit: 256,
            tmpfs_size: "64m".into(),
            pull: settings::PULL.fixed().into(),
            node_dir: String::new(),
        }
    }
}

/// What a finished container run produced.
pub struct Execution {
    pub status: Status,
    pub exit_code: Option<i64>,
    pub stdout: Captured,
    pub stderr: Captured,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

message_error!(
    /// The task could not be run for reasons that are the node's, not the task's: no docker, a
    /// dead daemon, an image that cannot be had, a full disk. The task goes back to the queue
    /// untouched.
    InfraError
);

pub const LABEL_TASK: &str = "dgrid.task";
pub const LABEL_NODE: &str = "dgrid.node";
pub const LABEL_NODE_DIR: &str = "dgrid.node-dir";

/// Docker names allow `[a-zA-Z0-9][a-zA-Z0-9_.-]*`; ids and node ids already fit.
pub fn container_name(node_id: &str, task_id: &str, attempt: Attempt) -> String {
    format!("dgrid-{node_id}-{task_id}-{attempt}")
}

/// Docker's memory syntax is a rule of the task contract; re-exported for the node's limit.
pub use crate::task::memory_bytes;

/// The `docker run` arguments for a task.
pub fn run_args(
    cfg: &DockerConfig,
    spec: &TaskSpec,
    node_id: &str,
    attempt: Attempt,
) -> Vec<String> {
    let name = container_name(node_id, &spec.id, attempt);
    let resources = spec.resources.as_ref();
    let cpus = resources
        .and_then(|r| r.cpus)
        .unwrap_or(cfg.default_cpus)
        .min(cfg.max_cpus);
    let memory = resources
        .and_then(|r| r.memory.as_deref())
        .and_then(memory_bytes)
        .unwrap_or(cfg.default_memory)
        .min(cfg.max_memory);
    let network = match spec.network {
        Some(Network::Bridge) if cfg.allow_network => "bridge",
        _ => "none",
    };
    let mut args: Vec<String> = vec![
        "run".into(),
        "--rm".into(),
        format!("--name={name}"),
        format!("--label={LABEL_TASK}={}", spec.id),
        format!("--label={LABEL_NODE}={node_id}"),
        format!("--label={LABEL_NODE_DIR}={}", cfg.node_dir),
        format!("--label=dgrid.attempt={attempt}"),
        "--init".into(),
        format!("--network={network}"),
        "--read-only".into(),
        format!("--tmpfs=/tmp:rw,nosuid,nodev,size={}", cfg.tmpfs_size),
        "--cap-drop=ALL".into(),
        "--security-opt=no-new-privileges".into(),
        format!("--pids-limit={}", cfg.pids_limit),
        format!("--memory={memory}"),
        format!("--cpus={cpus}"),
        format!("--pull={}", cfg.pull),
    ];
    // KEY=VALUE on the command line, not through the docker CLI's own environment: a task setting
    // DOCKER_HOST, PATH or HOME must not steer the CLI. (The values are in the repository anyway.)
    for (key, value) in &spec.env {
        args.push("-e".into());
        args.push(format!("{key}={value}"));
    }
    // The entrypoint is set explicitly so an image's own ENTRYPOINT cannot reinterpret the command.
    match &spec.command {
        TaskCommand::Shell(script) => {
            args.extend([
                "--entrypoint=sh".into(),
                spec.image.clone(),
                "-c".into(),
                script.clone(),
            ]);
        }
        TaskCommand::Argv(argv) => {
            args.push(format!("--entrypoint={}", argv[0]));
            args.push(spec.image.clone());
            args.extend(argv[1..].iter().cloned());
        }
    }
    args
}

/// Runs the task to its end, its timeout, or until `kill` is set. Nothing stays running afterwards.
pub fn run(
    cfg: &DockerConfig,
    spec: &TaskSpec,
    node_id: &str,
    attempt: Attempt,
    kill: &AtomicBool,
) -> Result<Execution, InfraError> {
    let name = container_name(node_id, &spec.id, attempt);
    // A leftover of an earlier crash with the same name would make `docker run` fail.
    remove(cfg, &name);
    let (out_r, out_w) =
        os_pipe::pipe().map_err(|e| InfraError(format!("cannot create a pipe: {e}")))?;
    let (err_r, err_w) =
        os_pipe::pipe().map_err(|e| InfraError(format!("cannot create a pipe: {e}")))?;
    let expression = duct::cmd(&cfg.docker, run_args(cfg, spec, node_id, attempt))
        .stdin_null()
        .stdout_file(out_w)
        .stderr_file(err_w)
        .env_remove("GIT_TOKEN")
        .unchecked();
    let started_at = Utc::now();
    let start = Instant::now();
    let handle = expression
        .start()
        .map_err(|e| InfraError(format!("cannot run {}: {e}", cfg.docker)))?;
    drop(expression); // our copies of the pipe's write ends: readers see EOF when docker exits
    let cap = cfg.output_cap;
    let out_thread = std::thread::spawn(move || capture(out_r, cap));
    let err_thread = std::thread::spawn(move || capture(err_r, cap));

    let timeout = Duration::from_secs(spec.timeout);
    let mut stopped: Option<Status> = None;
    let output = loop {
        match handle.try_wait() {
            Ok(Some(output)) => break output.clone(),
            Ok(None) => {}
            Err(e) => return Err(InfraError(format!("lost the docker process: {e}"))),
        }
        if stopped.is_none() {
            if start.elapsed() >= timeout {
                stopped = Some(Status::Timeout);
            } else if kill.load(Ordering::SeqCst) {
                stopped = Some(Status::Cancelled);
            }
            if stopped.is_some() {
                docker_kill(cfg, &name);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = out_thread
        .join()
        .expect("the capture thread does not panic");
    let stderr = err_thread
        .join()
        .expect("the capture thread does not panic");
    let finished_at = Utc::now();
    // `--rm` removes it, but not if the CLI lost track of it; make sure.
    remove(cfg, &name);
    let code = output.status.code().map(i64::from);
    if let Some(status) = stopped {
        return Ok(Execution {
            status,
            exit_code: None,
            stdout,
            stderr,
            started_at,
            finished_at,
        });
    }
    if let Some(why) = infrastructure_failure(code, &stderr.text()) {
        return Err(InfraError(why));
    }
    let status = if code == Some(0) {
        Status::Success
    } else {
        Status::Failed
    };
    Ok(Execution {
        status,
        exit_code: code,
        stdout,
        stderr,
        started_at,
        finished_at,
    })
}

/// Exit 125 is docker's own failure (it could not create or start the container); the daemon's
/// messages say which. A task's own exit codes never come with these messages.
fn infrastructure_failure(code: Option<i64>, stderr: &str) -> Option<String> {
    const SIGNS: [&str; 7] = [
        "Cannot connect to the Docker daemon",
        "Error response from daemon",
        "Unable to find image",
        "no space left on device",
        "docker: ",
        "permission denied while trying to connect",
        "failed to create",
    ];
    let daemon_said = SIGNS.iter().any(|s| stderr.contains(s));
    let unreachable = stderr.contains("Cannot connect to the Docker daemon");
    if (daemon_said && code == Some(125)) || unreachable {
        let first = stderr
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("docker failed");
        return Some(first.trim().to_string());
    }
    None
}

fn docker_kill(cfg: &DockerConfig, name: &str) {
    let _ = duct::cmd(&cfg.docker, ["kill", name])
        .stdout_null()
        .stderr_null()
        .unchecked()
        .run();
}

fn remove(cfg: &DockerConfig, name: &str) {
    let _ = duct::cmd(&cfg.docker, ["rm", "--force", name])
        .stdout_null()
        .stderr_null()
        .unchecked()
        .run();
}

/// Kills and removes every container this node started from its folder in the state dir (after a
/// crash).
pub fn remove_node_containers(cfg: &DockerConfig, node_id: &str) {
    let listed = duct::cmd(
        &cfg.docker,
        [
            "ps",
            "--all",
            "--quiet",
            "--filter",
            &format!("label={LABEL_NODE}={node_id}"),
            "--filter",
            &format!("label={LABEL_NODE_DIR}={}", cfg.node_dir),
        ],
    )
    .stderr_null()
    .stdout_capture()
    .unchecked()
    .run();
    if let Ok(out) = listed {
        for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            remove(cfg, id);
        }
    }
}

/// The docker server version, or why docker cannot be used.
pub fn server_version(cfg: &DockerConfig) -> Result<String, InfraError> {
    let out = duct::cmd(&cfg.docker, ["version", "--format", "{{.Server.Version}}"])
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .map_err(|e| InfraError(format!("cannot run {}: {e}", cfg.docker)))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(InfraError(
            stderr
                .lines()
                .last()
                .unwrap_or("docker is not usable")
                .trim()
                .to_string(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_syntax() {
        assert_eq!(memory_bytes("512m"), Some(512 << 20));
        assert_eq!(memory_bytes("2G"), Some(2 << 30));
        assert_eq!(memory_bytes("1024"), Some(1024));
        assert_eq!(memory_bytes("x"), None);
    }

    #[test]
    fn daemon_failures_are_infrastructure() {
        assert!(infrastructure_failure(
            Some(125),
            "docker: Error response from daemon: pull access denied"
        )
        .is_some());
        assert!(infrastructure_failure(
            Some(125),
            "Cannot connect to the Docker daemon at unix:///var/run/docker.sock"
        )
        .is_some());
        assert!(infrastructure_failure(Some(125), "my task exits 125").is_none());
        assert!(infrastructure_failure(Some(3), "").is_none());
    }
}
