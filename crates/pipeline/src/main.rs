//! `cargo run --release -p pipeline`: replays 10M generated ticks through every layer
//! and prints the report. `--help` lists the flags.
//!
//! Exit status: 0 when every invariant holds; 2 when one is broken; 130 (SIGINT) or
//! 143 (SIGTERM) when a signal stopped the run early (after the report of what was
//! processed); 64 for a command line that is not valid (`EX_USAGE`); 1 on any other
//! error (an unreadable input). A second signal during the drain ends the process at
//! once with that signal's status. A signal during `--linger` ends the linger; the
//! status is then the run's. A closed standard output (`pipeline | head -1`) is not an
//! error: the report is cut short, quietly; a closed standard error loses the log lines
//! and nothing else.
#![forbid(unsafe_code)]

use std::io::{IsTerminal as _, Write as _};
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use infrastructure::alloc_count::CountingAllocator;
use infrastructure::memory::PoolConfig;
use pipeline::{Config, DEFAULT_TICKS, PROGRESS_INTERVAL, Progress, Report, Source, StopReason};

// Counts every heap allocation, so the report can show the steady state makes none.
#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Replay market data through the trading layers and report throughput, latency,
/// pool statistics and memory.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Ticks to generate [default: 10000000]; with --input, the most lines to replay
    /// [default: every line].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    ticks: Option<u64>,
    /// Replay recorded Binance JSON lines from FILE instead of generating a market;
    /// `-` reads standard input.
    #[arg(long, value_name = "FILE", conflicts_with = "connect")]
    input: Option<PathBuf>,
    /// Trade on live data: a Binance combined-stream WebSocket URL (wss:// or ws://),
    /// such as wss://stream.binance.com:9443/stream?streams=btcusdt@trade/ethusdt@aggTrade.
    /// Reconnects when the connection drops; runs until a signal (or --ticks messages).
    #[arg(long, value_name = "URL")]
    connect: Option<String>,
    /// With --connect: PEM certificates to trust besides the usual roots.
    #[arg(long, value_name = "FILE", requires = "connect")]
    ca_file: Option<PathBuf>,
    /// With --connect: the longest wait between two connection attempts.
    #[arg(long, value_name = "MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..))]
    reconnect_max_ms: u64,
    /// With --connect: a connection that delivers no frame for this long is taken for
    /// dead and made again (Binance pings every 20 s).
    #[arg(long, value_name = "MS", default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(100..))]
    idle_ms: u64,
    /// Seed of the generated market.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Ticks per report window.
    #[arg(long, default_value_t = pipeline::DEFAULT_WINDOW, value_parser = clap::value_parser!(u64).range(1..))]
    window: u64,
    /// Capacity of the channel from the critical thread to analysis, in events (objects in flight; it carries them 32 to a message, and holds this many rounded up to a whole message).
    #[arg(long, default_value_t = 4_096, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    channel_capacity: u64,
    /// Feed at most N messages per second, each dated from when it was due (default:
    /// as fast as the stages go, which measures latency at saturation). Not with
    /// --connect: a live source keeps its own pace, and its messages are dated from
    /// their receipt.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), conflicts_with = "connect")]
    rate: Option<u64>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Serve Prometheus metrics at /metrics while running, on ADDR: HOST:PORT, where
    /// HOST is an IP address or a name such as localhost (default 127.0.0.1:9898,
    /// loopback only; port 0 picks a free one). The bound address is printed on stderr.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:9898", value_parser = resolve)]
    metrics_addr: Option<Addresses>,
    /// With --metrics-addr: keep serving this many seconds after the report, so a
    /// scraper sees the final values (a signal ends it early).
    #[arg(long, value_name = "SECONDS", requires = "metrics_addr")]
    linger: Option<u64>,
    /// With --input: how to read it. `auto` (the default) reads a JSON object a line as
    /// stream messages, and recognises Binance's historical trades, aggTrades and
    /// bookTicker CSV files (with or without their header; a .zip as downloaded, or
    /// extracted) from their first line; `json`, `trades`, `aggTrades` or `bookTicker`
    /// says which.
    #[arg(long, value_name = "FORMAT", default_value = "auto", value_parser = input_format, conflicts_with = "connect")]
    format: pipeline::InputFormat,
    /// The symbol of a historical CSV file's rows, when its file name does not give it
    /// (BTCUSDT-trades-2024-01-01.csv does).
    #[arg(long, value_name = "SYMBOL", requires = "input")]
    symbol: Option<String>,
    /// With --input: the longest line read, in bytes, its newline included; a longer
    /// one is counted malformed (`line_too_long`) and skipped without being buffered.
    /// 256 to 16777216.
    #[arg(long, value_name = "BYTES", default_value_t = pipeline::MAX_LINE_BYTES as u64,
          value_parser = clap::value_parser!(u64).range(*pipeline::LINE_LIMITS.start() as u64..=*pipeline::LINE_LIMITS.end() as u64))]
    max_line_bytes: u64,
    /// A symbol with no tick for this long (market time: the latest exchange timestamp
    /// seen) has a stale feed: risk rejects its signals and the strategy restarts its
    /// averages, as after a gap in its trade ids.
    #[arg(long, value_name = "MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..))]
    stale_after_ms: u64,
    /// After a gap or a silence in a symbol's feed, how long (market time) risk rejects
    /// its signals; 0 acts on no fault.
    #[arg(long, value_name = "MS", default_value_t = 5_000)]
    feed_recovery_ms: u64,
    /// Do not reserve the pools' working set up front (shows the pools growing into it).
    #[arg(long)]
    no_reserve: bool,
    /// Pin the critical thread (feed and trading layers) to the last core this process may run on, and analysis to the first; needs two. On a shared VM the host still moves the vCPUs
    #[arg(long)]
    pin_cores: bool,
    /// A fault for the tests of the exit status: the trading stage allocates once
    /// every N ticks, which breaks the zero-allocation invariant.
    #[arg(long, value_name = "N", default_value_t = 0, hide = true)]
    fault_allocate_every: u64,
}

/// The exit status of a command line that is not valid (`EX_USAGE` of sysexits.h).
const USAGE: u8 = 64;

/// A `--metrics-addr` of the form `HOST:PORT`, resolved when the server starts.
#[derive(Clone, Debug)]
struct Addresses {
    given: String,
}

/// Checks the form `HOST:PORT` (the flag's syntax: a usage error); the name is
/// resolved when the server starts, so a resolver failure is a run error (1), not a
/// usage one.
/// `--format`: `auto`, `json`, or a historical file kind.
fn input_format(text: &str) -> Result<pipeline::InputFormat, String> {
    match text {
        "auto" => Ok(pipeline::InputFormat::Auto),
        "json" => Ok(pipeline::InputFormat::Json),
        other => data::historical::Kind::from_name(other)
            .map(pipeline::InputFormat::Csv)
            .ok_or_else(|| format!("{other:?} is not auto, json, trades, aggTrades or bookTicker")),
    }
}

fn resolve(given: &str) -> Result<Addresses, String> {
    let port = given
        .rsplit_once(':')
        .filter(|(host, _)| !host.is_empty())
        .map(|(_, port)| port);
    match port.map(str::parse::<u16>) {
        Some(Ok(_)) => Ok(Addresses {
            given: given.to_owned(),
        }),
        _ => Err(format!("{given:?} is not HOST:PORT (a port of 0 to 65535)")),
    }
}

/// A line on stderr; a closed stderr is ignored rather than a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

fn main() -> ExitCode {
    // Colour only on a terminal, and never with NO_COLOR set (https://no-color.org).
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_ansi(ansi)
        // A closed stderr loses log lines; tracing-subscriber's report of that failure
        // would be an `eprintln!` to the same closed stderr, which panics.
        .log_internal_errors(false)
        .with_writer(std::io::stderr)
        .init();
    let args = match Args::try_parse() {
        Ok(args) => args,
        // `--help` and `--version` print to stdout and succeed; a bad command line is
        // `EX_USAGE`, apart from a broken invariant's 2.
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(args) {
        Ok(code) => code,
        Err(error) => {
            say!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// SIGINT and SIGTERM, as flags the main thread polls.
struct Signals {
    interrupt: Arc<AtomicBool>,
    terminate: Arc<AtomicBool>,
}

impl Signals {
    /// Registers both. The first signal only sets its flag; a second one, of either
    /// kind, while the first is handled ends the process at once with its status.
    fn register() -> Result<Self> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let stopping = Arc::new(AtomicBool::new(false));
        let signals = Signals {
            interrupt: Arc::new(AtomicBool::new(false)),
            terminate: Arc::new(AtomicBool::new(false)),
        };
        for (signal, flag, reason) in [
            (SIGINT, &signals.interrupt, StopReason::Interrupt),
            (SIGTERM, &signals.terminate, StopReason::Terminate),
        ] {
            let status = i32::from(reason.exit_status());
            signal_hook::flag::register_conditional_shutdown(signal, status, Arc::clone(&stopping))
                .context("registering a signal handler")?;
            signal_hook::flag::register(signal, Arc::clone(&stopping))
                .context("registering a signal handler")?;
            signal_hook::flag::register(signal, Arc::clone(flag))
                .context("registering a signal handler")?;
        }
        Ok(signals)
    }

    fn received(&self) -> Option<StopReason> {
        if self.interrupt.load(Ordering::Relaxed) {
            Some(StopReason::Interrupt)
        } else if self.terminate.load(Ordering::Relaxed) {
            Some(StopReason::Terminate)
        } else {
            None
        }
    }
}

fn run(args: Args) -> Result<ExitCode> {
    let signals = Signals::register()?;
    // The static pools' settings (`POOL_<NAME>_*`), before anything builds them.
    let configured = infrastructure::memory::safe_pools::configure_from_env()
        .context("the static pools' settings from the environment")?;
    if !configured.is_empty() {
        say!("pools configured from the environment: {configured:?}");
    }
    let source = match args.input {
        _ if args.connect.is_some() => Source::Connect {
            url: args.connect.clone().unwrap_or_default(),
            limit: args.ticks,
        },
        Some(path) if path.as_os_str() == "-" => Source::Stdin { limit: args.ticks },
        Some(path) => Source::File {
            path,
            limit: args.ticks,
        },
        None => Source::Generated {
            seed: args.seed,
            ticks: args.ticks.unwrap_or(DEFAULT_TICKS),
        },
    };
    let total = source.limit();
    let config = Config {
        source,
        window: args.window,
        reserve: !args.no_reserve,
        pin_cores: args.pin_cores,
        rate: args.rate,
        channel_capacity: usize::try_from(args.channel_capacity)?,
        max_line_bytes: usize::try_from(args.max_line_bytes)?,
        input_format: args.format,
        live: pipeline::LiveSettings {
            ca_file: args.ca_file,
            backoff_max: std::time::Duration::from_millis(args.reconnect_max_ms),
            idle_timeout: std::time::Duration::from_millis(args.idle_ms),
            ..pipeline::LiveSettings::default()
        },
        symbol: args.symbol,
        stale_after_ns: args.stale_after_ms.saturating_mul(1_000_000),
        trading: pipeline::TradingSettings {
            limits: risk::RiskLimits {
                feed_recovery_ns: args.feed_recovery_ms.saturating_mul(1_000_000),
                ..pipeline::TradingSettings::default().limits
            },
            ..pipeline::TradingSettings::default()
        },
        faults: pipeline::Faults {
            allocate_every: args.fault_allocate_every,
            ..pipeline::Faults::default()
        },
    };
    let progress = Arc::new(Progress::default());
    let server = match &args.metrics_addr {
        Some(addresses) => Some(serve(addresses, &progress)?),
        None => None,
    };
    let report = std::thread::scope(|scope| {
        let runner = scope.spawn(|| pipeline::run(&config, &progress));
        // This thread drives reclamation for pools set to `Reclaim::Driven`
        // (`POOL_<NAME>_RECLAIM=driven`) once a second while the run lasts, and
        // passes a signal on to the run.
        let mut next_reclaim = Instant::now();
        let mut told = false;
        // Feed faults are logged from here, not from the stage threads that see them:
        // an event a subscriber formats allocates on the thread that emits it.
        let mut faults = pipeline::FeedFaultCounts::default();
        let mut tend = || {
            let now = progress.feed_faults();
            if now != faults {
                tracing::warn!(
                    new_gaps = now.gaps.saturating_sub(faults.gaps),
                    new_missing_ids = now.missing_ids.saturating_sub(faults.missing_ids),
                    new_silences = now.stale.saturating_sub(faults.stale),
                    rejected_signals = now.rejected,
                    strategy_restarts = now.restarts,
                    "feed faults: risk holds the symbols' signals for the recovery time and the strategy restarts their averages"
                );
                faults = now;
            }
            if Instant::now() >= next_reclaim {
                infrastructure::memory::reclaim_driven();
                next_reclaim += PoolConfig::DEFAULT_RECLAIM_INTERVAL;
            }
            if let Some(reason) = signals.received()
                && !told
            {
                told = true;
                progress.request_stop(reason);
                say!(
                    "{}: stopping the feed and draining the stages (a second signal quits at once)",
                    reason.name()
                );
            }
        };
        // A progress bar on a terminal only; nothing when output is piped or in CI.
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = total.map_or_else(ProgressBar::no_length, ProgressBar::new);
            bar.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{wide_bar}] {human_pos}/{human_len} ticks ({per_sec}) {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        while !runner.is_finished() {
            if let Some(bar) = &bar {
                bar.set_position(progress.ticks());
                if progress.malformed() > 0 {
                    bar.set_message(format!("{} malformed", progress.malformed()));
                }
            }
            tend();
            std::thread::sleep(PROGRESS_INTERVAL);
        }
        // What the last interval saw (a short run may end inside its first).
        tend();
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        runner
            .join()
            .map_err(|_| anyhow::anyhow!("the pipeline panicked"))?
    })?;
    print_report(&report, args.json)?;
    for warning in &report.warnings {
        say!("warning: {warning}");
    }
    if let Some(server) = server {
        // Serve the final values a while; a signal ends the wait. A linger too long
        // for the clock waits until a signal.
        let until = Instant::now().checked_add(Duration::from_secs(args.linger.unwrap_or(0)));
        while until.is_none_or(|until| Instant::now() < until) && signals.received().is_none() {
            let left = until.map_or(PROGRESS_INTERVAL, |until| {
                until.saturating_duration_since(Instant::now())
            });
            std::thread::sleep(PROGRESS_INTERVAL.min(left));
        }
        server.shutdown();
    }
    let broken = report.broken_invariants();
    for b in &broken {
        say!("invariant broken: {b}");
    }
    Ok(if !broken.is_empty() {
        ExitCode::from(2)
    } else if let Some(reason) = report.stopped {
        ExitCode::from(reason.exit_status())
    } else {
        ExitCode::SUCCESS
    })
}

/// Starts the metrics endpoint on the first of `addresses` that can be bound.
fn serve(addresses: &Addresses, progress: &Arc<Progress>) -> Result<monitoring::MetricsServer> {
    let registry = Arc::new(pipeline::metrics_registry(progress));
    let resolved: Vec<SocketAddr> = addresses
        .given
        .to_socket_addrs()
        .with_context(|| format!("resolving --metrics-addr {}", addresses.given))?
        .collect();
    let mut last_error = None;
    for &addr in &resolved {
        match monitoring::MetricsServer::start(
            addr,
            Arc::clone(&registry),
            monitoring::ServerOptions::default(),
        ) {
            Ok(server) => {
                say!("metrics: http://{}/metrics", server.local_addr());
                return Ok(server);
            }
            Err(error) => last_error = Some(error),
        }
    }
    Err(anyhow::anyhow!(
        "cannot serve metrics on {}: {}",
        addresses.given,
        last_error.map_or_else(|| "no address".to_owned(), |e| e.to_string())
    ))
}

/// Prints the report on stdout; a reader that has gone (a closed pipe) ends the
/// output quietly, any other write error is an error.
fn print_report(report: &Report, json: bool) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    let written = if json {
        serde_json::to_writer_pretty(&mut stdout, report)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(stdout))
    } else {
        write!(stdout, "{report}")
    }
    .and_then(|()| stdout.flush());
    match written {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing the report"),
    }
}
