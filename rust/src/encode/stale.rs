//! Temporary outputs left by a killed `encode_file` (`.NAME.XXXXXX.tmp`), told apart from
//! those of a run still writing by an advisory lock that the writer holds until it ends:
//! the kernel drops the lock when its process dies, however it dies.

use std::fs::File;
use std::path::Path;

/// Takes the writer's lock on its temporary file. Best effort: without locks (an odd
/// filesystem) nothing is lost but the clean-up of orphans.
pub(crate) fn lock(file: &File) {
    let _ = try_lock(file);
}

/// Removes the files of `dir` named `PREFIX*.tmp` that no live process holds locked.
pub(crate) fn remove_orphans(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !(name.starts_with(prefix) && name.ends_with(".tmp")) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = File::options().read(true).write(true).open(&path) else {
            continue;
        };
        if try_lock(&file) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Takes an exclusive lock on `file` without waiting; true when taken.
#[cfg(unix)]
fn try_lock(file: &File) -> bool {
    // `File::try_lock` (flock on Unix): the lock belongs to the open file, so it lasts
    // while the writer keeps the file open and ends when its process does.
    file.try_lock().is_ok()
}

#[cfg(not(unix))]
fn try_lock(_file: &File) -> bool {
    false
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_unlocked_temporaries_of_the_output_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let orphan = dir.path().join(".out.npy.abc123.tmp");
        let live = dir.path().join(".out.npy.def456.tmp");
        let other = dir.path().join(".other.npy.abc123.tmp");
        for p in [&orphan, &live, &other] {
            std::fs::write(p, b"x").unwrap();
        }
        let writer = File::options().read(true).write(true).open(&live).unwrap();
        lock(&writer);
        remove_orphans(dir.path(), ".out.npy.");
        assert!(!orphan.exists());
        assert!(live.exists());
        assert!(other.exists());
    }
}
