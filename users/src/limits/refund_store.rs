//! A keyed state store for governor that can give a spent cell back.
//!
//! The login limits count failures, but must reserve a failure before the password is
//! checked, when it is not yet known whether the attempt fails: so that N guesses sent at
//! the same instant at a login with L failures left cost at most L checks. governor spends a
//! cell when it lets a check through and has no way to undo it, so this store, which shares
//! its map with the limiter that owns it, moves a key's theoretical arrival time back by one
//! emission interval: exactly the state it would have had without that cell, whatever other
//! cells were spent meanwhile.

use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::ShrinkableKeyedStateStore;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

/// Each key's theoretical arrival time, as governor's in-memory stores keep it. Clones share
/// the map.
#[derive(Debug)]
pub(crate) struct RefundStore<K> {
    states: Arc<Mutex<HashMap<K, Nanos>>>,
}

impl<K> Clone for RefundStore<K> {
    fn clone(&self) -> Self {
        Self {
            states: self.states.clone(),
        }
    }
}

impl<K> Default for RefundStore<K> {
    fn default() -> Self {
        Self {
            states: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

impl<K: Hash + Eq + Clone> RefundStore<K> {
    /// Gives back one cell of `key`, `interval` being the limit's emission interval. A key
    /// dropped meanwhile had its whole burst again and needs nothing.
    pub fn give_back(&self, key: &K, interval: Nanos) {
        // The map only holds numbers; a panic elsewhere cannot leave it inconsistent.
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tat) = states.get_mut(key) {
            *tat = tat.saturating_sub(interval);
        }
    }
}

impl<K: Hash + Eq + Clone> StateStore for RefundStore<K> {
    type Key = K;

    fn measure_and_replace<T, F, E>(&self, key: &K, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        let (outcome, next) = f(states.get(key).copied())?;
        states.insert(key.clone(), next);
        Ok(outcome)
    }
}

impl<K: Hash + Eq + Clone> ShrinkableKeyedStateStore<K> for RefundStore<K> {
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
