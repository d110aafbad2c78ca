//! Numeric flags of `submit` are refused in the contract's words, as the same
//! field in a task file is (`"priority": expected an integer …`), not with clap's parser errors;
//! negative numbers reach the contract too.

use crate::common::Env;

fn submit(env: &Env, flags: &[&str]) -> (Option<i32>, String) {
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    let mut args = vec!["submit", "--no-push", "--image", "busybox"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--", "true"]);
    let out = env.dgrid(&clone, &args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn numeric_flags_get_the_contracts_wording() {
    for (flags, said) in [
        (
            ["--priority", "abc"],
            r#""priority": expected an integer from -1000000 to 1000000, got "abc""#,
        ),
        (
            ["--max-attempts", "abc"],
            r#""max_attempts": expected an integer from 1 to 100, got "abc""#,
        ),
        (
            ["--max-attempts", "-1"],
            r#""max_attempts": expected an integer from 1 to 100, got -1"#,
        ),
        (
            ["--cpus", "abc"],
            r#""resources.cpus": expected a number from 0.01 (docker's minimum) to 1024, got "abc""#,
        ),
        (
            ["--timeout", "-5"],
            r#""timeout": expected an integer from 1 to 86400, got -5"#,
        ),
    ] {
        let env = Env::new();
        let (code, text) = submit(&env, &flags);
        assert_eq!(code, Some(1), "{flags:?}: {text}");
        assert!(text.contains(said), "{flags:?}: {text}");
    }
}

#[test]
fn numeric_flags_still_write_numbers() {
    let env = Env::new();
    let (code, text) = submit(
        &env,
        &[
            "--id",
            "n",
            "--priority",
            "-3",
            "--max-attempts",
            "2",
            "--cpus",
            "0.5",
        ],
    );
    assert_eq!(code, Some(0), "{text}");
    // `--no-push` commits on a branch of its own, at the path a push would use.
    let clone = env.path("c");
    let listed = env.git(&clone, &["ls-tree", "-r", "--name-only", "dgrid-submit-n"]);
    let path = listed
        .lines()
        .find(|p| p.ends_with("/n.json"))
        .unwrap_or_else(|| panic!("no n.json on the branch: {listed}"));
    let file = env.git(&clone, &["show", &format!("dgrid-submit-n:{path}")]);
    let task: serde_json::Value = serde_json::from_str(&file).unwrap();
    assert_eq!(task["priority"], -3);
    assert_eq!(task["max_attempts"], 2);
    assert_eq!(task["resources"]["cpus"], 0.5);
}
