//! Deterministic test data: every (seed, device) pair has its own byte stream, cheap to
//! generate and different everywhere, so a lost, duplicated, reordered or misplaced block
//! shows up as a mismatch.

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// `len` bytes of the stream of `device` under `seed`.
pub fn stream(seed: u64, device: u32, len: usize) -> Vec<u8> {
    let key = splitmix(seed ^ (u64::from(device) << 40));
    let mut out = Vec::with_capacity(len + 8);
    let mut word = 0u64;
    while out.len() < len {
        out.extend_from_slice(&splitmix(key ^ word).to_le_bytes());
        word += 1;
    }
    out.truncate(len);
    out
}

/// The first offset where `got` differs from `want`, or where one of them ends early.
pub fn first_difference(want: &[u8], got: &[u8]) -> Option<usize> {
    let n = want.len().min(got.len());
    match want[..n].iter().zip(&got[..n]).position(|(a, b)| a != b) {
        Some(i) => Some(i),
        None if want.len() != got.len() => Some(n),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_differ_and_repeat() {
        assert_eq!(stream(1, 0, 100), stream(1, 0, 100));
        assert_ne!(stream(1, 0, 100), stream(1, 1, 100));
        assert_ne!(stream(1, 0, 100), stream(2, 0, 100));
        assert_eq!(&stream(1, 0, 100)[..37], &stream(1, 0, 37)[..]);
        assert_eq!(first_difference(b"abc", b"abc"), None);
        assert_eq!(first_difference(b"abc", b"abd"), Some(2));
        assert_eq!(first_difference(b"abc", b"ab"), Some(2));
    }
}
