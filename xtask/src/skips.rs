//! Skips. A check that cannot run fails, unless `XTASK_ALLOW_SKIP` names it
//! (comma-separated: `miri,tsan,valgrind,fuzz,prometheus,icount`, or `all`); an allowed skip is printed
//! and listed in the summary at the end of `cargo xtask ci`, never shown as a pass.

use std::sync::Mutex;

use anyhow::{Result, bail};

/// The variable that allows named checks to skip.
pub(crate) const ALLOW_VAR: &str = "XTASK_ALLOW_SKIP";

/// What each step did, in order, for the summary.
static OUTCOMES: Mutex<Outcomes> = Mutex::new(Outcomes {
    steps: Vec::new(),
    notes: Vec::new(),
});

struct Outcomes {
    /// One line per finished step.
    steps: Vec<String>,
    /// Notes of the step running now (a skip, how many tests ran).
    notes: Vec<String>,
}

fn outcomes() -> std::sync::MutexGuard<'static, Outcomes> {
    OUTCOMES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether `check` may skip on this run.
pub(crate) fn allowed(check: &str) -> bool {
    std::env::var(ALLOW_VAR).is_ok_and(|list| allowed_in(&list, check))
}

fn allowed_in(list: &str, check: &str) -> bool {
    list.split(',')
        .map(str::trim)
        .any(|name| name == check || name == "all")
}

/// `check` cannot run because of `reason`: `Ok` (printed, recorded) where the skip is
/// allowed, an error saying how to allow it otherwise.
pub(crate) fn skip(check: &str, reason: &str) -> Result<()> {
    if !allowed(check) {
        bail!(
            "{check} cannot run: {reason}. It is part of CI and may not skip; to skip it on this machine on purpose, set {ALLOW_VAR}={check}"
        );
    }
    eprintln!("{check}: SKIPPED ({ALLOW_VAR} allows it): {reason}");
    record(check, format!("SKIPPED (allowed): {reason}"));
    Ok(())
}

/// Notes what `check` did, for the line of the step running now.
pub(crate) fn record(check: &str, outcome: String) {
    outcomes().notes.push(format!("{check}: {outcome}"));
}

/// Closes the summary line of a step, with the notes recorded while it ran.
pub(crate) fn finish_step(name: &str, seconds: f64, ok: bool) {
    let mut outcomes = outcomes();
    let notes = std::mem::take(&mut outcomes.notes);
    let status = if ok { "ok" } else { "FAILED" };
    let mut line = format!("{name:<20} {status:<6} {seconds:>6.1}s");
    if !notes.is_empty() {
        line = format!("{line}  ({})", notes.join("; "));
    }
    outcomes.steps.push(line);
}

/// Prints one line per finished step.
pub(crate) fn print_summary() {
    let outcomes = outcomes();
    if outcomes.steps.is_empty() {
        return;
    }
    eprintln!("==> summary: every step, what it ran or skipped");
    for line in &outcomes.steps {
        eprintln!("  {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skip_is_an_error_unless_allowed() {
        assert!(allowed_in("miri,tsan", "tsan"));
        assert!(allowed_in(" miri , tsan ", "miri"));
        assert!(allowed_in("all", "prometheus"));
        assert!(!allowed_in("miri", "tsan"));
        assert!(!allowed_in("", "tsan"));
        assert!(!allowed_in("miri-extra", "miri"));
    }
}
