//! How much work one request may cost: checked between screened names and
//! between the items of a batch, so that a time limit really ends the work.
//!
//! A [`Budget`] is checked, never armed: no timer exists per request, a check
//! reads the clock (and a cancellation flag). `Unbounded` is the budget of
//! the pure `decide`: its checks compile to nothing and cannot fail.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// The work of a request ran past its budget; it was stopped, not finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the work of the request ran past its time limit")]
pub struct OverBudget;

/// Something checked between units of work.
pub trait Budget {
    /// Why work stops; [`Infallible`] when it never does.
    type Over;

    /// `Err` once no more work may be done.
    fn check(&self) -> Result<(), Self::Over>;
}

/// No limit: the budget of [`crate::engine::decide`], tests and the CLI.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Unbounded;

impl Budget for Unbounded {
    type Over = Infallible;

    #[inline(always)]
    fn check(&self) -> Result<(), Infallible> {
        Ok(())
    }
}

/// Work may go on until `deadline`, and until the flag is raised (the request
/// was answered or abandoned meanwhile).
#[derive(Debug, Clone)]
pub struct Timebox {
    deadline: Instant,
    cancelled: Option<Arc<AtomicBool>>,
}

impl Timebox {
    /// Work may go on until `deadline`.
    pub fn until(deadline: Instant) -> Self {
        Self {
            deadline,
            cancelled: None,
        }
    }

    /// Also stops once `flag` is set.
    pub fn cancelled_by(mut self, flag: Arc<AtomicBool>) -> Self {
        self.cancelled = Some(flag);
        self
    }

    /// The instant past which work stops.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl Budget for Timebox {
    type Over = OverBudget;

    #[inline]
    fn check(&self) -> Result<(), OverBudget> {
        let cancelled = self
            .cancelled
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed));
        if cancelled || Instant::now() >= self.deadline {
            Err(OverBudget)
        } else {
            Ok(())
        }
    }
}

/// Raises its flag when dropped: held by a handler, it tells the work it hands
/// to another thread that nobody waits for the answer any more.
#[derive(Debug, Default)]
pub struct CancelOnDrop(Arc<AtomicBool>);

impl CancelOnDrop {
    /// The flag raised on drop, for [`Timebox::cancelled_by`].
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_timebox_ends_at_its_deadline_or_when_cancelled() {
        let later = Instant::now() + Duration::from_secs(3600);
        let open = Timebox::until(later);
        assert_eq!(open.check(), Ok(()));
        assert_eq!(Timebox::until(Instant::now()).check(), Err(OverBudget));

        let guard = CancelOnDrop::default();
        let watched = Timebox::until(later).cancelled_by(guard.flag());
        assert_eq!(watched.check(), Ok(()));
        drop(guard);
        assert_eq!(watched.check(), Err(OverBudget));
    }
}
