//! Ctrl-C during a long core call: the core asks a cancellation hook (`cancel::Cancel`) on
//! the calling thread, between chunks or while it waits on the pool (see `crate::cancel`),
//! and this one runs Python's signal handlers, at most every `INTERVAL`, keeping the
//! exception they raise (`KeyboardInterrupt`) to raise it in place of the core's
//! `Interrupted`. Python runs the handlers on its main thread only: a call made from another
//! Python thread is not interrupted (as `time.sleep` there is not).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use pyo3::prelude::*;

use crate::error::BpeError;

/// The longest a signal waits for its handler, besides the chunk being written.
const INTERVAL: Duration = Duration::from_millis(50);

pub(crate) struct Signals {
    last: Mutex<Instant>,
    raised: Mutex<Option<PyErr>>,
}

impl Signals {
    pub(crate) fn new() -> Self {
        Signals {
            last: Mutex::new(Instant::now()),
            raised: Mutex::new(None),
        }
    }

    /// Whether a signal handler raised (then the call should stop). Takes the GIL briefly.
    pub(crate) fn cancelled(&self) -> bool {
        let Ok(mut last) = self.last.lock() else {
            return false;
        };
        if last.elapsed() < INTERVAL {
            return false;
        }
        *last = Instant::now();
        match Python::attach(|py| py.check_signals()) {
            Ok(()) => false,
            Err(e) => {
                if let Ok(mut raised) = self.raised.lock() {
                    *raised = Some(e);
                }
                true
            }
        }
    }

    /// The Python error for `err`: what the signal handler raised for `Interrupted`.
    pub(crate) fn error(&self, err: BpeError) -> PyErr {
        match err {
            BpeError::Interrupted => match self.raised.lock().ok().and_then(|mut r| r.take()) {
                Some(e) => e,
                None => err.into(),
            },
            err => err.into(),
        }
    }
}
