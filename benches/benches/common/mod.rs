//! The candidates and workloads shared by the comparison benchmarks.
//!
//! Every candidate hands out an `Order` in its default state (pools reset it on reuse
//! with the same `Poolable::reset`; `Box::new` builds a fresh one), so the comparison is
//! fair. Pools of `Box<Order>` are used where a crate stores values, as a user would for
//! a 136-byte object.
#![allow(dead_code, reason = "each bench target uses a subset")]
#![allow(
    clippy::box_default,
    reason = "`Box::new(Order::default())` is what the compared code writes"
)]

use std::cell::RefCell;
use std::hint::black_box;
use std::ops::{Deref, DerefMut};

use crossbeam_queue::ArrayQueue;
use infrastructure::memory::Poolable;
use infrastructure::memory::safe_pools::ORDER_POOL;
use infrastructure::types::{Decimal, Order};

/// One use of an order: write a price and the symbol, read them back.
#[inline(always)]
pub(crate) fn touch(order: &mut Order, i: i64) {
    order.price = Decimal::from_raw(i);
    order.set_symbol("BTCUSDT").expect("fits");
    black_box(order.symbol());
    black_box(order.price);
}

/// A way to get orders.
pub(crate) trait Candidate {
    /// What `acquire` returns; gives the order back (or frees it) when dropped.
    type Guard<'a>: DerefMut<Target = Order>
    where
        Self: 'a;
    /// The label in reports.
    fn name(&self) -> &'static str;
    /// An order in its default state.
    fn acquire(&self) -> Self::Guard<'_>;
}

/// `infrastructure`'s `ORDER_POOL`.
pub(crate) struct Ours;

impl Candidate for Ours {
    type Guard<'a> = infrastructure::memory::PoolGuard<'static, Order>;
    fn name(&self) -> &'static str {
        "ours"
    }
    #[inline(always)]
    fn acquire(&self) -> Self::Guard<'_> {
        ORDER_POOL.acquire()
    }
}

/// `Box::new` + drop with whatever the binary's global allocator is.
pub(crate) struct Boxed(pub(crate) &'static str);

impl Candidate for Boxed {
    type Guard<'a> = Box<Order>;
    fn name(&self) -> &'static str {
        self.0
    }
    #[inline(always)]
    fn acquire(&self) -> Box<Order> {
        Box::new(Order::default())
    }
}

/// A guard that hands its box to `R` (after a reset) when dropped.
pub(crate) struct Held<'a, R: Release> {
    order: Option<Box<Order>>,
    to: &'a R,
}

/// Where a `Held` order goes back to.
pub(crate) trait Release {
    fn release(&self, order: Box<Order>);
}

impl<R: Release> Deref for Held<'_, R> {
    type Target = Order;
    #[inline(always)]
    fn deref(&self) -> &Order {
        self.order.as_deref().expect("held until dropped")
    }
}

impl<R: Release> DerefMut for Held<'_, R> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut Order {
        self.order.as_deref_mut().expect("held until dropped")
    }
}

impl<R: Release> Drop for Held<'_, R> {
    #[inline(always)]
    fn drop(&mut self) {
        if let Some(mut order) = self.order.take() {
            order.reset();
            self.to.release(order);
        }
    }
}

std::thread_local! {
    #[allow(clippy::vec_box, reason = "the floor is exactly a Vec of boxes")]
    static FLOOR: RefCell<Vec<Box<Order>>> = const { RefCell::new(Vec::new()) };
}

/// The practical floor: a raw thread-local `Vec<Box<Order>>`, pop and push.
pub(crate) struct Floor;

impl Release for Floor {
    #[inline(always)]
    fn release(&self, order: Box<Order>) {
        FLOOR.with(|v| v.borrow_mut().push(order));
    }
}

impl Candidate for Floor {
    type Guard<'a> = Held<'a, Floor>;
    fn name(&self) -> &'static str {
        "tl_vec_floor"
    }
    #[inline(always)]
    fn acquire(&self) -> Held<'_, Floor> {
        let order = FLOOR
            .with(|v| v.borrow_mut().pop())
            .unwrap_or_else(|| Box::new(Order::default()));
        Held {
            order: Some(order),
            to: self,
        }
    }
}

/// A naive shared pool: one `crossbeam_queue::ArrayQueue` of boxes.
pub(crate) struct Naive(pub(crate) ArrayQueue<Box<Order>>);

impl Naive {
    pub(crate) fn new() -> Self {
        Naive(ArrayQueue::new(4096))
    }
}

impl Release for Naive {
    #[inline(always)]
    fn release(&self, order: Box<Order>) {
        let _ = self.0.push(order); // full: the box is freed
    }
}

impl Candidate for Naive {
    type Guard<'a> = Held<'a, Naive>;
    fn name(&self) -> &'static str {
        "arrayqueue_naive"
    }
    #[inline(always)]
    fn acquire(&self) -> Held<'_, Naive> {
        let order = self.0.pop().unwrap_or_else(|| Box::new(Order::default()));
        Held {
            order: Some(order),
            to: self,
        }
    }
}

/// The `object-pool` crate (`Mutex<Vec<T>>`); it does not reset, so the guard does.
pub(crate) struct ObjectPool(pub(crate) object_pool::Pool<Box<Order>>);

impl ObjectPool {
    pub(crate) fn new() -> Self {
        ObjectPool(object_pool::Pool::new(0, || Box::new(Order::default())))
    }
}

/// An `object_pool::Reusable` that resets before it goes back.
pub(crate) struct ObjectPoolGuard<'a>(object_pool::Reusable<'a, Box<Order>>);

impl Deref for ObjectPoolGuard<'_> {
    type Target = Order;
    fn deref(&self) -> &Order {
        &self.0
    }
}

impl DerefMut for ObjectPoolGuard<'_> {
    fn deref_mut(&mut self) -> &mut Order {
        &mut self.0
    }
}

impl Drop for ObjectPoolGuard<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        self.0.reset();
    }
}

impl Candidate for ObjectPool {
    type Guard<'a> = ObjectPoolGuard<'a>;
    fn name(&self) -> &'static str {
        "object_pool"
    }
    #[inline(always)]
    fn acquire(&self) -> ObjectPoolGuard<'_> {
        ObjectPoolGuard(self.0.pull(|| Box::new(Order::default())))
    }
}

/// How `opool` makes and resets orders.
pub(crate) struct OpoolAlloc;

impl opool::PoolAllocator<Box<Order>> for OpoolAlloc {
    #[inline(always)]
    fn allocate(&self) -> Box<Order> {
        Box::new(Order::default())
    }
    #[inline(always)]
    fn reset(&self, order: &mut Box<Order>) {
        order.reset();
    }
}

/// The `opool` crate (a bounded lock-free queue; resets on `get`).
pub(crate) struct Opool(pub(crate) opool::Pool<OpoolAlloc, Box<Order>>);

impl Opool {
    pub(crate) fn new() -> Self {
        Opool(opool::Pool::new(4096, OpoolAlloc))
    }
}

/// An `opool` guard, dereferencing to the order.
pub(crate) struct OpoolGuard<'a>(opool::RefGuard<'a, OpoolAlloc, Box<Order>>);

impl Deref for OpoolGuard<'_> {
    type Target = Order;
    fn deref(&self) -> &Order {
        &self.0
    }
}

impl DerefMut for OpoolGuard<'_> {
    fn deref_mut(&mut self) -> &mut Order {
        &mut self.0
    }
}

impl Candidate for Opool {
    type Guard<'a> = OpoolGuard<'a>;
    fn name(&self) -> &'static str {
        "opool"
    }
    #[inline(always)]
    fn acquire(&self) -> OpoolGuard<'_> {
        OpoolGuard(self.0.get())
    }
}

/// An order that `sharded_slab::Pool` can clear in place.
#[derive(Default)]
pub(crate) struct SlabOrder(pub(crate) Order);

impl sharded_slab::Clear for SlabOrder {
    fn clear(&mut self) {
        self.0.reset();
    }
}

/// The `sharded-slab` crate's `Pool`: an entry lives until `clear(key)`, which resets
/// it and frees the slot.
pub(crate) struct Slab(pub(crate) sharded_slab::Pool<SlabOrder>);

impl Slab {
    pub(crate) fn new() -> Self {
        Slab(sharded_slab::Pool::new())
    }
}

/// A created slab entry; dropping it clears the entry (the pool's release).
pub(crate) struct SlabGuard<'a> {
    entry: Option<sharded_slab::pool::RefMut<'a, SlabOrder>>,
    key: usize,
    pool: &'a sharded_slab::Pool<SlabOrder>,
}

impl Deref for SlabGuard<'_> {
    type Target = Order;
    fn deref(&self) -> &Order {
        &self.entry.as_ref().expect("held until dropped").0
    }
}

impl DerefMut for SlabGuard<'_> {
    fn deref_mut(&mut self) -> &mut Order {
        &mut self.entry.as_mut().expect("held until dropped").0
    }
}

impl Drop for SlabGuard<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        drop(self.entry.take());
        self.pool.clear(self.key);
    }
}

impl Candidate for Slab {
    type Guard<'a> = SlabGuard<'a>;
    fn name(&self) -> &'static str {
        "sharded_slab"
    }
    #[inline(always)]
    fn acquire(&self) -> SlabGuard<'_> {
        let entry = self.0.create().expect("sharded-slab has room");
        let key = entry.key();
        SlabGuard {
            entry: Some(entry),
            key,
            pool: &self.0,
        }
    }
}

/// An order for `lifeguard` (single-threaded, `Rc`-based).
pub(crate) struct LgOrder(pub(crate) Box<Order>);

impl lifeguard::Recycleable for LgOrder {
    fn new() -> Self {
        LgOrder(Box::new(Order::default()))
    }
    fn reset(&mut self) {
        self.0.reset();
    }
}

/// The `lifeguard` crate's pool (single thread only: neither `Send` nor `Sync`).
pub(crate) struct Lifeguard(pub(crate) lifeguard::Pool<LgOrder>);

impl Lifeguard {
    pub(crate) fn new() -> Self {
        Lifeguard(lifeguard::pool().with(lifeguard::StartingSize(64)).build())
    }
}

/// A `lifeguard` guard, dereferencing to the order.
pub(crate) struct LifeguardGuard<'a>(lifeguard::Recycled<'a, LgOrder>);

impl Deref for LifeguardGuard<'_> {
    type Target = Order;
    fn deref(&self) -> &Order {
        &self.0.0
    }
}

impl DerefMut for LifeguardGuard<'_> {
    fn deref_mut(&mut self) -> &mut Order {
        &mut self.0.0
    }
}

impl Candidate for Lifeguard {
    type Guard<'a> = LifeguardGuard<'a>;
    fn name(&self) -> &'static str {
        "lifeguard"
    }
    #[inline(always)]
    fn acquire(&self) -> LifeguardGuard<'_> {
        LifeguardGuard(self.0.new())
    }
}

/// `sharded-slab` as a user sends entries across threads: `create_owned` on an
/// `Arc<Pool>` (its `OwnedRefMut` is `Send`), cleared by whoever drops it.
pub(crate) struct SlabOwned(pub(crate) std::sync::Arc<sharded_slab::Pool<SlabOrder>>);

impl SlabOwned {
    pub(crate) fn new() -> Self {
        SlabOwned(std::sync::Arc::new(sharded_slab::Pool::new()))
    }
}

/// An owned slab entry; dropping it clears the entry.
pub(crate) struct SlabOwnedGuard {
    entry: Option<sharded_slab::pool::OwnedRefMut<SlabOrder>>,
    key: usize,
    pool: std::sync::Arc<sharded_slab::Pool<SlabOrder>>,
}

impl Deref for SlabOwnedGuard {
    type Target = Order;
    fn deref(&self) -> &Order {
        &self.entry.as_ref().expect("held until dropped").0
    }
}

impl DerefMut for SlabOwnedGuard {
    fn deref_mut(&mut self) -> &mut Order {
        &mut self.entry.as_mut().expect("held until dropped").0
    }
}

impl Drop for SlabOwnedGuard {
    #[inline(always)]
    fn drop(&mut self) {
        drop(self.entry.take());
        self.pool.clear(self.key);
    }
}

impl Candidate for SlabOwned {
    type Guard<'a> = SlabOwnedGuard;
    fn name(&self) -> &'static str {
        "sharded_slab"
    }
    #[inline(always)]
    fn acquire(&self) -> SlabOwnedGuard {
        let entry = std::sync::Arc::clone(&self.0)
            .create_owned()
            .expect("sharded-slab has room");
        let key = entry.key();
        SlabOwnedGuard {
            entry: Some(entry),
            key,
            pool: std::sync::Arc::clone(&self.0),
        }
    }
}
