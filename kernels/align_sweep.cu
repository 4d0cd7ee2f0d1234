// align_sweep.cu: the row-driven form of the align kernel (design 6, "sweep"), last of the align
// program (after align_core.cu, align.cu and align_flat.cu), for the computed clocks (target_rate,
// num_samples); the explicit reference form keeps the step-driven forms (its timestamps need not be
// sorted).
//
// The step-driven forms search every (step, stream) item's rows from the step's time: each item is a
// chain of dependent loads (probe, NaN test of two rows, write). Here the work is turned around: a
// block takes p.tile consecutive rows of one stream of one sample, reads them (and the next row) once
// with coalesced 16-byte loads into shared memory, and each row i writes the steps k it brackets,
// those with ts[i] <= t_k < ts[i + 1] (row 0 also every step before ts[0], the last row every step from
// its timestamp on). That is exactly the steps for which `locate`'s search (the last row with ts <= t)
// returns i, so no search is needed: the first step of row i is the first k with t_k >= ts[i], from
// the clock's formula (an estimate from the rate, corrected by evaluating the clock itself). When rows
// i and i + 1 are both present (no NaN) the item is decided in registers with `locate`'s rules; any
// other item (NaN rows, steps outside the stream's span) runs align_core.cu's rc_al_locate from the
// known row, whose walks read rows outside the block from global memory. The block's steps of its
// stream are staged in shared memory (the fused rows' part of this stream, and the valid flags) and
// leave with contiguous stores; a block whose steps outgrow the staging space writes straight to
// global memory. Stream 0's blocks write the output timestamps.
//
// Shared memory (p.smem bytes): timestamps [p.tile + 1], first steps [p.tile + 1] (int), the rows'
// bytes (16-byte chunks), then the staged steps: [steps][C_s] elements and [steps] valid flags.

#ifndef RC_ALIGN_SWEEP_MIN_BLOCKS
#define RC_ALIGN_SWEEP_MIN_BLOCKS 4
#endif
// The general item (NaN rows, steps outside the span) out of line on the GPU, so that its walks do
// not take registers from the common path.
#if defined(__CUDA_ARCH__) && !defined(RC_AL_SWEEP_INLINE)
#define RC_AL_SWEEP_GENERAL __noinline__
#else
#define RC_AL_SWEEP_GENERAL __forceinline__
#endif

// The first step k in [0, T] with t_k >= x (t_k nondecreasing in k): an estimate from the clock's
// formula, then corrected against the clock itself, so the answer is exact whatever the estimate.
template <typename TS>
__device__ __forceinline__ int rc_al_first_step(const RcAlignSample *s, const RcAlignParams &p, TS x, int T) {
  double e;
  if (p.grid == 0) {
    const double d = (double)x - (p.ts_int ? (double)s->a_i : s->a_f);
    e = ceil(d * (p.ts_int ? p.rate * 1e-9 : p.rate));
  } else {
    const double a = p.ts_int ? (double)s->a_i : s->a_f, b = p.ts_int ? (double)s->b_i : s->b_f;
    e = b > a ? ceil(((double)x - a) / (b - a) * (double)(T - 1)) : 0.0;
  }
  int k = !(e > 0.0) ? 0 : (e >= (double)T ? T : (int)e);
#if RC_AL_SWEEP_FAST_KB
  // Rate clocks: the estimate is the answer when the scaled time y = (x - a) rate lies farther from
  // an integer than its error and the clock's rounding (t_k = a + k / rate in float64, or rounded to
  // the nanosecond) can move it, and k is inside the grid, clear of its clamped end.
  if (p.grid == 0 && k > 0 && k < T - 1) {
    const double a = p.ts_int ? (double)s->a_i : s->a_f;
    const double re = p.ts_int ? p.rate * 1e-9 : p.rate;
    const double y = ((double)x - a) * re;
    const double mag = fabs((double)x) + fabs(a);
    const double tol = (8.0 * mag * 2.220446049250313e-16 + (p.ts_int ? 1.0 : 0.0)) * re + 8.0 * fabs(y) * 2.220446049250313e-16;
    const double fr = y - floor(y);
    if (fr > tol && fr < 1.0 - tol) return k;
  }
#endif
  while (k > 0 && rc_al_target<TS>(s, p, k - 1) >= x) k--;
  while (k < T && rc_al_target<TS>(s, p, k) < x) k++;
  return k;
}

// One stream as a sweep block sees it: rows [r0, r0 + have) in shared memory, the rest in global
// memory; search() returns the row the item belongs to (set per item).
template <typename TS, typename B>
struct RcAlSView {
  static constexpr bool kSlot = false;
  const TS *gts, *sts;
  const B *gd, *sd;
  int n, c, r0, have, lo;
  __device__ __forceinline__ TS t(int j) const {
    const unsigned u = (unsigned)(j - r0);
    return u < (unsigned)have ? sts[u] : __ldg(gts + j);
  }
  __device__ __forceinline__ const B *row(int j) const {
    const unsigned u = (unsigned)(j - r0);
    return u < (unsigned)have ? sd + (rc_i64)u * c : gd + (rc_i64)j * c;
  }
  __device__ __forceinline__ int search(TS, TS, TS) const { return lo; }
  template <typename E>
  __device__ __forceinline__ unsigned rows_ok2(int j) const {
    return rc_al_rows_ok2<E>(*this, j);
  }
};

// The general item: rc_al_locate from the known row v.lo.
template <typename TS, typename E>
__device__ RC_AL_SWEEP_GENERAL void rc_al_sweep_general(const RcAlSView<TS, typename E::bits> &v, TS t, TS first,
                                                          TS last, int method, double gap, int fill, int &i0, int &i1,
                                                          double &w, int &ok) {
  rc_al_locate<TS, E>(v, t, first, last, method, gap, fill, i0, i1, w, ok);
}

template <typename TS, typename E>
__device__ __forceinline__ void rc_al_sweep_block(const RcAlignSample *s, const RcAlignParams &p, int q, int r0,
                                                  unsigned char *sbuf) {
  typedef typename E::bits B;
  const int n = (int)s->len[q];
  const int R = p.tile;
  const int rows = n - r0 < R ? n - r0 : R;
  const int have = n - r0 < R + 1 ? n - r0 : R + 1;
  const int cs = (int)p.streams[q].channels;
  const int T = (int)s->num_out;
  const TS *gts = (const TS *)s->ts[q];
  const B *gd = (const B *)s->data[q];
  const int tid = threadIdx.x, bd = blockDim.x;

  TS *sts = (TS *)sbuf;
  int *skb = (int *)(sbuf + rc_al_round16(8 * (R + 1)));
  unsigned char *sdat = (unsigned char *)skb + rc_al_round16(4 * (R + 1));
  // The rows [r0, r0 + have) as 16-byte chunks (2-byte pieces at the ends of the stream's data).
  const rc_u64 rb = (rc_u64)cs * sizeof(B);
  const rc_u64 base = (rc_u64)gd, hi = base + (rc_u64)n * rb;
  const rc_u64 g0 = base + (rc_u64)r0 * rb, g1 = g0 + (rc_u64)have * rb, c0 = g0 & ~15ull;
  const int nch = (int)((g1 - c0 + 15) >> 4);
  for (int i = tid; i < nch; i += bd) *(uint4 *)(sdat + 16 * i) = rc_al_load16(c0 + 16ull * (rc_u64)i, base, hi);
  for (int j = tid; j < have; j += bd) {
    const TS t = __ldg(gts + r0 + j);
    sts[j] = t;
    skb[j] = r0 + j == 0 ? 0 : rc_al_first_step<TS>(s, p, t, T);
  }
  if (tid == 0 && have == rows) skb[rows] = T;  // the stream's last row owns every step from its time on
  __syncthreads();

  const int kbase = skb[0], nk = skb[rows] - kbase;
  if (nk <= 0) return;  // uniform across the block
  const int C = p.total_channels, ns = p.num_streams, off = (int)p.streams[q].offset;
  const int used = (int)(sdat - sbuf) + rc_al_round16(nch * 16);
  const rc_i64 tile_bytes = ((rc_i64)nk * (rc_i64)rb + 15) & ~15ll;
  const bool staged = (rc_i64)used + tile_bytes + nk <= (rc_i64)p.smem;  // uniform
  B *stile = (B *)(sbuf + used);
  unsigned char *sval = (unsigned char *)stile + tile_bytes;
  B *gout = (B *)s->out;
  unsigned char *gval = (unsigned char *)s->valid;

  RcAlSView<TS, B> v;
  v.gts = gts;
  v.sts = sts;
  v.gd = gd;
  v.sd = (const B *)(sdat + (g0 - c0));
  v.n = n;
  v.c = cs;
  v.r0 = r0;
  v.have = have;
  const TS first = rc_al_ts_bits<TS>(s->first[q]), last = rc_al_ts_bits<TS>(s->last[q]);
  const int method = p.streams[q].method, fill = p.fill;
  const double gap = p.streams[q].max_gap;
  for (int j = tid; j < rows; j += bd) {
    int k = skb[j];
    const int ke = skb[j + 1];
    if (k >= ke) continue;
    const int i = r0 + j;
    const bool oki = rc_al_row_ok<E>(v, i);
    const bool both = oki && i + 1 < n && rc_al_row_ok<E>(v, i + 1);
    const TS ti = sts[j];
    const TS tn = i + 1 < n ? sts[j + 1] : ti;
    v.lo = i;
    for (; k < ke; k++) {
      const TS t = rc_al_target<TS>(s, p, k);
      int i0, i1, ok = 0;
      double w = 0.0;
      if (t < first || t > last || !(both || (oki && t == ti))) {
        rc_al_sweep_general<TS, E>(v, t, first, last, method, gap, fill, i0, i1, w, ok);
      } else if (t == ti) {
        i0 = i1 = i;
        ok = 1;
      } else if (rc_diff(tn, ti) > gap) {
        rc_al_invalid(fill, i, i0, i1);
      } else {
        ok = 1;
        if (method == 2) {
          i0 = i1 = i;
        } else if (method == 1) {
          i0 = i1 = rc_diff(t, ti) <= rc_diff(tn, t) ? i : i + 1;
        } else {
          i0 = i;
          i1 = i + 1;
          w = rc_diff(t, ti) / rc_diff(tn, ti);
        }
      }
      if (staged) {
        rc_al_write<E>(v, p, q, i0, i1, w, stile + (rc_i64)(k - kbase) * cs - off);
        sval[k - kbase] = (unsigned char)ok;
      } else {
        rc_al_write<E>(v, p, q, i0, i1, w, gout + (rc_i64)k * C);
        gval[(rc_i64)k * ns + q] = (unsigned char)ok;
      }
      if (q == 0) ((TS *)s->out_ts)[k] = t;
    }
  }
  if (!staged) return;
  __syncthreads();
  // The staged [nk][cs] part of the fused rows: element e = kk * cs + c, stepped without a division.
  const int dk = bd / cs, dc = bd - dk * cs;
  int kk = tid / cs, c = tid - kk * cs;
  B *o = gout + (rc_i64)kbase * C + off;
  for (int e = tid; e < nk * cs; e += bd) {
    o[(rc_i64)kk * C + c] = stile[e];
    kk += dk;
    c += dc;
    if (c >= cs) {
      c -= cs;
      kk++;
    }
  }
  for (int k = tid; k < nk; k += bd) gval[(rc_i64)(kbase + k) * ns + q] = sval[k];
}

// The block's (stream, first row): a sample's blocks are its streams' chunks of p.tile rows, stream
// after stream, from the sample's tile_begin.
template <typename E>
__device__ __forceinline__ void rc_align_sweep(const RcAlignSample *__restrict__ samples,
                                               const int *__restrict__ tile_sample, const RcAlignParams &p) {
  RC_EXTERN_SHARED(sbuf);
  const RcAlignSample *s = samples + __ldg(tile_sample + blockIdx.x);
  rc_i64 lb = (rc_i64)blockIdx.x - s->tile_begin;
  int q = 0;
  for (; q < p.num_streams; q++) {
    const rc_i64 c = (s->len[q] + p.tile - 1) / p.tile;
    if (lb < c) break;
    lb -= c;
  }
  if (q >= p.num_streams) return;  // not reached: the host maps exactly the chunks
  if (p.ts_int) rc_al_sweep_block<rc_i64, E>(s, p, q, (int)(lb * p.tile), sbuf);
  else rc_al_sweep_block<double, E>(s, p, q, (int)(lb * p.tile), sbuf);
}

#define RC_ALIGN_SWEEP_ENTRY(E, SUFFIX, MIN_BLOCKS)                                                      \
  extern "C" __global__ void __launch_bounds__(256, MIN_BLOCKS)                                         \
      align_sweep_##SUFFIX(const RcAlignSample *__restrict__ samples, const int *__restrict__ tile_sample, \
                           RcAlignParams p) {                                                           \
    rc_align_sweep<E>(samples, tile_sample, p);                                                         \
  }

RC_ALIGN_SWEEP_ENTRY(RcF32, f32, RC_ALIGN_SWEEP_MIN_BLOCKS)
RC_ALIGN_SWEEP_ENTRY(RcF64, f64, RC_ALIGN_SWEEP_MIN_BLOCKS)
RC_ALIGN_SWEEP_ENTRY(RcF16, f16, RC_ALIGN_SWEEP_MIN_BLOCKS)
RC_ALIGN_SWEEP_ENTRY(RcBF16, bf16, RC_ALIGN_SWEEP_MIN_BLOCKS)

// Tuning builds (-DRC_ALIGN_VARIANTS with bit 2 set): the float32 sweep under other register caps,
// picked by ROBOCACHE_ALIGN_VARIANT (align_sweep_f32_<variant>): free (no cap), r48 (5 blocks of
// 256), r40 (6), r32 (8).
#if RC_ALIGN_VARIANTS & 4
RC_ALIGN_SWEEP_ENTRY(RcF32, f32_free, 1)
RC_ALIGN_SWEEP_ENTRY(RcF32, f32_r48, 5)
RC_ALIGN_SWEEP_ENTRY(RcF32, f32_r40, 6)
RC_ALIGN_SWEEP_ENTRY(RcF32, f32_r32, 8)
#endif
