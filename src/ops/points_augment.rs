//! `robocache.points_augment`: random rigid-plus-scale transform of point clouds `[N, 3 + F]`, with
//! per-point Gaussian jitter and a random dropout keep-mask. This layer knows nothing about DALI; the
//! GPU launch is in `augment_gpu.rs`.
//!
//! Per sample (drawn on the host from Philox keyed by seed, iteration and sample, so both backends
//! use the same transform): a rotation `R` (about z by an angle uniform in `angle`, a uniform random
//! rotation in SO(3) by Shoemake's quaternion method, or none), an isotropic scale `s` uniform in
//! `scale`, a translation `t` uniform in `[-translation, translation]` per axis. `M = [s R | t]`
//! (float64, rounded to float32) is applied as `o_r = M_r0 x + M_r1 y + M_r2 z + M_r3` in float32;
//! then per point `o += clip(jitter * n)`, `n ~ N(0, I3)` (one Philox draw per point, keyed by the
//! point index; float32 Box-Muller); features are copied. A point is dropped (mask 0) when its uniform `u < dropout`. Mirrored by
//! `points_augment_f32` in `kernels/augment.cu`.

use crate::error::{Error, Result};
use crate::rng::{self, Key};

/// Operator name used in every message.
pub const OP: &str = "robocache.points_augment";

/// Rotation mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// Identity.
    None,
    /// About the z axis.
    Z,
    /// Uniform over SO(3).
    So3,
}

impl Rotation {
    /// Parses `rotation`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Rotation::None),
            "z" => Ok(Rotation::Z),
            "so3" => Ok(Rotation::So3),
            other => Err(Error::arg(OP, "rotation", format!("{other:?}"), "\"z\", \"so3\" or \"none\"")),
        }
    }
}

/// Per-sample ranges (argument inputs allowed).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PointsRanges {
    /// Angle range about z, radians.
    pub angle: [f64; 2],
    /// Isotropic scale range.
    pub scale: [f64; 2],
    /// Largest translation per axis (uniform in `[-t, t]`).
    pub translation: [f64; 3],
    /// Jitter sigma.
    pub jitter: f64,
    /// Jitter clip (0: none).
    pub jitter_clip: f64,
    /// Dropout probability.
    pub dropout: f64,
}

/// One sample's drawn parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PointsDraw {
    /// Row-major `[3, 4]` float32 matrix `[s R | t]`.
    pub m: [f32; 12],
    /// Jitter sigma (float32).
    pub jitter: f32,
    /// Jitter clip (float32; 0: none).
    pub clip: f32,
    /// Dropout probability (float32).
    pub dropout: f32,
}

/// Validates one sample's ranges and point shape.
pub fn check_sample(sample: usize, r: &PointsRanges, ndim: i32, n: i64, dims: i64) -> Result<()> {
    let err = |m: String| Error::sample(OP, sample, m);
    if ndim != 2 || dims < 3 {
        return Err(err(format!(
            "points must be [N, 3 + F] with at least 3 columns (x, y, z); got {ndim} dimensions with {dims} columns"
        )));
    }
    if n > u32::MAX as i64 {
        return Err(err(format!("{n} points, more than 2^32")));
    }
    let [a, b] = r.angle;
    if !(a.is_finite() && b.is_finite() && a <= b) {
        return Err(err(format!("angle range [{a}, {b}] is empty; expected angle[0] <= angle[1] (radians)")));
    }
    let [a, b] = r.scale;
    if !(a.is_finite() && b.is_finite() && a > 0.0 && a <= b) {
        return Err(err(format!("scale range [{a}, {b}] is empty or not positive; expected 0 < scale[0] <= scale[1]")));
    }
    if let Some(t) = r.translation.iter().find(|t| !(t.is_finite() && **t >= 0.0)) {
        return Err(err(format!("translation {t}; expected finite non-negative half-ranges per axis")));
    }
    if !(r.jitter.is_finite() && r.jitter >= 0.0) {
        return Err(err(format!("jitter is {}; expected sigma >= 0 (negative sigma)", r.jitter)));
    }
    if !(r.jitter_clip.is_finite() && r.jitter_clip >= 0.0) {
        return Err(err(format!("jitter_clip is {}; expected >= 0 (0: no clip)", r.jitter_clip)));
    }
    if !(0.0..1.0).contains(&r.dropout) {
        return Err(err(format!("dropout is {}; expected a probability in [0, 1)", r.dropout)));
    }
    Ok(())
}

/// Draws one sample's transform.
pub fn draw(seed: u64, rotation: Rotation, r: &PointsRanges, iteration: u64, sample: usize) -> PointsDraw {
    let key = Key { seed, iteration, sample: sample as u32, stream: rng::stream::POINTS_PARAMS };
    let u0 = key.uniform2(0);
    let u1 = key.uniform2(1);
    let u2 = key.uniform2(2);
    let rot: [[f64; 3]; 3] = match rotation {
        Rotation::None => [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        Rotation::Z => {
            let th = rng::lerp(r.angle[0], r.angle[1], u0[0]);
            let (s, c) = th.sin_cos();
            [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
        }
        Rotation::So3 => {
            let v = key.uniform2(3);
            let w = key.uniform2(4);
            let (a, b, c) = (v[0], v[1], w[0]);
            let tau = std::f64::consts::TAU;
            let (s1, s2) = ((1.0 - a).sqrt(), a.sqrt());
            let (qx, qy, qz, qw) =
                (s1 * (tau * b).sin(), s1 * (tau * b).cos(), s2 * (tau * c).sin(), s2 * (tau * c).cos());
            [
                [1.0 - 2.0 * (qy * qy + qz * qz), 2.0 * (qx * qy - qz * qw), 2.0 * (qx * qz + qy * qw)],
                [2.0 * (qx * qy + qz * qw), 1.0 - 2.0 * (qx * qx + qz * qz), 2.0 * (qy * qz - qx * qw)],
                [2.0 * (qx * qz - qy * qw), 2.0 * (qy * qz + qx * qw), 1.0 - 2.0 * (qx * qx + qy * qy)],
            ]
        }
    };
    let s = rng::lerp(r.scale[0], r.scale[1], u0[1]);
    let t = [
        rng::lerp(-r.translation[0], r.translation[0], u1[0]),
        rng::lerp(-r.translation[1], r.translation[1], u1[1]),
        rng::lerp(-r.translation[2], r.translation[2], u2[0]),
    ];
    let mut m = [0f32; 12];
    for i in 0..3 {
        for j in 0..3 {
            m[i * 4 + j] = (s * rot[i][j]) as f32;
        }
        m[i * 4 + 3] = t[i] as f32;
    }
    PointsDraw { m, jitter: r.jitter as f32, clip: r.jitter_clip as f32, dropout: r.dropout as f32 }
}

/// The 4x4 float32 transform output of a draw.
pub fn transform(d: &PointsDraw) -> [f32; 16] {
    let mut o = [0f32; 16];
    o[..12].copy_from_slice(&d.m);
    o[15] = 1.0;
    o
}

/// CPU backend for one sample: `points` and `out` are `[n, dims]`, `mask` is `[n]` (1 keep, 0 drop).
#[allow(clippy::too_many_arguments)]
pub fn run_sample(
    seed: u64,
    iteration: u64,
    sample: usize,
    d: &PointsDraw,
    points: &[f32],
    dims: usize,
    out: &mut [f32],
    mask: &mut [u8],
) {
    let n = mask.len();
    let kj = Key { seed, iteration, sample: sample as u32, stream: rng::stream::POINTS_JITTER };
    let kd = Key { stream: rng::stream::POINTS_DROP, ..kj };
    let m = &d.m;
    for i in 0..n {
        let p = &points[i * dims..(i + 1) * dims];
        let o = &mut out[i * dims..(i + 1) * dims];
        let (x, y, z) = (p[0], p[1], p[2]);
        let mut v = [0f32; 3];
        for r in 0..3 {
            v[r] = m[r * 4] * x + m[r * 4 + 1] * y + m[r * 4 + 2] * z + m[r * 4 + 3];
        }
        if d.jitter > 0.0 {
            let w = kj.words(i as u32);
            let a = rng::box_muller_f32(w[0], w[1]);
            let b = rng::box_muller_f32(w[2], w[3]);
            let c = d.clip;
            for (r, j) in [a[0], a[1], b[0]].into_iter().enumerate() {
                let mut dd = j * d.jitter;
                if c > 0.0 {
                    dd = dd.clamp(-c, c);
                }
                v[r] += dd;
            }
        }
        o[..3].copy_from_slice(&v);
        o[3..].copy_from_slice(&p[3..]);
        mask[i] = if d.dropout > 0.0 { (rng::uniform_f32(kd.words(i as u32)[0]) >= d.dropout) as u8 } else { 1 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: PointsRanges = PointsRanges {
        angle: [-3.2, 3.2],
        scale: [0.9, 1.1],
        translation: [0.5, 0.5, 0.1],
        jitter: 0.0,
        jitter_clip: 0.0,
        dropout: 0.0,
    };

    #[test]
    fn rotations_are_orthonormal() {
        for rot in [Rotation::Z, Rotation::So3] {
            for it in 0..20 {
                let d = draw(1, rot, &PointsRanges { scale: [1.0, 1.0], ..R }, it, 0);
                for i in 0..3 {
                    for j in 0..3 {
                        let dot: f32 = (0..3).map(|k| d.m[i * 4 + k] * d.m[j * 4 + k]).sum();
                        assert!((dot - if i == j { 1.0 } else { 0.0 }).abs() < 1e-6);
                    }
                }
            }
        }
    }

    #[test]
    fn transform_applies_and_features_copy() {
        let d = draw(5, Rotation::Z, &R, 0, 0);
        let pts = [1.0f32, 2.0, 3.0, 9.0];
        let mut out = [0f32; 4];
        let mut mask = [0u8; 1];
        run_sample(5, 0, 0, &d, &pts, 4, &mut out, &mut mask);
        let t = transform(&d);
        for r in 0..3 {
            let e = t[r * 4] * 1.0 + t[r * 4 + 1] * 2.0 + t[r * 4 + 2] * 3.0 + t[r * 4 + 3];
            assert_eq!(out[r], e);
        }
        assert_eq!((out[3], mask[0]), (9.0, 1));
        let e = check_sample(2, &PointsRanges { jitter: -1.0, ..R }, 2, 5, 4).unwrap_err();
        assert!(e.to_string().contains("sample 2: jitter is -1"), "{e}");
        assert!(check_sample(0, &R, 2, 5, 2).is_err());
    }
}
