//! Giving the terminal back on every way out, not only a normal return or a
//! panic (ratatui's hook covers those): an abort (a failed allocation ends
//! the process with SIGABRT, no unwinding, no hook), a crash (SIGSEGV,
//! SIGBUS, SIGILL, SIGFPE), or a signal from outside (SIGTERM, SIGHUP when
//! the terminal closes, SIGINT and SIGQUIT sent with `kill`). The handler
//! does only async-signal-safe work: it writes the escape sequences that
//! leave the alternate screen and show the cursor, puts back the terminal
//! modes saved before raw mode, reinstalls the previous action and raises
//! the signal again, so the process still ends as it would have (same
//! status, same core dump). SIGKILL cannot be caught; `reset` repairs that.

use std::sync::OnceLock;

/// Signals after which the terminal is given back.
const SIGNALS: [libc::c_int; 9] = [
    libc::SIGABRT,
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
];

/// Leave the alternate screen, show the cursor, stop mouse reporting and
/// bracketed paste, reset colours.
const RESTORE: &[u8] =
    b"\x1b[?1049l\x1b[?25h\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?2004l\x1b[0m\r\n";

/// The terminal's modes before raw mode, and the descriptor they belong to.
struct Saved {
    fd: libc::c_int,
    modes: libc::termios,
}

static SAVED: OnceLock<Option<Saved>> = OnceLock::new();

/// The actions the handlers replaced, restored on drop and before a
/// signal is raised again.
static PREVIOUS: OnceLock<Vec<(libc::c_int, libc::sigaction)>> = OnceLock::new();

/// Installed handlers; dropping it puts the previous actions back.
pub struct RestoreOnSignal {
    installed: bool,
}

impl RestoreOnSignal {
    /// Saves the terminal's current modes (call before raw mode) and
    /// installs the handlers. Once per process: a second call is a no-op.
    pub fn install() -> RestoreOnSignal {
        SAVED.get_or_init(save_modes);
        let mut installed = false;
        PREVIOUS.get_or_init(|| {
            installed = true;
            SIGNALS
                .iter()
                .filter_map(|&sig| {
                    // SAFETY: a zeroed sigaction is a valid value (empty
                    // mask, no flags); the handler is an `extern "C" fn(c_int)`
                    // as `sa_sigaction` expects without SA_SIGINFO, and
                    // `old` is written by the call.
                    unsafe {
                        let mut action: libc::sigaction = std::mem::zeroed();
                        action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
                        libc::sigemptyset(&mut action.sa_mask);
                        let mut old: libc::sigaction = std::mem::zeroed();
                        (libc::sigaction(sig, &action, &mut old) == 0).then_some((sig, old))
                    }
                })
                .collect()
        });
        RestoreOnSignal { installed }
    }
}

impl Drop for RestoreOnSignal {
    fn drop(&mut self) {
        if !self.installed {
            return;
        }
        for (sig, old) in PREVIOUS.get().into_iter().flatten() {
            // SAFETY: `old` is the action `sigaction` returned for `sig`.
            unsafe {
                libc::sigaction(*sig, old, std::ptr::null_mut());
            }
        }
    }
}

fn save_modes() -> Option<Saved> {
    for fd in [libc::STDIN_FILENO, libc::STDOUT_FILENO] {
        // SAFETY: isatty/tcgetattr only read the descriptor's state; the
        // termios is plain data fully written on success.
        unsafe {
            if libc::isatty(fd) == 1 {
                let mut modes: libc::termios = std::mem::zeroed();
                if libc::tcgetattr(fd, &mut modes) == 0 {
                    return Some(Saved { fd, modes });
                }
            }
        }
    }
    None
}

/// The signal handler: async-signal-safe calls only (write, tcsetattr,
/// sigaction, raise), no allocation, no locks (`OnceLock::get` is a load).
extern "C" fn on_signal(sig: libc::c_int) {
    // SAFETY: every call below is async-signal-safe (POSIX.1-2008 2.4.3);
    // the pointers are to statics that live for the whole process.
    unsafe {
        libc::write(libc::STDOUT_FILENO, RESTORE.as_ptr().cast(), RESTORE.len());
        if let Some(Some(saved)) = SAVED.get() {
            libc::tcsetattr(saved.fd, libc::TCSANOW, &saved.modes);
        }
        let mut restored = false;
        if let Some(prev) = PREVIOUS.get() {
            for (s, old) in prev {
                if *s == sig {
                    libc::sigaction(sig, old, std::ptr::null_mut());
                    restored = true;
                }
            }
        }
        if !restored {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &dfl, std::ptr::null_mut());
        }
        // Pending until this handler returns, then delivered with the
        // previous action: the process ends as it would have.
        libc::raise(sig);
    }
}
