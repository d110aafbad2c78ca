//! Every setting in one table: its flag, environment variable, git config key, typed default and
//! what it does. Clap's help (env names and defaults), `git dgrid env`, the README's
//! "Configuration" table (a test keeps them equal) and the code that resolves values all read it.
//!
//! One precedence for everything: command-line flag, then environment variable, then git config
//! `dgrid.*`, then the default. Clap resolves the flag and the environment variable
//! (`#[arg(env = X.key.env)]`); what it leaves unset is looked up in git config ([`GitConfig`]),
//! then falls back to the default.

mod setting;

use setting::flag;
pub use setting::{describe, Default, Described, Key, Setting};

pub const REMOTE: Setting<&str> = Setting {
    key: flag(
        "--remote",
        "DGRID_REMOTE",
        "dgrid.remote",
        "",
        "The remote of this clone that holds the grid",
    ),
    default: Default::Value("origin"),
};
pub const REPO_URL: Setting<&str> = Setting {
    key: flag(
        "--repo",
        "DGRID_REPO_URL",
        "dgrid.repoUrl",
        "",
        "Work on this grid URL through a private cache clone instead of the current clone",
    ),
    default: Default::Derived("the current clone"),
};
pub const STATE_DIR: Setting<&str> = Setting {
    key: flag(
        "--state-dir",
        "DGRID_STATE_DIR",
        "dgrid.stateDir",
        "",
        "Where cache clones and worker state live",
    ),
    default: Default::Derived("$XDG_CACHE_HOME/git-dgrid or ~/.cache/git-dgrid"),
};
pub const NODE_ID: Setting<&str> = Setting {
    key: flag("--node-id", "NODE_ID", "dgrid.nodeId", "", "This node's id"),
    default: Default::Derived("host name + random suffix, kept in the state dir"),
};
pub const LABELS: Setting<&str> = Setting {
    key: flag(
        "--label",
        "DGRID_LABELS",
        "dgrid.labels",
        "",
        "A label this node has (repeatable; DGRID_LABELS takes a comma-separated list)",
    ),
    default: Default::Derived("none"),
};
pub const SLOTS: Setting<usize> = Setting {
    key: flag(
        "--slots",
        "DGRID_SLOTS",
        "dgrid.slots",
        "",
        "Tasks run at the same time",
    ),
    default: Default::Value(1),
};
pub const POLL_INTERVAL: Setting<u64> = Setting {
    key: flag(
        "--poll-interval",
        "PULL_INTERVAL",
        "dgrid.pollInterval",
        "s",
        "Seconds between looks at the remote when idle, growing up to 4x while nothing changes",
    ),
    default: Default::Value(10),
};
pub const HEARTBEAT_INTERVAL: Setting<u64> = Setting {
    key: flag(
        "--heartbeat-interval",
        "DGRID_HEARTBEAT_INTERVAL",
        "dgrid.heartbeatInterval",
        "s",
        "Seconds between heartbeat pushes when nothing else is pushed",
    ),
    default: Default::Value(300),
};
/// How many heartbeat intervals a lease lasts unless `--lease` says otherwise.
pub const LEASE_HEARTBEATS: u32 = 3;
pub const LEASE: Setting<u64> = Setting {
    key: flag(
        "--lease",
        "DGRID_LEASE",
        "dgrid.lease",
        "",
        "Seconds a claim lasts without a heartbeat",
    ),
    default: Default::Derived("3 heartbeat intervals"),
};
/// The push budget GitHub documents for one repository (pushes per minute); GitLab's per-project
/// receive-pack limits are of the same order.
pub const HOSTED_PUSH_BUDGET: u32 = 6;
pub const PUSH_BUDGET: Setting<u32> = Setting {
    key: flag(
        "--push-budget",
        "DGRID_PUSH_BUDGET",
        "dgrid.pushBudget",
        "",
        "Pushes per minute for the whole grid, shared by all its writers (0: no limit)",
    ),
    default: Default::Derived("6 on github.com and gitlab.com, else 0"),
};
pub const PREFETCH: Setting<usize> = Setting {
    key: flag(
        "--prefetch",
        "DGRID_PREFETCH",
        "dgrid.prefetch",
        "",
        "Tasks claimed ahead at most, beyond the free slots, when a push budget spaces the pushes",
    ),
    default: Default::Value(32),
};
pub const CLOCK_SKEW: Setting<u64> = Setting {
    key: flag(
        "--clock-skew",
        "DGRID_CLOCK_SKEW",
        "dgrid.clockSkew",
        "s",
        "Seconds of clock difference tolerated before another node's lease counts as expired",
    ),
    default: Default::Value(60),
};
pub const GRACE: Setting<u64> = Setting {
    key: flag(
        "--grace",
        "DGRID_GRACE",
        "dgrid.grace",
        "s",
        "Seconds running tasks get to finish after SIGTERM/SIGINT before they are killed and released",
    ),
    default: Default::Value(30),
};
pub const OUTPUT_CAP: Setting<usize> = Setting {
    key: flag(
        "--output-cap",
        "DGRID_OUTPUT_CAP",
        "dgrid.outputCap",
        "bytes",
        "Bytes of each output stream kept in the result; the rest is counted and hashed",
    ),
    default: Default::Value(64 * 1024),
};
pub const ALLOW_NETWORK: Setting<bool> = Setting {
    key: flag(
        "--allow-network",
        "DGRID_ALLOW_NETWORK",
        "dgrid.allowNetwork",
        "",
        "Let tasks that ask for \"network\": \"bridge\" have it",
    ),
    default: Default::Value(false),
};
pub const MAX_CPUS: Setting<f64> = Setting {
    key: flag(
        "--max-cpus",
        "DGRID_MAX_CPUS",
        "dgrid.maxCpus",
        "",
        "CPUs a container may use at most",
    ),
    default: Default::Value(4.0),
};
pub const MAX_MEMORY: Setting<&str> = Setting {
    key: flag(
        "--max-memory",
        "DGRID_MAX_MEMORY",
        "dgrid.maxMemory",
        "",
        "Memory a container may use at most, e.g. 4g",
    ),
    default: Default::Value("4g"),
};
pub const PULL: Setting<&str> = Setting {
    key: flag(
        "--pull",
        "DGRID_PULL",
        "dgrid.pull",
        "",
        "When docker pulls images: missing or never",
    ),
    default: Default::Value("missing"),
};
pub const DEFAULT_IMAGE: Setting<&str> = Setting {
    key: flag(
        "--default-image",
        "DGRID_DEFAULT_IMAGE",
        "dgrid.defaultImage",
        "",
        "The image of a task file that names none (the Python implementation wrote none)",
    ),
    default: Default::Value("python:3.11-alpine"),
};
pub const ALLOW_REGISTRY: Setting<&str> = Setting {
    key: flag(
        "--allow-registry",
        "DGRID_ALLOW_REGISTRY",
        "dgrid.allowRegistry",
        "",
        "A registry HOST[:PORT] on this node's own network (loopback, private, link-local) that tasks may still pull from (repeatable; comma-separated lists too)",
    ),
    default: Default::Derived("none"),
};
pub const ALLOW_IMAGES: Setting<&str> = Setting {
    key: flag(
        "--allow-image",
        "DGRID_ALLOW_IMAGES",
        "dgrid.allowImages",
        "",
        "Run only tasks whose image matches one of these glob PATTERNs over the full reference, e.g. 'python:3.*' or 'ghcr.io/acme/*@sha256:*' (repeatable; comma-separated lists too); other tasks stay queued for other nodes",
    ),
    default: Default::Derived("any image"),
};
pub const MAX_TASK_TIMEOUT: Setting<u64> = Setting {
    key: flag(
        "--max-task-timeout",
        "DGRID_MAX_TASK_TIMEOUT",
        "dgrid.maxTaskTimeout",
        "",
        "Run only tasks whose timeout is at most this many seconds; longer ones stay queued for other nodes",
    ),
    default: Default::Derived("the grid's dgrid.maxTimeout"),
};
pub const MAX_TASKS_PER_HOUR: Setting<u32> = Setting {
    key: flag(
        "--max-tasks-per-hour",
        "DGRID_MAX_TASKS_PER_HOUR",
        "dgrid.maxTasksPerHour",
        "",
        "Start at most N tasks in any hour (a sliding window); when it is full the worker claims nothing and waits",
    ),
    default: Default::Derived("no limit"),
};
pub const SIGNING_KEY: Setting<&str> = Setting {
    key: flag(
        "--signing-key",
        "DGRID_SIGNING_KEY",
        "user.signingKey",
        "",
        "With submit --sign: the SSH key to sign tasks with, a file (a .pub whose private key is in ssh-agent works) or key::LITERAL, as git's user.signingKey for gpg.format=ssh",
    ),
    default: Default::Derived("none"),
};
pub const ALLOWED_SIGNERS: Setting<&str> = Setting {
    key: flag(
        "--allowed-signers",
        "DGRID_ALLOWED_SIGNERS",
        "dgrid.allowedSignersFile",
        "",
        "Run only tasks signed by a key in this FILE (ssh-keygen's allowed signers format, namespace dgrid-task); validate reports unsigned, tampered and unknown-signer tasks; other tasks stay queued",
    ),
    default: Default::Derived("signatures are not checked"),
};
pub const TRUST_GRID_SIGNERS: Setting<bool> = Setting {
    key: flag(
        "--trust-grid-signers",
        "DGRID_TRUST_GRID_SIGNERS",
        "dgrid.trustGridSigners",
        "",
        "Also trust the grid's .dgrid/allowed_signers, along the chain of commits from dgrid.trustRoot in which each change to it is signed by a key of its previous version",
    ),
    default: Default::Value(false),
};
pub const TRUST_ROOT: Setting<&str> = Setting {
    key: flag(
        "--trust-root",
        "DGRID_TRUST_ROOT",
        "dgrid.trustRoot",
        "",
        "With --trust-grid-signers: the commit whose .dgrid/allowed_signers the operator trusts as given (pinned)",
    ),
    default: Default::Derived("none"),
};
pub const IDENTITY: Setting<&str> = Setting {
    key: flag(
        "--identity",
        "DGRID_IDENTITY",
        "dgrid.identity",
        "",
        "This node's key FILE for tasks' secrets (an age identity or an ssh private key without a passphrase); tasks whose secrets it does not decrypt stay queued",
    ),
    default: Default::Derived("none"),
};
pub const CONTAINER_USER: Setting<&str> = Setting {
    key: flag(
        "--container-user",
        "DGRID_CONTAINER_USER",
        "dgrid.containerUser",
        "",
        "The USER[:GROUP] (names or numbers) that tasks run as in their containers; a task cannot choose",
    ),
    default: Default::Value("65534:65534"),
};
pub const RUNTIME: Setting<&str> = Setting {
    key: flag(
        "--runtime",
        "DGRID_RUNTIME",
        "dgrid.runtime",
        "",
        "The container runtime for tasks, passed as docker run --runtime (e.g. runsc for gVisor, kata-runtime for Kata)",
    ),
    default: Default::Derived("docker's default"),
};
pub const DOCKER: Setting<&str> = Setting {
    key: flag(
        "--docker",
        "DGRID_DOCKER",
        "dgrid.docker",
        "",
        "The docker command",
    ),
    default: Default::Value("docker"),
};
pub const LOG_FORMAT: Setting<&str> = Setting {
    key: flag(
        "--log-format",
        "DGRID_LOG_FORMAT",
        "dgrid.logFormat",
        "",
        "Log lines as text, or as JSON objects for a supervisor",
    ),
    default: Default::Value("text"),
};
pub const GIT_TOKEN: Setting<&str> = Setting {
    key: Key {
        flag: None,
        env: Some("GIT_TOKEN"),
        git: None,
        unit: "",
        about: "credentials for https remotes, never stored",
        secret: true,
    },
    default: Default::Derived("unset"),
};
pub const GIT_USERNAME: Setting<&str> = Setting {
    key: Key {
        flag: None,
        env: Some("GIT_USERNAME"),
        git: None,
        unit: "",
        about: "the user name given with GIT_TOKEN",
        secret: false,
    },
    default: Default::Value("x-access-token"),
};
pub const GIT_TIMEOUT: Setting<u64> = Setting {
    key: Key {
        flag: None,
        env: Some("DGRID_GIT_TIMEOUT"),
        git: None,
        unit: "s",
        about: "a fetch, push or ls-remote taking longer is stopped and retried",
        secret: false,
    },
    default: Default::Value(300),
};
pub const MAX_TIMEOUT: Setting<u64> = Setting {
    key: Key {
        flag: None,
        env: None,
        git: Some("dgrid.maxTimeout"),
        unit: "s",
        about: "the longest timeout a task may ask for (validation)",
        secret: false,
    },
    default: Default::Value(86_400),
};
pub const RETAIN: Setting<&str> = Setting {
    key: Key {
        flag: None,
        env: None,
        git: Some("dgrid.retain"),
        unit: "",
        about: "what `archive` keeps on main when neither --keep nor --older-than is given: a count of the newest results, an age (7d, 12h), or both (10000,7d: whichever keeps more)",
        secret: false,
    },
    default: Default::Value("10000,7d"),
};

/// Every setting, in the order `git dgrid env` and the README list them.
pub const SETTINGS: &[&dyn Described] = &[
    &REMOTE,
    &REPO_URL,
    &STATE_DIR,
    &NODE_ID,
    &LABELS,
    &SLOTS,
    &POLL_INTERVAL,
    &HEARTBEAT_INTERVAL,
    &LEASE,
    &PUSH_BUDGET,
    &PREFETCH,
    &CLOCK_SKEW,
    &GRACE,
    &OUTPUT_CAP,
    &ALLOW_NETWORK,
    &MAX_CPUS,
    &MAX_MEMORY,
    &PULL,
    &DEFAULT_IMAGE,
    &ALLOW_REGISTRY,
    &ALLOW_IMAGES,
    &MAX_TASK_TIMEOUT,
    &MAX_TASKS_PER_HOUR,
    &SIGNING_KEY,
    &ALLOWED_SIGNERS,
    &TRUST_GRID_SIGNERS,
    &TRUST_ROOT,
    &IDENTITY,
    &CONTAINER_USER,
    &RUNTIME,
    &DOCKER,
    &LOG_FORMAT,
    &GIT_TOKEN,
    &GIT_USERNAME,
    &GIT_TIMEOUT,
    &MAX_TIMEOUT,
    &RETAIN,
];

/// The push budget of a grid whose remote is `url` when nothing sets one: GitHub's guidance on
/// github.com and gitlab.com, no limit elsewhere (a local or self-hosted grid). Returns the
/// budget and why, for `git dgrid env` and the worker's log.
pub fn default_push_budget(url: &str) -> (u32, String) {
    let host = url_host(url);
    let hosted = ["github.com", "gitlab.com"]
        .iter()
        .any(|h| host == *h || host.ends_with(&format!(".{h}")));
    if hosted {
        (HOSTED_PUSH_BUDGET, format!("the remote is on {host}"))
    } else {
        (
            0,
            "no limit: the remote is not on github.com or gitlab.com".into(),
        )
    }
}

/// The host of a git URL (`https://user@host/..`, `ssh://host:22/..`, `git@host:owner/repo`),
/// lower-cased; "" for a local path.
fn url_host(url: &str) -> String {
    let url = url.trim();
    let (rest, scp_like) = match url.split_once("://") {
        Some((_, rest)) => (rest, false),
        None => (url, true),
    };
    let authority = rest.split('/').next().unwrap_or("");
    if scp_like && !authority.contains(':') {
        return String::new(); // a path, not `host:path`
    }
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    host.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GitConfig;

    #[test]
    fn flags_have_every_source_and_names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for s in SETTINGS {
            let key = s.key();
            if key.flag.is_some() {
                assert!(key.env.is_some() && key.git.is_some(), "{key:?}");
            }
            for name in [key.flag, key.env, key.git].into_iter().flatten() {
                assert!(seen.insert(name), "{name} is in the table twice");
            }
        }
    }

    #[test]
    fn defaults_read_as_they_are_typed() {
        assert_eq!(OUTPUT_CAP.default_text(), "65536");
        assert_eq!(MAX_CPUS.default_text(), "4");
        assert_eq!(LEASE.default_text(), "3 heartbeat intervals");
        let none = GitConfig::empty();
        assert_eq!(SLOTS.resolve::<usize>(None, &none).unwrap(), 1);
        assert_eq!(SLOTS.resolve(Some(3usize), &none).unwrap(), 3);
        assert_eq!(
            DOCKER.resolve::<String>(None, &none).unwrap(),
            "docker".to_string()
        );
        assert!(
            LEASE.resolve::<u64>(None, &none).is_err(),
            "no fixed default"
        );
        assert_eq!(LEASE.resolve_opt::<u64>(None, &none).unwrap(), None);
    }

    #[test]
    fn the_push_budget_defaults_to_the_hosts_guidance() {
        for url in [
            "https://github.com/o/r.git",
            "https://x-access-token:secret@github.com/o/r",
            "git@github.com:o/r.git",
            "ssh://git@ssh.github.com:443/o/r.git",
            "https://GitLab.com/group/sub/r",
        ] {
            assert_eq!(default_push_budget(url).0, HOSTED_PUSH_BUDGET, "{url}");
        }
        for url in [
            "/srv/grid.git",
            "file:///srv/grid.git",
            "./grid",
            "git://localhost:9418/grid",
            "https://github.com.evil.example/o/r",
            "https://notgithub.com/o/r",
            "git@gitea.example:o/r",
            "https://[::1]:8443/grid",
        ] {
            assert_eq!(default_push_budget(url).0, 0, "{url}");
        }
    }
}
