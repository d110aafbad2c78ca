//! The submit transition: all tasks in one commit, or none when an id is taken.

use super::*;
use crate::grid::testkit::{claimed, error, file, grid, now, result, task, task_spec};

fn specs(ids: &[&str]) -> Vec<TaskSpec> {
    ids.iter().map(|id| task_spec(&task(id))).collect()
}

#[test]
fn new_tasks_go_into_the_queue_in_one_change() {
    let fx = grid(&[]);
    let one = plan(&fx.snapshot, &specs(&["a"])).unwrap().unwrap();
    assert_eq!(one.summary, "submit a");
    let three = plan(&fx.snapshot, &specs(&["a", "b", "c"]))
        .unwrap()
        .unwrap();
    assert_eq!(three.summary, "submit 3 tasks (a .. c)");
    let after = fx.after(&three.edits);
    for id in ["a", "b", "c"] {
        let (state, content) = fx.task_in(&after, id).unwrap();
        assert_eq!(state, State::Queue);
        assert_eq!(content, task(id));
    }
    assert!(
        plan(&fx.snapshot, &[]).unwrap().is_none(),
        "nothing to submit"
    );
}

#[test]
fn an_id_taken_in_any_state_or_given_twice_refuses_the_whole_submission() {
    for state in State::ALL {
        let content = match state {
            State::Queue => task("taken"),
            State::InProgress => claimed(task("taken"), "n", 1, "2026-01-01T12:05:00Z"),
            _ => result("taken", "n", "success", 1),
        };
        let fx = grid(&[file(state, "taken", content)]);
        let err = error(plan(&fx.snapshot, &specs(&["new", "taken"])));
        let conflict = err.downcast_ref::<Conflict>().expect("a Conflict");
        assert_eq!(
            conflict.0,
            format!(
                "task id \"taken\" already exists on the grid ({}); ids are never reused",
                layout::task_path(state, "taken")
            )
        );
    }
    let err = error(plan(&grid(&[]).snapshot, &specs(&["a", "b", "a"])));
    assert_eq!(
        err.downcast_ref::<Conflict>().expect("a Conflict").0,
        "task id \"a\" is given twice in this submission"
    );
}

#[test]
fn a_remote_without_a_grid_is_refused() {
    let no_main = error(plan(&Snapshot::empty(), &specs(&["a"])));
    assert!(
        no_main.to_string().contains("no main branch")
            && no_main.to_string().contains("git dgrid init --push"),
        "{no_main}"
    );
    let dir = tempfile::tempdir().unwrap();
    let repo = gix::init_bare(dir.path()).unwrap();
    let edits = [crate::odb::Edit::Write {
        path: "README.md".into(),
        content: b"another project".to_vec(),
    }];
    let identity = crate::odb::Identity::node("t");
    let tip = crate::odb::write_commit(&repo, None, &edits, &identity, "x").unwrap();
    let other = Snapshot::read(&repo, Some(tip)).unwrap();
    let not_grid = error(plan(&other, &specs(&["a"])));
    assert!(not_grid.to_string().contains("not a grid"), "{not_grid}");
}

#[test]
fn generated_ids_sort_by_time_and_are_valid() {
    let id = new_id(now(), 3);
    assert!(id.starts_with("t-20260101-120000-00003-"), "{id}");
    assert_eq!(id.len(), "t-20260101-120000-00003-".len() + 4);
    crate::task::check_id(&id).unwrap();
    let later = new_id(now() + chrono::Duration::seconds(1), 0);
    assert!(later > id);
}
