//! Fallible allocation for buffers whose size the input decides.
//!
//! Rust aborts the process when an allocation fails (`handle_alloc_error`), and a Python
//! caller under `RLIMIT_AS` (or a small container) must get a `MemoryError` instead. So
//! every buffer that grows with the input is reserved here first, with `try_reserve`, and a
//! failure becomes `BpeError::OutOfMemory`. Allocations of a small fixed size (error
//! messages, the pool's bookkeeping, per-pretoken scratch bounded by the cache's limits)
//! stay infallible: making them fallible would touch every line for no real gain, since a
//! process that cannot get a few KB more fails at its next step anyway.
//!
//! Vectors grow through `try_reserve` / `try_push`, hash maps through `try_room` /
//! `try_entry`: `Vec::push`, `HashMap::insert` and `HashMap::entry` grow their buffer
//! infallibly when it is full, so these make the room first, fallibly, and the infallible
//! call that follows then finds it.
//!
//! A large reservation can succeed and leave almost nothing, and then the next small fixed
//! allocation aborts after all. So a call that runs in steps checks, after each step that
//! took memory the input sized (a file mapped, words counted), that `HEADROOM` is still to
//! be had (`check_headroom`), and fails there with `OutOfMemory` if not. Short of memory,
//! glibc's malloc maps a whole page for each small allocation of a thread, so a step must
//! not make many small ones infallibly either (hundreds take the whole `HEADROOM`).

use std::collections::hash_map::{Entry, HashMap};
use std::hash::{BuildHasher, Hash};

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

/// A vector of `len` copies of `value`.
pub fn try_filled<T: Clone>(len: usize, value: T, what: &'static str) -> Result<Vec<T>> {
    let mut v = try_with_capacity(len, what)?;
    v.resize(len, value);
    Ok(v)
}

/// A copy of `items`.
pub fn try_to_vec<T: Clone>(items: &[T], what: &'static str) -> Result<Vec<T>> {
    let mut v = try_with_capacity(items.len(), what)?;
    v.extend_from_slice(items);
    Ok(v)
}

/// Pushes `item` onto `v`, growing it fallibly when full (by doubling, as `push` would).
#[inline(always)]
pub fn try_push<T>(v: &mut Vec<T>, item: T, what: &'static str) -> Result<()> {
    if v.len() == v.capacity() {
        grow_one(v, what)?;
    }
    v.push(item);
    Ok(())
}

/// The rare path of `try_push`, kept out of the loops that push.
#[cold]
#[inline(never)]
fn grow_one<T>(v: &mut Vec<T>, what: &'static str) -> Result<()> {
    try_reserve(v, 1, what)
}

/// Makes room for one more entry in `map`, fallibly, so that the `insert` or `entry` that
/// follows cannot grow it. A full map grows as an insert would grow it (doubling, or a
/// rehash in place where removed entries left room).
#[inline]
pub fn try_room<K: Eq + Hash, V, S: BuildHasher>(
    map: &mut HashMap<K, V, S>,
    what: &'static str,
) -> Result<()> {
    // `capacity` is the entries the map holds without growing, so below it nothing grows.
    if map.len() == map.capacity() {
        map.try_reserve(1)
            .map_err(|_| out_of_memory::<(K, V)>(map.len().saturating_mul(2), what))?;
    }
    Ok(())
}

/// `map.entry(key)`, with room made first for the entry to be inserted (`try_room`).
#[inline]
pub fn try_entry<'m, K: Eq + Hash, V, S: BuildHasher>(
    map: &'m mut HashMap<K, V, S>,
    key: K,
    what: &'static str,
) -> Result<Entry<'m, K, V>> {
    try_room(map, what)?;
    Ok(map.entry(key))
}

/// Memory kept to be had between the steps of a call, for their small fixed allocations.
pub const HEADROOM: usize = 1 << 20;

/// `OutOfMemory` (for `what`, the step just done) unless `HEADROOM` more bytes can still be
/// allocated. Only address space is taken, for a moment: the pages are never touched.
pub fn check_headroom(what: &'static str) -> Result<()> {
    check_room(HEADROOM, what)
}

/// `OutOfMemory` (for `what`) unless `bytes` bytes can be allocated now: for work whose
/// allocations are infallible but sized by the input (merging one long pretoken), asked
/// before it starts. Only address space is taken, for a moment: the pages are never touched.
pub fn check_room(bytes: usize, what: &'static str) -> Result<()> {
    let probe = try_with_capacity::<u8>(bytes, what)?;
    // Kept opaque, or the compiler may drop an allocation that is never used.
    std::hint::black_box(&probe);
    Ok(())
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
        assert!(try_filled(1 << 40, 0u64, "counts").is_err());
        assert!(check_headroom("test").is_ok());
        assert_eq!(try_to_vec(b"ab", "bytes").ok(), Some(b"ab".to_vec()));
        assert_eq!(try_filled(3, 7u8, "counts").ok(), Some(vec![7, 7, 7]));
    }

    #[test]
    fn pushes_and_entries_make_room_first() {
        let mut v = Vec::new();
        let mut map: HashMap<u64, u64> = HashMap::new();
        for i in 0..1000 {
            try_push(&mut v, i, "test").expect("room");
            *try_entry(&mut map, i % 300, "test")
                .expect("room")
                .or_insert(0) += 1;
            assert!(map.len() <= map.capacity());
        }
        assert_eq!(v.len(), 1000);
        assert_eq!(map.len(), 300);
        assert_eq!(map[&0], 4);
        // Removals leave room that `try_room` reuses rather than growing for ever.
        for i in 0..100_000u64 {
            map.remove(&(i % 300));
            try_room(&mut map, "test").expect("room");
            map.insert(i % 300, i);
        }
        assert!(map.capacity() < 4096, "{}", map.capacity());
    }
}
