//! The verdicts of `assess` and the entries `next_instance` issues, table by table: honest
//! rounds, a liar, colluders, ties, recruits up to `max_instances`, dropped and re-issued
//! instances, reveals that do not match, quorums from 1 to n.

use super::*;
use crate::quorum::{commitment, digest, sha256_hex, Assessment, Rule};

/// The digest of an instance whose stdout was `output` (exit 0).
fn d(output: &str) -> String {
    digest(Some(0), &sha256_hex(output.as_bytes()))
}

fn salt(node: &str) -> String {
    sha256_hex(format!("salt of {node}").as_bytes())
}

fn rule(replicas: u32, quorum: u32, max_instances: u32) -> Rule {
    Rule {
        replicas,
        quorum,
        max_instances,
        adaptive: false,
    }
}

/// An instance claimed and running.
fn run(instance: u32, node: &str) -> Instance {
    Instance {
        instance,
        round: 1,
        node_id: node.into(),
        claimed_at: "2026-12-03T10:00:00Z".into(),
        lease_expires_at: "2026-12-03T10:05:00Z".into(),
        attempt: Attempt::FIRST,
        commitment: None,
        sealed: false,
        digest: None,
        salt: None,
        exit_code: None,
        status: None,
        dropped: None,
    }
}

/// Finished, its commitment to `output`'s digest landed.
fn committed(instance: u32, node: &str, output: &str) -> Instance {
    Instance {
        commitment: Some(commitment(node, &salt(node), &d(output))),
        ..run(instance, node)
    }
}

fn sealed(instance: u32, node: &str, output: &str) -> Instance {
    Instance {
        sealed: true,
        ..committed(instance, node, output)
    }
}

fn revealed(instance: u32, node: &str, output: &str) -> Instance {
    Instance {
        digest: Some(d(output)),
        salt: Some(salt(node)),
        exit_code: Some(0),
        status: Some(crate::task::Status::Success),
        ..sealed(instance, node, output)
    }
}

/// Committed to `committed_to`, then revealed `shown` (a digest copied after the others
/// revealed): the reveal does not match.
fn forged(instance: u32, node: &str, committed_to: &str, shown: &str) -> Instance {
    Instance {
        digest: Some(d(shown)),
        ..revealed(instance, node, committed_to)
    }
}

fn dropped(entry: Instance) -> Instance {
    Instance {
        dropped: Some(format!("node {} stopped heartbeating", entry.node_id)),
        ..entry
    }
}

fn round(round: u32, entry: Instance) -> Instance {
    Instance { round, ..entry }
}

fn attempt(n: u32, entry: Instance) -> Instance {
    Instance {
        attempt: Attempt::new(n).unwrap(),
        ..entry
    }
}

fn decided(output: &str, agreeing: &[&str], dissenting: &[&str]) -> Assessment {
    Assessment::Decided {
        digest: d(output),
        agreeing: agreeing.iter().map(|s| s.to_string()).collect(),
        dissenting: dissenting.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn verdicts() {
    use Assessment::*;
    let r3 = rule(3, 2, 5);
    let cases: Vec<(&str, Rule, u32, Vec<Instance>, Assessment)> = vec![
        ("nothing claimed yet", r3, 3, vec![], Collecting { open: 3 }),
        (
            "one running",
            r3,
            3,
            vec![run(1, "a")],
            Collecting { open: 2 },
        ),
        (
            "all claimed, one still running",
            r3,
            3,
            vec![committed(1, "a", "x"), run(2, "b"), committed(3, "c", "x")],
            Collecting { open: 0 },
        ),
        (
            "two committed, one slot open: nothing is sealed before the round is full",
            r3,
            3,
            vec![committed(1, "a", "x"), committed(2, "b", "x")],
            Collecting { open: 1 },
        ),
        (
            "the last commitment lands: seal them all",
            r3,
            3,
            vec![
                committed(1, "a", "x"),
                committed(2, "b", "x"),
                committed(3, "c", "x"),
            ],
            Seal(vec![0, 1, 2]),
        ),
        (
            "sealed, none revealed",
            r3,
            3,
            vec![
                sealed(1, "a", "x"),
                sealed(2, "b", "x"),
                sealed(3, "c", "x"),
            ],
            Revealing,
        ),
        (
            "two agree but the third is yet to reveal: wait (it may not be the liar)",
            r3,
            3,
            vec![
                revealed(1, "a", "x"),
                revealed(2, "b", "x"),
                sealed(3, "c", "x"),
            ],
            Revealing,
        ),
        (
            "honest round",
            r3,
            3,
            vec![
                revealed(1, "a", "x"),
                revealed(2, "b", "x"),
                revealed(3, "c", "x"),
            ],
            decided("x", &["a", "b", "c"], &[]),
        ),
        (
            "a liar is outvoted and named",
            r3,
            3,
            vec![
                revealed(1, "a", "x"),
                revealed(2, "liar", "lie"),
                revealed(3, "c", "x"),
            ],
            decided("x", &["a", "c"], &["liar"]),
        ),
        (
            "two colluders outvote one honest node at quorum 2",
            r3,
            3,
            vec![
                revealed(1, "l1", "lie"),
                revealed(2, "h", "x"),
                revealed(3, "l2", "lie"),
            ],
            decided("lie", &["l1", "l2"], &["h"]),
        ),
        (
            "two colluders against one at quorum 3: recruit one more",
            rule(3, 3, 5),
            3,
            vec![
                revealed(1, "l1", "lie"),
                revealed(2, "h", "x"),
                revealed(3, "l2", "lie"),
            ],
            Recruit { wanted: 4 },
        ),
        (
            "two colluders at quorum 3 with no room to recruit: no quorum",
            rule(3, 3, 3),
            3,
            vec![
                revealed(1, "l1", "lie"),
                revealed(2, "h", "x"),
                revealed(3, "l2", "lie"),
            ],
            NoQuorum,
        ),
        (
            "colluders at quorum 3 after recruits: the honest side reaches 3",
            rule(3, 3, 5),
            5,
            vec![
                revealed(1, "l1", "lie"),
                revealed(2, "h", "x"),
                revealed(3, "l2", "lie"),
                round(2, revealed(4, "h2", "x")),
                round(3, revealed(5, "h3", "x")),
            ],
            decided("x", &["h", "h2", "h3"], &["l1", "l2"]),
        ),
        (
            "all differ: recruit as many as the quorum still needs",
            r3,
            3,
            vec![
                revealed(1, "a", "p"),
                revealed(2, "b", "q"),
                revealed(3, "c", "r"),
            ],
            Recruit { wanted: 4 },
        ),
        (
            "all differ at quorum 3: two more needed",
            rule(3, 3, 5),
            3,
            vec![
                revealed(1, "a", "p"),
                revealed(2, "b", "q"),
                revealed(3, "c", "r"),
            ],
            Recruit { wanted: 5 },
        ),
        (
            "a tie at the quorum is no decision: one more breaks it",
            rule(4, 2, 6),
            4,
            vec![
                revealed(1, "a", "p"),
                revealed(2, "b", "p"),
                revealed(3, "c", "q"),
                revealed(4, "d", "q"),
            ],
            Recruit { wanted: 5 },
        ),
        (
            "recruits up to max_instances, then no quorum",
            r3,
            5,
            vec![
                revealed(1, "a", "p"),
                revealed(2, "b", "q"),
                revealed(3, "c", "r"),
                round(2, revealed(4, "d", "s")),
                round(3, revealed(5, "e", "t")),
            ],
            NoQuorum,
        ),
        (
            "a recruit is collected, then sealed alone",
            r3,
            4,
            vec![
                revealed(1, "a", "p"),
                revealed(2, "b", "q"),
                revealed(3, "c", "r"),
            ],
            Collecting { open: 1 },
        ),
        (
            "the recruit's commitment seals it",
            r3,
            4,
            vec![
                revealed(1, "a", "p"),
                revealed(2, "b", "q"),
                revealed(3, "c", "r"),
                round(2, committed(4, "d", "q")),
            ],
            Seal(vec![3]),
        ),
        (
            "the recruit breaks the deadlock",
            r3,
            4,
            vec![
                revealed(1, "a", "p"),
                revealed(2, "b", "q"),
                revealed(3, "c", "r"),
                round(2, revealed(4, "d", "q")),
            ],
            decided("q", &["b", "d"], &["a", "c"]),
        ),
        (
            "a dropped instance reopens its slot",
            r3,
            3,
            vec![
                committed(1, "a", "x"),
                dropped(run(2, "dead")),
                committed(3, "c", "x"),
            ],
            Collecting { open: 1 },
        ),
        (
            "its re-issue commits: the round seals without the dropped entry",
            r3,
            3,
            vec![
                committed(1, "a", "x"),
                dropped(run(2, "dead")),
                committed(3, "c", "x"),
                attempt(2, committed(2, "b", "x")),
            ],
            Seal(vec![0, 2, 3]),
        ),
        (
            "a dropped entry's vote does not count",
            r3,
            3,
            vec![
                revealed(1, "a", "x"),
                dropped(revealed(2, "dead", "y")),
                revealed(3, "c", "y"),
                attempt(2, revealed(2, "b", "x")),
            ],
            decided("x", &["a", "b"], &["c"]),
        ),
        (
            "decided ignores a re-issue still running",
            r3,
            3,
            vec![
                revealed(1, "a", "x"),
                revealed(2, "b", "x"),
                dropped(sealed(3, "dead", "x")),
                attempt(2, run(3, "late")),
            ],
            decided("x", &["a", "b"], &[]),
        ),
        (
            "a sealed node that died before revealing: its slot reopens",
            r3,
            3,
            vec![
                revealed(1, "a", "x"),
                revealed(2, "b", "y"),
                dropped(sealed(3, "dead", "x")),
            ],
            Collecting { open: 1 },
        ),
        (
            "a copied digest revealed after the others is not a vote, and reopens the slot",
            r3,
            3,
            vec![
                revealed(1, "a", "x"),
                revealed(2, "b", "y"),
                forged(3, "copier", "nothing", "x"),
            ],
            Collecting { open: 1 },
        ),
        (
            "the forger is named among the dissenting once the task decides",
            r3,
            3,
            vec![
                revealed(1, "a", "x"),
                revealed(2, "b", "x"),
                forged(3, "copier", "nothing", "x"),
            ],
            decided("x", &["a", "b"], &["copier"]),
        ),
        (
            "a reveal without a seal is not a vote",
            r3,
            3,
            vec![
                revealed(1, "a", "x"),
                Instance {
                    sealed: false,
                    ..revealed(2, "b", "x")
                },
                committed(3, "c", "y"),
            ],
            Seal(vec![1, 2]),
        ),
        (
            "quorum 1: the first revealed digest decides",
            rule(3, 1, 5),
            3,
            vec![revealed(1, "a", "x"), run(2, "b"), run(3, "c")],
            decided("x", &["a"], &[]),
        ),
        (
            "quorum 1 with two different reveals: a tie",
            rule(2, 1, 4),
            2,
            vec![revealed(1, "a", "x"), revealed(2, "b", "y")],
            Recruit { wanted: 3 },
        ),
        (
            "quorum n: unanimity",
            rule(5, 5, 7),
            5,
            vec![
                revealed(1, "a", "x"),
                revealed(2, "b", "x"),
                revealed(3, "c", "x"),
                revealed(4, "d", "x"),
                revealed(5, "e", "x"),
            ],
            decided("x", &["a", "b", "c", "d", "e"], &[]),
        ),
        (
            "quorum n, one dissent",
            rule(5, 5, 7),
            5,
            vec![
                revealed(1, "a", "x"),
                revealed(2, "b", "x"),
                revealed(3, "c", "x"),
                revealed(4, "d", "x"),
                revealed(5, "e", "y"),
            ],
            Recruit { wanted: 6 },
        ),
        (
            "an exit code is part of the digest",
            r3,
            3,
            vec![
                revealed(1, "a", "x"),
                Instance {
                    digest: Some(digest(Some(1), &sha256_hex(b"x"))),
                    commitment: Some(commitment(
                        "b",
                        &salt("b"),
                        &digest(Some(1), &sha256_hex(b"x")),
                    )),
                    ..revealed(2, "b", "x")
                },
                revealed(3, "c", "x"),
            ],
            decided("x", &["a", "c"], &["b"]),
        ),
    ];
    for (name, rule, wanted, entries, expected) in cases {
        assert_eq!(assess(&rule, wanted, &entries), expected, "{name}");
    }
}

#[test]
fn an_adaptive_task_run_alone_is_decided_by_its_one_instance() {
    let adaptive = Rule {
        replicas: 2,
        quorum: 2,
        max_instances: 4,
        adaptive: true,
    };
    assert_eq!(quorum_of(&adaptive, 1), 1);
    assert_eq!(quorum_of(&adaptive, 2), 2);
    assert_eq!(quorum_of(&adaptive, 3), 2);
    assert_eq!(
        quorum_of(&rule(3, 2, 5), 1),
        2,
        "fixed replicas keep theirs"
    );
    let solo = vec![committed(1, "trusted", "x")];
    assert_eq!(assess(&adaptive, 1, &solo), Assessment::Seal(vec![0]));
    let solo = vec![revealed(1, "trusted", "x")];
    assert_eq!(assess(&adaptive, 1, &solo), decided("x", &["trusted"], &[]));
    // Drawn for a check: two wanted, the solo vote alone no longer decides.
    assert_eq!(
        assess(&adaptive, 2, &solo),
        Assessment::Collecting { open: 1 }
    );
    let checked = vec![
        revealed(1, "trusted", "x"),
        round(2, revealed(2, "checker", "y")),
    ];
    assert_eq!(
        assess(&adaptive, 2, &checked),
        Assessment::Recruit { wanted: 3 }
    );
}

#[test]
fn votes_and_entries() {
    let entries = vec![
        revealed(1, "a", "x"),
        dropped(revealed(2, "dead", "x")),
        forged(3, "copier", "nothing", "x"),
        sealed(4, "d", "x"),
        attempt(2, revealed(2, "b", "y")),
    ];
    let votes = votes(&entries);
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
            "a forged reveal's slot is re-issued",
            3,
            vec![
                revealed(1, "a", "x"),
                revealed(2, "b", "y"),
                forged(3, "copier", "nothing", "x"),
            ],
            Some(issue(3, 2, 1)),
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
