//! Runs work on a rayon pool of the requested size.

use crate::error::{BpeError, Result};

/// Runs `f` inside a rayon pool of `num_threads` threads (`None` or 0: all cores).
pub fn with_threads<R: Send>(
    num_threads: Option<usize>,
    f: impl FnOnce() -> R + Send,
) -> Result<R> {
    match num_threads {
        None | Some(0) => Ok(f()),
        Some(n) => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| BpeError::InvalidArgument(format!("cannot start {n} threads: {e}")))?;
            Ok(pool.install(f))
        }
    }
}
