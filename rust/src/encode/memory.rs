//! Large buffers in huge pages where the system has them: the word cache's table and the
//! ids of a long text.
//!
//! Both run to tens of MB, and every 4 KB page of fresh memory costs a page fault on first
//! touch (a few microseconds each on a virtual machine: a tenth of a cold encode, measured).
//! From 2 MB on they are advised for transparent huge pages on Linux, so they fault once
//! per 2 MB instead. `ZeroedArray` is an anonymous mapping aligned to 2 MB, which may reserve
//! room to grow in place; `id_buffer` is an ordinary `Vec` whose whole 2 MB pages are advised.

use crate::alloc;
use crate::error::Result;
use crate::TokenId;

/// Arrays at least this large ask for huge pages.
const HUGE_BYTES: usize = 2 << 20;

enum Storage<T> {
    Heap(Vec<T>),
    /// The mapping and the offset of the array in it (the first 2 MB boundary).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    Mapped(memmap2::MmapMut, usize),
}

/// A fixed-length array of `T`, zero-filled when made. `T` must be a type for which all-zero
/// bytes are a valid value equal to `T::default()` (plain integers and structs of them).
pub(crate) struct ZeroedArray<T: Copy + Default> {
    storage: Storage<T>,
    len: usize,
}

impl<T: Copy + Default> ZeroedArray<T> {
    /// `len` zeroed elements that can grow in place to `room` (see `grow_in_place`). A large
    /// array reserves the address space for `room` elements; only what is touched costs
    /// memory.
    pub(crate) fn with_room(len: usize, room: usize) -> Self {
        Self::try_with_room(len, room).unwrap_or_else(|| ZeroedArray {
            storage: Storage::Heap(vec![T::default(); len]),
            len,
        })
    }

    /// `len` zeroed elements that can grow in place to `room`, or `None` when the memory
    /// cannot be had (for tables that can do without growing: the word cache).
    pub(crate) fn try_with_room(len: usize, room: usize) -> Option<Self> {
        let bytes = len.checked_mul(std::mem::size_of::<T>())?;
        let mapped = if bytes >= HUGE_BYTES {
            map_huge(bytes, room.checked_mul(std::mem::size_of::<T>())?)
        } else {
            None
        };
        let storage = match mapped {
            Some(mapped) => mapped,
            None => {
                let mut v = Vec::new();
                v.try_reserve_exact(len).ok()?;
                v.resize(len, T::default());
                Storage::Heap(v)
            }
        };
        Some(ZeroedArray { storage, len })
    }

    /// Lengthens the array to `len` elements where its reserved room holds them (the
    /// elements added are zero: the room past the length is never written); false, and
    /// nothing changed, where it does not. The elements stay where they are, so growing
    /// touches no memory but the new elements', when they are first written.
    pub(crate) fn grow_in_place(&mut self, len: usize) -> bool {
        let fits = match &self.storage {
            Storage::Heap(_) => false,
            Storage::Mapped(map, offset) => {
                len >= self.len && len <= (map.len() - offset) / std::mem::size_of::<T>()
            }
        };
        if fits {
            self.len = len;
        }
        fits
    }
}

/// An anonymous mapping of `room` bytes (at least `bytes`) from a 2 MB boundary, advised for
/// huge pages, holding an array of `bytes` bytes.
#[cfg(target_os = "linux")]
fn map_huge<T>(bytes: usize, room: usize) -> Option<Storage<T>> {
    let room = room.max(bytes);
    let map = memmap2::MmapMut::map_anon(room.checked_add(HUGE_BYTES)?).ok()?;
    let offset = (map.as_ptr() as usize).next_multiple_of(HUGE_BYTES) - map.as_ptr() as usize;
    advise_huge(map[offset..].as_ptr(), room);
    Some(Storage::Mapped(map, offset))
}

#[cfg(not(target_os = "linux"))]
fn map_huge<T>(_bytes: usize, _room: usize) -> Option<Storage<T>> {
    None
}

impl<T: Copy + Default> std::ops::Deref for ZeroedArray<T> {
    type Target = [T];

    #[inline(always)]
    fn deref(&self) -> &[T] {
        match &self.storage {
            Storage::Heap(v) => v,
            // SAFETY: the mapping holds `len` elements from `offset`, which is aligned for
            // `T` (a 2 MB boundary), and zero bytes are a valid `T` (the type's contract).
            Storage::Mapped(map, offset) => unsafe {
                std::slice::from_raw_parts(map.as_ptr().add(*offset).cast::<T>(), self.len)
            },
        }
    }
}

impl<T: Copy + Default> std::ops::DerefMut for ZeroedArray<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        let len = self.len;
        match &mut self.storage {
            Storage::Heap(v) => v,
            // SAFETY: as in `deref`; the mapping is borrowed mutably with `self`.
            Storage::Mapped(map, offset) => unsafe {
                std::slice::from_raw_parts_mut(map.as_mut_ptr().add(*offset).cast::<T>(), len)
            },
        }
    }
}

/// An empty vector with room for `capacity` ids, in huge pages where it is large enough;
/// `OutOfMemory` when that much cannot be had.
pub(crate) fn id_buffer(capacity: usize) -> Result<Vec<TokenId>> {
    let v: Vec<TokenId> = alloc::try_with_capacity(capacity, "token ids")?;
    advise_huge(
        v.as_ptr().cast(),
        v.capacity() * std::mem::size_of::<TokenId>(),
    );
    Ok(v)
}

/// `len` zero bytes, in huge pages where that is large enough. (A large zeroed allocation
/// comes straight from the system, already zero, and is advised before it is touched.)
/// For the transcoded text of long batch texts.
pub(crate) fn zeroed_bytes(len: usize) -> Result<Vec<u8>> {
    let mut v: Vec<u8> = alloc::try_with_capacity(len, "transcoded text")?;
    // Advised before the zeros touch it, so that it faults in whole huge pages.
    advise_huge(v.as_ptr(), v.capacity());
    v.resize(len, 0u8);
    Ok(v)
}

/// Advises the whole 2 MB pages of `bytes` bytes from `start` for transparent huge pages.
/// Advice only: without huge pages the memory works the same, page by page.
#[cfg(target_os = "linux")]
fn advise_huge(start: *const u8, bytes: usize) {
    if bytes < HUGE_BYTES {
        return;
    }
    let first = (start as usize).next_multiple_of(HUGE_BYTES);
    let end = (start as usize + bytes) / HUGE_BYTES * HUGE_BYTES;
    if end > first {
        // SAFETY: the range lies inside an allocation this process owns, and MADV_HUGEPAGE
        // changes only how it is backed, never its contents; a failure changes nothing.
        unsafe {
            libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge(_start: *const u8, _bytes: usize) {}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn small_and_huge_arrays_start_zeroed_and_keep_what_is_written() {
        for len in [0usize, 1, 1000, HUGE_BYTES / 8 + 3] {
            let mut a = ZeroedArray::<u64>::with_room(len, len);
            assert_eq!(a.len(), len);
            assert!(a.iter().all(|&x| x == 0));
            for (i, x) in a.iter_mut().enumerate() {
                *x = i as u64 * 3;
            }
            assert!(a.iter().enumerate().all(|(i, &x)| x == i as u64 * 3));
        }
    }

    #[test]
    fn large_arrays_grow_in_place_within_their_room_keeping_their_elements() {
        let len = HUGE_BYTES / 8;
        let mut a = ZeroedArray::<u64>::with_room(len, 4 * len);
        for (i, x) in a.iter_mut().enumerate() {
            *x = i as u64 + 1;
        }
        let start = a.as_ptr();
        assert!(a.grow_in_place(2 * len));
        assert_eq!((a.len(), a.as_ptr()), (2 * len, start));
        assert!(a[..len].iter().enumerate().all(|(i, &x)| x == i as u64 + 1));
        assert!(a[len..].iter().all(|&x| x == 0));
        assert!(a.grow_in_place(4 * len));
        assert!(a[2 * len..].iter().all(|&x| x == 0));
        // Past the room (and the 2 MB kept for alignment, which it may use), and shorter,
        // it does not grow.
        assert!(!a.grow_in_place(4 * len + HUGE_BYTES / 8 + 1));
        assert!(!a.grow_in_place(len));
        assert_eq!(a.len(), 4 * len);
        // Small arrays live on the heap and do not grow in place.
        let mut small = ZeroedArray::<u64>::with_room(10, 1000);
        assert!(!small.grow_in_place(20));
        assert_eq!(small.len(), 10);
        // Without the memory, `try_with_room` says so.
        assert!(ZeroedArray::<u64>::try_with_room(1 << 60, 1 << 60).is_none());
    }

    #[test]
    fn id_buffers_of_any_size_hold_what_is_pushed() {
        for capacity in [0usize, 10, 3 * HUGE_BYTES / 4 + 17] {
            let mut v = id_buffer(capacity).unwrap();
            assert!(v.is_empty() && v.capacity() >= capacity);
            v.extend(0..capacity as TokenId);
            assert!(v.iter().enumerate().all(|(i, &x)| x == i as TokenId));
        }
    }
}
