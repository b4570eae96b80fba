//! A progress bar on a terminal; nothing when stderr is not one.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub fn new() -> Self {
        let bar = ProgressBar::new(1000);
        if std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            if let Ok(style) =
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {msg}")
            {
                bar.set_style(style);
            }
        } else {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        Progress { bar }
    }

    /// `fraction` in 0..=1 of the current job; `stage` is shown beside the bar.
    pub fn update(&self, stage: &str, fraction: f32) {
        self.bar
            .set_position((fraction.clamp(0.0, 1.0) * 1000.0) as u64);
        self.bar.set_message(stage.to_string());
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
