//! The execution lock on the config folder: `cluster.lock`, as Go names it,
//! so that two peers never share one folder (one identity, one store).
//!
//! The lock is an OS file lock (`flock` on Unix) held on an open
//! `cluster.lock`: the OS releases it when the process ends, however it
//! ends, so a crash never leaves a stale lock behind. The file stays; it
//! holds the pid of the last holder, for the error message.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::config::ConfigError;

/// The lock file's name in the config folder (Go's `lockFileName`).
pub const LOCK_FILE: &str = "cluster.lock";

/// An exclusive lock on a config folder, released on drop.
#[derive(Debug)]
pub struct FolderLock {
    file: File,
    folder: PathBuf,
    path: PathBuf,
}

impl FolderLock {
    /// Takes the lock on `folder`, creating the folder (mode 0700) when
    /// missing, as Go does.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Locked`] naming the folder (and the holder's pid)
    /// when another process, or another `FolderLock`, holds it;
    /// [`ConfigError::Io`] when the folder or file can't be created.
    pub fn acquire(folder: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let folder = folder.as_ref().to_owned();
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| ConfigError::Io { path, source }
        };
        if !folder.exists() {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(&folder).map_err(io(&folder))?;
        }
        let path = folder.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                // Best effort: the holder may be writing it right now.
                let _ = file.read_to_string(&mut text);
                return Err(ConfigError::Locked {
                    folder,
                    lock: path,
                    pid: text.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(source)) => return Err(ConfigError::Io { path, source }),
        }
        // Ours now: record who holds it.
        let record = (|| {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            writeln!(file, "{}", std::process::id())?;
            file.flush()
        })();
        record.map_err(io(&path))?;
        Ok(Self { file, folder, path })
    }

    /// The locked folder.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        // Closing the file releases the lock anyway; unlocking first makes
        // the release explicit and immediate.
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_folder_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("cfg");
        let first = FolderLock::acquire(&folder).unwrap();
        assert_eq!(first.path(), folder.join(LOCK_FILE));
        assert_eq!(first.folder(), folder);

        let err = FolderLock::acquire(&folder).unwrap_err();
        match &err {
            ConfigError::Locked {
                folder: f,
                lock,
                pid,
            } => {
                assert_eq!(f, &folder);
                assert_eq!(lock, &folder.join(LOCK_FILE));
                assert_eq!(*pid, Some(std::process::id()));
            }
            other => panic!("unexpected: {other}"),
        }
        let msg = err.to_string();
        assert!(msg.contains(&folder.display().to_string()), "{msg}");
        assert!(msg.contains("in use by another running peer"), "{msg}");

        drop(first);
        let again = FolderLock::acquire(&folder).unwrap();
        drop(again);
    }

    #[test]
    fn different_folders_lock_independently() {
        let dir = tempfile::tempdir().unwrap();
        let a = FolderLock::acquire(dir.path().join("a")).unwrap();
        let b = FolderLock::acquire(dir.path().join("b")).unwrap();
        drop((a, b));
    }

    #[cfg(unix)]
    #[test]
    fn a_created_folder_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("new");
        let _lock = FolderLock::acquire(&folder).unwrap();
        let mode = std::fs::metadata(&folder).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
