//! A run's settings, and the pool memory they bound.

use std::path::PathBuf;

use anyhow::{Result, bail};
use exchange::VenueConfig;
use execution::ExecutionConfig;
use infrastructure::memory::PoolConfig;
use infrastructure::memory::safe_pools::{ORDER_POOL, SIGNAL_POOL, TICK_POOL};
use infrastructure::types::{Decimal, Order, Signal, Tick};
use risk::RiskLimits;
use strategy::CrossoverConfig;

/// The default run length: 10 million ticks.
pub const DEFAULT_TICKS: u64 = 10_000_000;

/// Ticks per report window.
pub const DEFAULT_WINDOW: u64 = 1_000_000;

/// Malformed input lines kept with their error for the report (all are counted).
pub const MALFORMED_SAMPLES: usize = 20;

/// Where the messages come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The seeded market generator, for this many messages.
    Generated {
        /// Seed of the generator.
        seed: u64,
        /// Messages to generate.
        ticks: u64,
    },
    /// A recording replayed to the end (or `limit`): stream messages as JSON lines,
    /// or one of Binance's historical CSV files, extracted or as the `.zip` it is
    /// downloaded as ([`InputFormat`]).
    File {
        /// The file.
        path: PathBuf,
        /// Stop after this many lines, if set.
        limit: Option<u64>,
    },
    /// A Binance combined-stream WebSocket (`ws://` or `wss://`), until the run is
    /// stopped (or `limit` lines); reconnected when it drops.
    Connect {
        /// The URL, naming its streams: `wss://stream.binance.com:9443/stream?streams=btcusdt@trade`.
        url: String,
        /// Stop after this many messages, if set.
        limit: Option<u64>,
    },
    /// A recording on standard input, to its end (or `limit`).
    Stdin {
        /// Stop after this many lines, if set.
        limit: Option<u64>,
    },
}

/// How an input's lines are read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InputFormat {
    /// From its first line: a JSON object is stream messages; a row of one of
    /// Binance's historical CSV layouts (or its header) is that file
    /// (`data::historical::Layout::detect`); anything else is read as JSON (and counted
    /// malformed).
    #[default]
    Auto,
    /// Stream messages, one JSON object a line.
    Json,
    /// Historical CSV rows of this kind (the header and column count still read from
    /// the first line).
    Csv(data::historical::Kind),
}

impl Source {
    /// The most messages this source delivers, when that is known up front.
    pub fn limit(&self) -> Option<u64> {
        match *self {
            Source::Generated { ticks, .. } => Some(ticks),
            Source::File { limit, .. }
            | Source::Stdin { limit }
            | Source::Connect { limit, .. } => limit,
        }
    }
}

/// Settings of the trading layers.
#[derive(Clone, Debug)]
pub struct TradingSettings {
    /// The strategy.
    pub strategy: CrossoverConfig,
    /// Pre-trade limits.
    pub limits: RiskLimits,
    /// Order creation.
    pub execution: ExecutionConfig,
    /// The simulated venue.
    pub venue: VenueConfig,
}

impl Default for TradingSettings {
    fn default() -> Self {
        let d = |s: &str| s.parse::<Decimal>().unwrap_or(Decimal::ONE);
        TradingSettings {
            strategy: CrossoverConfig::default(),
            limits: RiskLimits {
                max_position_notional: d("5000"),
                max_order_notional: d("2000"),
                max_orders: 20,
                rate_window_ns: 1_000_000_000,
                feed_recovery_ns: 5_000_000_000,
            },
            execution: ExecutionConfig::default(),
            // Risk keeps far fewer open (position / order notional per side and
            // symbol); this caps what the order pool must reserve.
            venue: VenueConfig {
                max_open_orders: 512,
                ..VenueConfig::default()
            },
        }
    }
}

/// A run's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The messages.
    pub source: Source,
    /// Ticks per report window.
    pub window: u64,
    /// Capacity of the channel from the critical thread to analysis, in events (it
    /// carries them in batches of [`BATCH`](crate::stages::BATCH), so it holds this
    /// many rounded up to a whole batch).
    pub channel_capacity: usize,
    /// Strategy, risk, execution and venue settings.
    pub trading: TradingSettings,
    /// Reserve each pool's working set before the first tick ([`reserve_pools`]).
    pub reserve: bool,
    /// Pin the critical thread to the last core the process may run on, and analysis
    /// to the first (`--pin-cores`); needs two.
    pub pin_cores: bool,
    /// Feed at most this many messages per second (`None`: as fast as the stages go).
    pub rate: Option<u64>,
    /// A symbol with no tick for longer than this, on the market's clock (the latest
    /// exchange timestamp seen), has a stale feed: its next tick is marked, and risk
    /// and the strategy act on it (`data::health`).
    pub stale_after_ns: u64,
    /// How the live source connects.
    pub live: crate::LiveSettings,
    /// How the input's lines are read.
    pub input_format: InputFormat,
    /// The symbol of a historical CSV file's rows (which do not name it), when its
    /// file name does not give it (`BTCUSDT-trades-2024-01-01.csv`).
    pub symbol: Option<String>,
    /// The longest input line read (its newline included); a longer one is counted
    /// `line_too_long` and skipped without being buffered
    /// ([`MAX_LINE_BYTES`](crate::MAX_LINE_BYTES) by default).
    pub max_line_bytes: usize,
    /// Faults injected on purpose, to see the report's invariants break (all off by
    /// default; the binary can set only `allocate_every`, through a hidden flag, for
    /// the test of its exit status).
    pub faults: Faults,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            source: Source::Generated {
                seed: 42,
                ticks: DEFAULT_TICKS,
            },
            window: DEFAULT_WINDOW,
            channel_capacity: 4_096,
            trading: TradingSettings::default(),
            reserve: true,
            pin_cores: false,
            rate: None,
            max_line_bytes: crate::MAX_LINE_BYTES,
            live: crate::LiveSettings::default(),
            input_format: InputFormat::Auto,
            symbol: None,
            stale_after_ns: 5_000_000_000,
            faults: Faults::default(),
        }
    }
}

impl Config {
    /// Checks what the layers do not check themselves.
    ///
    /// # Errors
    /// A window, channel capacity, rate, stale limit or tick count of 0, or a line
    /// limit outside [`LINE_LIMITS`].
    pub fn validate(&self) -> Result<()> {
        if self.window == 0 {
            bail!("the report window must be at least 1 tick");
        }
        if self.channel_capacity == 0 {
            bail!("channel capacity must be at least 1");
        }
        if self.pin_cores {
            let cores = core_affinity::get_core_ids().map_or(0, |ids| ids.len());
            if cores < 2 {
                bail!(
                    "--pin-cores needs two cores, one for the critical thread and one for analysis; this process may run on {cores}"
                );
            }
        }
        if self.rate == Some(0) {
            bail!("a paced feed needs a rate of at least 1 message per second");
        }
        if self.rate.is_some() && matches!(self.source, Source::Connect { .. }) {
            bail!(
                "a live source keeps its own pace: its messages are dated from their receipt, not from a --rate schedule"
            );
        }
        if self.source.limit() == Some(0) {
            bail!("a run needs at least 1 tick");
        }
        if self.stale_after_ns == 0 {
            bail!("a feed cannot be stale after 0 ns: every tick would be marked");
        }
        if !LINE_LIMITS.contains(&self.max_line_bytes) {
            bail!(
                "a line limit of {} bytes is outside {}..={} (a Binance message is a few hundred bytes)",
                self.max_line_bytes,
                LINE_LIMITS.start(),
                LINE_LIMITS.end()
            );
        }
        Ok(())
    }
}

/// The line limits a run accepts: from a short message to 16 MiB, the line buffer's
/// size (made once, at start).
pub const LINE_LIMITS: std::ops::RangeInclusive<usize> = 256..=(16 << 20);

/// Faults a run can inject on purpose, each breaking one invariant of the report or
/// one of its measurements (the stalls): how its tests prove the checker sees what it
/// claims to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// The analysis stage keeps this many ticks until its end instead of dropping them:
    /// pool memory beyond what the configuration bounds.
    pub hold_ticks: usize,
    /// The analysis stage keeps this many closed orders until the report is built:
    /// objects still live.
    pub keep_orders: usize,
    /// The analysis stage drops this many closed orders without counting them: orders
    /// that never came back.
    pub lose_orders: u64,
    /// The trading stage allocates once every this many ticks (0: never): heap
    /// allocations on the hot path.
    pub allocate_every: u64,
    /// The feed stops for this long before it reads this message (1-based): a stall
    /// that latencies stamped at the read would not show (coordinated omission).
    pub stall_feed: Option<(u64, std::time::Duration)>,
    /// The feed is held off for this long in the spin of its wait for this message
    /// (1-based; under `--rate`), or of the first wait after it that spins: a stall of
    /// the host, which the wait's own looks at the clock must see as a hiccup.
    pub stall_wait: Option<(u64, std::time::Duration)>,
    /// The analysis stage stops for this long before it takes this tick (1-based):
    /// analysis held up, which fills the channel and makes the critical thread wait
    /// for room, a delay that is neither its work nor its hiccups.
    pub stall_analysis: Option<(u64, std::time::Duration)>,
    /// The analysis thread sleeps this long before it starts: the critical thread
    /// runs ahead and fills the channel meanwhile.
    pub late_analysis: Option<std::time::Duration>,
}

/// Where `--pin-cores` puts the two stage threads (`None`: not pinned).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Pinning {
    pub(crate) critical: Option<core_affinity::CoreId>,
    pub(crate) analysis: Option<core_affinity::CoreId>,
}

impl Pinning {
    /// The last core the process may run on for the critical thread, the first for
    /// analysis, under `--pin-cores`.
    pub(crate) fn of(config: &Config) -> Self {
        let ids = config
            .pin_cores
            .then(core_affinity::get_core_ids)
            .flatten()
            .filter(|ids| ids.len() >= 2)
            .unwrap_or_default();
        Pinning {
            critical: ids.last().copied(),
            analysis: ids.first().copied(),
        }
    }
}

/// The stage threads: the critical path (feed and trading layers) and analysis.
const STAGE_THREADS: usize = 2;

/// Threads that use the pools during a run: main, the short-lived priming thread and
/// the stages.
const POOL_THREADS: usize = 2 + STAGE_THREADS;

/// Thread ids a run's threads may hold: the bucket allowance covers slots up to here.
const MAX_THREAD_ID: usize = 64;

/// The most pool memory a run of `config` can add to what the pools held before it
/// started, from the configuration alone.
///
/// Per pool: its
/// [`PoolConfig::memory_bound_with_reserve`](infrastructure::memory::PoolConfig::memory_bound_with_reserve),
/// with the static pool's magazine size (the default unless `POOL_<NAME>_*` set it),
/// for the objects the run can have in use at once (channels, stages' hands, open
/// orders), the run's threads and the reserve [`reserve_pools`] makes (the objects
/// in use plus the stages' caches, with its empty magazines; none without
/// [`Config::reserve`]), plus the slot buckets of thread ids up to 64 (256 bytes a
/// slot). The pool's fixed part exists before the run (`run`
/// creates the static pools first), so it is in what the run starts from.
#[must_use]
pub fn pool_memory_bound(config: &Config) -> usize {
    let in_use = in_use(config);
    let reserves = if config.reserve {
        working_set(config)
    } else {
        [0; 3]
    };
    let buckets = (MAX_THREAD_ID - 16) * 256;
    let sizes = [size_of::<Tick>(), size_of::<Signal>(), size_of::<Order>()];
    let magazines = [
        TICK_POOL.magazine_size(),
        SIGNAL_POOL.magazine_size(),
        ORDER_POOL.magazine_size(),
    ];
    (0..3)
        .map(|i| {
            PoolConfig::new("bound")
                .magazine_size(magazines[i])
                .memory_bound_with_reserve(sizes[i], in_use[i], POOL_THREADS, reserves[i])
                + buckets
        })
        .sum()
}

/// The messages the channel to analysis holds: batches of up to
/// [`BATCH`](crate::stages::BATCH) events, as many as make
/// [`Config::channel_capacity`] events (rounded up).
pub(crate) fn event_batches(config: &Config) -> usize {
    config.channel_capacity.div_ceil(crate::stages::BATCH)
}

/// The most `[tick, signal, order]` objects the pipeline can have in use at once: in
/// the channel to analysis, in a batch being filled or read, in a stage's hands, or
/// open at the venue.
fn in_use(config: &Config) -> [usize; 3] {
    // Each event holds at most one pooled object: the channel's batches, the batch
    // the critical thread fills and the one analysis reads, and one object in each
    // thread's hands.
    let events = (event_batches(config) + 2) * crate::stages::BATCH + STAGE_THREADS;
    [
        events,
        events,
        events + config.trading.venue.max_open_orders,
    ]
}

/// The most `[tick, signal, order]` objects the pipeline can hold at once: those in
/// use, and what the stages' caches hold (see [`reserve_pools`]).
fn working_set(config: &Config) -> [usize; 3] {
    let caches = |magazine: usize| (2 * STAGE_THREADS + 1) * magazine;
    let [ticks, signals, orders] = in_use(config);
    [
        ticks + caches(TICK_POOL.magazine_size()),
        signals + caches(SIGNAL_POOL.magazine_size()),
        orders + caches(ORDER_POOL.magazine_size()),
    ]
}

/// Reserves in each static pool the most objects this pipeline can hold at once, so
/// the run creates none after start-up: `[tick, signal, order]` objects created.
///
/// An object is either in the channel to analysis (its batches, at most 32 events
/// each, one object an event), in the batch the critical thread is filling or the one
/// analysis is reading, in a stage thread's hands (one each), open at the venue (orders, at most `max_open_orders`),
/// or idle in a thread cache (at most two magazines for each of the 2 stage threads) or
/// in the depot; one more magazine in the depot lets a refill always find a full one.
///
/// # Errors
/// A bound beyond what a pool's depot can hold.
pub fn reserve_pools(config: &Config) -> Result<[usize; 3]> {
    use anyhow::Context as _;
    let [ticks, signals, orders] = working_set(config);
    Ok([
        TICK_POOL.reserve(ticks).context("reserving ticks")?,
        SIGNAL_POOL.reserve(signals).context("reserving signals")?,
        ORDER_POOL.reserve(orders).context("reserving orders")?,
    ])
}
