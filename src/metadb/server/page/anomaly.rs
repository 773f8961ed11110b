//! The anomaly a source's history can show and no peer reports: a run
//! whose total size fell well below what the source usually holds (a
//! database dumped empty, a mount that was not there), which restic takes
//! as a fine, small snapshot. A run is flagged when its total size is
//! below [`FRACTION`] of the median of the [`WINDOW`] runs before it, once
//! at least [`MIN_BEFORE`] runs came before it; growth is never flagged.

/// The part of the median below which a run's size is an anomaly.
pub const FRACTION: f64 = 0.5;
/// How many runs before a run its median is taken of.
pub const WINDOW: usize = 10;
/// How many runs must come before a run for it to be judged.
pub const MIN_BEFORE: usize = 3;

/// For runs' total sizes, oldest first: whether each is an anomaly, and
/// the median it was judged against.
pub fn flags(sizes: &[i64]) -> Vec<Option<i64>> {
    (0..sizes.len())
        .map(|i| {
            let before = &sizes[i.saturating_sub(WINDOW)..i];
            if before.len() < MIN_BEFORE {
                return None;
            }
            let median = median(before);
            ((sizes[i] as f64) < FRACTION * median as f64).then_some(median)
        })
        .collect()
}

/// The median of `values` (not empty); of an even number, the lower of the
/// middle two.
fn median(values: &[i64]) -> i64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted[(sorted.len() - 1) / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sudden_drop_below_half_the_median_is_flagged() {
        let sizes = [100, 110, 105, 120, 40, 115, 60, 0];
        let flagged: Vec<bool> = flags(&sizes).iter().map(Option::is_some).collect();
        assert_eq!(
            flagged,
            [false, false, false, false, true, false, false, true]
        );
        // 60 against the median of 100 110 105 120 40 115: 105.
        assert_eq!(flags(&sizes)[6], None);
        assert_eq!(flags(&sizes)[7], Some(105));
    }

    #[test]
    fn too_few_runs_growth_or_zero_medians_are_not_flagged() {
        assert!(flags(&[100, 1, 1]).iter().all(Option::is_none));
        assert!(flags(&[1, 2, 4, 8, 16, 1000]).iter().all(Option::is_none));
        assert!(flags(&[0, 0, 0, 0]).iter().all(Option::is_none));
        assert!(flags(&[]).is_empty());
        // Only the last WINDOW runs count: a long-gone large size does not
        // make today's usual size an anomaly.
        let mut sizes = vec![1000; 3];
        sizes.extend([100; 10]);
        sizes.push(100);
        assert!(flags(&sizes)[13].is_none());
    }
}
