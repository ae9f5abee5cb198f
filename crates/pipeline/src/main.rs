//! `cargo run --release -p pipeline`: replays 10M generated ticks through every layer
//! and prints the report. `--help` lists the flags.
#![forbid(unsafe_code)]

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use infrastructure::alloc_count::CountingAllocator;
use infrastructure::memory::PoolConfig;
use pipeline::{Config, DEFAULT_TICKS, PROGRESS_INTERVAL, Progress, Source};

// Counts every heap allocation, so the report can show the steady state makes none.
#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Replay market data through the trading layers and report throughput, latency,
/// pool statistics and memory.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Ticks to generate (with --input: the most lines to replay).
    #[arg(long)]
    ticks: Option<u64>,
    /// Replay recorded Binance JSON lines from FILE instead of generating a market.
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Seed of the generated market.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Ticks per report window.
    #[arg(long, default_value_t = pipeline::DEFAULT_WINDOW, value_parser = clap::value_parser!(u64).range(1..))]
    window: u64,
    /// Capacity of each channel between stages (objects in flight per hand-over).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    channel_capacity: u64,
    /// Feed at most N messages per second (default: as fast as the stages go, which
    /// keeps every queue full and so measures latency at saturation).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    rate: Option<u64>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Serve Prometheus metrics at /metrics while running, on ADDR (default
    /// 127.0.0.1:9898, loopback only; port 0 picks a free one). The bound address is
    /// printed on stderr.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:9898")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// With --metrics-addr: keep serving this many seconds after the report, so a
    /// scraper sees the final values.
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    linger: u64,
    /// Do not reserve the pools' working set up front (shows the pools growing into it).
    #[arg(long)]
    no_reserve: bool,
    /// A fault for the tests of the exit status: the trading stage allocates once
    /// every N ticks, which breaks the zero-allocation invariant.
    #[arg(long, value_name = "N", default_value_t = 0, hide = true)]
    fault_allocate_every: u64,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Args::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<ExitCode> {
    // The static pools' settings (`POOL_<NAME>_*`), before anything builds them.
    let configured = infrastructure::memory::safe_pools::configure_from_env()
        .context("the static pools' settings from the environment")?;
    if !configured.is_empty() {
        eprintln!("pools configured from the environment: {configured:?}");
    }
    let source = match args.input {
        Some(path) => Source::File {
            path,
            limit: args.ticks,
        },
        None => Source::Generated {
            seed: args.seed,
            ticks: args.ticks.unwrap_or(DEFAULT_TICKS),
        },
    };
    let total = match source {
        Source::Generated { ticks, .. } => Some(ticks),
        Source::File { limit, .. } => limit,
    };
    let config = Config {
        source,
        window: args.window,
        reserve: !args.no_reserve,
        rate: args.rate,
        channel_capacity: usize::try_from(args.channel_capacity)?,
        faults: pipeline::Faults {
            allocate_every: args.fault_allocate_every,
            ..pipeline::Faults::default()
        },
        ..Config::default()
    };
    let progress = Arc::new(Progress::default());
    let server = match args.metrics_addr {
        Some(addr) => {
            let registry = pipeline::metrics_registry(&progress);
            let server = monitoring::MetricsServer::start(
                addr,
                Arc::new(registry),
                monitoring::ServerOptions::default(),
            )?;
            eprintln!("metrics: http://{}/metrics", server.local_addr());
            Some(server)
        }
        None => None,
    };
    let report = std::thread::scope(|scope| {
        let runner = scope.spawn(|| pipeline::run(&config, &progress));
        // This thread drives reclamation for pools set to `Reclaim::Driven`
        // (`POOL_<NAME>_RECLAIM=driven`): once a second, while the run lasts.
        let mut next_reclaim = std::time::Instant::now();
        let mut drive = || {
            if std::time::Instant::now() >= next_reclaim {
                infrastructure::memory::reclaim_driven();
                next_reclaim += PoolConfig::DEFAULT_RECLAIM_INTERVAL;
            }
        };
        // A progress bar on a terminal only; nothing when output is piped or in CI.
        if std::io::stderr().is_terminal() {
            let bar = match total {
                Some(n) => ProgressBar::new(n),
                None => ProgressBar::no_length(),
            };
            bar.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{wide_bar}] {human_pos}/{human_len} ticks ({per_sec}) {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            while !runner.is_finished() {
                bar.set_position(progress.ticks());
                if progress.malformed() > 0 {
                    bar.set_message(format!("{} malformed", progress.malformed()));
                }
                drive();
                std::thread::sleep(PROGRESS_INTERVAL);
            }
            bar.finish_and_clear();
        } else {
            while !runner.is_finished() {
                drive();
                std::thread::sleep(PROGRESS_INTERVAL);
            }
        }
        runner
            .join()
            .map_err(|_| anyhow::anyhow!("the pipeline panicked"))?
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    std::io::Write::flush(&mut std::io::stdout())?;
    if let Some(server) = server {
        std::thread::sleep(std::time::Duration::from_secs(args.linger));
        server.shutdown();
    }
    let broken = report.broken_invariants();
    Ok(if broken.is_empty() {
        ExitCode::SUCCESS
    } else {
        for b in &broken {
            eprintln!("invariant broken: {b}");
        }
        ExitCode::from(2)
    })
}
