//! Running one task in a container with the docker CLI (docs/ARCHITECTURE.md#the-worker). The container has a fixed name
//! and labels so a timeout or a shutdown can `docker kill` it: killing only the CLI would leave the
//! container running. This module never touches git.

use crate::exec::capture::{capture, Captured};
use crate::exec::registry::RegistryPolicy;
use crate::exec::secrets_mount;
use crate::exec::verdict::{one_line, verdict, ContainerState, Verdict};
use crate::secrets::{Keys, Masker, MaskingReader};
use crate::settings;
use crate::task::{Attempt, Network, Status, TaskCommand, TaskSpec};
use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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
    /// Registries on the worker's own network that tasks may still pull from.
    pub registries: RegistryPolicy,
    /// The node's folder in the state dir, as a label on its containers: one process at a time
    /// holds that folder's lock, so a restart removes the leftovers of that folder only, never the
    /// containers of another worker that shares the node id (another grid, another state dir).
    pub node_dir: String,
    /// `--user` of every container (`--container-user`): not root unless the operator says so;
    /// a task cannot choose.
    pub user: String,
    /// `--runtime` of every container (gVisor's `runsc`, Kata), or docker's default.
    pub runtime: Option<String>,
    /// The keys of `--identity`, which open tasks' secrets at start (`None`: no secrets here).
    pub secret_keys: Option<Arc<Keys>>,
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
            registries: RegistryPolicy::default(),
            node_dir: String::new(),
            user: settings::CONTAINER_USER.fixed().into(),
            runtime: None,
            secret_keys: None,
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
        // No `--rm`: the container's record decides whose failure a run was (see `verdict`), so
        // it is inspected, then removed by `run`.
        "run".into(),
        // Output is read from the CLI's pipes; the daemon's json-file log would keep a second,
        // unbounded copy on the worker's disk.
        "--log-driver=none".into(),
        format!("--name={name}"),
        format!("--label={LABEL_TASK}={}", spec.id),
        format!("--label={LABEL_NODE}={node_id}"),
        format!("--label={LABEL_NODE_DIR}={}", cfg.node_dir),
        format!("--label=dgrid.attempt={attempt}"),
        "--init".into(),
        format!("--user={}", cfg.user),
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
    if let Some(runtime) = &cfg.runtime {
        args.push(format!("--runtime={runtime}"));
    }
    if !spec.secrets.is_empty() {
        args.extend(secrets_mount::run_options(&cfg.user));
    }
    // KEY=VALUE on the command line, not through the docker CLI's own environment: a task setting
    // DOCKER_HOST, PATH or HOME must not steer the CLI. (The values are in the repository anyway.)
    for (key, value) in &spec.env {
        args.push("-e".into());
        args.push(format!("{key}={value}"));
    }
    // The entrypoint is set explicitly so an image's own ENTRYPOINT cannot reinterpret the command.
    if !spec.secrets.is_empty() {
        args.extend(secrets_mount::wrapped_command(spec));
        return args;
    }
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

/// Why this node must not hand `spec`'s image to docker, or `None`: with pulls allowed, an image
/// from a registry on the worker's own network (loopback, private, link-local) would make the
/// daemon connect there on the task's word. Asked before `docker run`, which would resolve it.
pub fn pull_refusal(cfg: &DockerConfig, spec: &TaskSpec) -> Option<String> {
    if cfg.pull == "never" {
        return None; // docker only looks at the images it has
    }
    cfg.registries.refusal(&spec.image)
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
    // Decrypted in memory only, before anything runs: a node that cannot open them runs nothing.
    let opened = open_secrets(cfg, spec)?;
    let masker = Masker::new(opened.iter().flat_map(|o| o.iter().map(|(_, v)| v)));
    // A leftover of an earlier crash with the same name would make `docker run` fail.
    remove(cfg, &name);
    let (out_r, out_w) =
        os_pipe::pipe().map_err(|e| InfraError(format!("cannot create a pipe: {e}")))?;
    let (err_r, err_w) =
        os_pipe::pipe().map_err(|e| InfraError(format!("cannot create a pipe: {e}")))?;
    let (expression, secrets_in) = with_stdin(
        duct::cmd(&cfg.docker, run_args(cfg, spec, node_id, attempt)),
        opened.is_some(),
    )?;
    let expression = expression
        .stdout_file(out_w)
        .stderr_file(err_w)
        .env_remove("GIT_TOKEN")
        // A process group of its own: a Ctrl-C on the worker's terminal goes to the whole
        // foreground group, and `docker run` would pass that SIGINT on to the container
        // (`--sig-proxy`), ending the task at once. The worker stops containers itself, by name.
        .before_spawn(|cmd| {
            std::os::unix::process::CommandExt::process_group(cmd, 0);
            Ok(())
        })
        .unchecked();
    let started_at = Utc::now();
    let start = Instant::now();
    let handle = expression
        .start()
        .map_err(|e| InfraError(format!("cannot run {}: {e}", cfg.docker)))?;
    drop(expression); // our copies of the pipe's write ends: readers see EOF when docker exits
    if let (Some(opened), Some(pipe)) = (opened, secrets_in) {
        feed_secrets(opened, pipe);
    }
    let cap = cfg.output_cap;
    let (out_mask, err_mask) = (masker.clone(), masker);
    let out_thread = std::thread::spawn(move || capture(MaskingReader::new(out_r, out_mask), cap));
    let err_thread = std::thread::spawn(move || capture(MaskingReader::new(err_r, err_mask), cap));

    let timeout = Duration::from_secs(spec.timeout);
    let mut stopped: Option<Status> = None;
    let mut last_kill: Option<Instant> = None;
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
        }
        // Until the CLI ends, every second: kill the container; while there is none yet (an
        // image pull, a slow creation), kill the CLI itself so that none is started. Whatever it
        // created is removed below.
        if stopped.is_some() && last_kill.is_none_or(|t| t.elapsed() >= KILL_RETRY) {
            last_kill = Some(Instant::now());
            if !docker_kill(cfg, &name) {
                let _ = handle.kill();
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
    let code = output.status.code().map(i64::from);
    let inspected = if stopped.is_some() {
        Err(String::new())
    } else {
        inspect(cfg, &name)
    };
    if std::env::var_os(secrets_mount::KEEP_CONTAINER_ENV).is_none() {
        remove(cfg, &name);
    }
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
    let exit_code = match verdict(inspected, code, &stderr.text()) {
        Verdict::Exited(code) | Verdict::CommandFailed(code) => code,
        Verdict::Infra(why) => return Err(InfraError(why)),
    };
    let status = if exit_code == 0 {
        Status::Success
    } else {
        Status::Failed
    };
    Ok(Execution {
        status,
        exit_code: Some(exit_code),
        stdout,
        stderr,
        started_at,
        finished_at,
    })
}

/// The task's secrets opened with this node's keys, `None` when it has none. A task this node
/// cannot open was not to be claimed here (the admission gate checks): it goes back untouched.
fn open_secrets(
    cfg: &DockerConfig,
    spec: &TaskSpec,
) -> Result<Option<crate::secrets::Opened>, InfraError> {
    if spec.secrets.is_empty() {
        return Ok(None);
    }
    let keys = cfg
        .secret_keys
        .as_ref()
        .ok_or_else(|| InfraError("the task has secrets and this node has no --identity".into()))?;
    keys.open(&spec.secrets).map(Some).map_err(InfraError)
}

/// The `docker run` expression with its standard input: empty, or (`secrets`) a pipe whose
/// write end is returned, for the wrapper that reads the task's secrets.
fn with_stdin(
    expression: duct::Expression,
    secrets: bool,
) -> Result<(duct::Expression, Option<os_pipe::PipeWriter>), InfraError> {
    if !secrets {
        return Ok((expression.stdin_null(), None));
    }
    let (read, write) =
        os_pipe::pipe().map_err(|e| InfraError(format!("cannot create a pipe: {e}")))?;
    Ok((expression.stdin_file(read), Some(write)))
}

/// Writes the values to the wrapper through the pipe, then closes it: the task's own standard
/// input is empty, as without secrets. A thread, as the pipe may be full; it ends when docker
/// does at the latest (the write fails then).
fn feed_secrets(opened: crate::secrets::Opened, mut pipe: os_pipe::PipeWriter) {
    let bytes = secrets_mount::stdin_bytes(&opened);
    drop(opened);
    std::thread::spawn(move || {
        let _ = std::io::Write::write_all(&mut pipe, &bytes);
    });
}

/// How often a stopped task's kill is sent again until its CLI ends.
const KILL_RETRY: Duration = Duration::from_secs(1);

/// The container's state, or why there is none (never created, or the daemon cannot say).
fn inspect(cfg: &DockerConfig, name: &str) -> Result<ContainerState, String> {
    let out = duct::cmd(
        &cfg.docker,
        ["inspect", "--format", "{{json .State}}", name],
    )
    .stdout_capture()
    .stderr_capture()
    .unchecked()
    .run()
    .map_err(|e| format!("cannot run {}: {e}", cfg.docker))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("docker inspect said nonsense: {e}"))
}

/// Whether docker killed a running container of that name.
fn docker_kill(cfg: &DockerConfig, name: &str) -> bool {
    duct::cmd(&cfg.docker, ["kill", name])
        .stdout_null()
        .stderr_null()
        .unchecked()
        .run()
        .is_ok_and(|out| out.status.success())
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
        let said = one_line(&stderr);
        Err(InfraError(if said.is_empty() {
            "docker is not usable".into()
        } else {
            said
        }))
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

    fn spec() -> TaskSpec {
        let json = br#"{"id": "t", "image": "busybox", "command": "id -u", "created_at": "2026-01-01T00:00:00Z", "timeout": 60, "submitted_by": "test"}"#;
        crate::task::parse_task(
            "t.json",
            json,
            &crate::task::Limits::default(),
            crate::task::Origin::Required,
        )
        .expect("a valid test task")
    }

    #[test]
    fn containers_run_as_nobody_unless_the_operator_says_otherwise() {
        let cfg = DockerConfig::default();
        let args = run_args(&cfg, &spec(), "n", Attempt::FIRST);
        assert!(args.contains(&"--user=65534:65534".to_string()), "{args:?}");
        assert!(!args.iter().any(|a| a.starts_with("--runtime")), "{args:?}");
        let image = args.iter().position(|a| a == "busybox").unwrap();
        let user = args.iter().position(|a| a.starts_with("--user")).unwrap();
        assert!(
            user < image,
            "an option of docker run, not of the task's command"
        );
        let cfg = DockerConfig {
            user: "1000:1000".into(),
            runtime: Some("runsc".into()),
            ..DockerConfig::default()
        };
        let args = run_args(&cfg, &spec(), "n", Attempt::FIRST);
        assert!(args.contains(&"--user=1000:1000".to_string()), "{args:?}");
        let runtime = args.iter().position(|a| a == "--runtime=runsc").unwrap();
        assert!(runtime < args.iter().position(|a| a == "busybox").unwrap());
    }
}
