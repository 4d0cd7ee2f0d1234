//! `robocache.action_noise`: per-channel Gaussian or uniform noise on action trajectories `[T, C]`,
//! optionally temporally correlated (an Ornstein-Uhlenbeck process along T), optionally clipped to
//! per-channel bounds, applied to each sample with probability `p`. This layer knows nothing about
//! DALI; the GPU launch is in `augment_gpu.rs`.
//!
//! Noise of element `(t, c)`: an innovation `e = sigma[c] * z` with `z ~ N(0, 1)` (gaussian) or
//! `z ~ U(-1, 1)` (uniform), drawn from Philox keyed by (seed, iteration, sample, `t * C + c`). White
//! noise: `x_t = e_t`. Correlated: `x_0 = e_0`, `x_t = a x_{t-1} + b e_t` with `a = exp(-dt / tau)`,
//! `b = sqrt(1 - a^2)` (stationary: the variance of `x_t` is that of `e_t` at every t, and the
//! autocorrelation at lag k is `a^k`). Output `clip(data + x, low, high)` in the accumulator type.
//! Mirrored operation by operation by `action_noise_*` in `kernels/augment.cu`.

use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::ops::resample::parse_declared_dtype;
use crate::rng::{self, Key};

/// Operator name used in every message.
pub const OP: &str = "robocache.action_noise";

/// Noise distribution. Discriminants are shared with the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Distribution {
    /// `sigma * N(0, 1)`.
    Gaussian = 0,
    /// `sigma * U(-1, 1)`.
    Uniform = 1,
}

/// Constant arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct NoiseArgs {
    /// Distribution of the innovations.
    pub distribution: Distribution,
    /// Sampling rate (Hz), needed for correlated noise.
    pub rate: Option<f64>,
    /// Lower bounds (empty: none; one value: every channel).
    pub low: Vec<f64>,
    /// Upper bounds.
    pub high: Vec<f64>,
    /// `Some(BF16)` for uint16 data holding bfloat16 bits.
    pub declared: Option<DType>,
    /// DALI's seed.
    pub seed: u64,
}

impl NoiseArgs {
    /// Parses and validates the constant arguments.
    #[allow(clippy::too_many_arguments)]
    pub fn parse(
        distribution: &str,
        dtype: &str,
        rate: Option<f64>,
        low: &[f64],
        high: &[f64],
        seed: u64,
    ) -> Result<Self> {
        let distribution = match distribution {
            "gaussian" => Distribution::Gaussian,
            "uniform" => Distribution::Uniform,
            other => return Err(Error::arg(OP, "distribution", format!("{other:?}"), "\"gaussian\" or \"uniform\"")),
        };
        if let Some(r) = rate {
            if !(r.is_finite() && r > 0.0) {
                return Err(Error::arg(OP, "rate", r, "a finite rate > 0 (Hz)"));
            }
        }
        for (name, v) in [("low", low), ("high", high)] {
            if let Some(x) = v.iter().find(|x| x.is_nan()) {
                return Err(Error::arg(OP, if name == "low" { "low" } else { "high" }, x, "numbers, not NaN"));
            }
        }
        if !low.is_empty() && !high.is_empty() {
            let n = low.len().max(high.len());
            if low.len() != high.len() && low.len() != 1 && high.len() != 1 {
                return Err(Error::arg(
                    OP,
                    "low/high",
                    format!("{} and {} values", low.len(), high.len()),
                    "the same number of values (or one of them a single value)",
                ));
            }
            for c in 0..n {
                let (l, h) = (low[c.min(low.len() - 1)], high[c.min(high.len() - 1)]);
                if l > h {
                    return Err(Error::arg(
                        OP,
                        "low/high",
                        format!("low[{c}] = {l} > high[{c}] = {h}"),
                        "low <= high in every channel (bounds inverted)",
                    ));
                }
            }
        }
        Ok(NoiseArgs {
            distribution,
            rate,
            low: low.to_vec(),
            high: high.to_vec(),
            declared: parse_declared_dtype(OP, dtype)?,
            seed,
        })
    }

    /// The Ornstein-Uhlenbeck coefficients `(a, b)` for correlation time `tau` (seconds):
    /// `a = exp(-1 / (rate * tau))`, `b = sqrt(1 - a^2)`; `(0, 1)` (white noise) for `tau == 0`.
    ///
    /// # Errors
    /// A negative or non-finite `tau`, or `tau > 0` without `rate`.
    pub fn ou(&self, sample: usize, tau: f64) -> Result<(f64, f64)> {
        if !(tau.is_finite() && tau >= 0.0) {
            return Err(Error::sample(
                OP,
                sample,
                format!("correlation_time is {tau}; expected a finite time >= 0 (seconds)"),
            ));
        }
        if tau == 0.0 {
            return Ok((0.0, 1.0));
        }
        let r = self
            .rate
            .ok_or_else(|| Error::arg(OP, "rate", "nothing", "the sampling rate in Hz when correlation_time > 0"))?;
        let a = (-(1.0 / r) / tau).exp();
        Ok((a, (1.0 - a * a).sqrt()))
    }

    /// The data dtype after `dtype="bfloat16"`.
    pub fn data_dtype(&self, input: DType) -> Result<DType> {
        crate::ops::resample::resolve_data_dtype(OP, input, self.declared)
    }

    /// Per-channel bounds expanded to `c` channels (empty when not given).
    ///
    /// # Errors
    /// A bound list whose length is neither 1 nor `c`.
    pub fn bounds(&self, c: usize) -> Result<(Vec<f64>, Vec<f64>)> {
        let expand = |name: &str, v: &[f64]| -> Result<Vec<f64>> {
            match v.len() {
                0 => Ok(Vec::new()),
                1 => Ok(vec![v[0]; c]),
                n if n == c => Ok(v.to_vec()),
                n => Err(Error::Batch {
                    op: OP,
                    msg: format!("`{name}` has {n} values but the actions have C={c} channels; expected 1 or {c}"),
                }),
            }
        };
        Ok((expand("low", &self.low)?, expand("high", &self.high)?))
    }
}

/// Per-sample arguments (argument inputs allowed): `sigma` per channel, the probability `p`, and
/// the correlation time (seconds).
#[derive(Clone, Copy, Debug)]
pub struct NoiseSample<'a> {
    /// 1 or C values, >= 0.
    pub sigma: &'a [f32],
    /// Probability of applying the noise to this sample, in [0, 1].
    pub p: f64,
    /// Correlation time in seconds (0: white).
    pub correlation_time: f64,
}

/// Validates one sample's arguments and shape; returns `sigma` expanded to `c` channels.
pub fn check_sample(sample: usize, s: &NoiseSample<'_>, rows: usize, c: usize) -> Result<Vec<f64>> {
    let err = |m: String| Error::sample(OP, sample, m);
    if c == 0 {
        return Err(err("actions have 0 channels (C == 0)".into()));
    }
    if rows.checked_mul(c).is_none_or(|n| n > u32::MAX as usize) {
        return Err(err(format!("{rows} x {c} elements, more than 2^32")));
    }
    if !(0.0..=1.0).contains(&s.p) {
        return Err(err(format!("p is {}; expected a probability in [0, 1]", s.p)));
    }
    if s.sigma.len() != 1 && s.sigma.len() != c {
        return Err(err(format!(
            "sigma has {} values but the actions have C={c} channels; expected 1 or {c} (wrong channel count)",
            s.sigma.len()
        )));
    }
    if let Some((i, v)) = s.sigma.iter().enumerate().find(|(_, v)| !(v.is_finite() && **v >= 0.0)) {
        return Err(err(format!("sigma[{i}] is {v}; expected sigma >= 0 (negative or non-finite sigma)")));
    }
    Ok((0..c).map(|k| s.sigma[k.min(s.sigma.len() - 1)] as f64).collect())
}

/// Whether the noise is applied to `sample` at `iteration` (`u < p`, one Philox draw).
pub fn applies(args: &NoiseArgs, iteration: u64, sample: usize, p: f64) -> bool {
    let k = Key { seed: args.seed, iteration, sample: sample as u32, stream: rng::stream::NOISE_APPLY };
    k.uniform2(0)[0] < p
}

/// The innovation of element `e = t * C + c` before scaling: `N(0, 1)` or `U(-1, 1)`.
#[inline]
pub fn draw(args: &NoiseArgs, key: &Key, e: u64) -> f64 {
    let w = key.words((e >> 1) as u32);
    match args.distribution {
        Distribution::Gaussian => rng::box_muller(w)[(e & 1) as usize],
        Distribution::Uniform => {
            let u = if e & 1 == 1 { rng::uniform_f64(w[2], w[3]) } else { rng::uniform_f64(w[0], w[1]) };
            2.0 * u - 1.0
        }
    }
}

/// CPU backend for one sample: `data` and `out` are `[T, c]`; `sigma`, `low`, `high` per channel
/// (bounds may be empty).
#[allow(clippy::too_many_arguments)]
pub fn run_sample<E: Element>(
    args: &NoiseArgs,
    iteration: u64,
    sample: usize,
    apply: bool,
    (a, b): (f64, f64),
    sigma: &[f64],
    low: &[f64],
    high: &[f64],
    data: &[E],
    c: usize,
    out: &mut [E],
) where
    E::Acc: PartialOrd,
{
    if !apply {
        out.copy_from_slice(data);
        return;
    }
    let key = Key { seed: args.seed, iteration, sample: sample as u32, stream: rng::stream::NOISE };
    let lo: Vec<E::Acc> = low.iter().map(|&v| E::weight(v)).collect();
    let hi: Vec<E::Acc> = high.iter().map(|&v| E::weight(v)).collect();
    let mut x = vec![0.0f64; c];
    let rows = data.len() / c;
    for t in 0..rows {
        for ch in 0..c {
            let e = (t * c + ch) as u64;
            let eps = draw(args, &key, e) * sigma[ch];
            x[ch] = if a == 0.0 || t == 0 { eps } else { a * x[ch] + b * eps };
            let mut v = data[e as usize].to_acc() + E::weight(x[ch]);
            if !lo.is_empty() && v < lo[ch] {
                v = lo[ch];
            }
            if !hi.is_empty() && v > hi[ch] {
                v = hi[ch];
            }
            out[e as usize] = E::from_acc(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors() {
        let e = NoiseArgs::parse("cauchy", "", None, &[], &[], 0).unwrap_err();
        assert!(e.to_string().contains("`distribution`"), "{e}");
        let a = NoiseArgs::parse("gaussian", "", None, &[], &[], 0).unwrap();
        let e = a.ou(2, 0.5).unwrap_err();
        assert!(e.to_string().contains("`rate`"), "{e}");
        let e = a.ou(2, -0.5).unwrap_err();
        assert!(e.to_string().contains("sample 2: correlation_time is -0.5"), "{e}");
        assert_eq!(a.ou(0, 0.0).unwrap(), (0.0, 1.0));
        let e = NoiseArgs::parse("gaussian", "", None, &[0.0, 1.0], &[1.0, 0.5], 0).unwrap_err();
        assert!(e.to_string().contains("low[1] = 1 > high[1] = 0.5"), "{e}");
        let a = NoiseArgs::parse("gaussian", "", None, &[-1.0], &[1.0, 2.0], 0).unwrap();
        assert_eq!(a.bounds(2).unwrap(), (vec![-1.0, -1.0], vec![1.0, 2.0]));
        assert!(a.bounds(3).is_err());
        let e = check_sample(4, &NoiseSample { sigma: &[0.1, -0.2], p: 1.0, correlation_time: 0.0 }, 3, 2).unwrap_err();
        assert!(e.to_string().starts_with("robocache.action_noise: sample 4: sigma[1] is -0.2"), "{e}");
        let e = check_sample(0, &NoiseSample { sigma: &[0.1, 0.2], p: 1.0, correlation_time: 0.0 }, 3, 3).unwrap_err();
        assert!(e.to_string().contains("wrong channel count"), "{e}");
    }

    #[test]
    fn ou_noise_has_sigma_and_correlation() {
        let a = NoiseArgs::parse("gaussian", "", Some(100.0), &[], &[], 9).unwrap();
        let ab = a.ou(0, 0.1).unwrap();
        let (t, c) = (20_000, 2);
        let data = vec![0.0f64; t * c];
        let mut out = vec![0.0f64; t * c];
        run_sample(&a, 0, 0, true, ab, &[0.5, 2.0], &[], &[], &data, c, &mut out);
        for ch in 0..c {
            let x: Vec<f64> = (0..t).map(|i| out[i * c + ch]).collect();
            let v = x.iter().map(|v| v * v).sum::<f64>() / t as f64;
            let s = [0.5, 2.0][ch];
            assert!((v.sqrt() / s - 1.0).abs() < 0.1, "std {} vs {s}", v.sqrt());
            let r1 = x.windows(2).map(|w| w[0] * w[1]).sum::<f64>() / (t - 1) as f64 / v;
            assert!((r1 - ab.0).abs() < 0.03, "lag-1 correlation {r1} vs {}", ab.0);
        }
    }
}
