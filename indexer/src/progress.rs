//! Progress of the long stages (ALS, embedding, the reranker's passes), where catalog teams run
//! builds: bars on a terminal (indicatif), and where stderr is not one (a scheduler, CI, a log
//! file) one plain line every [`LINE_EVERY`] with done/total, rate and time left, so a build of
//! several minutes never sits silent until its summary.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often a non-interactive run prints a progress line.
pub const LINE_EVERY: Duration = Duration::from_secs(10);

/// One stage's progress.
pub struct Progress {
    what: String,
    total: u64,
    done: AtomicU64,
    message: Mutex<String>,
    how: How,
}

enum How {
    Off,
    Bar(ProgressBar),
    Lines { started: Instant, last: Mutex<Instant> },
}

impl Progress {
    /// Progress of `total` units of `what` (e.g. "embed items"); drawn only when `enabled`,
    /// as a bar with `template` on a terminal and as lines elsewhere.
    pub fn new(enabled: bool, total: u64, what: &str, template: &str) -> Self {
        let how = if !enabled {
            How::Off
        } else if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            let bar = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(what.to_string());
            How::Bar(bar)
        } else {
            let now = Instant::now();
            How::Lines { started: now, last: Mutex::new(now) }
        };
        Progress { what: what.to_string(), total, done: AtomicU64::new(0), message: Mutex::new(String::new()), how }
    }

    /// Records `done` units finished in all.
    pub fn set(&self, done: u64) {
        self.done.store(done, Ordering::Relaxed);
        match &self.how {
            How::Off => {}
            How::Bar(bar) => bar.set_position(done),
            How::Lines { started, last } => {
                let mut last = last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if last.elapsed() >= LINE_EVERY {
                    *last = Instant::now();
                    let message = self.message.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    let line = line(&self.what, done, self.total, started.elapsed());
                    if message.is_empty() {
                        eprintln!("{line}");
                    } else {
                        eprintln!("{line} ({message})");
                    }
                }
            }
        }
    }

    /// Sets a short status shown beside the count (the running loss, say).
    pub fn set_message(&self, message: String) {
        if let How::Bar(bar) = &self.how {
            bar.set_message(message.clone());
        }
        *self.message.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = message;
    }

    /// Records `n` more units finished.
    pub fn inc(&self, n: u64) {
        self.set(self.done.load(Ordering::Relaxed) + n);
    }

    /// Ends the stage: clears the bar (the summary reports the stage's time).
    pub fn finish(&self) {
        if let How::Bar(bar) = &self.how {
            bar.finish_and_clear();
        }
    }
}

/// `embed items: 1200/5183 (23%), 13.1/s, 5m 04s left`.
fn line(what: &str, done: u64, total: u64, elapsed: Duration) -> String {
    let rate = done as f64 / elapsed.as_secs_f64().max(1e-9);
    let percent = if total > 0 { 100 * done / total } else { 100 };
    let left = if rate > 0.0 && total >= done {
        let secs = ((total - done) as f64 / rate).round() as u64;
        if secs >= 60 {
            format!("{}m {:02}s left", secs / 60, secs % 60)
        } else {
            format!("{secs}s left")
        }
    } else {
        "time left unknown".to_string()
    };
    format!("{what}: {done}/{total} ({percent}%), {rate:.1}/s, {left}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_progress_line_gives_done_total_rate_and_time_left() {
        assert_eq!(
            line("embed items", 1200, 5183, Duration::from_secs(100)),
            "embed items: 1200/5183 (23%), 12.0/s, 5m 32s left"
        );
        assert_eq!(line("epoch 1", 5, 10, Duration::from_secs(5)), "epoch 1: 5/10 (50%), 1.0/s, 5s left");
        assert_eq!(line("als", 0, 15, Duration::from_secs(3)), "als: 0/15 (0%), 0.0/s, time left unknown");
    }

    #[test]
    fn disabled_progress_counts_silently() {
        let progress = Progress::new(false, 10, "x", "{bar}");
        progress.inc(3);
        progress.inc(4);
        assert_eq!(progress.done.load(Ordering::Relaxed), 7);
        progress.finish();
    }
}
