//! Helpers shared by the integration tests (`mod support;` in each).

#![allow(
    dead_code,
    reason = "each test binary includes this module and uses only part of it"
)]

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use infrastructure::memory::{Pool, PoolConfig, Poolable};

/// An object whose `Drop` panics once `explode` is set: user code that fails while the
/// pool frees it.
#[derive(Debug)]
pub(crate) struct Fragile {
    pub(crate) explode: bool,
}

impl Default for Fragile {
    fn default() -> Self {
        FRAGILE_ALIVE.fetch_add(1, Ordering::SeqCst);
        Fragile { explode: false }
    }
}

/// `Fragile` objects currently allocated.
pub(crate) static FRAGILE_ALIVE: AtomicUsize = AtomicUsize::new(0);

impl Fragile {
    pub(crate) fn alive() -> usize {
        FRAGILE_ALIVE.load(Ordering::SeqCst)
    }
}

impl Poolable for Fragile {
    fn reset(&mut self) {
        self.explode = false;
    }
}

/// `Default` counts up, `Drop` down (before it panics, so a freed object is never
/// counted as alive).
impl Drop for Fragile {
    fn drop(&mut self) {
        FRAGILE_ALIVE.fetch_sub(1, Ordering::SeqCst);
        if self.explode && !thread::panicking() {
            panic!("Fragile::drop: a user type's destructor failed");
        }
    }
}

/// Acquires `n` objects, arms them (their `Drop` will panic) and releases them on
/// this thread.
pub(crate) fn release_armed(pool: &Pool<Fragile>, n: usize) {
    let mut held: Vec<_> = (0..n).map(|_| pool.acquire()).collect();
    for object in &mut held {
        object.explode = true;
    }
}

/// A pool config with no background reaper.
pub(crate) fn manual(name: &str, magazine: usize, depot: usize) -> PoolConfig {
    PoolConfig::new(name)
        .magazine_size(magazine)
        .depot_magazines(Some(depot))
        .reclaim_interval(None)
}

/// Runs `f` on a new thread and waits until it has fully exited, its thread-local
/// destructors (the cache flush) included: an explicit `join` waits for the OS thread,
/// where the scope's implicit join waits only for the closure.
pub(crate) fn on_thread<R: Send>(f: impl FnOnce() -> R + Send) -> thread::Result<R> {
    thread::scope(|s| s.spawn(f).join())
}

/// Polls `condition` until it holds or `limit` passes; returns whether it held.
pub(crate) fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        thread::sleep(Duration::from_millis(5));
    }
    condition()
}

/// Silences the default panic message for panics this test causes on purpose (the
/// message names `Fragile`); every other panic still prints.
pub(crate) fn quiet_expected_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        if !text.contains("Fragile") && !text.contains("on purpose") {
            default(info);
        }
    }));
}

/// Runs the test `name` of this binary in a child process (with `CHILD_ENV` set) and
/// returns its exit status and output: for scenarios that, when broken, abort or hang
/// the whole process.
pub(crate) const CHILD_ENV: &str = "INFRASTRUCTURE_TEST_CHILD";

pub(crate) fn in_child(name: &str, timeout: Duration) -> (Option<i32>, String) {
    in_child_with_env(name, timeout, &[])
}

/// [`in_child`] with more environment variables set in the child.
pub(crate) fn in_child_with_env(
    name: &str,
    timeout: Duration,
    vars: &[(&str, &str)],
) -> (Option<i32>, String) {
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .args(["--exact", name, "--nocapture", "--test-threads", "1"])
        .env(CHILD_ENV, "1")
        .envs(vars.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the child test");
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            let output = child.wait_with_output().expect("child output");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            return (status.code(), text);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("child output");
            return (
                None,
                format!(
                    "timed out after {timeout:?}\n{}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ),
            );
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Whether this process is the child of [`in_child`].
pub(crate) fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// For a scenario that aborts or hangs the process when the code is broken. In the
/// test process, runs the test `name` again in a child process (30 s deadline), checks
/// that it exited 0 after [`child_done`], and returns `false`; in that child, returns
/// `true`, and the caller runs the scenario.
pub(crate) fn scenario_in_child(name: &str) -> bool {
    if is_child() {
        return true;
    }
    let (status, output) = in_child(name, Duration::from_secs(30));
    assert_eq!(
        status,
        Some(0),
        "the child aborted, hung or failed:\n{output}"
    );
    assert!(output.contains("CHILD OK"), "{output}");
    false
}

/// The child's scenario ran to its end.
pub(crate) fn child_done() {
    println!("CHILD OK");
}
