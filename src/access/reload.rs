//! Reloading an access list off the event loop.
//!
//! A [`Reloader`] owns one helper thread that sleeps until [`Reloader::request`] (the loop calls it
//! on SIGHUP), reads and parses the file, hands the result back over a channel and calls the
//! `wake` function the loop gave it (a `mio::Waker` in the loop, so this module stays free of
//! `mio`). The loop then takes the result with [`Reloader::try_take`] and swaps the new list in;
//! parsing a million hashes never stalls announces. Requests that arrive while a load runs are
//! folded into one more load.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread::{self, JoinHandle};

use super::{Loaded, load};

/// The helper thread and its two channels; `T` is what one load gives (here the access list,
/// or why its file could not be read; the TLS certificates use the same thread shape).
pub struct Reloader<T = Result<Loaded, String>> {
    requests: Option<Sender<()>>,
    results: Receiver<T>,
    thread: Option<JoinHandle<()>>,
}

impl Reloader {
    /// Starts the helper thread (named `access-reload`) for the list file at `path`. `wake` is
    /// called after each result is sent.
    ///
    /// Errors: the thread cannot be spawned.
    pub fn spawn(path: PathBuf, wake: impl Fn() + Send + 'static) -> std::io::Result<Self> {
        Reloader::spawn_with("access-reload", move || load(&path), wake)
    }
}

impl<T: Send + 'static> Reloader<T> {
    /// Starts a helper thread named `name` that runs `work` once per request (requests that
    /// arrive while it runs are folded into one more run), sends the result back and calls
    /// `wake`.
    ///
    /// Errors: the thread cannot be spawned.
    pub fn spawn_with(
        name: &str,
        mut work: impl FnMut() -> T + Send + 'static,
        wake: impl Fn() + Send + 'static,
    ) -> std::io::Result<Self> {
        let (req_tx, req_rx) = mpsc::channel::<()>();
        let (res_tx, res_rx) = mpsc::channel();
        let thread = thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                while req_rx.recv().is_ok() {
                    // Fold requests queued meanwhile into this run.
                    loop {
                        match req_rx.try_recv() {
                            Ok(()) => continue,
                            Err(TryRecvError::Empty) => break,
                            Err(TryRecvError::Disconnected) => return,
                        }
                    }
                    if res_tx.send(work()).is_err() {
                        return;
                    }
                    wake();
                }
            })?;
        Ok(Reloader {
            requests: Some(req_tx),
            results: res_rx,
            thread: Some(thread),
        })
    }

    /// Asks for a reload (never blocks). A dead helper thread is ignored: the old list stays.
    pub fn request(&self) {
        if let Some(tx) = &self.requests {
            let _ = tx.send(());
        }
    }

    /// The newest finished run, if any (older unclaimed results are dropped). For the access
    /// list: `Ok` with the new list and its warnings, or `Err` with why the file could not be
    /// read.
    pub fn try_take(&self) -> Option<T> {
        let mut last = None;
        while let Ok(r) = self.results.try_recv() {
            last = Some(r);
        }
        last
    }
}

impl<T> Drop for Reloader<T> {
    fn drop(&mut self) {
        // Closing the request channel ends the thread after its current load.
        self.requests = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    #[test]
    fn reloads_on_request_and_wakes() {
        let dir = std::env::temp_dir().join(format!("otrs-reload-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("wl.txt");
        std::fs::write(&file, format!("{}\n", "ab".repeat(20))).unwrap();
        let wakes = Arc::new(AtomicUsize::new(0));
        let w = wakes.clone();
        let r = Reloader::spawn(file.clone(), move || {
            w.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        assert!(r.try_take().is_none());

        let wait = |r: &Reloader| {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(x) = r.try_take() {
                    return x;
                }
                assert!(Instant::now() < deadline, "no reload result");
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        r.request();
        let loaded = wait(&r).unwrap();
        assert!(loaded.list.contains(&[0xab; 20]));
        assert!(wakes.load(Ordering::SeqCst) >= 1);

        std::fs::remove_file(&file).unwrap();
        r.request();
        let e = wait(&r).unwrap_err();
        assert!(e.contains("wl.txt"), "{e}");
        drop(r);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
