//! CPU backend of `robocache.align`: per sample, on DALI's thread pool. [`locate`] decides where each
//! (step, stream) value comes from; this module writes the fused rows (linear in the accumulator
//! type, SLERP in float64) with the arithmetic the kernel mirrors.

use half::{bf16, f16};

use crate::dtype::{Element, Times, TimesMut};
use crate::error::{Error, Result};
use crate::ops::align::{
    locate, nanos_of, plan_any, plan_sample, seconds_of, AlignArgs, AlignTime, Clock, Layout, Src, OP,
};
use crate::ops::resample::Plan;

/// A data element with the float64 path SLERP needs. `from_f64` rounds through float32 for the
/// 16-bit types, as the kernel does.
pub trait Wide: Element {
    /// Widens exactly.
    fn to_f64(self) -> f64;
    /// Rounds (f16/bf16 through f32, as the kernel's conversions do).
    fn from_f64(x: f64) -> Self;
    /// NaN test.
    fn is_nan(self) -> bool;
    /// Zero.
    fn zero() -> Self;
    /// One.
    fn one() -> Self;
}

impl Wide for f32 {
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    fn zero() -> Self {
        0.0
    }
    fn one() -> Self {
        1.0
    }
}

impl Wide for f64 {
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(x: f64) -> Self {
        x
    }
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    fn zero() -> Self {
        0.0
    }
    fn one() -> Self {
        1.0
    }
}

impl Wide for f16 {
    fn to_f64(self) -> f64 {
        self.to_f64()
    }
    fn from_f64(x: f64) -> Self {
        f16::from_f32(x as f32)
    }
    fn is_nan(self) -> bool {
        f16::is_nan(self)
    }
    fn zero() -> Self {
        f16::ZERO
    }
    fn one() -> Self {
        f16::ONE
    }
}

impl Wide for bf16 {
    fn to_f64(self) -> f64 {
        self.to_f64()
    }
    fn from_f64(x: f64) -> Self {
        bf16::from_f32(x as f32)
    }
    fn is_nan(self) -> bool {
        bf16::is_nan(self)
    }
    fn zero() -> Self {
        bf16::ZERO
    }
    fn one() -> Self {
        bf16::ONE
    }
}

fn normalise(q: &mut [f64; 4]) {
    let n = (q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]).sqrt();
    if n > 0.0 {
        let r = 1.0 / n;
        q.iter_mut().for_each(|x| *x *= r);
    }
}

/// SLERP in float64 between two quaternions (normalised first), shortest arc, unit output; the
/// angle comes from `atan2`, so small angles keep full precision (no nlerp shortcut). The
/// kernel's `rc_slerp` performs the same operations in the same order.
pub fn slerp(q0: [f64; 4], q1: [f64; 4], w: f64) -> [f64; 4] {
    let (mut a, mut b) = (q0, q1);
    normalise(&mut a);
    normalise(&mut b);
    let dot = a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3];
    if dot < 0.0 {
        b.iter_mut().for_each(|x| *x = -*x);
    }
    // The angle between the unit vectors, accurate for small angles too: 2 atan2(|a - b|, |a + b|).
    let (mut d2, mut s2) = (0.0, 0.0);
    for i in 0..4 {
        d2 += (a[i] - b[i]) * (a[i] - b[i]);
        s2 += (a[i] + b[i]) * (a[i] + b[i]);
    }
    // sin th and cos th from the half angle's sine and cosine (|a - b| and |a + b| over their norm),
    // so that one sin_cos (of w th) gives both weights: sin((1 - w) th) / sin th = cos(w th) -
    // cos th sin(w th) / sin th.
    let (sd, sc) = (d2.sqrt(), s2.sqrt());
    let th = 2.0 * sd.atan2(sc);
    let im = 1.0 / (d2 + s2).sqrt();
    let (sh, ch) = (sd * im, sc * im);
    let s = (2.0 * sh) * ch;
    let (ca, cb) = if s > 0.0 {
        let (sw, cw) = (w * th).sin_cos();
        let cb = sw * (1.0 / s);
        (cw - ((ch - sh) * (ch + sh)) * cb, cb)
    } else {
        (1.0 - w, w)
    };
    let mut r = [0.0; 4];
    for i in 0..4 {
        r[i] = ca * a[i] + cb * b[i];
    }
    normalise(&mut r);
    r
}

/// Writes one stream's part of a fused output row.
fn write_stream<E: Wide>(src: Src, data: &[E], c: usize, quats: &[usize], wxyz: bool, out: &mut [E]) {
    let row = |i: usize| &data[i * c..(i + 1) * c];
    match src {
        Src::Nan => out.iter_mut().for_each(|o| *o = E::nan()),
        Src::Zero => {
            out.iter_mut().for_each(|o| *o = E::zero());
            for &f in quats {
                out[f + if wxyz { 0 } else { 3 }] = E::one();
            }
        }
        Src::Row(i) => {
            out.copy_from_slice(row(i));
            for &f in quats {
                let mut q = [0.0; 4];
                for (j, x) in q.iter_mut().enumerate() {
                    *x = out[f + j].to_f64();
                }
                normalise(&mut q);
                for (j, x) in q.iter().enumerate() {
                    out[f + j] = E::from_f64(*x);
                }
            }
        }
        Src::Lerp(l, r, w) => {
            let wa = E::weight(w);
            for ((o, &x0), &x1) in out.iter_mut().zip(row(l)).zip(row(r)) {
                let (a, b) = (x0.to_acc(), x1.to_acc());
                *o = E::from_acc(a + wa * (b - a));
            }
            for &f in quats {
                let (r0, r1) = (row(l), row(r));
                let q = slerp(
                    [r0[f].to_f64(), r0[f + 1].to_f64(), r0[f + 2].to_f64(), r0[f + 3].to_f64()],
                    [r1[f].to_f64(), r1[f + 1].to_f64(), r1[f + 2].to_f64(), r1[f + 3].to_f64()],
                    w,
                );
                for (j, x) in q.iter().enumerate() {
                    out[f + j] = E::from_f64(*x);
                }
            }
        }
    }
}

/// One stream of one sample for the CPU backend: `[rows, C_s]` data and its timestamps.
#[derive(Clone, Copy, Debug)]
pub struct StreamData<'a, E, T> {
    /// Row-major data.
    pub data: &'a [E],
    /// Timestamps.
    pub times: &'a [T],
}

#[allow(clippy::too_many_arguments)]
/// CPU backend for one planned sample: `out` is `[n, total]`, `valid` `[n, N]`, `out_times` `[n]`.
pub fn run_sample<E: Wide, T: AlignTime>(
    args: &AlignArgs,
    layout: &Layout,
    plan: &Plan<T>,
    streams: &[StreamData<'_, E, T>],
    reference: &[T],
    out: &mut [E],
    valid: &mut [u8],
    out_times: &mut [T],
) {
    let ns = streams.len();
    let gaps: Vec<f64> = args.max_gap.iter().map(|g| T::native(*g)).collect();
    for k in 0..plan.n as usize {
        let t = plan.grid.at(k as i64, reference);
        out_times[k] = t;
        for (s, st) in streams.iter().enumerate() {
            let c = layout.channels[s];
            let row_ok = |j: usize| st.data[j * c..(j + 1) * c].iter().all(|x| !x.is_nan());
            let (src, ok) = locate(st.times, t, row_ok, args.methods[s], gaps[s], args.fill);
            valid[k * ns + s] = ok as u8;
            let o = k * layout.total + layout.offsets[s];
            write_stream(src, st.data, c, &layout.quats[s], args.wxyz, &mut out[o..o + c]);
        }
    }
}

/// CPU backend for one sample whatever its types: validates, plans and aligns.
///
/// # Errors
/// As [`plan_any`], plus output buffers of the wrong size.
#[allow(clippy::too_many_arguments)]
pub fn run_any<E: Wide>(
    args: &AlignArgs,
    layout: &Layout,
    sample: usize,
    data: &[&[E]],
    times: &[Times<'_>],
    reference: Option<Times<'_>>,
    out: &mut [E],
    valid: &mut [u8],
    out_times: TimesMut<'_>,
) -> Result<()> {
    let rows: Vec<usize> =
        data.iter().zip(&layout.channels).map(|(d, &c)| d.len().checked_div(c).unwrap_or(0)).collect();
    let n = plan_any(args, sample, &rows, times, reference)? as usize;
    let ns = data.len();
    let out_len = match &out_times {
        TimesMut::Seconds(o) => o.len(),
        TimesMut::Nanos(o) => o.len(),
    };
    if out.len() != n * layout.total || valid.len() != n * ns || out_len != n {
        return Err(Error::sample(
            OP,
            sample,
            format!(
                "output buffers hold {} values, {} flags and {out_len} timestamps; expected {}, {} and {n}",
                out.len(),
                valid.len(),
                n * layout.total,
                n * ns
            ),
        ));
    }
    match out_times {
        TimesMut::Seconds(ot) => {
            let st = seconds_of(sample, &rows, times)?;
            let rf = match reference {
                Some(Times::Seconds(x)) => x,
                _ => &[],
            };
            let plan = plan_sample(args, sample, &st, (args.clock == Clock::Timestamps).then_some(rf), false)?;
            let sd: Vec<_> = data.iter().zip(&st).map(|(d, (_, t))| StreamData { data: d, times: t }).collect();
            run_sample(args, layout, &plan, &sd, rf, out, valid, ot);
        }
        TimesMut::Nanos(ot) => {
            let st = nanos_of(sample, &rows, times)?;
            let rf = match reference {
                Some(Times::Nanos(x)) => x,
                _ => &[],
            };
            let plan = plan_sample(args, sample, &st, (args.clock == Clock::Timestamps).then_some(rf), false)?;
            let sd: Vec<_> = data.iter().zip(&st).map(|(d, (_, t))| StreamData { data: d, times: t }).collect();
            run_sample(args, layout, &plan, &sd, rf, out, valid, ot);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::align::RawArgs;

    fn raw(n: usize) -> RawArgs<'static> {
        RawArgs {
            num_inputs: n,
            quaternion_order: "xyzw",
            fill: "hold",
            span: "intersection",
            target_rate: Some(10.0),
            ..Default::default()
        }
    }

    #[test]
    fn slerp_is_unit_and_takes_the_short_arc() {
        let a = [0.0, 0.0, 0.0, 1.0];
        let b = [0.0, 0.0, (0.5f64).sin(), (0.5f64).cos()];
        let m = slerp(a, b, 0.5);
        assert!((m[2] - 0.25f64.sin()).abs() < 1e-12 && (m[3] - 0.25f64.cos()).abs() < 1e-12, "{m:?}");
        let nb = b.map(|x| -2.0 * x);
        let m2 = slerp(a, nb, 0.5);
        for i in 0..4 {
            assert!((m[i] - m2[i]).abs() < 1e-12);
        }
    }

    #[test]
    fn cpu_two_streams_hand_values() {
        let a = AlignArgs::parse(&RawArgs {
            num_inputs: 4,
            fill: "nan",
            max_gap: &[1.5, f64::INFINITY],
            target_rate: Some(2.0),
            ..raw(4)
        })
        .unwrap();
        let l = Layout::new(&a, &[1, 2]).unwrap();
        let d0 = [0.0f32, 10.0, f32::NAN, 30.0];
        let t0 = [0.0f64, 1.0, 2.0, 3.0];
        let d1 = [0.0f32, 0.0, 4.0, 8.0];
        let t1 = [0.5f64, 2.5];
        let mut out = vec![0.0f32; 15];
        let mut valid = vec![0u8; 10];
        let mut ot = vec![0.0f64; 5];
        run_any(
            &a,
            &l,
            0,
            &[&d0, &d1],
            &[Times::Seconds(&t0), Times::Seconds(&t1)],
            None,
            &mut out,
            &mut valid,
            TimesMut::Seconds(&mut ot),
        )
        .unwrap();
        assert_eq!(ot, vec![0.5, 1.0, 1.5, 2.0, 2.5]);
        assert_eq!(valid, vec![1, 1, 1, 1, 0, 1, 0, 1, 0, 1]);
        assert_eq!(out[0], 5.0);
        assert_eq!(&out[1..3], &[0.0, 0.0]);
        assert_eq!(&out[4..6], &[1.0, 2.0]);
        assert!(out[6].is_nan() && out[9].is_nan() && out[12].is_nan());
        assert_eq!(out[3], 10.0);
        assert_eq!(&out[13..15], &[4.0, 8.0]);
    }
}
