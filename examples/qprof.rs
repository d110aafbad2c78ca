use git_dgrid::grid::{snapshot, Snapshot};
use git_dgrid::layout::State;
use std::time::Instant;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let t = Instant::now();
    let repo = git_dgrid::odb::open(std::path::Path::new(&path)).unwrap();
    let tip = repo
        .find_reference("refs/heads/main")
        .unwrap()
        .id()
        .detach();
    eprintln!("open {:?}", t.elapsed());
    let t = Instant::now();
    let snap = Snapshot::read(&repo, Some(tip)).unwrap();
    eprintln!("list {:?} {}", t.elapsed(), snap.tasks.len());
    let t = Instant::now();
    let mut total = 0;
    for task in snap.in_state(State::Queue) {
        total += repo.find_blob(task.blob).unwrap().data.len();
    }
    eprintln!("find_blob cold {:?} {total}", t.elapsed());
    let t = Instant::now();
    let mut total = 0;
    for task in snap.in_state(State::Queue) {
        total += repo.find_header(task.blob).unwrap().size() as usize;
    }
    eprintln!("find_header {:?} {total}", t.elapsed());
    let t = Instant::now();
    let mut total = 0;
    for task in snap.in_state(State::Queue) {
        total += snapshot::read_bytes(&repo, task).unwrap().len();
    }
    eprintln!("read_bytes {:?} {total}", t.elapsed());
    let t = Instant::now();
    let mut total = 0;
    for task in snap.in_state(State::Queue) {
        total += repo.find_blob(task.blob).unwrap().data.len();
    }
    eprintln!("find_blob only {:?} {total}", t.elapsed());
    let t = Instant::now();
    let recent = git_dgrid::dashboard::history::recent_results(&repo, Some(tip), 50).unwrap();
    eprintln!("recent {:?} {}", t.elapsed(), recent.len());
    let t = Instant::now();
    let m = git_dgrid::dashboard::StatusModel::build(&repo, &snap, &recent, chrono::Utc::now())
        .unwrap();
    eprintln!("build {:?} {}", t.elapsed(), m.queue.next.len());
}
