//! Order-preserving parallel map for the per-node work of a scheduling cycle (filters,
//! scores). Small inputs stay on the calling thread: below a few hundred nodes the
//! cost of starting threads outweighs the work.

/// Inputs shorter than this are mapped on the calling thread.
pub const PARALLEL_THRESHOLD: usize = 256;

/// `items.iter().map(f)`, split over the machine's cores for long inputs; the results
/// keep the input order.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1);
    if items.len() < PARALLEL_THRESHOLD || threads < 2 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            // A panicking plugin is a bug; surface it on the caller's thread.
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_for_short_and_long_inputs() {
        for n in [0, 3, PARALLEL_THRESHOLD, 5000] {
            let items: Vec<usize> = (0..n).collect();
            let out = map(&items, |i| i * 2);
            assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        }
    }
}
