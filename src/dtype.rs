//! Element types. Data is generic over f32 / f16 / bf16 / f64 through `half`; timestamps are float64
//! seconds or int64 nanoseconds. DALI 2.4 has no bfloat16 type, so bfloat16 travels as uint16 bits.

use half::{bf16, f16};

/// Element types the operators exchange with DALI. The discriminants are part of the bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    F16,
    BF16,
    F64,
    I64,
    I32,
    U16,
    U8,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::U16 => 2,
            DType::U8 => 1,
        }
    }

    /// The name users know (numpy / PyTorch spelling).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::F64 => "float64",
            DType::I64 => "int64",
            DType::I32 => "int32",
            DType::U16 => "uint16",
            DType::U8 => "uint8",
        }
    }

    /// Kernel-name suffix (`resample_v16_f32`, ...).
    pub fn suffix(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::F64 => "f64",
            DType::I64 => "i64",
            DType::I32 => "i32",
            DType::U16 => "u16",
            DType::U8 => "u8",
        }
    }
}

/// A floating-point data element, computed in its accumulator type (f32, or f64 for f64 data).
pub trait Element: Copy + Send + Sync + 'static {
    /// The accumulator the arithmetic runs in.
    type Acc: Copy
        + std::ops::Add<Output = Self::Acc>
        + std::ops::Sub<Output = Self::Acc>
        + std::ops::Mul<Output = Self::Acc>;
    /// Widen to the accumulator.
    fn to_acc(self) -> Self::Acc;
    /// Round from the accumulator (round to nearest even).
    fn from_acc(a: Self::Acc) -> Self;
    /// An interpolation weight in the accumulator type.
    fn weight(w: f64) -> Self::Acc;
    /// NaN of this type.
    fn nan() -> Self;
}

impl Element for f32 {
    type Acc = f32;
    fn to_acc(self) -> f32 {
        self
    }
    fn from_acc(a: f32) -> Self {
        a
    }
    fn weight(w: f64) -> f32 {
        w as f32
    }
    fn nan() -> Self {
        f32::NAN
    }
}

impl Element for f64 {
    type Acc = f64;
    fn to_acc(self) -> f64 {
        self
    }
    fn from_acc(a: f64) -> Self {
        a
    }
    fn weight(w: f64) -> f64 {
        w
    }
    fn nan() -> Self {
        f64::NAN
    }
}

impl Element for f16 {
    type Acc = f32;
    fn to_acc(self) -> f32 {
        self.to_f32()
    }
    fn from_acc(a: f32) -> Self {
        f16::from_f32(a)
    }
    fn weight(w: f64) -> f32 {
        w as f32
    }
    fn nan() -> Self {
        f16::NAN
    }
}

impl Element for bf16 {
    type Acc = f32;
    fn to_acc(self) -> f32 {
        self.to_f32()
    }
    fn from_acc(a: f32) -> Self {
        bf16::from_f32(a)
    }
    fn weight(w: f64) -> f32 {
        w as f32
    }
    fn nan() -> Self {
        bf16::NAN
    }
}

/// Timestamps of one sample: float64 seconds or int64 nanoseconds.
#[derive(Clone, Copy, Debug)]
pub enum Times<'a> {
    /// Seconds.
    Seconds(&'a [f64]),
    /// Nanoseconds.
    Nanos(&'a [i64]),
}

impl<'a> Times<'a> {
    /// Number of timestamps.
    pub fn len(&self) -> usize {
        match self {
            Times::Seconds(s) => s.len(),
            Times::Nanos(s) => s.len(),
        }
    }

    /// The raw bytes (native-endian f64 or i64), as they are copied to the device.
    pub fn as_bytes(&self) -> &'a [u8] {
        match *self {
            // SAFETY: f64 and i64 slices are plain data; viewing them as bytes is always valid.
            Times::Seconds(s) => unsafe {
                std::slice::from_raw_parts(s.as_ptr() as *const u8, std::mem::size_of_val(s))
            },
            // SAFETY: as above.
            Times::Nanos(s) => unsafe { std::slice::from_raw_parts(s.as_ptr() as *const u8, std::mem::size_of_val(s)) },
        }
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`-th timestamp in seconds (for messages and spans).
    pub fn seconds(&self, i: usize) -> f64 {
        match self {
            Times::Seconds(s) => s[i],
            Times::Nanos(s) => s[i] as f64 * 1e-9,
        }
    }

    /// Checks that the timestamps are finite and strictly increasing; the message names the first
    /// offending index.
    pub fn check_strictly_increasing(&self, what: &str) -> std::result::Result<(), String> {
        match self {
            Times::Seconds(s) => {
                for (i, &t) in s.iter().enumerate() {
                    if !t.is_finite() {
                        return Err(format!("{what}[{i}] is {t}: timestamps must be finite"));
                    }
                }
                for i in 1..s.len() {
                    if s[i] <= s[i - 1] {
                        return Err(format!(
                            "{what} not strictly increasing at index {i}: {} after {}",
                            s[i],
                            s[i - 1]
                        ));
                    }
                }
            }
            Times::Nanos(s) => {
                // Differences of int64 nanoseconds must not overflow (weights, spans and grids use them).
                if let (Some(&a), Some(&b)) = (s.first(), s.last()) {
                    if b > a && b.checked_sub(a).is_none() {
                        return Err(format!("{what} span {a} ns to {b} ns, more than 2^63 - 1 ns (292 years) apart"));
                    }
                }
                for i in 1..s.len() {
                    if s[i] <= s[i - 1] {
                        return Err(format!(
                            "{what} not strictly increasing at index {i}: {} ns after {} ns",
                            s[i],
                            s[i - 1]
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Mutable output timestamps in the input timestamps' type.
pub enum TimesMut<'a> {
    /// Seconds.
    Seconds(&'a mut [f64]),
    /// Nanoseconds.
    Nanos(&'a mut [i64]),
}
