//! Probes, once per build, the programs some integration tests need (Docker, Chromium, lighttpd
//! with TLS, zsh, fish, gitolite, man, script, git's bash completion, python3's dulwich) and sets `have_<tool>` for
//! each one that is here, so a test that needs a missing tool is `#[ignore]`d with the reason:
//! cargo's summary then says "N passed; M ignored" and a skip never counts as a pass.
//!
//! `DGRID_REQUIRE_<TOOL>=1` (or `DGRID_REQUIRE_ALL=1`, as in CI) sets the cfg whatever the probe
//! says: the test runs, and its runtime check fails it loudly when the tool is missing. The
//! crate itself never reads these cfgs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A tool: its cfg, the DGRID_REQUIRE_* variable that forces it, and how it is probed.
struct Tool {
    cfg: &'static str,
    require: &'static str,
    here: fn() -> bool,
}

const TOOLS: &[Tool] = &[
    Tool {
        cfg: "have_docker",
        require: "DGRID_REQUIRE_DOCKER",
        here: docker_answers,
    },
    Tool {
        cfg: "have_chromium",
        require: "DGRID_REQUIRE_CHROMIUM",
        here: || {
            ["chromium", "chromium-browser", "google-chrome"]
                .iter()
                .any(|p| on_path(p))
        },
    },
    Tool {
        cfg: "have_https",
        require: "DGRID_REQUIRE_HTTPS",
        here: || {
            on_path("lighttpd")
                && Path::new("/usr/lib/lighttpd/mod_openssl.so").exists()
                && on_path("openssl")
        },
    },
    Tool {
        cfg: "have_zsh",
        require: "DGRID_REQUIRE_SHELLS",
        here: || on_path("zsh"),
    },
    Tool {
        cfg: "have_fish",
        require: "DGRID_REQUIRE_SHELLS",
        here: || on_path("fish"),
    },
    Tool {
        cfg: "have_gitolite",
        require: "DGRID_REQUIRE_GITOLITE",
        here: || Path::new("/usr/share/gitolite3/gitolite-shell").exists() && on_path("gitolite"),
    },
    Tool {
        cfg: "have_man",
        require: "DGRID_REQUIRE_MAN",
        here: || on_path("man"),
    },
    Tool {
        cfg: "have_script",
        require: "DGRID_REQUIRE_SCRIPT",
        here: || on_path("script"),
    },
    Tool {
        cfg: "have_dulwich",
        require: "DGRID_REQUIRE_DULWICH",
        here: || {
            Command::new("python3")
                .args(["-c", "import dulwich"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        },
    },
    Tool {
        cfg: "have_git_completion",
        require: "DGRID_REQUIRE_GIT_COMPLETION",
        here: || GIT_COMPLETION.iter().any(|p| Path::new(p).exists()),
    },
];

/// Where git's bash completion script is (tests/it/docs_and_config.rs looks in the same places).
const GIT_COMPLETION: &[&str] = &[
    "/usr/share/bash-completion/completions/git",
    "/etc/bash_completion.d/git",
];

/// Folders whose change means a tool may have come or gone (cargo probes again then).
const WATCHED: &[&str] = &[
    "/usr/lib/lighttpd",
    "/usr/share/gitolite3",
    "/usr/share/bash-completion/completions",
    "/var/run/docker.sock",
];

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    for var in ["PATH", "DOCKER_HOST", "DOCKER_CONTEXT", "DGRID_REQUIRE_ALL"] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    // A program installed or removed changes its folder; only folders that exist are named, so
    // a missing one never makes every build rerun this script.
    for dir in path_dirs()
        .iter()
        .map(PathBuf::as_path)
        .chain(WATCHED.iter().map(Path::new))
    {
        if dir.exists() {
            println!("cargo::rerun-if-changed={}", dir.display());
        }
    }
    let all = required("DGRID_REQUIRE_ALL");
    for tool in TOOLS {
        println!("cargo::rustc-check-cfg=cfg({})", tool.cfg);
        println!("cargo::rerun-if-env-changed={}", tool.require);
        if all || required(tool.require) || (tool.here)() {
            println!("cargo::rustc-cfg={}", tool.cfg);
        }
    }
}

fn required(var: &str) -> bool {
    std::env::var(var).as_deref() == Ok("1")
}

/// PATH's absolute folders, outside this project (its target/ changes on every build).
fn path_dirs() -> Vec<PathBuf> {
    let project = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .filter(|d| d.is_absolute() && !d.starts_with(&project))
        .collect()
}

/// Whether `program` is an executable file in PATH (or /usr/sbin and /sbin, where lighttpd is).
fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path_dirs()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(program))
        .any(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Whether `docker info` answers within 10 s: a daemon that hangs must not hang the build.
fn docker_answers() -> bool {
    let Ok(mut child) = Command::new("docker")
        .arg("info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}
