//! The threads every parallel step of the crate runs on: how many a call gets (the one check
//! of a `num_threads` argument) and the pools that run them.
//!
//! Pools are kept across calls, because each encoder's pretoken cache lives in the worker
//! threads: a pool built afresh for every call would start every call with cold caches. Only
//! the pools of the last `KEPT` sizes asked for are kept; an older one is dropped, and its
//! threads end once its last call returns.
//!
//! Nothing in the crate uses rayon's global pool: a pool's threads do not survive `fork`, and
//! the global one cannot be rebuilt. Instead a process that finds it is not the one that
//! started the kept pools (its pid differs: a forked child) forgets them, without touching
//! them, and starts its own.
//!
//! A pool that cannot start all its threads (memory is short, under `RLIMIT_AS` say, or the
//! thread limit is reached) is replaced by one of half the threads, down to one; a call
//! runs on fewer threads rather than fail. Only when not even one thread starts does it
//! fail, with `OutOfMemory` where the system said it lacked the resources.

use std::fmt::Display;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use rayon::ThreadPool;

use crate::cancel::{Cancel, Stop};
use crate::error::{BpeError, Result};

/// A call runs on at most this many threads per CPU, whatever it asks for: beyond the CPUs,
/// threads only add switching and a word cache each (enough slack is left for machines whose
/// CPU count is understated, such as a cgroup quota below the cores in use).
pub const THREADS_PER_CPU: usize = 4;

/// How many pools (of different sizes) are kept at once.
const KEPT: usize = 2;

/// The CPUs this process may run on (its affinity and cgroup quota), at least 1.
pub fn cpus() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The most threads a call runs on: `THREADS_PER_CPU` per CPU.
pub fn max_threads() -> usize {
    THREADS_PER_CPU * cpus()
}

/// The threads a call given `num_threads` runs on: `None` is one per CPU (or
/// `RAYON_NUM_THREADS` where set), and more than `max_threads()` is capped there. 0 is an
/// error (`invalid_threads`).
pub fn threads(num_threads: Option<usize>) -> Result<usize> {
    static DEFAULT: OnceLock<usize> = OnceLock::new();
    let n = match num_threads {
        Some(0) => return Err(invalid_threads(0)),
        Some(n) => n,
        None => *DEFAULT.get_or_init(|| {
            std::env::var("RAYON_NUM_THREADS")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .filter(|&n: &usize| n > 0)
                .unwrap_or_else(cpus)
        }),
    };
    Ok(n.min(max_threads()))
}

/// The error for a `num_threads` below 1 (`shown` as the caller gave it: the bindings pass
/// negative Python ints here, which never become a `usize`).
pub fn invalid_threads(shown: impl Display) -> BpeError {
    BpeError::InvalidArgument(format!(
        "num_threads must be at least 1, or None for one thread per CPU; got {shown}"
    ))
}

/// Runs `f` on the kept pool for `num_threads` (see `threads`), so that the parallel
/// iterators inside it use that pool's threads. Called from a thread of a pool already, it
/// runs `f` there, on that pool, whatever `num_threads` says.
pub fn run<R: Send>(num_threads: Option<usize>, f: impl FnOnce() -> R + Send) -> Result<R> {
    let n = threads(num_threads)?;
    if rayon::current_thread_index().is_some() {
        return Ok(f());
    }
    Ok(get(n)?.install(f))
}

/// How often `run_cancellable` asks its hook while the work runs.
const WATCH_INTERVAL: Duration = Duration::from_millis(20);

/// Runs `f` on the kept pool for `num_threads`, like `run`, while the calling thread asks
/// `cancel` every `WATCH_INTERVAL`; once it says stop, the flag `f` was given is raised, and
/// `f` is to check it between its steps (`Stop::check`) and end with `Interrupted`. The hook
/// is asked on the calling thread only (see `cancel`). Called from a thread of a pool
/// already, `f` runs there and the hook is never asked.
pub fn run_cancellable<R: Send>(
    num_threads: Option<usize>,
    cancel: Option<Cancel<'_>>,
    f: impl FnOnce(&Stop) -> Result<R> + Send,
) -> Result<R> {
    let stop = Stop::new();
    let cancel = match cancel {
        Some(cancel) if rayon::current_thread_index().is_none() => cancel,
        _ => return run(num_threads, || f(&stop))?,
    };
    let pool = get(threads(num_threads)?)?;
    let (done_tx, done_rx) = mpsc::channel();
    let stop = &stop;
    pool.in_place_scope(|scope| {
        scope.spawn(move |_| {
            let _ = done_tx.send(f(stop));
        });
        loop {
            match done_rx.recv_timeout(WATCH_INTERVAL) {
                Ok(result) => return result,
                Err(RecvTimeoutError::Timeout) => {
                    if !stop.is_raised() && cancel() {
                        stop.raise();
                    }
                }
                // `f` panicked without sending: the scope raises that panic on return,
                // so this value is never seen.
                Err(RecvTimeoutError::Disconnected) => return Err(BpeError::Interrupted),
            }
        }
    })
}

/// The pools this process started, most recently used last.
struct Pools {
    pid: u32,
    kept: Mutex<Vec<(usize, Arc<ThreadPool>)>>,
}

/// This process's `Pools`. Never freed: one left by a parent process is leaked on purpose,
/// because its threads do not exist here and its lock may have been held at the fork.
static POOLS: AtomicPtr<Pools> = AtomicPtr::new(std::ptr::null_mut());

fn pools() -> &'static Pools {
    let pid = std::process::id();
    loop {
        let current = POOLS.load(Ordering::Acquire);
        // SAFETY: a non-null pointer here came from `Box::into_raw` below and is never freed.
        if let Some(pools) = unsafe { current.as_ref() } {
            if pools.pid == pid {
                return pools;
            }
        }
        let fresh = Box::into_raw(Box::new(Pools {
            pid,
            kept: Mutex::new(Vec::new()),
        }));
        match POOLS.compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire) {
            // SAFETY: just stored, never freed.
            Ok(_) => return unsafe { &*fresh },
            // Another thread replaced it first: use theirs.
            // SAFETY: `fresh` was never shared.
            Err(_) => drop(unsafe { Box::from_raw(fresh) }),
        }
    }
}

/// The kept pool of `n` threads, started on first use.
pub(crate) fn get(n: usize) -> Result<Arc<ThreadPool>> {
    let pools = pools();
    let mut kept = pools.kept.lock().unwrap_or_else(PoisonError::into_inner);
    // Where `n` threads cannot start, half as many (see the module's notes).
    let mut size = n;
    let pool = loop {
        if let Some(i) = kept.iter().position(|&(kept_size, _)| kept_size == size) {
            let entry = kept.remove(i);
            let pool = Arc::clone(&entry.1);
            kept.push(entry);
            return Ok(pool);
        }
        match rayon::ThreadPoolBuilder::new()
            .num_threads(size)
            .thread_name(|i| format!("bpelm-{i}"))
            .build()
        {
            Ok(pool) => break Arc::new(pool),
            Err(_) if size > 1 => size /= 2,
            Err(e) => return Err(start_error(n, &e)),
        }
    };
    kept.push((size, Arc::clone(&pool)));
    let dropped = (kept.len() > KEPT).then(|| kept.remove(0));
    drop(kept);
    // Dropping a pool only tells its threads to end once idle; outside the lock anyway.
    drop(dropped);
    Ok(pool)
}

/// Bytes of a worker's stack: rayon's threads get std's default.
const STACK_BYTES: usize = 2 << 20;

/// The error for a pool of `n` threads that could not start even one.
fn start_error(n: usize, err: &rayon::ThreadPoolBuildError) -> BpeError {
    use std::error::Error;
    let io = err
        .source()
        .and_then(|e| e.downcast_ref::<std::io::Error>());
    match io.map(std::io::Error::kind) {
        // What `pthread_create` says (EAGAIN) when the stack cannot be mapped.
        Some(std::io::ErrorKind::WouldBlock | std::io::ErrorKind::OutOfMemory) => {
            BpeError::OutOfMemory {
                what: "the stack of a worker thread",
                bytes: STACK_BYTES,
            }
        }
        _ => BpeError::InvalidArgument(format!("cannot start {n} threads: {err}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_refused_and_large_counts_are_capped() {
        let err = threads(Some(0)).unwrap_err().to_string();
        assert!(err.contains("num_threads must be at least 1"), "{err}");
        assert_eq!(threads(Some(1)).unwrap(), 1);
        assert_eq!(threads(Some(10_000)).unwrap(), max_threads());
        assert_eq!(threads(Some(usize::MAX)).unwrap(), max_threads());
        let default = threads(None).unwrap();
        assert!((1..=max_threads()).contains(&default));
    }

    #[test]
    fn only_the_last_sizes_are_kept() {
        // Sizes no other test asks for, so that tests running beside this one only push
        // pools out sooner.
        let first = get(11).unwrap();
        get(12).unwrap();
        get(13).unwrap();
        let again = get(11).unwrap();
        assert!(
            !Arc::ptr_eq(&first, &again),
            "size 11 was pushed out by 12 and 13"
        );
        let kept = pools().kept.lock().unwrap();
        assert!(kept.len() <= KEPT, "{} pools kept", kept.len());
    }

    #[test]
    fn a_cancelled_run_raises_the_flag_and_ends_interrupted() {
        use std::sync::atomic::AtomicUsize;
        let asked = AtomicUsize::new(0);
        let cancel = || asked.fetch_add(1, Ordering::Relaxed) >= 2;
        let result = run_cancellable(Some(2), Some(&cancel), |stop| -> Result<()> {
            loop {
                stop.check()?;
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        assert!(matches!(result, Err(BpeError::Interrupted)), "{result:?}");
        assert!(asked.load(Ordering::Relaxed) >= 3);
        // Not cancelled, or no hook: the work's own result.
        let never = || false;
        assert_eq!(
            run_cancellable(Some(1), Some(&never), |_| Ok(7)).unwrap(),
            7
        );
        assert_eq!(run_cancellable(None, None, |_| Ok(8)).unwrap(), 8);
        let err = run_cancellable(Some(1), Some(&never), |_| -> Result<()> {
            Err(BpeError::InvalidArgument("bad".into()))
        });
        assert!(err.is_err_and(|e| e.to_string() == "bad"));
        assert!(run_cancellable(Some(0), Some(&never), |_| Ok(())).is_err());
    }

    #[test]
    fn run_installs_the_pool_and_nests_in_place() {
        let (outer, inner) = run(Some(2), || {
            let outer = rayon::current_num_threads();
            let inner = run(Some(1), rayon::current_num_threads).unwrap();
            (outer, inner)
        })
        .unwrap();
        assert_eq!(outer, 2.min(max_threads()));
        assert_eq!(inner, outer);
        assert!(run(Some(0), || ()).is_err());
    }
}
