//! Opt-in host-side profile of where the backend's time goes (allocation, encoding, submit,
//! waiting for the device, readback staging and mapping). Off unless [`profile_enable`] is
//! called (`ildtrack bench --profile`); when off, recording costs one relaxed atomic load.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

static ON: AtomicBool = AtomicBool::new(false);
static TABLE: Mutex<BTreeMap<String, (u64, f64)>> = Mutex::new(BTreeMap::new());

/// Turn recording on or off (process-wide).
pub fn profile_enable(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

pub(crate) fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Everything recorded since the last call: `(what, count, total ms)`, sorted by name.
pub fn profile_take() -> Vec<(String, u64, f64)> {
    let mut t = TABLE.lock().unwrap_or_else(|p| p.into_inner());
    let out = t.iter().map(|(k, (n, ms))| (k.clone(), *n, *ms)).collect();
    t.clear();
    out
}

pub(crate) fn record(what: &str, since: Instant) {
    if !enabled() {
        return;
    }
    record_ms(what, since.elapsed().as_secs_f64() * 1e3);
}

pub(crate) fn record_ms(what: &str, ms: f64) {
    if !enabled() {
        return;
    }
    let mut t = TABLE.lock().unwrap_or_else(|p| p.into_inner());
    let e = t.entry(what.to_string()).or_insert((0, 0.0));
    e.0 += 1;
    e.1 += ms;
}
