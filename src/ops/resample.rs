//! `robocache.resample`: trajectory resampling onto a new time grid. This layer knows nothing about
//! DALI: it validates arguments and samples, plans output shapes from shapes, arguments and timestamps
//! (never data), and runs the CPU backend; `run_gpu` lives in `resample_gpu.rs`.
//!
//! Semantics (the schema doc in `dali_plugin/resample.cc` is the user documentation):
//! - target grid: `target_rate` (uniform, `a + k / rate` up to `b`), `num_samples` (evenly spaced,
//!   both ends included) or explicit target timestamps; `a`/`b` are the first/last timestamp, or
//!   `start`/`end` seconds after the first timestamp when given;
//! - methods: linear (`d[i] + w * (d[i+1] - d[i])`, `w` in f64 then the accumulator type), nearest
//!   (ties to the earlier sample) and previous (zero-order hold);
//! - outside the recorded span: clamp (edge value), nan, or error (found while planning).

use crate::dtype::{DType, Element, Times, TimesMut};
use crate::error::{Error, Result};

/// Operator name used in every message.
pub const OP: &str = "robocache.resample";

/// Largest number of target points one sample may ask for.
pub const MAX_TARGETS: i64 = (1 << 31) - 1;

/// Interpolation method. Discriminants are shared with `kernels/resample.cu`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Method {
    /// Linear interpolation between the two samples around the target.
    Linear = 0,
    /// The closest sample; ties go to the earlier one.
    Nearest = 1,
    /// The last sample at or before the target (zero-order hold).
    Previous = 2,
}

/// What targets outside the recorded span get. Discriminants are shared with the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Extrapolate {
    /// The edge value.
    Clamp = 0,
    /// NaN in every channel.
    Nan = 1,
    /// An error naming the sample.
    Error = 2,
}

/// The target form: exactly one per operator instance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// A uniform grid at this rate (Hz).
    Rate(f64),
    /// This many evenly spaced points.
    Count(i64),
    /// A per-sample `target_timestamps` input.
    Timestamps,
}

/// Parsed, validated operator arguments.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ResampleArgs {
    /// Interpolation method.
    pub method: Method,
    /// Out-of-span policy.
    pub extrapolate: Extrapolate,
    /// Target form.
    pub target: Target,
    /// `Some(BF16)` when uint16 data carries bfloat16 bits (`dtype="bfloat16"`).
    pub declared: Option<DType>,
}

impl ResampleArgs {
    /// Parses the operator's arguments; exactly one target form must be given.
    pub fn parse(
        method: &str,
        extrapolate: &str,
        dtype: &str,
        target_rate: Option<f64>,
        num_samples: Option<i64>,
        has_target_timestamps: bool,
    ) -> Result<Self> {
        let method = match method {
            "linear" => Method::Linear,
            "nearest" => Method::Nearest,
            "previous" => Method::Previous,
            other => {
                return Err(Error::arg(
                    OP,
                    "method",
                    format!("{other:?}"),
                    "one of \"linear\", \"nearest\", \"previous\"",
                ))
            }
        };
        let extrapolate = parse_extrapolate(extrapolate)?;
        let declared = parse_declared_dtype(OP, dtype)?;
        let given = [target_rate.is_some(), num_samples.is_some(), has_target_timestamps];
        let count = given.iter().filter(|g| **g).count();
        if count != 1 {
            return Err(Error::arg(
                OP,
                "target",
                format!(
                    "{count} target forms (target_rate: {}, num_samples: {}, target_timestamps input: {})",
                    given[0], given[1], given[2]
                ),
                "exactly one of `target_rate`, `num_samples` or a `target_timestamps` input",
            ));
        }
        let target = if let Some(r) = target_rate {
            if !(r.is_finite() && r > 0.0) {
                return Err(Error::arg(OP, "target_rate", r, "a finite rate > 0 (Hz)"));
            }
            Target::Rate(r)
        } else if let Some(n) = num_samples {
            if !(1..=MAX_TARGETS).contains(&n) {
                return Err(Error::arg(OP, "num_samples", n, format!("in range [1, {MAX_TARGETS}]")));
            }
            Target::Count(n)
        } else {
            Target::Timestamps
        };
        Ok(ResampleArgs { method, extrapolate, target, declared })
    }

    /// The data element type, given DALI's input type, after `dtype="bfloat16"` is applied.
    pub fn data_dtype(&self, input: DType) -> Result<DType> {
        resolve_data_dtype(OP, input, self.declared)
    }
}

/// Parses an `extrapolate` argument (shared by resampling operators).
pub fn parse_extrapolate(s: &str) -> Result<Extrapolate> {
    match s {
        "clamp" => Ok(Extrapolate::Clamp),
        "nan" => Ok(Extrapolate::Nan),
        "error" => Ok(Extrapolate::Error),
        other => Err(Error::arg(OP, "extrapolate", format!("{other:?}"), "one of \"clamp\", \"nan\", \"error\"")),
    }
}

/// Parses the `dtype` argument: "" (take DALI's type) or "bfloat16" (uint16 data holds bfloat16 bits).
pub fn parse_declared_dtype(op: &'static str, s: &str) -> Result<Option<DType>> {
    match s {
        "" => Ok(None),
        "bfloat16" => Ok(Some(DType::BF16)),
        "float32" => Ok(Some(DType::F32)),
        "float16" => Ok(Some(DType::F16)),
        "float64" => Ok(Some(DType::F64)),
        other => Err(Error::arg(
            op,
            "dtype",
            format!("{other:?}"),
            "\"\", \"float32\", \"float16\", \"float64\" or \"bfloat16\"",
        )),
    }
}

/// Resolves the data element type from DALI's type and the declared `dtype`.
pub fn resolve_data_dtype(op: &'static str, input: DType, declared: Option<DType>) -> Result<DType> {
    const EXPECTED: &str = "float32, float16, float64, or uint16 with dtype=\"bfloat16\"";
    match (input, declared) {
        (DType::U16, Some(DType::BF16)) => Ok(DType::BF16),
        (DType::U16, _) => Err(Error::UnsupportedDtype {
            op,
            what: "data",
            got: "uint16 (pass dtype=\"bfloat16\" if it holds bfloat16 bits)".into(),
            expected: EXPECTED,
        }),
        (t @ (DType::F32 | DType::F16 | DType::F64), None) => Ok(t),
        (t @ (DType::F32 | DType::F16 | DType::F64), Some(d)) if d == t => Ok(t),
        (t, Some(DType::BF16)) => Err(Error::UnsupportedDtype {
            op,
            what: "data",
            got: format!("{} with dtype=\"bfloat16\"", t.name()),
            expected: "uint16 bit patterns when dtype=\"bfloat16\"",
        }),
        (t, _) => Err(Error::UnsupportedDtype { op, what: "data", got: t.name().into(), expected: EXPECTED }),
    }
}

/// Checks a timestamps dtype: float64 seconds or int64 nanoseconds.
pub fn check_times_dtype(op: &'static str, what: &'static str, t: DType) -> Result<()> {
    match t {
        DType::F64 | DType::I64 => Ok(()),
        other => Err(Error::UnsupportedDtype {
            op,
            what,
            got: other.name().into(),
            expected: "float64 (seconds) or int64 (nanoseconds)",
        }),
    }
}

/// A timestamp value type: f64 seconds or i64 nanoseconds. The grid arithmetic below is mirrored
/// operation by operation in `kernels/resample.cu`, so CPU and GPU produce identical targets.
pub trait TimeVal: Copy + PartialOrd + Send + Sync + 'static {
    /// `a - b` as f64 in the native unit.
    fn diff(a: Self, b: Self) -> f64;
    /// `t0` plus an offset in seconds.
    fn offset(t0: Self, seconds: f64) -> Self;
    /// `b - a` in seconds.
    fn span_seconds(a: Self, b: Self) -> f64;
    /// Point `k` of the uniform grid at `rate` Hz from `a`, never past `b`.
    fn grid_rate(a: Self, b: Self, rate: f64, k: i64) -> Self;
    /// Point `k` of `n` evenly spaced points from `a` to `b`, both included.
    fn grid_count(a: Self, b: Self, n: i64, k: i64) -> Self;
    /// For messages.
    fn show(self) -> String;
    /// Whether `b - a` is representable (int64 nanoseconds may overflow).
    fn span_fits(_a: Self, _b: Self) -> bool {
        true
    }
}

impl TimeVal for f64 {
    fn diff(a: f64, b: f64) -> f64 {
        a - b
    }
    fn offset(t0: f64, seconds: f64) -> f64 {
        t0 + seconds
    }
    fn span_seconds(a: f64, b: f64) -> f64 {
        b - a
    }
    fn grid_rate(a: f64, b: f64, rate: f64, k: i64) -> f64 {
        let t = a + (k as f64) / rate;
        if t > b {
            b
        } else {
            t
        }
    }
    fn grid_count(a: f64, b: f64, n: i64, k: i64) -> f64 {
        if k == n - 1 {
            b
        } else if k == 0 {
            a
        } else {
            a + (b - a) * ((k as f64) / ((n - 1) as f64))
        }
    }
    fn show(self) -> String {
        format!("{self} s")
    }
}

impl TimeVal for i64 {
    fn diff(a: i64, b: i64) -> f64 {
        a.wrapping_sub(b) as f64
    }
    fn offset(t0: i64, seconds: f64) -> i64 {
        t0.saturating_add((seconds * 1e9).round_ties_even() as i64)
    }
    fn span_seconds(a: i64, b: i64) -> f64 {
        b.wrapping_sub(a) as f64 * 1e-9
    }
    fn grid_rate(a: i64, b: i64, rate: f64, k: i64) -> i64 {
        let t = a.saturating_add(((k as f64) / rate * 1e9).round_ties_even() as i64);
        t.min(b)
    }
    fn grid_count(a: i64, b: i64, n: i64, k: i64) -> i64 {
        if k == n - 1 {
            b
        } else if k == 0 {
            a
        } else {
            a + ((b - a) as f64 * ((k as f64) / ((n - 1) as f64))).round_ties_even() as i64
        }
    }
    fn show(self) -> String {
        format!("{self} ns")
    }
    fn span_fits(a: i64, b: i64) -> bool {
        b.checked_sub(a).is_some()
    }
}

/// The target grid of one sample, in the timestamps' own type.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Grid<T> {
    /// `a + k / rate`, clipped to `b`.
    Rate { a: T, b: T, rate: f64 },
    /// `n` points from `a` to `b`.
    Count { a: T, b: T, n: i64 },
    /// Explicit targets from the third input.
    Explicit,
}

/// Per-sample window, in seconds after the first timestamp (`start`/`end` arguments).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Window {
    /// Grid start, seconds after the first timestamp.
    pub start: Option<f64>,
    /// Grid end, seconds after the first timestamp.
    pub end: Option<f64>,
}

/// The plan of one sample: how many targets, on which grid.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan<T> {
    /// Number of output rows.
    pub n: i64,
    /// The grid.
    pub grid: Grid<T>,
}

impl<T: TimeVal> Grid<T> {
    /// Target `k`; `explicit` holds the third input for [`Grid::Explicit`].
    #[inline]
    pub fn at(&self, k: i64, explicit: &[T]) -> T {
        match *self {
            Grid::Rate { a, b, rate } => T::grid_rate(a, b, rate, k),
            Grid::Count { a, b, n } => T::grid_count(a, b, n, k),
            Grid::Explicit => explicit[k as usize],
        }
    }
}

/// Validates one sample and plans its grid. Looks at shapes, arguments and timestamps only.
///
/// # Errors
/// Empty sample, length mismatch, timestamps not strictly increasing or not finite, a bad window,
/// a grid over 2^31 - 1 points, or (with `extrapolate="error"`) targets outside the recorded span.
pub fn plan_sample<T: TimeVal>(
    args: &ResampleArgs,
    sample: usize,
    data_len: usize,
    times: &[T],
    window: Window,
    targets: Option<&[T]>,
    check: impl Fn(&[T]) -> std::result::Result<(), String>,
) -> Result<Plan<T>> {
    let err = |m: String| Error::sample(OP, sample, m);
    if times.is_empty() || data_len == 0 {
        return Err(err(format!(
            "empty sample: data has {data_len} rows and timestamps {} entries; at least one is needed",
            times.len()
        )));
    }
    if data_len != times.len() {
        return Err(err(format!(
            "length mismatch: data has {data_len} rows (T) but timestamps has {} entries",
            times.len()
        )));
    }
    check(times).map_err(err)?;
    let (first, last) = (times[0], times[times.len() - 1]);
    for (name, v) in [("start", window.start), ("end", window.end)] {
        if let Some(v) = v {
            if !v.is_finite() {
                return Err(err(format!("`{name}` is {v}; expected a finite offset in seconds")));
            }
        }
    }
    let a = window.start.map_or(first, |s| T::offset(first, s));
    let b = window.end.map_or(last, |e| T::offset(first, e));
    if !T::span_fits(a, b) {
        return Err(err(format!(
            "window [{}, {}] (start={:?}, end={:?} seconds after the first timestamp) spans more than 2^63 - 1 ns",
            a.show(),
            b.show(),
            window.start,
            window.end
        )));
    }
    let outside = |lo: T, hi: T| lo < first || hi > last;
    let plan = match args.target {
        Target::Rate(_) | Target::Count(_) if b < a => {
            return Err(err(format!(
                "window end {} is before its start {} (start={:?}, end={:?} seconds after the first timestamp)",
                b.show(),
                a.show(),
                window.start,
                window.end
            )))
        }
        Target::Rate(rate) => {
            let x = T::span_seconds(a, b) * rate;
            if x + 1.0 > MAX_TARGETS as f64 {
                return Err(err(format!(
                    "target grid has {:.0} points ({} s at {rate} Hz), more than 2^31 - 1",
                    x.floor() + 1.0,
                    T::span_seconds(a, b)
                )));
            }
            Plan { n: (x + 1e-6).floor() as i64 + 1, grid: Grid::Rate { a, b, rate } }
        }
        Target::Count(n) => Plan { n, grid: Grid::Count { a, b, n } },
        Target::Timestamps => {
            let t = targets.ok_or_else(|| err("missing target_timestamps input".into()))?;
            if t.len() as i64 > MAX_TARGETS {
                return Err(err(format!("{} target timestamps, more than 2^31 - 1", t.len())));
            }
            Plan { n: t.len() as i64, grid: Grid::Explicit }
        }
    };
    if args.extrapolate == Extrapolate::Error {
        let (lo, hi) = match (plan.grid, targets) {
            (Grid::Explicit, Some(t)) if !t.is_empty() => {
                let lo = t.iter().copied().fold(t[0], |m, x| if x < m { x } else { m });
                let hi = t.iter().copied().fold(t[0], |m, x| if x > m { x } else { m });
                (lo, hi)
            }
            (Grid::Explicit, _) => (first, first),
            _ => (a, b),
        };
        if outside(lo, hi) {
            return Err(err(format!(
                "targets [{}, {}] fall outside the recorded span [{}, {}] and extrapolate=\"error\"",
                lo.show(),
                hi.show(),
                first.show(),
                last.show()
            )));
        }
    }
    Ok(plan)
}

/// Where a target falls: no value (NaN), one source row, or between rows `i` and `i + 1` at weight `w`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pick {
    /// NaN (outside the span with extrapolate="nan").
    Nan,
    /// Copy row `i`.
    Row(usize),
    /// `d[i] + w * (d[i+1] - d[i])`.
    Lerp(usize, f64),
}

/// Locates target `t` in `times` (strictly increasing, non-empty). Mirrored by `locate` in the kernel.
#[inline]
pub fn pick<T: TimeVal>(times: &[T], t: T, method: Method, extrapolate: Extrapolate) -> Pick {
    let n = times.len();
    if t < times[0] || t > times[n - 1] {
        return match extrapolate {
            Extrapolate::Nan => Pick::Nan,
            _ if t < times[0] => Pick::Row(0),
            _ => Pick::Row(n - 1),
        };
    }
    let i = times.partition_point(|x| *x <= t) - 1;
    if i == n - 1 || times[i] == t {
        return Pick::Row(i);
    }
    match method {
        Method::Previous => Pick::Row(i),
        Method::Nearest => {
            if T::diff(t, times[i]) <= T::diff(times[i + 1], t) {
                Pick::Row(i)
            } else {
                Pick::Row(i + 1)
            }
        }
        Method::Linear => Pick::Lerp(i, T::diff(t, times[i]) / T::diff(times[i + 1], times[i])),
    }
}

/// Writes one output row for `p`.
#[inline]
fn write_row<E: Element>(p: Pick, data: &[E], c: usize, out: &mut [E]) {
    match p {
        Pick::Nan => out.iter_mut().for_each(|o| *o = E::nan()),
        Pick::Row(i) => out.copy_from_slice(&data[i * c..(i + 1) * c]),
        Pick::Lerp(i, w) => {
            let w = E::weight(w);
            let (r0, r1) = (&data[i * c..(i + 1) * c], &data[(i + 1) * c..(i + 2) * c]);
            for ((o, &x0), &x1) in out.iter_mut().zip(r0).zip(r1) {
                let (a, b) = (x0.to_acc(), x1.to_acc());
                *o = E::from_acc(a + w * (b - a));
            }
        }
    }
}

/// CPU backend for one sample: `data` is `[T, c]` row-major, `out` is `[plan.n, c]`.
#[allow(clippy::too_many_arguments)]
pub fn run_sample<E: Element, T: TimeVal>(
    args: &ResampleArgs,
    plan: &Plan<T>,
    data: &[E],
    c: usize,
    times: &[T],
    targets: &[T],
    out: &mut [E],
    out_times: &mut [T],
) {
    for k in 0..plan.n as usize {
        let t = plan.grid.at(k as i64, targets);
        out_times[k] = t;
        let p = pick(times, t, args.method, args.extrapolate);
        write_row(p, data, c, &mut out[k * c..(k + 1) * c]);
    }
}

/// Plans one sample whatever its timestamp type; returns the number of output rows.
pub fn plan_any(
    args: &ResampleArgs,
    sample: usize,
    data_len: usize,
    times: Times<'_>,
    window: Window,
    targets: Option<Times<'_>>,
) -> Result<i64> {
    match (times, targets) {
        (Times::Seconds(t), tg) => {
            let tg = match tg {
                Some(Times::Seconds(x)) => Some(x),
                Some(Times::Nanos(_)) => return Err(target_kind_mismatch(sample, "float64", "int64")),
                None => None,
            };
            if let Some(x) = tg {
                if let Some(i) = x.iter().position(|v| !v.is_finite()) {
                    return Err(Error::sample(
                        OP,
                        sample,
                        format!("target_timestamps[{i}] is {}: targets must be finite", x[i]),
                    ));
                }
            }
            plan_sample(args, sample, data_len, t, window, tg, |s| {
                Times::Seconds(s).check_strictly_increasing("timestamps")
            })
            .map(|p| p.n)
        }
        (Times::Nanos(t), tg) => {
            let tg = match tg {
                Some(Times::Nanos(x)) => Some(x),
                Some(Times::Seconds(_)) => return Err(target_kind_mismatch(sample, "int64", "float64")),
                None => None,
            };
            plan_sample(args, sample, data_len, t, window, tg, |s| {
                Times::Nanos(s).check_strictly_increasing("timestamps")
            })
            .map(|p| p.n)
        }
    }
}

fn target_kind_mismatch(sample: usize, ts: &str, tg: &str) -> Error {
    Error::sample(
        OP,
        sample,
        format!("target_timestamps are {tg} but timestamps are {ts}; both must be float64 seconds or both int64 nanoseconds"),
    )
}

/// CPU backend for one sample whatever its types: validates, plans and resamples.
///
/// # Errors
/// As [`plan_sample`], plus output buffers of the wrong size.
#[allow(clippy::too_many_arguments)]
pub fn run_any<E: Element>(
    args: &ResampleArgs,
    sample: usize,
    data: &[E],
    c: usize,
    times: Times<'_>,
    window: Window,
    targets: Option<Times<'_>>,
    out: &mut [E],
    out_times: TimesMut<'_>,
) -> Result<()> {
    let rows = data.len().checked_div(c).unwrap_or(0);
    let n = plan_any(args, sample, rows, times, window, targets)? as usize;
    let out_len = match &out_times {
        TimesMut::Seconds(o) => o.len(),
        TimesMut::Nanos(o) => o.len(),
    };
    if out.len() != n * c || out_len != n || data.len() != rows * c {
        return Err(Error::sample(
            OP,
            sample,
            format!("output buffers hold {} values and {out_len} timestamps; expected {} and {n}", out.len(), n * c),
        ));
    }
    match (times, targets, out_times) {
        (Times::Seconds(t), tg, TimesMut::Seconds(ot)) => {
            let tg = match tg {
                Some(Times::Seconds(x)) => x,
                _ => &[],
            };
            let plan = plan_sample(
                args,
                sample,
                rows,
                t,
                window,
                Some(tg).filter(|_| args.target == Target::Timestamps),
                |_| Ok(()),
            )?;
            run_sample(args, &plan, data, c, t, tg, out, ot);
        }
        (Times::Nanos(t), tg, TimesMut::Nanos(ot)) => {
            let tg = match tg {
                Some(Times::Nanos(x)) => x,
                _ => &[],
            };
            let plan = plan_sample(
                args,
                sample,
                rows,
                t,
                window,
                Some(tg).filter(|_| args.target == Target::Timestamps),
                |_| Ok(()),
            )?;
            run_sample(args, &plan, data, c, t, tg, out, ot);
        }
        _ => {
            return Err(Error::sample(OP, sample, "output timestamps must have the input timestamps' dtype"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(method: &str, extrap: &str, rate: Option<f64>, n: Option<i64>, tg: bool) -> ResampleArgs {
        ResampleArgs::parse(method, extrap, "", rate, n, tg).unwrap()
    }

    #[test]
    fn parse_rejects_bad_arguments() {
        let e = ResampleArgs::parse("cubic", "clamp", "", Some(1.0), None, false).unwrap_err();
        assert!(e.to_string().contains("robocache.resample: invalid argument `method`"), "{e}");
        let e = ResampleArgs::parse("linear", "clamp", "", Some(0.0), None, false).unwrap_err();
        assert!(e.to_string().contains("`target_rate`: got 0"), "{e}");
        let e = ResampleArgs::parse("linear", "clamp", "", Some(5.0), Some(3), false).unwrap_err();
        assert!(e.to_string().contains("exactly one of"), "{e}");
        let e = ResampleArgs::parse("linear", "clamp", "", None, None, false).unwrap_err();
        assert!(e.to_string().contains("0 target forms"), "{e}");
        let e = ResampleArgs::parse("linear", "wrap", "", Some(1.0), None, false).unwrap_err();
        assert!(e.to_string().contains("`extrapolate`"), "{e}");
        let e = ResampleArgs::parse("linear", "clamp", "int8", Some(1.0), None, false).unwrap_err();
        assert!(e.to_string().contains("`dtype`"), "{e}");
    }

    #[test]
    fn dtype_resolution() {
        let a = ResampleArgs::parse("linear", "clamp", "bfloat16", Some(1.0), None, false).unwrap();
        assert_eq!(a.data_dtype(DType::U16).unwrap(), DType::BF16);
        assert!(a.data_dtype(DType::F32).is_err());
        let a = args("linear", "clamp", Some(1.0), None, false);
        assert!(a.data_dtype(DType::U16).unwrap_err().to_string().contains("bfloat16"));
        assert!(a.data_dtype(DType::I32).is_err());
        assert_eq!(a.data_dtype(DType::F16).unwrap(), DType::F16);
    }

    #[test]
    fn rate_grid_counts_and_ends() {
        let a = args("linear", "clamp", Some(30.0), None, false);
        let ts: Vec<f64> = (0..11).map(|i| 10.0 + i as f64 * 0.1).collect();
        let p = plan_sample(&a, 0, 11, &ts, Window::default(), None, |_| Ok(())).unwrap();
        assert_eq!(p.n, 31);
        assert_eq!(p.grid.at(30, &[]), 11.0);
        let ns: Vec<i64> = (0..11).map(|i| 5_000_000_000 + i * 100_000_000).collect();
        let p = plan_sample(&a, 0, 11, &ns, Window::default(), None, |_| Ok(())).unwrap();
        assert_eq!(p.n, 31);
        assert_eq!(p.grid.at(1, &[]), 5_033_333_333);
        assert_eq!(p.grid.at(30, &[]), 6_000_000_000);
    }

    #[test]
    fn count_grid_includes_both_ends() {
        let a = args("linear", "clamp", None, Some(4), false);
        let ts = [1.0, 2.0, 4.0];
        let p = plan_sample(&a, 0, 3, &ts, Window { start: Some(0.5), end: None }, None, |_| Ok(())).unwrap();
        let g: Vec<f64> = (0..4).map(|k| p.grid.at(k, &[])).collect();
        assert_eq!((g[0], g[3]), (1.5, 4.0));
        for (k, v) in g.iter().enumerate() {
            assert!((v - (1.5 + k as f64 * 2.5 / 3.0)).abs() < 1e-12, "{g:?}");
        }
    }

    #[test]
    fn pick_methods() {
        let ts = [0.0, 1.0, 3.0];
        assert_eq!(pick(&ts, 0.5, Method::Linear, Extrapolate::Clamp), Pick::Lerp(0, 0.5));
        assert_eq!(pick(&ts, 2.0, Method::Nearest, Extrapolate::Clamp), Pick::Row(1));
        assert_eq!(pick(&ts, 2.5, Method::Nearest, Extrapolate::Clamp), Pick::Row(2));
        assert_eq!(pick(&ts, 2.9, Method::Previous, Extrapolate::Clamp), Pick::Row(1));
        assert_eq!(pick(&ts, 3.0, Method::Linear, Extrapolate::Clamp), Pick::Row(2));
        assert_eq!(pick(&ts, 1.0, Method::Linear, Extrapolate::Clamp), Pick::Row(1));
        assert_eq!(pick(&ts, -1.0, Method::Linear, Extrapolate::Clamp), Pick::Row(0));
        assert_eq!(pick(&ts, 4.0, Method::Linear, Extrapolate::Nan), Pick::Nan);
    }

    #[test]
    fn bad_samples_name_the_problem() {
        let a = args("linear", "clamp", Some(10.0), None, false);
        let chk = |s: &[f64]| Times::Seconds(s).check_strictly_increasing("timestamps");
        let e = plan_sample(&a, 3, 2, &[0.0, 0.0], Window::default(), None, chk).unwrap_err();
        assert_eq!(
            e.to_string(),
            "robocache.resample: sample 3: timestamps not strictly increasing at index 1: 0 after 0"
        );
        let e = plan_sample(&a, 1, 3, &[0.0, 1.0], Window::default(), None, chk).unwrap_err();
        assert!(e.to_string().contains("sample 1: length mismatch: data has 3 rows"), "{e}");
        let e = plan_sample(&a, 0, 0, &[] as &[f64], Window::default(), None, chk).unwrap_err();
        assert!(e.to_string().contains("empty sample"), "{e}");
        let e = plan_sample(&a, 0, 2, &[0.0, f64::NAN], Window::default(), None, chk).unwrap_err();
        assert!(e.to_string().contains("timestamps[1] is NaN"), "{e}");
        let big = args("linear", "clamp", Some(1e9), None, false);
        let e = plan_sample(&big, 2, 2, &[0.0, 10.0], Window::default(), None, chk).unwrap_err();
        assert!(e.to_string().contains("more than 2^31 - 1"), "{e}");
        let err = args("linear", "error", Some(10.0), None, false);
        let e = plan_sample(&err, 0, 2, &[0.0, 1.0], Window { start: Some(-0.5), end: None }, None, chk).unwrap_err();
        assert!(e.to_string().contains("outside the recorded span"), "{e}");
    }

    #[test]
    fn cpu_linear_matches_hand_values() {
        let a = args("linear", "clamp", None, Some(5), false);
        let data = [0.0f32, 10.0, 2.0, 20.0, 4.0, 40.0];
        let ts = [0.0f64, 1.0, 2.0];
        let mut out = vec![0.0f32; 10];
        let mut ot = vec![0.0f64; 5];
        run_any(&a, 0, &data, 2, Times::Seconds(&ts), Window::default(), None, &mut out, TimesMut::Seconds(&mut ot))
            .unwrap();
        assert_eq!(ot, vec![0.0, 0.5, 1.0, 1.5, 2.0]);
        assert_eq!(out, vec![0.0, 10.0, 1.0, 15.0, 2.0, 20.0, 3.0, 30.0, 4.0, 40.0]);
    }

    #[test]
    fn nanosecond_spans_that_overflow_are_errors_not_negative_lengths() {
        // Regression (found by the bridge fuzzer): a window start far before the first timestamp
        // saturated to i64::MIN and the wrapped span planned a negative number of targets.
        let a = args("linear", "clamp", Some(1.0), None, false);
        let t = [4_611_686_018_427_387_904i64, 4_611_686_018_427_387_905];
        let w = Window { start: Some(-1e30), end: None };
        let e = plan_any(&a, 2, 2, Times::Nanos(&t), w, None).unwrap_err().to_string();
        assert!(e.starts_with("robocache.resample: sample 2: window [") && e.contains("more than 2^63 - 1 ns"), "{e}");
        let t = [i64::MIN + 5, i64::MAX - 5];
        let e = plan_any(&a, 0, 2, Times::Nanos(&t), Window::default(), None).unwrap_err().to_string();
        assert!(e.contains("timestamps span") && e.contains("more than 2^63 - 1 ns"), "{e}");
        let n = args("linear", "clamp", None, Some(4), false);
        let t = [-4_611_686_018_427_387_903i64, 4_611_686_018_427_387_904];
        assert_eq!(plan_any(&n, 0, 2, Times::Nanos(&t), Window::default(), None).unwrap(), 4);
    }
}
