//! The shared depot: magazines of idle objects that threads trade whole.
//!
//! Bonwick & Adams' depot (USENIX 2001): a list of full magazines and a list of empty
//! ones, touched under one lock only when a thread's own two magazines cannot serve it,
//! so the lock is taken once per `magazine_size` objects. Each list remembers the
//! lowest length it reached since the last reclaim tick; magazines below that mark sat
//! unused for the whole interval and are the ones the reaper frees (the working-set
//! rule). Lists are stacks: the bottom holds the oldest magazines.
//!
//! The lists grow with the working set (a burst of 200,000 objects leaves 3,125
//! magazines, all kept while bursts recur) unless `PoolConfig::depot_magazines` caps
//! them; the byte ceiling (`PoolConfig::max_idle_bytes`) is the engine's, which sees
//! the whole pool. Partial magazines (from thread-exit flushes and aging) are poured
//! into one partial magazine, so every other loaded magazine is full: the magazine
//! buffers held stay within one per `magazine_size` idle objects, plus one.

/// A magazine: a stack of idle objects with a fixed capacity (`magazine_size`).
///
/// A `Vec` with capacity 0 stands for "no magazine" in a thread cache.
pub(crate) type Magazine<T> = Vec<Box<T>>;

use std::collections::VecDeque;

use arrayvec::ArrayVec;

/// Magazines an uncapped list has room for from the start (1,536 bytes), and never
/// less: a flow whose depot holds at most this many (4,096 objects at the default
/// magazine size) never grows a list.
pub(crate) const MIN_LIST: usize = 64;

/// Most magazines a reclaim tick moves out under one hold of the depot lock: it frees
/// them (outside the lock) from a buffer on its stack, so a tick allocates nothing.
pub(crate) const REAP_CHUNK: usize = 16;

/// Magazines a reclaim tick took out of the depot, to be freed outside the lock.
pub(crate) type ReapChunk<T> = ArrayVec<Magazine<T>, REAP_CHUNK>;

/// What a slow path leaves for the pool's books once its locks are released:
/// magazines (and their objects) to free, and how many magazine buffers it allocated.
#[derive(Debug)]
pub(crate) struct Surplus<T> {
    pub(crate) magazines: Vec<Magazine<T>>,
    /// Objects outside any magazine (discarded ones the reaper frees).
    pub(crate) loose: Vec<Box<T>>,
    /// Magazine buffers allocated on the way (to be counted as the pool's).
    pub(crate) new_magazines: usize,
}

impl<T> Surplus<T> {
    pub(crate) const fn new() -> Self {
        Surplus {
            magazines: Vec::new(),
            loose: Vec::new(),
            new_magazines: 0,
        }
    }

    /// Allocates an empty magazine of `capacity` objects, noting it.
    pub(crate) fn new_magazine(&mut self, capacity: usize) -> Magazine<T> {
        self.new_magazines += 1;
        Vec::with_capacity(capacity)
    }

    /// Number of objects (not magazines) held in magazines (`loose` ones apart).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn objects(&self) -> usize {
        self.magazines.iter().map(Vec::len).sum()
    }
}

/// The depot's state, behind the pool's depot mutex.
#[derive(Debug)]
pub(crate) struct Depot<T> {
    /// Full magazines, the oldest at the front.
    loaded: VecDeque<Magazine<T>>,
    /// At most one magazine neither full nor empty (capacity 0: none), where partial
    /// magazines handed in are poured. It counts as the top of the loaded stack.
    partial: Magazine<T>,
    /// The partial magazine has not changed since the last reclaim tick.
    partial_idle: bool,
    /// Empty magazines (capacity `magazine_size`, length 0), the oldest at the front.
    empty: VecDeque<Magazine<T>>,
    /// Magazines at the front of each list that the current reclaim tick condemned
    /// and is taking out chunk by chunk (fewer if threads take some back meanwhile).
    reaping_loaded: usize,
    reaping_empty: usize,
    /// The room to shrink the lists to once the tick's last chunk is out.
    shrink_to: Option<usize>,
    /// Each uncapped list's first buffer (`MIN_LIST` entries), kept aside empty while
    /// the list has outgrown it, and put back when the list shrinks: a reclaim tick
    /// gives the room back by freeing, never by reallocating.
    spare_loaded: VecDeque<Magazine<T>>,
    spare_empty: VecDeque<Magazine<T>>,
    /// Lowest `loaded.len()` since the last working-set update.
    loaded_low: usize,
    /// Lowest `empty.len()` since the last working-set update.
    empty_low: usize,
    /// Most magazines in both lists together since the last working-set update: the
    /// room the lists keep when the reaper shrinks them.
    high: usize,
    /// Objects in `loaded` and `partial`.
    objects: usize,
    /// Most magazines kept in each list, the partial one counting as loaded (`None`:
    /// as many as the working set needs).
    capacity: Option<usize>,
    /// Objects the reaper leaves in place (`Pool::reserve`), and as many empty
    /// magazines as releasing them all needs.
    floor: usize,
    magazine_size: usize,
}

impl<T> Depot<T> {
    /// A depot of magazines of `magazine_size` objects, keeping at most `capacity`
    /// magazines in each list if set. A capped depot reserves both lists now, so
    /// storing a magazine never reallocates under the lock; an uncapped one grows them
    /// (amortised: a list doubles when full) and the reaper shrinks them.
    pub(crate) fn new(capacity: Option<usize>, magazine_size: usize) -> Self {
        let reserved = capacity.unwrap_or(MIN_LIST);
        Depot {
            loaded: VecDeque::with_capacity(reserved),
            partial: Vec::new(),
            partial_idle: false,
            empty: VecDeque::with_capacity(reserved),
            reaping_loaded: 0,
            reaping_empty: 0,
            shrink_to: None,
            spare_loaded: VecDeque::new(),
            spare_empty: VecDeque::new(),
            loaded_low: 0,
            empty_low: 0,
            high: 0,
            objects: 0,
            capacity,
            floor: 0,
            magazine_size,
        }
    }

    /// Heap bytes of the two lists' bookkeeping now (their spare buffers included).
    pub(crate) fn list_bytes(&self) -> usize {
        (self.loaded.capacity()
            + self.empty.capacity()
            + self.spare_loaded.capacity()
            + self.spare_empty.capacity())
            * std::mem::size_of::<Magazine<T>>()
    }

    /// Empty magazines stored.
    pub(crate) fn empty_magazines(&self) -> usize {
        self.empty.len()
    }

    /// Most magazines kept in each list, if capped.
    pub(crate) fn capacity(&self) -> Option<usize> {
        self.capacity
    }

    /// Makes [`begin_reap`](Self::begin_reap) keep at least `objects` idle objects,
    /// and empty magazines enough to release them (a reserve the working-set rule does
    /// not touch).
    pub(crate) fn set_floor(&mut self, objects: usize) {
        self.floor = objects;
    }

    /// Idle objects in the depot.
    pub(crate) fn objects(&self) -> usize {
        self.objects
    }

    /// Takes the most recently stored full magazine, or else the partial one.
    pub(crate) fn take_loaded(&mut self) -> Option<Magazine<T>> {
        let magazine = match self.loaded.pop_back() {
            Some(magazine) => {
                self.loaded_low = self.loaded_low.min(self.loaded.len());
                self.reaping_loaded = self.reaping_loaded.min(self.loaded.len());
                magazine
            }
            None if !self.partial.is_empty() => {
                self.partial_idle = false;
                std::mem::take(&mut self.partial)
            }
            None => return None,
        };
        self.objects -= magazine.len();
        Some(magazine)
    }

    /// Takes one object (for threads without a cache): from the partial magazine, or
    /// else from the newest full one, which becomes the partial one. Either counts as
    /// used in this interval; a magazine emptied goes to the empty list, or to
    /// `surplus` if that is full.
    pub(crate) fn take_one(&mut self, surplus: &mut Surplus<T>) -> Option<Box<T>> {
        if self.partial.is_empty() {
            let magazine = self.loaded.pop_back()?;
            self.loaded_low = self.loaded_low.min(self.loaded.len());
            self.reaping_loaded = self.reaping_loaded.min(self.loaded.len());
            let empty = std::mem::replace(&mut self.partial, magazine);
            self.put_empty(empty, surplus);
        }
        let object = self.partial.pop();
        debug_assert!(object.is_some(), "loaded magazines are never empty");
        self.objects -= 1;
        self.partial_idle = false;
        if self.partial.is_empty() {
            let empty = std::mem::take(&mut self.partial);
            self.put_empty(empty, surplus);
        }
        object
    }

    /// Stores a magazine: full ones on the loaded list, partial ones poured into the
    /// partial magazine, empty ones on the empty list. A magazine that does not fit
    /// goes to `surplus`, to be freed outside the lock.
    pub(crate) fn put(&mut self, mut magazine: Magazine<T>, surplus: &mut Surplus<T>) {
        if magazine.is_empty() {
            return self.put_empty(magazine, surplus);
        }
        if magazine.len() == magazine.capacity() {
            return self.put_full(magazine, surplus);
        }
        self.partial_idle = false;
        if self.partial.capacity() == 0 {
            if self.capacity.is_some_and(|cap| self.loaded.len() >= cap) {
                surplus.magazines.push(magazine);
            } else {
                self.objects += magazine.len();
                self.partial = magazine;
            }
            return;
        }
        self.objects += magazine.len();
        // Pour (at most one magazine's worth of moves under the lock).
        let room = self.partial.capacity() - self.partial.len();
        let moved = room.min(magazine.len());
        self.partial
            .extend(magazine.drain(magazine.len() - moved..));
        if self.partial.len() == self.partial.capacity() {
            let full = std::mem::replace(&mut self.partial, magazine);
            self.objects -= full.len();
            if self.partial.is_empty() {
                let empty = std::mem::take(&mut self.partial);
                self.put_empty(empty, surplus);
            }
            self.put_full(full, surplus);
        } else {
            self.put_empty(magazine, surplus);
        }
    }

    /// Loaded magazines, the partial one included (what a capped depot counts).
    fn loaded_magazines(&self) -> usize {
        self.loaded.len() + usize::from(self.partial.capacity() > 0)
    }

    fn put_full(&mut self, magazine: Magazine<T>, surplus: &mut Surplus<T>) {
        debug_assert_eq!(magazine.capacity(), self.magazine_size, "magazines hold M");
        if self
            .capacity
            .is_some_and(|cap| self.loaded_magazines() >= cap)
        {
            surplus.magazines.push(magazine);
        } else {
            self.objects += magazine.len();
            self.keep_room(1);
            self.loaded.push_back(magazine);
        }
    }

    fn put_empty(&mut self, magazine: Magazine<T>, surplus: &mut Surplus<T>) {
        if magazine.capacity() == 0 {
            return;
        }
        if self.capacity.is_some_and(|cap| self.empty.len() >= cap) {
            surplus.magazines.push(magazine);
        } else {
            self.keep_room(1);
            self.empty.push_back(magazine);
        }
    }

    /// Makes room in each uncapped list for every magazine the depot holds once
    /// `adding` more arrive (before they are pushed, so the push itself never grows a
    /// list), so a burst that turns all of them from full to empty (or back) does not
    /// grow a list while it runs; notes the most held.
    fn keep_room(&mut self, adding: usize) {
        if self.capacity.is_some() {
            return;
        }
        let total = self.loaded.len() + self.empty.len() + adding;
        self.high = self.high.max(total);
        for (list, spare) in [
            (&mut self.loaded, &mut self.spare_loaded),
            (&mut self.empty, &mut self.spare_empty),
        ] {
            if list.capacity() >= total {
                continue;
            }
            if spare.capacity() == 0 && list.capacity() == MIN_LIST {
                // Outgrowing the first buffer: keep it aside for the shrink.
                let mut bigger = VecDeque::with_capacity(total.max(2 * MIN_LIST));
                bigger.extend(list.drain(..));
                *spare = std::mem::replace(list, bigger);
            } else {
                list.reserve(total - list.len());
            }
        }
    }

    /// Takes an empty magazine, if one is stored.
    pub(crate) fn take_empty(&mut self) -> Option<Magazine<T>> {
        let magazine = self.empty.pop_back()?;
        self.empty_low = self.empty_low.min(self.empty.len());
        self.reaping_empty = self.reaping_empty.min(self.empty.len());
        Some(magazine)
    }

    /// Starts a reclaim tick: condemns what stayed unused for the whole interval since
    /// the last tick (full and empty magazines below their lists' low-water marks,
    /// keeping the floor; the partial magazine if it did not change, which it returns),
    /// then starts a new interval. The condemned magazines leave through
    /// [`reap_chunk`](Self::reap_chunk). O(1).
    #[cfg_attr(
        all(loom, not(test)),
        allow(
            dead_code,
            reason = "called by the reaper, which loom builds leave out"
        )
    )]
    pub(crate) fn begin_reap(&mut self) -> Option<Magazine<T>> {
        let mut left = self.objects;
        let mut partial = None;
        if self.partial_idle && left - self.partial.len() >= self.floor {
            left -= self.partial.len();
            self.objects -= self.partial.len();
            partial = Some(std::mem::take(&mut self.partial));
        }
        // Every magazine on the loaded list is full: the floor allows `(left - floor) / M`
        // of them to go, counted without walking the list.
        let loaded = self
            .loaded_low
            .min(self.loaded.len())
            .min(left.saturating_sub(self.floor) / self.magazine_size);
        let empty_floor = self.floor.div_ceil(self.magazine_size);
        let empty = self
            .empty_low
            .min(self.empty.len())
            .min(self.empty.len().saturating_sub(empty_floor));
        self.reaping_loaded = loaded;
        self.reaping_empty = empty;
        // The room the interval used above what sat unused (and now goes).
        self.shrink_to = self
            .capacity
            .is_none()
            .then(|| self.high.saturating_sub(loaded + empty));
        // The new interval: every magazine that stays is unused in it so far.
        self.loaded_low = self.loaded.len();
        self.empty_low = self.empty.len();
        self.high = self.loaded.len() + self.empty.len() - loaded - empty;
        self.partial_idle = !self.partial.is_empty();
        partial
    }

    /// Moves up to `REAP_CHUNK` condemned magazines into `chunk` (full ones first,
    /// oldest first), and shrinks the lists once the last is out. Returns the number of
    /// objects moved; 0 with an empty `chunk` when the tick is done.
    #[cfg_attr(
        all(loom, not(test)),
        allow(
            dead_code,
            reason = "called by the reaper, which loom builds leave out"
        )
    )]
    pub(crate) fn reap_chunk(&mut self, chunk: &mut ReapChunk<T>) -> usize {
        let mut moved = 0;
        while !chunk.is_full() && self.reaping_loaded > 0 {
            // Threads may have taken objects meanwhile: the floor still holds.
            let Some(front) = self.loaded.front() else {
                break;
            };
            if self.objects - front.len() < self.floor {
                self.reaping_loaded = 0;
                break;
            }
            let Some(magazine) = self.loaded.pop_front() else {
                break;
            };
            self.reaping_loaded -= 1;
            self.loaded_low = self.loaded_low.saturating_sub(1);
            self.objects -= magazine.len();
            moved += magazine.len();
            chunk.push(magazine);
        }
        let empty_floor = self.floor.div_ceil(self.magazine_size);
        while !chunk.is_full() && self.reaping_empty > 0 && self.empty.len() > empty_floor {
            let Some(magazine) = self.empty.pop_front() else {
                break;
            };
            self.reaping_empty -= 1;
            self.empty_low = self.empty_low.saturating_sub(1);
            chunk.push(magazine);
        }
        if self.empty.len() <= empty_floor {
            self.reaping_empty = 0;
        }
        if self.reaping_loaded == 0
            && self.reaping_empty == 0
            && let Some(used) = self.shrink_to.take()
        {
            let used = used.max(self.loaded.len() + self.empty.len());
            shrink(&mut self.loaded, &mut self.spare_loaded, used);
            shrink(&mut self.empty, &mut self.spare_empty, used);
        }
        moved
    }

    /// A whole reclaim tick at once, into `surplus` (for tests).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn reap_unused(&mut self, surplus: &mut Surplus<T>) -> usize {
        let mut freed = 0;
        if let Some(partial) = self.begin_reap() {
            freed += partial.len();
            surplus.magazines.push(partial);
        }
        loop {
            let mut chunk = ReapChunk::new();
            freed += self.reap_chunk(&mut chunk);
            if chunk.is_empty() {
                return freed;
            }
            surplus.magazines.extend(chunk);
        }
    }

    /// Moves every magazine to `surplus`. Returns the number of objects moved.
    pub(crate) fn drain_all(&mut self, surplus: &mut Surplus<T>) -> usize {
        let freed = self.objects;
        surplus.magazines.extend(self.loaded.drain(..));
        surplus.magazines.extend(self.empty.drain(..));
        surplus.magazines.push(std::mem::take(&mut self.partial));
        self.reaping_loaded = 0;
        self.reaping_empty = 0;
        self.shrink_to = None;
        self.objects = 0;
        self.loaded_low = 0;
        self.empty_low = 0;
        self.high = 0;
        self.partial_idle = false;
        if self.capacity.is_none() {
            shrink(&mut self.loaded, &mut self.spare_loaded, 0);
            shrink(&mut self.empty, &mut self.spare_empty, 0);
        }
        freed
    }
}

#[cfg_attr(
    all(loom, not(test)),
    allow(dead_code, reason = "used by the reap, which only the reaper calls")
)]
/// Gives back a grown list's room once the last interval used less than a quarter of it
/// (`used` magazines) and what it holds fits in its first buffer: the survivors move
/// into that buffer (back from `spare`) and the grown one is freed, so a reclaim tick
/// makes no allocator call but frees. A list that a recurring burst fills and empties
/// keeps its room (freeing it between bursts would make the next burst grow it again
/// under the lock); one that keeps more than 64 survivors (a large reserve) keeps its
/// room, at most twice the most magazines it held.
fn shrink<M>(list: &mut VecDeque<M>, spare: &mut VecDeque<M>, used: usize) {
    if spare.capacity() > 0 && used < list.capacity() / 4 && list.len() <= spare.capacity() {
        spare.extend(list.drain(..));
        std::mem::swap(list, spare);
        *spare = VecDeque::new();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn magazine(n: usize) -> Magazine<u32> {
        let mut m = Vec::with_capacity(4);
        m.extend((0..n).map(|i| Box::new(i as u32)));
        m
    }

    #[test]
    fn reaps_only_what_sat_unused_for_a_whole_interval() {
        let mut depot = Depot::new(Some(8), 4);
        let mut surplus = Surplus::new();
        for _ in 0..3 {
            depot.put(magazine(4), &mut surplus);
        }
        // The low-water mark was 0 when they arrived: nothing is reaped yet.
        assert_eq!(depot.reap_unused(&mut surplus), 0);
        // Next interval: one magazine is taken and given back; two never moved.
        let m = depot.take_loaded().unwrap();
        depot.put(m, &mut surplus);
        assert_eq!(depot.reap_unused(&mut surplus), 8);
        assert_eq!(depot.objects(), 4);
        // The survivor was used; untouched for one more interval, it goes too.
        assert_eq!(depot.reap_unused(&mut surplus), 4);
        assert_eq!(depot.objects(), 0);
        assert_eq!(surplus.objects(), 12);
    }

    #[test]
    fn the_floor_is_counted_in_objects_and_never_reaped() {
        let mut depot = Depot::new(None, 4);
        let mut surplus = Surplus::new();
        for _ in 0..4 {
            depot.put(magazine(4), &mut surplus);
        }
        depot.put(magazine(1), &mut surplus);
        depot.set_floor(10);
        depot.reap_unused(&mut surplus);
        // Unused for a whole interval: the partial one and one full one go; 12 stay
        // (taking another would leave 8, under the floor).
        assert_eq!(depot.reap_unused(&mut surplus), 5);
        assert_eq!(depot.reap_unused(&mut surplus), 0);
        assert_eq!(depot.objects(), 12);
        depot.set_floor(0);
        assert_eq!(depot.reap_unused(&mut surplus), 12);
    }

    #[test]
    fn partial_magazines_are_poured_into_one() {
        let mut depot = Depot::new(None, 4);
        let mut surplus = Surplus::new();
        depot.put(magazine(3), &mut surplus);
        depot.put(magazine(3), &mut surplus); // 3 + 1 make a full one; 2 stay partial
        depot.put(magazine(1), &mut surplus); // 3 partial
        assert_eq!(depot.objects(), 7);
        assert_eq!((depot.loaded.len(), depot.partial.len()), (1, 3));
        // The magazines poured out wait empty, to be reused.
        assert_eq!(depot.empty_magazines(), 1);
        depot.put(magazine(1), &mut surplus); // fills the partial one exactly
        assert_eq!((depot.loaded.len(), depot.partial.capacity()), (2, 0));
        assert_eq!(depot.empty_magazines(), 2);
        assert_eq!(depot.objects(), 8);
        assert_eq!(surplus.objects(), 0);
    }

    /// A thread without a cache (during its teardown) takes single objects; the
    /// magazine it draws from is part of the working set and is not reaped.
    #[test]
    fn single_takes_mark_the_working_set() {
        let mut depot = Depot::new(Some(8), 4);
        let mut surplus = Surplus::new();
        depot.put(magazine(4), &mut surplus);
        depot.put(magazine(4), &mut surplus);
        depot.reap_unused(&mut surplus); // starts an interval with both below the mark
        assert!(depot.take_one(&mut surplus).is_some());
        // The bottom magazine sat unused; the one drawn from is now the partial one.
        assert_eq!(depot.reap_unused(&mut surplus), 4);
        assert_eq!(depot.objects(), 3);
        assert_eq!(surplus.objects(), 4);
    }

    #[test]
    fn overflow_goes_to_surplus_and_empties_are_kept_apart() {
        let mut depot = Depot::new(Some(1), 4);
        let mut surplus = Surplus::new();
        depot.put(magazine(4), &mut surplus);
        depot.put(magazine(4), &mut surplus);
        assert_eq!(surplus.objects(), 4);
        depot.put(magazine(0), &mut surplus);
        assert_eq!(depot.take_empty().map(|m| m.capacity()), Some(4));
        assert_eq!(depot.take_one(&mut surplus).map(|b| *b), Some(3));
        assert_eq!(depot.objects(), 3);
        assert_eq!(depot.drain_all(&mut surplus), 3);
    }

    #[test]
    fn an_uncapped_list_grows_with_the_working_set_and_shrinks_when_reaped() {
        let mut depot = Depot::new(None, 4);
        let mut surplus = Surplus::new();
        for _ in 0..1000 {
            depot.put(magazine(4), &mut surplus);
        }
        assert_eq!((depot.objects(), surplus.objects()), (4000, 0));
        let grown = depot.list_bytes();
        depot.reap_unused(&mut surplus);
        // A burst empties the list and fills it again: its room stays.
        let taken: Vec<_> = (0..1000).map(|_| depot.take_loaded().unwrap()).collect();
        assert_eq!(depot.reap_unused(&mut surplus), 0);
        assert_eq!(depot.list_bytes(), grown);
        for magazine in taken {
            depot.put(magazine, &mut surplus);
        }
        assert_eq!(depot.list_bytes(), grown, "refilled without reallocating");
        depot.reap_unused(&mut surplus);
        // A whole interval without use: the magazines and the room go together.
        assert_eq!(depot.reap_unused(&mut surplus), 4000);
        assert!(
            depot.list_bytes() < grown / 8,
            "{} of {grown}",
            depot.list_bytes()
        );
    }
}
