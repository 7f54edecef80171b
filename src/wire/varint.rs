//! The integers and byte strings of the wire's own layouts, and their errors.

#[cold]
pub(super) fn bad_flags(of: &str, flags: u8) -> String {
    format!("bad {of} flags {flags:#x}")
}

#[cold]
pub(super) fn short(n: u64, left: usize) -> String {
    format!("message cut short: {n} bytes wanted, {left} left")
}

/// Appends `n` as an unsigned LEB128 varint: seven bits a byte, low ones first, the top bit
/// set on every byte but the last.
#[inline]
pub(super) fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    if n < 0x80 {
        out.push(n as u8);
        return;
    }
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads a varint that [`put_varint`] wrote.
#[inline]
pub(super) fn varint_of(bytes: &mut &[u8]) -> Result<u64, String> {
    // Most are one byte: a small length, ticket or runtime.
    match bytes.split_first() {
        Some((&b, rest)) if b < 0x80 => {
            *bytes = rest;
            Ok(b.into())
        }
        _ => long_varint_of(bytes),
    }
}

pub(super) fn long_varint_of(bytes: &mut &[u8]) -> Result<u64, String> {
    let mut n = 0u64;
    for i in 0..10 {
        let &b = bytes
            .get(i)
            .ok_or_else(|| short(i as u64 + 1, bytes.len()))?;
        // The tenth byte holds the top bit of a u64 and ends it.
        if i == 9 && b > 1 {
            return Err("a varint overflows 64 bits".into());
        }
        n |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            *bytes = &bytes[i + 1..];
            return Ok(n);
        }
    }
    unreachable!("the tenth byte ends a varint or is refused")
}

#[inline]
pub(super) fn byte_of(bytes: &mut &[u8]) -> Result<u8, String> {
    let (&head, rest) = bytes.split_first().ok_or_else(|| short(1, 0))?;
    *bytes = rest;
    Ok(head)
}

/// A varint length and that many bytes.
#[inline]
pub(super) fn slice_of<'a>(bytes: &mut &'a [u8]) -> Result<&'a [u8], String> {
    let n = varint_of(bytes)?;
    let n = usize::try_from(n)
        .ok()
        .filter(|&n| n <= bytes.len())
        .ok_or_else(|| short(n, bytes.len()))?;
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Ok(head)
}

/// A signed difference as an unsigned varint's value: small either way stays small.
#[inline]
pub(super) fn zigzag(n: u64) -> u64 {
    (n << 1) ^ ((n as i64 >> 63) as u64)
}

#[inline]
pub(super) fn unzigzag(n: u64) -> u64 {
    (n >> 1) ^ (n & 1).wrapping_neg()
}
