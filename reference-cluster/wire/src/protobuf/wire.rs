//! The protobuf wire format, read defensively: every length is checked against the bytes
//! actually left before anything is sliced, so a lying length is an error, never a panic or a
//! large allocation.

/// Wire types (the low three bits of a field key).
pub const VARINT: u8 = 0;
pub const FIXED64: u8 = 1;
pub const LEN: u8 = 2;
pub const FIXED32: u8 = 5;

/// One field as it appeared on the wire.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    Fixed32(u32),
}

impl Value<'_> {
    pub fn wire_type(&self) -> u8 {
        match self {
            Value::Varint(_) => VARINT,
            Value::Fixed64(_) => FIXED64,
            Value::Len(_) => LEN,
            Value::Fixed32(_) => FIXED32,
        }
    }
}

/// Iterates over the fields of one message.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// The next `(tag, value)`, `None` at the end of the message. Groups (wire types 3 and 4,
    /// deprecated and never used by Kubernetes) are rejected.
    pub fn next_field(&mut self) -> Option<Result<(u32, Value<'a>), String>> {
        if self.buf.is_empty() {
            return None;
        }
        Some(self.read_field())
    }

    fn read_field(&mut self) -> Result<(u32, Value<'a>), String> {
        let key = self.varint()?;
        let tag = u32::try_from(key >> 3)
            .ok()
            .filter(|t| (1..=0x1FFF_FFFF).contains(t))
            .ok_or_else(|| format!("invalid field number {}", key >> 3))?;
        let value = match (key & 7) as u8 {
            VARINT => Value::Varint(self.varint()?),
            FIXED64 => Value::Fixed64(self.fixed64()?),
            LEN => {
                let len = self.varint()?;
                let len = usize::try_from(len)
                    .ok()
                    .filter(|l| *l <= self.buf.len())
                    .ok_or_else(|| {
                        format!(
                            "field {tag} claims {len} bytes but only {} remain",
                            self.buf.len()
                        )
                    })?;
                Value::Len(self.take(len))
            }
            FIXED32 => Value::Fixed32(u32::from_le_bytes(self.take_array()?)),
            other => return Err(format!("unsupported wire type {other} for field {tag}")),
        };
        Ok((tag, value))
    }

    /// A base-128 varint of at most ten bytes.
    pub fn varint(&mut self) -> Result<u64, String> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let Some((&byte, rest)) = self.buf.split_first() else {
                return Err("truncated varint".into());
            };
            self.buf = rest;
            if i == 9 && byte > 1 {
                return Err("varint overflows 64 bits".into());
            }
            value |= u64::from(byte & 0x7F) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    /// A little-endian 64-bit value (an element of a packed `double` field).
    pub fn fixed64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take_array()?))
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.buf.split_at(n.min(self.buf.len()));
        self.buf = rest;
        head
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        if self.buf.len() < N {
            return Err(format!("truncated {N}-byte fixed-width value"));
        }
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N));
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(buf: &[u8]) -> Result<Vec<(u32, Value<'_>)>, String> {
        let mut r = Reader::new(buf);
        let mut out = Vec::new();
        while let Some(f) = r.next_field() {
            out.push(f?);
        }
        Ok(out)
    }

    #[test]
    fn reads_every_wire_type() {
        let buf = [
            0x08, 0x96, 0x01, // 1: varint 150
            0x11, 1, 0, 0, 0, 0, 0, 0, 0, // 2: fixed64 1
            0x1A, 0x02, b'h', b'i', // 3: "hi"
            0x25, 2, 0, 0, 0, // 4: fixed32 2
        ];
        assert_eq!(
            fields(&buf).unwrap(),
            vec![
                (1, Value::Varint(150)),
                (2, Value::Fixed64(1)),
                (3, Value::Len(b"hi")),
                (4, Value::Fixed32(2)),
            ]
        );
    }

    #[test]
    fn ten_byte_varints_hold_negative_numbers() {
        let mut buf = vec![0x08];
        buf.extend([0xFF; 9]);
        buf.push(0x01);
        assert_eq!(fields(&buf).unwrap(), vec![(1, Value::Varint(u64::MAX))]);
    }

    #[test]
    fn truncated_input_is_an_error() {
        for buf in [
            &[0x08][..],             // key without its varint
            &[0x08, 0x96][..],       // varint cut short
            &[0x11, 1, 2, 3][..],    // fixed64 cut short
            &[0x25, 1][..],          // fixed32 cut short
            &[0x1A][..],             // length missing
            &[0x1A, 0x05, b'a'][..], // fewer bytes than the length says
        ] {
            assert!(fields(buf).is_err(), "{buf:?} should not decode");
        }
    }

    #[test]
    fn overlong_and_oversized_varints_are_errors() {
        let mut eleven = vec![0x08];
        eleven.extend([0x80; 10]);
        eleven.push(0x01);
        let err = fields(&eleven).unwrap_err();
        assert!(err.contains("varint"), "{err}");

        let mut overflow = vec![0x08];
        overflow.extend([0xFF; 9]);
        overflow.push(0x02);
        assert!(fields(&overflow).unwrap_err().contains("overflows"));
    }

    #[test]
    fn a_lying_length_is_rejected_before_slicing() {
        // Claims 2^62 bytes: must fail without allocating or panicking.
        let mut buf = vec![0x0A];
        buf.extend([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40]);
        buf.extend(b"abc");
        let err = fields(&buf).unwrap_err();
        assert!(err.contains("claims"), "{err}");
    }

    #[test]
    fn groups_and_field_zero_are_rejected() {
        assert!(fields(&[0x0B]).unwrap_err().contains("wire type 3"));
        assert!(fields(&[0x0C]).unwrap_err().contains("wire type 4"));
        assert!(fields(&[0x00, 0x01])
            .unwrap_err()
            .contains("field number 0"));
    }
}
