//! `tracker.workers N|auto`: how many event loops serve the listeners (`net::event_loop`).

use std::ops::RangeInclusive;

use super::table::{Field, Syntax};

/// The number of workers asked for: a count, or `auto` (the CPUs the process may run on,
/// [`allowed_cpus`]). Default 1: one event loop, today's behaviour exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workers {
    /// As many workers as CPUs the process may run on (`sched_getaffinity`).
    Auto,
    /// This many workers (1..=1024).
    Count(u32),
}

impl Default for Workers {
    fn default() -> Self {
        Workers::Count(1)
    }
}

impl Workers {
    /// The number of worker threads to start: the count, or for `auto` the number of CPUs
    /// the process may use (at least 1).
    pub fn resolve(self) -> usize {
        match self {
            Workers::Count(n) => (n as usize).max(1),
            Workers::Auto => allowed_cpus().len().max(1),
        }
    }
}

impl Field for Workers {
    type Spec = RangeInclusive<u32>;
    fn set(&mut self, text: &str, spec: &Self::Spec) -> Result<(), String> {
        *self = if text.eq_ignore_ascii_case("auto") {
            Workers::Auto
        } else {
            let mut n = 0u32;
            n.set(text, spec)
                .map_err(|e| format!("{e} (or auto: one per CPU the process may use)"))?;
            Workers::Count(n)
        };
        Ok(())
    }
    fn texts(&self) -> Vec<String> {
        vec![match self {
            Workers::Auto => "auto".to_owned(),
            Workers::Count(n) => n.to_string(),
        }]
    }
    fn syntax(_: &Self::Spec) -> Syntax {
        Syntax::Other("N|auto")
    }
}

/// The CPUs this process may run on (`sched_getaffinity`, which honours `taskset`, cgroup
/// cpusets and systemd's `CPUAffinity=`), in increasing order; all online CPUs
/// (`available_parallelism`) if the call fails.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity writes at most
    // `size_of::<cpu_set_t>()` bytes into it, and CPU_ISSET reads within it for i < CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
                .filter(|&i| libc::CPU_ISSET(i, &set))
                .collect();
            if !cpus.is_empty() {
                return cpus;
            }
        }
    }
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    (0..n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_counts_and_auto() {
        let mut w = Workers::default();
        assert_eq!(w, Workers::Count(1));
        w.set("4", &(1..=1024)).unwrap();
        assert_eq!(w, Workers::Count(4));
        assert_eq!(w.texts(), ["4"]);
        w.set("auto", &(1..=1024)).unwrap();
        assert_eq!(w, Workers::Auto);
        assert_eq!(w.texts(), ["auto"]);
        assert!(w.resolve() >= 1);
        assert!(w.set("0", &(1..=1024)).is_err());
        assert!(w.set("many", &(1..=1024)).is_err());
        assert_eq!(Workers::Count(3).resolve(), 3);
    }

    #[test]
    fn allowed_cpus_are_sorted_and_not_empty() {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty());
        assert!(cpus.windows(2).all(|w| w[0] < w[1]));
    }
}
