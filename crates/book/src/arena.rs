//! Pre-allocated order slots, the intrusive FIFO links between them, and the order-id index.
//!
//! Owns: every resting order's data. Slots are allocated once at construction (`capacity`
//! slots, 40 bytes each) and recycled through a free list threaded through the `next` field,
//! so placing or removing an order never touches the heap. Orders refer to each other by
//! `u32` slot index, never by pointer, so there is no `unsafe` here.
//!
//! The id index is an open-addressing table (at most half full, Robin Hood linear probing,
//! backward-shift deletion so there are no tombstones) whose buckets hold a slot index and, as a
//! tag, the entry's home bucket (its low 32 bits); keys live only in the slots. A probe reads a
//! slot only when the home matches, and deletion shifts entries back without reading any slot.
//! Robin Hood insertion keeps every probe run ordered by home, so deletion stops at the first
//! entry that sits at its home (usually the next bucket) instead of scanning to the end of
//! the run. The home bucket keeps the low 3 bits of the id and hashes the rest, so ids that
//! are consecutive (the common case: a venue or a strategy numbering its orders) share a
//! 64-byte line of the table instead of costing one cache miss each, while strided or random
//! ids still spread evenly. With the slot this is about 57 bytes per order of capacity.
//!
//! The home of an id is a pure function of the id, so a caller computes it once per operation
//! (`home`, then `find_from` and `alloc`), and a cancel that found its entry frees that bucket
//! directly (`find`, then `release`) instead of probing again.
//!
//! Invariants: a slot is free iff its `order_id` is 0; every used slot is in the index exactly
//! once and in exactly one level list; `used + free-list length == capacity`.
//!
//! Cost: alloc/free O(1); index get/insert/remove O(1) expected (load factor <= 0.5). On Linux
//! both arrays ask for transparent huge pages before they are first touched: with 1M slots
//! they span about 57 MB, and random access over that with 4 KiB pages pays a TLB miss on top
//! of the cache miss on most cancels.

use crate::types::{Side, Stp};

/// "No slot": the end of a list.
pub(crate) const NIL: u32 = u32::MAX;

/// One order slot. `repr(C)` keeps it at 40 bytes (checked by a test).
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub(crate) struct Slot {
    pub order_id: u64,
    pub leaves: u64,
    pub account: u32,
    pub prev: u32,
    pub next: u32,
    /// Index of the order's level in its side's level pool (`NIL` until placed); the price
    /// lives there, once per level.
    pub level: u32,
    pub side: Side,
    pub stp: Stp,
    pub post_only: bool,
}

impl Slot {
    const EMPTY: Slot = Slot {
        order_id: 0,
        leaves: 0,
        account: 0,
        prev: NIL,
        next: NIL,
        level: NIL,
        side: Side::Buy,
        stp: Stp::None,
        post_only: false,
    };
}

/// A `Vec` of `len` copies of `fill`, whose memory is advised to use transparent huge pages
/// before it is first written (the advice must precede the first touch to take effect).
fn huge_vec<T: Clone>(len: usize, fill: T) -> Vec<T> {
    let mut v: Vec<T> = Vec::with_capacity(len);
    advise_huge_pages(v.as_mut_ptr() as usize, len * std::mem::size_of::<T>());
    v.resize(len, fill);
    v
}

/// Ask the kernel to back `[addr, addr + len)` with 2 MiB pages where it can. Advice only:
/// failure (no THP, other kernels) changes nothing but speed.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // one madvise call; see SAFETY below
fn advise_huge_pages(addr: usize, len: usize) {
    const HUGE: usize = 2 << 20;
    let start = (addr + HUGE - 1) & !(HUGE - 1);
    let end = (addr + len) & !(HUGE - 1);
    if end > start {
        // SAFETY: [start, end) lies inside an allocation this module owns (rounded inwards to
        // whole huge pages); MADV_HUGEPAGE only changes how the kernel backs those pages, never
        // their contents or validity, so no Rust invariant depends on the call or its result.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_addr: usize, _len: usize) {}

/// Hint the CPU to pull the cache line holding `p` into L1. Never faults and changes nothing
/// observable: an invalid or unmapped address is simply not fetched.
#[inline(always)]
#[allow(unsafe_code)] // the prefetch intrinsic is an unsafe call; see SAFETY below
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint: it reads no Rust-visible memory, cannot fault even on an
    // invalid address, and SSE (which provides it) is part of the x86_64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Slots plus the id index.
pub(crate) struct Arena {
    pub slots: Vec<Slot>,
    free_head: u32,
    used: usize,
    /// Buckets: `home << 32 | slot` (home truncated to 32 bits), or `EMPTY_BUCKET`.
    table: Vec<u64>,
    mask: usize,
    /// Shift that keeps the top `log2(buckets) - GROUP_BITS` bits of the group hash.
    shift: u32,
}

const EMPTY_BUCKET: u64 = u64::MAX;
/// log2 of the ids kept together: 8 buckets of 8 bytes fill one cache line.
const GROUP_BITS: u32 = 3;

impl Arena {
    /// `capacity` slots (1 ..= u32::MAX - 1).
    pub fn new(capacity: usize) -> Self {
        assert!(
            capacity > 0 && capacity < NIL as usize,
            "capacity out of range"
        );
        let mut slots = huge_vec(capacity, Slot::EMPTY);
        for (i, s) in slots.iter_mut().enumerate() {
            s.next = if i + 1 < capacity {
                (i + 1) as u32
            } else {
                NIL
            };
        }
        let buckets = (capacity * 2)
            .next_power_of_two()
            .max(1 << (GROUP_BITS + 1));
        Arena {
            slots,
            free_head: 0,
            used: 0,
            table: huge_vec(buckets, EMPTY_BUCKET),
            mask: buckets - 1,
            shift: 64 - (buckets.trailing_zeros() - GROUP_BITS),
        }
    }

    #[inline]
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    pub fn used(&self) -> usize {
        self.used
    }

    #[inline]
    pub fn is_full(&self) -> bool {
        self.free_head == NIL
    }

    /// Bytes held by slots and index, for the memory-per-order figure.
    pub fn footprint_bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<Slot>()
            + self.table.len() * std::mem::size_of::<u64>()
    }

    /// Take a free slot, fill it with `slot` as given (links and level included), and index
    /// it under `slot.order_id`, whose home bucket is `home` (from [`Arena::home`]). The caller
    /// has checked `!is_full()` and that the id is not indexed.
    #[inline]
    pub fn alloc(&mut self, slot: Slot, home: usize) -> u32 {
        let idx = self.free_head;
        debug_assert!(idx != NIL, "alloc on a full arena");
        debug_assert_eq!(home, self.home(slot.order_id), "alloc with a wrong home");
        let s = &mut self.slots[idx as usize];
        self.free_head = s.next;
        *s = slot;
        self.used += 1;
        self.index_insert(home, idx);
        idx
    }

    /// Return a slot (already unlinked from its level) to the free list and unindex it.
    #[inline]
    pub fn free(&mut self, idx: u32) {
        // The entry of a used slot is the one bucket holding its slot number: probe for that,
        // without reading any other slot.
        let mut i = self.home(self.slots[idx as usize].order_id);
        loop {
            let b = self.table[i];
            if b as u32 == idx {
                self.delete_bucket(i);
                break;
            }
            if b == EMPTY_BUCKET {
                debug_assert!(false, "freeing a slot whose id is not indexed");
                break;
            }
            i = (i + 1) & self.mask;
        }
        self.push_free(idx);
    }

    /// [`Arena::free`] for a slot whose index entry sits in bucket `pos` (as [`Arena::find`]
    /// returned it, with no index change since).
    #[inline]
    pub fn release(&mut self, idx: u32, pos: usize) {
        debug_assert_eq!(self.table[pos] as u32, idx, "release with a stale bucket");
        self.delete_bucket(pos);
        self.push_free(idx);
    }

    /// Put slot `idx` on the free list.
    #[inline]
    fn push_free(&mut self, idx: u32) {
        let s = &mut self.slots[idx as usize];
        s.order_id = 0;
        s.next = self.free_head;
        self.free_head = idx;
        self.used -= 1;
    }

    /// Home bucket: the group of `id >> GROUP_BITS` (Fibonacci hashing), then the low bits.
    /// A pure function of the id (the table never changes size), so a caller may compute it
    /// once and hand it to [`Arena::find_from`] and [`Arena::alloc`].
    #[inline]
    pub fn home(&self, id: u64) -> usize {
        let group = ((id >> GROUP_BITS).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize;
        ((group << GROUP_BITS) | (id as usize & ((1 << GROUP_BITS) - 1))) & self.mask
    }

    /// The bucket word for `slot` with home bucket `home`.
    #[inline]
    fn bucket(home: usize, slot: u32) -> u64 {
        ((home as u32 as u64) << 32) | slot as u64
    }

    /// Home bucket of the entry stored in `b`. The tag holds it whole unless the table has more
    /// than 2^32 buckets (over 2^31 orders of capacity), where the slot's id is rehashed (out of
    /// line, so the probe loops stay small).
    #[inline(always)]
    fn home_of(&self, b: u64) -> usize {
        if self.mask <= u32::MAX as usize {
            (b >> 32) as usize
        } else {
            self.home_of_slot(b)
        }
    }

    #[cold]
    #[inline(never)]
    fn home_of_slot(&self, b: u64) -> usize {
        self.home(self.slots[b as u32 as usize].order_id)
    }

    /// Prefetch the home bucket of `id` (first stage of a batch lookahead).
    #[inline]
    pub fn prefetch_bucket(&self, id: u64) {
        prefetch(&self.table[self.home(id)]);
    }

    /// Read the home bucket of `id` and, if its tag matches, prefetch that slot (second stage:
    /// call it once the bucket has had time to arrive).
    #[inline]
    pub fn prefetch_slot(&self, id: u64) {
        let home = self.home(id);
        let b = self.table[home];
        if b != EMPTY_BUCKET && b >> 32 == home as u32 as u64 {
            prefetch(&self.slots[b as u32 as usize]);
        }
    }

    /// Slot of a resting order.
    #[inline]
    pub fn get(&self, id: u64) -> Option<u32> {
        self.find(id).map(|(slot, _)| slot)
    }

    /// Slot of a resting order and the bucket of its index entry.
    #[inline]
    pub fn find(&self, id: u64) -> Option<(u32, usize)> {
        self.find_from(id, self.home(id))
    }

    /// [`Arena::find`] with the id's home bucket already computed.
    #[inline]
    pub fn find_from(&self, id: u64, home: usize) -> Option<(u32, usize)> {
        if id == 0 {
            return None;
        }
        let tag = home as u32 as u64;
        let mut i = home;
        loop {
            let b = self.table[i];
            if b == EMPTY_BUCKET {
                return None;
            }
            let slot = b as u32;
            if b >> 32 == tag && self.slots[slot as usize].order_id == id {
                return Some((slot, i));
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Robin Hood insertion: walk from the home bucket; an entry that sits closer to its own
    /// home than the carried one is to its home gives up its bucket and is carried on. Every
    /// probe run thus stays ordered by home, which lets deletion stop early.
    #[inline(always)]
    fn index_insert(&mut self, home: usize, idx: u32) {
        let mut i = home;
        let mut carried = Self::bucket(home, idx);
        let mut dist = 0usize;
        loop {
            let b = self.table[i];
            if b == EMPTY_BUCKET {
                self.table[i] = carried;
                return;
            }
            let b_dist = i.wrapping_sub(self.home_of(b)) & self.mask;
            if b_dist < dist {
                self.table[i] = carried;
                carried = b;
                dist = b_dist;
            }
            i = (i + 1) & self.mask;
            dist += 1;
        }
    }

    /// Empty bucket `i` by backward shift: the entries after it move back one bucket until an
    /// empty bucket or an entry at its home (Robin Hood order guarantees nothing beyond that
    /// entry has a probe path through `i`). With consecutive ids at their homes this stops at
    /// the first step.
    #[inline(always)]
    fn delete_bucket(&mut self, mut i: usize) {
        loop {
            let j = (i + 1) & self.mask;
            let b = self.table[j];
            if b == EMPTY_BUCKET || self.home_of(b) == j {
                break;
            }
            self.table[i] = b;
            i = j;
        }
        self.table[i] = EMPTY_BUCKET;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(id: u64) -> Slot {
        Slot {
            order_id: id,
            ..Slot::EMPTY
        }
    }

    #[test]
    fn slot_is_40_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 40);
    }

    /// Churn the index with ids drawn from `pattern` and compare it with a HashMap after every
    /// step. A small table forces long probe runs and wrap-around.
    fn churn(capacity: usize, steps: u64, pattern: impl Fn(u64) -> u64) {
        let mut a = Arena::new(capacity);
        let mut model = std::collections::HashMap::new();
        let mut universe = Vec::new();
        let mut x: u64 = 1;
        for step in 0..steps {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let id = pattern(x >> 33);
            universe.push(id);
            if let Some(idx) = model.remove(&id) {
                assert_eq!(a.get(id), Some(idx), "step {step}");
                // Both ways out of the index: by slot (a fill) and by found bucket (a cancel).
                if step % 2 == 0 {
                    a.free(idx);
                } else {
                    let (slot, pos) = a.find(id).expect("indexed");
                    a.release(slot, pos);
                }
            } else if !a.is_full() {
                let idx = a.alloc(slot(id), a.home(id));
                model.insert(id, idx);
            }
            if step % 7 == 0 {
                for probe in universe.iter().rev().take(64) {
                    assert_eq!(
                        a.get(*probe),
                        model.get(probe).copied(),
                        "step {step} id {probe}"
                    );
                }
            }
            assert_eq!(a.used(), model.len());
        }
        for probe in &universe {
            assert_eq!(a.get(*probe), model.get(probe).copied(), "final id {probe}");
        }
    }

    #[test]
    fn index_survives_churn_with_colliding_runs() {
        churn(8, 20_000, |r| r % 16 + 1); // ids 1..=16 in a 16-bucket table
    }

    #[test]
    fn index_handles_sequential_strided_and_high_bit_ids() {
        churn(1000, 50_000, |r| r % 1500 + 1); // dense, near-sequential
        churn(1000, 50_000, |r| ((r % 1500) << 8) | 5); // low bits constant (session tags)
        churn(1000, 50_000, |r| ((r % 1500) + 1) << 40); // only high bits vary
        churn(1000, 50_000, |r| r.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1); // random
    }
}
