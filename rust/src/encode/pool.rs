//! Thread pools kept across calls, one per requested size.
//!
//! The encoder's pretoken cache lives in each worker thread, so a pool built afresh for
//! every call would start every call with cold caches. Pools are kept for the life of the
//! process instead (a handful of sizes at most in practice).

use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{BpeError, Result};

type Pools = Mutex<Vec<(usize, Arc<rayon::ThreadPool>)>>;

static POOLS: OnceLock<Pools> = OnceLock::new();

/// The threads a call with `num_threads` runs on (`None` or 0: rayon's global pool's).
pub(crate) fn threads(num_threads: Option<usize>) -> usize {
    match num_threads {
        Some(n) if n > 0 => n,
        _ => rayon::current_num_threads(),
    }
}

/// Runs `f` on a kept pool of `num_threads` threads (`None` or 0: rayon's global pool).
/// For the bindings' parallel transcoding.
#[cfg(feature = "python")]
pub(crate) fn in_pool<R: Send>(
    num_threads: Option<usize>,
    f: impl FnOnce() -> R + Send,
) -> Result<R> {
    match num_threads {
        None | Some(0) => Ok(f()),
        Some(n) => Ok(get(n)?.install(f)),
    }
}

/// The kept pool of `n` threads, started on first use.
pub(crate) fn get(n: usize) -> Result<Arc<rayon::ThreadPool>> {
    let mut pools = POOLS
        .get_or_init(|| Mutex::new(Vec::new()))
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, pool)) = pools.iter().find(|(size, _)| *size == n) {
        return Ok(Arc::clone(pool));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("bpelm-encode-{i}"))
        .build()
        .map_err(|e| BpeError::InvalidArgument(format!("cannot start {n} threads: {e}")))?;
    let pool = Arc::new(pool);
    pools.push((n, Arc::clone(&pool)));
    Ok(pool)
}
