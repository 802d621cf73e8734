//! G.711 μ-law and A-law (ITU-T G.711), table-driven: decoding is one lookup in a 256-entry table, encoding one
//! lookup in a table indexed by the bits the law keeps (14 for μ-law, 12 for A-law). The tables are built at
//! compile time from the segment arithmetic, and checked exhaustively against the ITU-T G.191 reference code.

/// μ-law code -> linear sample (16-bit, as the G.191 reference expands it).
static ULAW_DECODE: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        t[code] = ulaw_expand(code as u8);
        code += 1;
    }
    t
};

/// Linear sample >> 2 (14 bits, offset to be non-negative) -> μ-law code.
static ULAW_ENCODE: [u8; 16384] = {
    let mut t = [0u8; 16384];
    let mut i = 0;
    while i < 16384 {
        t[i] = ulaw_compress(((i as i32 - 8192) << 2) as i16);
        i += 1;
    }
    t
};

/// A-law code -> linear sample.
static ALAW_DECODE: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        t[code] = alaw_expand(code as u8);
        code += 1;
    }
    t
};

/// Linear sample >> 4 (12 bits, offset to be non-negative) -> A-law code.
static ALAW_ENCODE: [u8; 4096] = {
    let mut t = [0u8; 4096];
    let mut i = 0;
    while i < 4096 {
        t[i] = alaw_compress(((i as i32 - 2048) << 4) as i16);
        i += 1;
    }
    t
};

/// Encodes one linear sample to μ-law.
#[inline]
pub fn ulaw_encode(sample: i16) -> u8 {
    ULAW_ENCODE[((sample >> 2) as i32 + 8192) as usize]
}

/// Decodes one μ-law code.
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_DECODE[code as usize]
}

/// Encodes one linear sample to A-law.
#[inline]
pub fn alaw_encode(sample: i16) -> u8 {
    ALAW_ENCODE[((sample >> 4) as i32 + 2048) as usize]
}

/// Decodes one A-law code.
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_DECODE[code as usize]
}

/// μ-law compression of one sample: magnitude of the 14-bit sample plus the bias 33, segment from its highest
/// set bit, four mantissa bits below it; the code is stored inverted with the sign in bit 7 (1 = positive).
const fn ulaw_compress(sample: i16) -> u8 {
    let x = sample >> 2;
    // One's complement for negatives, as G.711 specifies (so -1 and 0 share a magnitude).
    let magnitude = if x < 0 { !x } else { x } as i32 + 33;
    let magnitude = if magnitude > 0x1FFF { 0x1FFF } else { magnitude };
    // Segment 1..8: the position of the highest set bit at or above bit 5.
    let segment = (32 - (magnitude as u32).leading_zeros()) as i32 - 5;
    let mantissa = (magnitude >> segment) & 0xF;
    let code = (((8 - segment) << 4) | (0xF - mantissa)) as u8;
    if sample >= 0 { code | 0x80 } else { code }
}

const fn ulaw_expand(code: u8) -> i16 {
    let inverted = !code;
    let exponent = ((inverted >> 4) & 0x7) as i32;
    let mantissa = (inverted & 0xF) as i32;
    let step = 4 << (exponent + 1);
    let magnitude = (0x80 << exponent) + step * mantissa + step / 2 - 4 * 33;
    (if code < 0x80 { -magnitude } else { magnitude }) as i16
}

/// A-law compression: 12-bit magnitude, segment from its highest set bit above bit 4, four mantissa bits; even
/// bits inverted (XOR 0x55) as G.711 specifies.
const fn alaw_compress(sample: i16) -> u8 {
    let x = sample >> 4;
    let magnitude = if x < 0 { !x } else { x } as i32;
    let code = if magnitude < 16 {
        magnitude
    } else {
        // Segment 1..7: the highest set bit, from bit 4 to bit 10 (a 12-bit magnitude is at most 2047).
        let segment = (32 - (magnitude as u32).leading_zeros()) as i32 - 4;
        (segment << 4) | ((magnitude >> (segment - 1)) & 0xF)
    };
    let signed = if sample >= 0 { code | 0x80 } else { code };
    (signed ^ 0x55) as u8
}

const fn alaw_expand(code: u8) -> i16 {
    let x = (code ^ 0x55) & 0x7F;
    let exponent = (x >> 4) as i32;
    let mut mantissa = (x & 0xF) as i32;
    if exponent > 0 {
        mantissa += 16;
    }
    mantissa = (mantissa << 4) + 8;
    if exponent > 1 {
        mantissa <<= exponent - 1;
    }
    (if code > 127 { mantissa } else { -mantissa }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ITU-T G.191 (STL) `ulaw_compress`, transcribed line by line.
    fn reference_ulaw_compress(lin: i16) -> u8 {
        let mut absno: i16 = if lin < 0 { ((!lin) >> 2) + 33 } else { (lin >> 2) + 33 };
        if absno > 0x1FFF {
            absno = 0x1FFF;
        }
        let mut i = absno >> 6;
        let mut segno: i16 = 1;
        while i != 0 {
            segno += 1;
            i >>= 1;
        }
        let high_nibble = 0x0008 - segno;
        let mut low_nibble = (absno >> segno) & 0x000F;
        low_nibble = 0x000F - low_nibble;
        let mut log = (high_nibble << 4) | low_nibble;
        if lin >= 0 {
            log |= 0x0080;
        }
        log as u8
    }

    /// ITU-T G.191 `ulaw_expand`.
    fn reference_ulaw_expand(log: u8) -> i16 {
        let log = log as i16;
        let sign: i16 = if log < 0x0080 { -1 } else { 1 };
        let mut mantissa = !log;
        let exponent = (mantissa >> 4) & 0x0007;
        let segment = exponent + 1;
        mantissa &= 0x000F;
        let step: i16 = 4 << segment;
        sign * ((0x0080 << exponent) + step * mantissa + step / 2 - 4 * 33)
    }

    /// ITU-T G.191 `alaw_compress`.
    fn reference_alaw_compress(lin: i16) -> u8 {
        let mut ix: i16 = if lin < 0 { (!lin) >> 4 } else { lin >> 4 };
        if ix > 15 {
            let mut iexp: i16 = 1;
            while ix > 16 + 15 {
                ix >>= 1;
                iexp += 1;
            }
            ix -= 16;
            ix += iexp << 4;
        }
        if lin >= 0 {
            ix |= 0x0080;
        }
        (ix ^ 0x0055) as u8
    }

    /// ITU-T G.191 `alaw_expand`.
    fn reference_alaw_expand(log: u8) -> i16 {
        let log = log as i16;
        let mut ix = log ^ 0x0055;
        ix &= 0x007F;
        let iexp = ix >> 4;
        let mut mant = ix & 0x000F;
        if iexp > 0 {
            mant += 16;
        }
        mant = (mant << 4) + 0x0008;
        if iexp > 1 {
            mant <<= iexp - 1;
        }
        if log > 127 { mant } else { -mant }
    }

    #[test]
    fn ulaw_matches_the_reference_for_every_sample_and_every_code() {
        for s in i16::MIN..=i16::MAX {
            assert_eq!(ulaw_encode(s), reference_ulaw_compress(s), "sample {s}");
        }
        for code in 0..=255u8 {
            assert_eq!(ulaw_decode(code), reference_ulaw_expand(code), "code {code:#04x}");
        }
    }

    #[test]
    fn alaw_matches_the_reference_for_every_sample_and_every_code() {
        for s in i16::MIN..=i16::MAX {
            assert_eq!(alaw_encode(s), reference_alaw_compress(s), "sample {s}");
        }
        for code in 0..=255u8 {
            assert_eq!(alaw_decode(code), reference_alaw_expand(code), "code {code:#04x}");
        }
    }

    #[test]
    fn well_known_codes() {
        // Silence and the extremes, as every G.711 implementation agrees.
        assert_eq!((ulaw_encode(0), ulaw_encode(-1)), (0xFF, 0x7F));
        assert_eq!((ulaw_decode(0xFF), ulaw_decode(0x7F)), (0, 0));
        assert_eq!((ulaw_decode(0x80), ulaw_decode(0x00)), (32124, -32124));
        assert_eq!((alaw_encode(0), alaw_encode(-1)), (0xD5, 0x55));
        assert_eq!((alaw_decode(0xD5), alaw_decode(0x55)), (8, -8));
        assert_eq!((alaw_decode(0xAA), alaw_decode(0x2A)), (32256, -32256));
    }

    #[test]
    fn decoding_then_encoding_gives_back_every_code() {
        for code in 0..=255u8 {
            assert_eq!(alaw_encode(alaw_decode(code)), code, "A-law {code:#04x}");
            // μ-law has two zeros (0x7F and 0xFF); each decodes to 0, which encodes to 0xFF.
            let expect = if code == 0x7F { 0xFF } else { code };
            assert_eq!(ulaw_encode(ulaw_decode(code)), expect, "μ-law {code:#04x}");
        }
    }
}
