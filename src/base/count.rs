//! Counts in messages, with the noun agreeing: `1 dataset`, `2 datasets`.

/// `n` and `noun`, plural unless `n` is 1 (nouns here take an `s`).
pub fn count(n: impl std::fmt::Display, noun: &str) -> String {
    match n.to_string() {
        one if one == "1" => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees() {
        assert_eq!(count(0u8, "atom"), "0 atoms");
        assert_eq!(count(1usize, "dataset"), "1 dataset");
        assert_eq!(count(2i64, "file"), "2 files");
    }
}
