//! Pre-allocated order slots, the intrusive FIFO links between them, and the order-id index.
//!
//! Owns: every resting order's data. Slots are allocated once at construction (`capacity`
//! slots, 40 bytes each) and recycled through a free list threaded through the `next` field,
//! so placing or removing an order never touches the heap. Orders refer to each other by
//! `u32` slot index, never by pointer, so there is no `unsafe` here.
//!
//! The id index is an open-addressing table of slot indices (4 bytes a bucket, at most half
//! full, linear probing, backward-shift deletion so there are no tombstones). It stores no keys:
//! a probe compares the order id in the slot it points at, which the caller is about to read
//! anyway. With the slot that makes about 48 bytes per order of capacity, where a
//! `HashMap<u64, u32>` would add 35 bytes on its own.
//!
//! Invariants: a slot is free iff its `order_id` is 0; every used slot is in the index exactly
//! once and in exactly one level list; `used + free-list length == capacity`.
//!
//! Cost: alloc/free O(1); index get/insert/remove O(1) expected (load factor <= 0.5).

use crate::types::{Side, Stp};

/// "No slot": the end of a list.
pub(crate) const NIL: u32 = u32::MAX;

/// One order slot. `repr(C)` keeps it at 40 bytes (checked by a test).
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub(crate) struct Slot {
    pub order_id: u64,
    pub price: i64,
    pub leaves: u64,
    pub account: u32,
    pub prev: u32,
    pub next: u32,
    pub side: Side,
    pub stp: Stp,
    pub post_only: bool,
}

impl Slot {
    const EMPTY: Slot = Slot {
        order_id: 0,
        price: 0,
        leaves: 0,
        account: 0,
        prev: NIL,
        next: NIL,
        side: Side::Buy,
        stp: Stp::None,
        post_only: false,
    };
}

/// Slots plus the id index.
pub(crate) struct Arena {
    pub slots: Vec<Slot>,
    free_head: u32,
    used: usize,
    table: Vec<u32>,
    mask: usize,
    shift: u32,
}

const EMPTY_BUCKET: u32 = u32::MAX;

impl Arena {
    /// `capacity` slots (1 ..= u32::MAX - 1).
    pub fn new(capacity: usize) -> Self {
        assert!(
            capacity > 0 && capacity < NIL as usize,
            "capacity out of range"
        );
        let mut slots = vec![Slot::EMPTY; capacity];
        for (i, s) in slots.iter_mut().enumerate() {
            s.next = if i + 1 < capacity {
                (i + 1) as u32
            } else {
                NIL
            };
        }
        let buckets = (capacity * 2).next_power_of_two().max(16);
        Arena {
            slots,
            free_head: 0,
            used: 0,
            table: vec![EMPTY_BUCKET; buckets],
            mask: buckets - 1,
            shift: 64 - buckets.trailing_zeros(),
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
        self.slots.len() * std::mem::size_of::<Slot>() + self.table.len() * 4
    }

    /// Take a free slot, fill it, and index it. The caller has checked `!is_full()` and that
    /// the id is not indexed.
    #[inline]
    pub fn alloc(&mut self, mut slot: Slot) -> u32 {
        let idx = self.free_head;
        debug_assert!(idx != NIL, "alloc on a full arena");
        self.free_head = self.slots[idx as usize].next;
        slot.prev = NIL;
        slot.next = NIL;
        self.slots[idx as usize] = slot;
        self.used += 1;
        self.index_insert(slot.order_id, idx);
        idx
    }

    /// Return a slot (already unlinked from its level) to the free list and unindex it.
    #[inline]
    pub fn free(&mut self, idx: u32) {
        let id = self.slots[idx as usize].order_id;
        self.index_remove(id);
        let s = &mut self.slots[idx as usize];
        s.order_id = 0;
        s.next = self.free_head;
        self.free_head = idx;
        self.used -= 1;
    }

    #[inline]
    fn home(&self, id: u64) -> usize {
        (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// Slot of a resting order.
    #[inline]
    pub fn get(&self, id: u64) -> Option<u32> {
        if id == 0 {
            return None;
        }
        let mut i = self.home(id);
        loop {
            let b = self.table[i];
            if b == EMPTY_BUCKET {
                return None;
            }
            if self.slots[b as usize].order_id == id {
                return Some(b);
            }
            i = (i + 1) & self.mask;
        }
    }

    #[inline]
    fn index_insert(&mut self, id: u64, idx: u32) {
        let mut i = self.home(id);
        while self.table[i] != EMPTY_BUCKET {
            i = (i + 1) & self.mask;
        }
        self.table[i] = idx;
    }

    #[inline]
    fn index_remove(&mut self, id: u64) {
        let mut i = self.home(id);
        loop {
            let b = self.table[i];
            debug_assert!(b != EMPTY_BUCKET, "removing an id that is not indexed");
            if b == EMPTY_BUCKET {
                return;
            }
            if self.slots[b as usize].order_id == id {
                break;
            }
            i = (i + 1) & self.mask;
        }
        // Backward-shift deletion: pull later members of the probe run into the hole when
        // the hole lies on their probe path (between their home bucket and where they sit).
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let b = self.table[j];
            if b == EMPTY_BUCKET {
                break;
            }
            let k = self.home(self.slots[b as usize].order_id);
            if (j.wrapping_sub(k) & self.mask) >= (j.wrapping_sub(i) & self.mask) {
                self.table[i] = b;
                i = j;
            }
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

    #[test]
    fn index_survives_churn_with_colliding_runs() {
        // A small table forces long probe runs and wrap-around; compare with a HashMap.
        let mut a = Arena::new(8);
        let mut model = std::collections::HashMap::new();
        let mut x: u64 = 1;
        for step in 0..20_000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let id = (x >> 60) + 1; // ids 1..=16, so many collide
            if let Some(idx) = model.remove(&id) {
                assert_eq!(a.get(id), Some(idx), "step {step}");
                a.free(idx);
            } else if !a.is_full() {
                let idx = a.alloc(slot(id));
                model.insert(id, idx);
            }
            for probe in 1..=16 {
                assert_eq!(
                    a.get(probe),
                    model.get(&probe).copied(),
                    "step {step} id {probe}"
                );
            }
            assert_eq!(a.used(), model.len());
        }
    }
}
