//! Pool configuration and its validation.

use std::time::Duration;

/// How a [`Pool`](super::Pool) sizes its caches, bounds its idle memory and reclaims it.
///
/// Build one with [`PoolConfig::new`] and the setters; [`Pool::new`](super::Pool::new)
/// validates it and refuses zero or absurd sizes with a [`ConfigError`].
///
/// The depot follows the working set: what threads used in the last reclaim interval
/// stays idle, what sat unused for a whole interval is freed. Idle objects are bounded
/// by what was in use at once (a pool creates an object only when no idle one is in
/// reach) and, when set, by `max_idle_bytes` and `depot_magazines`;
/// `docs/pool-design.md`, "Bounds and accounting", has the formulas.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use infrastructure::memory::{Pool, PoolConfig};
/// use infrastructure::types::Order;
///
/// let config = PoolConfig::new("hedger_orders")
///     .magazine_size(32)
///     .max_idle_bytes(Some(64 << 20))
///     .reclaim_interval(Some(Duration::from_millis(500)))
///     .max_live(Some(10_000));
/// let pool = Pool::<Order>::new(config)?;
/// assert_eq!(pool.stats().live, 0);
/// # Ok::<(), infrastructure::memory::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    pub(crate) name: String,
    pub(crate) magazine_size: usize,
    pub(crate) depot_magazines: Option<usize>,
    pub(crate) max_idle_bytes: Option<usize>,
    pub(crate) reclaim: Reclaim,
    pub(crate) max_live: Option<usize>,
    pub(crate) max_retained_bytes: Option<usize>,
    pub(crate) exported: bool,
}

/// Who frees a pool's idle objects that went unused for a whole reclaim interval, and
/// when (`docs/pool-design.md`, "Automatic reclamation", has what each guarantees).
///
/// # Examples
/// A latency-critical process that allows no thread it did not start drives
/// reclamation from its own housekeeping thread:
/// ```
/// use std::time::Duration;
/// use infrastructure::memory::{Pool, PoolConfig, Reclaim, reclaim_driven};
/// use infrastructure::types::Order;
///
/// let pool = Pool::<Order>::new(PoolConfig::new("driven_orders").reclaim(Reclaim::Driven))?;
/// drop((0..1_000).map(|_| pool.acquire()).collect::<Vec<_>>());
/// // Every interval of its choosing (here: three in a row), one call, no allocation:
/// for _ in 0..3 {
///     reclaim_driven();
/// }
/// assert!(pool.stats().idle <= 2 * 64, "only this thread's own magazines stay");
/// # Ok::<(), infrastructure::memory::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reclaim {
    /// The process-wide reaper thread (`pool-reaper`, started by the first such pool)
    /// ticks the pool every interval: an idle object is freed one to two intervals
    /// after its last use, with no call.
    Background(Duration),
    /// The application ticks the pool: each call of
    /// [`reclaim_driven`](super::reclaim_driven) is one tick of every pool in this
    /// mode, on the calling thread, bounded and allocation-free. No thread is started
    /// for the pool. An idle object is freed at the second call after its last use.
    Driven,
    /// Nothing automatic: [`Pool::reclaim`](super::Pool::reclaim) frees idle objects
    /// on request, and thread caches do not age.
    Off,
}

/// Largest accepted `magazine_size`: beyond this a per-thread cache stops being a cache.
pub const MAX_MAGAZINE_SIZE: usize = 4096;
/// Largest accepted `depot_magazines`. A capped depot reserves its two lists up front
/// (24 bytes per magazine in each, 48 per unit of `depot_magazines`) so that it never
/// reallocates under its lock.
pub const MAX_DEPOT_MAGAZINES: usize = 1 << 16;
/// Largest accepted idle bound of a capped depot, in bytes (`depot_magazines × magazine_size × size_of::<T>()`).
pub const MAX_DEPOT_BYTES: usize = 16 << 30;
/// Most bytes of objects one [`Pool::reserve`](super::Pool::reserve) creates in a pool
/// without `max_idle_bytes`.
pub const MAX_RESERVE_BYTES: usize = 16 << 30;
/// Shortest accepted reclaim interval.
pub const MIN_RECLAIM_INTERVAL: Duration = Duration::from_millis(1);
/// Longest accepted reclaim interval.
pub const MAX_RECLAIM_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);
/// Longest accepted pool name (it becomes a metric label).
pub const MAX_NAME_LEN: usize = 64;

/// Why a [`PoolConfig`] was refused.
///
/// # Examples
/// ```
/// use infrastructure::memory::{ConfigError, Pool, PoolConfig};
/// use infrastructure::types::Order;
///
/// let err = Pool::<Order>::new(PoolConfig::new("orders").magazine_size(0)).unwrap_err();
/// assert_eq!(err, ConfigError::MagazineSize(0));
/// assert_eq!(err.to_string(), "magazine_size 0 must be between 1 and 4096");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The name is empty, longer than [`MAX_NAME_LEN`] bytes, has a control character,
    /// or starts or ends with white space. Anything else is a valid name: it is a
    /// metric label value, which may be any text (`order-book`, `λ pool`).
    #[error(
        "pool name {0:?} must be 1 to {MAX_NAME_LEN} bytes of text without control characters or surrounding white space"
    )]
    InvalidName(String),
    /// An exported pool of this name exists already, or the name is a static pool's
    /// (`tick`, `signal`, `order`): exported names are metric label values, and two
    /// pools under one label would be one series.
    #[error(
        "an exported pool named {0:?} exists already (or it is a static pool's name): exported pools need distinct names"
    )]
    DuplicateName(String),
    /// `magazine_size` is outside `1..=MAX_MAGAZINE_SIZE`.
    #[error("magazine_size {0} must be between 1 and {MAX_MAGAZINE_SIZE}")]
    MagazineSize(usize),
    /// `depot_magazines` is outside `1..=MAX_DEPOT_MAGAZINES`.
    #[error("depot_magazines {0} must be between 1 and {MAX_DEPOT_MAGAZINES}")]
    DepotMagazines(usize),
    /// The depot could hold more than [`MAX_DEPOT_BYTES`] of idle objects.
    #[error(
        "the depot could hold {bytes} bytes of idle objects, more than the {MAX_DEPOT_BYTES}-byte limit"
    )]
    DepotTooLarge {
        /// `depot_magazines × magazine_size × size_of::<T>()`.
        bytes: u128,
    },
    /// The reclaim interval is outside `MIN_RECLAIM_INTERVAL..=MAX_RECLAIM_INTERVAL`.
    #[error(
        "reclaim_interval {0:?} must be between {MIN_RECLAIM_INTERVAL:?} and {MAX_RECLAIM_INTERVAL:?}"
    )]
    ReclaimInterval(Duration),
    /// `max_live` is `Some(0)`: no object could ever be acquired with `try_acquire`.
    #[error("max_live must be at least 1 when set")]
    MaxLive,
}

impl PoolConfig {
    /// Default `magazine_size`: 64 objects move per depot exchange.
    pub const DEFAULT_MAGAZINE_SIZE: usize = 64;
    /// Default reclaim interval.
    pub const DEFAULT_RECLAIM_INTERVAL: Duration = Duration::from_secs(1);

    /// The defaults, under `name` (the pool's label in stats and metrics).
    pub fn new(name: impl Into<String>) -> Self {
        PoolConfig {
            name: name.into(),
            magazine_size: Self::DEFAULT_MAGAZINE_SIZE,
            depot_magazines: None,
            max_idle_bytes: None,
            reclaim: Reclaim::Background(Self::DEFAULT_RECLAIM_INTERVAL),
            max_live: None,
            max_retained_bytes: None,
            exported: false,
        }
    }

    /// Objects per magazine: the per-thread cache holds at most two magazines, and
    /// threads trade whole magazines with the depot.
    #[must_use]
    pub fn magazine_size(mut self, objects: usize) -> Self {
        self.magazine_size = objects;
        self
    }

    /// Most magazines the shared depot keeps in each of its lists (full, empty); what
    /// is released beyond that is freed at once ("trimmed"). `None` (the default): as
    /// many as the working set needs, the reaper freeing what sat unused for a whole
    /// interval. A capped depot reserves its lists up front and never reallocates them.
    #[must_use]
    pub fn depot_magazines(mut self, magazines: Option<usize>) -> Self {
        self.depot_magazines = magazines;
        self
    }

    /// Ceiling on the bytes of idle objects (each object's size plus the heap it
    /// declares through [`Poolable::heap_bytes`](super::Poolable::heap_bytes)), in
    /// thread caches and the depot. A thread that hands a full magazine to the depot
    /// frees it instead ("trimmed") when keeping it, with the magazine the thread goes
    /// on filling, would pass the ceiling. Thread caches fill without a check (that is
    /// the hot path), so other threads' caches can add up to `2 × magazine_size`
    /// objects each, and a cache being filled the heap its objects declare, on top.
    /// `None` (the default): no ceiling beyond the working set.
    #[must_use]
    pub fn max_idle_bytes(mut self, bytes: Option<usize>) -> Self {
        self.max_idle_bytes = bytes;
        self
    }

    /// How often the background reaper frees idle objects that went unused for a whole
    /// interval: `Some(interval)` is [`Reclaim::Background`], `None` is
    /// [`Reclaim::Off`] ([`Pool::reclaim`](super::Pool::reclaim) still works).
    #[must_use]
    pub fn reclaim_interval(mut self, interval: Option<Duration>) -> Self {
        self.reclaim = interval.map_or(Reclaim::Off, Reclaim::Background);
        self
    }

    /// Who reclaims idle objects, and when: the reaper thread (the default, every
    /// second), the application ([`Reclaim::Driven`]), or nobody.
    #[must_use]
    pub fn reclaim(mut self, reclaim: Reclaim) -> Self {
        self.reclaim = reclaim;
        self
    }

    /// The reclaim mode.
    pub fn reclaim_mode(&self) -> Reclaim {
        self.reclaim
    }

    /// Hard cap on objects in use at once, honoured by
    /// [`Pool::try_acquire`](super::Pool::try_acquire). A capped pool pays one shared
    /// atomic per acquire and release; an uncapped pool pays nothing.
    #[must_use]
    pub fn max_live(mut self, cap: Option<usize>) -> Self {
        self.max_live = cap;
        self
    }

    /// Most heap bytes (as [`Poolable::heap_bytes`](super::Poolable::heap_bytes)
    /// reports them) a released object may keep and still be cached; one over it is
    /// freed instead, counted in `stats().discarded`, so that one huge message does not
    /// leave a buffer the pool keeps for ever. With automatic reclamation the reaper
    /// frees it at its next tick (up to 64 wait; more are freed by the releasing
    /// thread), so a latency-critical thread does not pay for returning megabytes to
    /// the OS; until then it counts as idle. `None` (the default): no limit. Types that
    /// do not implement `heap_bytes` report 0 and are never discarded.
    #[must_use]
    pub fn max_retained_bytes(mut self, bytes: Option<usize>) -> Self {
        self.max_retained_bytes = bytes;
        self
    }

    /// Lists the pool in the public registry (for monitoring) under its name.
    #[must_use]
    pub fn exported(mut self, exported: bool) -> Self {
        self.exported = exported;
        self
    }

    /// The most bytes a pool with this configuration holds in objects of
    /// `object_size` bytes and in magazines, while at most `in_use` objects are in use
    /// at once and at most `threads` threads use it, without a reserve (its fixed
    /// part, `stats().overhead_bytes` before first use, and slot buckets of thread ids
    /// past the 16 inline ones come on top, as does the heap objects declare). With a
    /// reserve, [`Self::memory_bound_with_reserve`].
    ///
    /// The reasoning, in `docs/pool-design.md` ("Bounds and accounting"): a pool
    /// creates an object only when the acquiring thread finds none idle in its cache or
    /// the depot, so it owns at most `in_use` objects plus what the other threads'
    /// caches hold (2 magazines each) and one magazine each may be handing to the depot
    /// right then; a magazine buffer is created only when the depot has no empty one,
    /// so there are at most 2 per thread in caches, one per full magazine's worth of
    /// owned objects and one partial in the depot, and one being created; each of the
    /// depot's two lists has room for at most twice the magazines held, plus its first
    /// 64 entries (kept aside while it is larger), of 24 bytes each.
    ///
    /// # Examples
    /// ```
    /// use infrastructure::memory::PoolConfig;
    ///
    /// let config = PoolConfig::new("orders");
    /// // 10,000 orders of 136 bytes in use at most, by 4 threads.
    /// let bound = config.memory_bound(136, 10_000, 4);
    /// assert!(bound > 10_000 * 136 && bound < 2 * 10_000 * 136);
    /// ```
    #[must_use]
    pub fn memory_bound(&self, object_size: usize, in_use: usize, threads: usize) -> usize {
        self.memory_bound_with_reserve(object_size, in_use, threads, 0)
    }

    /// [`Self::memory_bound`] for a pool that also holds a reserve of `reserve`
    /// objects (`Pool::reserve`), made while none of its objects were in use (at
    /// start-up, as the pipeline does). Such a reserve creates objects up to
    /// `reserve` (the bound on objects is the larger of the two) and, besides the
    /// magazines it fills, an empty buffer for each, so that its objects can all come
    /// back without a buffer being created: `⌈reserve / M⌉` buffers more. A reserve
    /// made while objects are out can create up to `reserve` objects on top of those;
    /// two made at once can too while they run, but the second to store frees what the
    /// first already stored before it returns (`docs/pool-design.md`).
    ///
    /// # Examples
    /// ```
    /// use infrastructure::memory::PoolConfig;
    ///
    /// let config = PoolConfig::new("orders");
    /// let bound = config.memory_bound_with_reserve(136, 10_000, 4, 10_000);
    /// // The objects are those of the bound without a reserve; the empty buffers are more.
    /// assert!(bound > config.memory_bound(136, 10_000, 4));
    /// ```
    #[must_use]
    pub fn memory_bound_with_reserve(
        &self,
        object_size: usize,
        in_use: usize,
        threads: usize,
        reserve: usize,
    ) -> usize {
        let m = self.magazine_size;
        let objects = in_use
            .saturating_add(threads.saturating_mul(3 * m))
            .max(reserve);
        let magazines = objects.div_ceil(m) + reserve.div_ceil(m) + 2 * threads + 2;
        let buffer = m * std::mem::size_of::<usize>();
        let list_entry = 3 * std::mem::size_of::<usize>();
        objects.saturating_mul(object_size)
            + magazines.saturating_mul(buffer)
            + 2 * (2 * magazines + 2 * 64) * list_entry
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks every field for objects of `object_size` bytes.
    pub(crate) fn validate(&self, object_size: usize) -> Result<(), ConfigError> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= MAX_NAME_LEN
            && self.name.trim() == self.name
            && !self.name.chars().any(char::is_control);
        if !name_ok {
            return Err(ConfigError::InvalidName(self.name.clone()));
        }
        if !(1..=MAX_MAGAZINE_SIZE).contains(&self.magazine_size) {
            return Err(ConfigError::MagazineSize(self.magazine_size));
        }
        if let Some(magazines) = self.depot_magazines {
            if !(1..=MAX_DEPOT_MAGAZINES).contains(&magazines) {
                return Err(ConfigError::DepotMagazines(magazines));
            }
            let bytes = magazines as u128 * self.magazine_size as u128 * object_size as u128;
            if bytes > MAX_DEPOT_BYTES as u128 {
                return Err(ConfigError::DepotTooLarge { bytes });
            }
        }
        if let Reclaim::Background(interval) = self.reclaim
            && !(MIN_RECLAIM_INTERVAL..=MAX_RECLAIM_INTERVAL).contains(&interval)
        {
            return Err(ConfigError::ReclaimInterval(interval));
        }
        if self.max_live == Some(0) {
            return Err(ConfigError::MaxLive);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(PoolConfig::new("orders").validate(128), Ok(()));
    }

    #[test]
    fn zero_and_absurd_sizes_are_errors() {
        let base = || PoolConfig::new("p");
        let cases = [
            (base().magazine_size(0), ConfigError::MagazineSize(0)),
            (
                base().magazine_size(MAX_MAGAZINE_SIZE + 1),
                ConfigError::MagazineSize(MAX_MAGAZINE_SIZE + 1),
            ),
            (
                base().depot_magazines(Some(0)),
                ConfigError::DepotMagazines(0),
            ),
            (
                base().depot_magazines(Some(usize::MAX)),
                ConfigError::DepotMagazines(usize::MAX),
            ),
            (
                base()
                    .reclaim_interval(Some(Duration::ZERO))
                    .magazine_size(1),
                ConfigError::ReclaimInterval(Duration::ZERO),
            ),
            (
                base().reclaim_interval(Some(Duration::from_secs(365 * 86_400))),
                ConfigError::ReclaimInterval(Duration::from_secs(365 * 86_400)),
            ),
            (base().max_live(Some(0)), ConfigError::MaxLive),
            (PoolConfig::new(""), ConfigError::InvalidName(String::new())),
            (
                PoolConfig::new(" padded"),
                ConfigError::InvalidName(" padded".into()),
            ),
            (
                PoolConfig::new("line\nbreak"),
                ConfigError::InvalidName("line\nbreak".into()),
            ),
            (
                PoolConfig::new("x".repeat(65)),
                ConfigError::InvalidName("x".repeat(65)),
            ),
        ];
        for (config, expected) in cases {
            assert_eq!(config.validate(128), Err(expected), "{config:?}");
        }
        // Label values are any text.
        for name in ["order-book", "9lives", "has space", "λ", "a.b/c"] {
            assert_eq!(PoolConfig::new(name).validate(128), Ok(()), "{name}");
        }
    }

    #[test]
    fn depot_byte_bound_accounts_for_object_size() {
        let config = PoolConfig::new("big")
            .magazine_size(MAX_MAGAZINE_SIZE)
            .depot_magazines(Some(MAX_DEPOT_MAGAZINES));
        assert!(matches!(
            config.validate(1 << 20),
            Err(ConfigError::DepotTooLarge { .. })
        ));
        assert_eq!(config.clone().depot_magazines(Some(4)).validate(8), Ok(()));
        // Uncapped: the working set bounds the depot, whatever the object size.
        assert_eq!(config.depot_magazines(None).validate(1 << 20), Ok(()));
    }
}
