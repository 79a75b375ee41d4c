//! A progress bar that appears only for transfers lasting over a second, and
//! never when stdout is not a terminal or output is JSON.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long a transfer runs before its bar is drawn.
const SHOW_AFTER: Duration = Duration::from_secs(1);

/// A byte-count progress bar, hidden until the transfer has run for a second.
pub struct Progress {
    bar: ProgressBar,
    enabled: bool,
    shown: bool,
    start: Instant,
}

impl Progress {
    /// Whether bars may be drawn at all: stdout is a terminal and `json` is off.
    pub fn allowed(json: bool) -> bool {
        !json && std::io::stdout().is_terminal()
    }

    /// A bar for `total` bytes labelled `label`; drawn (to stderr) only if
    /// `enabled` and the transfer outlasts a second.
    pub fn new(total: u64, label: &str, enabled: bool) -> Self {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
        if let Ok(style) = ProgressStyle::with_template(
            "{msg:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(label.to_owned());
        Progress {
            bar,
            enabled,
            shown: false,
            start: Instant::now(),
        }
    }

    /// Adds `n` bytes.
    pub fn inc(&mut self, n: u64) {
        self.bar.inc(n);
        if self.enabled && !self.shown && self.start.elapsed() >= SHOW_AFTER {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown = true;
        }
    }

    /// Removes the bar.
    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}
