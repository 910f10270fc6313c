//! Key-range arithmetic shared by the backends.

/// The exclusive upper bound of all keys starting with `prefix`: the prefix with its last
/// byte below 0xff incremented and everything after it dropped. `None` means "no upper
/// bound" (the empty prefix, or a prefix of only 0xff bytes).
///
/// This is what makes prefix isolation exact: the range for `/a/` is `[/a/, /a0)`, which
/// can never contain `/ab`.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The smallest key strictly greater than `key`: the key followed by a zero byte.
pub fn key_successor(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_cases() {
        let cases: &[(&[u8], Option<&[u8]>)] = &[
            (b"/a/", Some(b"/a0")),
            (b"a", Some(b"b")),
            (b"a\xff", Some(b"b")),
            (b"\xff\xff", None),
            (b"", None),
        ];
        for (prefix, want) in cases {
            assert_eq!(prefix_end(prefix).as_deref(), *want, "prefix {prefix:?}");
        }
    }

    #[test]
    fn prefix_isolation() {
        let end = prefix_end(b"/a/").expect("bounded");
        assert!(
            b"/ab".as_slice() >= end.as_slice(),
            "/ab must fall outside [/a/, /a0)"
        );
        assert!(b"/a/x".as_slice() < end.as_slice());
    }

    #[test]
    fn successor_is_next_key() {
        assert_eq!(key_successor(b"k"), b"k\0".to_vec());
        assert!(key_successor(b"k").as_slice() > b"k".as_slice());
        assert!(key_successor(b"k").as_slice() < b"k\x01".as_slice());
    }
}
