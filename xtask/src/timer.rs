//! How long each step of a command took: printed as it ends, and as a table at the end.

use std::time::Instant;

/// Every step timed, printed as it ends and again as a table at the end.
#[derive(Default)]
pub struct Timer {
    steps: Vec<(String, f64)>,
    started: Option<Instant>,
}

impl Timer {
    pub fn step<T>(
        &mut self,
        name: &str,
        f: impl FnOnce() -> Result<T, String>,
    ) -> Result<T, String> {
        self.started.get_or_insert_with(Instant::now);
        let t = Instant::now();
        let r = f();
        let secs = t.elapsed().as_secs_f64();
        eprintln!(
            "xtask: [{secs:7.1} s] {name}{}",
            if r.is_err() { " (failed)" } else { "" }
        );
        self.steps.push((name.to_owned(), secs));
        r
    }

    pub fn record(&mut self, name: &str, secs: f64) {
        self.steps.push((name.to_owned(), secs));
    }

    pub fn print(&self) {
        if self.steps.is_empty() {
            return;
        }
        eprintln!("xtask: steps and times");
        for (name, secs) in &self.steps {
            eprintln!("xtask:   {secs:8.1} s  {name}");
        }
        if let Some(t) = self.started {
            eprintln!("xtask:   {:8.1} s  in all", t.elapsed().as_secs_f64());
        }
    }
}
