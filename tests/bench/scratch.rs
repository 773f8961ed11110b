//! The benchmark's scratch directory and the data it backs up: removed when
//! the benchmark ends, however it ends short of a kill.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A directory under the system's temp dir, removed on drop.
pub struct Scratch {
    pub root: PathBuf,
}

impl Scratch {
    pub fn new() -> Scratch {
        let root = std::env::temp_dir().join(format!("tabacco-bench-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).expect("create the scratch directory");
        Scratch { root }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Writes `content` to `rel`, creating directories; returns the path.
    pub fn write(&self, rel: &str, content: &str) -> PathBuf {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().expect("a file in a directory")).expect("mkdir");
        fs::write(&path, content).expect("write a scratch file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// Removes `dir` if it exists (a repository or work_dir between runs).
pub fn remove(dir: &Path) {
    match fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("remove {}: {e}", dir.display()),
    }
}

/// Writes `len` bytes that neither compress nor deduplicate against
/// anything else written here (xorshift64*, seeded per file).
pub fn random_file(path: &Path, len: usize, seed: u64) {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out =
        std::io::BufWriter::with_capacity(1 << 20, fs::File::create(path).expect("create"));
    let mut left = len;
    let mut block = [0u8; 8192];
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            word.copy_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        let n = left.min(block.len());
        out.write_all(&block[..n]).expect("write random data");
        left -= n;
    }
    out.flush().expect("flush random data");
}
