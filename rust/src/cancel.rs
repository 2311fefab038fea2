//! Stopping a long call early, e.g. on Ctrl-C.
//!
//! The caller passes a hook (`Cancel`) that says whether to stop. Python runs signal
//! handlers on its main thread only, so the hook is only ever asked on the thread that made
//! the call: `encode_file` asks it between the chunks it writes there, and work that runs
//! wholly on the pool's threads (training) runs under `pool::run_cancellable`, whose calling
//! thread asks the hook while it waits and raises a `Stop` flag that the workers check
//! between their steps. Either way the call ends with `BpeError::Interrupted`.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{BpeError, Result};

/// Asked whether to stop (true: stop with `BpeError::Interrupted`); cheap enough to be
/// asked every few tens of milliseconds. The Python bindings check for signals here, so
/// Ctrl-C ends a long encode within a chunk and training within a chunk or a merge.
pub type Cancel<'a> = &'a (dyn Fn() -> bool + Sync);

/// Raised once the call is to stop; checked by the work between its steps.
#[derive(Debug, Default)]
pub struct Stop(AtomicBool);

impl Stop {
    /// A flag not raised (yet).
    pub fn new() -> Self {
        Stop::default()
    }

    /// `Interrupted` once the flag is raised, so that `stop.check()?` ends the work.
    #[inline]
    pub fn check(&self) -> Result<()> {
        if self.is_raised() {
            Err(BpeError::Interrupted)
        } else {
            Ok(())
        }
    }

    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    pub fn raise(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raised_flag_interrupts() {
        let stop = Stop::new();
        assert!(stop.check().is_ok());
        stop.raise();
        assert!(matches!(stop.check(), Err(BpeError::Interrupted)));
    }
}
