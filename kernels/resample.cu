// resample.cu: trajectory resampling, one launch per ragged batch.
// common.cuh is prepended by the Rust kernel registry (src/gpu/kernels.rs).
//
// Each block takes one tile of `tile` consecutive targets of one sample (`tile_sample[blockIdx.x]`
// names the sample; RcResampleSample::tile_begin its first block). Phase 1: one thread per target computes the target
// time (the same float64/int64 arithmetic as the Rust CPU backend, compiled with --fmad=false so the
// two agree bit for bit), binary-searches the timestamps and leaves (i0, i1, w) in shared memory.
// Phase 2: the block streams the rows: threadIdx.x over VB-byte vectors of a row, threadIdx.y over
// targets, RC_ROWS targets per thread with all loads issued before the first store.

#define RC_ROWS 4
#define RC_MAX_TILE 1024

// Where target t falls (mirror of `pick` in src/ops/resample.rs): i0 = -1 for NaN, i0 == i1 to copy.
template <typename TS>
__device__ __forceinline__ void rc_locate(const TS *__restrict__ ts, int n, TS t, int method,
                                          int extrapolate, int &i0, int &i1, double &w) {
  w = 0.0;
  TS first = __ldg(ts), last = __ldg(ts + n - 1);
  if (t < first || t > last) {
    if (extrapolate == 1) { i0 = i1 = -1; return; }
    i0 = i1 = (t < first) ? 0 : n - 1;
    return;
  }
  // Interpolation guess (exact for uniform sampling, off by a few for jittered), then an
  // exponential search around it and a binary search inside the bracket: O(log distance) loads.
  double span = rc_diff(last, first);
  int g = span > 0.0 ? (int)(rc_diff(t, first) / span * (double)(n - 1)) : 0;
  g = g < 0 ? 0 : (g > n - 1 ? n - 1 : g);
  int lo, hi;  // answer (last index with ts <= t) in [lo, hi], ts[lo] <= t
  if (__ldg(ts + g) <= t) {
    lo = g;
    int step = 1;
    while (lo + step <= n - 1 && __ldg(ts + lo + step) <= t) { lo += step; step <<= 1; }
    hi = lo + step - 1 < n - 1 ? lo + step - 1 : n - 1;
  } else {
    hi = g - 1;  // ts[g] > t, and g > 0 because ts[0] <= t
    int step = 1;
    while (hi - step >= 0 && __ldg(ts + hi - step + 1) > t) { hi -= step; step <<= 1; }
    lo = hi - step + 1 > 0 ? hi - step + 1 : 0;
  }
  while (lo < hi) {
    int mid = (lo + hi + 1) >> 1;
    if (__ldg(ts + mid) <= t) lo = mid; else hi = mid - 1;
  }
  TS ti = __ldg(ts + lo);
  if (lo == n - 1 || ti == t) { i0 = i1 = lo; return; }
  TS tn = __ldg(ts + lo + 1);
  if (method == 2) { i0 = i1 = lo; return; }
  if (method == 1) { i0 = i1 = (rc_diff(t, ti) <= rc_diff(tn, t)) ? lo : lo + 1; return; }
  i0 = lo; i1 = lo + 1;
  w = rc_diff(t, ti) / rc_diff(tn, ti);
}

template <typename TS>
__device__ __forceinline__ TS rc_target(const RcResampleSample &s, const RcResampleParams &p,
                                        rc_i64 k);
template <>
__device__ __forceinline__ double rc_target<double>(const RcResampleSample &s,
                                                    const RcResampleParams &p, rc_i64 k) {
  if (p.grid == 0) return rc_grid_rate_f(s.a_f, s.b_f, p.rate, k);
  if (p.grid == 1) return rc_grid_count_f(s.a_f, s.b_f, p.count, k);
  return __ldg((const double *)s.targets + k);
}
template <>
__device__ __forceinline__ rc_i64 rc_target<rc_i64>(const RcResampleSample &s,
                                                    const RcResampleParams &p, rc_i64 k) {
  if (p.grid == 0) return rc_grid_rate_i(s.a_i, s.b_i, p.rate, k);
  if (p.grid == 1) return rc_grid_count_i(s.a_i, s.b_i, p.count, k);
  return __ldg((const rc_i64 *)s.targets + k);
}

template <typename TS>
__device__ __forceinline__ void rc_phase1(const RcResampleSample &s, const RcResampleParams &p,
                                          rc_i64 k0, int kcount, int *si0, int *si1, double *sw) {
  int tid = threadIdx.y * blockDim.x + threadIdx.x;
  int nthreads = blockDim.x * blockDim.y;
  const TS *ts = (const TS *)s.ts;
  TS *out_ts = (TS *)s.out_ts;
  for (int t = tid; t < kcount; t += nthreads) {
    TS tt = rc_target<TS>(s, p, k0 + t);
    out_ts[k0 + t] = tt;
    int i0, i1;
    double w;
    rc_locate<TS>(ts, (int)s.len, tt, p.method, p.extrapolate, i0, i1, w);
    si0[t] = i0;
    si1[t] = i1;
    sw[t] = w;
  }
}

template <typename E, int VB>
__device__ __forceinline__ void rc_resample(const RcResampleSample *__restrict__ samples,
                                            const int *__restrict__ tile_sample,
                                            RcResampleParams p) {
  typedef typename RcVec<VB>::type V;
  typedef typename E::bits B;
  typedef typename E::acc A;
  const int NE = VB / (int)sizeof(B);
  union U { V v; B e[VB / sizeof(B)]; };

  __shared__ int si0[RC_MAX_TILE];
  __shared__ int si1[RC_MAX_TILE];
  __shared__ double sw[RC_MAX_TILE];
  const RcResampleSample s = samples[__ldg(tile_sample + blockIdx.x)];
  const rc_i64 k0 = ((rc_i64)blockIdx.x - s.tile_begin) * p.tile;
  const rc_i64 left = s.num_out - k0;
  const int kcount = left < p.tile ? (int)left : p.tile;
  if (kcount <= 0) return;  // uniform across the block

  if (p.ts_int) rc_phase1<rc_i64>(s, p, k0, kcount, si0, si1, sw);
  else rc_phase1<double>(s, p, k0, kcount, si0, si1, sw);
  __syncthreads();

  const V *__restrict__ src = (const V *)s.data;
  V *__restrict__ dst = (V *)s.out + k0 * p.vec_per_row;
  const int vpr = p.vec_per_row;
  const int by = blockDim.y;
  for (int v = threadIdx.x; v < vpr; v += blockDim.x) {
    U a[RC_ROWS], b[RC_ROWS];
#pragma unroll
    for (int r = 0; r < RC_ROWS; r++) {
      int k = threadIdx.y + r * by;
      if (k < kcount) {
        int i0 = si0[k], i1 = si1[k];
        if (i0 >= 0) {
          a[r].v = __ldg(src + (rc_i64)i0 * vpr + v);
          if (i1 != i0) b[r].v = __ldg(src + (rc_i64)i1 * vpr + v);
        }
      }
    }
#pragma unroll
    for (int r = 0; r < RC_ROWS; r++) {
      int k = threadIdx.y + r * by;
      if (k < kcount) {
        int i0 = si0[k], i1 = si1[k];
        U o;
        if (i0 < 0) {
#pragma unroll
          for (int j = 0; j < NE; j++) o.e[j] = E::nan();
        } else if (i1 == i0) {
          o.v = a[r].v;
        } else {
          A w = (A)sw[k];
#pragma unroll
          for (int j = 0; j < NE; j++) {
            A x0 = E::load(a[r].e[j]), x1 = E::load(b[r].e[j]);
            o.e[j] = E::store(x0 + w * (x1 - x0));
          }
        }
        dst[(rc_i64)k * vpr + v] = o.v;
      }
    }
  }
}

#define RC_RESAMPLE(VB, E, SUFFIX)                                                      \
  extern "C" __global__ void __launch_bounds__(256)                                    \
      resample_v##VB##_##SUFFIX(const RcResampleSample *__restrict__ samples,          \
                                const int *__restrict__ tile_sample,                   \
                                RcResampleParams p) {                                  \
    rc_resample<E, VB>(samples, tile_sample, p);                                       \
  }

RC_RESAMPLE(16, RcF32, f32)
RC_RESAMPLE(8, RcF32, f32)
RC_RESAMPLE(4, RcF32, f32)
RC_RESAMPLE(16, RcF64, f64)
RC_RESAMPLE(8, RcF64, f64)
RC_RESAMPLE(16, RcF16, f16)
RC_RESAMPLE(8, RcF16, f16)
RC_RESAMPLE(4, RcF16, f16)
RC_RESAMPLE(2, RcF16, f16)
RC_RESAMPLE(16, RcBF16, bf16)
RC_RESAMPLE(8, RcBF16, bf16)
RC_RESAMPLE(4, RcBF16, bf16)
RC_RESAMPLE(2, RcBF16, bf16)
