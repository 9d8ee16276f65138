//! `ring`: the bounded single-producer single-consumer (SPSC) ring that carries commands from
//! the gateway thread to the engine thread, and events from the engine thread to the publisher.
//!
//! # What it owns
//!
//! A fixed array of `capacity` slots (a power of two, chosen at start-up, never resized) and two
//! cursors, created together by [`channel`] and split into a [`Producer`] and a [`Consumer`]
//! handle. Each handle is [`Send`] (it can move to its thread) but not [`Clone`], and every
//! operation that moves data takes `&mut self`, so the type system guarantees that at most one
//! thread pushes and at most one thread pops. A [`Gauge`] reads the occupancy from any thread
//! (for `/metrics`) without being able to move data.
//!
//! # Element type
//!
//! Any `T: Send`, not only `Copy`: values are moved in and out by ownership, the ring drops
//! whatever is still inside when both handles are gone, and a panic in a user callback or
//! iterator in the middle of a batch neither leaks a value nor drops one twice (see
//! [`Consumer::drain`] and [`Producer::push_iter`]). The slice forms ([`Producer::push_slice`],
//! [`Consumer::pop_slice`]) are for `T: Copy` (the engine's fixed-size messages) and compile to
//! at most two `memcpy`s.
//!
//! # Invariants
//!
//! * `tail` counts the values ever pushed and `head` the values ever popped; both only grow
//!   (wrapping at `usize::MAX`, which all arithmetic tolerates) and the slot of cursor `c` is
//!   `c & (capacity - 1)`. `head <= tail <= head + capacity` at every instant.
//! * Only the producer stores `tail`; only the consumer stores `head`. Each keeps its own
//!   cursor in a plain field (the authoritative copy) and publishes it with a `Release` store.
//! * The slots with cursors in `[head, tail)` hold initialised values owned by the ring and are
//!   touched only by the consumer; the slots in `[tail, head + capacity)` are free and touched
//!   only by the producer. A `Release` store of `tail` after writing a slot, paired with the
//!   consumer's `Acquire` load of `tail`, orders the write before the read; symmetrically the
//!   `Release` store of `head` after moving a value out, paired with the producer's `Acquire`
//!   load of `head`, orders the read before the slot is overwritten.
//! * Each handle caches the last value it loaded of the *other* cursor (`head_cache`,
//!   `tail_cache`) and reloads it only when the cached value says "full" (producer) or "empty"
//!   (consumer), or is too small for a batch. A stale cache is always conservative: it can only
//!   under-estimate the free space or the available values.
//! * A published cursor never runs ahead of its handle's own copy; the handles publish again
//!   in their `Drop`, so after both are dropped the published cursors delimit exactly the
//!   values still owned by the ring, which its `Drop` then drops once.
//!
//! # Cost
//!
//! `head` and `tail` live on separate 64-byte cache lines ([`CachePadded`]), apart from the
//! read-only line (slot pointer, mask). In steady state a push is one slot write plus one
//! `Release` store (a plain `mov` on x86-64) and touches the consumer's line only when the
//! cached `head` says full; a pop likewise. The batch forms pay one cursor load (when needed)
//! and one publish per batch instead of per value, which is what makes the ring fast when the
//! two threads are on different cores: the cursor lines bounce between cores once per batch.
//! Memory: `capacity * size_of::<T>()` bytes plus three cache lines; nothing is allocated after
//! [`channel`] returns. Neither side ever blocks: a full or empty ring is reported to the
//! caller, who chooses to spin, yield or do other work.
//!
//! # Unsafe code
//!
//! The workspace denies `unsafe`; this module alone (the `allow` below is scoped to this file)
//! needs it, because the slots need interior mutability shared between two threads
//! (`UnsafeCell<MaybeUninit<T>>`) and `Sync` must be asserted for the shared state. Every
//! `unsafe` block and impl carries a `// SAFETY:` comment that points to the invariants above
//! (enforced by `clippy::undocumented_unsafe_blocks`). The unit tests below and the stress test
//! (`tests/ring_stress.rs`) pass under Miri (Stacked and Tree Borrows, data-race detection);
//! weakening any of the four cursor orderings to `Relaxed` makes Miri report a data race.

#![allow(
    unsafe_code,
    reason = "the ring's slots are shared between two threads through UnsafeCell; see the \
              module doc and the SAFETY comment on every unsafe block"
)]
#![warn(clippy::undocumented_unsafe_blocks)]

use std::cell::UnsafeCell;
use std::fmt;
use std::mem::MaybeUninit;
use std::ops::{Deref, DerefMut};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// A value alone on its own 64-byte cache line (the line size of the x86-64 and most ARM
/// cores this runs on), so that a writer on one core does not invalidate a neighbour read or
/// written on another core (false sharing).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[repr(align(64))]
pub struct CachePadded<T> {
    value: T,
}

impl<T> CachePadded<T> {
    /// Wraps `value` on its own cache line.
    pub const fn new(value: T) -> Self {
        Self { value }
    }

    /// Unwraps the value.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T> Deref for CachePadded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for CachePadded<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

/// The largest capacity [`channel`] accepts (2^30 slots: 64 GiB of 64-byte messages), far
/// beyond any sensible ring, so that a mistyped configuration fails fast instead of trying to
/// reserve (or, for zero-sized values, to count out) an absurd slot array.
pub const MAX_CAPACITY: usize = 1 << 30;

/// Why [`channel`] could not build a ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    /// A ring needs at least one slot.
    #[error("ring capacity must be at least 1")]
    ZeroCapacity,
    /// The capacity must be a power of two so that a slot index is a bitmask of the cursor.
    #[error("ring capacity {0} is not a power of two")]
    NotPowerOfTwo(usize),
    /// The capacity exceeds [`MAX_CAPACITY`].
    #[error("ring capacity {0} exceeds the maximum of {MAX_CAPACITY}")]
    TooLarge(usize),
    /// The slot array could not be allocated (too large for the address space or the
    /// allocator refused it).
    #[error("cannot allocate a ring of {capacity} slots of {slot_bytes} bytes")]
    Alloc {
        /// The requested number of slots.
        capacity: usize,
        /// The size of one slot in bytes.
        slot_bytes: usize,
    },
}

/// One slot: possibly uninitialised storage for a `T`, mutable through a shared reference.
/// `UnsafeCell` and `MaybeUninit` are both `repr(transparent)`, so a slot has the layout of `T`
/// and the slot array can be addressed as an array of `T`.
type Slot<T> = UnsafeCell<MaybeUninit<T>>;

/// The state shared by the two handles (and any gauges), behind an `Arc`.
struct Shared<T> {
    /// Values popped so far; stored only by the consumer.
    head: CachePadded<AtomicUsize>,
    /// Values pushed so far; stored only by the producer.
    tail: CachePadded<AtomicUsize>,
    /// The slot array; its length is a power of two. Read-only after construction (the
    /// pointer; the slots' contents change through the `UnsafeCell`s).
    slots: Box<[Slot<T>]>,
    /// `slots.len() - 1`.
    mask: usize,
    /// Set (after the final publish of `tail`) when the producer is dropped.
    producer_gone: AtomicBool,
    /// Set (after the final publish of `head`) when the consumer is dropped.
    consumer_gone: AtomicBool,
}

// SAFETY: `Shared` is `Send` automatically when `T: Send`; it is `Sync` because the only
// non-`Sync` parts are the slots, and the protocol in the module doc gives every slot a single
// owner at any time: values in `[head, tail)` are accessed only by the one `Consumer` and the
// free slots only by the one `Producer` (both handles take `&mut self` to move data and are
// not `Clone`), with the Release/Acquire pairs on the cursors ordering each hand-over. A value
// crosses threads, hence `T: Send`; no `&T` is ever shared, so `T: Sync` is not needed.
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// The slot array as a pointer to `T`s.
    #[inline(always)]
    fn slots_ptr(&self) -> *mut T {
        // `raw_get` keeps the provenance of the whole slice (taken by `as_ptr`), and the
        // `UnsafeCell`s make writes through it legitimate; the cast is valid because a slot is
        // `repr(transparent)` over `T`.
        UnsafeCell::raw_get(self.slots.as_ptr()).cast::<T>()
    }

    #[inline(always)]
    fn capacity(&self) -> usize {
        self.mask.wrapping_add(1)
    }

    /// Occupancy as seen from a third thread: `head` is loaded first (Acquire), so the `tail`
    /// loaded after it is at least as large (the consumer had seen that `tail` before it
    /// published that `head`); clamped to the capacity because `tail` may have moved on by
    /// more than one lap of concurrent pops in between.
    fn observed_len(&self) -> usize {
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        tail.wrapping_sub(head).min(self.capacity())
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        if !std::mem::needs_drop::<T>() {
            return;
        }
        // `&mut self`: both handles and all gauges are gone, and the `Arc`'s release/acquire
        // on its count makes their final cursor stores and slot writes visible here.
        let mut head = *self.head.get_mut();
        let tail = *self.tail.get_mut();
        while head != tail {
            let slot = &mut self.slots[head & self.mask];
            // SAFETY: cursors in `[head, tail)` (as published, which both handles did in their
            // `Drop`) hold initialised values that nobody has moved out; each is dropped once
            // because `head` moves past it.
            unsafe { slot.get_mut().assume_init_drop() };
            head = head.wrapping_add(1);
        }
    }
}

/// Creates a ring of `capacity` slots and returns its two ends.
///
/// `capacity` must be a power of two (1 is allowed) no larger than [`MAX_CAPACITY`]; the slot
/// array is allocated here, once.
///
/// ```
/// let (mut tx, mut rx) = tradecore_engine::ring::channel::<u64>(4).unwrap();
/// assert_eq!(tx.try_push(7), Ok(()));
/// assert_eq!(tx.push_slice(&[8, 9, 10, 11]), 3); // one slot was taken: 3 of 4 fit
/// assert_eq!(tx.try_push(12), Err(12)); // full: the value comes back
/// let mut buf = [0u64; 8];
/// assert_eq!(rx.pop_slice(&mut buf), 4);
/// assert_eq!(buf[..4], [7, 8, 9, 10]);
/// assert_eq!(rx.try_pop(), None);
/// ```
///
/// Each handle is `Send` but neither is `Clone`, so there is one producer and one consumer:
///
/// ```compile_fail
/// let (tx, _rx) = tradecore_engine::ring::channel::<u64>(4).unwrap();
/// let second_producer = tx.clone();
/// ```
///
/// # Errors
///
/// [`RingError::ZeroCapacity`], [`RingError::NotPowerOfTwo`], [`RingError::TooLarge`], or
/// [`RingError::Alloc`] when the slot array does not fit in memory.
pub fn channel<T: Send>(capacity: usize) -> Result<(Producer<T>, Consumer<T>), RingError> {
    if capacity == 0 {
        return Err(RingError::ZeroCapacity);
    }
    if !capacity.is_power_of_two() {
        return Err(RingError::NotPowerOfTwo(capacity));
    }
    if capacity > MAX_CAPACITY {
        return Err(RingError::TooLarge(capacity));
    }
    let alloc_error = RingError::Alloc {
        capacity,
        slot_bytes: std::mem::size_of::<T>(),
    };
    let mut slots: Vec<Slot<T>> = Vec::new();
    slots.try_reserve_exact(capacity).map_err(|_| alloc_error)?;
    slots.resize_with(capacity, || UnsafeCell::new(MaybeUninit::uninit()));
    let shared = Arc::new(Shared {
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
        slots: slots.into_boxed_slice(),
        mask: capacity - 1,
        producer_gone: AtomicBool::new(false),
        consumer_gone: AtomicBool::new(false),
    });
    let producer = Producer {
        shared: Arc::clone(&shared),
        tail: 0,
        head_cache: 0,
    };
    let consumer = Consumer {
        shared,
        head: 0,
        tail_cache: 0,
    };
    Ok((producer, consumer))
}

/// The pushing end of a ring (see the [module doc](self)). `Send`, not `Clone`.
///
/// Aligned to a cache line so that its private cursor copies never share a line with data
/// written by another thread.
#[repr(align(64))]
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
    /// The authoritative count of values pushed; published to `shared.tail`.
    tail: usize,
    /// The last `shared.head` loaded; never ahead of the real one.
    head_cache: usize,
}

impl<T: Send> Producer<T> {
    /// The number of slots.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.shared.capacity()
    }

    /// The number of values in the ring now (loads the consumer's cursor: for metrics and
    /// tests, not for the hot path). The consumer may pop concurrently, so it is an upper bound
    /// by the time it is returned.
    pub fn len(&self) -> usize {
        let head = self.shared.head.load(Ordering::Acquire);
        self.tail.wrapping_sub(head)
    }

    /// Whether the ring holds no value now (see [`Producer::len`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the ring is full now (see [`Producer::len`]).
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }

    /// Whether the consumer has been dropped: nothing pushed from now on will be read (it is
    /// dropped with the ring).
    pub fn is_consumer_dropped(&self) -> bool {
        self.shared.consumer_gone.load(Ordering::Acquire)
    }

    /// A read-only occupancy probe for metrics, usable from any thread.
    pub fn gauge(&self) -> Gauge
    where
        T: 'static,
    {
        Gauge {
            shared: Arc::clone(&self.shared) as Arc<dyn Occupancy>,
        }
    }

    /// The number of free slots, reloading the consumer's cursor only when the cached one
    /// leaves fewer than `wanted`.
    #[inline(always)]
    fn free_for(&mut self, wanted: usize) -> usize {
        let capacity = self.capacity();
        let free = capacity - self.tail.wrapping_sub(self.head_cache);
        if free >= wanted {
            return free;
        }
        // Acquire: the consumer's moves out of the slots it released happen before we
        // overwrite them.
        self.head_cache = self.shared.head.load(Ordering::Acquire);
        capacity - self.tail.wrapping_sub(self.head_cache)
    }

    /// Publishes the private `tail`: everything written before becomes visible to the
    /// consumer.
    #[inline(always)]
    fn publish(&self) {
        self.shared.tail.store(self.tail, Ordering::Release);
    }

    /// Pushes one value, or gives it back in `Err` if the ring is full.
    #[inline]
    pub fn try_push(&mut self, value: T) -> Result<(), T> {
        if self.free_for(1) == 0 {
            return Err(value);
        }
        let index = self.tail & self.shared.mask;
        // SAFETY: `free_for` saw a free slot, so cursor `tail` is in `[tail, head + capacity)`:
        // the consumer has moved its previous value out (Acquire on `head`) and will not read
        // it before we publish (Release below). The slot holds no live value, so overwriting
        // without dropping leaks nothing. `index <= mask` is in bounds.
        unsafe { self.shared.slots_ptr().add(index).write(value) };
        self.tail = self.tail.wrapping_add(1);
        self.publish();
        Ok(())
    }

    /// Copies as many values of `src` as fit, in order, and publishes them with a single
    /// cursor store. Returns how many were pushed (0 when the ring is full or `src` empty).
    #[inline]
    pub fn push_slice(&mut self, src: &[T]) -> usize
    where
        T: Copy,
    {
        let n = self.free_for(src.len()).min(src.len());
        if n == 0 {
            return 0;
        }
        let start = self.tail & self.shared.mask;
        let first = n.min(self.capacity() - start);
        let base = self.shared.slots_ptr();
        // SAFETY: the `n` cursors from `tail` are free (`free_for`), so only this producer
        // touches those slots until the publish below; they are `[start, start + first)` and
        // `[0, n - first)` in the array, both in bounds (`first <= capacity - start`,
        // `n - first < capacity`), and disjoint from `src`, which is borrowed from the caller.
        // `T: Copy`, so overwriting the free slots has nothing to drop.
        unsafe {
            ptr::copy_nonoverlapping(src.as_ptr(), base.add(start), first);
            ptr::copy_nonoverlapping(src.as_ptr().add(first), base, n - first);
        }
        self.tail = self.tail.wrapping_add(n);
        self.publish();
        n
    }

    /// Moves values from `iter` into the ring until it is full or `iter` ends, and publishes
    /// them with a single cursor store. Never takes from `iter` a value it cannot store, so
    /// the rest stays in `iter`. Returns how many were pushed.
    ///
    /// If `iter` panics, the values already moved in stay in the ring (the private cursor
    /// covers them and is published by the next push or by `Drop`): nothing leaks.
    pub fn push_iter<I: Iterator<Item = T>>(&mut self, iter: &mut I) -> usize {
        // Reload the consumer's cursor only if the cached one leaves too little room for what
        // the iterator promises (at least one value).
        let free = self.free_for(iter.size_hint().0.max(1));
        let base = self.shared.slots_ptr();
        let mut pushed = 0;
        while pushed < free {
            let Some(value) = iter.next() else { break };
            let index = self.tail & self.shared.mask;
            // SAFETY: as in `try_push`: the cursor is one of the `free` free slots counted
            // above, owned by this producer until the publish below; `index` is in bounds.
            unsafe { base.add(index).write(value) };
            self.tail = self.tail.wrapping_add(1);
            pushed += 1;
        }
        if pushed > 0 {
            self.publish();
        }
        pushed
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        // Publish values moved in by a `push_iter` whose iterator panicked, then say we left.
        self.shared.tail.store(self.tail, Ordering::Release);
        self.shared.producer_gone.store(true, Ordering::Release);
    }
}

impl<T> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.shared.capacity())
            .field("tail", &self.tail)
            .field("head_cache", &self.head_cache)
            .finish()
    }
}

/// The popping end of a ring (see the [module doc](self)). `Send`, not `Clone`.
///
/// Aligned to a cache line so that its private cursor copies never share a line with data
/// written by another thread.
#[repr(align(64))]
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
    /// The authoritative count of values popped; published to `shared.head`.
    head: usize,
    /// The last `shared.tail` loaded; never ahead of the real one.
    tail_cache: usize,
}

impl<T: Send> Consumer<T> {
    /// The number of slots.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.shared.capacity()
    }

    /// The number of values in the ring now (loads the producer's cursor: for metrics and
    /// tests, not for the hot path). The producer may push concurrently, so it is a lower
    /// bound by the time it is returned.
    pub fn len(&self) -> usize {
        let tail = self.shared.tail.load(Ordering::Acquire);
        tail.wrapping_sub(self.head)
    }

    /// Whether the ring holds no value now (see [`Consumer::len`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the producer has been dropped. Once this returns `true`, every value it ever
    /// pushed is visible, so `is_producer_dropped()` returning `true` and *then* the ring
    /// being empty (a later `try_pop` returning `None`, or `is_empty`) means the stream is
    /// over: the way to drain a ring at shutdown. The other order races with a last push.
    pub fn is_producer_dropped(&self) -> bool {
        self.shared.producer_gone.load(Ordering::Acquire)
    }

    /// A read-only occupancy probe for metrics, usable from any thread.
    pub fn gauge(&self) -> Gauge
    where
        T: 'static,
    {
        Gauge {
            shared: Arc::clone(&self.shared) as Arc<dyn Occupancy>,
        }
    }

    /// The number of values ready, reloading the producer's cursor only when the cached one
    /// shows fewer than `wanted`.
    #[inline(always)]
    fn available_for(&mut self, wanted: usize) -> usize {
        let available = self.tail_cache.wrapping_sub(self.head);
        if available >= wanted {
            return available;
        }
        // Acquire: the producer's slot writes happen before our reads.
        self.tail_cache = self.shared.tail.load(Ordering::Acquire);
        self.tail_cache.wrapping_sub(self.head)
    }

    /// Publishes the private `head`: the slots moved out of become free for the producer.
    #[inline(always)]
    fn publish(&self) {
        self.shared.head.store(self.head, Ordering::Release);
    }

    /// Pops the oldest value, or `None` if the ring is empty.
    #[inline]
    pub fn try_pop(&mut self) -> Option<T> {
        if self.available_for(1) == 0 {
            return None;
        }
        let index = self.head & self.shared.mask;
        // SAFETY: `available_for` saw cursor `head` below `tail` (Acquire), so the slot holds
        // an initialised value written before that publish, which only this consumer may
        // move out; the producer will not reuse the slot before our publish below. `index` is
        // in bounds.
        let value = unsafe { self.shared.slots_ptr().add(index).read() };
        self.head = self.head.wrapping_add(1);
        self.publish();
        Some(value)
    }

    /// Copies up to `dst.len()` of the oldest values into `dst`, in order, and frees their slots
    /// with a single cursor store. Returns how many were popped (0 when the ring is empty or
    /// `dst` is empty); `dst[n..]` is left untouched.
    #[inline]
    pub fn pop_slice(&mut self, dst: &mut [T]) -> usize
    where
        T: Copy,
    {
        let n = self.available_for(dst.len()).min(dst.len());
        if n == 0 {
            return 0;
        }
        let start = self.head & self.shared.mask;
        let first = n.min(self.capacity() - start);
        let base = self.shared.slots_ptr();
        // SAFETY: the `n` cursors from `head` are below the `tail` loaded with Acquire, so
        // their slots hold initialised values that the producer will not touch before our
        // publish below; they are `[start, start + first)` and `[0, n - first)` in the array,
        // both in bounds, and disjoint from `dst`, a unique borrow of the caller's memory.
        unsafe {
            ptr::copy_nonoverlapping(base.add(start), dst.as_mut_ptr(), first);
            ptr::copy_nonoverlapping(base, dst.as_mut_ptr().add(first), n - first);
        }
        self.head = self.head.wrapping_add(n);
        self.publish();
        n
    }

    /// Moves up to `max` of the oldest values, in order, into `f`, then frees their slots with
    /// a single cursor store. Returns how many were handed to `f`.
    ///
    /// If `f` panics, the values already handed over are counted as popped (the private cursor
    /// has moved past them and is published by the next pop or by `Drop`) and the others stay
    /// in the ring: nothing is dropped twice.
    #[inline]
    pub fn drain<F: FnMut(T)>(&mut self, max: usize, mut f: F) -> usize {
        let n = self.available_for(max).min(max);
        let base = self.shared.slots_ptr();
        for _ in 0..n {
            let index = self.head & self.shared.mask;
            // SAFETY: as in `try_pop`: the cursor is one of the `n` below the loaded `tail`;
            // the value is moved out exactly once because `head` moves past it before `f`
            // runs (so a panic in `f` cannot make it readable again).
            let value = unsafe { base.add(index).read() };
            self.head = self.head.wrapping_add(1);
            f(value);
        }
        if n > 0 {
            self.publish();
        }
        n
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        // Publish values moved out by a `drain` whose callback panicked, so that the ring's
        // `Drop` does not drop them again, then say we left.
        self.shared.head.store(self.head, Ordering::Release);
        self.shared.consumer_gone.store(true, Ordering::Release);
    }
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.shared.capacity())
            .field("head", &self.head)
            .field("tail_cache", &self.tail_cache)
            .finish()
    }
}

/// The part of a ring a [`Gauge`] can see, without its element type.
trait Occupancy: Send + Sync {
    fn len(&self) -> usize;
    fn capacity(&self) -> usize;
}

impl<T: Send> Occupancy for Shared<T> {
    fn len(&self) -> usize {
        self.observed_len()
    }

    fn capacity(&self) -> usize {
        Shared::capacity(self)
    }
}

/// A read-only view of a ring's occupancy for metrics (the venue exports it), cloneable and
/// usable from any thread, whatever the element type. It keeps the slot array alive (not the
/// handles), so it can outlive both ends; the values left inside are then dropped with the
/// last gauge.
#[derive(Clone)]
pub struct Gauge {
    shared: Arc<dyn Occupancy>,
}

impl Gauge {
    /// The number of values in the ring at some instant during the call.
    pub fn len(&self) -> usize {
        self.shared.len()
    }

    /// Whether the ring was empty at some instant during the call.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of slots.
    pub fn capacity(&self) -> usize {
        self.shared.capacity()
    }
}

impl fmt::Debug for Gauge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gauge")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::atomic::AtomicUsize;

    fn assert_send<S: Send>() {}
    fn assert_send_sync<S: Send + Sync>() {}

    #[test]
    fn handles_are_send_and_gauge_is_send_sync() {
        assert_send::<Producer<String>>();
        assert_send::<Consumer<String>>();
        assert_send_sync::<Gauge>();
    }

    #[test]
    fn cursors_sit_on_their_own_cache_lines() {
        assert_eq!(std::mem::align_of::<CachePadded<AtomicUsize>>(), 64);
        assert_eq!(std::mem::size_of::<CachePadded<AtomicUsize>>(), 64);
        let (tx, _rx) = channel::<u8>(2).unwrap();
        let head = ptr::from_ref(&tx.shared.head) as usize;
        let tail = ptr::from_ref(&tx.shared.tail) as usize;
        assert_eq!(head % 64, 0);
        assert_eq!(tail % 64, 0);
        assert!(head.abs_diff(tail) >= 64);
    }

    #[test]
    fn bad_capacities_are_typed_errors() {
        assert_eq!(channel::<u64>(0).unwrap_err(), RingError::ZeroCapacity);
        for bad in [3, 6, 100, 1023, usize::MAX] {
            assert_eq!(
                channel::<u64>(bad).unwrap_err(),
                RingError::NotPowerOfTwo(bad)
            );
        }
        assert_eq!(
            channel::<u64>(MAX_CAPACITY << 1).unwrap_err(),
            RingError::TooLarge(1 << 31)
        );
        let absurd = 1usize << (usize::BITS - 2);
        assert_eq!(
            channel::<()>(absurd).unwrap_err(),
            RingError::TooLarge(absurd)
        );
        // An accepted capacity whose slot array overflows the address space (2^30 slots of
        // 2^(BITS - 8) bytes): an error, not a panic or an abort.
        type Huge = [u8; 1 << (usize::BITS - 8)];
        assert_eq!(
            channel::<Huge>(MAX_CAPACITY).unwrap_err(),
            RingError::Alloc {
                capacity: MAX_CAPACITY,
                slot_bytes: 1 << (usize::BITS - 8)
            }
        );
        assert_eq!(
            RingError::TooLarge(absurd).to_string(),
            format!("ring capacity {absurd} exceeds the maximum of 1073741824")
        );
        assert_eq!(
            RingError::NotPowerOfTwo(3).to_string(),
            "ring capacity 3 is not a power of two"
        );
    }

    #[test]
    fn capacity_one_alternates_full_and_empty() {
        let (mut tx, mut rx) = channel::<u32>(1).unwrap();
        for i in 0..1000 {
            assert!(rx.is_empty());
            assert_eq!(rx.try_pop(), None);
            assert_eq!(tx.try_push(i), Ok(()));
            assert!(tx.is_full());
            assert_eq!(tx.try_push(i + 1), Err(i + 1));
            assert_eq!(tx.push_slice(&[1, 2]), 0);
            assert_eq!(rx.len(), 1);
            assert_eq!(rx.try_pop(), Some(i));
        }
        assert_eq!(rx.try_pop(), None);
    }

    #[test]
    fn full_and_empty_edges_across_the_wrap() {
        let (mut tx, mut rx) = channel::<u32>(4).unwrap();
        assert_eq!(tx.capacity(), 4);
        assert!(tx.is_empty() && rx.is_empty() && !tx.is_full());
        for v in 0..4 {
            assert_eq!(tx.try_push(v), Ok(()));
        }
        assert!(tx.is_full());
        assert_eq!(tx.len(), 4);
        assert_eq!(tx.try_push(99), Err(99));
        assert_eq!(rx.try_pop(), Some(0));
        assert_eq!(rx.try_pop(), Some(1));
        assert_eq!(tx.len(), 2);
        // Slots 0 and 1 are free again; the next two pushes wrap around the array end.
        assert_eq!(tx.try_push(4), Ok(()));
        assert_eq!(tx.try_push(5), Ok(()));
        assert_eq!(tx.try_push(6), Err(6));
        let mut got = Vec::new();
        while let Some(v) = rx.try_pop() {
            got.push(v);
        }
        assert_eq!(got, [2, 3, 4, 5]);
        assert!(rx.is_empty() && tx.is_empty());
    }

    #[test]
    fn cursors_survive_wrapping_past_usize_max() {
        let (mut tx, mut rx) = channel::<u32>(4).unwrap();
        // Start both cursors just below the wrap of `usize`, as after 2^64 - 3 values.
        let start = usize::MAX - 2;
        tx.shared.head.store(start, Ordering::Relaxed);
        tx.shared.tail.store(start, Ordering::Relaxed);
        tx.tail = start;
        tx.head_cache = start;
        rx.head = start;
        rx.tail_cache = start;
        let mut next = 0u32;
        let mut expect = 0u32;
        for _ in 0..20 {
            while tx.try_push(next).is_ok() {
                next += 1;
            }
            assert!(tx.is_full());
            assert_eq!(rx.len(), 4);
            let mut buf = [0u32; 3];
            assert_eq!(rx.pop_slice(&mut buf), 3);
            for v in buf {
                assert_eq!(v, expect);
                expect += 1;
            }
        }
        assert!(tx.tail < start, "the cursors did wrap");
    }

    #[test]
    fn slices_split_at_the_array_end_and_stop_when_full() {
        let (mut tx, mut rx) = channel::<u16>(8).unwrap();
        assert_eq!(tx.push_slice(&[]), 0);
        assert_eq!(tx.push_slice(&[0, 1, 2, 3, 4, 5]), 6);
        let mut buf = [0u16; 5];
        assert_eq!(rx.pop_slice(&mut buf), 5);
        assert_eq!(buf, [0, 1, 2, 3, 4]);
        // head = 5, tail = 6: 7 free, the copy wraps after slot 7.
        assert_eq!(tx.push_slice(&[6, 7, 8, 9, 10, 11, 12, 13, 14]), 7);
        assert!(tx.is_full());
        assert_eq!(tx.push_slice(&[99]), 0);
        let mut out = [u16::MAX; 10];
        assert_eq!(rx.pop_slice(&mut out[..0]), 0);
        assert_eq!(rx.pop_slice(&mut out), 8);
        assert_eq!(out, [5, 6, 7, 8, 9, 10, 11, 12, u16::MAX, u16::MAX]);
        assert_eq!(rx.pop_slice(&mut out), 0);
    }

    #[test]
    fn drain_respects_max_and_order() {
        let (mut tx, mut rx) = channel::<u64>(16).unwrap();
        assert_eq!(rx.drain(10, |_| panic!("empty ring")), 0);
        assert_eq!(tx.push_iter(&mut (0..10)), 10);
        assert_eq!(rx.drain(0, |_| panic!("max is 0")), 0);
        let mut got = Vec::new();
        assert_eq!(rx.drain(4, |v| got.push(v)), 4);
        assert_eq!(rx.drain(100, |v| got.push(v)), 6);
        assert_eq!(got, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn push_iter_takes_nothing_it_cannot_store() {
        let (mut tx, mut rx) = channel::<u64>(4).unwrap();
        let mut source = 0..10;
        assert_eq!(tx.push_iter(&mut source), 4);
        assert_eq!(
            source.next(),
            Some(4),
            "the fifth value is still in the iterator"
        );
        assert_eq!(tx.push_iter(&mut source), 0);
        assert_eq!(source.next(), Some(5));
        assert_eq!(rx.try_pop(), Some(0));
        assert_eq!(tx.push_iter(&mut (100..100)), 0);
        assert_eq!(tx.push_iter(&mut source), 1);
        let mut got = Vec::new();
        rx.drain(usize::MAX, |v| got.push(v));
        assert_eq!(got, [1, 2, 3, 6]);
    }

    #[test]
    fn gauge_sees_occupancy_and_outlives_handles() {
        let (mut tx, mut rx) = channel::<u8>(8).unwrap();
        let gauge = rx.gauge();
        let copy = tx.gauge();
        assert_eq!((gauge.len(), gauge.capacity()), (0, 8));
        assert_eq!(tx.push_slice(&[1, 2, 3]), 3);
        assert_eq!(gauge.len(), 3);
        assert_eq!(rx.try_pop(), Some(1));
        assert_eq!(copy.len(), 2);
        drop(tx);
        drop(rx);
        assert_eq!(gauge.len(), 2);
        assert!(!gauge.is_empty());
        assert_eq!(format!("{gauge:?}"), "Gauge { len: 2, capacity: 8 }");
    }

    #[test]
    fn disconnection_is_visible_to_the_other_side() {
        let (mut tx, mut rx) = channel::<u8>(2).unwrap();
        assert!(!rx.is_producer_dropped());
        assert!(!tx.is_consumer_dropped());
        assert_eq!(tx.try_push(1), Ok(()));
        drop(tx);
        assert!(rx.is_producer_dropped());
        assert_eq!(rx.try_pop(), Some(1));
        assert_eq!(rx.try_pop(), None);

        let (tx, rx) = channel::<u8>(2).unwrap();
        drop(rx);
        assert!(tx.is_consumer_dropped());
    }

    #[test]
    fn zero_sized_values_are_counted() {
        let (mut tx, mut rx) = channel::<()>(2).unwrap();
        assert_eq!(tx.push_slice(&[(), (), ()]), 2);
        assert_eq!(tx.try_push(()), Err(()));
        let mut buf = [(); 5];
        assert_eq!(rx.pop_slice(&mut buf), 2);
        assert_eq!(rx.try_pop(), None);
    }

    /// A non-`Copy` value that counts its drops and owns a heap allocation (so a double drop
    /// would also be a double free).
    struct Counted<'a> {
        id: Box<u32>,
        drops: &'a AtomicUsize,
    }

    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn counted(drops: &AtomicUsize, id: u32) -> Counted<'_> {
        Counted {
            id: Box::new(id),
            drops,
        }
    }

    #[test]
    fn values_left_inside_are_dropped_once_with_the_ring() {
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        let (mut tx, mut rx) = channel::<Counted<'static>>(4).unwrap();
        for id in 0..3 {
            assert!(tx.try_push(counted(&DROPS, id)).is_ok());
        }
        assert!(tx.try_push(counted(&DROPS, 3)).is_ok());
        let refused = tx.try_push(counted(&DROPS, 4)).unwrap_err();
        assert_eq!(*refused.id, 4, "the refused value is the one pushed");
        drop(refused);
        assert_eq!(DROPS.load(Ordering::Relaxed), 1);
        let first = rx.try_pop().unwrap();
        assert_eq!(*first.id, 0);
        drop(first);
        assert_eq!(DROPS.load(Ordering::Relaxed), 2);
        drop(rx);
        assert_eq!(
            DROPS.load(Ordering::Relaxed),
            2,
            "the producer still holds the ring"
        );
        drop(tx);
        assert_eq!(
            DROPS.load(Ordering::Relaxed),
            5,
            "values 1, 2, 3 dropped with the ring"
        );
    }

    #[test]
    fn a_panicking_drain_callback_drops_nothing_twice() {
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        let (mut tx, mut rx) = channel::<Counted<'static>>(8).unwrap();
        let mut source = (0..6).map(|id| counted(&DROPS, id));
        assert_eq!(tx.push_iter(&mut source), 6);
        let mut seen = Vec::new();
        let result = catch_unwind(AssertUnwindSafe(|| {
            rx.drain(usize::MAX, |value| {
                seen.push(*value.id);
                assert!(*value.id < 2, "callback fails on the third value");
            })
        }));
        assert!(result.is_err());
        assert_eq!(seen, [0, 1, 2]);
        // The three values handed over were dropped by the callback (or its unwinding).
        assert_eq!(DROPS.load(Ordering::Relaxed), 3);
        // The consumer is still usable and resumes after the value that panicked.
        assert_eq!(rx.try_pop().map(|v| *v.id), Some(3));
        assert_eq!(DROPS.load(Ordering::Relaxed), 4);
        drop(tx);
        drop(rx);
        assert_eq!(
            DROPS.load(Ordering::Relaxed),
            6,
            "4 and 5 dropped with the ring"
        );
    }

    #[test]
    fn a_panicking_drain_then_drop_drops_nothing_twice() {
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        let (mut tx, mut rx) = channel::<Counted<'static>>(4).unwrap();
        assert_eq!(tx.push_iter(&mut (0..4).map(|id| counted(&DROPS, id))), 4);
        let result = catch_unwind(AssertUnwindSafe(move || {
            // `rx` is moved in and dropped by the unwinding, with its cursor unpublished.
            rx.drain(4, |value| assert!(*value.id == 0));
        }));
        assert!(result.is_err());
        assert_eq!(DROPS.load(Ordering::Relaxed), 2);
        drop(tx);
        assert_eq!(DROPS.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn a_panicking_push_iter_leaks_nothing() {
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        let (mut tx, mut rx) = channel::<Counted<'static>>(8).unwrap();
        let result = catch_unwind(AssertUnwindSafe(|| {
            let mut source = (0..5).map(|id| {
                assert!(id < 3, "the iterator fails on the fourth value");
                counted(&DROPS, id)
            });
            tx.push_iter(&mut source)
        }));
        assert!(result.is_err());
        assert_eq!(DROPS.load(Ordering::Relaxed), 0);
        // The three values stored before the panic are published by the next push.
        assert!(tx.try_push(counted(&DROPS, 10)).is_ok());
        let mut ids = Vec::new();
        rx.drain(usize::MAX, |v| ids.push(*v.id));
        assert_eq!(ids, [0, 1, 2, 10]);
        assert_eq!(DROPS.load(Ordering::Relaxed), 4);

        // And when the producer is dropped right after the panic, its `Drop` publishes them.
        let result = catch_unwind(AssertUnwindSafe(move || {
            let mut source = (20..25).map(|id| {
                assert!(id < 22, "the iterator fails on the third value");
                counted(&DROPS, id)
            });
            tx.push_iter(&mut source)
        }));
        assert!(result.is_err());
        assert!(rx.is_producer_dropped());
        assert_eq!(rx.try_pop().map(|v| *v.id), Some(20));
        assert_eq!(DROPS.load(Ordering::Relaxed), 5);
        drop(rx);
        assert_eq!(DROPS.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn debug_shows_cursors() {
        let (mut tx, rx) = channel::<u8>(2).unwrap();
        assert_eq!(tx.try_push(1), Ok(()));
        assert_eq!(
            format!("{tx:?}"),
            "Producer { capacity: 2, tail: 1, head_cache: 0 }"
        );
        assert_eq!(
            format!("{rx:?}"),
            "Consumer { capacity: 2, head: 0, tail_cache: 0 }"
        );
    }
}
