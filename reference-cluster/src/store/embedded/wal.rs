//! The write-ahead log: one framed record per committed write, in revision order.
//!
//! A put record is `[1][revision][key][value]`, a delete `[2][revision][key]`; a delete needs no
//! value because replay finds the last value in the index it is rebuilding.

use std::fs::{File, OpenOptions};
use std::io::BufReader;
use std::path::Path;

use bytes::Bytes;

use super::codec::{frame, put_bytes, put_i64, put_u8, Fields, Frame, FrameReader, Malformed};
use crate::store::mvcc::Mutation;
use crate::store::{StoreError, StoreResult};

const PUT: u8 = 1;
const DELETE: u8 = 2;

pub(super) fn encode(mutation: &Mutation, out: &mut Vec<u8>) {
    frame(out, |out| {
        put_u8(
            out,
            if mutation.value.is_some() {
                PUT
            } else {
                DELETE
            },
        );
        put_i64(out, mutation.revision);
        put_bytes(out, mutation.key.as_bytes());
        if let Some(value) = &mutation.value {
            put_bytes(out, value);
        }
    });
}

fn decode(payload: Bytes) -> Result<Mutation, Malformed> {
    let mut fields = Fields::new(payload);
    let kind = fields.u8()?;
    let revision = fields.i64()?;
    let key = fields.string()?;
    let value = match kind {
        PUT => Some(fields.bytes()?),
        DELETE => None,
        _ => return Err(Malformed),
    };
    fields.finish()?;
    Ok(Mutation {
        revision,
        key,
        value,
    })
}

/// The log after recovery, positioned for appending.
pub(super) struct Recovered {
    pub file: File,
    /// Length of the intact log.
    pub len: u64,
    /// Bytes cut off the end because they were torn or corrupt.
    pub dropped: u64,
    /// The log file did not exist before.
    pub created: bool,
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> StoreError {
    StoreError::Internal(format!("{what} {}: {e}", path.display()))
}

/// Opens (or creates) the log at `path` and feeds every intact record to `apply`, in order.
/// Everything from the first damaged record on is cut off: the writer fsyncs a batch before
/// acknowledging it, so a damaged record can only belong to a batch nobody was told about.
/// A record that passes its checksum but cannot be decoded or applied is not a torn write but
/// real damage or a bug; recovery refuses to guess and fails.
pub(super) fn recover(
    path: &Path,
    mut apply: impl FnMut(Mutation) -> StoreResult<()>,
) -> StoreResult<Recovered> {
    let created = !path.exists();
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| io_error(path, "opening log", e))?;
    let total = file
        .metadata()
        .map_err(|e| io_error(path, "reading log metadata", e))?
        .len();
    let mut reader = FrameReader::new(BufReader::with_capacity(1 << 20, &file));
    loop {
        match reader
            .next_frame()
            .map_err(|e| io_error(path, "reading log", e))?
        {
            Frame::Record(payload) => {
                let mutation = decode(payload).map_err(|Malformed| {
                    StoreError::Internal(format!(
                        "log {} holds an undecodable record at offset {}",
                        path.display(),
                        reader.good_end
                    ))
                })?;
                apply(mutation)?;
            }
            Frame::End => break,
            Frame::Damaged(reason) => {
                tracing::warn!(
                    log = %path.display(),
                    offset = reader.good_end,
                    dropped = total - reader.good_end,
                    reason,
                    "cutting off the damaged tail of the write-ahead log"
                );
                break;
            }
        }
    }
    let len = reader.good_end;
    if len < total {
        file.set_len(len)
            .and_then(|()| file.sync_all())
            .map_err(|e| io_error(path, "truncating log", e))?;
    }
    Ok(Recovered {
        file,
        len,
        dropped: total - len,
        created,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_and_delete_records_round_trip() {
        let put = Mutation {
            revision: 7,
            key: "/registry/pods/ns/a".into(),
            value: Some(Bytes::from_static(b"{\"kind\":\"Pod\"}")),
        };
        let delete = Mutation {
            revision: 8,
            key: "/registry/pods/ns/a".into(),
            value: None,
        };
        let mut buf = Vec::new();
        encode(&put, &mut buf);
        encode(&delete, &mut buf);
        let mut reader = FrameReader::new(&buf[..]);
        for expected in [put, delete] {
            let Frame::Record(payload) = reader.next_frame().unwrap() else {
                panic!("record expected")
            };
            assert_eq!(decode(payload).unwrap(), expected);
        }
    }

    #[test]
    fn unknown_record_kinds_are_malformed() {
        let mut payload = vec![9];
        put_i64(&mut payload, 1);
        put_bytes(&mut payload, b"/k");
        assert!(decode(Bytes::from(payload)).is_err());
    }
}
