//! Slow start (upstream's `slowStartBatch`): creations go in batches of 1, 2, 4, 8 …,
//! each batch in parallel, and stop at the first batch with a failure. A ReplicaSet
//! whose pods all fail (a quota, a bad template) then costs the API server one
//! request per attempt, not hundreds.

use std::future::Future;

/// Upstream's `SlowStartInitialBatchSize`.
pub const INITIAL_BATCH: usize = 1;

/// Runs `call` `count` times in growing batches; returns how many succeeded and the
/// first error, if a batch failed (later batches are then not started).
pub async fn slow_start<F, Fut, E>(count: usize, initial: usize, mut call: F) -> (usize, Option<E>)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let mut remaining = count;
    let mut successes = 0;
    let mut batch = remaining.min(initial.max(1));
    while batch > 0 {
        let results = futures::future::join_all((0..batch).map(|_| call())).await;
        let mut first_error = None;
        for result in results {
            match result {
                Ok(()) => successes += 1,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if first_error.is_some() {
            return (successes, first_error);
        }
        remaining -= batch;
        batch = remaining.min(batch.saturating_mul(2));
    }
    (successes, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Runs a slow start of `count` where call number `fail_at` (1-based, if any) and
    /// every call after it fail; returns (successes, failed, calls made, batch sizes).
    async fn run(count: usize, fail_at: Option<usize>) -> (usize, bool, usize, Vec<usize>) {
        let calls = AtomicUsize::new(0);
        // Calls made so far, as each call's future sees it when it runs: a batch's
        // calls are all made before any of them runs, so each batch leaves one total.
        let totals = Mutex::new(Vec::<usize>::new());
        let (ok, err) = slow_start(count, INITIAL_BATCH, || {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            let (calls, totals) = (&calls, &totals);
            async move {
                let total = calls.load(Ordering::SeqCst);
                let mut totals = totals.lock().expect("lock");
                if totals.last() != Some(&total) {
                    totals.push(total);
                }
                match fail_at {
                    Some(f) if n >= f => Err(n),
                    _ => Ok(()),
                }
            }
        })
        .await;
        let totals = totals.lock().expect("lock").clone();
        let batches = totals
            .iter()
            .scan(0, |before, total| {
                let size = total - *before;
                *before = *total;
                Some(size)
            })
            .collect();
        (ok, err.is_some(), calls.load(Ordering::SeqCst), batches)
    }

    #[tokio::test]
    async fn batches_double_and_stop_at_the_first_failure() {
        // (count, first failing call, successes, failed, calls, batch sizes)
        let cases = [
            (0, None, 0, false, 0, vec![]),
            (1, None, 1, false, 1, vec![1]),
            (10, None, 10, false, 10, vec![1, 2, 4, 3]),
            (16, None, 16, false, 16, vec![1, 2, 4, 8, 1]),
            (10, Some(1), 0, true, 1, vec![1]),
            // The 3rd call fails: the batch of 2 finishes (one success), then stop.
            (10, Some(3), 2, true, 3, vec![1, 2]),
            (10, Some(8), 7, true, 10, vec![1, 2, 4, 3]),
        ];
        for (count, fail_at, successes, failed, calls, batches) in cases {
            let got = run(count, fail_at).await;
            assert_eq!(
                got,
                (successes, failed, calls, batches),
                "count {count}, failing from call {fail_at:?}"
            );
        }
    }
}
