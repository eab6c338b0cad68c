//! Container log files in the CRI format the kubelet reads (`<RFC 3339 nano> <stream> F
//! <line>`), rotated by size like `containerLogMaxSize`/`containerLogMaxFiles`.

use std::io::Write;
use std::path::{Path, PathBuf};

use k8s_openapi::jiff::Timestamp;

pub struct LogFile {
    path: PathBuf,
    file: Option<std::fs::File>,
    written: u64,
    max_bytes: u64,
    max_files: usize,
}

impl LogFile {
    /// Appends to `path` (created with its directory).
    pub fn open(path: &Path, max_bytes: u64, max_files: usize) -> std::io::Result<LogFile> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let written = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LogFile {
            path: path.to_path_buf(),
            file: Some(file),
            written,
            max_bytes: max_bytes.max(1),
            max_files: max_files.max(1),
        })
    }

    pub fn write_line(&mut self, at: Timestamp, stream: &str, text: &str) {
        let line = format!("{} {stream} F {text}\n", format_time(at));
        if self.written > 0 && self.written + line.len() as u64 > self.max_bytes {
            self.rotate();
        }
        if let Some(f) = &mut self.file {
            if f.write_all(line.as_bytes()).is_ok() {
                self.written += line.len() as u64;
            }
        }
    }

    /// `0.log` → `0.log.1` → `0.log.2` …, keeping `max_files` files in all.
    fn rotate(&mut self) {
        self.file = None;
        let name = |i: usize| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{i}"));
            PathBuf::from(p)
        };
        if self.max_files > 1 {
            let _ = std::fs::remove_file(name(self.max_files - 1));
            for i in (1..self.max_files - 1).rev() {
                let _ = std::fs::rename(name(i), name(i + 1));
            }
            let _ = std::fs::rename(&self.path, name(1));
        } else {
            let _ = std::fs::remove_file(&self.path);
        }
        self.file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .ok();
        self.written = 0;
    }
}

/// RFC 3339 with nanoseconds, as the CRI log format writes.
pub fn format_time(t: Timestamp) -> String {
    format!("{t:.9}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cri_formatted_and_rotated_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c/0.log");
        let mut f = LogFile::open(&p, 100, 3).unwrap();
        let t = Timestamp::from_second(1_800_000_000).unwrap();
        f.write_line(t, "stdout", "hello");
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text, "2027-01-15T08:00:00.000000000Z stdout F hello\n");
        for i in 0..10 {
            f.write_line(t, "stderr", &format!("line {i}"));
        }
        assert!(dir.path().join("c/0.log.1").exists());
        assert!(dir.path().join("c/0.log.2").exists());
        assert!(!dir.path().join("c/0.log.3").exists(), "at most 3 files");
        assert!(std::fs::metadata(&p).unwrap().len() <= 100);
    }
}
