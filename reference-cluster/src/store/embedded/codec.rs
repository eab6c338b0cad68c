//! Framing shared by the log and the snapshot: `[len: u32 LE][crc32(payload): u32 LE][payload]`,
//! and the little-endian field encoding used inside payloads.
//!
//! A reader distinguishes a clean end of file from a damaged record (short header, length
//! beyond the end or the sanity limit, checksum mismatch) so that log recovery can cut the file
//! at the first damaged record, and snapshot loading can refuse a damaged snapshot.

use std::io::{self, Read};

use bytes::Bytes;

pub(super) const HEADER_LEN: usize = 8;

/// No legitimate record comes near this (Kubernetes caps objects at a few MiB); a larger length
/// can only be damage, and must not make recovery allocate it.
pub(super) const MAX_RECORD: u32 = 256 << 20;

/// Appends one framed record whose payload `fill` writes into `out`.
pub(super) fn frame(out: &mut Vec<u8>, fill: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    fill(out);
    let payload = &out[start + HEADER_LEN..];
    // The writer refuses records above MAX_RECORD after encoding them; saturating (rather than
    // wrapping) guarantees such a record never looks like a valid, shorter one.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let crc = crc32fast::hash(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

pub(super) fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

pub(super) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(super) fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(super) fn put_bytes(out: &mut Vec<u8>, v: &[u8]) {
    put_u32(out, u32::try_from(v.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(v);
}

pub(super) enum Frame {
    Record(Bytes),
    /// End of input exactly at a record boundary.
    End,
    /// A damaged record starts here; nothing from this point on can be trusted.
    Damaged(&'static str),
}

/// Reads framed records, tracking the offset of the end of the last good one.
pub(super) struct FrameReader<R> {
    inner: R,
    /// Offset just past the last record returned.
    pub good_end: u64,
}

impl<R: Read> FrameReader<R> {
    pub fn new(inner: R) -> Self {
        FrameReader { inner, good_end: 0 }
    }

    pub fn next_frame(&mut self) -> io::Result<Frame> {
        let mut header = [0u8; HEADER_LEN];
        match read_full(&mut self.inner, &mut header)? {
            0 => return Ok(Frame::End),
            HEADER_LEN => {}
            _ => return Ok(Frame::Damaged("truncated record header")),
        }
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len > MAX_RECORD {
            return Ok(Frame::Damaged("record length out of range"));
        }
        let mut payload = Vec::new();
        let got = (&mut self.inner)
            .take(u64::from(len))
            .read_to_end(&mut payload)?;
        if got != len as usize {
            return Ok(Frame::Damaged("truncated record payload"));
        }
        if crc32fast::hash(&payload) != crc {
            return Ok(Frame::Damaged("record checksum mismatch"));
        }
        self.good_end += (HEADER_LEN + payload.len()) as u64;
        Ok(Frame::Record(Bytes::from(payload)))
    }
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Decodes the fields of one payload; every getter fails instead of reading past the end.
pub(super) struct Fields {
    data: Bytes,
    pos: usize,
}

/// A payload whose checksum matched but whose content does not parse.
#[derive(Debug)]
pub(super) struct Malformed;

impl Fields {
    pub fn new(data: Bytes) -> Self {
        Fields { data, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], Malformed> {
        let end = self.pos.checked_add(n).ok_or(Malformed)?;
        let slice = self.data.get(self.pos..end).ok_or(Malformed)?;
        self.pos = end;
        Ok(slice)
    }

    pub fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, Malformed> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn i64(&mut self) -> Result<i64, Malformed> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_le_bytes(a))
    }

    /// A length-prefixed byte string, sharing the payload's buffer.
    pub fn bytes(&mut self) -> Result<Bytes, Malformed> {
        let len = self.u32()? as usize;
        let start = self.pos;
        self.take(len)?;
        Ok(self.data.slice(start..start + len))
    }

    pub fn string(&mut self) -> Result<String, Malformed> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| Malformed)
    }

    pub fn finish(&self) -> Result<(), Malformed> {
        if self.pos == self.data.len() {
            Ok(())
        } else {
            Err(Malformed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_records() -> Vec<u8> {
        let mut buf = Vec::new();
        frame(&mut buf, |out| put_bytes(out, b"first"));
        frame(&mut buf, |out| put_i64(out, -42));
        buf
    }

    #[test]
    fn round_trips_records_and_fields() {
        let buf = two_records();
        let mut reader = FrameReader::new(&buf[..]);
        let Frame::Record(first) = reader.next_frame().unwrap() else {
            panic!("first record")
        };
        let mut fields = Fields::new(first);
        assert_eq!(fields.bytes().unwrap(), &b"first"[..]);
        fields.finish().unwrap();
        let Frame::Record(second) = reader.next_frame().unwrap() else {
            panic!("second record")
        };
        assert_eq!(Fields::new(second).i64().unwrap(), -42);
        assert!(matches!(reader.next_frame().unwrap(), Frame::End));
        assert_eq!(reader.good_end, buf.len() as u64);
    }

    #[test]
    fn every_truncation_of_the_last_record_is_detected() {
        let buf = two_records();
        let first_len = HEADER_LEN + 4 + 5;
        for cut in first_len + 1..buf.len() {
            let mut reader = FrameReader::new(&buf[..cut]);
            assert!(matches!(reader.next_frame().unwrap(), Frame::Record(_)));
            assert!(
                matches!(reader.next_frame().unwrap(), Frame::Damaged(_)),
                "cut at {cut}"
            );
            assert_eq!(reader.good_end, first_len as u64);
        }
    }

    #[test]
    fn flipped_bits_and_absurd_lengths_are_detected() {
        let mut buf = two_records();
        let last = buf.len() - 1;
        buf[last] ^= 0x40;
        let mut reader = FrameReader::new(&buf[..]);
        assert!(matches!(reader.next_frame().unwrap(), Frame::Record(_)));
        assert!(matches!(reader.next_frame().unwrap(), Frame::Damaged(_)));

        let huge = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
        assert!(matches!(
            FrameReader::new(&huge[..]).next_frame().unwrap(),
            Frame::Damaged(_)
        ));
    }

    #[test]
    fn fields_never_read_past_the_payload() {
        let mut fields = Fields::new(Bytes::from_static(&[5, 0, 0, 0, b'a']));
        assert!(fields.bytes().is_err());
        let mut fields = Fields::new(Bytes::from_static(&[1, 2, 3]));
        assert!(fields.i64().is_err());
        let fields = Fields::new(Bytes::from_static(&[1]));
        assert!(fields.finish().is_err());
    }
}
