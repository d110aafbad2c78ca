//! A task's container ended: its result spooled (the crash test's failpoint is here), or why
//! there is none; and whether docker can be used at all, with the backoff while it cannot.

use super::docker_health::DockerCheck;
use super::task_run::{Exited, TaskEnd};
use crate::exec::docker::{self, DockerConfig};
use crate::task::Status;
use crate::worker::{Worker, FAILPOINT};
use anyhow::Result;
use std::time::Duration;

impl Worker {
    /// A task's container ended: spool its result, or note why there is none. Returns how long
    /// the task ran when it reported a result.
    pub(in crate::worker) fn on_exit(&mut self, exited: Exited) -> Result<Option<Duration>> {
        let (id, attempt) = (exited.spec.id.clone(), exited.attempt);
        let signed_by = self.cfg.admission.signed_by(&exited.spec);
        let Some(end) = self.held.tasks.exited(exited, &self.cfg.node_id, signed_by) else {
            return Ok(None);
        };
        let mut took = None;
        match end {
            TaskEnd::NotOurs => self.log(&format!(
                "stopped {id}: it is no longer ours (cancelled, or taken over)"
            )),
            TaskEnd::Released => {}
            TaskEnd::Report(result) => {
                self.state.spool(&result)?;
                if std::env::var(FAILPOINT).as_deref() == Ok("after-spool") {
                    self.log("failpoint after-spool: exiting before the push");
                    std::process::abort();
                }
                // A container ran: docker works, whatever the task did.
                self.held.docker.healthy();
                self.held.exclusions.forget(&id);
                took = result.duration_ms.map(Duration::from_millis);
                match result.status {
                    Status::Success => self.node.completed += 1,
                    _ => self.node.failed += 1,
                }
                self.log(&format!(
                    "finished {id} (attempt {attempt}): {}{}",
                    result.status.name(),
                    result
                        .exit_code
                        .map(|c| format!(", exit code {c}"))
                        .unwrap_or_default()
                ));
                self.held.tasks.finished(*result);
            }
            TaskEnd::CannotRun(infra) => {
                if only_this_task_cannot_start(&self.cfg.docker, &infra.0) {
                    let pause = self.held.exclusions.failed(&id, self.clock.instant());
                    self.warn(&format!(
                        "cannot start {id} here: {infra}; putting it back with the failure noted, not claiming it here for {}s",
                        pause.as_secs()
                    ));
                    self.held.tasks.could_not_start(&id, attempt, infra.0);
                } else {
                    self.warn(&format!(
                        "cannot run {id}: {infra}; putting it back in the queue"
                    ));
                    self.infra_failure(infra.0);
                }
            }
        }
        Ok(took)
    }

    /// Docker is not usable: stop claiming for a while (growing), keep heartbeating, say why.
    pub(in crate::worker) fn infra_failure(&mut self, why: String) {
        let pause = self.held.docker.failed(self.clock.instant(), why.clone());
        // Tasks claimed ahead would wait for a docker that may be down for long: back they go.
        self.put_back_waiting();
        self.warn(&format!("not claiming for {}s: {why}", pause.as_secs()));
    }

    pub(in crate::worker) fn check_docker(&mut self) {
        match docker::server_version(&self.cfg.docker) {
            Ok(version) => {
                self.node.docker_version = Some(version);
                self.held.docker.answered();
            }
            Err(e) => self.infra_failure(format!("docker is not usable: {e}")),
        }
    }

    pub(in crate::worker) fn docker_usable(&mut self) -> bool {
        match self.held.docker.verdict(self.clock.instant()) {
            DockerCheck::Usable => true,
            DockerCheck::Pausing => false,
            DockerCheck::LookAgain => {
                self.check_docker();
                self.held.docker.verdict(self.clock.instant()) == DockerCheck::Usable
            }
        }
    }
}

/// Whether a container that could not start failed for a reason of its own task (an image
/// that cannot be had, resources the daemon refuses) rather than the node's: docker still
/// answers, and its message is not one of a daemon that cannot run anything.
fn only_this_task_cannot_start(docker: &DockerConfig, why: &str) -> bool {
    const NODE_WIDE: [&str; 5] = [
        "Cannot connect to the Docker daemon",
        "no space left on device",
        "permission denied while trying to connect",
        "cannot run ",
        "cannot create a pipe",
    ];
    if NODE_WIDE.iter().any(|sign| why.contains(sign)) || registry_unreachable(why) {
        return false;
    }
    docker::server_version(docker).is_ok()
}

/// Whether docker could not reach the image's registry at all (an offline node, a DNS or proxy
/// failure): the node's trouble, not the task's, so it must not count towards `unrunnable`. A
/// registry that answers "no such image" or "denied" is the task's (a typo, a private image).
fn registry_unreachable(why: &str) -> bool {
    const UNREACHABLE: [&str; 8] = [
        "dial tcp",
        "no such host",
        "network is unreachable",
        "i/o timeout",
        "TLS handshake timeout",
        "Client.Timeout exceeded",
        "Temporary failure in name resolution",
        "server misbehaving",
    ];
    UNREACHABLE.iter().any(|sign| why.contains(sign))
}

#[cfg(test)]
mod tests {
    use super::registry_unreachable;

    #[test]
    fn an_unreachable_registry_is_the_nodes_trouble_a_missing_image_the_tasks() {
        for offline in [
            "docker: Error response from daemon: Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io on 127.0.0.53:53: server misbehaving.",
            "Error response from daemon: Get \"https://registry-1.docker.io/v2/\": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)",
            "dial tcp 10.0.0.5:5000: connect: network is unreachable",
        ] {
            assert!(registry_unreachable(offline), "{offline}");
        }
        for task in [
            "docker: Error response from daemon: pull access denied for dgrid/nope, repository does not exist or may require 'docker login'",
            "Error response from daemon: manifest for busybox:nope not found: manifest unknown",
        ] {
            assert!(!registry_unreachable(task), "{task}");
        }
    }
}
