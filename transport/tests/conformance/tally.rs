//! Counts the cases each backend ran, and prints one summary line per backend when its last
//! case ends (cases run in parallel threads of one process, so the count is shared).

use std::collections::HashMap;
use std::sync::Mutex;
use testkit::report as say;

/// How many cases `every_case!` declares per backend.
pub const CASES_PER_BACKEND: usize = 6;

#[derive(Default)]
struct Counts {
    passed: usize,
    failed: usize,
    skipped: usize,
}

static COUNTS: Mutex<Option<HashMap<&'static str, Counts>>> = Mutex::new(None);

/// One running case; records its outcome when dropped, even when the case panics.
pub struct Tally {
    backend: &'static str,
    ran: Option<bool>,
}

impl Tally {
    pub fn begin(backend: &'static str) -> Self {
        Self { backend, ran: None }
    }

    /// Marks the case as finished: `ran` is false when it skipped.
    pub fn finish(&mut self, ran: bool) {
        self.ran = Some(ran);
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        let mut all = COUNTS.lock().unwrap_or_else(|e| e.into_inner());
        let counts = all
            .get_or_insert_with(HashMap::new)
            .entry(self.backend)
            .or_default();
        match (std::thread::panicking(), self.ran) {
            (false, Some(true)) => counts.passed += 1,
            (false, Some(false)) => counts.skipped += 1,
            _ => counts.failed += 1,
        }
        if counts.passed + counts.failed + counts.skipped == CASES_PER_BACKEND {
            say(&format!(
                "conformance summary: backend {}: {} cases, {} passed, {} failed, {} skipped",
                self.backend, CASES_PER_BACKEND, counts.passed, counts.failed, counts.skipped
            ));
        }
    }
}
