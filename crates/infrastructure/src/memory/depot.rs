//! The shared depot: magazines of idle objects that threads trade whole.
//!
//! Bonwick & Adams' depot (USENIX 2001): a list of loaded magazines and a list of empty
//! ones, touched under one lock only when a thread's own two magazines cannot serve it,
//! so the lock is taken once per `magazine_size` objects. Each list remembers the
//! lowest length it reached since the last reclaim tick; magazines below that mark sat
//! unused for the whole interval and are the ones the reaper frees (the working-set
//! rule). Lists are stacks: the bottom holds the oldest magazines.

/// A magazine: a stack of idle objects with a fixed capacity (`magazine_size`).
///
/// A `Vec` with capacity 0 stands for "no magazine" in a thread cache.
pub(crate) type Magazine<T> = Vec<Box<T>>;

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
    #[cfg_attr(
        all(loom, not(test)),
        allow(dead_code, reason = "used by the reap, which only the reaper calls")
    )]
    pub(crate) fn objects(&self) -> usize {
        self.magazines.iter().map(Vec::len).sum()
    }
}

/// The depot's state, behind the pool's depot mutex.
#[derive(Debug)]
pub(crate) struct Depot<T> {
    /// Magazines holding at least one object (full ones from releases, partial ones
    /// from thread-exit flushes).
    loaded: Vec<Magazine<T>>,
    /// Empty magazines (capacity `magazine_size`, length 0).
    empty: Vec<Magazine<T>>,
    /// Lowest `loaded.len()` since the last working-set update.
    loaded_low: usize,
    /// Lowest `empty.len()` since the last working-set update.
    empty_low: usize,
    /// Objects in `loaded`.
    objects: usize,
    /// Most magazines kept in each list.
    capacity: usize,
    /// Magazines of each list the reaper leaves in place (`Pool::reserve`): the
    /// reserved objects, and as many empty magazines to release them into.
    floor: usize,
}

impl<T> Depot<T> {
    /// A depot keeping at most `capacity` magazines in each list. Both lists are
    /// reserved now, so storing a magazine never reallocates under the lock.
    pub(crate) fn new(capacity: usize) -> Self {
        Depot {
            loaded: Vec::with_capacity(capacity),
            empty: Vec::with_capacity(capacity),
            loaded_low: 0,
            empty_low: 0,
            objects: 0,
            capacity,
            floor: 0,
        }
    }

    /// Heap bytes of the two lists' bookkeeping (reserved up front, never grown).
    pub(crate) fn list_bytes(&self) -> usize {
        (self.loaded.capacity() + self.empty.capacity()) * std::mem::size_of::<Magazine<T>>()
    }

    /// Empty magazines stored.
    pub(crate) fn empty_magazines(&self) -> usize {
        self.empty.len()
    }

    /// Most magazines kept in each list.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Makes [`reap_unused`](Self::reap_unused) keep at least `magazines` magazines in
    /// each list (a reserve the working-set rule does not touch).
    pub(crate) fn set_floor(&mut self, magazines: usize) {
        self.floor = magazines.min(self.capacity);
    }

    /// Idle objects in the depot.
    pub(crate) fn objects(&self) -> usize {
        self.objects
    }

    /// Takes the most recently stored loaded magazine.
    pub(crate) fn take_loaded(&mut self) -> Option<Magazine<T>> {
        let magazine = self.loaded.pop()?;
        self.loaded_low = self.loaded_low.min(self.loaded.len());
        self.objects -= magazine.len();
        Some(magazine)
    }

    /// Takes one object out of the newest loaded magazine (for threads without a cache).
    /// That magazine counts as used in this interval, like one taken whole; once empty
    /// it goes to the empty list, or to `surplus` if that is full.
    pub(crate) fn take_one(&mut self, surplus: &mut Surplus<T>) -> Option<Box<T>> {
        let top = self.loaded.last_mut()?;
        let object = top.pop();
        debug_assert!(object.is_some(), "loaded magazines are never empty");
        self.objects -= 1;
        let below_top = self.loaded.len() - 1;
        self.loaded_low = self.loaded_low.min(below_top);
        if self.loaded[below_top].is_empty()
            && let Some(magazine) = self.loaded.pop()
        {
            self.put_empty(magazine, surplus);
        }
        object
    }

    /// Stores a magazine: loaded ones on the loaded list, empty ones on the empty list.
    /// A magazine that does not fit goes to `surplus`, to be freed outside the lock.
    pub(crate) fn put(&mut self, magazine: Magazine<T>, surplus: &mut Surplus<T>) {
        if magazine.is_empty() {
            self.put_empty(magazine, surplus);
        } else if self.loaded.len() < self.capacity {
            self.objects += magazine.len();
            self.loaded.push(magazine);
        } else {
            surplus.magazines.push(magazine);
        }
    }

    fn put_empty(&mut self, magazine: Magazine<T>, surplus: &mut Surplus<T>) {
        if magazine.capacity() == 0 {
            return;
        }
        if self.empty.len() < self.capacity {
            self.empty.push(magazine);
        } else {
            surplus.magazines.push(magazine);
        }
    }

    /// Takes an empty magazine, if one is stored.
    pub(crate) fn take_empty(&mut self) -> Option<Magazine<T>> {
        let magazine = self.empty.pop()?;
        self.empty_low = self.empty_low.min(self.empty.len());
        Some(magazine)
    }

    /// One reclaim tick: moves to `surplus` the magazines that stayed below both lists'
    /// low-water marks for the whole interval since the last tick (keeping the floor
    /// in each list), then starts a new interval. Returns the number of objects
    /// moved.
    #[cfg_attr(
        all(loom, not(test)),
        allow(
            dead_code,
            reason = "called by the reaper, which loom builds leave out"
        )
    )]
    pub(crate) fn reap_unused(&mut self, surplus: &mut Surplus<T>) -> usize {
        let loaded = self
            .loaded_low
            .min(self.loaded.len())
            .min(self.loaded.len().saturating_sub(self.floor));
        let empty = self
            .empty_low
            .min(self.empty.len())
            .min(self.empty.len().saturating_sub(self.floor));
        let before = surplus.objects();
        surplus.magazines.extend(self.loaded.drain(..loaded));
        surplus.magazines.extend(self.empty.drain(..empty));
        let freed = surplus.objects() - before;
        self.objects -= freed;
        self.loaded_low = self.loaded.len();
        self.empty_low = self.empty.len();
        freed
    }

    /// Moves every magazine to `surplus`. Returns the number of objects moved.
    pub(crate) fn drain_all(&mut self, surplus: &mut Surplus<T>) -> usize {
        let freed = self.objects;
        surplus.magazines.append(&mut self.loaded);
        surplus.magazines.append(&mut self.empty);
        self.objects = 0;
        self.loaded_low = 0;
        self.empty_low = 0;
        freed
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
        let mut depot = Depot::new(8);
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
    fn the_floor_is_never_reaped() {
        let mut depot = Depot::new(8);
        let mut surplus = Surplus::new();
        for _ in 0..4 {
            depot.put(magazine(4), &mut surplus);
        }
        depot.set_floor(3);
        depot.reap_unused(&mut surplus);
        // Unused for a whole interval, but only the one above the floor goes.
        assert_eq!(depot.reap_unused(&mut surplus), 4);
        assert_eq!(depot.reap_unused(&mut surplus), 0);
        assert_eq!(depot.objects(), 12);
        depot.set_floor(0);
        assert_eq!(depot.reap_unused(&mut surplus), 12);
    }

    /// A thread without a cache (during its teardown) takes single objects; the
    /// magazine it draws from is part of the working set and is not reaped.
    #[test]
    fn single_takes_mark_the_working_set() {
        let mut depot = Depot::new(8);
        let mut surplus = Surplus::new();
        depot.put(magazine(4), &mut surplus);
        depot.put(magazine(4), &mut surplus);
        depot.reap_unused(&mut surplus); // starts an interval with both below the mark
        assert!(depot.take_one(&mut surplus).is_some());
        // The bottom magazine sat unused; the top one was drawn from.
        assert_eq!(depot.reap_unused(&mut surplus), 4);
        assert_eq!(depot.objects(), 3);
        assert_eq!(surplus.objects(), 4);
    }

    #[test]
    fn overflow_goes_to_surplus_and_empties_are_kept_apart() {
        let mut depot = Depot::new(1);
        let mut surplus = Surplus::new();
        depot.put(magazine(4), &mut surplus);
        depot.put(magazine(2), &mut surplus);
        assert_eq!(surplus.objects(), 2);
        depot.put(magazine(0), &mut surplus);
        assert_eq!(depot.take_empty().map(|m| m.capacity()), Some(4));
        assert_eq!(depot.take_one(&mut surplus).map(|b| *b), Some(3));
        assert_eq!(depot.objects(), 3);
        assert_eq!(depot.drain_all(&mut surplus), 3);
    }
}
