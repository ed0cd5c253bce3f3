//! A file system of a few MiB (tmpfs) to put a SQLite database on and fill up: what a full
//! disk does to the server, for real, without filling the machine's disk. Mounting needs
//! root (as `.ci/run` has); without it these tests are reported as ignored, with a banner,
//! unless `AGENTDESK_TEST_REQUIRE_SMALL_DISK=1` makes that a failure.

use std::{
    fs::{self, File},
    io::{self, Write},
    path::{Path, PathBuf},
    process::Command,
};

use tempfile::TempDir;

pub struct SmallDisk {
    mount_point: TempDir,
}

impl SmallDisk {
    pub fn mount(bytes: u64) -> Result<Self, String> {
        let mount_point = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "agentdesk-test"])
            .arg(mount_point.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(format!("mount -t tmpfs failed: {}", String::from_utf8_lossy(&output.stderr).trim()));
        }
        Ok(Self { mount_point })
    }

    pub fn path(&self) -> &Path {
        self.mount_point.path()
    }

    fn filler(&self) -> PathBuf {
        self.path().join("filler")
    }

    /// Takes every free byte of the file system.
    pub fn fill(&self) {
        let mut filler = File::create(self.filler()).expect("create the filler");
        let chunk = vec![0xA5u8; 64 * 1024];
        for size in [chunk.len(), 4096, 1] {
            loop {
                match filler.write_all(&chunk[..size]).and_then(|()| filler.flush()) {
                    Ok(()) => {}
                    Err(error) if error.raw_os_error() == Some(libc::ENOSPC) => break,
                    Err(error) => panic!("filling the disk: {error}"),
                }
            }
        }
    }

    /// Gives back what `fill` took.
    pub fn free(&self) {
        match fs::remove_file(self.filler()) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => panic!("removing the filler: {error}"),
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: a file still open by a server that is going away must not keep it mounted.
        let _ = Command::new("umount").arg("-l").arg(self.mount_point.path()).status();
    }
}

/// Ok when this process may mount a small file system.
pub fn probe() -> Result<(), String> {
    SmallDisk::mount(1024 * 1024).map(drop)
}

pub fn required() -> bool {
    std::env::var("AGENTDESK_TEST_REQUIRE_SMALL_DISK").is_ok_and(|v| v == "1")
}

pub fn warn_skipped(reason: &str) {
    eprintln!();
    eprintln!("##################################################################");
    eprintln!("##  Full-disk tests SKIPPED: {reason}");
    eprintln!("##  They mount a small tmpfs, which needs root; .ci/run has it.");
    eprintln!("##################################################################");
    eprintln!();
}
