//! The hash ext4 gives directory entry names (the htree key), which also
//! decides the order in which the kernel's readdir returns the entries of
//! an indexed directory and of any one-block directory when the
//! filesystem has `dir_index`.
//!
//! Three functions, picked by the superblock's `s_def_hash_version`, each
//! with a signed and an unsigned variant (how the name's bytes are widened
//! to 32 bits; `s_flags` bit 0x2 asks for unsigned, and mke2fs on x86
//! records signed): the legacy "dx hack" hash, half MD4 (the default) and
//! TEA. Half MD4 and TEA start from the superblock's `s_hash_seed` (or the
//! MD4 initial values when the seed is all zero), feed the name in chunks
//! of 32 (MD4) or 16 (TEA) bytes packed into 32-bit words padded with the
//! name's length, and keep two words of the state: the major hash (its
//! lowest bit cleared) and the minor hash.

/// Which hash, from `s_def_hash_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    /// 0: the legacy hash.
    Legacy,
    /// 1: half MD4.
    HalfMd4,
    /// 2: TEA.
    Tea,
}

impl HashKind {
    /// The hash of `s_def_hash_version`, if ebsim knows it.
    pub fn from_version(v: u8) -> Option<HashKind> {
        match v {
            0 | 3 => Some(HashKind::Legacy),
            1 | 4 => Some(HashKind::HalfMd4),
            2 | 5 => Some(HashKind::Tea),
            _ => None,
        }
    }
}

/// The seed words of `s_hash_seed` (little-endian), or the MD4 initial
/// state when it is all zero.
pub fn seed_words(seed: &[u8; 16]) -> [u32; 4] {
    let w: [u32; 4] = std::array::from_fn(|i| {
        u32::from_le_bytes([
            seed[4 * i],
            seed[4 * i + 1],
            seed[4 * i + 2],
            seed[4 * i + 3],
        ])
    });
    if w.iter().all(|&x| x == 0) {
        [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476]
    } else {
        w
    }
}

/// A byte of the name as the C compiler widens it.
fn widen(b: u8, unsigned: bool) -> u32 {
    if unsigned {
        u32::from(b)
    } else {
        i32::from(b as i8) as u32
    }
}

/// Packs up to `4 * words` bytes of `msg` into words, big-endian within
/// a word, padded with the length pattern.
fn pack(msg: &[u8], words: usize, unsigned: bool) -> [u32; 8] {
    let total = msg.len() as u32;
    let mut pad = total | (total << 8);
    pad |= pad << 16;
    let mut out = [pad; 8];
    let take = msg.len().min(words * 4);
    let mut val = pad;
    let mut w = 0;
    for (i, &b) in msg[..take].iter().enumerate() {
        val = widen(b, unsigned).wrapping_add(val << 8);
        if i % 4 == 3 {
            out[w] = val;
            w += 1;
            val = pad;
        }
    }
    if w < words {
        out[w] = val;
    }
    out
}

fn half_md4(state: &mut [u32; 4], x: &[u32; 8]) {
    const K2: u32 = 0o13240474631;
    const K3: u32 = 0o15666365641;
    let f = |x: u32, y: u32, z: u32| z ^ (x & (y ^ z));
    let g = |x: u32, y: u32, z: u32| (x & y).wrapping_add((x ^ y) & z);
    let h = |x: u32, y: u32, z: u32| x ^ y ^ z;
    let [mut a, mut b, mut c, mut d] = *state;
    // Each step: v = rotl(v + fn(next three) + word, shift), the four
    // registers taking turns.
    macro_rules! step {
        ($fun:expr, $v:ident, $p:ident, $q:ident, $r:ident, $w:expr, $s:expr) => {{
            $v = $v
                .wrapping_add($fun($p, $q, $r))
                .wrapping_add($w)
                .rotate_left($s);
        }};
    }
    let round1 = [
        (0usize, 3u32),
        (1, 7),
        (2, 11),
        (3, 19),
        (4, 3),
        (5, 7),
        (6, 11),
        (7, 19),
    ];
    for &(i, s) in &round1 {
        match i % 4 {
            0 => step!(f, a, b, c, d, x[i], s),
            1 => step!(f, d, a, b, c, x[i], s),
            2 => step!(f, c, d, a, b, x[i], s),
            _ => step!(f, b, c, d, a, x[i], s),
        }
    }
    let round2 = [
        (1usize, 3u32),
        (3, 5),
        (5, 9),
        (7, 13),
        (0, 3),
        (2, 5),
        (4, 9),
        (6, 13),
    ];
    for (n, &(i, s)) in round2.iter().enumerate() {
        let w = x[i].wrapping_add(K2);
        match n % 4 {
            0 => step!(g, a, b, c, d, w, s),
            1 => step!(g, d, a, b, c, w, s),
            2 => step!(g, c, d, a, b, w, s),
            _ => step!(g, b, c, d, a, w, s),
        }
    }
    let round3 = [
        (3usize, 3u32),
        (7, 9),
        (2, 11),
        (6, 15),
        (1, 3),
        (5, 9),
        (0, 11),
        (4, 15),
    ];
    for (n, &(i, s)) in round3.iter().enumerate() {
        let w = x[i].wrapping_add(K3);
        match n % 4 {
            0 => step!(h, a, b, c, d, w, s),
            1 => step!(h, d, a, b, c, w, s),
            2 => step!(h, c, d, a, b, w, s),
            _ => step!(h, b, c, d, a, w, s),
        }
    }
    state[0] = state[0].wrapping_add(a);
    state[1] = state[1].wrapping_add(b);
    state[2] = state[2].wrapping_add(c);
    state[3] = state[3].wrapping_add(d);
}

fn tea(state: &mut [u32; 4], x: &[u32; 8]) {
    const DELTA: u32 = 0x9E37_79B9;
    let (mut b0, mut b1) = (state[0], state[1]);
    let (a, b, c, d) = (x[0], x[1], x[2], x[3]);
    let mut sum: u32 = 0;
    for _ in 0..16 {
        sum = sum.wrapping_add(DELTA);
        b0 = b0.wrapping_add(
            ((b1 << 4).wrapping_add(a)) ^ b1.wrapping_add(sum) ^ ((b1 >> 5).wrapping_add(b)),
        );
        b1 = b1.wrapping_add(
            ((b0 << 4).wrapping_add(c)) ^ b0.wrapping_add(sum) ^ ((b0 >> 5).wrapping_add(d)),
        );
    }
    state[0] = state[0].wrapping_add(b0);
    state[1] = state[1].wrapping_add(b1);
}

fn legacy(name: &[u8], unsigned: bool) -> u32 {
    let (mut h0, mut h1): (u32, u32) = (0x12a3_fe2d, 0x37ab_e8f9);
    for &b in name {
        let mut h = h1.wrapping_add(h0 ^ widen(b, unsigned).wrapping_mul(7_152_373));
        if h & 0x8000_0000 != 0 {
            h = h.wrapping_sub(0x7fff_ffff);
        }
        h1 = h0;
        h0 = h;
    }
    h0 << 1
}

/// The (major, minor) hash of `name`.
pub fn name_hash(kind: HashKind, unsigned: bool, seed: [u32; 4], name: &[u8]) -> (u32, u32) {
    let (major, minor) = match kind {
        HashKind::Legacy => (legacy(name, unsigned), 0),
        HashKind::HalfMd4 => {
            let mut st = seed;
            let mut rest = name;
            loop {
                half_md4(&mut st, &pack(rest, 8, unsigned));
                if rest.len() <= 32 {
                    break;
                }
                rest = &rest[32..];
            }
            (st[1], st[2])
        }
        HashKind::Tea => {
            let mut st = seed;
            let mut rest = name;
            loop {
                tea(&mut st, &pack(rest, 4, unsigned));
                if rest.len() <= 16 {
                    break;
                }
                rest = &rest[16..];
            }
            (st[0], st[1])
        }
    };
    let mut major = major & !1;
    // The end-of-directory marker of 32-bit readdir cookies is never a
    // name's hash.
    if major == 0x7fff_ffff << 1 {
        major = (0x7fff_ffff - 1) << 1;
    }
    (major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_pads_with_the_length() {
        let w = pack(b"abcde", 8, false);
        let pad = 0x0505_0505u32;
        assert_eq!(w[0], 0x6162_6364);
        assert_eq!(w[1], (pad << 8).wrapping_add(0x65));
        assert_eq!(w[2], pad);
    }

    #[test]
    fn signed_and_unsigned_differ_only_on_high_bytes() {
        let seed = seed_words(&[0; 16]);
        assert_eq!(
            name_hash(HashKind::HalfMd4, false, seed, b"plain"),
            name_hash(HashKind::HalfMd4, true, seed, b"plain")
        );
        assert_ne!(
            name_hash(HashKind::HalfMd4, false, seed, "é".as_bytes()),
            name_hash(HashKind::HalfMd4, true, seed, "é".as_bytes())
        );
        let (h, _) = name_hash(HashKind::Tea, false, seed, b"x");
        assert_eq!(h & 1, 0);
        let (h, m) = name_hash(HashKind::Legacy, false, seed, b"x");
        assert_eq!((h & 1, m), (0, 0));
    }
}
