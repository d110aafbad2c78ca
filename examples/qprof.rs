use git_dgrid::grid::{snapshot, Snapshot};
use git_dgrid::layout::State;
use std::time::Instant;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let variant = std::env::args().nth(2).unwrap();
    let t0 = Instant::now();
    let repo = git_dgrid::odb::open(std::path::Path::new(&path)).unwrap();
    let tip = repo
        .find_reference("refs/heads/main")
        .unwrap()
        .id()
        .detach();
    let snap = Snapshot::read(&repo, Some(tip)).unwrap();
    let list = t0.elapsed();
    let t = Instant::now();
    let queued: Vec<_> = snap.in_state(State::Queue).cloned().collect();
    let total: usize = match variant.as_str() {
        "A" => queued
            .iter()
            .map(|t| snapshot::read_bytes(&repo, t).unwrap().len())
            .sum(),
        "H" => queued
            .iter()
            .map(|t| repo.find_header(t.blob).unwrap().size() as usize)
            .sum(),
        "B" => {
            use gix::prelude::Find;
            let mut buf = Vec::new();
            queued
                .iter()
                .map(|t| {
                    repo.objects
                        .try_find(&t.blob, &mut buf)
                        .unwrap()
                        .unwrap()
                        .data
                        .len()
                })
                .sum()
        }
        "C" | "D" => {
            let sync = repo.clone().into_sync();
            let half = queued.len() / 2;
            std::thread::scope(|s| {
                let hs: Vec<_> = queued
                    .chunks(half.max(1))
                    .map(|chunk| {
                        let sync = &sync;
                        let variant = &variant;
                        s.spawn(move || {
                            let repo = sync.to_thread_local();
                            let mut repo = repo;
                            repo.object_cache_size_if_unset(0);
                            if variant == "C" {
                                use gix::prelude::Find;
                                let mut buf = Vec::new();
                                chunk
                                    .iter()
                                    .map(|t| {
                                        repo.objects
                                            .try_find(&t.blob, &mut buf)
                                            .unwrap()
                                            .unwrap()
                                            .data
                                            .len()
                                    })
                                    .sum::<usize>()
                            } else {
                                chunk
                                    .iter()
                                    .map(|t| snapshot::read_bytes(&repo, t).unwrap().len())
                                    .sum::<usize>()
                            }
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).sum()
            })
        }
        _ => 0,
    };
    let read = t.elapsed();
    let t = Instant::now();
    let recent = git_dgrid::dashboard::history::recent_results(&repo, Some(tip), 50).unwrap();
    let rec = t.elapsed();
    eprintln!(
        "{variant}: list {list:?} read {read:?} ({total}) recent {rec:?} {}",
        recent.len()
    );
}
