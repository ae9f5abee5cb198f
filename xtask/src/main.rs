//! `cargo xtask <verb>`: the repository's own automation (matklad's cargo-xtask).
//!
//! - `ci`: everything CI checks: formatting, clippy with `-D warnings`, the tidy checks,
//!   every test and doctest of the workspace, then loom, ASan, valgrind, Miri, TSan, 30 s
//!   of fuzzing, a 60 s soak, and `bench-all --quick`; then a summary of every step. A check that
//!   cannot run (no nightly, no Prometheus, no valgrind) fails unless `XTASK_ALLOW_SKIP`
//!   names it (`skips.rs`).
//! - `loom [--full]`: the loom models of the pools, in release with debug assertions,
//!   `LOOM_MAX_PREEMPTIONS=3` (`--full`: 4; the variable, if set, wins).
//! - `asan`, `valgrind`, `miri`, `tsan`: one checker each (see `checks.rs`).
//! - `fuzz [--seconds N]`: the market-data parser's fuzz target (its fast path against
//!   the serde reference) under libFuzzer; 30 s in `ci`.
//! - `soak [--seconds N]`: compressed trading days; fails on growth, writes a CSV and
//!   an SVG chart to `target/soak/`.
//! - `bench-all [--quick]`: every criterion benchmark of the workspace.
//! - `hiccups [--seconds N] [--threads N]`: what the host alone puts under latencies
//!   measured from due times on threads that never sleep (`hiccups.rs`).

use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use xshell::{Shell, cmd};

mod bench;
mod checks;
mod hiccups;
mod skips;
mod tidy;

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "Repository automation")]
struct Cli {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// Formatting, clippy (-D warnings), all tests and doctests, tidy checks.
    Ci,
    /// The loom models (release build, LOOM_MAX_PREEMPTIONS=3 unless set).
    Loom {
        /// Explore up to 4 preemptions instead of 3 (much longer; not in CI).
        #[arg(long)]
        full: bool,
    },
    /// The infrastructure tests under AddressSanitizer (leak checker on).
    Asan,
    /// The pool test binaries under valgrind memcheck (fails without valgrind, unless
    /// XTASK_ALLOW_SKIP=valgrind).
    Valgrind,
    /// Selected tests under Miri (fails where nightly's miri is unavailable, unless
    /// XTASK_ALLOW_SKIP=miri).
    Miri,
    /// The infrastructure tests under ThreadSanitizer (fails without nightly rust-src,
    /// unless XTASK_ALLOW_SKIP=tsan).
    Tsan,
    /// The parser's fuzz target: the fast path against the serde reference, under
    /// libFuzzer (nightly and cargo-fuzz; fails without them unless
    /// XTASK_ALLOW_SKIP=fuzz).
    Fuzz {
        /// How long to run.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Compressed trading days over all pools; fails if memory grows or breaks its bound.
    Soak {
        /// How long to run.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Every benchmark in the workspace.
    BenchAll {
        /// A smoke run: each benchmark only until criterion's quick estimate settles.
        #[arg(long)]
        quick: bool,
        /// Only rebuild the summary from the results criterion saved last time.
        #[arg(long)]
        summary_only: bool,
    },
    /// The host's own hiccups: threads that only read the clock, and the floor that
    /// leaves under any latency measured from due times (run it just before a
    /// latency run).
    Hiccups {
        /// How long to look.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Spinning threads (1: the other vCPU idle; 2: both vCPUs of this machine
        /// saturated, which the host preempts far more often).
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let sh = Shell::new()?;
    sh.change_dir(workspace_root());
    match cli.verb {
        Verb::Ci => ci(&sh),
        Verb::Loom { full } => loom(&sh, if full { Bound::Full } else { Bound::Standard }),
        Verb::Asan => checks::asan(&sh),
        Verb::Valgrind => checks::valgrind(&sh),
        Verb::Miri => checks::miri(&sh),
        Verb::Tsan => checks::tsan(&sh),
        Verb::Fuzz { seconds } => checks::fuzz(&sh, seconds),
        Verb::Soak { seconds } => soak(&sh, seconds),
        Verb::BenchAll {
            quick,
            summary_only,
        } => bench::bench_all(&sh, &workspace_root(), quick, summary_only),
        Verb::Hiccups { seconds, threads } => hiccups::hiccups(seconds, threads),
    }
}

fn workspace_root() -> std::path::PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Runs one named step, printing how long it took.
fn step(name: &str, f: impl FnOnce() -> Result<()>) -> Result<()> {
    eprintln!("==> {name}");
    let start = Instant::now();
    let result = f().with_context(|| format!("step `{name}` failed"));
    let seconds = start.elapsed().as_secs_f64();
    eprintln!("<== {name} ({seconds:.1}s)");
    skips::finish_step(name, seconds, result.is_ok());
    result
}

fn ci(sh: &Shell) -> Result<()> {
    let result = ci_steps(sh);
    skips::print_summary();
    result
}

fn ci_steps(sh: &Shell) -> Result<()> {
    // The tests against a real Prometheus fail rather than skip when it is missing,
    // unless that skip is allowed; say so now rather than after the build.
    let mut prometheus = true;
    step("prerequisites", || {
        for tool in ["prometheus", "promtool"] {
            let found = cmd!(sh, "{tool} --version")
                .quiet()
                .ignore_stderr()
                .read()
                .is_ok();
            if !found {
                prometheus = false;
                return skips::skip(
                    "prometheus",
                    &format!(
                        "`{tool}` is not installed, and the monitoring tests run the real Prometheus (`apt-get install --no-install-recommends prometheus`, as .ci/run does); they will print SKIPPED"
                    ),
                );
            }
        }
        skips::record("prometheus", "installed; its tests may not skip".into());
        Ok(())
    })?;
    let _prometheus = prometheus.then(|| sh.push_env("REQUIRE_PROMETHEUS", "1"));
    step("fmt", || Ok(cmd!(sh, "cargo fmt --all -- --check").run()?))?;
    step("clippy", || {
        Ok(cmd!(
            sh,
            "cargo clippy --workspace --all-targets --locked -- -D warnings"
        )
        .run()?)
    })?;
    step("tidy", || tidy::check(&workspace_root()))?;
    step("test", || {
        Ok(cmd!(sh, "cargo test --workspace --all-targets --locked").run()?)
    })?;
    step("doctest", || {
        Ok(cmd!(sh, "cargo test --workspace --doc --locked").run()?)
    })?;
    loom(sh, Bound::Ci)?;
    checks::asan(sh)?;
    checks::valgrind(sh)?;
    checks::miri(sh)?;
    checks::tsan(sh)?;
    checks::fuzz(sh, 30)?;
    soak(sh, 60)?;
    // The main job, shortened: it exits non-zero when a report invariant breaks (an
    // order not back, a live pool object, pool memory growth, a steady-state
    // allocation on the stage threads).
    step("pipeline", || {
        Ok(cmd!(
            sh,
            "cargo run --locked --release -p pipeline -- --ticks 3000000"
        )
        .run()?)
    })?;
    // The smoke form of every benchmark, so the suite cannot rot.
    bench::bench_all(sh, &workspace_root(), true, false)?;
    Ok(())
}

fn soak(sh: &Shell, seconds: u64) -> Result<()> {
    step("soak", || {
        let seconds = seconds.to_string();
        Ok(cmd!(
            sh,
            "cargo run --locked --release -p infrastructure --example soak -- --seconds {seconds} --out target/soak"
        )
        .run()?)
    })
}

/// How far the loom models search.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bound {
    /// 3 preemptions, 2 for the heaviest model (`heavy_model` in the models): CI's.
    Ci,
    /// 3 preemptions for every model.
    Standard,
    /// 4 preemptions for every model.
    Full,
}

fn loom(sh: &Shell, bound: Bound) -> Result<()> {
    step("loom", || {
        let default = if bound == Bound::Full { "4" } else { "3" };
        let preemptions = std::env::var("LOOM_MAX_PREEMPTIONS").unwrap_or_else(|_| default.into());
        let _heavy = (bound == Bound::Ci).then(|| sh.push_env("LOOM_HEAVY_MAX_PREEMPTIONS", "2"));
        // A separate target dir: `--cfg loom` rebuilds everything, and sharing the
        // normal one would throw away its cache on every switch.
        // Debug assertions on: the pools' `debug_assert!`s are invariants loom should see.
        let _env = sh.push_env("RUSTFLAGS", "--cfg loom -C debug-assertions -D warnings");
        let _preemptions = sh.push_env("LOOM_MAX_PREEMPTIONS", &preemptions);
        let _target = sh.push_env("CARGO_TARGET_DIR", "target/loom");
        // `--nocapture`: each model prints how many executions it explored.
        let (status, stdout) = checks::run_streaming(cmd!(
            sh,
            "cargo test --release --locked -p infrastructure --lib loom_models -- --nocapture"
        ))?;
        if !status.success() {
            anyhow::bail!("loom failed: {status}");
        }
        let executions: Vec<&str> = stdout
            .lines()
            .filter_map(|line| line.split("loom model ").nth(1))
            .collect();
        if executions.len() != LOOM_MODELS {
            anyhow::bail!(
                "{} loom models reported, {LOOM_MODELS} expected (a model added, removed or filtered out: update LOOM_MODELS): {executions:?}",
                executions.len()
            );
        }
        // Each model's line ends with its bound, `(preemption bound Some(N))`.
        let capped: Vec<String> = executions
            .iter()
            .filter(|line| !line.ends_with(&format!("Some({preemptions}))")))
            .map(|line| {
                let name = line.split(':').next().unwrap_or(line);
                let bound = line
                    .rsplit("Some(")
                    .next()
                    .unwrap_or("?)")
                    .trim_end_matches(')');
                format!("{name} at {bound}")
            })
            .collect();
        let capped = if capped.is_empty() {
            String::new()
        } else {
            format!(" ({})", capped.join(", "))
        };
        skips::record(
            "loom",
            format!(
                "{} models, preemption bound {preemptions}{capped}",
                executions.len()
            ),
        );
        Ok(())
    })
}

/// The loom models in `crates/infrastructure/src/memory/loom_models.rs`: any other
/// number reporting fails the step (a model renamed out of the filter, compiled out,
/// or added without being counted here).
const LOOM_MODELS: usize = 10;
