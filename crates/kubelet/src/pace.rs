//! Periodic work over many nodes from one task: each round calls the work for every
//! item at evenly spread moments of the period, with a cap on how many are in flight.
//! A thousand hollow nodes then cost one task and a steady request rate, not a
//! thousand timers firing together.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::time::Instant;

/// Runs `work` once for each of `items`, the i-th starting `period * i / n` after the
/// round begins (later if `concurrency` calls are still running), then waits for the
/// rest of the period and for every call to finish.
pub async fn round<'a, T, F, Fut>(items: &'a [T], period: Duration, concurrency: usize, work: F)
where
    F: Fn(&'a T) -> Fut,
    Fut: Future<Output = ()> + 'a,
{
    let start = Instant::now();
    let n = items.len().max(1) as u32;
    let concurrency = concurrency.max(1);
    let mut in_flight = FuturesUnordered::new();
    for (i, item) in items.iter().enumerate() {
        let at = start + period.mul_f64(f64::from(i as u32) / f64::from(n));
        loop {
            let due = Instant::now() >= at;
            if due && in_flight.len() < concurrency {
                break;
            }
            tokio::select! {
                Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
                _ = tokio::time::sleep_until(at), if !due => {}
            }
        }
        in_flight.push(work(item));
    }
    while in_flight.next().await.is_some() {}
    tokio::time::sleep_until(start + period).await;
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spreads_calls_over_the_period() {
        let start = Instant::now();
        let seen = Mutex::new(Vec::new());
        let items: Vec<u32> = (0..4).collect();
        round(&items, Duration::from_secs(8), 10, |i| {
            let seen = &seen;
            async move {
                if let Ok(mut s) = seen.lock() {
                    s.push((*i, start.elapsed().as_secs()));
                }
            }
        })
        .await;
        assert_eq!(start.elapsed(), Duration::from_secs(8));
        let seen = seen.into_inner().expect("lock");
        assert_eq!(seen, vec![(0, 0), (1, 2), (2, 4), (3, 6)]);
    }

    #[tokio::test(start_paused = true)]
    async fn caps_calls_in_flight() {
        let start = Instant::now();
        let items: Vec<u32> = (0..6).collect();
        let running = std::sync::atomic::AtomicUsize::new(0);
        let peak = std::sync::atomic::AtomicUsize::new(0);
        round(&items, Duration::ZERO, 2, |_| {
            let (running, peak) = (&running, &peak);
            async move {
                use std::sync::atomic::Ordering::SeqCst;
                let now = running.fetch_add(1, SeqCst) + 1;
                peak.fetch_max(now, SeqCst);
                tokio::time::sleep(Duration::from_secs(1)).await;
                running.fetch_sub(1, SeqCst);
            }
        })
        .await;
        assert_eq!(peak.into_inner(), 2);
        // Six one-second calls, two at a time.
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }
}
