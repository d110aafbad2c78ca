//! The entries `next_instance` issues (per-instance attempts, rounds, recruits), the votes, the
//! wanted count and the result's quorum object of a verdict.

use super::*;
use crate::quorum::test_entries::*;
use crate::quorum::{Assessment, Rule};

#[test]
fn votes_and_entries() {
    let entries = vec![
        revealed(1, "a", "x"),
        dropped(revealed(2, "dead", "x")),
        forged(3, "copier", "nothing", "x"),
        sealed(4, "d", "x"),
        attempt(2, revealed(2, "b", "y")),
    ];
    let votes = votes(&entries, 4);
    let named: Vec<(&str, u32, u32)> = votes
        .iter()
        .map(|v| (v.node_id.as_str(), v.instance, v.attempt.number()))
        .collect();
    assert_eq!(named, [("a", 1, 1), ("b", 2, 2)]);
    assert_eq!(votes[0].digest, d("x"));
    assert!(has_entry(&entries, "dead"), "a dropped entry still counts");
    assert!(has_entry(&entries, "copier"));
    assert!(!has_entry(&entries, "e"));
    assert!(is_invalid_reveal(&entries[2]) && !is_live(&entries[2]));
    assert!(!is_invalid_reveal(&entries[0]) && is_live(&entries[0]));
}

#[test]
fn next_instances() {
    use NextInstance::*;
    let r3 = rule(3, 2, 5);
    let issue = |instance, attempt: u32, round| Issue {
        instance,
        attempt: Attempt::new(attempt).unwrap(),
        round,
    };
    let cases: Vec<(&str, u32, Vec<Instance>, Option<NextInstance>)> = vec![
        ("the first claim", 3, vec![], Some(issue(1, 1, 1))),
        (
            "the next number",
            3,
            vec![run(1, "a")],
            Some(issue(2, 1, 1)),
        ),
        (
            "the lowest open number",
            3,
            vec![run(1, "a"), run(3, "c")],
            Some(issue(2, 1, 1)),
        ),
        (
            "all wanted are held",
            3,
            vec![run(1, "a"), run(2, "b"), run(3, "c")],
            None,
        ),
        (
            "a re-issue counts its attempts per instance",
            3,
            vec![run(1, "a"), dropped(run(2, "dead")), run(3, "c")],
            Some(issue(2, 2, 1)),
        ),
        (
            "a second re-issue",
            3,
            vec![
                run(1, "a"),
                dropped(run(2, "dead")),
                attempt(2, dropped(run(2, "dead2"))),
                run(3, "c"),
            ],
            Some(issue(2, 3, 1)),
        ),
        (
            "an instance out of attempts fails the task",
            3,
            vec![
                dropped(run(1, "x")),
                attempt(2, dropped(run(1, "y"))),
                attempt(3, dropped(run(1, "z"))),
                run(2, "b"),
            ],
            Some(Exhausted { instance: 1 }),
        ),
        (
            "a recruit starts the next round",
            4,
            vec![
                revealed(1, "a", "p"),
                revealed(2, "b", "q"),
                revealed(3, "c", "r"),
            ],
            Some(issue(4, 1, 2)),
        ),
        (
            "a second recruit of the same round joins it",
            5,
            vec![
                revealed(1, "a", "p"),
                revealed(2, "b", "q"),
                revealed(3, "c", "r"),
                round(2, run(4, "d")),
            ],
            Some(issue(5, 1, 2)),
        ),
        (
            "a re-issue keeps its instance's round",
            4,
            vec![
                revealed(1, "a", "p"),
                revealed(2, "b", "q"),
                revealed(3, "c", "r"),
                round(2, dropped(run(4, "dead"))),
            ],
            Some(issue(4, 2, 2)),
        ),
        (
            "a forged reveal's slot is re-issued, in the next round (round 1 is sealed)",
            3,
            vec![
                revealed(1, "a", "x"),
                revealed(2, "b", "y"),
                forged(3, "copier", "nothing", "x"),
            ],
            Some(issue(3, 2, 2)),
        ),
        (
            "never past max_instances",
            9,
            vec![
                run(1, "a"),
                run(2, "b"),
                run(3, "c"),
                run(4, "d"),
                run(5, "e"),
            ],
            None,
        ),
    ];
    for (name, wanted, entries, expected) in cases {
        assert_eq!(next_instance(&r3, wanted, &entries, 3), expected, "{name}");
    }
    // An adaptive solo run, drawn for a check: the checker is round 2, instance 2.
    let adaptive = Rule {
        adaptive: true,
        ..rule(2, 2, 4)
    };
    assert_eq!(
        next_instance(&adaptive, 2, &[revealed(1, "t", "x")], 3),
        Some(issue(2, 1, 2))
    );
    assert_eq!(
        next_instance(&adaptive, 1, &[revealed(1, "t", "x")], 3),
        None
    );
}

#[test]
fn wanted_is_instances_wanted_or_replicas() {
    let mut spec = crate::task::parse_task(
        "t.json",
        br#"{"id":"t","image":"alpine:3","command":"x","timeout":5,"created_at":"2026-01-01T00:00:00Z","submitted_by":"a","replicas":3}"#,
        &crate::task::Limits::default(),
        crate::task::Origin::Required,
    )
    .unwrap();
    let rule = Rule::of(&spec).unwrap();
    assert_eq!(wanted(&spec, &rule), 3);
    spec.instances_wanted = Some(4);
    assert_eq!(wanted(&spec, &rule), 4);
}

#[test]
fn the_outcome_of_a_verdict_is_the_result_s_quorum_object() {
    let r3 = rule(3, 2, 5);
    let entries = vec![
        revealed(1, "a", "x"),
        revealed(2, "liar", "lie"),
        revealed(3, "c", "x"),
    ];
    let verdict = assess(&r3, 3, &entries);
    let o = outcome(&r3, 3, &entries, &verdict).unwrap();
    assert_eq!(o.digest, Some(d("x")));
    assert_eq!(
        (o.agreeing, o.dissenting),
        (vec!["a".to_string(), "c".into()], vec!["liar".to_string()])
    );
    assert_eq!(o.votes.len(), 3);
    assert_eq!((o.replicas, o.unchecked), (3, false));
    let none = outcome(&r3, 3, &entries, &Assessment::NoQuorum).unwrap();
    assert_eq!(
        (none.digest, none.agreeing.len(), none.votes.len()),
        (None, 0, 3)
    );
    assert_eq!(outcome(&r3, 3, &entries, &Assessment::Revealing), None);
    // Written into a result, it reads back.
    let text = format!(
        r#"{{"task_id":"t","node_id":"a","exit_code":0,"stdout":"","stderr":"","timestamp":"2026-01-01T00:00:00Z","status":"success","quorum":{}}}"#,
        serde_json::to_string(&outcome(&r3, 3, &entries, &verdict).unwrap()).unwrap()
    );
    crate::task::parse_result("r.json", text.as_bytes(), &Default::default()).unwrap();
}
