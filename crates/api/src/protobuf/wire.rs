//! The protobuf wire format, read side: a cursor that yields `(field number, value)`
//! pairs and refuses anything malformed instead of guessing.
//!
//! Only what Kubernetes' generated messages use is accepted: varints, fixed 64- and
//! 32-bit values and length-delimited bytes. Groups (wire types 3 and 4) are deprecated
//! and never produced by `go-to-protobuf`, so they are rejected rather than skipped.

use super::ProtobufError;

/// Varints are at most ten bytes long (64 bits in groups of seven).
const MAX_VARINT_LEN: usize = 10;

/// One field's value as it appears on the wire, before the schema gives it a meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WireValue<'a> {
    /// Wire type 0: integers, booleans and enums.
    Varint(u64),
    /// Wire type 1: `fixed64`, `sfixed64`, `double`.
    Fixed64(u64),
    /// Wire type 2: strings, bytes, embedded messages and packed repeated scalars.
    Bytes(&'a [u8]),
    /// Wire type 5: `fixed32`, `sfixed32`, `float`.
    Fixed32(u32),
}

impl WireValue<'_> {
    /// The wire type number, for error messages.
    pub(super) fn wire_type(&self) -> u8 {
        match self {
            WireValue::Varint(_) => 0,
            WireValue::Fixed64(_) => 1,
            WireValue::Bytes(_) => 2,
            WireValue::Fixed32(_) => 5,
        }
    }
}

/// A cursor over one message's bytes.
#[derive(Debug)]
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// The message being read, named in errors.
    message: &'static str,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8], message: &'static str) -> Self {
        Reader {
            buf,
            pos: 0,
            message,
        }
    }

    /// The next field, or `None` at the clean end of the message.
    pub(super) fn next_field(&mut self) -> Result<Option<(u32, WireValue<'a>)>, ProtobufError> {
        if self.pos == self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let wire_type = (key & 0x7) as u8;
        let number = key >> 3;
        // Field numbers are 29 bits; zero is reserved.
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return Err(ProtobufError::InvalidFieldNumber {
                message: self.message,
                number,
            });
        }
        let number = number as u32;
        let value = match wire_type {
            0 => WireValue::Varint(self.varint()?),
            1 => WireValue::Fixed64(u64::from_le_bytes(self.array::<8>()?)),
            2 => {
                let len = self.varint()?;
                WireValue::Bytes(self.take(len)?)
            }
            5 => WireValue::Fixed32(u32::from_le_bytes(self.array::<4>()?)),
            other => {
                return Err(ProtobufError::UnsupportedWireType {
                    message: self.message,
                    number,
                    wire_type: other,
                });
            }
        };
        Ok(Some((number, value)))
    }

    /// Reads a base-128 varint, least significant group first.
    pub(super) fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut value: u64 = 0;
        for i in 0..MAX_VARINT_LEN {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(self.truncated());
            };
            self.pos += 1;
            let bits = u64::from(byte & 0x7f);
            // The tenth byte may only carry the single remaining bit.
            if i == MAX_VARINT_LEN - 1 && byte > 1 {
                return Err(ProtobufError::VarintOverflow {
                    message: self.message,
                });
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtobufError::VarintOverflow {
            message: self.message,
        })
    }

    /// Whether every byte has been read.
    pub(super) fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], ProtobufError> {
        let remaining = self.buf.len() - self.pos;
        let len = usize::try_from(len).map_err(|_| self.truncated())?;
        if len > remaining {
            return Err(self.truncated());
        }
        let bytes = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtobufError> {
        let bytes = self.take(N as u64)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn truncated(&self) -> ProtobufError {
        ProtobufError::Truncated {
            message: self.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(bytes: &[u8]) -> Result<Vec<(u32, WireValue<'_>)>, ProtobufError> {
        let mut reader = Reader::new(bytes, "Test");
        let mut out = Vec::new();
        while let Some(field) = reader.next_field()? {
            out.push(field);
        }
        Ok(out)
    }

    #[test]
    fn reads_every_supported_wire_type() {
        let bytes = [
            0x08, 0x96, 0x01, // 1: varint 150
            0x11, 1, 0, 0, 0, 0, 0, 0, 0x80, // 2: fixed64
            0x1a, 0x02, b'h', b'i', // 3: bytes "hi"
            0x25, 0x78, 0x56, 0x34, 0x12, // 4: fixed32
        ];
        assert_eq!(
            fields(&bytes),
            Ok(vec![
                (1, WireValue::Varint(150)),
                (2, WireValue::Fixed64(0x8000_0000_0000_0001)),
                (3, WireValue::Bytes(b"hi")),
                (4, WireValue::Fixed32(0x1234_5678)),
            ])
        );
    }

    #[test]
    fn reads_the_largest_varint_and_rejects_longer_ones() {
        let mut max = vec![0x08];
        max.extend([0xff; 9]);
        max.push(0x01);
        assert_eq!(fields(&max), Ok(vec![(1, WireValue::Varint(u64::MAX))]));

        let mut too_big = vec![0x08];
        too_big.extend([0xff; 9]);
        too_big.push(0x02);
        assert_eq!(
            fields(&too_big),
            Err(ProtobufError::VarintOverflow { message: "Test" })
        );

        let mut too_long = vec![0x08];
        too_long.extend([0x80; 10]);
        too_long.push(0x00);
        assert_eq!(
            fields(&too_long),
            Err(ProtobufError::VarintOverflow { message: "Test" })
        );
    }

    #[test]
    fn rejects_truncation_everywhere() {
        let truncated = ProtobufError::Truncated { message: "Test" };
        for bytes in [
            &[0x08][..],                                                   // key without value
            &[0x08, 0x80],                                                 // unfinished varint
            &[0x80],                                                       // unfinished key
            &[0x0a, 0x05, b'a'],                                           // short bytes
            &[0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], // huge length
            &[0x09, 1, 2, 3],                                              // short fixed64
            &[0x0d, 1, 2],                                                 // short fixed32
        ] {
            assert_eq!(fields(bytes), Err(truncated.clone()), "{bytes:?}");
        }
    }

    #[test]
    fn rejects_groups_and_field_zero() {
        assert_eq!(
            fields(&[0x0b]),
            Err(ProtobufError::UnsupportedWireType {
                message: "Test",
                number: 1,
                wire_type: 3
            })
        );
        assert_eq!(
            fields(&[0x0e]),
            Err(ProtobufError::UnsupportedWireType {
                message: "Test",
                number: 1,
                wire_type: 6
            })
        );
        assert_eq!(
            fields(&[0x00, 0x00]),
            Err(ProtobufError::InvalidFieldNumber {
                message: "Test",
                number: 0
            })
        );
        // A key whose number does not fit in 29 bits.
        assert_eq!(
            fields(&[0xf8, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00]),
            Err(ProtobufError::InvalidFieldNumber {
                message: "Test",
                number: 0x1_ffff_ffff
            })
        );
    }
}
