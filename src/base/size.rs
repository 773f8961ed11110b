//! Sizes and rates as people read them: `12 bytes`, `3.0 GiB`, `110 MiB/s`.
//! Exact byte counts stay where a machine reads them (JSON, the metadb).

/// `bytes` in binary units with one decimal from 1 KiB up; below it, the
/// count of bytes.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return crate::base::count::count(bytes, "byte");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A rate of `bytes` per second, as [`human`] writes sizes.
pub fn rate(bytes_per_second: f64) -> String {
    // Whole bytes: a rate is an estimate.
    let bytes = bytes_per_second.max(0.0).round() as u64;
    match bytes {
        0..1024 => format!("{bytes} B/s"),
        _ => format!("{}/s", human(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(human(0), "0 bytes");
        assert_eq!(human(1), "1 byte");
        assert_eq!(human(1023), "1023 bytes");
        assert_eq!(human(1024), "1.0 KiB");
        assert_eq!(human(3_250_585_600), "3.0 GiB");
        assert_eq!(human(1_573_003_692), "1.5 GiB");
        assert_eq!(human(u64::MAX), "16.0 EiB");
        assert_eq!(rate(115_343_360.0), "110.0 MiB/s");
        assert_eq!(rate(512.4), "512 B/s");
    }
}
