//! Output formats. Each writer is a pure function from a [`Report`] to text; [`write_all`]
//! puts all of them in a directory.

pub mod conformance;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;

use std::path::{Path, PathBuf};

use crate::catalogue::Catalogue;
use crate::model::Report;

/// Paths of the files [`write_all`] wrote.
#[derive(Clone, Debug)]
pub struct ReportFiles {
    pub json: PathBuf,
    pub junit: PathBuf,
    pub markdown: PathBuf,
    pub html: PathBuf,
    pub conformance: PathBuf,
}

/// Writes `report.json`, `junit.xml`, `report.md`, `report.html` and `conformance.yaml` into
/// `dir` (created if missing).
pub fn write_all(
    report: &Report,
    catalogue: &Catalogue,
    dir: &Path,
) -> anyhow::Result<ReportFiles> {
    std::fs::create_dir_all(dir)?;
    let files = ReportFiles {
        json: dir.join("report.json"),
        junit: dir.join("junit.xml"),
        markdown: dir.join("report.md"),
        html: dir.join("report.html"),
        conformance: dir.join("conformance.yaml"),
    };
    std::fs::write(&files.json, json::render(report, catalogue)?)?;
    std::fs::write(&files.junit, junit::render(report))?;
    std::fs::write(&files.markdown, markdown::render(report, catalogue))?;
    std::fs::write(&files.html, html::render(report, catalogue))?;
    std::fs::write(&files.conformance, conformance::render(report, catalogue)?)?;
    Ok(files)
}

/// Milliseconds as seconds with millisecond precision, the unit JUnit and people expect.
pub(crate) fn secs(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_all_writes_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("nested/reports");
        let files = write_all(&crate::sample::report(), Catalogue::embedded(), &out).unwrap();
        for p in [
            &files.json,
            &files.junit,
            &files.markdown,
            &files.html,
            &files.conformance,
        ] {
            let text = std::fs::read_to_string(p).unwrap();
            assert!(text.len() > 100, "{} is too short", p.display());
        }
        assert_eq!(secs(72_005), "72.005");
    }
}
