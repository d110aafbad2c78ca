use super::*;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn pacing(budget: u32) -> Pacing {
    Pacing::new(budget, 7).expect("a budget")
}

#[test]
fn no_budget_means_no_pacing() {
    assert!(Pacing::new(0, 1).is_none());
}

#[test]
fn a_lone_writer_gets_the_whole_budget() {
    let t0 = Instant::now();
    let mut p = pacing(6);
    assert!(p.may_push(t0), "nothing seen: push at once");
    p.pushed(t0);
    assert_eq!(p.active_writers(t0), 1);
    assert_eq!(p.spacing(t0), secs(10.0));
    assert!(!p.may_push(t0 + secs(9.9)));
    let next = p.earliest_push(t0);
    assert!(
        next >= t0 + secs(10.0) && next <= t0 + secs(12.5),
        "jitter upwards only"
    );
    assert!(p.may_push(t0 + secs(12.5)));
}

#[test]
fn writers_share_the_budget() {
    let t0 = Instant::now();
    let mut p = pacing(6);
    p.saw_push(t0, Some("other"));
    assert_eq!(p.active_writers(t0), 2);
    assert_eq!(p.spacing(t0), secs(20.0));
    p.pushed(t0 + secs(1.0));
    assert!(!p.may_push(t0 + secs(20.9)));
    assert!(p.may_push(t0 + secs(26.0)));
    // A writer learnt of after this one's last push stretches the spacing after it.
    let mut late = pacing(6);
    late.pushed(t0);
    late.saw_push(t0 + secs(10.0), Some("other"));
    assert!(!late.may_push(t0 + secs(19.9)));
    // A person's push fills the window but is not a writer that paces itself.
    p.saw_push(t0 + secs(2.0), None);
    assert_eq!(p.active_writers(t0 + secs(2.0)), 2);
}

#[test]
fn a_silent_or_stopped_writer_stops_counting() {
    let t0 = Instant::now();
    let mut p = pacing(6);
    p.saw_push(t0, Some("a"));
    p.saw_push(t0, Some("b"));
    assert_eq!(p.active_writers(t0), 3);
    p.writer_left("b");
    assert_eq!(p.active_writers(t0), 2);
    // Two writers at 6/min push every 20 s: silent for 2.5 spacings (and at least 2 min), gone.
    assert_eq!(p.active_writers(t0 + secs(119.0)), 2);
    assert_eq!(p.active_writers(t0 + secs(121.0)), 1);
}

#[test]
fn a_full_window_holds_the_push_back_until_its_oldest_push_ages_out() {
    let t0 = Instant::now();
    let mut p = pacing(6);
    for i in 0..6 {
        p.saw_push(t0 + secs(f64::from(i) * 5.0), Some(&format!("w{i}")));
    }
    let at = t0 + secs(30.0);
    assert!(!p.may_push(at), "six pushes in the last minute at 6/min");
    assert_eq!(p.earliest_push(at), t0 + secs(60.0));
}

#[test]
fn a_window_that_ran_over_slows_the_writer_down_until_it_is_calm_again() {
    let t0 = Instant::now();
    let mut p = pacing(6);
    for i in 0..7 {
        p.saw_push(t0 + secs(f64::from(i)), Some("other"));
    }
    let after = t0 + secs(7.0);
    assert_eq!(
        p.spacing(after),
        secs(20.0).mul_f64(1.5),
        "two writers, slowed"
    );
    assert_eq!(
        p.spacing(after + CALM_FOR),
        secs(10.0),
        "eased after a calm period (and the other writer gone quiet)"
    );
}

#[test]
fn rate_limited_answers_slow_down_and_push_the_next_try_out() {
    let t0 = Instant::now();
    let mut p = pacing(6);
    p.rate_limited(t0);
    assert_eq!(p.spacing(t0), secs(15.0));
    assert!(!p.may_push(t0 + secs(14.9)));
    p.rate_limited(t0 + secs(15.0));
    assert_eq!(p.spacing(t0 + secs(15.0)), secs(22.5));
    for i in 0..10 {
        p.rate_limited(t0 + secs(16.0 + f64::from(i)));
    }
    assert_eq!(
        p.spacing(t0 + secs(30.0)),
        secs(10.0).mul_f64(1.5f64.powi(MAX_SLOWDOWN))
    );
}

#[test]
fn a_newcomer_to_a_busy_grid_waits_its_turn() {
    let t0 = Instant::now();
    let mut p = pacing(6);
    p.joined(t0, &["a".to_string(), "b".to_string()]);
    // Three writers at 6/min: a spacing of 30 s; the first push waits 15-30 s.
    let first = p.earliest_push(t0);
    assert!(first >= t0 + secs(15.0) && first <= t0 + secs(30.0));
    // A quiet grid: others may be joining at this instant too, so the first push still waits a
    // random part of a lone writer's spacing (10 s), different for different workers.
    let firsts: Vec<Instant> = (1..=8)
        .map(|seed| {
            let mut alone = Pacing::new(6, seed).unwrap();
            alone.joined(t0, &[]);
            alone.earliest_push(t0)
        })
        .collect();
    assert!(firsts.iter().all(|f| *f <= t0 + secs(10.0)));
    let mut distinct = firsts.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        firsts.len(),
        "joiners spread out: {firsts:?}"
    );
}

#[test]
fn claim_ahead_covers_the_time_until_the_next_push() {
    let t0 = Instant::now();
    let mut p = pacing(6);
    assert_eq!(p.ahead(2, t0), 2, "no duration seen yet: one per slot");
    p.saw_push(t0, Some("other"));
    p.task_took(secs(3.0));
    // A spacing of 20 s (22.5 s with the jitter's mean), 2 slots of 3-s tasks.
    assert_eq!(p.ahead(2, t0), 15);
    p.task_took(secs(13.0));
    assert_eq!(p.ahead(2, t0), 8, "a moving average: 6 s now");
}

#[test]
fn the_tail_is_split_among_the_writers() {
    assert_eq!(
        tail_split(2, 13, 40, 0, 0, 2),
        15,
        "a long queue: all that is wanted"
    );
    assert_eq!(
        tail_split(2, 13, 10, 0, 0, 2),
        5,
        "the end of the queue: a writer's share"
    );
    assert_eq!(
        tail_split(2, 13, 3, 0, 0, 2),
        2,
        "never fewer than the free slots"
    );
    assert_eq!(tail_split(0, 13, 3, 0, 0, 4), 1);
    assert_eq!(tail_split(1, 0, 100, 0, 0, 1), 1, "nothing ahead wanted");
    assert_eq!(tail_split(0, 5, 0, 0, 0, 0), 0);
    // Writers claiming one after the other end up even: 20 left, 4 writers, 5 each.
    let mut held_by_others = 0;
    for _ in 0..4 {
        let claimed = tail_split(1, 20, 20 - held_by_others, held_by_others, 0, 4);
        assert_eq!(claimed, 5);
        held_by_others += claimed;
    }
    // What a writer already holds counts against its share.
    assert_eq!(tail_split(0, 20, 8, 12, 4, 4), 1);
    assert_eq!(tail_split(0, 20, 8, 12, 6, 4), 0);
}

/// Writers joining a grid and racing for it, each with its own pacing, each seeing the others' pushes only
/// when it looks (before each push, and otherwise once a second): no 60-s window holds more than
/// the budget and one push more (two writers deciding at the same instant).
#[test]
fn racing_writers_stay_within_the_budget() {
    // (writers, budget, ticks of 100 ms between two joiners: 0 = all start at the same instant)
    for (writers, budget, stagger) in [
        (2usize, 6u32, 30u32),
        (4, 20, 30),
        (8, 6, 30),
        (3, 10, 30),
        (2, 6, 0),
        (4, 20, 0),
        (8, 6, 0),
        (8, 20, 0),
    ] {
        let t0 = Instant::now();
        let mut paces: Vec<Pacing> = (0..writers)
            .map(|i| Pacing::new(budget, i as u64 + 1).unwrap())
            .collect();
        let mut seen_upto = vec![0usize; writers];
        let mut log: Vec<(Instant, usize)> = Vec::new();
        for tick in 0..6000u32 {
            let at = t0 + Duration::from_millis(u64::from(tick) * 100);
            let before = log.len();
            for (w, pace) in paces.iter_mut().enumerate() {
                // Writers join one by one (or together), knowing who pushed before them.
                let start = w as u32 * stagger;
                if tick < start {
                    continue;
                }
                if tick == start {
                    let mut others: Vec<String> =
                        log.iter().map(|&(_, who)| format!("w{who}")).collect();
                    others.dedup();
                    pace.joined(at, &others);
                }
                // Look at what landed (up to this tick's start: same-tick pushes race).
                let look = tick % 10 == w as u32 % 10 || pace.may_push(at);
                if look {
                    for &(_, who) in &log[seen_upto[w]..before] {
                        if who != w {
                            pace.saw_push(at, Some(&format!("w{who}")));
                        }
                    }
                    seen_upto[w] = before;
                }
            }
            for (w, pace) in paces.iter_mut().enumerate() {
                if tick >= w as u32 * stagger && pace.may_push(at) {
                    pace.pushed(at);
                    log.push((at, w));
                }
            }
        }
        let most = log
            .iter()
            .map(|(t, _)| {
                log.iter()
                    .filter(|(u, _)| *u >= *t && u.duration_since(*t) < WINDOW)
                    .count()
            })
            .max()
            .unwrap();
        assert!(
            most <= budget as usize + 1,
            "{writers} writers at {budget}/min joining {stagger} ticks apart: {most} pushes in a window"
        );
        // And the budget is used, not wasted: at least half of it in ten minutes.
        assert!(
            log.len() >= (budget as usize * 10) / 2,
            "{writers} writers at {budget}/min: only {} pushes in 10 min",
            log.len()
        );
    }
}

/// Writers are counted at most one per push of the budget, so sixty made-up
/// node ids (each one's pushes faked) cannot stretch an honest worker's spacing past a minute.
#[test]
fn made_up_writers_stretch_the_spacing_no_further_than_a_minute() {
    let t0 = Instant::now();
    let mut p = pacing(12);
    // One push every 5 s, each under a new id: a budget's worth a minute, never over it.
    for i in 0..60 {
        p.saw_push(t0 + secs(f64::from(i) * 5.0), Some(&format!("fake-{i}")));
    }
    let at = t0 + secs(300.0);
    assert_eq!(p.active_writers(at), 12);
    assert_eq!(p.spacing(at), secs(60.0));
}

/// A pusher landing an empty commit every 3 s (17 a minute against a budget of
/// 12) cannot hold a worker at zero: commits that are not workers' transitions fill at most half
/// the window, the worker keeps its share of the rest, and it says so once.
#[test]
fn commits_just_over_the_budget_cannot_starve_the_workers() {
    let t0 = Instant::now();
    let mut p = pacing(12);
    let mut own = 0;
    let mut notices = 0;
    let mut at = t0;
    let mut next_foreign = t0;
    while at < t0 + secs(300.0) {
        if at >= next_foreign {
            p.saw_push(at, None);
            next_foreign += secs(3.0);
        }
        if p.may_push(at) {
            p.pushed(at);
            own += 1;
        }
        notices += usize::from(p.foreign_notice(at).is_some());
        at += secs(0.5);
    }
    // 300 s at half a budget of 12 is 30 pushes; the spacing (5 s, jitter) allows up to 60.
    assert!(own >= 25, "the worker pushed {own} times in 5 minutes");
    assert_eq!(notices, 1, "said once for the spell");
    assert!(
        p.effective_slowdown(at) == 0,
        "not slowed down by others' commits"
    );
}
