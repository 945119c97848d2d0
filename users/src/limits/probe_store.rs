//! A keyed state store for governor that can answer "would this key be let through?" without
//! spending a cell.
//!
//! The login limits count failures, but must refuse a blocked login before its password is
//! hashed, when it is not yet known whether the attempt fails. governor only offers checks
//! that spend a cell when they succeed, so the store takes the decision from the key: a
//! [`Probe::Peek`] runs the GCRA test on the stored state and keeps the state as it was, a
//! [`Probe::Take`] stores the new state as governor's own stores do.

use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::ShrinkableKeyedStateStore;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};

/// A key, and whether the check may spend a cell.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Probe<K> {
    /// Decide without spending.
    Peek(K),
    /// Decide and spend a cell when let through.
    Take(K),
}

/// Each key's theoretical arrival time, as governor's in-memory stores keep it.
#[derive(Debug)]
pub(crate) struct ProbeStore<K> {
    states: Mutex<HashMap<K, Nanos>>,
}

impl<K> Default for ProbeStore<K> {
    fn default() -> Self {
        Self {
            states: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone> StateStore for ProbeStore<K> {
    type Key = Probe<K>;

    fn measure_and_replace<T, F, E>(&self, key: &Probe<K>, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        // The map only holds numbers; a panic elsewhere cannot leave it inconsistent.
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        let (key, take) = match key {
            Probe::Peek(key) => (key, false),
            Probe::Take(key) => (key, true),
        };
        let (outcome, next) = f(states.get(key).copied())?;
        if take {
            states.insert(key.clone(), next);
        }
        Ok(outcome)
    }
}

impl<K: Hash + Eq + Clone> ShrinkableKeyedStateStore<Probe<K>> for ProbeStore<K> {
    fn retain_recent(&self, drop_below: Nanos) {
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        states.retain(|_, tat| *tat > drop_below);
    }

    fn shrink_to_fit(&self) {
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        states.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
