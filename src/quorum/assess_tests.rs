//! The verdicts of `assess`, table by table: honest rounds, a liar, colluders, ties, recruits up
//! to `max_instances`, dropped and re-issued instances, reveals that do not match, quorums from 1
//! to n, an adaptive task alone and checked.

use super::*;
use crate::quorum::test_entries::*;
use crate::quorum::{commitment, digest, sha256_hex, Assessment, Rule};

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
            "a reveal without a seal is not a vote, nor a commitment after its round's seal",
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
            Collecting { open: 2 },
        ),
        (
            "a sealed reveal beyond the instances wanted is not a vote (a forged entry)",
            r3,
            3,
            vec![
                revealed(1, "a", "x"),
                revealed(2, "b", "y"),
                revealed(3, "c", "y"),
                revealed(5, "copycat", "x"),
            ],
            decided("y", &["b", "c"], &["a"]),
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
