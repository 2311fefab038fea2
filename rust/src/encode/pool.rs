//! Thread pools kept across calls, one per requested size.
//!
//! The encoder's pretoken cache lives in each worker thread, so a pool built afresh for
//! every call would start every call with cold caches. Pools are kept for the life of the
//! process instead (a handful of sizes at most in practice).

use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{BpeError, Result};

type Pools = Mutex<Vec<(usize, Arc<rayon::ThreadPool>)>>;

static POOLS: OnceLock<Pools> = OnceLock::new();

/// Runs `f` on a kept pool of `num_threads` threads (`None` or 0: rayon's global pool).
pub(crate) fn in_pool<R: Send>(
    num_threads: Option<usize>,
    f: impl FnOnce() -> R + Send,
) -> Result<R> {
    let n = match num_threads {
        None | Some(0) => return Ok(f()),
        Some(n) => n,
    };
    let pool = {
        let mut pools = POOLS
            .get_or_init(|| Mutex::new(Vec::new()))
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match pools.iter().find(|(size, _)| *size == n) {
            Some((_, pool)) => Arc::clone(pool),
            None => {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("bpelm-encode-{i}"))
                    .build()
                    .map_err(|e| {
                        BpeError::InvalidArgument(format!("cannot start {n} threads: {e}"))
                    })?;
                let pool = Arc::new(pool);
                pools.push((n, Arc::clone(&pool)));
                pool
            }
        }
    };
    Ok(pool.install(f))
}
