// align_sweep.cu: the sweep form of the align kernel (design 6), last of the align program (after
// align_core.cu, align.cu and align_flat.cu), for the computed clocks (target_rate, num_samples); the
// explicit reference form keeps the other forms (its timestamps need not be sorted).
//
// The other forms tile the reference steps and let each (step, stream) item find its rows in global
// memory: a chain of dependent, scattered loads per item. Here a block takes p.tile consecutive rows
// of one stream of one sample and copies them (and the next row), timestamps and data, into shared
// memory with coalesced 16-byte loads: every input byte is read once, in whole lines. The steps the
// block writes are those whose `locate` row (the last row with ts <= t) is one of its rows: from the
// first k with t_k >= ts[r0] (0 for the stream's first block) to the first k with t_k >= ts[r0 + rows]
// (T for its last), two positions on the clock that two threads compute (an estimate from the clock's
// formula, corrected against the clock itself, so exact). Then one thread per step: its row by a
// binary search in the shared timestamps, rows i and i + 1 present (no NaN) decided with `locate`'s
// rules from shared memory; anything else (NaN rows, steps outside the stream's span) runs
// align_core.cu's rc_al_locate from the known row, whose walks read rows outside the block from
// global memory. The block's part of the fused rows and its valid flags are staged in shared memory
// and leave with contiguous stores (a block whose steps outgrow the staging space writes them
// straight to global memory). Stream 0's blocks write the output timestamps.
//
// Blocks: tile_sample[b] = sample * 8 + stream, the chunk b - RcAlignSample::block0[stream].
// Shared memory (p.smem bytes): the block's range [k0, k1) of steps, timestamps [p.tile + 1] (16-byte
// chunks), the rows' bytes (16-byte chunks), then the staged steps: [steps][C_s] elements and [steps]
// valid flags.

#ifndef RC_ALIGN_SWEEP_MIN_BLOCKS
#define RC_ALIGN_SWEEP_MIN_BLOCKS 4
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

// Bytes [g0, g1) of global memory, of which [lo, hi) may be read, to shared memory at dst as the
// 16-byte chunks from g0 & ~15 (2-byte pieces at the ends of [lo, hi)); returns the chunk count.
__device__ __forceinline__ int rc_al_sweep_copy(unsigned char *dst, rc_u64 g0, rc_u64 g1, rc_u64 lo, rc_u64 hi) {
  const rc_u64 c0 = g0 & ~15ull;
  const int nch = (int)((g1 - c0 + 15) >> 4);
  for (int i = threadIdx.x; i < nch; i += blockDim.x) *(uint4 *)(dst + 16 * i) = rc_al_load16(c0 + 16ull * (rc_u64)i, lo, hi);
  return nch;
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

  int *srange = (int *)sbuf;  // the block's steps [srange[0], srange[1])
  unsigned char *sts8 = sbuf + 16;
  const rc_u64 t0 = (rc_u64)(gts + r0), tb = (rc_u64)gts;
  const int nts = rc_al_sweep_copy(sts8, t0, t0 + 8ull * (rc_u64)have, tb, tb + 8ull * (rc_u64)n);
  unsigned char *sdat = sts8 + 16 * nts;
  const rc_u64 rb = (rc_u64)cs * sizeof(B);
  const rc_u64 base = (rc_u64)gd, g0 = base + (rc_u64)r0 * rb;
  const int nch = rc_al_sweep_copy(sdat, g0, g0 + (rc_u64)have * rb, base, base + (rc_u64)n * rb);
  // Two warps place the block's steps on the clock.
  if (tid == 0) srange[0] = r0 == 0 ? 0 : rc_al_first_step<TS>(s, p, __ldg(gts + r0), T);
  if (tid == (bd > 32 ? 32 : bd - 1)) srange[1] = r0 + rows == n ? T : rc_al_first_step<TS>(s, p, __ldg(gts + r0 + rows), T);
  __syncthreads();

  const int kbase = srange[0], nk = srange[1] - kbase;
  if (nk <= 0) return;  // uniform across the block
  const TS *sts = (const TS *)(sts8 + (t0 & 15));
  const int C = p.total_channels, ns = p.num_streams, off = (int)p.streams[q].offset;
  const int used = (int)(sdat - sbuf) + 16 * nch;
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
  v.sd = (const B *)(sdat + (g0 & 15));
  v.n = n;
  v.c = cs;
  v.r0 = r0;
  v.have = have;
  const TS first = rc_al_ts_bits<TS>(s->first[q]), last = rc_al_ts_bits<TS>(s->last[q]);
  const int method = p.streams[q].method, fill = p.fill;
  const double gap = p.streams[q].max_gap;
  for (int kk = tid; kk < nk; kk += bd) {
    const int k = kbase + kk;
    const TS t = rc_al_target<TS>(s, p, k);
    // The last of the block's rows with ts <= t (its first row for steps before the stream's start).
    int lo = 0, hi = rows - 1;
    while (lo < hi) {
      const int mid = (lo + hi + 1) >> 1;
      if (sts[mid] <= t) lo = mid;
      else hi = mid - 1;
    }
    const int i = r0 + lo;
    const TS ti = sts[lo];
    const bool oki = rc_al_row_ok<E>(v, i);
    // Inside the stream's span with row i present: a copy at its time, or rows i and i + 1 when
    // i + 1 is present too (locate's walks stop at once); anything else through rc_al_locate.
    const bool inside = t >= first && t <= last && oki;
    int i0, i1, ok = 0;
    double w = 0.0;
    if (inside && t == ti) {
      i0 = i1 = i;
      ok = 1;
    } else if (inside && i + 1 < n && rc_al_row_ok<E>(v, i + 1)) {
      rc_al_pick(t, i, i + 1, ti, sts[lo + 1], method, gap, fill, i0, i1, w, ok);
    } else {
      v.lo = i;
      rc_al_locate<TS, E>(v, t, first, last, method, gap, fill, i0, i1, w, ok);
    }
    if (staged) {
      rc_al_write<E>(v, p, q, i0, i1, w, stile + (rc_i64)kk * cs - off);
      sval[kk] = (unsigned char)ok;
    } else {
      rc_al_write<E>(v, p, q, i0, i1, w, gout + (rc_i64)k * C);
      gval[(rc_i64)k * ns + q] = (unsigned char)ok;
    }
    if (q == 0) ((TS *)s->out_ts)[k] = t;
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

template <typename E>
__device__ __forceinline__ void rc_align_sweep(const RcAlignSample *__restrict__ samples,
                                               const int *__restrict__ tile_sample, const RcAlignParams &p) {
  RC_EXTERN_SHARED(sbuf);
  const int e = __ldg(tile_sample + blockIdx.x);
  const RcAlignSample *s = samples + (e >> 3);
  const int q = e & 7;
  const int r0 = ((int)blockIdx.x - s->block0[q]) * p.tile;
  if (p.ts_int) rc_al_sweep_block<rc_i64, E>(s, p, q, r0, sbuf);
  else rc_al_sweep_block<double, E>(s, p, q, r0, sbuf);
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
