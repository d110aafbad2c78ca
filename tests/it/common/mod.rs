//! Test harness: isolated git environments (own HOME, no system config, fixed identity, UTC), local
//! bare remotes, and a `git daemon` on 127.0.0.1. Real git everywhere, nothing mocked.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod around_hook;
mod dulwich;
mod task_json;
mod tools;
#[allow(unused_imports)] // not every test file pushes around the hook
pub use around_hook::{push_around_hook, AroundHook, Content, Landed};
#[allow(unused_imports)] // not every test file talks to dulwich's server
pub use dulwich::{dulwich_ready, DulwichServer};
#[allow(unused_imports)] // not every test file builds tasks
pub use task_json::TaskJson;
#[allow(unused_imports)] // not every test file needs other programs
pub use tools::{git_completion_script, man_ready, missing, required, script_ready};

pub struct Env {
    pub tmp: tempfile::TempDir,
    pub home: PathBuf,
}

pub fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_git-dgrid"))
        .parent()
        .unwrap()
        .to_path_buf()
}

impl Env {
    pub fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        Env { tmp, home }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// Runs the shell command `command` in `dir` on a terminal (a pty from `script`, which needs
    /// `script_ready`): what it printed comes back as the output's stdout.
    pub fn on_a_terminal(&self, dir: &Path, command: &str) -> std::process::Output {
        self.cmd("script", dir)
            .args(["-qfec", command, "/dev/null"])
            .output()
            .unwrap()
    }

    /// A command with the isolated environment applied.
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>, dir: &Path) -> Command {
        let mut c = Command::new(program);
        let path = format!(
            "{}:{}",
            bin_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        c.current_dir(dir)
            .env("PATH", path)
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("XDG_CACHE_HOME", self.home.join(".cache"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Tess Ter")
            .env("GIT_AUTHOR_EMAIL", "tess@example.com")
            .env("GIT_COMMITTER_NAME", "Tess Ter")
            .env("GIT_COMMITTER_EMAIL", "tess@example.com")
            .env("TZ", "UTC")
            .env_remove("DGRID_REPO_URL")
            .env_remove("NODE_ID")
            .env_remove("DGRID_STATE_DIR")
            .stdin(Stdio::null());
        c
    }

    pub fn git(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.cmd("git", dir).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .trim_end()
            .to_string()
    }

    pub fn dgrid(&self, dir: &Path, args: &[&str]) -> Output {
        self.cmd(env!("CARGO_BIN_EXE_git-dgrid"), dir)
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs git-dgrid and asserts its exit code, returning stdout. A failure shows the command,
    /// its exit code and both streams (assert_cmd).
    pub fn dgrid_ok(&self, dir: &Path, args: &[&str], code: i32) -> String {
        let mut cmd = assert_cmd::Command::from_std(self.cmd(env!("CARGO_BIN_EXE_git-dgrid"), dir));
        let assert = cmd.args(args).assert().code(code);
        String::from_utf8(assert.get_output().stdout.clone()).unwrap()
    }

    /// A new grid remote (`init --bare`) at `name`, returned as a path.
    pub fn grid(&self, name: &str) -> PathBuf {
        let path = self.path(name);
        self.dgrid_ok(
            self.tmp.path(),
            &["init", "--bare", path.to_str().unwrap()],
            0,
        );
        path
    }

    pub fn clone(&self, url: &str, name: &str) -> PathBuf {
        let path = self.path(name);
        self.git(
            self.tmp.path(),
            &["clone", "--quiet", url, path.to_str().unwrap()],
        );
        path
    }

    /// File names (relative) under `tasks/<state>` at `rev` of the repository at `dir`.
    pub fn ids_in(&self, dir: &Path, rev: &str, state: &str) -> Vec<String> {
        let out = self
            .cmd("git", dir)
            .args([
                "ls-tree",
                "-r",
                "--name-only",
                rev,
                "--",
                &format!("tasks/{state}"),
            ])
            .output()
            .unwrap();
        let mut ids: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| {
                l.rsplit('/')
                    .next()?
                    .strip_suffix(".json")
                    .map(str::to_string)
            })
            .collect();
        ids.sort();
        ids
    }
}

/// `git daemon` serving every repository below `base` read-write on a free port of 127.0.0.1.
pub struct Daemon {
    child: std::process::Child,
    pub port: u16,
}

impl Daemon {
    pub fn start(env: &Env, base: &Path, receive_pack: bool) -> Daemon {
        Daemon::start_on(env, base, receive_pack, None)
    }

    /// On `port`, or on a free one.
    pub fn start_on(env: &Env, base: &Path, receive_pack: bool, port: Option<u16>) -> Daemon {
        for _ in 0..20 {
            let port = port.unwrap_or_else(|| {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap().port()
            });
            // git-daemon itself, not `git daemon`: git would fork it, and killing git would leave
            // the server running.
            let mut cmd = env.cmd(git_daemon_path(), base);
            cmd.args([
                "--reuseaddr",
                "--export-all",
                "--listen=127.0.0.1",
                "--max-connections=0",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()));
            if receive_pack {
                cmd.arg("--enable=receive-pack");
            }
            cmd.arg(base).stdout(Stdio::null()).stderr(Stdio::null());
            let mut child = cmd.spawn().unwrap();
            for _ in 0..100 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Daemon { child, port };
                }
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let _ = child.kill();
        }
        panic!("git daemon did not start");
    }

    pub fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }
}

fn git_daemon_path() -> PathBuf {
    let out = Command::new("git").arg("--exec-path").output().unwrap();
    Path::new(String::from_utf8(out.stdout).unwrap().trim()).join("git-daemon")
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a Docker engine answers (see `tools`: a skip, or a failure under DGRID_REQUIRE_DOCKER).
/// Also builds the test image once.
pub fn docker_ready() -> bool {
    static READY: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let ready = READY.get_or_init(|| {
        let info = Command::new("docker")
            .arg("info")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !info.is_ok_and(|s| s.success()) {
            return Err("no Docker engine is reachable (`docker info` failed)".into());
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/busybox-image.sh");
        let out = Command::new("sh")
            .arg(script)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "cannot build the test image: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    });
    match ready {
        Ok(()) => true,
        Err(why) => {
            missing("DOCKER", why);
            false
        }
    }
}

/// The state and parsed content of task `id` at `main` of the bare repository `grid`.
pub fn find_task(env: &Env, grid: &Path, id: &str) -> Option<(String, serde_json::Value)> {
    // One commit for both reads: a worker may move the task between them.
    let tip = env.git(grid, &["rev-parse", "main"]);
    let listing = env.git(grid, &["ls-tree", "-r", "--name-only", &tip, "tasks/"]);
    let path = listing
        .lines()
        .find(|l| l.ends_with(&format!("/{id}.json")))?;
    let state = path.split('/').nth(1)?.to_string();
    let content = env.git(grid, &["show", &format!("{tip}:{path}")]);
    Some((state, serde_json::from_str(&content).unwrap()))
}

/// Waits up to `secs` for `cond`.
pub fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    false
}

impl Env {
    /// `git dgrid submit [args] -` with `lines` (JSON lines) on stdin.
    pub fn submit_lines(&self, dir: &Path, args: &[&str], lines: &[String]) -> Output {
        use std::io::Write;
        let mut child = self
            .cmd(env!("CARGO_BIN_EXE_git-dgrid"), dir)
            .arg("submit")
            .args(args)
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(lines.join("\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }
}

/// Makes the bare `remote` count the pushes it accepts (a post-receive hook appends a line per ref).
pub fn count_pushes(remote: &Path) -> PathBuf {
    let log = remote.join("pushes.log");
    let hook = remote.join("hooks/post-receive");
    std::fs::write(&hook, format!("#!/bin/sh\ncat >> {}\n", log.display())).unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    log
}

/// Makes the bare `remote` append the time of every accepted push (one line per push, whatever
/// the refs) to `push-times.log`.
pub fn time_pushes(remote: &Path) -> PathBuf {
    let log = remote.join("push-times.log");
    let hook = remote.join("hooks/post-receive");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\ncat >/dev/null\ndate +%s.%N >> {}\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    log
}

/// The most accepted pushes in any 60-s window, and all the push times.
pub fn most_in_a_minute(log: &Path) -> (usize, Vec<f64>) {
    let mut times: Vec<f64> = std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    times.sort_by(f64::total_cmp);
    let most = (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| **t - times[i] < 60.0)
                .count()
        })
        .max()
        .unwrap_or(0);
    (most, times)
}

pub fn pushes(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

pub fn words(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

impl Env {
    /// A new grid `srv/g.git` served by `git daemon`; returns the daemon and the bare repository.
    pub fn served_grid(&self, receive_pack: bool) -> (Daemon, PathBuf) {
        let base = self.path("srv");
        std::fs::create_dir_all(&base).unwrap();
        self.dgrid_ok(&base, &["init", "--bare", "g.git"], 0);
        (Daemon::start(self, &base, receive_pack), base.join("g.git"))
    }
}

/// Waits up to `secs` for task `id` to be in `state` on `grid`.
pub fn wait_state(env: &Env, grid: &Path, id: &str, state: &str, secs: u64) -> bool {
    wait_for(secs, || {
        find_task(env, grid, id).is_some_and(|(s, _)| s == state)
    })
}

/// lighttpd serving the bare repositories below `base` over HTTPS (a self-signed certificate) through
/// `git http-backend`, behind basic authentication: the way GitHub and GitLab take tokens.
pub struct HttpsServer {
    child: std::process::Child,
    pub port: u16,
    /// The certificate to trust: give it to git as GIT_SSL_CAINFO.
    pub cert: PathBuf,
}

/// Whether lighttpd (with TLS) and openssl are here (see `tools`: a skip, or a failure under
/// DGRID_REQUIRE_HTTPS).
pub fn https_ready() -> bool {
    let missing: Vec<&str> = [
        ("lighttpd", which("lighttpd").is_some()),
        (
            "lighttpd's mod_openssl",
            Path::new("/usr/lib/lighttpd/mod_openssl.so").exists(),
        ),
        ("openssl", which("openssl").is_some()),
    ]
    .into_iter()
    .filter(|(_, here)| !here)
    .map(|(name, _)| name)
    .collect();
    if missing.is_empty() {
        return true;
    }
    tools::missing("HTTPS", &format!("no {}", missing.join(", ")));
    false
}

fn which(program: &str) -> Option<PathBuf> {
    let dirs = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&dirs)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

impl HttpsServer {
    /// Serves `base` at `https://127.0.0.1:<port>/git/`, to `user` with password `password` only.
    pub fn start(env: &Env, base: &Path, user: &str, password: &str) -> HttpsServer {
        let dir = env.path("https-server");
        std::fs::create_dir_all(dir.join("www")).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let made = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(made.success(), "openssl could not make a certificate");
        std::fs::write(dir.join("users"), format!("{user}:{password}\n")).unwrap();
        let git = which("git").unwrap();
        let backend = git_daemon_path().with_file_name("git-http-backend");
        for _ in 0..20 {
            let port = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap().port()
            };
            let config = dir.join("lighttpd.conf");
            std::fs::write(
                &config,
                format!(
                    r#"server.modules = ("mod_alias", "mod_cgi", "mod_setenv", "mod_auth", "mod_authn_file", "mod_openssl")
server.bind = "127.0.0.1"
server.port = {port}
server.document-root = "{www}"
server.errorlog = "{dir}/error.log"
ssl.engine = "enable"
ssl.pemfile = "{cert}"
ssl.privkey = "{key}"
auth.backend = "plain"
auth.backend.plain.userfile = "{dir}/users"
alias.url += ( "/git" => "{backend}" )
$HTTP["url"] =~ "^/git" {{
  cgi.assign = ( "" => "" )
  auth.require = ( "" => ( "method" => "basic", "realm" => "grid", "require" => "valid-user" ) )
  setenv.set-environment = ( "GIT_PROJECT_ROOT" => "{base}", "GIT_HTTP_EXPORT_ALL" => "1",
    "PATH" => "{gitdir}:/usr/bin:/bin", "GIT_CONFIG_COUNT" => "1",
    "GIT_CONFIG_KEY_0" => "safe.directory", "GIT_CONFIG_VALUE_0" => "*" )
}}
"#,
                    www = dir.join("www").display(),
                    dir = dir.display(),
                    cert = cert.display(),
                    key = key.display(),
                    backend = backend.display(),
                    base = base.display(),
                    gitdir = git.parent().unwrap().display(),
                ),
            )
            .unwrap();
            let mut child = Command::new(which("lighttpd").unwrap())
                .arg("-D")
                .arg("-f")
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            for _ in 0..100 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return HttpsServer { child, port, cert };
                }
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let _ = child.kill();
        }
        panic!(
            "lighttpd did not start: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
    }

    pub fn url(&self, repo: &str) -> String {
        format!("https://127.0.0.1:{}/git/{repo}", self.port)
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits up to `secs` for `child` to exit; kills it and fails the test if it does not, so that a
/// worker that ignores what it is told fails its test instead of hanging the suite.
pub fn wait_exit(child: &mut std::process::Child, secs: u64) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process {} did not exit within {secs} s", child.id());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A command's stdout then its stderr, as text.
pub fn all_output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Fails the test, with the command's stderr, unless it exited with 0.
#[track_caller]
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The builds a benchmark compares side by side in one run (this machine is noisy): this one,
/// labelled `this`, then each `label=path` of `DGRID_BENCH_BINS` (comma-separated).
pub fn builds_to_compare(this: &str) -> Vec<(String, String)> {
    let mut bins = vec![("this".to_string(), this.to_string())];
    for entry in std::env::var("DGRID_BENCH_BINS")
        .unwrap_or_default()
        .split(',')
    {
        if let Some((label, path)) = entry.split_once('=') {
            bins.push((label.to_string(), path.to_string()));
        }
    }
    bins
}
