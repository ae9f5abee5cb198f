//! The memory and concurrency checkers: AddressSanitizer, valgrind memcheck, Miri and
//! ThreadSanitizer. Miri and TSan need nightly components; where those cannot be had
//! they are skipped with a message, never failed.

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

use crate::step;

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

/// Makes sure the nightly toolchain has `components`; `false` (with a message saying
/// why) when it cannot.
fn nightly_with(sh: &Shell, check: &str, components: &[&str]) -> bool {
    if cmd!(sh, "rustc +nightly --version").quiet().read().is_err() {
        eprintln!("{check}: SKIPPED: no nightly toolchain on this machine");
        return false;
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
            eprintln!(
                "{check}: SKIPPED: the nightly component `{component}` is missing and cannot be installed here"
            );
            return false;
        }
    }
    true
}

/// Miri over the tests that exercise the unsafe code: thread exit, pool drop,
/// teardown, depot, reclaim, and the value types. (Miri runs ~100× slower than native,
/// so the million-iteration and 10k-thread tests are left to ASan and valgrind.)
pub(crate) fn miri(sh: &Shell) -> Result<()> {
    step("miri", || {
        if !nightly_with(sh, "miri", &["miri", "rust-src"]) {
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
        ];
        cmd!(sh, "cargo +nightly miri setup").quiet().run()?;
        cmd!(
            sh,
            "cargo +nightly miri test --locked -p infrastructure --lib -- {filters...}"
        )
        .run()?;
        Ok(())
    })
}

/// The infrastructure tests under ThreadSanitizer, with std rebuilt instrumented (so
/// its own synchronisation is seen and reports are real).
pub(crate) fn tsan(sh: &Shell) -> Result<()> {
    step("tsan", || {
        if !nightly_with(sh, "tsan", &["rust-src"]) {
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
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_test_executables_in_cargo_json() {
        let json = r#"{"reason":"compiler-artifact","profile":{"test":true},"executable":"/t/deps/infra-1"}
{"reason":"compiler-artifact","profile":{"test":false},"executable":null}
{"reason":"build-finished","success":true}"#;
        assert_eq!(test_executables(json), ["/t/deps/infra-1"]);
    }
}
