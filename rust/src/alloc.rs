//! Fallible allocation for buffers whose size the input decides.
//!
//! Rust aborts the process when an allocation fails (`handle_alloc_error`), and a Python
//! caller under `RLIMIT_AS` (or a small container) must get a `MemoryError` instead. So
//! every buffer that grows with the input is reserved here first, with `try_reserve`, and a
//! failure becomes `BpeError::OutOfMemory`. Allocations of a small fixed size (error
//! messages, the pool's bookkeeping, per-pretoken scratch bounded by the cache's limits)
//! stay infallible: making them fallible would touch every line for no real gain, since a
//! process that cannot get a few KB more fails at its next step anyway.

use crate::error::{BpeError, Result};

/// Makes room for `additional` more elements in `v`, or says what could not be had.
pub fn try_reserve<T>(v: &mut Vec<T>, additional: usize, what: &'static str) -> Result<()> {
    v.try_reserve(additional)
        .map_err(|_| out_of_memory::<T>(v.len().saturating_add(additional), what))
}

/// Like `try_reserve`, without the amortizing slack (for a buffer filled once).
pub fn try_reserve_exact<T>(v: &mut Vec<T>, additional: usize, what: &'static str) -> Result<()> {
    v.try_reserve_exact(additional)
        .map_err(|_| out_of_memory::<T>(v.len().saturating_add(additional), what))
}

/// An empty vector with room for `capacity` elements.
pub fn try_with_capacity<T>(capacity: usize, what: &'static str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    try_reserve_exact(&mut v, capacity, what)?;
    Ok(v)
}

/// The error for `elements` elements of `T` that could not be allocated.
pub fn out_of_memory<T>(elements: usize, what: &'static str) -> BpeError {
    BpeError::OutOfMemory {
        what,
        bytes: elements.saturating_mul(std::mem::size_of::<T>().max(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_impossible_reservation_is_an_error_not_an_abort() {
        let mut v: Vec<u64> = vec![1, 2, 3];
        let err = try_reserve(&mut v, usize::MAX / 4, "test ids").expect_err("too large");
        assert!(matches!(
            err,
            BpeError::OutOfMemory {
                what: "test ids",
                ..
            }
        ));
        assert!(err.to_string().contains("out of memory"), "{err}");
        assert_eq!(v, [1, 2, 3]);
        assert!(try_with_capacity::<u32>(1 << 40, "ids").is_err());
        assert!(try_with_capacity::<u32>(10, "ids").is_ok_and(|v| v.capacity() >= 10));
    }
}
