//! How a task's decrypted secrets reach its container without touching the host's disk, argv or
//! `docker inspect`: the container gets a memory-backed `/dgrid/secrets` (a tmpfs, owned by the
//! task's user) and a small `sh` wrapper as its command, which reads the values from its standard
//! input (a pipe from the worker), writes each as `/dgrid/secrets/NAME` (mode 0400), exports it
//! when the task asks (`secrets_env`), then `exec`s the task's own command. The image needs `sh`.

use crate::secrets::Opened;
use crate::task::{TaskCommand, TaskSpec};
use zeroize::Zeroizing;

/// Where the secrets are inside the container.
pub const SECRETS_DIR: &str = "/dgrid/secrets";

/// A test may keep a task's container after it ended, to inspect it (`docker inspect` must not
/// show a secret): the executor then leaves its removal to the next run of the same name.
pub const KEEP_CONTAINER_ENV: &str = "DGRID_TEST_KEEP_CONTAINER";

/// Reads `NAME <octal escapes>` lines up to a line `.`, so that any byte (a newline, a NUL) of
/// a value passes through `read` and `printf` unharmed; `$1` is `env` or `files`.
const WRAPPER: &str = r#"set -e
umask 077
mode=$1
shift
while IFS= read -r line; do
  n=${line%% *}
  [ "$n" = . ] && break
  printf "${line#* }" > /dgrid/secrets/"$n"
  chmod 0400 /dgrid/secrets/"$n"
  if [ "$mode" = env ]; then export "$n=$(cat /dgrid/secrets/"$n")"; fi
done
exec "$@""#;

/// `docker run` options for a task with secrets: stdin open (the wrapper reads it) and the tmpfs.
/// `user` is the container's `--user`: numeric ids own the tmpfs; a name cannot be given to a
/// mount option, so the folder is then writable by all (sticky), each file still the user's, 0400.
pub fn run_options(user: &str) -> Vec<String> {
    let numeric = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let owner = match user.split_once(':') {
        Some((u, g)) if numeric(u) && numeric(g) => format!("mode=0700,uid={u},gid={g}"),
        None if numeric(user) => format!("mode=0700,uid={user}"),
        _ => "mode=1777".to_string(),
    };
    vec![
        "--interactive".into(),
        format!("--tmpfs={SECRETS_DIR}:rw,nosuid,nodev,noexec,size=4m,{owner}"),
    ]
}

/// The entrypoint and the arguments after the image: the wrapper, then the task's command.
pub fn wrapped_command(spec: &TaskSpec) -> Vec<String> {
    let mode = if spec.secrets_env { "env" } else { "files" };
    let mut args: Vec<String> = vec![
        "--entrypoint=sh".into(),
        spec.image.clone(),
        "-c".into(),
        WRAPPER.into(),
        "dgrid-secrets".into(),
        mode.into(),
    ];
    match &spec.command {
        TaskCommand::Shell(script) => args.extend(["sh".into(), "-c".into(), script.clone()]),
        TaskCommand::Argv(argv) => args.extend(argv.iter().cloned()),
    }
    args
}

/// What the worker writes to the wrapper's standard input.
pub fn stdin_bytes(opened: &Opened) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::new());
    for (name, value) in opened.iter() {
        out.extend_from_slice(name.as_bytes());
        out.push(b' ');
        for byte in value {
            out.extend_from_slice(format!("\\{byte:03o}").as_bytes());
        }
        out.push(b'\n');
    }
    out.extend_from_slice(b".\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tmpfs_is_owned_by_the_task_user() {
        assert!(run_options("65534:65534")[1].ends_with("mode=0700,uid=65534,gid=65534"));
        assert!(run_options("1000")[1].ends_with("mode=0700,uid=1000"));
        assert!(run_options("nobody")[1].ends_with("mode=1777"));
    }
}
