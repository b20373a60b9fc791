//! The series a thread used last, for the families every request counts in.
//!
//! A `Family` finds a series by hashing its whole label set (SipHash over
//! every label's text) under a read lock: five of those per request were
//! about 4% of the gateway's instructions per request (docs/benchmarks.md).
//! Requests of one deployment use few label sets, so each thread keeps the
//! handles of the last few it used and compares label sets instead (a
//! shared label is found equal by its pointer). A handle shares its
//! counter with the family's series, so what is counted through it is
//! exported as before; families read through here must never remove a
//! series (a kept handle would then count into a series nobody exports).

use std::hash::Hash;

use prometheus_client::metrics::family::{Family, MetricConstructor};

/// How many series of one family a thread keeps.
const KEPT: usize = 8;

/// The last series of one family a thread used, with their handles, each
/// tagged with the [`super::Metrics`] it belongs to (a thread may serve
/// several, in tests).
pub struct Recent<L, M> {
    entries: Vec<(u64, L, M)>,
    /// The entry replaced next once all are taken.
    next: usize,
}

impl<L, M> Default for Recent<L, M> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            next: 0,
        }
    }
}

impl<L: Clone + Hash + Eq, M: Clone> Recent<L, M> {
    /// Runs `f` on the handle of `labels`' series in `family`, which
    /// belongs to the metrics numbered `owner`: a kept handle, or the
    /// family's (kept from then on, in place of the oldest).
    pub fn with<C: MetricConstructor<M>>(
        &mut self,
        owner: u64,
        family: &Family<L, M, C>,
        labels: L,
        f: impl FnOnce(&M),
    ) {
        if let Some((_, _, handle)) = self
            .entries
            .iter()
            .find(|(o, l, _)| *o == owner && *l == labels)
        {
            f(handle);
            return;
        }
        let handle = family.get_or_create(&labels).clone();
        f(&handle);
        if self.entries.len() < KEPT {
            self.entries.push((owner, labels, handle));
        } else {
            self.entries[self.next] = (owner, labels, handle);
            self.next = (self.next + 1) % KEPT;
        }
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;

    use super::*;

    #[derive(Clone, Debug, Hash, PartialEq, Eq)]
    struct Labels(u32);

    fn count(f: &Family<Labels, Counter>, l: u32) -> u64 {
        f.get(&Labels(l)).map_or(0, |c| c.get())
    }

    /// Every count reaches its series, for more label sets than are kept
    /// and back again after their handles were replaced.
    #[test]
    fn counts_reach_the_family_whatever_is_kept() {
        let family = Family::<Labels, Counter>::default();
        let mut recent = Recent::default();
        for round in 0..3 {
            for l in 0..(KEPT as u32 * 2) {
                recent.with(1, &family, Labels(l), |c| {
                    c.inc_by(u64::from(l) + 1);
                });
            }
            for l in 0..(KEPT as u32 * 2) {
                assert_eq!(count(&family, l), (round + 1) * (u64::from(l) + 1));
            }
        }
        assert_eq!(recent.entries.len(), KEPT);
    }

    /// Two metrics served from one thread keep their own series.
    #[test]
    fn owners_do_not_share_handles() {
        let (first, second) = (
            Family::<Labels, Counter>::default(),
            Family::<Labels, Counter>::default(),
        );
        let mut recent = Recent::default();
        recent.with(1, &first, Labels(7), |c| {
            c.inc();
        });
        recent.with(2, &second, Labels(7), |c| {
            c.inc_by(5);
        });
        recent.with(1, &first, Labels(7), |c| {
            c.inc();
        });
        assert_eq!((count(&first, 7), count(&second, 7)), (2, 5));
    }
}
