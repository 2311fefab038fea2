//! Parallel jobs whose results are consumed in order, with a bounded number in flight.
//!
//! `encode_file` encodes chunks on every thread of a pool and writes them, in order, from
//! the calling thread. Workers take the next chunk as soon as they finish one (no barrier
//! after each batch), each keeps its own scratch space across chunks, and the output buffers
//! are recycled: there are only `window` of them, so a slow writer stops the workers rather
//! than letting finished chunks pile up in memory.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};

use crate::error::{BpeError, Result};

/// Runs `produce(i, scratch, buffer)` for every `i` in `0..jobs` on the threads of `pool`
/// (each thread with its own `scratch`, made by `init` on that thread before its first job),
/// and `consume(i, buffer)` on the calling thread in order of `i`. At most `window` buffers
/// exist at once. The first error, in order of `i`, of `produce` or `consume` stops the run
/// and is returned.
pub(crate) fn run_ordered<S, B: Default + Send>(
    pool: &rayon::ThreadPool,
    jobs: usize,
    window: usize,
    init: impl Fn() -> S + Sync,
    produce: impl Fn(usize, &mut S, &mut B) -> Result<()> + Sync,
    mut consume: impl FnMut(usize, &mut B) -> Result<()>,
) -> Result<()> {
    let (free_tx, free_rx) = mpsc::channel::<B>();
    for _ in 0..window.max(1) {
        let _ = free_tx.send(B::default());
    }
    let free_rx = Mutex::new(free_rx);
    let (done_tx, done_rx) = mpsc::channel::<(usize, Result<B>)>();
    let next = AtomicUsize::new(0);
    let (init, produce, free_rx, next) = (&init, &produce, &free_rx, &next);
    pool.in_place_scope(|scope| {
        for _ in 0..pool.current_num_threads() {
            let done_tx = done_tx.clone();
            scope.spawn(move |_| {
                let mut scratch = None;
                loop {
                    // A buffer first, then a job: so the unwritten job with the smallest
                    // index always has its buffer, and the writer never waits on a worker
                    // that waits on the writer.
                    let buffer = match free_rx.lock() {
                        Ok(free) => free.recv(),
                        Err(_) => return,
                    };
                    let Ok(mut buffer) = buffer else { return };
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= jobs {
                        return;
                    }
                    let result = produce(i, scratch.get_or_insert_with(init), &mut buffer);
                    if done_tx.send((i, result.map(|()| buffer))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        let mut waiting = BTreeMap::new();
        let mut wanted = 0;
        let result = (|| {
            while wanted < jobs {
                let (i, result) = done_rx.recv().map_err(|_| {
                    BpeError::InvalidArgument(format!("a worker stopped before job {wanted}"))
                })?;
                waiting.insert(i, result);
                while let Some(result) = waiting.remove(&wanted) {
                    let mut buffer = result?;
                    consume(wanted, &mut buffer)?;
                    wanted += 1;
                    let _ = free_tx.send(buffer);
                }
            }
            Ok(())
        })();
        // Workers waiting for a buffer wake up and stop once no buffer can come any more,
        // and their sends fail once nobody receives: so an early error ends the scope.
        drop(free_tx);
        drop(done_rx);
        result
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pool(n: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
    }

    #[test]
    fn results_arrive_in_order_with_each_threads_scratch() {
        for threads in [1, 2, 4] {
            for window in [1, 2, 7] {
                let mut seen = Vec::new();
                run_ordered(
                    &pool(threads),
                    100,
                    window,
                    Vec::new,
                    |i, scratch: &mut Vec<usize>, out: &mut Vec<usize>| {
                        scratch.push(i);
                        out.clear();
                        out.extend(0..i % 5);
                        out.push(i);
                        Ok(())
                    },
                    |i, out| {
                        assert_eq!(*out.last().unwrap(), i);
                        assert_eq!(out.len(), i % 5 + 1);
                        seen.push(i);
                        Ok(())
                    },
                )
                .unwrap();
                assert_eq!(seen, (0..100).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn an_error_stops_the_run_without_hanging() {
        let mut calls = 0;
        let err = run_ordered(
            &pool(3),
            1000,
            4,
            || (),
            |_, _: &mut (), out: &mut u32| {
                *out += 1;
                Ok(())
            },
            |i, _| {
                calls += 1;
                if i == 10 {
                    Err(BpeError::InvalidArgument("disk full".into()))
                } else {
                    Ok(())
                }
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("disk full"));
        assert_eq!(calls, 11);
        // No jobs at all.
        run_ordered(
            &pool(2),
            0,
            2,
            || (),
            |_, _: &mut (), _: &mut u8| Ok(()),
            |_, _| Ok(()),
        )
        .unwrap();
    }
}
