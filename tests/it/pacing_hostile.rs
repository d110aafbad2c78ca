//! What a pusher can do to the push budget, on a real grid: commits under
//! made-up node ids, pushed with plain git, name no writer for a worker joining the grid.

use crate::common::Env;
use crate::worker_kit::*;

/// Sixty empty commits under made-up node ids (`fake-N <fake-N@dgrid.invalid>`) used to count as
/// sixty active writers, and a worker joining waited its turn behind them. They are no node's
/// transition (no record of theirs changes), so they fill the window but name no writer.
#[test]
fn empty_commits_under_made_up_node_ids_name_no_writer() {
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    for i in 0..60 {
        let name = format!("fake-{i}");
        let out = env
            .cmd("git", &clone)
            .args(["commit", "--allow-empty", "-qm", "dgrid: heartbeat"])
            .env("GIT_AUTHOR_NAME", &name)
            .env("GIT_AUTHOR_EMAIL", format!("{name}@dgrid.invalid"))
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    env.git(&clone, &["push", "-q", "origin", "HEAD:main"]);
    let out = run_worker(
        &env,
        &grid,
        "honest",
        &["--once", "--push-budget", "12", "--lease", "60"],
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("push budget: 12 push(es) per minute"), "{log}");
    assert!(
        !log.contains("other writer(s) pushed lately"),
        "made-up node ids count as writers: {log}"
    );
}
