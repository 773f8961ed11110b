//! The host's random seed (`random_seed_file`), which places each source's
//! `@random_every` runs at a stable offset inside their interval: different
//! on every host and for every source, so that a fleet does not hit the
//! repository at once, and the same across restarts. The agent schedules
//! with it, and `tabacco run` (see `plan`) tells the metadb the same next
//! due times.

use std::fs;
use std::io::Read;
use std::path::Path;

/// Reads the seed at `path`, creating it with random content if it is
/// missing or empty.
pub fn load_or_create(path: &Path) -> Result<Vec<u8>, String> {
    match fs::read(path) {
        Ok(seed) if !seed.trim_ascii().is_empty() => return Ok(seed.trim_ascii().to_vec()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(format!(
                "cannot read random_seed_file {}: {e}",
                path.display()
            ))
        }
    }
    let seed = random_hex(16)?;
    let context =
        |e: std::io::Error| format!("cannot create random_seed_file {}: {e}", path.display());
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(context)?;
    }
    // Written aside and renamed, so that a crash never leaves a short seed.
    let partial = path.with_extension("partial");
    fs::write(&partial, format!("{seed}\n")).map_err(context)?;
    fs::rename(&partial, path).map_err(context)?;
    log::info!("created random_seed_file {}", path.display());
    Ok(seed.into_bytes())
}

/// `n` bytes from `/dev/urandom`, in hex: a seed, or a secret such as the
/// console's session ids.
pub fn random_hex(n: usize) -> Result<String, String> {
    let mut bytes = vec![0u8; n];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The offset of `source`'s `@random_every` runs for this seed. FNV-1a,
/// because it must not change between builds (std's hashers may).
pub fn offset(seed: &[u8], source: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in seed.iter().chain(&[0]).chain(source.as_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_is_created_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("tabacco-seed-{}", std::process::id()));
        let path = dir.join("sub/seed");
        let first = load_or_create(&path).unwrap();
        assert_eq!(first.len(), 32);
        assert_eq!(load_or_create(&path).unwrap(), first);
        fs::write(&path, "operator chosen\n").unwrap();
        assert_eq!(load_or_create(&path).unwrap(), b"operator chosen");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn offsets_are_stable_and_differ_by_source() {
        // Pinned: a changed hash would move every host's backups.
        assert_eq!(offset(b"seed", "users"), offset(b"seed", "users"));
        assert_eq!(offset(b"", ""), 0xaf63_bd4c_8601_b7df);
        assert_ne!(offset(b"seed", "users"), offset(b"seed", "sql"));
        assert_ne!(offset(b"seed", "users"), offset(b"other", "users"));
    }
}
