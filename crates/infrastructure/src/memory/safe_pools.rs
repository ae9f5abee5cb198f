//! The process-wide pools of the trading stack: [`ORDER_POOL`], [`SIGNAL_POOL`] and
//! [`TICK_POOL`].
//!
//! Each is a [`Pool`] built on first use and listed in the registry that monitoring
//! reads (`order`, `signal`, `tick`). By default it has the defaults of [`PoolConfig`];
//! a process may configure it before that first use, in code ([`configure`]) or from
//! its environment ([`configure_from_env`]). Being statics, they are never dropped;
//! thread caches still go back at thread exit and idle objects are reclaimed every
//! second (or as configured).
//!
//! ```
//! use infrastructure::memory::safe_pools::TICK_POOL;
//!
//! let tick = TICK_POOL.acquire();
//! let handle = std::thread::spawn(move || drop(tick)); // guards are Send
//! handle.join().unwrap();
//! assert_eq!(TICK_POOL.stats().live, 0);
//! ```
//!
//! # Configuring them
//! A `main` configures the statics first, before anything uses them: an acquire,
//! `stats()`, or monitoring's registration (which builds all three). Too late is an
//! error, not a silent default:
//! ```
//! use infrastructure::memory::Reclaim;
//! use infrastructure::memory::safe_pools::{self, ConfigureError, StaticPool, TICK_POOL};
//!
//! safe_pools::configure(StaticPool::Tick, |config| {
//!     config.magazine_size(256).max_idle_bytes(Some(64 << 20)).reclaim(Reclaim::Driven)
//! })?;
//! assert_eq!(TICK_POOL.stats().name, "tick"); // built now, as configured
//! let err = safe_pools::configure(StaticPool::Tick, |c| c.magazine_size(32)).unwrap_err();
//! assert_eq!(err, ConfigureError::TooLate { pool: "tick" });
//! # Ok::<(), ConfigureError>(())
//! ```

use std::sync::{LazyLock, PoisonError};
use std::time::Duration;

use super::{ConfigError, Reclaim};
pub use super::{Pool, PoolConfig, PoolGuard, Poolable};
use crate::sync::{StdMutex, StdMutexGuard};
pub use crate::types::{Order, Signal, Tick};

// `Poolable` for `Tick`, `Order` and `Signal` lives beside each type (in `types`),
// which owns their private fields.

/// One of the three static pools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaticPool {
    /// [`ORDER_POOL`].
    Order,
    /// [`SIGNAL_POOL`].
    Signal,
    /// [`TICK_POOL`].
    Tick,
}

impl StaticPool {
    /// All three.
    pub const ALL: [StaticPool; 3] = [StaticPool::Order, StaticPool::Signal, StaticPool::Tick];

    /// The pool's name (its label in stats and metrics).
    pub fn name(self) -> &'static str {
        match self {
            StaticPool::Order => "order",
            StaticPool::Signal => "signal",
            StaticPool::Tick => "tick",
        }
    }

    fn setup(self) -> &'static Setup {
        match self {
            StaticPool::Order => &ORDER_SETUP,
            StaticPool::Signal => &SIGNAL_SETUP,
            StaticPool::Tick => &TICK_SETUP,
        }
    }

    fn object_size(self) -> usize {
        match self {
            StaticPool::Order => size_of::<Order>(),
            StaticPool::Signal => size_of::<Signal>(),
            StaticPool::Tick => size_of::<Tick>(),
        }
    }
}

/// Why a static pool could not be configured.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigureError {
    /// The pool was already built (used, read, or registered with monitoring), with
    /// the configuration it had then.
    #[error(
        "the {pool} pool is already built: configure the static pools before anything uses them (an acquire, stats(), or monitoring's registration)"
    )]
    TooLate {
        /// The pool's name.
        pool: &'static str,
    },
    /// The configuration is not valid for the pool's objects.
    #[error("the {pool} pool's configuration is invalid: {source}")]
    Invalid {
        /// The pool's name.
        pool: &'static str,
        /// What is wrong.
        source: ConfigError,
    },
    /// An environment variable read by [`configure_from_env`] does not parse.
    #[error("{variable}={value:?}: {expected}")]
    Environment {
        /// The variable.
        variable: String,
        /// Its value.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
}

/// A static pool's configuration until it is built.
struct Setup {
    /// `None` once built; `Some(config)` before (the defaults unless configured).
    pending: StdMutex<Option<Option<PoolConfig>>>,
}

impl Setup {
    const fn new() -> Self {
        Setup {
            pending: StdMutex::new(Some(None)),
        }
    }
}

static ORDER_SETUP: Setup = Setup::new();
static SIGNAL_SETUP: Setup = Setup::new();
static TICK_SETUP: Setup = Setup::new();

/// The configuration of a static pool that nobody configured.
pub(super) fn static_config(name: &str) -> PoolConfig {
    PoolConfig::new(name).exported(true)
}

/// Sets the configuration `pool` is built with: `f` gets what it would be built with
/// now (the defaults, under the pool's name and exported to monitoring, with whatever
/// earlier calls set, [`configure_from_env`]'s included) and returns the configuration
/// to use; the name and the export stay the static's own. It must run before the
/// pool's first use. Validated now, so building the pool cannot fail.
///
/// # Errors
/// [`ConfigureError::TooLate`] once the pool is built, [`ConfigureError::Invalid`] for
/// a configuration [`Pool::new`] would refuse. Either way nothing changes.
pub fn configure(
    pool: StaticPool,
    f: impl FnOnce(PoolConfig) -> PoolConfig,
) -> Result<(), ConfigureError> {
    // `f` is user code: it runs with no lock held.
    let config = finish(pool, f(current(pool)?))?;
    store(pool, config)
}

/// What `pool` would be built with now; `TooLate` once built.
fn current(pool: StaticPool) -> Result<PoolConfig, ConfigureError> {
    let pending = lock_setup(pool);
    match pending.as_ref() {
        Some(config) => Ok(config.clone().unwrap_or_else(|| static_config(pool.name()))),
        None => Err(ConfigureError::TooLate { pool: pool.name() }),
    }
}

/// The static's own name and export on `config`, validated for its objects.
fn finish(pool: StaticPool, config: PoolConfig) -> Result<PoolConfig, ConfigureError> {
    let name = pool.name();
    let mut config = config.exported(true);
    config.name = name.to_owned();
    config
        .validate(pool.object_size())
        .map_err(|source| ConfigureError::Invalid { pool: name, source })?;
    Ok(config)
}

fn store(pool: StaticPool, config: PoolConfig) -> Result<(), ConfigureError> {
    let mut pending = lock_setup(pool);
    match pending.as_mut() {
        Some(slot) => {
            *slot = Some(config);
            Ok(())
        }
        None => Err(ConfigureError::TooLate { pool: pool.name() }),
    }
}

fn lock_setup(pool: StaticPool) -> StdMutexGuard<'static, Option<Option<PoolConfig>>> {
    pool.setup()
        .pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Configures every static pool from the environment, before first use: for the pool
/// `order` (likewise `signal`, `tick`),
///
/// | variable | value |
/// |---|---|
/// | `POOL_ORDER_MAGAZINE_SIZE` | objects per magazine |
/// | `POOL_ORDER_DEPOT_MAGAZINES` | magazines per depot list, or `none` (the working set) |
/// | `POOL_ORDER_MAX_IDLE_BYTES` | ceiling on idle bytes, or `none` |
/// | `POOL_ORDER_MAX_RETAINED_BYTES` | most heap an idle object keeps, or `none` |
/// | `POOL_ORDER_RECLAIM` | `background`, `background:<ms>`, `driven` or `off` |
///
/// A pool none of whose variables is set is left as it is; one whose variables are set
/// keeps what earlier [`configure`] calls set beyond them. Every pool's settings are
/// parsed and validated before any is applied, so an error changes nothing. Returns the
/// pools it configured.
///
/// # Errors
/// [`ConfigureError::Environment`] for a value that does not parse, is not Unicode, or
/// a `POOL_ORDER_*` (`_SIGNAL_`, `_TICK_`) variable this does not know (a misspelt
/// setting is not ignored); those of [`configure`] for a pool already built or a
/// configuration it would refuse. Nothing is configured then.
///
/// # Examples
/// First thing in `main` (here the environment sets nothing, so nothing changes):
/// ```
/// use infrastructure::memory::safe_pools;
///
/// let configured = safe_pools::configure_from_env()?;
/// assert!(configured.is_empty());
/// # Ok::<(), safe_pools::ConfigureError>(())
/// ```
pub fn configure_from_env() -> Result<Vec<StaticPool>, ConfigureError> {
    let vars: Vec<(String, Result<String, std::ffi::OsString>)> = std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string())))
        .filter(|(name, _)| name.starts_with("POOL_"))
        .collect();
    let settings = parse_environment(&vars)?;
    // All or nothing: every configuration is built and checked before any is stored.
    let mut configs = Vec::new();
    for (pool, settings) in settings {
        configs.push((pool, finish(pool, settings.apply(current(pool)?))?));
    }
    for (pool, config) in &configs {
        store(*pool, config.clone())?;
    }
    Ok(configs.into_iter().map(|(pool, _)| pool).collect())
}

/// The settings the `POOL_*` variables `vars` give each static pool, for those they
/// give any.
fn parse_environment(
    vars: &[(String, Result<String, std::ffi::OsString>)],
) -> Result<Vec<(StaticPool, Settings)>, ConfigureError> {
    for (variable, value) in vars {
        let known = StaticPool::ALL.iter().any(|pool| {
            SETTINGS
                .iter()
                .any(|setting| *variable == format!("{}{setting}", prefix(*pool)))
        });
        let ours = StaticPool::ALL
            .iter()
            .any(|pool| variable.starts_with(&prefix(*pool)));
        if ours && !known {
            return Err(bad(
                variable.clone(),
                value.clone().unwrap_or_default(),
                "one of MAGAZINE_SIZE, DEPOT_MAGAZINES, MAX_IDLE_BYTES, MAX_RETAINED_BYTES, RECLAIM after the pool's prefix",
            ));
        }
        if ours && let Err(raw) = value {
            return Err(bad(
                variable.clone(),
                raw.to_string_lossy().into_owned(),
                "Unicode text",
            ));
        }
    }
    parse_settings(|name| {
        vars.iter()
            .find(|(variable, _)| variable == name)
            .and_then(|(_, value)| value.clone().ok())
    })
}

/// The settings a static pool reads, after `POOL_<NAME>_`.
const SETTINGS: [&str; 5] = [
    "MAGAZINE_SIZE",
    "DEPOT_MAGAZINES",
    "MAX_IDLE_BYTES",
    "MAX_RETAINED_BYTES",
    "RECLAIM",
];

fn prefix(pool: StaticPool) -> String {
    format!("POOL_{}_", pool.name().to_ascii_uppercase())
}

/// The settings `var` gives each static pool, for those it gives any.
fn parse_settings(
    var: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(StaticPool, Settings)>, ConfigureError> {
    let mut settings = Vec::new();
    for pool in StaticPool::ALL {
        let prefix = prefix(pool);
        let read = |setting: &str| {
            let variable = format!("{prefix}{setting}");
            var(&variable).map(|value| (variable, value))
        };
        let parsed = Settings {
            magazine_size: read("MAGAZINE_SIZE").map(whole).transpose()?,
            depot_magazines: read("DEPOT_MAGAZINES").map(optional_whole).transpose()?,
            max_idle_bytes: read("MAX_IDLE_BYTES").map(optional_whole).transpose()?,
            max_retained_bytes: read("MAX_RETAINED_BYTES").map(optional_whole).transpose()?,
            reclaim: read("RECLAIM").map(reclaim).transpose()?,
        };
        if !parsed.is_empty() {
            settings.push((pool, parsed));
        }
    }
    Ok(settings)
}

/// What the environment set for one pool.
#[derive(Debug, PartialEq)]
struct Settings {
    magazine_size: Option<usize>,
    depot_magazines: Option<Option<usize>>,
    max_idle_bytes: Option<Option<usize>>,
    max_retained_bytes: Option<Option<usize>>,
    reclaim: Option<Reclaim>,
}

impl Settings {
    fn is_empty(&self) -> bool {
        self.magazine_size.is_none()
            && self.depot_magazines.is_none()
            && self.max_idle_bytes.is_none()
            && self.max_retained_bytes.is_none()
            && self.reclaim.is_none()
    }

    fn apply(&self, mut config: PoolConfig) -> PoolConfig {
        if let Some(size) = self.magazine_size {
            config = config.magazine_size(size);
        }
        if let Some(depot) = self.depot_magazines {
            config = config.depot_magazines(depot);
        }
        if let Some(bytes) = self.max_idle_bytes {
            config = config.max_idle_bytes(bytes);
        }
        if let Some(bytes) = self.max_retained_bytes {
            config = config.max_retained_bytes(bytes);
        }
        if let Some(reclaim) = self.reclaim {
            config = config.reclaim(reclaim);
        }
        config
    }
}

fn bad(variable: String, value: String, expected: &'static str) -> ConfigureError {
    ConfigureError::Environment {
        variable,
        value,
        expected,
    }
}

fn whole((variable, value): (String, String)) -> Result<usize, ConfigureError> {
    value
        .trim()
        .parse()
        .map_err(|_| bad(variable, value, "a whole number, at most 2^64 - 1"))
}

fn optional_whole((variable, value): (String, String)) -> Result<Option<usize>, ConfigureError> {
    if value.trim().eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    value
        .trim()
        .parse()
        .map(Some)
        .map_err(|_| bad(variable, value, "a whole number at most 2^64 - 1, or none"))
}

fn reclaim((variable, value): (String, String)) -> Result<Reclaim, ConfigureError> {
    let expected = "background, background:<milliseconds>, driven or off";
    let text = value.trim().to_ascii_lowercase();
    match text.as_str() {
        "background" => Ok(Reclaim::Background(PoolConfig::DEFAULT_RECLAIM_INTERVAL)),
        "driven" => Ok(Reclaim::Driven),
        "off" => Ok(Reclaim::Off),
        _ => match text
            .strip_prefix("background:")
            .map(|ms| ms.trim().parse::<u64>())
        {
            Some(Ok(ms)) => Ok(Reclaim::Background(Duration::from_millis(ms))),
            _ => Err(bad(variable, value, expected)),
        },
    }
}

/// Builds a static pool with its configuration, closing its configuration for good.
fn static_pool<T: Poolable>(pool: StaticPool) -> Pool<T> {
    let config = pool
        .setup()
        .pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .flatten()
        .unwrap_or_else(|| static_config(pool.name()));
    match super::pool::build_static(config) {
        Ok(pool) => pool,
        // The defaults are checked by `memory::tests::api::static_configs_are_valid`;
        // a configured one was validated by `configure`.
        Err(error) => unreachable!("static pool {}: {error}", pool.name()),
    }
}

/// Orders, for the execution and exchange layers.
pub static ORDER_POOL: LazyLock<Pool<Order>> = LazyLock::new(|| static_pool(StaticPool::Order));

/// Signals, for the strategy and risk layers.
pub static SIGNAL_POOL: LazyLock<Pool<Signal>> = LazyLock::new(|| static_pool(StaticPool::Signal));

/// Market-data ticks, for the data layer.
pub static TICK_POOL: LazyLock<Pool<Tick>> = LazyLock::new(|| static_pool(StaticPool::Tick));

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(vars: &[(&str, &str)]) -> Result<Vec<(StaticPool, PoolConfig)>, ConfigureError> {
        let vars: Vec<_> = vars
            .iter()
            .map(|(name, value)| ((*name).to_owned(), Ok((*value).to_owned())))
            .collect();
        Ok(parse_environment(&vars)?
            .into_iter()
            .map(|(pool, settings)| (pool, settings.apply(static_config(pool.name()))))
            .collect())
    }

    #[test]
    fn the_environment_configures_each_static_pool() {
        let parsed = parse(&[
            ("POOL_TICK_MAGAZINE_SIZE", "256"),
            ("POOL_TICK_MAX_IDLE_BYTES", "67108864"),
            ("POOL_TICK_RECLAIM", "driven"),
            ("POOL_ORDER_DEPOT_MAGAZINES", "none"),
            ("POOL_ORDER_RECLAIM", "background: 250"),
            ("POOL_SIZE", "unrelated to the pools"),
            ("POOL_ORDER_MAX_RETAINED_BYTES", " 4096 "),
        ])
        .unwrap();
        let expected = vec![
            (
                StaticPool::Order,
                static_config("order")
                    .depot_magazines(None)
                    .max_retained_bytes(Some(4096))
                    .reclaim(Reclaim::Background(Duration::from_millis(250))),
            ),
            (
                StaticPool::Tick,
                static_config("tick")
                    .magazine_size(256)
                    .max_idle_bytes(Some(64 << 20))
                    .reclaim(Reclaim::Driven),
            ),
        ];
        assert_eq!(parsed, expected);
        assert_eq!(parse(&[]).unwrap(), vec![]);
    }

    #[test]
    fn a_bad_value_is_a_clear_error() {
        let cases = [
            (
                ("POOL_SIGNAL_MAGAZINE_SIZE", "many"),
                "POOL_SIGNAL_MAGAZINE_SIZE=\"many\": a whole number, at most 2^64 - 1",
            ),
            (
                ("POOL_ORDER_MAX_IDLE_BYTES", "-1"),
                "POOL_ORDER_MAX_IDLE_BYTES=\"-1\": a whole number at most 2^64 - 1, or none",
            ),
            (
                ("POOL_TICK_RECLAIM", "sometimes"),
                "POOL_TICK_RECLAIM=\"sometimes\": background, background:<milliseconds>, driven or off",
            ),
            (
                ("POOL_ORDER_MAGAZINE", "32"),
                "POOL_ORDER_MAGAZINE=\"32\": one of MAGAZINE_SIZE, DEPOT_MAGAZINES, MAX_IDLE_BYTES, MAX_RETAINED_BYTES, RECLAIM after the pool's prefix",
            ),
            (
                ("POOL_TICK_RECLAIM", "background:soon"),
                "POOL_TICK_RECLAIM=\"background:soon\": background, background:<milliseconds>, driven or off",
            ),
        ];
        for (var, message) in cases {
            let err = parse(&[var]).unwrap_err();
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn an_invalid_configuration_is_refused_before_anything_is_built() {
        // Checked against the pool's object size, with nothing stored: the static
        // keeps whatever it had.
        let err = configure(StaticPool::Signal, |c| c.magazine_size(0)).unwrap_err();
        assert_eq!(
            err,
            ConfigureError::Invalid {
                pool: "signal",
                source: ConfigError::MagazineSize(0)
            }
        );
        assert_eq!(
            err.to_string(),
            "the signal pool's configuration is invalid: magazine_size 0 must be between 1 and 4096"
        );
    }
}
