//! Counter-based random numbers shared by the augmentation operators: Philox4x32-10 (Salmon et al.,
//! "Parallel random numbers: as easy as 1, 2, 3", SC'11), implemented identically here and in
//! `kernels/common.cuh` (`rc_philox`), so the CPU and GPU backends draw the same integers.
//!
//! Every draw is keyed, never sequenced: key = the 64-bit `seed`; counter = (element index, sample
//! index in the batch, iteration, stream id). The same (seed, iteration, sample, element, stream)
//! always gives the same four 32-bit words, on every run and on both backends. Conversions to
//! floating point are exact (`uniform_f64` uses 53 bits, `uniform_f32` 24 bits); Gaussians use the
//! Box-Muller transform in float64 ([`box_muller`]; in float32, [`box_muller_f32`], for bulk
//! per-point draws), where the CUDA and host maths libraries may differ in the last bit, so normal
//! draws agree to the last bit or two, not bit for bit.

/// Philox multipliers and Weyl key increments (Random123).
const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Stream ids: one per kind of draw, so draws of different purposes never share a counter.
pub mod stream {
    /// temporal_jitter: per-sample speed, offset and warp knots.
    pub const JITTER_PARAMS: u32 = 0x544A_0001;
    /// action_noise: per-sample "apply" decision.
    pub const NOISE_APPLY: u32 = 0x414E_0001;
    /// action_noise: per-element noise.
    pub const NOISE: u32 = 0x414E_0002;
    /// points_augment: per-sample rotation, scale, translation.
    pub const POINTS_PARAMS: u32 = 0x5041_0001;
    /// points_augment: per-point jitter (x, y from words 0-1, z from words 2-3).
    pub const POINTS_JITTER: u32 = 0x5041_0002;
    /// points_augment: per-point dropout decision.
    pub const POINTS_DROP: u32 = 0x5041_0004;
}

#[inline]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = a as u64 * b as u64;
    ((p >> 32) as u32, p as u32)
}

/// Philox4x32-10 of `counter` under `key`.
#[inline]
pub fn philox(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
        let (hi0, lo0) = mulhilo(M0, c[0]);
        let (hi1, lo1) = mulhilo(M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// The key of one operator draw: who draws (`seed`, `iteration`, `sample`) and what (`stream`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    /// DALI's `seed` argument.
    pub seed: u64,
    /// The operator's iteration (batch) counter, from 0 at pipeline build.
    pub iteration: u64,
    /// The sample's index in the batch.
    pub sample: u32,
    /// What the draw is for (see [`stream`]).
    pub stream: u32,
}

impl Key {
    /// Four random words for element `index`.
    #[inline]
    pub fn words(&self, index: u32) -> [u32; 4] {
        philox([index, self.sample, self.iteration as u32, self.stream], [self.seed as u32, (self.seed >> 32) as u32])
    }

    /// Two uniforms in [0, 1) for element `index` (53 bits each).
    #[inline]
    pub fn uniform2(&self, index: u32) -> [f64; 2] {
        let w = self.words(index);
        [uniform_f64(w[0], w[1]), uniform_f64(w[2], w[3])]
    }

    /// Two independent standard normals for element `index` (Box-Muller, float64).
    #[inline]
    pub fn normal2(&self, index: u32) -> [f64; 2] {
        let w = self.words(index);
        box_muller(w)
    }
}

/// A uniform in [0, 1) from two words: 27 + 26 = 53 bits, exact in float64.
#[inline]
pub fn uniform_f64(a: u32, b: u32) -> f64 {
    ((a >> 5) as f64 * 67_108_864.0 + (b >> 6) as f64) * (1.0 / 9_007_199_254_740_992.0)
}

/// A uniform in [0, 1) from one word: 24 bits, exact in float32.
#[inline]
pub fn uniform_f32(a: u32) -> f32 {
    (a >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// Two standard normals from four words: `r = sqrt(-2 ln(1 - u1))`, `(r cos 2 pi u2, r sin 2 pi u2)`.
/// Mirrored by `rc_box_muller` in `kernels/common.cuh`.
#[inline]
pub fn box_muller(w: [u32; 4]) -> [f64; 2] {
    let u1 = 1.0 - uniform_f64(w[0], w[1]); // (0, 1]
    let u2 = uniform_f64(w[2], w[3]);
    let r = (-2.0 * u1.ln()).sqrt();
    let th = std::f64::consts::TAU * u2;
    [r * th.cos(), r * th.sin()]
}

/// Two standard normals from two words in float32 (24-bit uniforms): `r = sqrt(-2 ln(1 - u1))`,
/// `(r cos 2 pi u2, r sin 2 pi u2)`; for bulk per-point draws where float32 suffices. Mirrored by
/// `rc_box_muller_f32` in `kernels/common.cuh` (the float32 `ln`/`sin`/`cos` of the two maths
/// libraries may differ in the last bit or two).
#[inline]
pub fn box_muller_f32(a: u32, b: u32) -> [f32; 2] {
    let u1 = 1.0f32 - uniform_f32(a); // (0, 1]
    let u2 = uniform_f32(b);
    let r = (-2.0f32 * u1.ln()).sqrt();
    let th = std::f32::consts::TAU * u2;
    [r * th.cos(), r * th.sin()]
}

/// Linear map of a uniform in [0, 1) onto [lo, hi].
#[inline]
pub fn lerp(lo: f64, hi: f64, u: f64) -> f64 {
    lo + (hi - lo) * u
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers_random123() {
        // Random123 kat_vectors: philox4x32 10 rounds.
        assert_eq!(philox([0; 4], [0; 2]), [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]);
        assert_eq!(philox([u32::MAX; 4], [u32::MAX; 2]), [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]);
        assert_eq!(
            philox([0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344], [0xa409_3822, 0x299f_31d0]),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }

    #[test]
    fn uniforms_and_normals_have_the_right_moments() {
        let k = Key { seed: 42, iteration: 3, sample: 7, stream: stream::NOISE };
        let n = 200_000u32;
        let (mut s, mut s2, mut u) = (0.0, 0.0, 0.0);
        for i in 0..n {
            let z = k.normal2(i);
            s += z[0] + z[1];
            s2 += z[0] * z[0] + z[1] * z[1];
            let x = k.uniform2(i);
            assert!((0.0..1.0).contains(&x[0]) && (0.0..1.0).contains(&x[1]));
            u += x[0];
        }
        let m = s / (2 * n) as f64;
        let v = s2 / (2 * n) as f64 - m * m;
        assert!(m.abs() < 0.01, "mean {m}");
        assert!((v - 1.0).abs() < 0.01, "variance {v}");
        assert!((u / n as f64 - 0.5).abs() < 0.005);
        let other = Key { iteration: 4, ..k };
        assert_ne!(k.words(0), other.words(0));
        assert_eq!(k.words(5), Key { ..k }.words(5));
    }
}
