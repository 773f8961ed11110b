//! "Did you mean": the known word closest to a mistyped one, by edit
//! distance, when it is close enough to be the likely intent. Used for
//! configuration keys and source names; what is known is the caller's.

/// The word of `known` closest to `typed`, if a typo could explain the
/// difference: at most one edit in a short word, a third of its letters in
/// a longer one.
pub fn closest<'a>(typed: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let bound = (typed.chars().count() / 3).max(1);
    known
        .into_iter()
        .map(|word| (distance(typed, word), word))
        .filter(|(d, _)| *d <= bound)
        .min_by_key(|(d, _)| *d)
        .map(|(_, word)| word)
}

/// The edit distance of `a` and `b`, a swap of two neighbours counting as
/// one edit (optimal string alignment).
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // rows[i][j]: the distance of a[..i] and b[..j].
    let mut rows = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let change = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + change);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_word_and_strangers_nothing() {
        let keys = ["name", "handler", "params", "schedule", "retention"];
        assert_eq!(closest("parms", keys), Some("params"));
        assert_eq!(closest("retentoin", keys), Some("retention"));
        assert_eq!(closest("shedule", keys), Some("schedule"));
        assert_eq!(closest("nmae", keys), Some("name"));
        assert_eq!(closest("colour", keys), None);
        assert_eq!(closest("x", keys), None);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("abc", "acb"), 1);
    }
}
