//! dulwich's smart-HTTP git server (PyPI `dulwich`, started by `scripts/dulwich-server.sh`) serving
//! one bare repository on a free port of 127.0.0.1: a git server nobody here wrote, and one that
//! answers `ok` to a push it did not apply and 500 to a fetch that races a push.

use super::tools::missing;
use super::Env;
use std::path::Path;
use std::process::{Command, Stdio};

pub struct DulwichServer {
    child: std::process::Child,
    pub port: u16,
}

/// Whether python3 can import dulwich (see `tools`: a skip, or a failure under
/// DGRID_REQUIRE_DULWICH).
pub fn dulwich_ready() -> bool {
    let here = Command::new("python3")
        .args(["-c", "import dulwich"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !here {
        missing(
            "DULWICH",
            "python3 cannot import dulwich (pip install dulwich)",
        );
    }
    here
}

impl DulwichServer {
    /// Serves the bare repository `repo` at `http://127.0.0.1:<port>/`.
    pub fn start(env: &Env, repo: &Path) -> DulwichServer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/dulwich-server.sh");
        let log = env.path("dulwich.log");
        for _ in 0..20 {
            let port = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap().port()
            };
            let mut child = env
                .cmd("sh", env.tmp.path())
                .arg(&script)
                .arg(repo)
                .arg(port.to_string())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            // Python starts in a second or two; a loaded machine may take longer.
            for _ in 0..600 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return DulwichServer { child, port };
                }
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "dulwich's server did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

impl Drop for DulwichServer {
    fn drop(&mut self) {
        // The script exec'd python: this is the server's own process id.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
