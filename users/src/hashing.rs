//! Argon2id password hashing, off the async workers and bounded in concurrency.
//!
//! Parameters: m = 7168 KiB, t = 5, p = 2. m and t are the OWASP-listed Argon2id setting with
//! the least memory; p = 2 splits that memory into two lanes that are computed at the same
//! time, one per core. The work per hash is the same as with one lane (m × t block
//! computations), but one hash finishes in about half the time, so the service needs one
//! buffer where one lane per core needed one per core (docs/BENCHMARKS.md, "The figures
//! behind the code's choices").
//!
//! Hashes run one at a time per buffer on dedicated threads (`argon2-N`, one per two cores),
//! each of which hands the lanes to a small rayon pool (`argon2-lane-N`, one thread per
//! core); the async workers keep serving other routes meanwhile.
//!
//! Each thread allocates its buffer once and reuses it: allocating one per hash, as
//! `Argon2::hash_password` does, leaves glibc's malloc holding far more than one buffer per
//! thread (docs/BENCHMARKS.md). The PHC strings are the standard ones
//! (`$argon2id$v=19$m=…`); a unit test checks them against the argon2 crate's own hasher and
//! verifier. Verification reads the parameters from the stored PHC string, so hashes made
//! with other parameters (p = 1, say) still verify.
//!
//! The queue is bounded: at most `users.max_pending_hashes` callers wait for a hash, and one
//! more is refused at once ([`HashError::Busy`], a 503) instead of waiting behind the others.
//! A job whose caller has gone away (its request was dropped, so nobody awaits the result)
//! frees its place at once and is skipped without hashing, so clients that send and hang up
//! cost no Argon2id time and do not hold the queue.

use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use domain::{Password, constant_time_eq};
use prometheus_client::metrics::counter::Counter;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, oneshot};

/// Memory cost in KiB.
const M_COST_KIB: u32 = 7168;
/// Passes over the memory.
const T_COST: u32 = 5;
/// Lanes, computed in parallel.
const P_COST: u32 = 2;

/// Bytes of hash output and of salt.
const OUTPUT_LEN: usize = 32;
const SALT_LEN: usize = 16;

fn argon2(m: u32, t: u32, p: u32, output_len: usize) -> anyhow::Result<Argon2<'static>> {
    let params = Params::new(m, t, p, Some(output_len))
        .map_err(|e| anyhow::anyhow!("invalid Argon2 parameters: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// A job for the hashing threads; it borrows the thread's Argon2 buffer.
type Job = Box<dyn FnOnce(&mut [Block]) + Send>;

/// Why a hash was not computed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HashError {
    /// `max_pending_hashes` jobs already wait or run.
    #[error("too many password hashes are waiting")]
    Busy,
    /// The hashing threads stopped, or a stored hash is malformed.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// What the hasher counts, for `/metrics`.
#[derive(Clone, Default)]
pub(crate) struct HashCounters {
    /// Jobs refused because the queue was full.
    pub refused: Counter,
    /// Jobs skipped because their caller had gone away.
    pub abandoned: Counter,
    /// Hashes and verifications computed.
    pub computed: Counter,
}

/// Hashes and verifies passwords.
#[derive(Clone)]
pub(crate) struct PasswordHasher {
    jobs: Sender<Job>,
    /// One permit per caller that may wait for a hash.
    slots: Arc<Semaphore>,
    counters: HashCounters,
    /// A hash of a random password with the current parameters. Logins that match no user
    /// are verified against it, so an unknown login costs the same time as a wrong password.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    /// Starts the hashing threads for a machine with `cores` cores, holding at most
    /// `max_pending` jobs (they end when the last clone of the hasher goes).
    pub async fn new(
        cores: usize,
        max_pending: usize,
        counters: HashCounters,
    ) -> anyhow::Result<Self> {
        let cores = cores.max(1);
        let lanes = Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(cores)
                .thread_name(|n| format!("argon2-lane-{n}"))
                .build()?,
        );
        let (jobs, queue) = channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        // One hash keeps P_COST cores busy; more hashing threads would only hold more buffers.
        for n in 0..cores.div_ceil(P_COST as usize) {
            let queue = queue.clone();
            let lanes = lanes.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || run_jobs(&queue, &lanes))?;
        }
        let mut random = [0u8; 24];
        rand::fill(&mut random);
        let dummy: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let mut hasher = Self {
            jobs,
            slots: Arc::new(Semaphore::new(max_pending.clamp(1, Semaphore::MAX_PERMITS))),
            counters,
            dummy_hash: Arc::from(""),
        };
        hasher.dummy_hash = hasher
            .run(move |memory| hash_now(dummy.as_bytes(), memory))
            .await??
            .into();
        Ok(hasher)
    }

    /// Runs `work` on a hashing thread and waits for its result; [`HashError::Busy`] at once
    /// when the queue is full. Dropping the returned future before the job starts skips it.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut [Block]) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        // The caller holds the slot while it waits: a caller that goes away frees it at once,
        // and its job, left in the queue, is skipped when a thread reaches it.
        let Ok(_slot) = self.slots.try_acquire() else {
            self.counters.refused.inc();
            return Err(HashError::Busy);
        };
        let abandoned = self.counters.abandoned.clone();
        let computed = self.counters.computed.clone();
        let (done, result) = oneshot::channel();
        self.jobs
            .send(Box::new(move |memory: &mut [Block]| {
                if done.is_closed() {
                    abandoned.inc();
                    return;
                }
                computed.inc();
                let _ = done.send(work(memory));
            }))
            .map_err(|_| anyhow::anyhow!("the hashing threads have stopped"))?;
        Ok(result
            .await
            .map_err(|_| anyhow::anyhow!("a hashing thread stopped during a hash"))?)
    }

    /// The PHC string of `password`.
    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        Ok(self
            .run(move |memory| hash_now(password.expose().as_bytes(), memory))
            .await??)
    }

    /// True when `password` matches `stored`. With no stored hash (unknown login), the
    /// password is checked against the dummy hash and the answer is false.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let matches = self
            .run(move |memory| verify_now(password.as_bytes(), &phc, memory))
            .await??;
        Ok(known && matches)
    }
}

/// A hashing thread's loop: one job at a time until the hasher is dropped, its lanes on
/// `lanes`.
fn run_jobs(queue: &Mutex<Receiver<Job>>, lanes: &rayon::ThreadPool) {
    // Allocated once, at the thread's first job, and kept: see the module's comment.
    let mut memory: Vec<Block> = Vec::new();
    loop {
        // The lock is held only while taking a job, not while running it.
        let job = match queue.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => {
                if memory.is_empty() {
                    memory = vec![Block::new(); M_COST_KIB as usize];
                }
                // The argon2 crate computes the lanes on the rayon pool it runs in.
                lanes.install(|| job(&mut memory))
            }
            Err(_) => return,
        }
    }
}

/// `$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>` for `password`, with a fresh salt.
fn hash_now(password: &[u8], memory: &mut [Block]) -> anyhow::Result<String> {
    let mut salt = [0u8; SALT_LEN];
    rand::fill(&mut salt);
    let mut out = [0u8; OUTPUT_LEN];
    argon2(M_COST_KIB, T_COST, P_COST, OUTPUT_LEN)?
        .hash_password_into_with_memory(password, &salt, &mut out, memory)
        .map_err(|e| anyhow::anyhow!("hashing a password failed: {e}"))?;
    Ok(format!(
        "$argon2id$v=19$m={M_COST_KIB},t={T_COST},p={P_COST}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    ))
}

/// True when `password` hashes to `phc`, with the parameters written in `phc`.
fn verify_now(password: &[u8], phc: &str, memory: &mut [Block]) -> anyhow::Result<bool> {
    let malformed = || anyhow::anyhow!("a stored password hash is malformed");
    let parts: Vec<&str> = phc.split('$').collect();
    let ["", "argon2id", "v=19", params, salt, hash] = parts.as_slice() else {
        return Err(malformed());
    };
    let (mut m, mut t, mut p) = (None, None, None);
    for pair in params.split(',') {
        let (key, value) = pair.split_once('=').ok_or_else(malformed)?;
        let value: u32 = value.parse().map_err(|_| malformed())?;
        match key {
            "m" => m = Some(value),
            "t" => t = Some(value),
            "p" => p = Some(value),
            _ => return Err(malformed()),
        }
    }
    let (Some(m), Some(t), Some(p)) = (m, t, p) else {
        return Err(malformed());
    };
    let salt = STANDARD_NO_PAD.decode(salt).map_err(|_| malformed())?;
    let expected = STANDARD_NO_PAD.decode(hash).map_err(|_| malformed())?;
    let argon2 = argon2(m, t, p, expected.len())?;
    let mut out = vec![0u8; expected.len()];
    let blocks = argon2.params().block_count();
    let hashed = if blocks <= memory.len() {
        argon2.hash_password_into_with_memory(password, &salt, &mut out, &mut memory[..blocks])
    } else {
        // A hash made with more memory than today's parameters: a one-off buffer.
        argon2.hash_password_into(password, &salt, &mut out)
    };
    hashed.map_err(|e| anyhow::anyhow!("verifying a password failed: {e}"))?;
    Ok(constant_time_eq(&out, &expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phc_strings_are_the_argon2_crates_own() {
        use argon2::password_hash::phc::PasswordHash;
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let mut memory = vec![Block::new(); M_COST_KIB as usize];
        let ours = hash_now(b"correct horse", &mut memory).unwrap();
        let standard = argon2(M_COST_KIB, T_COST, P_COST, OUTPUT_LEN).unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(standard.verify_password(b"correct horse", &parsed).is_ok());
        let theirs = Argon2::default()
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        assert!(verify_now(b"correct horse", &theirs, &mut memory).unwrap());
        assert!(!verify_now(b"wrong horse", &theirs, &mut memory).unwrap());
        assert!(verify_now(b"x", "$argon2id$v=19$nonsense", &mut memory).is_err());
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hasher = PasswordHasher::new(1, 4, HashCounters::default())
            .await
            .unwrap();
        let phc = hasher
            .hash(Password::parse("correct horse").unwrap())
            .await
            .unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=7168,t=5,p=2$"), "{phc}");
        assert!(
            hasher
                .verify("correct horse".into(), Some(phc.clone()))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify("wrong horse".into(), Some(phc))
                .await
                .unwrap()
        );
        assert!(!hasher.verify("correct horse".into(), None).await.unwrap());
    }
}

#[cfg(test)]
mod queue_tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    /// Occupies a slot and the hashing thread until the returned sender is used or dropped.
    async fn occupy(
        hasher: &PasswordHasher,
    ) -> (std::sync::mpsc::Sender<()>, tokio::task::JoinHandle<()>) {
        let (started, has_started) = oneshot::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let hasher = hasher.clone();
        let running = tokio::spawn(async move {
            hasher
                .run(move |_| {
                    let _ = started.send(());
                    let _ = released.recv();
                })
                .await
                .unwrap();
        });
        has_started.await.unwrap();
        (release, running)
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let counters = HashCounters::default();
        let hasher = PasswordHasher::new(1, 1, counters.clone()).await.unwrap();
        let (release, running) = occupy(&hasher).await;

        let refused = hasher.hash(Password::parse("correct horse").unwrap()).await;

        assert!(matches!(refused, Err(HashError::Busy)));
        assert_eq!(counters.refused.get(), 1);
        release.send(()).unwrap();
        running.await.unwrap();
        hasher.run(|_| ()).await.unwrap();
    }

    #[tokio::test]
    async fn a_job_whose_caller_has_gone_is_skipped() {
        let counters = HashCounters::default();
        let hasher = PasswordHasher::new(1, 2, counters.clone()).await.unwrap();
        let (release, running) = occupy(&hasher).await;
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();

        let gave_up = tokio::time::timeout(
            Duration::from_millis(50),
            hasher.run(move |_| flag.store(true, Ordering::SeqCst)),
        )
        .await;
        // Its place is free again while its job still sits in the queue.
        let free_while_queued = hasher.slots.available_permits();
        release.send(()).unwrap();
        running.await.unwrap();
        // Jobs run in order: once this one is done, the abandoned one was taken off the queue.
        hasher.run(|_| ()).await.unwrap();

        assert!(gave_up.is_err());
        assert_eq!(free_while_queued, 1);
        assert!(!ran.load(Ordering::SeqCst));
        assert_eq!(counters.abandoned.get(), 1);
    }
}
