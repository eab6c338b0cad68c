//! The snapshot: every retained version of every key at one revision, so that recovery needs
//! only the log records written after it.
//!
//! Layout: a header record (`KPSNAP02`, revision, compacted revision, number of versions)
//! followed by one record per version (key, tombstone flag, create and mod revision, value), in
//! key order and, within a key, revision order. One record per version rather than per key keeps
//! every record as small as a log record, however long a key's history grows. It is written to a
//! temporary file, fsynced and renamed into place, so a crash leaves either the old or the new
//! snapshot, never a mix; a snapshot that fails its checks therefore means real damage and
//! loading refuses it.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use super::codec::{frame, put_bytes, put_i64, put_u8, Fields, Frame, FrameReader};
use crate::store::mvcc::{Index, Version};
use crate::store::{StoreError, StoreResult};

const MAGIC: &[u8; 8] = b"KPSNAP02";
pub(super) const FILE: &str = "snapshot";
pub(super) const TMP_FILE: &str = "snapshot.tmp";

/// Writes `index` as the directory's snapshot; returns its size in bytes.
pub(super) fn write(dir: &Path, index: &Index) -> std::io::Result<u64> {
    let tmp = dir.join(TMP_FILE);
    let file = File::create(&tmp)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut buf = Vec::with_capacity(4096);
    let versions: usize = index.histories().map(|(_, versions)| versions.len()).sum();
    frame(&mut buf, |b| {
        b.extend_from_slice(MAGIC);
        put_i64(b, index.revision());
        put_i64(b, index.compacted());
        put_i64(b, versions as i64);
    });
    out.write_all(&buf)?;
    let mut size = buf.len() as u64;
    for (key, versions) in index.histories() {
        for v in versions {
            buf.clear();
            frame(&mut buf, |b| {
                put_bytes(b, key.as_bytes());
                put_u8(b, u8::from(v.tombstone));
                put_i64(b, v.create_revision);
                put_i64(b, v.mod_revision);
                put_bytes(b, &v.value);
            });
            out.write_all(&buf)?;
            size += buf.len() as u64;
        }
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, dir.join(FILE))?;
    sync_dir(dir)?;
    Ok(size)
}

/// Makes renames and file creations in `dir` durable.
pub(super) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn damaged(path: &Path, what: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(format!("snapshot {} is damaged: {what}", path.display()))
}

/// Loads the snapshot at `path`, or `None` when there is none yet.
pub(super) fn load(path: &Path) -> StoreResult<Option<Index>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(damaged(path, e)),
    };
    let mut reader = FrameReader::new(BufReader::with_capacity(1 << 20, file));
    let mut next = || match reader.next_frame() {
        Ok(Frame::Record(payload)) => Ok(Some(Fields::new(payload))),
        Ok(Frame::End) => Ok(None),
        Ok(Frame::Damaged(reason)) => Err(damaged(path, reason)),
        Err(e) => Err(damaged(path, e)),
    };
    let malformed = |_| damaged(path, "malformed record");

    let mut header = next()?.ok_or_else(|| damaged(path, "empty file"))?;
    let mut magic = [0u8; 8];
    for byte in &mut magic {
        *byte = header.u8().map_err(malformed)?;
    }
    if &magic != MAGIC {
        return Err(damaged(path, "unknown format"));
    }
    let revision = header.i64().map_err(malformed)?;
    let compacted = header.i64().map_err(malformed)?;
    let count = header.i64().map_err(malformed)?;
    header.finish().map_err(malformed)?;
    if compacted > revision || count < 0 {
        return Err(damaged(path, "inconsistent header"));
    }

    let mut keys: BTreeMap<String, Vec<Version>> = BTreeMap::new();
    let mut last_key: Option<String> = None;
    for _ in 0..count {
        let mut fields = next()?.ok_or_else(|| damaged(path, "missing version records"))?;
        let key = fields.string().map_err(malformed)?;
        let version = Version {
            tombstone: fields.u8().map_err(malformed)? != 0,
            create_revision: fields.i64().map_err(malformed)?,
            mod_revision: fields.i64().map_err(malformed)?,
            value: fields.bytes().map_err(malformed)?,
        };
        fields.finish().map_err(malformed)?;
        if version.mod_revision > revision {
            return Err(damaged(
                path,
                format!("{key} has a version after the snapshot"),
            ));
        }
        let same_key = last_key.as_deref() == Some(key.as_str());
        if !same_key && last_key.as_deref().is_some_and(|last| last >= key.as_str()) {
            return Err(damaged(path, format!("keys out of order at {key}")));
        }
        let history = keys.entry(key.clone()).or_default();
        if history
            .last()
            .is_some_and(|prev| prev.mod_revision >= version.mod_revision)
        {
            return Err(damaged(path, format!("versions of {key} out of order")));
        }
        history.push(version);
        last_key = Some(key);
    }
    if next()?.is_some() {
        return Err(damaged(path, "trailing records"));
    }
    Ok(Some(Index::restore(revision, compacted, keys)))
}

/// The revision a snapshot was taken at, for tests that inspect the directory.
#[cfg(test)]
pub(super) fn revision_of(path: &Path) -> StoreResult<Option<crate::store::Revision>> {
    Ok(load(path)?.map(|index| index.revision()))
}
