//! `robocache.temporal_jitter`: replays each trajectory at a random speed, from a random start
//! offset, through an optional smooth monotonic time warp, and resamples it onto a fixed output grid.
//! This layer knows nothing about DALI. The random draws are per sample and cheap, so they are made
//! on the host (counter-based Philox, [`crate::rng`]) while planning; both backends then run the
//! resample interpolation with the warped source times as explicit targets (the CPU backend through
//! [`crate::ops::resample::run_sample`], the GPU backend through one `resample.cu` launch), so the
//! two backends see the same warp by construction.
//!
//! The output grid is `tau_k = k / rate` (seconds after the first timestamp), `rate` = `target_rate`
//! or the sample's mean rate `(T - 1) / D`; its length is `num_samples` when given (a fixed-length
//! training window: duration `Do = (N - 1) / rate`), else what the replay lasts (`Do = (D - o) / v`,
//! `N = floor(Do * rate) + 1`). Output time `tau` reads the source at
//! `s(tau) = min(t0 + o + L * W(tau / Do), t_last)` with `o` the start offset (clamped to `[0, D]`),
//! `v` the speed factor, `L = v * Do` the source length replayed (`D - o` without `num_samples`).
//! `W` maps `[0, 1]` onto itself monotonically: the normalised integral of a piecewise-linear speed
//! curve through `warp_knots + 2` evenly spaced knots with speeds `1 + warp_strength * u`, `u`
//! uniform in `[-1, 1]` (tsaug TimeWarp style); `W(x) = x` when `warp_strength == 0`. So the mean
//! playback speed over the window is exactly `v`, and two streams with the same first timestamp,
//! `seed`, ranges, `target_rate` and `num_samples` are read at the same source times.

use crate::dtype::{DType, Element, Times, TimesMut};
use crate::error::{Error, Result};
use crate::ops::resample::{self as rs, Grid, Plan, ResampleArgs, TimeVal, MAX_TARGETS};
use crate::rng::{self, Key};

/// Operator name used in every message.
pub const OP: &str = "robocache.temporal_jitter";

/// Largest number of interior warp knots.
pub const MAX_KNOTS: i64 = 64;

/// Output grid: `tau_k = k / rate` for `k < n`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OutputGrid {
    /// `target_rate` (Hz); `None`: the sample's mean rate.
    pub rate: Option<f64>,
    /// `num_samples`; `None`: as many points as the replay lasts.
    pub count: Option<i64>,
}

/// Constant arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct JitterArgs {
    /// Interpolation (a resample operator with explicit targets).
    pub resample: ResampleArgs,
    /// Output grid.
    pub grid: OutputGrid,
    /// Interior warp knots.
    pub warp_knots: u32,
    /// DALI's seed.
    pub seed: u64,
}

/// Per-sample random ranges (argument inputs allowed).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JitterRanges {
    /// Speed factor range `[lo, hi]`, uniform.
    pub speed: [f64; 2],
    /// Start offset range in seconds `[lo, hi]`, uniform.
    pub offset: [f64; 2],
    /// Warp strength in `[0, 1)`.
    pub warp_strength: f64,
}

impl JitterArgs {
    /// Parses the constant arguments: `target_rate` (default: the sample's mean rate) and
    /// `num_samples` (default: as long as the replay lasts) may be combined.
    pub fn parse(
        method: &str,
        dtype: &str,
        target_rate: Option<f64>,
        num_samples: Option<i64>,
        warp_knots: i64,
        seed: u64,
    ) -> Result<Self> {
        let resample = ResampleArgs::parse(method, "clamp", dtype, None, None, true).map_err(|e| match e {
            Error::InvalidArgument { arg, got, expected, .. } => Error::InvalidArgument { op: OP, arg, got, expected },
            other => other,
        })?;
        if let Some(r) = target_rate {
            if !(r.is_finite() && r > 0.0) {
                return Err(Error::arg(OP, "target_rate", r, "a finite rate > 0 (Hz)"));
            }
        }
        if let Some(n) = num_samples {
            if !(1..=MAX_TARGETS).contains(&n) {
                return Err(Error::arg(OP, "num_samples", n, format!("in range [1, {MAX_TARGETS}]")));
            }
        }
        let grid = OutputGrid { rate: target_rate, count: num_samples };
        if !(0..=MAX_KNOTS).contains(&warp_knots) {
            return Err(Error::arg(OP, "warp_knots", warp_knots, format!("in range [0, {MAX_KNOTS}]")));
        }
        Ok(JitterArgs { resample, grid, warp_knots: warp_knots as u32, seed })
    }
}

/// Validates one sample's ranges.
pub fn check_ranges(sample: usize, r: &JitterRanges) -> Result<()> {
    let [lo, hi] = r.speed;
    if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo <= hi) {
        return Err(Error::sample(
            OP,
            sample,
            format!("speed range [{lo}, {hi}] is empty or not positive; expected 0 < speed[0] <= speed[1]"),
        ));
    }
    let [lo, hi] = r.offset;
    if !(lo.is_finite() && hi.is_finite() && lo >= 0.0 && lo <= hi) {
        return Err(Error::sample(
            OP,
            sample,
            format!("offset range [{lo}, {hi}] is invalid; expected 0 <= offset[0] <= offset[1] (seconds)"),
        ));
    }
    if !(0.0..1.0).contains(&r.warp_strength) {
        return Err(Error::sample(OP, sample, format!("warp_strength is {}; expected it in [0, 1)", r.warp_strength)));
    }
    Ok(())
}

/// One sample's draw: speed, offset and the warp curve.
#[derive(Clone, Debug, PartialEq)]
pub struct Warp {
    /// Speed factor.
    pub speed: f64,
    /// Start offset, seconds (before clamping to the span).
    pub offset: f64,
    /// Speeds at the `knots + 2` evenly spaced knots (empty: no warp).
    pub knot_speed: Vec<f64>,
    /// Cumulative integral of the speed at each knot, normalised so the last is 1.
    pub knot_cum: Vec<f64>,
}

impl Warp {
    /// Draws sample `sample`'s warp at `iteration`.
    pub fn draw(args: &JitterArgs, r: &JitterRanges, iteration: u64, sample: usize) -> Warp {
        let key = Key { seed: args.seed, iteration, sample: sample as u32, stream: rng::stream::JITTER_PARAMS };
        let u = key.uniform2(0);
        let speed = rng::lerp(r.speed[0], r.speed[1], u[0]);
        let offset = rng::lerp(r.offset[0], r.offset[1], u[1]);
        let (mut knot_speed, mut knot_cum) = (Vec::new(), Vec::new());
        if r.warp_strength > 0.0 {
            let k = args.warp_knots as usize + 2;
            knot_speed = (0..k)
                .map(|j| {
                    let u = key.uniform2(1 + (j / 2) as u32)[j % 2];
                    1.0 + r.warp_strength * (2.0 * u - 1.0)
                })
                .collect();
            let h = 1.0 / (k - 1) as f64;
            knot_cum.push(0.0);
            for j in 0..k - 1 {
                let c = knot_cum[j] + 0.5 * (knot_speed[j] + knot_speed[j + 1]) * h;
                knot_cum.push(c);
            }
            let total = knot_cum[k - 1];
            knot_cum.iter_mut().for_each(|c| *c /= total);
        }
        Warp { speed, offset, knot_speed, knot_cum }
    }

    /// `W(x)` for `x` in `[0, 1]`: monotonic, `W(0) = 0`, `W(1) = 1`.
    pub fn map(&self, x: f64) -> f64 {
        let k = self.knot_speed.len();
        if k < 2 {
            return x;
        }
        let x = x.clamp(0.0, 1.0);
        let segs = (k - 1) as f64;
        let j = ((x * segs).floor() as usize).min(k - 2);
        let h = 1.0 / segs;
        let f = (x - j as f64 * h) / h;
        let (r0, r1) = (self.knot_speed[j], self.knot_speed[j + 1]);
        let total = {
            // un-normalised total, recovered from the first segment
            let first = 0.5 * (self.knot_speed[0] + self.knot_speed[1]) * h;
            first / self.knot_cum[1]
        };
        let w = self.knot_cum[j] + h * (r0 * f + 0.5 * (r1 - r0) * f * f) / total;
        w.clamp(0.0, 1.0)
    }
}

/// The planned warped source times of one sample (the resample targets and the second output).
pub fn plan_times<T: TimeVal>(
    args: &JitterArgs,
    sample: usize,
    times: &[T],
    warp: &Warp,
    ts_seconds: impl Fn(T, T) -> f64,
) -> Result<Vec<T>> {
    let (first, last) = (times[0], times[times.len() - 1]);
    let span = ts_seconds(first, last);
    let offset = warp.offset.min(span);
    let rate = match args.grid.rate {
        Some(r) => r,
        None if span > 0.0 => (times.len() - 1) as f64 / span,
        None => 0.0,
    };
    let (n, dur, length) = match args.grid.count {
        Some(n) => {
            let dur = if rate > 0.0 { (n - 1) as f64 / rate } else { 0.0 };
            (n, dur, warp.speed * dur)
        }
        None => {
            let dur = (span - offset) / warp.speed;
            // The point count in f64 first: `as i64` saturates, and `+ 1` would then wrap.
            let x = if dur > 0.0 && rate > 0.0 { dur * rate } else { 0.0 };
            if x + 1.0 > MAX_TARGETS as f64 {
                return Err(Error::sample(
                    OP,
                    sample,
                    format!(
                        "output grid has {:.0} points ({dur} s at {rate} Hz after the speed change), more than 2^31 - 1",
                        x.floor() + 1.0
                    ),
                ));
            }
            ((x + 1e-6).floor() as i64 + 1, dur, span - offset)
        }
    };
    if !(1..=MAX_TARGETS).contains(&n) {
        return Err(Error::sample(
            OP,
            sample,
            format!("output grid has {n} points ({dur} s at {rate} Hz after the speed change), more than 2^31 - 1"),
        ));
    }
    let mut out = Vec::with_capacity(n as usize);
    for k in 0..n {
        let tau = if rate > 0.0 { (k as f64 / rate).min(dur) } else { 0.0 };
        let x = if dur > 0.0 { tau / dur } else { 0.0 };
        let t = T::offset(first, offset + length * warp.map(x));
        out.push(if t > last { last } else { t });
    }
    Ok(out)
}

/// Validates one sample and plans it: `(warp, warped source times)`.
pub fn plan_any(
    args: &JitterArgs,
    ranges: &JitterRanges,
    iteration: u64,
    sample: usize,
    data_rows: usize,
    times: Times<'_>,
) -> Result<(Warp, PlannedTimes)> {
    check_ranges(sample, ranges)?;
    if times.is_empty() || data_rows == 0 {
        return Err(Error::sample(
            OP,
            sample,
            format!("empty sample: data has {data_rows} rows and timestamps {} entries", times.len()),
        ));
    }
    if data_rows != times.len() {
        return Err(Error::sample(
            OP,
            sample,
            format!("length mismatch: data has {data_rows} rows (T) but timestamps has {} entries", times.len()),
        ));
    }
    times.check_strictly_increasing("timestamps").map_err(|m| Error::sample(OP, sample, m))?;
    let warp = Warp::draw(args, ranges, iteration, sample);
    let planned = match times {
        Times::Seconds(t) => PlannedTimes::Seconds(plan_times(args, sample, t, &warp, |a, b| b - a)?),
        Times::Nanos(t) => {
            PlannedTimes::Nanos(plan_times(args, sample, t, &warp, |a, b| b.wrapping_sub(a) as f64 * 1e-9)?)
        }
    };
    Ok((warp, planned))
}

/// Warped source times of one sample, in the timestamps' type.
#[derive(Clone, Debug, PartialEq)]
pub enum PlannedTimes {
    /// float64 seconds.
    Seconds(Vec<f64>),
    /// int64 nanoseconds.
    Nanos(Vec<i64>),
}

impl PlannedTimes {
    /// Number of output points.
    pub fn len(&self) -> usize {
        match self {
            PlannedTimes::Seconds(v) => v.len(),
            PlannedTimes::Nanos(v) => v.len(),
        }
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A borrowed view.
    pub fn as_times(&self) -> Times<'_> {
        match self {
            PlannedTimes::Seconds(v) => Times::Seconds(v),
            PlannedTimes::Nanos(v) => Times::Nanos(v),
        }
    }
}

/// CPU backend for one planned sample: interpolates `data` `[T, c]` at the warped times.
///
/// # Errors
/// Output buffers of the wrong size or timestamp type.
#[allow(clippy::too_many_arguments)]
pub fn run_sample<E: Element>(
    args: &JitterArgs,
    sample: usize,
    data: &[E],
    c: usize,
    times: Times<'_>,
    planned: &PlannedTimes,
    out: &mut [E],
    out_times: TimesMut<'_>,
) -> Result<()> {
    let n = planned.len();
    if out.len() != n * c {
        return Err(Error::sample(OP, sample, format!("output holds {} values; expected {}", out.len(), n * c)));
    }
    let plan = |n: usize| Plan::<f64> { n: n as i64, grid: Grid::Explicit };
    match (times, planned, out_times) {
        (Times::Seconds(t), PlannedTimes::Seconds(tg), TimesMut::Seconds(ot)) if ot.len() == n => {
            rs::run_sample(&args.resample, &plan(n), data, c, t, tg, out, ot)
        }
        (Times::Nanos(t), PlannedTimes::Nanos(tg), TimesMut::Nanos(ot)) if ot.len() == n => {
            let p = Plan::<i64> { n: n as i64, grid: Grid::Explicit };
            rs::run_sample(&args.resample, &p, data, c, t, tg, out, ot)
        }
        _ => {
            return Err(Error::sample(
                OP,
                sample,
                "output timestamps must match the input timestamps' dtype and length",
            ))
        }
    }
    Ok(())
}

/// The data dtype after `dtype="bfloat16"`.
pub fn data_dtype(args: &JitterArgs, input: DType) -> Result<DType> {
    rs::resolve_data_dtype(OP, input, args.resample.declared)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(grid: (Option<f64>, Option<i64>), knots: i64) -> JitterArgs {
        // target_rate, num_samples
        JitterArgs::parse("linear", "", grid.0, grid.1, knots, 7).unwrap()
    }
    const R: JitterRanges = JitterRanges { speed: [0.8, 1.2], offset: [0.0, 0.0], warp_strength: 0.0 };

    #[test]
    fn warp_is_monotonic_and_ends_fixed() {
        let a = args((None, None), 4);
        let w = Warp::draw(&a, &JitterRanges { warp_strength: 0.9, ..R }, 3, 1);
        assert_eq!(w.knot_speed.len(), 6);
        assert!((w.map(0.0)).abs() < 1e-15 && (w.map(1.0) - 1.0).abs() < 1e-12);
        let mut prev = -1.0;
        for i in 0..=1000 {
            let y = w.map(i as f64 / 1000.0);
            assert!(y > prev, "{i}");
            prev = y;
        }
        for (j, c) in w.knot_cum.iter().enumerate() {
            assert!((w.map(j as f64 / 5.0) - c).abs() < 1e-12);
        }
    }

    #[test]
    fn speed_sets_duration_and_same_key_same_draw() {
        let a = args((Some(10.0), None), 0);
        let ts: Vec<f64> = (0..101).map(|i| 5.0 + i as f64 * 0.01).collect();
        let (w, p) = plan_any(&a, &R, 0, 2, 101, Times::Seconds(&ts)).unwrap();
        let n = p.len();
        assert_eq!(n as i64, ((1.0 / w.speed) * 10.0 + 1e-6).floor() as i64 + 1);
        let (w2, p2) = plan_any(&a, &R, 0, 2, 101, Times::Seconds(&ts)).unwrap();
        assert_eq!((w.clone(), p.clone()), (w2, p2));
        let (w3, _) = plan_any(&a, &R, 1, 2, 101, Times::Seconds(&ts)).unwrap();
        assert_ne!(w.speed, w3.speed);
        if let PlannedTimes::Seconds(v) = p {
            assert_eq!(v[0], 5.0);
            for (k, t) in v.iter().enumerate() {
                assert!((t - (5.0 + (k as f64 * 0.1 * w.speed).min(1.0))).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn fixed_length_window_reads_at_speed() {
        let a = args((Some(10.0), Some(5)), 0);
        let ts: Vec<f64> = (0..101).map(|i| i as f64 * 0.01).collect();
        let (w, p) = plan_any(&a, &R, 4, 0, 101, Times::Seconds(&ts)).unwrap();
        if let PlannedTimes::Seconds(v) = p {
            assert_eq!(v.len(), 5);
            for (k, t) in v.iter().enumerate() {
                assert!((t - w.speed * k as f64 * 0.1).abs() < 1e-12, "{v:?}");
            }
        }
    }

    #[test]
    fn bad_ranges() {
        let a = args((None, Some(8)), 2);
        let ts = [0.0, 1.0];
        let e = plan_any(&a, &JitterRanges { speed: [1.2, 0.8], ..R }, 0, 3, 2, Times::Seconds(&ts)).unwrap_err();
        assert!(
            e.to_string().starts_with("robocache.temporal_jitter: sample 3: speed range [1.2, 0.8] is empty"),
            "{e}"
        );
        let e = plan_any(&a, &JitterRanges { warp_strength: 1.0, ..R }, 0, 0, 2, Times::Seconds(&ts)).unwrap_err();
        assert!(e.to_string().contains("warp_strength"), "{e}");
        let e = plan_any(&a, &R, 0, 0, 3, Times::Seconds(&ts)).unwrap_err();
        assert!(e.to_string().contains("length mismatch"), "{e}");
        assert!(JitterArgs::parse("linear", "", Some(1.0), Some(3), 0, 0).is_ok());
        assert!(JitterArgs::parse("linear", "", Some(-1.0), None, 0, 0).is_err());
        assert!(JitterArgs::parse("linear", "", None, None, 65, 0).is_err());
    }

    #[test]
    fn huge_rate_reports_the_real_point_count() {
        // Regression: the count was cast to i64 (saturating) and then wrapped to i64::MIN.
        let a = args((Some(1e30), None), 0);
        let ts = [0.0, 1.0, 2.0];
        let e = plan_any(&a, &R, 0, 0, 3, Times::Seconds(&ts)).unwrap_err().to_string();
        assert!(e.contains("more than 2^31 - 1") && !e.contains("-9223372036854775808"), "{e}");
        let ns = [4_611_686_018_427_387_904i64, 4_611_686_018_427_387_905];
        let e = plan_any(&a, &R, 0, 0, 2, Times::Nanos(&ns)).unwrap_err().to_string();
        assert!(e.contains("more than 2^31 - 1"), "{e}");
    }
}
