//! Stage timings for `timings_ms`.

use std::time::Instant;

/// Stage timer: `lap(name)` records the time since the previous lap (or the start).
pub(crate) struct Stages {
    clock: Instant,
    pub ms: Vec<(String, f64)>,
}

impl Stages {
    pub(crate) fn start() -> Self {
        Stages {
            clock: Instant::now(),
            ms: Vec::new(),
        }
    }
    pub(crate) fn lap(&mut self, name: &str) {
        self.ms
            .push((name.to_string(), self.clock.elapsed().as_secs_f64() * 1e3));
        self.clock = Instant::now();
    }
}
