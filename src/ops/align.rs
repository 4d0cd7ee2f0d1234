//! `robocache.align`: multi-rate sensor streams fused onto one reference clock, with per-stream
//! validity. This layer knows nothing about DALI: it parses and validates arguments, plans the
//! reference clock of each sample from shapes, arguments and timestamps (never data), and runs the
//! CPU backend; `run_gpu` lives in `align_gpu.rs` and mirrors [`locate`] step by step.
//!
//! Semantics (the schema doc in `dali_plugin/align.cc` is the user documentation):
//! - a row of a stream is *missing* when any of its channels is NaN;
//! - for a step `t` and a stream: outside `[ts[0], ts[T-1]]` is invalid; a valid row at exactly `t`
//!   is taken as is; otherwise `L` is the last valid row at or before `t` and `R` the first valid
//!   row after it, and the step is invalid when either is missing or `ts[R] - ts[L] > max_gap`;
//! - valid steps interpolate between `L` and `R` (linear / nearest, ties to `L` / previous = `L`);
//!   quaternion groups use SLERP (float64, shortest arc, unit output);
//! - invalid steps are filled: `hold` (`L`, else `R`, else the nearest valid row at the span's edge;
//!   NaN when the stream has no valid row), `nan`, or `zero` (identity for quaternion groups).

use crate::dtype::{DType, Times};
use crate::error::{Error, Result};
use crate::ops::resample::{parse_declared_dtype, resolve_data_dtype, Grid, Method, Plan, TimeVal, MAX_TARGETS};

/// Operator name used in every message.
pub const OP: &str = "robocache.align";

/// Most streams one operator instance takes (the schema's input count is `2 * MAX_STREAMS + 1`).
pub const MAX_STREAMS: usize = 8;

/// What invalid steps get. Discriminants are shared with `kernels/align.cu`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Fill {
    /// The last valid row at or before the step (else the first valid row after it).
    Hold = 0,
    /// NaN in every channel of the stream.
    Nan = 1,
    /// Zero (the identity rotation in quaternion groups).
    Zero = 2,
}

/// The span a `target_rate` / `num_samples` clock covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Span {
    /// From the latest first timestamp to the earliest last timestamp of the streams.
    Intersection,
    /// From the earliest first timestamp to the latest last timestamp.
    Union,
}

/// The reference clock form.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Clock {
    /// Uniform at this rate (Hz) over the span.
    Rate(f64),
    /// This many evenly spaced points over the span, both ends included.
    Count(i64),
    /// A per-sample reference timestamps input (the last input).
    Timestamps,
}

/// Parsed, validated operator arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct AlignArgs {
    /// Number of streams N.
    pub streams: usize,
    /// Per-stream interpolation method.
    pub methods: Vec<Method>,
    /// Per-stream largest bridgeable gap, seconds (`inf`: none).
    pub max_gap: Vec<f64>,
    /// Quaternion groups: (stream, first channel), sorted.
    pub quaternions: Vec<(usize, usize)>,
    /// Quaternion component order: true for `"wxyz"`, false for `"xyzw"`.
    pub wxyz: bool,
    /// Fill policy of invalid steps.
    pub fill: Fill,
    /// Span of a generated clock.
    pub span: Span,
    /// The reference clock.
    pub clock: Clock,
    /// `Some(BF16)` when uint16 data carries bfloat16 bits.
    pub declared: Option<DType>,
}

/// Raw argument values as the operator receives them.
#[derive(Clone, Debug, Default)]
pub struct RawArgs<'a> {
    /// Number of regular inputs: `2 N`, or `2 N + 1` with reference timestamps last.
    pub num_inputs: usize,
    /// `methods` (empty: all linear).
    pub methods: &'a [String],
    /// `max_gap` (empty: no limit).
    pub max_gap: &'a [f64],
    /// `quaternions`, flat (stream, first channel) pairs.
    pub quaternions: &'a [i64],
    /// `quaternion_order`.
    pub quaternion_order: &'a str,
    /// `fill`.
    pub fill: &'a str,
    /// `span`.
    pub span: &'a str,
    /// `dtype`.
    pub dtype: &'a str,
    /// `target_rate`.
    pub target_rate: Option<f64>,
    /// `num_samples`.
    pub num_samples: Option<i64>,
}

fn list_len_err(arg: &'static str, got: usize, n: usize) -> Error {
    Error::arg(OP, arg, format!("a list of {got} values"), format!("one value per stream ({n} streams), or none"))
}

impl AlignArgs {
    /// Parses the operator's arguments.
    ///
    /// # Errors
    /// Zero or too many streams, list arguments whose length is not the number of streams, unknown
    /// names, bad quaternion pairs, and none or more than one clock form.
    pub fn parse(r: &RawArgs<'_>) -> Result<Self> {
        let streams = r.num_inputs / 2;
        let has_ref = r.num_inputs % 2 == 1;
        if streams == 0 {
            return Err(Error::arg(
                OP,
                "inputs",
                format!("{} input(s), i.e. zero streams", r.num_inputs),
                "at least one (data, timestamps) pair",
            ));
        }
        if streams > MAX_STREAMS {
            return Err(Error::arg(OP, "inputs", format!("{streams} streams"), format!("at most {MAX_STREAMS}")));
        }
        let methods = if r.methods.is_empty() {
            vec![Method::Linear; streams]
        } else if r.methods.len() != streams {
            return Err(list_len_err("methods", r.methods.len(), streams));
        } else {
            r.methods
                .iter()
                .map(|m| match m.as_str() {
                    "linear" => Ok(Method::Linear),
                    "nearest" => Ok(Method::Nearest),
                    "previous" => Ok(Method::Previous),
                    other => Err(Error::arg(
                        OP,
                        "methods",
                        format!("{other:?}"),
                        "each one of \"linear\", \"nearest\", \"previous\"",
                    )),
                })
                .collect::<Result<Vec<_>>>()?
        };
        let max_gap = if r.max_gap.is_empty() {
            vec![f64::INFINITY; streams]
        } else if r.max_gap.len() != streams {
            return Err(list_len_err("max_gap", r.max_gap.len(), streams));
        } else {
            for &g in r.max_gap {
                if g.is_nan() || g < 0.0 {
                    return Err(Error::arg(OP, "max_gap", g, "each >= 0 seconds (inf: no limit)"));
                }
            }
            r.max_gap.to_vec()
        };
        if r.quaternions.len() % 2 != 0 {
            return Err(Error::arg(
                OP,
                "quaternions",
                format!("{} values", r.quaternions.len()),
                "a flat list of (stream, first channel) pairs: an even number of values",
            ));
        }
        let mut quaternions = Vec::new();
        for p in r.quaternions.chunks(2) {
            let (s, c) = (p[0], p[1]);
            if s < 0 || s as usize >= streams || c < 0 {
                return Err(Error::arg(
                    OP,
                    "quaternions",
                    format!("the pair ({s}, {c})"),
                    format!("a stream index in [0, {streams}) and a first channel >= 0"),
                ));
            }
            quaternions.push((s as usize, c as usize));
        }
        quaternions.sort_unstable();
        for w in quaternions.windows(2) {
            if w[0].0 == w[1].0 && w[1].1 < w[0].1 + 4 {
                return Err(Error::arg(
                    OP,
                    "quaternions",
                    format!("overlapping groups at channels {} and {} of stream {}", w[0].1, w[1].1, w[0].0),
                    "groups of 4 channels that do not overlap",
                ));
            }
        }
        let wxyz = match r.quaternion_order {
            "xyzw" => false,
            "wxyz" => true,
            other => return Err(Error::arg(OP, "quaternion_order", format!("{other:?}"), "\"xyzw\" or \"wxyz\"")),
        };
        let fill = match r.fill {
            "hold" => Fill::Hold,
            "nan" => Fill::Nan,
            "zero" => Fill::Zero,
            other => return Err(Error::arg(OP, "fill", format!("{other:?}"), "one of \"hold\", \"nan\", \"zero\"")),
        };
        let span = match r.span {
            "intersection" => Span::Intersection,
            "union" => Span::Union,
            other => return Err(Error::arg(OP, "span", format!("{other:?}"), "\"intersection\" or \"union\"")),
        };
        let declared = parse_declared_dtype(OP, r.dtype)?;
        let given = [r.target_rate.is_some(), r.num_samples.is_some(), has_ref];
        let count = given.iter().filter(|g| **g).count();
        if count != 1 {
            return Err(Error::arg(
                OP,
                "reference",
                format!(
                    "{count} reference clock forms (target_rate: {}, num_samples: {}, reference timestamps input: {})",
                    given[0], given[1], given[2]
                ),
                "exactly one of `target_rate`, `num_samples` or a reference timestamps input (an odd number of inputs)",
            ));
        }
        let clock = if let Some(x) = r.target_rate {
            if !(x.is_finite() && x > 0.0) {
                return Err(Error::arg(OP, "target_rate", x, "a finite rate > 0 (Hz)"));
            }
            Clock::Rate(x)
        } else if let Some(n) = r.num_samples {
            if !(1..=MAX_TARGETS).contains(&n) {
                return Err(Error::arg(OP, "num_samples", n, format!("in range [1, {MAX_TARGETS}]")));
            }
            Clock::Count(n)
        } else {
            Clock::Timestamps
        };
        Ok(AlignArgs { streams, methods, max_gap, quaternions, wxyz, fill, span, clock, declared })
    }

    /// The data element type of every stream, given DALI's input type.
    pub fn data_dtype(&self, input: DType) -> Result<DType> {
        resolve_data_dtype(OP, input, self.declared)
    }
}

/// The batch-wide channel layout: per-stream widths, their offsets in the fused row, quaternions.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    /// C_s per stream.
    pub channels: Vec<usize>,
    /// First fused channel of each stream.
    pub offsets: Vec<usize>,
    /// Sum of C_s.
    pub total: usize,
    /// Per stream: first channels (stream-local) of its quaternion groups.
    pub quats: Vec<Vec<usize>>,
}

impl Layout {
    /// Builds the layout from the streams' channel counts and checks quaternion groups fit.
    ///
    /// # Errors
    /// A quaternion group past the last channel of its stream.
    pub fn new(args: &AlignArgs, channels: &[usize]) -> Result<Self> {
        let mut offsets = Vec::with_capacity(channels.len());
        let mut total = 0usize;
        for &c in channels {
            offsets.push(total);
            total += c;
        }
        let mut quats = vec![Vec::new(); channels.len()];
        for &(s, f) in &args.quaternions {
            if f + 4 > channels[s] {
                return Err(Error::arg(
                    OP,
                    "quaternions",
                    format!("a group at channels {f}..{} of stream {s}, which has {} channels", f + 3, channels[s]),
                    "4 consecutive channels inside the stream",
                ));
            }
            quats[s].push(f);
        }
        Ok(Layout { channels: channels.to_vec(), offsets, total, quats })
    }

    /// Per fused channel: (stream, fused first channel of its quaternion group or -1); the kernel's map.
    pub fn chan_map(&self) -> Vec<[i32; 2]> {
        let mut m = Vec::with_capacity(self.total);
        for (s, &c) in self.channels.iter().enumerate() {
            for j in 0..c {
                let q = self.quats[s].iter().find(|&&f| j >= f && j < f + 4);
                m.push([s as i32, q.map_or(-1, |&f| (self.offsets[s] + f) as i32)]);
            }
        }
        m
    }
}

/// A timestamp type as `align` needs it: [`TimeVal`] plus validation and unit conversion.
pub trait AlignTime: TimeVal {
    /// Wraps a slice for [`Times::check_strictly_increasing`].
    fn times(s: &[Self]) -> Times<'_>;
    /// `seconds` in the native unit (s or ns), as the f64 the gap test compares with [`TimeVal::diff`].
    fn native(seconds: f64) -> f64;
    /// Checks a reference value is usable (finite).
    fn finite(self) -> bool;
}

impl AlignTime for f64 {
    fn times(s: &[f64]) -> Times<'_> {
        Times::Seconds(s)
    }
    fn native(seconds: f64) -> f64 {
        seconds
    }
    fn finite(self) -> bool {
        self.is_finite()
    }
}

impl AlignTime for i64 {
    fn times(s: &[i64]) -> Times<'_> {
        Times::Nanos(s)
    }
    fn native(seconds: f64) -> f64 {
        seconds * 1e9
    }
    fn finite(self) -> bool {
        true
    }
}

/// Validates one sample (every stream, the reference) and plans its clock.
///
/// `streams[s]` is (data rows, timestamps). With `check == false` the timestamps are not re-scanned
/// (the GPU launch re-plans samples its setup step validated).
///
/// # Errors
/// Empty streams, length mismatches, timestamps not strictly increasing or not finite, non-finite
/// reference timestamps, streams that do not overlap with `span="intersection"`, too large grids.
pub fn plan_sample<T: AlignTime>(
    args: &AlignArgs,
    sample: usize,
    streams: &[(usize, &[T])],
    reference: Option<&[T]>,
    check: bool,
) -> Result<Plan<T>> {
    let err = |m: String| Error::sample(OP, sample, m);
    // Latest first and earliest last timestamps (with their streams), earliest first and latest last.
    let mut lo: Option<(T, usize)> = None;
    let mut hi: Option<(T, usize)> = None;
    let (mut ulo, mut uhi): (Option<T>, Option<T>) = (None, None);
    for (s, &(rows, times)) in streams.iter().enumerate() {
        if check {
            if times.is_empty() || rows == 0 {
                return Err(err(format!(
                    "stream {s}: empty: data has {rows} rows and timestamps {} entries; at least one is needed",
                    times.len()
                )));
            }
            if rows != times.len() {
                return Err(err(format!(
                    "stream {s}: length mismatch: data has {rows} rows (T) but timestamps has {} entries",
                    times.len()
                )));
            }
            T::times(times).check_strictly_increasing("timestamps").map_err(|m| err(format!("stream {s}: {m}")))?;
        }
        let (f, l) = (times[0], times[times.len() - 1]);
        if lo.is_none_or(|(x, _)| f > x) {
            lo = Some((f, s));
        }
        if hi.is_none_or(|(x, _)| l < x) {
            hi = Some((l, s));
        }
        if ulo.is_none_or(|x| f < x) {
            ulo = Some(f);
        }
        if uhi.is_none_or(|x| l > x) {
            uhi = Some(l);
        }
    }
    let (Some((ilo, slo)), Some((ihi, shi)), Some(ulo), Some(uhi)) = (lo, hi, ulo, uhi) else {
        return Err(err("no streams".into()));
    };
    let (a, b) = match args.span {
        Span::Union => (ulo, uhi),
        Span::Intersection => (ilo, ihi),
    };
    if !matches!(args.clock, Clock::Timestamps) && b < a {
        return Err(err(format!(
            "the streams do not overlap: stream {slo} starts at {} after stream {shi} ends at {} (span=\"intersection\"; use span=\"union\" or a reference timestamps input)",
            a.show(),
            b.show()
        )));
    }
    if !matches!(args.clock, Clock::Timestamps) && !T::span_fits(a, b) {
        return Err(err(format!(
            "the clock's span {} to {} is more than 2^63 - 1 ns (292 years) long",
            a.show(),
            b.show()
        )));
    }
    let plan = match args.clock {
        Clock::Rate(rate) => {
            let x = T::span_seconds(a, b) * rate;
            if x + 1.0 > MAX_TARGETS as f64 {
                return Err(err(format!("reference grid has {:.0} points, more than 2^31 - 1", x.floor() + 1.0)));
            }
            Plan { n: (x + 1e-6).floor() as i64 + 1, grid: Grid::Rate { a, b, rate } }
        }
        Clock::Count(n) => Plan { n, grid: Grid::Count { a, b, n } },
        Clock::Timestamps => {
            let t = reference.ok_or_else(|| err("missing reference timestamps input".into()))?;
            if check {
                if let Some(i) = t.iter().position(|v| !v.finite()) {
                    return Err(err(format!("reference_timestamps[{i}] is {}: must be finite", t[i].show())));
                }
            }
            if t.len() as i64 > MAX_TARGETS {
                return Err(err(format!("{} reference timestamps, more than 2^31 - 1", t.len())));
            }
            Plan { n: t.len() as i64, grid: Grid::Explicit }
        }
    };
    Ok(plan)
}

/// Where the value of one (step, stream) comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Src {
    /// `d[l] + w * (d[r] - d[l])` (SLERP in quaternion groups).
    Lerp(usize, usize, f64),
    /// Row `i` as is (quaternion groups normalised).
    Row(usize),
    /// NaN.
    Nan,
    /// Zero (identity in quaternion groups).
    Zero,
}

/// Locates step `t` in one stream: where its value comes from and whether it is valid. Mirrored
/// step by step by `rc_align_locate` in `kernels/align.cu`. `gap` is `max_gap` in the native unit.
#[inline]
pub fn locate<T: TimeVal>(
    times: &[T],
    t: T,
    row_ok: impl Fn(usize) -> bool,
    method: Method,
    gap: f64,
    fill: Fill,
) -> (Src, bool) {
    let n = times.len();
    let hold = fill == Fill::Hold;
    let invalid = |h: Option<usize>| {
        let src = match fill {
            Fill::Hold => h.map_or(Src::Nan, Src::Row),
            Fill::Nan => Src::Nan,
            Fill::Zero => Src::Zero,
        };
        (src, false)
    };
    if t < times[0] {
        return invalid(if hold { (0..n).find(|&j| row_ok(j)) } else { None });
    }
    if t > times[n - 1] {
        return invalid(if hold { (0..n).rev().find(|&j| row_ok(j)) } else { None });
    }
    let lo = times.partition_point(|x| *x <= t) - 1;
    if times[lo] == t && row_ok(lo) {
        return (Src::Row(lo), true);
    }
    // L: the last valid row at or before t. Past `gap` before t no L can make a valid step, so
    // the scan stops there unless `hold` needs the row itself.
    let mut l = None;
    let mut j = lo as isize;
    while j >= 0 {
        let ju = j as usize;
        if row_ok(ju) {
            l = Some(ju);
            break;
        }
        if !hold && T::diff(t, times[ju]) > gap {
            break;
        }
        j -= 1;
    }
    let mut r = None;
    let mut j = lo + 1;
    while j < n {
        if row_ok(j) {
            r = Some(j);
            break;
        }
        if (!hold || l.is_some()) && T::diff(times[j], t) > gap {
            break;
        }
        j += 1;
    }
    let (Some(l), Some(r)) = (l, r) else {
        return invalid(l.or(r));
    };
    if T::diff(times[r], times[l]) > gap {
        return invalid(Some(l));
    }
    let src = match method {
        Method::Previous => Src::Row(l),
        Method::Nearest => {
            if T::diff(t, times[l]) <= T::diff(times[r], t) {
                Src::Row(l)
            } else {
                Src::Row(r)
            }
        }
        Method::Linear => Src::Lerp(l, r, T::diff(t, times[l]) / T::diff(times[r], times[l])),
    };
    (src, true)
}

/// Plans one sample whatever its timestamp type; returns the number of reference steps.
///
/// # Errors
/// As [`plan_sample`], plus timestamps of different kinds within the sample.
pub fn plan_any(
    args: &AlignArgs,
    sample: usize,
    rows: &[usize],
    times: &[Times<'_>],
    reference: Option<Times<'_>>,
) -> Result<i64> {
    match times.first() {
        Some(Times::Seconds(_)) => {
            let st = seconds_of(sample, rows, times)?;
            let rf = match reference {
                Some(Times::Seconds(x)) => Some(x),
                Some(Times::Nanos(_)) => return Err(kind_mismatch(sample, "reference timestamps")),
                None => None,
            };
            plan_sample(args, sample, &st, rf, true).map(|p| p.n)
        }
        Some(Times::Nanos(_)) => {
            let st = nanos_of(sample, rows, times)?;
            let rf = match reference {
                Some(Times::Nanos(x)) => Some(x),
                Some(Times::Seconds(_)) => return Err(kind_mismatch(sample, "reference timestamps")),
                None => None,
            };
            plan_sample(args, sample, &st, rf, true).map(|p| p.n)
        }
        None => Err(Error::sample(OP, sample, "no streams")),
    }
}

fn kind_mismatch(sample: usize, what: &str) -> Error {
    Error::sample(
        OP,
        sample,
        format!("{what} are not of stream 0's timestamp kind; all timestamps must be float64 seconds or all int64 nanoseconds"),
    )
}

/// (rows, seconds) per stream; errors when a stream's timestamps are not float64.
pub fn seconds_of<'a>(sample: usize, rows: &[usize], times: &[Times<'a>]) -> Result<Vec<(usize, &'a [f64])>> {
    times
        .iter()
        .zip(rows)
        .enumerate()
        .map(|(s, (t, &r))| match *t {
            Times::Seconds(x) => Ok((r, x)),
            Times::Nanos(_) => Err(kind_mismatch(sample, &format!("stream {s}'s timestamps"))),
        })
        .collect()
}

/// (rows, nanoseconds) per stream; errors when a stream's timestamps are not int64.
pub fn nanos_of<'a>(sample: usize, rows: &[usize], times: &[Times<'a>]) -> Result<Vec<(usize, &'a [i64])>> {
    times
        .iter()
        .zip(rows)
        .enumerate()
        .map(|(s, (t, &r))| match *t {
            Times::Nanos(x) => Ok((r, x)),
            Times::Seconds(_) => Err(kind_mismatch(sample, &format!("stream {s}'s timestamps"))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn parse_rejects_bad_arguments() {
        let e = AlignArgs::parse(&RawArgs { target_rate: None, ..raw(1) }).unwrap_err();
        assert!(e.to_string().contains("zero streams"), "{e}");
        let m = vec!["linear".to_string()];
        let e = AlignArgs::parse(&RawArgs { methods: &m, ..raw(4) }).unwrap_err();
        assert!(
            e.to_string().contains("`methods`: got a list of 1 values, expected one value per stream (2 streams)"),
            "{e}"
        );
        let e = AlignArgs::parse(&RawArgs { max_gap: &[0.1, 0.2, 0.3], ..raw(4) }).unwrap_err();
        assert!(e.to_string().contains("`max_gap`"), "{e}");
        let e = AlignArgs::parse(&RawArgs { quaternions: &[0, 1, 1], ..raw(4) }).unwrap_err();
        assert!(e.to_string().contains("even number"), "{e}");
        let e = AlignArgs::parse(&RawArgs { quaternions: &[2, 0], ..raw(4) }).unwrap_err();
        assert!(e.to_string().contains("the pair (2, 0)"), "{e}");
        let e = AlignArgs::parse(&RawArgs { quaternions: &[0, 0, 0, 2], ..raw(4) }).unwrap_err();
        assert!(e.to_string().contains("overlapping"), "{e}");
        let e = AlignArgs::parse(&RawArgs { fill: "linear", ..raw(4) }).unwrap_err();
        assert!(e.to_string().contains("`fill`"), "{e}");
        let e = AlignArgs::parse(&RawArgs { num_samples: Some(3), ..raw(4) }).unwrap_err();
        assert!(e.to_string().contains("2 reference clock forms"), "{e}");
        let e = AlignArgs::parse(&RawArgs { ..raw(5) }).unwrap_err();
        assert!(e.to_string().contains("reference timestamps input: true"), "{e}");
        let e = AlignArgs::parse(&RawArgs { num_inputs: 18, ..raw(18) }).unwrap_err();
        assert!(e.to_string().contains("at most 8"), "{e}");
        let a = AlignArgs::parse(&RawArgs { target_rate: None, ..raw(5) }).unwrap();
        assert_eq!((a.streams, a.clock), (2, Clock::Timestamps));
    }

    #[test]
    fn layout_and_channel_map() {
        let a = AlignArgs::parse(&RawArgs { quaternions: &[1, 3], ..raw(4) }).unwrap();
        let l = Layout::new(&a, &[2, 7]).unwrap();
        assert_eq!((l.offsets.clone(), l.total), (vec![0, 2], 9));
        let m = l.chan_map();
        assert_eq!(m[0], [0, -1]);
        assert_eq!(m[4], [1, -1]);
        assert_eq!(m[5], [1, 5]);
        assert_eq!(m[8], [1, 5]);
        let e = Layout::new(&a, &[2, 6]).unwrap_err();
        assert!(e.to_string().contains("channels 3..6 of stream 1, which has 6 channels"), "{e}");
    }

    #[test]
    fn locate_bridges_nan_rows_within_max_gap() {
        let ts = [0.0, 1.0, 2.0, 3.0, 10.0];
        let ok = |j: usize| j != 2;
        assert_eq!(locate(&ts, 1.5, ok, Method::Linear, 2.5, Fill::Nan), (Src::Lerp(1, 3, 0.25), true));
        assert_eq!(locate(&ts, 1.5, ok, Method::Linear, 1.5, Fill::Nan), (Src::Nan, false));
        assert_eq!(locate(&ts, 2.0, ok, Method::Nearest, 5.0, Fill::Nan), (Src::Row(1), true));
        assert_eq!(locate(&ts, 5.0, ok, Method::Previous, 5.0, Fill::Hold), (Src::Row(3), false));
        assert_eq!(locate(&ts, 5.0, ok, Method::Previous, 8.0, Fill::Hold), (Src::Row(3), true));
        assert_eq!(locate(&ts, 3.0, ok, Method::Linear, 0.1, Fill::Zero), (Src::Row(3), true));
        assert_eq!(locate(&ts, -1.0, ok, Method::Linear, 9.0, Fill::Hold), (Src::Row(0), false));
        assert_eq!(locate(&ts, 11.0, |j| j < 3, Method::Linear, 9.0, Fill::Hold), (Src::Row(2), false));
        assert_eq!(locate(&ts, 11.0, ok, Method::Linear, 9.0, Fill::Zero), (Src::Zero, false));
        assert_eq!(locate(&ts, 0.5, |_| false, Method::Linear, 9.0, Fill::Hold), (Src::Nan, false));
        assert_eq!(locate(&ts, 0.5, |j| j > 2, Method::Linear, 90.0, Fill::Hold), (Src::Row(3), false));
    }

    #[test]
    fn bad_samples_name_stream_and_problem() {
        let a = AlignArgs::parse(&raw(4)).unwrap();
        let e =
            plan_any(&a, 2, &[2, 2], &[Times::Seconds(&[0.0, 1.0]), Times::Seconds(&[1.0, 0.5])], None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "robocache.align: sample 2: stream 1: timestamps not strictly increasing at index 1: 0.5 after 1"
        );
        let e =
            plan_any(&a, 0, &[3, 2], &[Times::Seconds(&[0.0, 1.0]), Times::Seconds(&[0.0, 1.0])], None).unwrap_err();
        assert!(e.to_string().contains("stream 0: length mismatch: data has 3 rows"), "{e}");
        let e =
            plan_any(&a, 0, &[2, 2], &[Times::Seconds(&[0.0, 1.0]), Times::Seconds(&[2.0, 3.0])], None).unwrap_err();
        assert!(e.to_string().contains("do not overlap"), "{e}");
        let e = plan_any(&a, 0, &[2, 2], &[Times::Seconds(&[0.0, 1.0]), Times::Nanos(&[2, 3])], None).unwrap_err();
        assert!(e.to_string().contains("stream 1's timestamps are not of stream 0's timestamp kind"), "{e}");
    }
}
