//! The memory and concurrency checkers: AddressSanitizer, valgrind memcheck, Miri and
//! ThreadSanitizer. Miri and TSan need nightly components; where those cannot be had
//! the check fails, unless `XTASK_ALLOW_SKIP` names it (see `skips.rs`).

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

use crate::{skips, step};

const TARGET: &str = "x86_64-unknown-linux-gnu";

/// The infrastructure tests under AddressSanitizer with its leak checker, on the
/// pinned stable (`RUSTC_BOOTSTRAP=1` unlocks `-Zsanitizer` there).
pub(crate) fn asan(sh: &Shell) -> Result<()> {
    step("asan", || {
        let _bootstrap = sh.push_env("RUSTC_BOOTSTRAP", "1");
        let _flags = sh.push_env("RUSTFLAGS", "-Zsanitizer=address");
        let _doc = sh.push_env("RUSTDOCFLAGS", "-Zsanitizer=address");
        let _options = sh.push_env("ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1");
        let _target = sh.push_env("CARGO_TARGET_DIR", "target/asan");
        cmd!(
            sh,
            "cargo test --locked --target {TARGET} -p infrastructure --lib --tests"
        )
        .run()?;
        Ok(())
    })
}

/// The pool test binaries under valgrind memcheck: any definite leak or memory error
/// fails. (The test harness leaves "possibly lost" thread blocks; those are not ours.)
pub(crate) fn valgrind(sh: &Shell) -> Result<()> {
    step("valgrind", || {
        if cmd!(sh, "valgrind --version").quiet().read().is_err() {
            return skips::skip(
                "valgrind",
                "valgrind is not installed (it is expected on every machine of this kind; `apt-get install -y valgrind`)",
            );
        }
        let json = cmd!(
            sh,
            "cargo test --locked --no-run --message-format=json -p infrastructure --lib --test stress_threads --test memory_stats"
        )
        .read()?;
        let binaries = test_executables(&json);
        if binaries.len() != 3 {
            bail!("expected 3 test binaries, found {binaries:?}");
        }
        for binary in binaries {
            cmd!(
                sh,
                "valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1 {binary} --test-threads=2"
            )
            .run()
            .with_context(|| format!("valgrind found a problem in {binary}"))?;
        }
        Ok(())
    })
}

/// Extracts test executables from `cargo --message-format=json` output.
fn test_executables(json: &str) -> Vec<String> {
    json.lines()
        .filter(|line| line.contains(r#""reason":"compiler-artifact""#))
        .filter(|line| line.contains(r#""test":true"#))
        .filter_map(|line| {
            let start = line.find(r#""executable":""#)? + r#""executable":""#.len();
            let end = line[start..].find('"')? + start;
            Some(line[start..end].to_owned())
        })
        .collect()
}

/// Makes sure the nightly toolchain has `components`. Where it cannot: an error, or
/// `Ok(false)` if `check` is allowed to skip (`skips::skip` prints and records it).
fn nightly_with(sh: &Shell, check: &str, components: &[&str]) -> Result<bool> {
    if cmd!(sh, "rustc +nightly --version").quiet().read().is_err() {
        skips::skip(check, "no nightly toolchain on this machine")?;
        return Ok(false);
    }
    let installed = cmd!(sh, "rustup +nightly component list --installed")
        .quiet()
        .read()
        .unwrap_or_default();
    for component in components {
        if installed.lines().any(|l| l.starts_with(component)) {
            continue;
        }
        // Bounded: on a machine without a route to rustup's server the download could
        // hang rather than fail, and CI must not.
        if cmd!(
            sh,
            "timeout 300 rustup component add {component} --toolchain nightly"
        )
        .quiet()
        .run()
        .is_err()
        {
            skips::skip(
                check,
                &format!(
                    "the nightly component `{component}` is missing and cannot be installed here"
                ),
            )?;
            return Ok(false);
        }
    }
    Ok(true)
}

/// Miri over the tests that exercise the unsafe code: thread exit, pool drop,
/// teardown, depot, reclaim, the value types, and the byte classification. (Miri runs ~100× slower than native,
/// so the million-iteration and 10k-thread tests are left to ASan and valgrind.)
pub(crate) fn miri(sh: &Shell) -> Result<()> {
    step("miri", || {
        if !nightly_with(sh, "miri", &["miri", "rust-src"])? {
            return Ok(());
        }
        let filters = MIRI_FILTERS;
        // A renamed or deleted test must not drop out silently: every filter has to
        // select at least one test of the native build (listed before the Miri target
        // dir is set, so it reuses the normal build; listing runs nothing).
        let listing = cmd!(
            sh,
            "cargo test --locked -q -p infrastructure --lib -- --list --format=terse"
        )
        .read()?;
        let selected = selected_tests(&listing, filters)?;
        let ignored: Vec<&str> = MIRI_IGNORED
            .iter()
            .map(|(test, _)| *test)
            .filter(|test| selected.contains(test))
            .collect();
        if ignored.len() != MIRI_IGNORED.len() {
            bail!("MIRI_IGNORED names tests the filters do not select: {MIRI_IGNORED:?}");
        }
        eprintln!(
            "miri: {} tests selected by {} filters, {} of them ignored under Miri",
            selected.len(),
            filters.len(),
            ignored.len()
        );
        let _flags = sh.push_env("MIRIFLAGS", "-Zmiri-disable-isolation");
        let _target = sh.push_env("CARGO_TARGET_DIR", "target/miri");
        cmd!(sh, "cargo +nightly miri setup").quiet().run()?;
        let (status, stdout) = run_streaming(cmd!(
            sh,
            "cargo +nightly miri test --locked -p infrastructure --lib -- {filters...}"
        ))?;
        if !status.success() {
            bail!("miri failed: {status}");
        }
        let counts = result_counts(&stdout)
            .context("miri printed no `test result` line: did it run the tests?")?;
        let expected = (selected.len() - ignored.len(), ignored.len());
        if (counts.passed, counts.ignored) != expected {
            bail!(
                "miri passed {} and ignored {} tests where the filters select {} and {} are expected to be ignored ({ignored:?}): a test was skipped or filtered out",
                counts.passed,
                counts.ignored,
                selected.len(),
                ignored.len()
            );
        }
        skips::record(
            "miri",
            format!(
                "ran {} tests ({} ignored by design)",
                counts.passed, counts.ignored
            ),
        );
        Ok(())
    })
}

/// Miri's filters (libtest substring filters over the lib tests): the tests that
/// exercise the unsafe code. Each must select at least one test.
const MIRI_FILTERS: &[&str] = &[
    "types::",
    "bytes::",
    "memory::config",
    "memory::depot",
    "memory::tid",
    "memory::contain",
    "memory::tests::faults",
    "memory::tests::reset::every_field",
    "memory::tests::reset::objects_reused",
    "memory::tests::thread_exit::a_thread_cache_is_flushed",
    "memory::tests::thread_exit::a_panicking_thread",
    "memory::tests::drop::dropping_a_pool",
    "memory::tests::thread_exit::pool_use_during",
    "memory::tests::reclaim::reclaim_frees",
    "memory::tests::reclaim::an_unused_previous",
    "memory::tests::reclaim::the_working_set",
    "memory::tests::stats::detached",
    "memory::tests::caps::try_acquire_honours",
    "memory::tests::reset::a_panicking_reset",
    "memory::tests::slots",
    "memory::tests::owned",
];

/// Selected tests that are `#[cfg_attr(miri, ignore)]`, with why: Miri must report
/// exactly these as ignored, and pass every other selected test.
const MIRI_IGNORED: &[(&str, &str)] = &[
    (
        "types::decimal::tests::display_round_trips",
        "2,000 proptest cases of safe code",
    ),
    (
        "types::decimal::tests::the_plain_path_agrees_with_the_checked_one",
        "2,000 proptest cases of safe code",
    ),
];

/// The infrastructure tests under ThreadSanitizer, with std rebuilt instrumented (so
/// its own synchronisation is seen and reports are real).
pub(crate) fn tsan(sh: &Shell) -> Result<()> {
    step("tsan", || {
        if !nightly_with(sh, "tsan", &["rust-src"])? {
            return Ok(());
        }
        let _flags = sh.push_env("RUSTFLAGS", "-Zsanitizer=thread");
        let _doc = sh.push_env("RUSTDOCFLAGS", "-Zsanitizer=thread");
        let _options = sh.push_env("TSAN_OPTIONS", "halt_on_error=1");
        let _target = sh.push_env("CARGO_TARGET_DIR", "target/tsan");
        cmd!(
            sh,
            "cargo +nightly test --locked -Zbuild-std --target {TARGET} -p infrastructure --lib --tests"
        )
        .run()?;
        skips::record("tsan", "ran".into());
        Ok(())
    })
}

/// The market-data parser's fuzz target (`fuzz/`: the fast path against the serde
/// reference, any bytes) for `seconds`, under libFuzzer with ASan on nightly. New
/// inputs go to `target/fuzz-corpus/parse`, the committed seeds stay as they are; a
/// difference or a crash leaves its input in `fuzz/artifacts/parse/`.
pub(crate) fn fuzz(sh: &Shell, seconds: u64) -> Result<()> {
    step("fuzz", || {
        if cmd!(sh, "rustc +nightly --version").quiet().read().is_err() {
            return skips::skip(
                "fuzz",
                "no nightly toolchain on this machine (libFuzzer needs one)",
            );
        }
        if cmd!(sh, "cargo fuzz --version").quiet().read().is_err() {
            return skips::skip(
                "fuzz",
                "cargo-fuzz is not installed (`cargo install cargo-fuzz --locked`, as .ci/run does)",
            );
        }
        let corpus = "target/fuzz-corpus/parse";
        sh.create_dir(corpus)?;
        let time = format!("-max_total_time={seconds}");
        eprintln!(
            "$ cargo +nightly fuzz run --fuzz-dir fuzz parse {corpus} fuzz/seeds/parse -- {time}"
        );
        let output = cmd!(
            sh,
            "cargo +nightly fuzz run --fuzz-dir fuzz parse {corpus} fuzz/seeds/parse -- {time} -print_final_stats=1"
        )
        .ignore_status()
        .output()?;
        let log = String::from_utf8_lossy(&output.stderr);
        // libFuzzer's log is long: its last lines say how it ended.
        let lines: Vec<&str> = log.lines().collect();
        for line in &lines[lines.len().saturating_sub(40)..] {
            eprintln!("{line}");
        }
        if !output.status.success() {
            bail!("the fuzz target failed (its input is in fuzz/artifacts/parse/)");
        }
        let runs = lines
            .iter()
            .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
            .map_or("an unknown number of", str::trim);
        skips::record(
            "fuzz",
            format!("{runs} inputs in {seconds} s, no difference"),
        );
        Ok(())
    })
}

/// The tests of `listing` (`--list --format=terse`: `name: test` lines) that
/// `filters` select, as libtest does (a substring match); an error naming any filter
/// that selects none.
fn selected_tests<'a>(listing: &'a str, filters: &[&str]) -> Result<Vec<&'a str>> {
    let tests: Vec<&str> = listing
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .collect();
    let empty: Vec<&&str> = filters
        .iter()
        .filter(|filter| !tests.iter().any(|test| test.contains(**filter)))
        .collect();
    if !empty.is_empty() {
        bail!("these Miri filters select no test (renamed or deleted?): {empty:?}");
    }
    Ok(tests
        .into_iter()
        .filter(|test| filters.iter().any(|filter| test.contains(filter)))
        .collect())
}

/// Counts summed over every libtest `test result:` line (one per test binary).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ResultCounts {
    pub(crate) passed: usize,
    pub(crate) ignored: usize,
}

/// The counts of every `test result:` line of `stdout`; `None` if there is none.
pub(crate) fn result_counts(stdout: &str) -> Option<ResultCounts> {
    let count = |line: &str, what: &str| -> Option<usize> {
        let before = line.split(&format!(" {what}")).next()?;
        before.rsplit(' ').next()?.parse().ok()
    };
    let mut total: Option<ResultCounts> = None;
    for line in stdout.lines().filter(|l| l.starts_with("test result:")) {
        let sum = total.get_or_insert_with(ResultCounts::default);
        sum.passed += count(line, "passed")?;
        sum.ignored += count(line, "ignored")?;
    }
    total
}

/// Runs `cmd`, printing its stdout line by line as it comes (stderr goes straight
/// through) and returning it with the exit status, so a long check shows progress
/// and its output can still be checked.
pub(crate) fn run_streaming(cmd: xshell::Cmd<'_>) -> Result<(std::process::ExitStatus, String)> {
    use std::io::{BufRead as _, Write as _};
    eprintln!("$ {cmd}");
    let mut command = std::process::Command::from(cmd);
    command.stdout(std::process::Stdio::piped());
    let mut child = command.spawn().context("starting a check")?;
    let mut stdout = String::new();
    let read = child.stdout.take().map_or(Ok(()), |out| {
        let mut out = std::io::BufReader::new(out);
        let mut line = Vec::new();
        loop {
            line.clear();
            match out.read_until(b'\n', &mut line) {
                Ok(0) => return Ok(()),
                Ok(_) => {
                    // Lossy: output that is not UTF-8 must not stop the check.
                    let text = String::from_utf8_lossy(&line);
                    print!("{text}");
                    std::io::stdout().flush().ok();
                    stdout.push_str(&text);
                }
                Err(error) => return Err(error),
            }
        }
    });
    // Always reaped, even if reading failed.
    let status = child.wait()?;
    read.context("reading a check's output")?;
    Ok((status, stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_that_selects_nothing_is_an_error() {
        let listing = "memory::tests::a::one: test\nmemory::tests::a::two: test\ntypes::x: test\nsome_bench: bench\n";
        let selected = selected_tests(listing, &["memory::tests::a", "types::"]).unwrap();
        assert_eq!(
            selected,
            ["memory::tests::a::one", "memory::tests::a::two", "types::x"]
        );
        let error = selected_tests(listing, &["types::", "memory::tests::renamed"]).unwrap_err();
        assert!(
            error.to_string().contains("memory::tests::renamed"),
            "{error}"
        );
    }

    #[test]
    fn sums_the_counts_of_every_test_binary() {
        let out = "running 3 tests\n...\ntest result: ok. 41 passed; 0 failed; 2 ignored; 0 measured; 300 filtered out; finished in 1s\nrunning 1 test\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n";
        assert_eq!(
            result_counts(out),
            Some(ResultCounts {
                passed: 42,
                ignored: 2
            })
        );
        assert_eq!(result_counts("no tests here"), None);
    }

    #[test]
    fn finds_test_executables_in_cargo_json() {
        let json = r#"{"reason":"compiler-artifact","profile":{"test":true},"executable":"/t/deps/infra-1"}
{"reason":"compiler-artifact","profile":{"test":false},"executable":null}
{"reason":"build-finished","success":true}"#;
        assert_eq!(test_executables(json), ["/t/deps/infra-1"]);
    }
}
