//! Where passwords are hashed and verified: a few threads of their own, fed through a
//! short queue. One argon2id verification takes about 19 MiB for its duration; on the
//! runtime's blocking pool, 120 logins at once took 120 threads and 2.3 GB, and each
//! thread's allocator arena kept its share afterwards. Here at most [`workers`] run at
//! once (the same threads every time, so the same arenas), [`QUEUE`] more wait, and
//! anything beyond is refused at once with [`StorageError::Busy`] instead of
//! queueing without bound.

use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Mutex;

use tokio::sync::oneshot;

use super::{Result, StorageError};

/// Verifications waiting for a worker at most; a 33rd waits for none and is refused.
pub const QUEUE: usize = 32;

type Job = Box<dyn FnOnce() + Send>;

/// The hashing threads. Dropping the last handle ends them once their queue is done.
pub struct HashPool {
    jobs: SyncSender<Job>,
}

/// Threads that hash: as many as there are cores, no more than four (a login waits
/// for at most one other per core in the common case, as before).
pub fn workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4))
}

impl HashPool {
    pub fn new(threads: usize, queue: usize) -> std::io::Result<HashPool> {
        let (tx, rx) = mpsc::sync_channel::<Job>(queue);
        let rx = std::sync::Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("hash-{i}"))
                .spawn(move || loop {
                    // The lock is only held while waiting for the next job.
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                })?;
        }
        Ok(HashPool { jobs: tx })
    }

    /// Runs `f` on a hashing thread and waits for its answer; [`StorageError::Busy`]
    /// at once when the queue is full.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let (done, answer) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(f());
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(StorageError::Busy),
            Err(TrySendError::Disconnected(_)) => {
                return Err(StorageError::Hash(
                    "the hashing threads have stopped".into(),
                ))
            }
        }
        answer
            .await
            .map_err(|_| StorageError::Hash("a hashing thread stopped mid-way".into()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn at_most_the_workers_run_and_a_full_queue_is_refused() {
        let pool = Arc::new(HashPool::new(2, 3).unwrap());
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let mut tasks = Vec::new();
        for i in 0..5 {
            // The first two are taken by the workers before the next are queued.
            while i == 2 && running.load(Ordering::SeqCst) < 2 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let (pool, running, most, gate) =
                (pool.clone(), running.clone(), most.clone(), gate.clone());
            tasks.push(tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    let _ = gate.lock().unwrap().recv_timeout(Duration::from_secs(5));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        // Two running and three waiting: the sixth is refused at once.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let refused = pool.run(|| ()).await;
        assert!(matches!(refused, Err(StorageError::Busy)), "{refused:?}");
        for _ in 0..5 {
            release.send(()).unwrap();
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert!(most.load(Ordering::SeqCst) <= 2);
        // And the pool works again once the queue has room.
        assert_eq!(pool.run(|| 42).await.unwrap(), 42);
    }
}
