//! Daemon mode (`-D`), the pid file and the log file.
//!
//! The tracker runs in the foreground by default (what systemd's `Type=simple` and container
//! runtimes want; opentracker never daemonises). `-D` detaches after binding, so bind errors
//! still reach the terminal: [`detach`] forks, the child starts a new session (`setsid`) and goes
//! on; the parent waits until the child reports through a pipe that it is ready (pid file
//! written, privileges dropped) and exits 0, or prints the child's error and exits 1. So when
//! `opentracker-rs -D` returns 0, the pid file holds the pid of a tracker that is about to
//! serve, and an error such as an unknown user still shows on the terminal.
//!
//! Logs go to stderr. With `tracker.log_file` / `--log-file`, stderr is appended to that file
//! from the moment the tracker is ready (the file is opened before the chroot); with `-D` and no
//! log file, stdout and stderr go to `/dev/null`. On SIGHUP the file is reopened by its path
//! ([`reopen_log`]), so logrotate can move it away and have a new one created (no
//! `copytruncate` needed); not inside a chroot, where the path names another file.
//!
//! The pid file is locked (`flock`) for the life of the process: a second instance started with
//! the same pid file refuses to start, and leaves the file alone.
//!
//! Must run before any thread starts (a fork copies only the calling thread): `main` calls
//! [`detach`] after binding and before the event loop.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::unistd::{self, ForkResult};

/// The child's side of a detached start: reports to the waiting parent exactly once.
pub struct Detached {
    report: OwnedFd,
}

/// Forks into the background. In the parent this never returns: it waits for the child's report
/// and exits 0 (ready) or 1 (the child's error, printed as `opentracker-rs: ERROR`). In the child
/// it returns after `setsid` (a new session without a controlling terminal); the child must end
/// with [`Detached::ready`] or [`Detached::fail`]. The working directory is not changed here:
/// `main` changes it to the root directory, or to `/`.
///
/// Errors (in the calling process, nothing forked): the pipe or the fork failed.
pub fn detach() -> Result<Detached, String> {
    let (read_end, write_end) =
        unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("cannot create a pipe: {e}"))?;
    // SAFETY: called from `main` before the event loop starts any thread, so the child is a
    // complete copy of a single-threaded process and may do anything afterwards.
    match unsafe { unistd::fork() } {
        Err(e) => Err(format!("cannot fork: {e}")),
        Ok(ForkResult::Parent { child }) => {
            drop(write_end);
            let mut report = Vec::new();
            let read = File::from(read_end).take(4096).read_to_end(&mut report);
            let text = String::from_utf8_lossy(&report);
            match (read, text.strip_prefix("ok")) {
                (Ok(_), Some(_)) => std::process::exit(0),
                (Ok(_), None) if !text.is_empty() => {
                    eprintln!("opentracker-rs: {}", text.trim_end());
                }
                _ => {
                    eprintln!("opentracker-rs: the daemon (pid {child}) exited before it was ready")
                }
            }
            std::process::exit(1)
        }
        Ok(ForkResult::Child) => {
            drop(read_end);
            unistd::setsid().map_err(|e| format!("setsid failed: {e}"))?;
            Ok(Detached { report: write_end })
        }
    }
}

impl Detached {
    /// Tells the parent that the tracker is ready (the parent exits 0). Call after the pid
    /// file, the privilege drop and [`redirect_output`].
    pub fn ready(self) {
        let _ = File::from(self.report).write_all(b"ok\n");
    }

    /// Hands `message` to the parent, which prints it on its stderr and exits 1; the caller
    /// exits 1 too.
    pub fn fail(self, message: &str) {
        let _ = File::from(self.report).write_all(message.as_bytes());
    }
}

/// Opens `/dev/null` for reading and writing (before the chroot, which may lack it).
pub fn open_null() -> Result<File, String> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("cannot open /dev/null: {e}"))
}

/// Opens the log file for appending (created with mode 0640 if missing), before the chroot.
///
/// Errors: `cannot open log file "PATH": OS ERROR`.
pub fn open_log(path: &Path) -> Result<File, String> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
        .map_err(|e| format!("cannot open log file \"{}\": {e}", path.display()))
}

/// The log file's absolute path, once [`reopen_log_on_sighup`] was called.
static LOG_PATH: OnceLock<PathBuf> = OnceLock::new();

/// Makes [`reopen_log`] reopen `path` (absolute, or made absolute against the working directory
/// now). Call before any change of directory; not when chrooted (the path names another file
/// there).
pub fn reopen_log_on_sighup(path: &Path) {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let _ = LOG_PATH.set(path);
}

/// SIGHUP: reopens the log file by its path and points stdout and stderr at it (created with mode
/// 0640 if logrotate moved the old one away without creating a new one). Does nothing without
/// [`reopen_log_on_sighup`]. A file that cannot be opened (e.g. a directory the dropped user may
/// not write) is logged as a warning, and the log goes on to the previous file.
pub fn reopen_log() {
    let Some(path) = LOG_PATH.get() else {
        return;
    };
    match open_log(path).and_then(|f| redirect_output(&f, None)) {
        Ok(()) => log::info!("SIGHUP: log file {} reopened", path.display()),
        Err(e) => log::warn!("SIGHUP: {e}; logging on to the previous file"),
    }
}

/// Points stdout and stderr at `out`, and stdin at `stdin` if given (`dup2`).
///
/// Errors: `cannot redirect standard streams: OS ERROR`.
pub fn redirect_output(out: &File, stdin: Option<&File>) -> Result<(), String> {
    let fail = |e: nix::Error| format!("cannot redirect standard streams: {e}");
    if let Some(input) = stdin {
        unistd::dup2_stdin(input).map_err(fail)?;
    }
    unistd::dup2_stdout(out).map_err(fail)?;
    unistd::dup2_stderr(out).map_err(fail)?;
    Ok(())
}

/// A pid file this process wrote: `PID\n` in decimal, locked (`flock`, exclusive) until the
/// process exits, so a second instance with the same pid file refuses to start.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    pid: u32,
    /// The open, locked file; the lock goes with the process.
    _lock: Flock<File>,
}

impl PidFile {
    /// Locks `path` (created with mode 0644 if missing; a symlink at `path` is refused) and
    /// writes this process's id into it, replacing what it held. Written after the fork of
    /// `-D`, before the privilege drop, so it may live in a root-only directory such as `/run`.
    /// The lock is taken before anything is written: a running instance's pid stays.
    ///
    /// Errors: `cannot write pid file "PATH": OS ERROR`; `pid file "PATH" is locked by another
    /// running instance (pid N)` when another process holds the lock.
    pub fn create(path: &Path) -> Result<PidFile, String> {
        let pid = std::process::id();
        let fail = |e: io::Error| format!("cannot write pid file \"{}\": {e}", path.display());
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(fail)?;
        let mut f = match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => locked,
            Err((mut f, nix::errno::Errno::EWOULDBLOCK)) => {
                let mut text = String::new();
                let _ = f.read_to_string(&mut text);
                return Err(format!(
                    "pid file \"{}\" is locked by another running instance (pid {})",
                    path.display(),
                    text.trim()
                ));
            }
            Err((_, e)) => return Err(fail(e.into())),
        };
        f.set_len(0).map_err(fail)?;
        f.write_all(format!("{pid}\n").as_bytes()).map_err(fail)?;
        // Kept absolute: `-D` changes the working directory afterwards.
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        Ok(PidFile {
            path,
            pid,
            _lock: f,
        })
    }

    /// The path, made absolute against the working directory at creation.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file if it still holds this process's id (another instance may have taken
    /// it over). `Ok(false)`: left in place because it holds another id or is gone.
    ///
    /// Errors: the file could not be read or removed (after a privilege drop, the directory is
    /// usually not writable any more).
    pub fn remove(&self) -> io::Result<bool> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        if text.trim() != self.pid.to_string() {
            return Ok(false);
        }
        std::fs::remove_file(&self.path)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("otrs-daemon-{}-{name}", std::process::id()))
    }

    #[test]
    fn pid_file_round_trip() {
        let path = temp("pid");
        let pid = PidFile::create(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        assert_eq!(pid.path(), path);
        assert!(pid.remove().unwrap());
        assert!(!path.exists());
        assert!(!pid.remove().unwrap()); // already gone
    }

    /// The lock: a second pid file on the same path is refused while the first lives, and
    /// the first one's pid stays in the file.
    #[test]
    fn pid_file_is_locked() {
        let path = temp("locked");
        let first = PidFile::create(&path).unwrap();
        std::fs::write(&path, "4242\n").unwrap();
        let e = PidFile::create(&path).unwrap_err();
        assert_eq!(
            e,
            format!(
                "pid file \"{}\" is locked by another running instance (pid 4242)",
                path.display()
            )
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "4242\n");
        drop(first);
        let again = PidFile::create(&path).unwrap();
        assert!(again.remove().unwrap());
    }

    #[test]
    fn pid_file_of_another_process_is_left() {
        let path = temp("other");
        let pid = PidFile::create(&path).unwrap();
        std::fs::write(&path, "1\n").unwrap();
        assert!(!pid.remove().unwrap());
        assert!(path.exists());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn pid_file_refuses_symlinks_and_names_errors() {
        let link = temp("link");
        let target = temp("target");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = PidFile::create(&link).unwrap_err();
        std::fs::remove_file(&link).unwrap();
        assert!(e.starts_with("cannot write pid file"), "{e}");
        assert!(!target.exists());
        let e = PidFile::create(Path::new("/nonexistent/otrs/x.pid")).unwrap_err();
        assert_eq!(
            e,
            "cannot write pid file \"/nonexistent/otrs/x.pid\": No such file or directory (os error 2)"
        );
    }

    #[test]
    fn log_file_appends() {
        let path = temp("log");
        let _ = std::fs::remove_file(&path);
        open_log(&path).unwrap().write_all(b"a\n").unwrap();
        open_log(&path).unwrap().write_all(b"b\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a\nb\n");
        std::fs::remove_file(&path).unwrap();
        assert!(open_log(Path::new("/nonexistent/otrs/log")).is_err());
        assert!(open_null().is_ok());
    }
}
