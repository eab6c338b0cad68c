//! SPDY/3.1 framing as Kubernetes' streaming connections use it (client-go and the kubelet speak
//! it through moby/spdystream and Go's SPDY framer): control and data frames, and the header
//! blocks of SYN_STREAM, SYN_REPLY and HEADERS, which are one zlib stream per direction
//! compressed with the SPDY/3 dictionary and flushed after every block.
//!
//! Flow control: spdystream neither sends WINDOW_UPDATE nor honours one, so peers that talk to
//! it do not either; SETTINGS and WINDOW_UPDATE are decoded and left to the caller to ignore.

use std::sync::OnceLock;

use bytes::{Buf, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

/// The only protocol version served.
pub const VERSION: u16 = 3;
/// FLAG_FIN on SYN_STREAM, SYN_REPLY, HEADERS and DATA: the sender's half of the stream ends.
pub const FLAG_FIN: u8 = 0x01;
/// FLAG_UNIDIRECTIONAL on SYN_STREAM.
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;

/// RST_STREAM status codes.
pub const RST_PROTOCOL_ERROR: u32 = 1;
pub const RST_REFUSED_STREAM: u32 = 3;
pub const RST_CANCEL: u32 = 5;

/// Control frame types.
const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// The longest payload a frame's 24-bit length can announce.
pub const MAX_FRAME_PAYLOAD: usize = (1 << 24) - 1;
/// The most a header block may inflate to; far above what port-forward sends, low enough that
/// a hostile peer cannot make us allocate without bound.
const MAX_HEADER_BLOCK: usize = 1 << 20;

/// Header names (lowercase, as SPDY requires) and values; several values of one name are
/// joined by NUL bytes on the wire and kept joined here.
pub type Headers = Vec<(String, String)>;

/// One frame, unpacked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated_to: u32,
        priority: u8,
        slot: u8,
        flags: u8,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings {
        flags: u8,
        /// (flags, id, value) of each entry.
        entries: Vec<(u8, u32, u32)>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        flags: u8,
        data: Bytes,
    },
    /// A control frame of a type SPDY/3.1 does not define, which receivers must ignore.
    Unknown {
        frame_type: u16,
    },
}

/// A frame that cannot be read or written; the connection cannot continue after one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpdyError(pub String);

impl std::fmt::Display for SpdyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SpdyError {}

fn err<T>(message: impl Into<String>) -> Result<T, SpdyError> {
    Err(SpdyError(message.into()))
}

/// The SPDY/3 header compression dictionary (draft 3, section 2.6.10.1): these words, each
/// after its 4-byte big-endian length, then the tail as it is.
const DICTIONARY_WORDS: [&str; 65] = [
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

const DICTIONARY_TAIL: &str = "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

/// The 1423 bytes of the SPDY/3 dictionary.
pub fn dictionary() -> &'static [u8] {
    static DICT: OnceLock<Vec<u8>> = OnceLock::new();
    DICT.get_or_init(|| {
        let mut d = Vec::with_capacity(1423);
        for w in DICTIONARY_WORDS {
            d.extend_from_slice(&(w.len() as u32).to_be_bytes());
            d.extend_from_slice(w.as_bytes());
        }
        d.extend_from_slice(DICTIONARY_TAIL.as_bytes());
        d
    })
}

/// Writes frames; owns the sending direction's header compressor.
pub struct Encoder {
    deflate: Compress,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    pub fn new() -> Encoder {
        let mut deflate = Compress::new(Compression::best(), true);
        deflate
            .set_dictionary(dictionary())
            .expect("a fresh zlib stream accepts a dictionary");
        Encoder { deflate }
    }

    /// Appends `frame` to `out`.
    pub fn encode(&mut self, frame: &Frame, out: &mut Vec<u8>) -> Result<(), SpdyError> {
        match frame {
            Frame::SynStream {
                stream_id,
                associated_to,
                priority,
                slot,
                flags,
                headers,
            } => {
                let block = self.header_block(headers)?;
                let mut p = Vec::with_capacity(10 + block.len());
                p.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                p.extend_from_slice(&(associated_to & 0x7fff_ffff).to_be_bytes());
                p.push((priority & 0x07) << 5);
                p.push(*slot);
                p.extend_from_slice(&block);
                control(out, SYN_STREAM, *flags, &p)
            }
            Frame::SynReply {
                stream_id,
                flags,
                headers,
            } => self.with_headers(out, SYN_REPLY, *stream_id, *flags, headers),
            Frame::Headers {
                stream_id,
                flags,
                headers,
            } => self.with_headers(out, HEADERS, *stream_id, *flags, headers),
            Frame::RstStream { stream_id, status } => control(
                out,
                RST_STREAM,
                0,
                &two_words(*stream_id & 0x7fff_ffff, *status),
            ),
            Frame::Settings { flags, entries } => {
                let mut p = Vec::with_capacity(4 + 8 * entries.len());
                p.extend_from_slice(&(entries.len() as u32).to_be_bytes());
                for (f, id, value) in entries {
                    p.extend_from_slice(
                        &((u32::from(*f) << 24) | (id & 0x00ff_ffff)).to_be_bytes(),
                    );
                    p.extend_from_slice(&value.to_be_bytes());
                }
                control(out, SETTINGS, *flags, &p)
            }
            Frame::Ping { id } => control(out, PING, 0, &id.to_be_bytes()),
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => control(
                out,
                GOAWAY,
                0,
                &two_words(*last_good_stream_id & 0x7fff_ffff, *status),
            ),
            Frame::WindowUpdate { stream_id, delta } => control(
                out,
                WINDOW_UPDATE,
                0,
                &two_words(*stream_id & 0x7fff_ffff, *delta & 0x7fff_ffff),
            ),
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                if data.len() > MAX_FRAME_PAYLOAD {
                    return err(format!(
                        "a DATA frame carries at most {MAX_FRAME_PAYLOAD} bytes, not {}",
                        data.len()
                    ));
                }
                out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                out.push(*flags);
                out.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
                out.extend_from_slice(data);
                Ok(())
            }
            Frame::Unknown { frame_type } => err(format!(
                "frame type {frame_type} is not part of SPDY/3.1 and cannot be sent"
            )),
        }
    }

    fn with_headers(
        &mut self,
        out: &mut Vec<u8>,
        frame_type: u16,
        stream_id: u32,
        flags: u8,
        headers: &Headers,
    ) -> Result<(), SpdyError> {
        let block = self.header_block(headers)?;
        let mut p = Vec::with_capacity(4 + block.len());
        p.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
        p.extend_from_slice(&block);
        control(out, frame_type, flags, &p)
    }

    /// The compressed name/value block of `headers`.
    fn header_block(&mut self, headers: &Headers) -> Result<Vec<u8>, SpdyError> {
        let mut raw = Vec::new();
        raw.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        for (name, value) in headers {
            for s in [name.as_bytes(), value.as_bytes()] {
                raw.extend_from_slice(&(s.len() as u32).to_be_bytes());
                raw.extend_from_slice(s);
            }
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let start = self.deflate.total_in();
        loop {
            let consumed = (self.deflate.total_in() - start) as usize;
            if out.len() == out.capacity() {
                out.reserve(256);
            }
            self.deflate
                .compress_vec(&raw[consumed..], &mut out, FlushCompress::Sync)
                .map_err(|e| SpdyError(format!("compressing a header block: {e}")))?;
            let consumed = (self.deflate.total_in() - start) as usize;
            // A sync flush is complete once all input is in and zlib left room in the output.
            if consumed == raw.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

fn two_words(a: u32, b: u32) -> [u8; 8] {
    let mut p = [0u8; 8];
    p[..4].copy_from_slice(&a.to_be_bytes());
    p[4..].copy_from_slice(&b.to_be_bytes());
    p
}

fn control(out: &mut Vec<u8>, frame_type: u16, flags: u8, payload: &[u8]) -> Result<(), SpdyError> {
    if payload.len() > MAX_FRAME_PAYLOAD {
        return err(format!(
            "a control frame carries at most {MAX_FRAME_PAYLOAD} bytes, not {}",
            payload.len()
        ));
    }
    out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
    out.extend_from_slice(&frame_type.to_be_bytes());
    out.push(flags);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(payload);
    Ok(())
}

/// Reads frames; owns the receiving direction's header decompressor.
pub struct Decoder {
    inflate: Decompress,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder {
            inflate: Decompress::new(true),
        }
    }

    /// Takes the first whole frame off `buf`, `None` while it is incomplete.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, SpdyError> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([0, buf[5], buf[6], buf[7]]) as usize;
        if buf.len() < 8 + len {
            return Ok(None);
        }
        let head = buf.split_to(8);
        let mut payload = buf.split_to(len).freeze();
        let flags = head[4];
        if head[0] & 0x80 == 0 {
            let stream_id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            if stream_id == 0 {
                return err("a DATA frame names stream 0");
            }
            return Ok(Some(Frame::Data {
                stream_id,
                flags,
                data: payload,
            }));
        }
        let version = u16::from_be_bytes([head[0], head[1]]) & 0x7fff;
        if version != VERSION {
            return err(format!(
                "the peer speaks SPDY version {version}; only SPDY/3.1 is served"
            ));
        }
        let frame_type = u16::from_be_bytes([head[2], head[3]]);
        let need = |n: usize, what: &str| -> Result<(), SpdyError> {
            if len < n {
                err(format!("a {what} frame of {len} bytes is too short"))
            } else {
                Ok(())
            }
        };
        let frame = match frame_type {
            SYN_STREAM => {
                need(10, "SYN_STREAM")?;
                let stream_id = payload.get_u32() & 0x7fff_ffff;
                let associated_to = payload.get_u32() & 0x7fff_ffff;
                let priority = payload.get_u8() >> 5;
                let slot = payload.get_u8();
                Frame::SynStream {
                    stream_id,
                    associated_to,
                    priority,
                    slot,
                    flags,
                    headers: self.headers(&payload)?,
                }
            }
            SYN_REPLY | HEADERS => {
                need(4, "SYN_REPLY or HEADERS")?;
                let stream_id = payload.get_u32() & 0x7fff_ffff;
                let headers = self.headers(&payload)?;
                if frame_type == SYN_REPLY {
                    Frame::SynReply {
                        stream_id,
                        flags,
                        headers,
                    }
                } else {
                    Frame::Headers {
                        stream_id,
                        flags,
                        headers,
                    }
                }
            }
            RST_STREAM => {
                need(8, "RST_STREAM")?;
                Frame::RstStream {
                    stream_id: payload.get_u32() & 0x7fff_ffff,
                    status: payload.get_u32(),
                }
            }
            SETTINGS => {
                need(4, "SETTINGS")?;
                let count = payload.get_u32() as usize;
                if payload.len() < count.saturating_mul(8) {
                    return err(format!(
                        "a SETTINGS frame announces {count} entries but carries {} bytes",
                        payload.len()
                    ));
                }
                let entries = (0..count)
                    .map(|_| {
                        let w = payload.get_u32();
                        ((w >> 24) as u8, w & 0x00ff_ffff, payload.get_u32())
                    })
                    .collect();
                Frame::Settings { flags, entries }
            }
            PING => {
                need(4, "PING")?;
                Frame::Ping {
                    id: payload.get_u32(),
                }
            }
            GOAWAY => {
                need(8, "GOAWAY")?;
                Frame::GoAway {
                    last_good_stream_id: payload.get_u32() & 0x7fff_ffff,
                    status: payload.get_u32(),
                }
            }
            WINDOW_UPDATE => {
                need(8, "WINDOW_UPDATE")?;
                Frame::WindowUpdate {
                    stream_id: payload.get_u32() & 0x7fff_ffff,
                    delta: payload.get_u32() & 0x7fff_ffff,
                }
            }
            other => Frame::Unknown { frame_type: other },
        };
        Ok(Some(frame))
    }

    /// Inflates one header block (the stream continues from the previous block) and parses it.
    fn headers(&mut self, compressed: &[u8]) -> Result<Headers, SpdyError> {
        let mut raw: Vec<u8> = Vec::with_capacity(compressed.len() * 4 + 64);
        let mut consumed = 0usize;
        loop {
            if raw.len() == raw.capacity() {
                raw.reserve(raw.capacity().max(256));
            }
            let (in_before, out_before) = (self.inflate.total_in(), raw.len());
            match self.inflate.decompress_vec(
                &compressed[consumed..],
                &mut raw,
                FlushDecompress::Sync,
            ) {
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.inflate.set_dictionary(dictionary()).map_err(|e| {
                        SpdyError(format!(
                            "the peer compresses headers with a dictionary other than SPDY/3's: {e}"
                        ))
                    })?;
                }
                Err(e) => return err(format!("a header block does not inflate: {e}")),
            }
            consumed += (self.inflate.total_in() - in_before) as usize;
            if raw.len() > MAX_HEADER_BLOCK {
                return err(format!(
                    "a header block inflates to more than {MAX_HEADER_BLOCK} bytes"
                ));
            }
            let progressed = self.inflate.total_in() != in_before || raw.len() != out_before;
            if consumed == compressed.len() && raw.len() < raw.capacity() || !progressed {
                break;
            }
        }
        if consumed != compressed.len() {
            return err("a header block ends in the middle of the zlib stream");
        }
        parse_block(&raw)
    }
}

/// Parses an inflated name/value block.
fn parse_block(raw: &[u8]) -> Result<Headers, SpdyError> {
    if raw.len() < 4 {
        return err("a header block is shorter than its pair count");
    }
    let count = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize;
    let mut b = &raw[4..];
    let mut word = |what: &str| -> Result<String, SpdyError> {
        if b.len() < 4 {
            return err(format!("a header block ends inside a {what} length"));
        }
        let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if b.len() - 4 < n {
            return err(format!("a header block ends inside a {what}"));
        }
        let (w, rest) = b[4..].split_at(n);
        b = rest;
        String::from_utf8(w.to_vec())
            .map_err(|_| SpdyError(format!("a header {what} is not UTF-8")))
    };
    let mut headers = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let name = word("name")?;
        let value = word("value")?;
        if name.is_empty() || name.bytes().any(|c| c.is_ascii_uppercase()) {
            return err(format!("header name {name:?} is not lowercase"));
        }
        headers.push((name, value));
    }
    Ok(headers)
}

/// The value of header `name` in `headers` (its first value when several are joined).
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.split('\0').next().unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(frames: &[Frame]) -> Vec<Frame> {
        let mut enc = Encoder::new();
        let mut wire = Vec::new();
        for f in frames {
            enc.encode(f, &mut wire).unwrap();
        }
        let mut dec = Decoder::new();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        // Byte by byte: a decoder must wait for whole frames.
        for b in wire {
            buf.extend_from_slice(&[b]);
            while let Some(f) = dec.decode(&mut buf).unwrap() {
                out.push(f);
            }
        }
        assert!(buf.is_empty());
        out
    }

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_dictionary_is_spdy3s() {
        let d = dictionary();
        assert_eq!(d.len(), 1423);
        assert_eq!(&d[..11], b"\0\0\0\x07options");
        assert!(d.ends_with(b"utf-,*,enq=0."));
        // Its Adler-32 is the DICTID Go's zlib writes into every SPDY/3 header stream.
        let mut a: u32 = 1;
        let mut b: u32 = 0;
        for &x in d {
            a = (a + u32::from(x)) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!((b << 16) | a, 0xe3c6_a7c2);
    }

    #[test]
    fn every_frame_round_trips() {
        let frames = vec![
            Frame::SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 0,
                slot: 0,
                flags: 0,
                headers: h(&[
                    ("streamtype", "error"),
                    ("port", "8080"),
                    ("requestid", "0"),
                ]),
            },
            Frame::SynStream {
                stream_id: 3,
                associated_to: 1,
                priority: 7,
                slot: 2,
                flags: FLAG_FIN | FLAG_UNIDIRECTIONAL,
                headers: h(&[("streamtype", "data"), ("port", "8080"), ("requestid", "0")]),
            },
            Frame::SynReply {
                stream_id: 1,
                flags: 0,
                headers: Vec::new(),
            },
            Frame::Headers {
                stream_id: 3,
                flags: FLAG_FIN,
                headers: h(&[("x", "a\0b")]),
            },
            Frame::Data {
                stream_id: 3,
                flags: 0,
                data: Bytes::from_static(b"GET / HTTP/1.1\r\n\r\n"),
            },
            Frame::Data {
                stream_id: 3,
                flags: FLAG_FIN,
                data: Bytes::new(),
            },
            Frame::RstStream {
                stream_id: 3,
                status: RST_CANCEL,
            },
            Frame::Settings {
                flags: 1,
                entries: vec![(0, 4, 100), (1, 7, 65536)],
            },
            Frame::Ping { id: 1 },
            Frame::GoAway {
                last_good_stream_id: 3,
                status: 0,
            },
            Frame::WindowUpdate {
                stream_id: 3,
                delta: 4096,
            },
        ];
        assert_eq!(round_trip(&frames), frames);
        assert_eq!(header(&h(&[("x", "a\0b")]), "x"), Some("a"));
    }

    #[test]
    fn wire_layout_is_spdy3s() {
        let mut wire = Vec::new();
        let mut enc = Encoder::new();
        enc.encode(&Frame::Ping { id: 7 }, &mut wire).unwrap();
        assert_eq!(wire, [0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 7]);
        wire.clear();
        enc.encode(
            &Frame::Data {
                stream_id: 5,
                flags: FLAG_FIN,
                data: Bytes::from_static(b"hi"),
            },
            &mut wire,
        )
        .unwrap();
        assert_eq!(wire, [0, 0, 0, 5, 1, 0, 0, 2, b'h', b'i']);
        wire.clear();
        enc.encode(
            &Frame::RstStream {
                stream_id: 9,
                status: RST_REFUSED_STREAM,
            },
            &mut wire,
        )
        .unwrap();
        assert_eq!(wire, [0x80, 3, 0, 3, 0, 0, 0, 8, 0, 0, 0, 9, 0, 0, 0, 3]);
        // The first header block opens a zlib stream that names the SPDY/3 dictionary.
        wire.clear();
        enc.encode(
            &Frame::SynReply {
                stream_id: 1,
                flags: 0,
                headers: Vec::new(),
            },
            &mut wire,
        )
        .unwrap();
        assert_eq!(&wire[..4], [0x80, 3, 0, 2]);
        assert_eq!(wire[12] & 0x0f, 8, "deflate");
        assert_ne!(wire[13] & 0x20, 0, "FDICT");
        assert_eq!(&wire[14..18], 0xe3c6_a7c2u32.to_be_bytes());
    }

    /// What kubectl 1.32 (client-go, moby/spdystream, Go's compress/zlib) sent for one local
    /// connection of `kubectl port-forward pod/web 18090:8080` that closed at once, captured
    /// on the wire (its SYN_REPLYs came from Python's zlib with the same dictionary): the error
    /// stream and its end, then the data stream, whose header block continues the same zlib
    /// stream, and its end.
    const KUBECTL_FRAMES: &[u8] = &[
        0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3e, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2, 0x02, 0x25, 0x3a, 0x48, 0xf9, 0x5b,
        0x04, 0x4e, 0xea, 0x16, 0x06, 0x16, 0x06, 0x0c, 0x0c, 0x0c, 0x9c, 0x45, 0x90, 0xf8, 0xca,
        0x04, 0xa5, 0x63, 0x46, 0x03, 0x70, 0x4a, 0x2c, 0x29, 0x4a, 0x4d, 0xcc, 0x85, 0x16, 0x36,
        0xac, 0xa9, 0xa0, 0xa8, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01, 0x01,
        0x00, 0x00, 0x00, 0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x1a, 0x00, 0x00, 0x00, 0x03,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x82, 0x6a, 0x46, 0x95, 0x02, 0x95, 0x43, 0x89, 0x84,
        0x8d, 0x04, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x03, 0x01, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn decodes_header_blocks_kubectl_compressed() {
        let mut dec = Decoder::new();
        let mut buf = BytesMut::from(KUBECTL_FRAMES);
        let mut seen = Vec::new();
        while let Some(f) = dec.decode(&mut buf).unwrap() {
            seen.push(match f {
                Frame::SynStream {
                    stream_id, headers, ..
                } => format!(
                    "SYN_STREAM {stream_id} streamtype={} port={} requestid={} ({} headers)",
                    header(&headers, "streamtype").unwrap_or("-"),
                    header(&headers, "port").unwrap_or("-"),
                    header(&headers, "requestid").unwrap_or("-"),
                    headers.len()
                ),
                Frame::Data {
                    stream_id,
                    flags,
                    data,
                } => format!("DATA {stream_id} flags={flags} len={}", data.len()),
                other => panic!("{other:?}"),
            });
        }
        assert!(buf.is_empty());
        assert_eq!(
            seen,
            [
                "SYN_STREAM 1 streamtype=error port=8080 requestid=0 (3 headers)",
                "DATA 1 flags=1 len=0",
                "SYN_STREAM 3 streamtype=data port=8080 requestid=0 (3 headers)",
                "DATA 3 flags=1 len=0",
            ]
        );
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        let mut dec = Decoder::new();
        let mut buf = BytesMut::from(&[0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1][..]);
        assert!(dec.decode(&mut buf).unwrap_err().0.contains("version 2"));
        let mut buf = BytesMut::from(&[0x80, 3, 0, 3, 0, 0, 0, 4, 0, 0, 0, 1][..]);
        assert!(dec.decode(&mut buf).unwrap_err().0.contains("too short"));
        // A header block that is not zlib at all.
        let mut buf = BytesMut::from(&[0x80, 3, 0, 2, 0, 0, 0, 8, 0, 0, 0, 1, 1, 2, 3, 4][..]);
        assert!(Decoder::new().decode(&mut buf).is_err());
        // Unknown control types are skipped, not fatal.
        let mut buf = BytesMut::from(&[0x80, 3, 0, 0x20, 0, 0, 0, 1, 9][..]);
        assert_eq!(
            Decoder::new().decode(&mut buf).unwrap(),
            Some(Frame::Unknown { frame_type: 0x20 })
        );
    }
}
