//! The monitoring layer: what the pools know, in the format Prometheus scrapes.
//!
//! - [`pool_registry`]: a registry with every metric this crate offers, all under the
//!   [`NAMESPACE`] prefix (`trading_…`) except the standard `process_*` family:
//!   - [`PoolCollector`] reads, at every scrape, the statistics of every exported pool
//!     (the three static pools and every `Pool` built with `PoolConfig::exported(true)`,
//!     via `infrastructure::memory::exported_pool_stats`), `MEMORY_STATS`, and the
//!     counting allocator's live bytes when it is installed;
//!   - [`ProcessCollector`]: CPU, resident and virtual memory, open and maximum file
//!     descriptors, threads and start time, from `/proc/self`;
//!   - `trading_build_info`: the version and build profile, as labels.
//! - [`register_fn`]: adds a counter or gauge read from a closure at scrape time (the
//!   pipeline's tick count, for instance); [`register_latency`]: a family of
//!   [`LatencyHistogram`]s, one per label value, as a Prometheus histogram in seconds.
//! - [`render`]: the registry in Prometheus text format.
//! - [`server::MetricsServer`]: `GET` and `HEAD /metrics` over HTTP (hyper), bound to
//!   loopback by default, with header-read timeouts, a header size cap and a
//!   connection limit that evicts idle connections first and answers 503 after.
//!
//! Counters end in `_total`; every quantity is in base units (`_bytes`, `_seconds`);
//! each pool is a `pool` label, whose value may be any text. The crate re-exports
//! [`prometheus_client`], so a user's own version of it never clashes with the
//! [`Registry`] this API hands out. `docs/monitoring.md` lists every metric, a scrape
//! config, PromQL for the dashboards, and the Grafana dashboard.
#![forbid(unsafe_code)]

pub mod histogram;
pub mod process;
pub mod server;

use std::fmt;
use std::sync::{Arc, LazyLock, OnceLock};

use infrastructure::alloc_count::CountingAllocator;
use infrastructure::memory::safe_pools::{ORDER_POOL, SIGNAL_POOL, TICK_POOL};
use infrastructure::memory::{MEMORY_STATS, PoolStats, exported_pool_stats};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

pub use histogram::{HistogramSnapshot, LatencyHistogram, LatencyRecorder};
pub use process::{ProcessCollector, ProcessFigures};
pub use prometheus_client;
pub use prometheus_client::registry::Registry;
pub use server::{MetricsServer, ServerError, ServerOptions};

/// The prefix of every metric this crate registers, but the standard `process_*` ones.
pub const NAMESPACE: &str = "trading";

/// Where the endpoint listens unless told otherwise: loopback only, so the metrics are
/// not exposed beyond the host by accident.
pub const DEFAULT_ADDR: std::net::SocketAddr = std::net::SocketAddr::V4(
    std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 9898),
);

/// The content type of [`render`]'s output (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A per-pool counter: metric name (before `_total`), help, and how to read it.
type PoolCounter = (&'static str, &'static str, fn(&PoolStats) -> u64);

const POOL_COUNTERS: &[PoolCounter] = &[
    (
        "pool_acquired",
        "Objects handed out by acquire and try_acquire.",
        |s| s.acquired,
    ),
    (
        "pool_released",
        "Objects given back (guards dropped).",
        |s| s.released,
    ),
    (
        "pool_hits",
        "Acquires served by an idle object, without allocating.",
        |s| s.hits,
    ),
    (
        "pool_misses",
        "Acquires that had to allocate a new object.",
        |s| s.misses,
    ),
    (
        "pool_reclaimed",
        "Idle objects freed by reclamation (the automatic reaper or Pool::reclaim).",
        |s| s.reclaimed,
    ),
    (
        "pool_trimmed",
        "Idle objects freed at once: keeping them would pass max_idle_bytes, or a capped depot was full.",
        |s| s.trimmed,
    ),
    (
        "pool_dropped",
        "Released objects freed instead of cached (thread teardown, a panicking reset).",
        |s| s.dropped,
    ),
    (
        "pool_detached",
        "Objects detached from the pool for good.",
        |s| s.detached,
    ),
    (
        "pool_attached",
        "Boxed objects taken into the pool by attach.",
        |s| s.attached,
    ),
    (
        "pool_depot_locks",
        "Times a thread took the pool's depot lock (its slow paths).",
        |s| s.depot_locks,
    ),
    (
        "pool_depot_contended",
        "Times a thread found the pool's depot lock held by another thread.",
        |s| s.depot_contended,
    ),
    (
        "pool_rejected",
        "try_acquire calls refused at the max_live cap.",
        |s| s.rejected,
    ),
    (
        "pool_discarded",
        "Released objects freed instead of cached because they retained more heap than max_retained_bytes.",
        |s| s.discarded,
    ),
    (
        "pool_panicked",
        "Panics in user code (an object's Drop) that the pool ran on its own behalf and caught.",
        |s| s.panicked,
    ),
    (
        "pool_reserved",
        "Idle objects created ahead of demand by Pool::reserve.",
        |s| s.reserved,
    ),
];

/// A per-pool gauge: metric name, help, unit, and how to read it.
type PoolGauge = (
    &'static str,
    &'static str,
    Option<Unit>,
    fn(&PoolStats) -> f64,
);

#[allow(
    clippy::cast_precision_loss,
    reason = "gauges are f64 in Prometheus itself"
)]
fn pool_gauges() -> [PoolGauge; 12] {
    [
        (
            "pool_waiters",
            "Threads waiting in acquire_timeout for a slot under max_live.",
            None,
            |s| s.waiters as f64,
        ),
        ("pool_live_objects", "Objects in use now.", None, |s| {
            s.live as f64
        }),
        (
            "pool_idle_objects",
            "Idle objects the pool holds (thread caches and depot).",
            None,
            |s| s.idle as f64,
        ),
        (
            "pool_depot_objects",
            "Idle objects in the shared depot.",
            None,
            |s| s.depot_objects as f64,
        ),
        (
            "pool_thread_caches",
            "Threads holding a cache for the pool.",
            None,
            |s| s.thread_caches as f64,
        ),
        (
            "pool_hit_ratio",
            "Hits / acquisitions since the pool was created (0 before the first acquire).",
            None,
            |s| s.hit_rate,
        ),
        (
            "pool_memory",
            "Heap bytes the pool holds: objects, the heap idle objects retain, and the pool's own structures.",
            Some(Unit::Bytes),
            |s| s.bytes as f64,
        ),
        (
            "pool_object_memory",
            "Bytes of the objects the pool owns, in use and idle.",
            Some(Unit::Bytes),
            |s| s.object_bytes as f64,
        ),
        (
            "pool_idle_memory",
            "Bytes of the idle objects: their size and the heap they declare (what max_idle_bytes bounds).",
            Some(Unit::Bytes),
            |s| s.idle_bytes as f64,
        ),
        (
            "pool_retained_memory",
            "Heap bytes idle objects keep for reuse (Poolable::heap_bytes).",
            Some(Unit::Bytes),
            |s| s.retained_bytes as f64,
        ),
        (
            "pool_overhead_memory",
            "Bytes of the pool's own structures: thread slots, bucket tables, magazines, depot.",
            Some(Unit::Bytes),
            |s| s.overhead_bytes as f64,
        ),
        (
            "pool_object_size",
            "Size of one pooled object.",
            Some(Unit::Bytes),
            |s| s.object_size as f64,
        ),
    ]
}

/// Encodes, at each scrape, every exported pool's statistics and `MEMORY_STATS`.
#[derive(Debug, Default)]
pub struct PoolCollector;

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        // One consistent snapshot per scrape.
        let pools = exported_pool_stats();
        for (name, help, read) in POOL_COUNTERS {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for stats in &pools {
                let labels = [("pool", stats.name.as_str())];
                ConstCounter::new(read(stats)).encode(family.encode_family(&labels)?)?;
            }
        }
        for (name, help, unit, read) in pool_gauges() {
            let mut family =
                encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
            for stats in &pools {
                let labels = [("pool", stats.name.as_str())];
                ConstGauge::new(read(stats)).encode(family.encode_family(&labels)?)?;
            }
        }
        let memory = MEMORY_STATS.load();
        let heap = counting_allocator().then(CountingAllocator::live_bytes);
        for (name, help, value) in [
            (
                "all_pools_memory",
                "Heap bytes held by every pool in the process, exported or not: objects, retained heap, structures (MEMORY_STATS current_usage).",
                Some(memory.current_usage as i64),
            ),
            (
                "all_pools_retained_memory",
                "Heap bytes idle objects of every pool retain (MEMORY_STATS retained_bytes).",
                Some(memory.retained_bytes as i64),
            ),
            (
                "all_pools_overhead_memory",
                "Bytes of every pool's own structures (MEMORY_STATS overhead_bytes).",
                Some(memory.overhead_bytes as i64),
            ),
            (
                "all_pools_memory_peak",
                "Highest trading_all_pools_memory_bytes since start or the last reset (MEMORY_STATS peak_usage).",
                Some(memory.peak_usage as i64),
            ),
            (
                "heap_live",
                "Heap bytes allocated and not yet freed, process-wide, as the counting allocator sees them (present only when CountingAllocator is the global allocator). Falls when the pools free memory; resident memory may not.",
                heap.map(|b| b as i64),
            ),
        ] {
            if let Some(value) = value {
                let family =
                    encoder.encode_descriptor(name, help, Some(&Unit::Bytes), MetricType::Gauge)?;
                ConstGauge::new(value).encode(family)?;
            }
        }
        Ok(())
    }
}

/// Whether the counting allocator is the global allocator (probed once).
fn counting_allocator() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(CountingAllocator::is_installed)
}

/// `trading_build_info`: always 1, with the build as labels.
#[derive(Debug, Default)]
struct BuildInfo;

impl Collector for BuildInfo {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let profile = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        };
        let labels = [
            ("version", env!("CARGO_PKG_VERSION")),
            ("profile", profile),
            ("target", std::env::consts::ARCH),
            ("os", std::env::consts::OS),
        ];
        let mut family = encoder.encode_descriptor(
            "build_info",
            "The build of the process: 1, with its version and profile as labels.",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(1_i64).encode(family.encode_family(&labels)?)
    }
}

/// A registry with every metric of this crate (see the crate docs); add your own to it
/// with [`register_fn`] and [`register_latency`].
///
/// # Examples
/// ```
/// use infrastructure::memory::safe_pools::TICK_POOL;
///
/// drop(TICK_POOL.acquire());
/// let text = monitoring::render(&monitoring::pool_registry())?;
/// assert!(text.contains("# TYPE trading_pool_acquired_total counter"));
/// assert!(text.contains(r#"trading_pool_acquired_total{pool="tick"}"#));
/// assert!(text.contains("# TYPE trading_all_pools_memory_bytes gauge"));
/// assert!(text.contains("trading_build_info{version="));
/// # #[cfg(target_os = "linux")]
/// assert!(text.contains("# TYPE process_resident_memory_bytes gauge"));
/// # Ok::<(), std::fmt::Error>(())
/// ```
pub fn pool_registry() -> Registry {
    // The static pools are created on first use; create them now, so a dashboard has
    // their series (at zero) from the first scrape.
    LazyLock::force(&TICK_POOL);
    LazyLock::force(&SIGNAL_POOL);
    LazyLock::force(&ORDER_POOL);
    let mut registry = Registry::default();
    registry.register_collector(Box::new(ProcessCollector));
    let ours = registry.sub_registry_with_prefix(NAMESPACE);
    ours.register_collector(Box::new(PoolCollector));
    ours.register_collector(Box::new(BuildInfo));
    registry
}

/// Counter or gauge, for [`register_fn`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up; exposed with a `_total` suffix.
    Counter,
    /// Goes up and down.
    Gauge,
}

/// A metric read from a closure at scrape time.
struct FnMetric {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    read: Box<dyn Fn() -> u64 + Send + Sync>,
}

impl fmt::Debug for FnMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnMetric")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Collector for FnMetric {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let value = (self.read)();
        match self.kind {
            Kind::Counter => ConstCounter::new(value).encode(encoder.encode_descriptor(
                self.name,
                self.help,
                None,
                MetricType::Counter,
            )?),
            Kind::Gauge => ConstGauge::new(value).encode(encoder.encode_descriptor(
                self.name,
                self.help,
                None,
                MetricType::Gauge,
            )?),
        }
    }
}

/// Adds a metric whose value `read` returns at each scrape, under [`NAMESPACE`] (for
/// counters, give the name without `_total`; the encoder adds it).
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// let ticks = Arc::new(AtomicU64::new(0));
/// let mut registry = monitoring::pool_registry();
/// let reader = Arc::clone(&ticks);
/// monitoring::register_fn(&mut registry, "ticks", "Ticks processed.", monitoring::Kind::Counter,
///     move || reader.load(Ordering::Relaxed));
/// ticks.store(42, Ordering::Relaxed);
/// assert!(monitoring::render(&registry)?.contains("trading_ticks_total 42\n"));
/// # Ok::<(), std::fmt::Error>(())
/// ```
pub fn register_fn(
    registry: &mut Registry,
    name: &'static str,
    help: &'static str,
    kind: Kind,
    read: impl Fn() -> u64 + Send + Sync + 'static,
) {
    registry
        .sub_registry_with_prefix(NAMESPACE)
        .register_collector(Box::new(FnMetric {
            name,
            help,
            kind,
            read: Box::new(read),
        }));
}

/// A counter of fractional units (seconds, by Prometheus's convention for time) read
/// from a closure at scrape time.
struct FnCounterF64 {
    name: &'static str,
    help: &'static str,
    read: Box<dyn Fn() -> f64 + Send + Sync>,
}

impl fmt::Debug for FnCounterF64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnCounterF64")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Collector for FnCounterF64 {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        ConstCounter::new((self.read)()).encode(encoder.encode_descriptor(
            self.name,
            self.help,
            None,
            MetricType::Counter,
        )?)
    }
}

/// Adds a counter of fractional units (time in seconds, say) whose value `read`
/// returns at each scrape, under [`NAMESPACE`] (give the name without `_total`).
///
/// # Examples
/// ```
/// let mut registry = monitoring::pool_registry();
/// monitoring::register_counter_f64(&mut registry, "waited_seconds", "Time waited.", || 0.25);
/// assert!(monitoring::render(&registry)?.contains("trading_waited_seconds_total 0.25\n"));
/// # Ok::<(), std::fmt::Error>(())
/// ```
pub fn register_counter_f64(
    registry: &mut Registry,
    name: &'static str,
    help: &'static str,
    read: impl Fn() -> f64 + Send + Sync + 'static,
) {
    registry
        .sub_registry_with_prefix(NAMESPACE)
        .register_collector(Box::new(FnCounterF64 {
            name,
            help,
            read: Box::new(read),
        }));
}

/// A family of latency histograms, one per value of `label`.
#[derive(Debug)]
struct LatencyFamily {
    name: &'static str,
    help: &'static str,
    label: &'static str,
    members: Vec<(&'static str, Arc<LatencyHistogram>)>,
}

impl Collector for LatencyFamily {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let mut family = encoder.encode_descriptor(
            self.name,
            self.help,
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for (value, histogram) in &self.members {
            let s = histogram.snapshot();
            family
                .encode_family(&[(self.label, *value)])?
                .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                s.sum_seconds,
                s.count,
                &s.buckets,
                None,
            )?;
        }
        Ok(())
    }
}

/// Adds `<NAMESPACE>_<name>_seconds`, a histogram per `(label value, histogram)`.
///
/// # Examples
/// ```
/// let feed = monitoring::LatencyHistogram::new();
/// let mut recorder = feed.recorder().unwrap();
/// recorder.record(3_000); // 3 µs
/// let mut registry = monitoring::pool_registry();
/// monitoring::register_latency(&mut registry, "stage_latency", "Latency per stage.", "stage",
///     vec![("feed", feed)]);
/// let text = monitoring::render(&registry)?;
/// assert!(text.contains("# TYPE trading_stage_latency_seconds histogram"));
/// assert!(text.contains(r#"trading_stage_latency_seconds_bucket{stage="feed",le="5e-06"} 1"#));
/// assert!(text.contains(r#"trading_stage_latency_seconds_count{stage="feed"} 1"#));
/// # Ok::<(), std::fmt::Error>(())
/// ```
pub fn register_latency(
    registry: &mut Registry,
    name: &'static str,
    help: &'static str,
    label: &'static str,
    members: Vec<(&'static str, Arc<LatencyHistogram>)>,
) {
    registry
        .sub_registry_with_prefix(NAMESPACE)
        .register_collector(Box::new(LatencyFamily {
            name,
            help,
            label,
            members,
        }));
}

/// The registry in Prometheus text format ([`CONTENT_TYPE`]).
///
/// # Errors
/// A collector failed to write (never for the collectors in this crate).
pub fn render(registry: &Registry) -> Result<String, fmt::Error> {
    let mut text = String::with_capacity(8 * 1024);
    prometheus_client::encoding::prometheus_text::encode(&mut text, registry)?;
    Ok(text)
}
