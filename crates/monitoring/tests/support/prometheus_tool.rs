//! Finding a tool from Debian's `prometheus` package for the tests that run the real
//! thing. Shared by `monitoring/tests/endpoint.rs` and `pipeline/tests/prometheus.rs`
//! (included with `#[path]`).

use std::path::PathBuf;

/// A tool from the Prometheus package on `PATH`: `None` (with a note) where it is not
/// installed, unless `REQUIRE_PROMETHEUS` is set (CI installs it and sets it), then a
/// failure.
pub(crate) fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("REQUIRE_PROMETHEUS").is_none(),
            "{name} is required (REQUIRE_PROMETHEUS is set) but not on PATH"
        );
        eprintln!("SKIPPED: {name} not installed (apt-get install prometheus)");
    }
    found
}
