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
            bail!(
                "valgrind is not installed on this machine (it is expected on every machine of this kind); install it with `apt-get install -y valgrind`"
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
/// teardown, depot, reclaim, and the value types. (Miri runs ~100× slower than native,
/// so the million-iteration and 10k-thread tests are left to ASan and valgrind.)
pub(crate) fn miri(sh: &Shell) -> Result<()> {
    step("miri", || {
        if !nightly_with(sh, "miri", &["miri", "rust-src"])? {
            return Ok(());
        }
        let _flags = sh.push_env("MIRIFLAGS", "-Zmiri-disable-isolation");
        let _target = sh.push_env("CARGO_TARGET_DIR", "target/miri");
        let filters = [
            "types::",
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
        ];
        // A renamed or deleted test must not drop out silently: every filter has to
        // name at least one test of the native build (listing it runs nothing).
        let listing = cmd!(
            sh,
            "cargo test --locked -q -p infrastructure --lib -- --list --format=terse"
        )
        .read()?;
        let selected = selected_tests(&listing, &filters)?;
        eprintln!(
            "miri: {} tests selected by {} filters",
            selected.len(),
            filters.len()
        );
        cmd!(sh, "cargo +nightly miri setup").quiet().run()?;
        let output = cmd!(
            sh,
            "cargo +nightly miri test --locked -p infrastructure --lib -- {filters...}"
        )
        .ignore_status()
        .output()?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        print!("{stdout}");
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        if !output.status.success() {
            bail!("miri failed: {}", output.status);
        }
        let passed = passed_count(&stdout)
            .context("miri printed no `test result` line: did it run the tests?")?;
        if passed != selected.len() {
            bail!(
                "miri passed {passed} tests where {} were selected: some were ignored or filtered out",
                selected.len()
            );
        }
        skips::record("miri", format!("ran {passed} tests"));
        Ok(())
    })
}

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

/// The `passed` count of libtest's `test result:` line.
fn passed_count(stdout: &str) -> Option<usize> {
    let line = stdout.lines().find(|l| l.starts_with("test result:"))?;
    let before = line.split(" passed").next()?;
    before.rsplit(' ').next()?.parse().ok()
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
    fn reads_the_passed_count() {
        let out = "running 3 tests\n...\ntest result: ok. 41 passed; 0 failed; 2 ignored; 0 measured; 300 filtered out\n";
        assert_eq!(passed_count(out), Some(41));
        assert_eq!(passed_count("no tests here"), None);
    }

    #[test]
    fn finds_test_executables_in_cargo_json() {
        let json = r#"{"reason":"compiler-artifact","profile":{"test":true},"executable":"/t/deps/infra-1"}
{"reason":"compiler-artifact","profile":{"test":false},"executable":null}
{"reason":"build-finished","success":true}"#;
        assert_eq!(test_executables(json), ["/t/deps/infra-1"]);
    }
}
