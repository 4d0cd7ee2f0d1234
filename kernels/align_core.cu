// align_core.cu: what both forms of the align kernel share, first of the align program (the Rust
// kernel registry concatenates common.cuh, align_core.cu, align.cu (the tiled form) and align_flat.cu
// (the flat forms)): the reference clock, the search and `rc_al_locate` (mirror of `locate` in
// src/ops/align.rs: NaN walks, max_gap, fill) over a stream view (RcAlGView here: global memory;
// align.cu's RcAlView: shared-memory windows first), SLERP, the fused row's writers (one item's
// channels: rc_al_write; a tile's rows from located items: rc_al_rows), the staged tile's store and
// the block's tile.

// 1: the flat forms probe timestamps and test rows for NaN with 16-byte loads (not yet measured on a
// GPU; 0, the default, is the code measured in benchmarks/results/gpu_align_h200_notes.md).
#ifndef RC_ALIGN_WIDE
#define RC_ALIGN_WIDE 0
#endif
// Timestamps per probe of the flat forms' search (RC_ALIGN_WIDE: 8), 2 to 8.
#ifndef RC_AL_PROBE
#define RC_AL_PROBE 8
#endif
// Dynamic shared memory (the host shim for tests/emulate defines its own).
#ifndef RC_EXTERN_SHARED
#define RC_EXTERN_SHARED(name) extern __shared__ __align__(16) unsigned char name[]
#endif

template <typename TS>
__device__ __forceinline__ TS rc_al_target(const RcAlignSample *s, const RcAlignParams &p, rc_i64 k);
template <>
__device__ __forceinline__ double rc_al_target<double>(const RcAlignSample *s, const RcAlignParams &p,
                                                       rc_i64 k) {
  if (p.grid == 0) return rc_grid_rate_f(s->a_f, s->b_f, p.rate, k);
  if (p.grid == 1) return rc_grid_count_f(s->a_f, s->b_f, p.count, k);
  return __ldg((const double *)s->targets + k);
}
template <>
__device__ __forceinline__ rc_i64 rc_al_target<rc_i64>(const RcAlignSample *s, const RcAlignParams &p,
                                                       rc_i64 k) {
  if (p.grid == 0) return rc_grid_rate_i(s->a_i, s->b_i, p.rate, k);
  if (p.grid == 1) return rc_grid_count_i(s->a_i, s->b_i, p.count, k);
  return __ldg((const rc_i64 *)s->targets + k);
}

// A timestamp from the descriptor's raw 8 bytes.
template <typename TS>
__device__ __forceinline__ TS rc_al_ts_bits(rc_u64 b);
template <>
__device__ __forceinline__ double rc_al_ts_bits<double>(rc_u64 b) {
  return __longlong_as_double((long long)b);
}
template <>
__device__ __forceinline__ rc_i64 rc_al_ts_bits<rc_i64>(rc_u64 b) {
  return (rc_i64)b;
}

// The last row with ts <= t in global memory, from a guess g: exponential search, then binary
// search (as resample). Needs ts[0] <= t.
template <typename TS>
__device__ __forceinline__ int rc_al_gsearch(const TS *ts, int n, TS t, int g) {
  int lo, hi;
  if (__ldg(ts + g) <= t) {
    lo = g;
    int step = 1;
    while (lo + step <= n - 1 && __ldg(ts + lo + step) <= t) { lo += step; step <<= 1; }
    hi = lo + step - 1 < n - 1 ? lo + step - 1 : n - 1;
  } else {
    hi = g - 1;
    int step = 1;
    while (hi - step >= 0 && __ldg(ts + hi - step + 1) > t) { hi -= step; step <<= 1; }
    lo = hi - step + 1 > 0 ? hi - step + 1 : 0;
  }
  while (lo < hi) {
    int mid = (lo + hi + 1) >> 1;
    if (__ldg(ts + mid) <= t) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// 16 bytes at global chunk address ga, of which only [lo, hi) may be read (2-byte pieces at the ragged ends).
__device__ __forceinline__ uint4 rc_al_load16(rc_u64 ga, rc_u64 lo, rc_u64 hi) {
  if (ga >= lo && ga + 16 <= hi) return __ldg((const uint4 *)ga);
  unsigned h[8];
#pragma unroll
  for (int b = 0; b < 8; b++) {
    rc_u64 a = ga + 2 * b;
    h[b] = (a >= lo && a < hi) ? (unsigned)__ldg((const unsigned short *)a) : 0u;
  }
  uint4 v;
  v.x = h[0] | (h[1] << 16);
  v.y = h[2] | (h[3] << 16);
  v.z = h[4] | (h[5] << 16);
  v.w = h[6] | (h[7] << 16);
  return v;
}

// Element i of a 16-byte chunk, as the element type B (i a constant after unrolling).
template <typename B> struct RcAlChunk;
template <> struct RcAlChunk<float> {
  static constexpr int n = 4;
  static __device__ __forceinline__ float at(const uint4 &v, int i) {
    return __uint_as_float(i == 0 ? v.x : (i == 1 ? v.y : (i == 2 ? v.z : v.w)));
  }
};
template <> struct RcAlChunk<double> {
  static constexpr int n = 2;
  static __device__ __forceinline__ double at(const uint4 &v, int i) {
    return __longlong_as_double((long long)(i == 0 ? ((rc_u64)v.y << 32 | v.x) : ((rc_u64)v.w << 32 | v.z)));
  }
};
template <> struct RcAlChunk<unsigned short> {
  static constexpr int n = 8;
  static __device__ __forceinline__ unsigned short at(const uint4 &v, int i) {
    const unsigned w = (i >> 1) == 0 ? v.x : ((i >> 1) == 1 ? v.y : ((i >> 1) == 2 ? v.z : v.w));
    return (unsigned short)(w >> (16 * (i & 1)));
  }
};

// Missing-row flags of rows lo and lo + 1 (bits 0 and 1), element by element (defined below).
template <typename E, typename V>
__device__ __forceinline__ unsigned rc_al_rows_ok2(const V &v, int lo);

// One stream as a thread of the flat kernels sees it: global timestamps and rows only.
template <typename TS, typename B>
struct RcAlGView {
  static constexpr bool kSlot = false;  // rc_al_locate: rows_ok2 as RcAlRView's (the rows to its slot)
  const TS *ts;
  const B *d;
  int n, c;
  __device__ __forceinline__ TS t(int j) const { return __ldg(ts + j); }
  __device__ __forceinline__ const B *row(int j) const { return d + (rc_i64)j * c; }
  // The last row with ts <= t (first <= t <= last): an interpolation guess g between the ends (in
  // float32 with a fast division: only the probes' positions depend on it, never the result), the 8
  // timestamps from g - 3 loaded together (jittered clocks put the answer there; RC_ALIGN_WIDE: from
  // about g - 3, in four 16-byte loads, the host placing every timestamp array 16-byte aligned), a
  // second probe of 8 next to it on the side the first missed, else the exponential search from the
  // probes' end.
  __device__ __forceinline__ int search(TS t, TS first, TS last) const {
    const float span = (float)rc_diff(last, first);
    int g = span > 0.0f ? (int)(__fdividef((float)rc_diff(t, first), span) * (float)(n - 1)) : 0;
    g = g < 0 ? 0 : (g > n - 1 ? n - 1 : g);
    if (n < 8) return rc_al_gsearch(ts, n, t, g);
    constexpr int P = RC_ALIGN_WIDE ? 8 : RC_AL_PROBE;
    int a = g - (P / 2 - 1);
#pragma unroll 1
    for (int probe = 0; probe < 2; probe++) {
#if RC_ALIGN_WIDE
      a = (a < 0 ? 0 : (a > n - 8 ? n - 8 : a)) & ~1;  // even: 16-byte aligned
      int le = 0;
#pragma unroll
      for (int i = 0; i < 4; i++) {
        const uint4 v = __ldg((const uint4 *)(ts + a + 2 * i));
        le += rc_al_ts_bits<TS>((rc_u64)v.y << 32 | v.x) <= t ? 1 : 0;
        le += rc_al_ts_bits<TS>((rc_u64)v.w << 32 | v.z) <= t ? 1 : 0;
      }
#else
      a = a < 0 ? 0 : (a > n - P ? n - P : a);
      int le = 0;
#pragma unroll
      for (int i = 0; i < P; i++) le += __ldg(ts + a + i) <= t ? 1 : 0;
#endif
      if (le == 0) {  // below the probe (a > 0: ts[0] <= t)
        if (probe == 1) return rc_al_gsearch(ts, n, t, a);
        a -= P;
      } else if (le == P && a + P < n) {  // above it
        if (probe == 1) return rc_al_gsearch(ts, n, t, a + P - 1);
        a += P;
      } else {
        return a + le - 1;
      }
    }
    return -1;  // not reached
  }
  // Missing-row flags of rows lo (bit 0) and lo + 1 (bit 1; clear past the end), tested together
  // (row lo stands in for a missing lo + 1). RC_ALIGN_WIDE: both rows' 16-byte chunks loaded at once
  // (2-byte pieces at the ends of the stream's data, so nothing outside it is read), a quarter of the
  // load instructions of one per element for float32.
  template <typename E>
  __device__ __forceinline__ unsigned rows_ok2(int lo) const {
#if RC_ALIGN_WIDE
    const rc_u64 es = sizeof(B), rb = (rc_u64)c * es;
    const rc_u64 base = (rc_u64)d, hi = base + (rc_u64)n * rb;
    const rc_u64 s0 = base + (rc_u64)lo * rb, mid = s0 + rb, e = lo + 1 < n ? mid + rb : mid;
    bool ok0 = true, ok1 = true;
#pragma unroll 4
    for (rc_u64 ga = s0 & ~15ull; ga < e; ga += 16) {
      const uint4 v = rc_al_load16(ga, base, hi);
#pragma unroll
      for (int i = 0; i < RcAlChunk<B>::n; i++) {
        const rc_u64 x = ga + (rc_u64)i * es;
        const typename E::acc y = E::load(RcAlChunk<B>::at(v, i));
        const bool nan = !(y == y);
        ok0 = ok0 & !(nan && x >= s0 && x < mid);
        ok1 = ok1 & !(nan && x >= mid && x < e);
      }
    }
    return (ok0 ? 1u : 0u) | (ok1 && lo + 1 < n ? 2u : 0u);
#else
    return rc_al_rows_ok2<E>(*this, lo);
#endif
  }
};

// Design 5 (regs): each item's per-thread shared-memory slot of RC_AL_SLOT bytes, where its NaN
// test leaves the 16-byte chunks of rows lo and lo + 1 for the write (rows with 2 * bytes + 15 >
// RC_AL_SLOT take RcAlGView's path).
#ifndef RC_AL_SLOT
#define RC_AL_SLOT 80
#endif

// RcAlGView whose NaN test of rows lo and lo + 1 loads both rows in 16-byte chunks (2-byte pieces at
// the ends of the stream's data), tests them in registers and leaves the chunks in the item's slot
// (held = lo, mis = the first row's offset in it; held = -1 when they do not fit), so that the write
// reads them from there and not from global memory again.
template <typename TS, typename B>
struct RcAlRView : RcAlGView<TS, B> {
  static constexpr bool kSlot = true;
  unsigned char *slot;
  mutable int held, mis;
  template <typename E>
  __device__ __forceinline__ unsigned rows_ok2(int lo) const {
    const int n = this->n;
    const rc_u64 es = sizeof(B), rb = (rc_u64)this->c * es;
    const rc_u64 base = (rc_u64)this->d, hi = base + (rc_u64)n * rb;
    const rc_u64 s0 = base + (rc_u64)lo * rb, mid = s0 + rb, e = lo + 1 < n ? mid + rb : mid;
    if ((s0 & 15ull) + 2ull * rb > (rc_u64)RC_AL_SLOT) {
      held = -1;
      return RcAlGView<TS, B>::template rows_ok2<E>(lo);
    }
    bool ok0 = true, ok1 = true;
    const rc_u64 c0 = s0 & ~15ull;
#pragma unroll 1
    for (rc_u64 ga = c0; ga < e; ga += 16) {
      const uint4 v = rc_al_load16(ga, base, hi);
      *(uint4 *)(slot + (ga - c0)) = v;
#pragma unroll
      for (int i = 0; i < RcAlChunk<B>::n; i++) {
        const rc_u64 x = ga + (rc_u64)i * es;
        const typename E::acc y = E::load(RcAlChunk<B>::at(v, i));
        const bool nan = !(y == y);
        ok0 = ok0 & !(nan && x >= s0 && x < mid);
        ok1 = ok1 & !(nan && x >= mid && x < e);
      }
    }
    held = lo;
    mis = (int)(s0 & 15ull);
    return (ok0 ? 1u : 0u) | (ok1 && lo + 1 < n ? 2u : 0u);
  }
  // Row j (held or held + 1) in the slot.
  __device__ __forceinline__ const B *srow(int j) const { return (const B *)(slot + mis) + (rc_i64)(j - held) * this->c; }
};

// A row is missing when any channel is NaN. No early exit: the loads are independent.
template <typename E, typename V>
__device__ __forceinline__ bool rc_al_row_ok(const V &v, int j) {
  const typename E::bits *r = v.row(j);
  bool ok = true;
#pragma unroll 8
  for (int i = 0; i < v.c; i++) {
    typename E::acc x = E::load(r[i]);
    ok = ok & (x == x);
  }
  return ok;
}

template <typename E, typename V>
__device__ __forceinline__ unsigned rc_al_rows_ok2(const V &v, int lo) {
  const bool ok_lo = rc_al_row_ok<E>(v, lo);
  const bool ok_hi = rc_al_row_ok<E>(v, lo + 1 < v.n ? lo + 1 : lo) && lo + 1 < v.n;
  return (ok_lo ? 1u : 0u) | (ok_hi ? 2u : 0u);
}

// Missing-row flags of rows j, j + dir, j + 2 dir, j + 3 dir as bits 0..3 (rows outside [0, n) read
// as missing), loaded together: a walk over a run of NaN rows takes a quarter of the round trips.
template <typename E, typename V>
__device__ __forceinline__ unsigned rc_al_rows_ok4(const V &v, int j, int dir) {
  unsigned m = 0;
#pragma unroll
  for (int u = 0; u < 4; u++) {
    int r = j + u * dir;
    bool in = r >= 0 && r < v.n;
    if (rc_al_row_ok<E>(v, in ? r : j) && in) m |= 1u << u;
  }
  return m;
}

// Invalid step: i0 = i1 = row to hold, -1 for NaN, -2 for zero.
__device__ __forceinline__ void rc_al_invalid(int fill, int h, int &i0, int &i1) {
  i0 = i1 = fill == 0 ? (h >= 0 ? h : -1) : (fill == 1 ? -1 : -2);
}

// The end of `locate` once the present rows around t are known (l at tl <= t, r at tr > t): invalid
// (hold l) when they are more than gap apart, else the method's rows and weight. ok and w must be 0.
template <typename TS>
__device__ __forceinline__ void rc_al_pick(TS t, int l, int r, TS tl, TS tr, int method, double gap, int fill,
                                           int &i0, int &i1, double &w, int &ok) {
  if (rc_diff(tr, tl) > gap) {
    rc_al_invalid(fill, l, i0, i1);
    return;
  }
  ok = 1;
  if (method == 2) { i0 = i1 = l; return; }
  if (method == 1) { i0 = i1 = (rc_diff(t, tl) <= rc_diff(tr, t)) ? l : r; return; }
  i0 = l;
  i1 = r;
  w = rc_diff(t, tl) / rc_diff(tr, tl);
}

// Mirror of `locate` in src/ops/align.rs. Outputs: (i0, i1, w) with i0 == i1 for a copy, i0 < 0
// for a fill (-1 NaN, -2 zero); ok = valid flag. The view's search finds the last row with ts <= t
// (RcAlView: in the shared-memory window when it brackets t, else global memory; RcAlGView: global
// memory). Rows lo and lo + 1 are tested for NaN together.
template <typename TS, typename E, typename V>
__device__ __forceinline__ void rc_al_locate(const V &v, TS t, TS first, TS last,
                                             int method, double gap, int fill, int &i0, int &i1, double &w,
                                             int &ok) {
  w = 0.0;
  ok = 0;
  const int n = v.n;
  const bool hold = fill == 0;
  if (t < first || t > last) {
    int h = -1;
    if (hold) {
      if (t < first) {
        for (int j = 0; j < n; j++)
          if (rc_al_row_ok<E>(v, j)) { h = j; break; }
      } else {
        for (int j = n - 1; j >= 0; j--)
          if (rc_al_row_ok<E>(v, j)) { h = j; break; }
      }
    }
    rc_al_invalid(fill, h, i0, i1);
    return;
  }
  const int lo = v.search(t, first, last);
  // Rows lo and lo + 1 tested together (row lo stands in for a missing lo + 1; RC_ALIGN_WIDE: by the
  // view, RcAlGView with 16-byte loads).
#if RC_ALIGN_WIDE
  const unsigned ok2 = v.template rows_ok2<E>(lo);
  const bool ok_lo = ok2 & 1u, ok_hi = ok2 & 2u;
#else
  bool ok_lo, ok_hi;
  if constexpr (V::kSlot) {
    const unsigned ok2 = v.template rows_ok2<E>(lo);
    ok_lo = ok2 & 1u;
    ok_hi = ok2 & 2u;
  } else {
    ok_lo = rc_al_row_ok<E>(v, lo);
    ok_hi = rc_al_row_ok<E>(v, lo + 1 < n ? lo + 1 : lo) && lo + 1 < n;
  }
#endif
  const TS tlo = v.t(lo);
  if (tlo == t && ok_lo) {
    i0 = i1 = lo;
    ok = 1;
    return;
  }
  int l = -1;
  {
    int j = lo, have = 0;
    bool okj = ok_lo;
    unsigned mk = 0;
    for (;;) {
      if (okj) { l = j; break; }
      if (!hold && rc_diff(t, v.t(j)) > gap) break;
      if (--j < 0) break;
      if (have == 0) { mk = rc_al_rows_ok4<E>(v, j, -1); have = 4; }
      okj = mk & 1u;
      mk >>= 1;
      have--;
    }
  }
  int r = -1;
  {
    int j = lo + 1, have = 0;
    bool okj = ok_hi;
    unsigned mk = 0;
    while (j < n) {
      if (okj) { r = j; break; }
      if ((!hold || l >= 0) && rc_diff(v.t(j), t) > gap) break;
      if (++j >= n) break;
      if (have == 0) { mk = rc_al_rows_ok4<E>(v, j, 1); have = 4; }
      okj = mk & 1u;
      mk >>= 1;
      have--;
    }
  }
  if (l < 0 || r < 0) {
    rc_al_invalid(fill, l >= 0 ? l : r, i0, i1);
    return;
  }
  rc_al_pick(t, l, r, v.t(l), v.t(r), method, gap, fill, i0, i1, w, ok);
}

__device__ __forceinline__ void rc_al_normalise(double q[4]) {
  double n = sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
  if (n > 0.0) {
    const double r = 1.0 / n;
#pragma unroll
    for (int i = 0; i < 4; i++) q[i] = q[i] * r;
  }
}

// Mirror of `slerp` in src/ops/align_cpu.rs: float64, normalised inputs, shortest arc, unit output.
__device__ __forceinline__ void rc_al_slerp(double a[4], double b[4], double w, double r[4]) {
  rc_al_normalise(a);
  rc_al_normalise(b);
  double dot = a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3];
  if (dot < 0.0) {
#pragma unroll
    for (int i = 0; i < 4; i++) b[i] = -b[i];
  }
  double d2 = 0.0, s2 = 0.0;
#pragma unroll
  for (int i = 0; i < 4; i++) {
    d2 = d2 + (a[i] - b[i]) * (a[i] - b[i]);
    s2 = s2 + (a[i] + b[i]) * (a[i] + b[i]);
  }
  // th = 2 atan2(|a - b|, |a + b|); sin th and cos th from its half angle's sine and cosine
  // (|a - b| and |a + b| over their norm), so that one sincos (of w th) gives both weights:
  // sin((1 - w) th) / sin th = cos(w th) - cos th sin(w th) / sin th.
  const double sd = sqrt(d2), sc = sqrt(s2);
  const double th = 2.0 * atan2(sd, sc);
  const double im = 1.0 / sqrt(d2 + s2);
  const double sh = sd * im, ch = sc * im;
  const double s = (2.0 * sh) * ch;
  double ca = 1.0 - w, cb = w;
  if (s > 0.0) {
    double sw, cw;
    sincos(w * th, &sw, &cw);
    cb = sw * (1.0 / s);
    ca = cw - ((ch - sh) * (ch + sh)) * cb;
  }
#pragma unroll
  for (int i = 0; i < 4; i++) r[i] = ca * a[i] + cb * b[i];
  rc_al_normalise(r);
}

__device__ __forceinline__ int rc_al_round16(int x) { return (x + 15) & ~15; }

// The stream's channels of one fused row from a located item (i0, i1, w): linear in the accumulator
// type, quaternion groups SLERPed in float64 (mirror of `write_stream` in src/ops/align_cpu.rs).
template <typename E, typename V>
__device__ __forceinline__ void rc_al_write(const V &v, const RcAlignParams &p, int q, int i0, int i1, double w,
                                            typename E::bits *orow) {
  typedef typename E::bits B;
  typedef typename E::acc A;
  const int2 *__restrict__ cmap = (const int2 *)p.chan_map;
  const int cs = v.c;
  const int off = (int)p.streams[q].offset;
  const int ident = p.wxyz ? 0 : 3;
  const B *r0p = v.row(i0 < 0 ? 0 : i0);
  const B *r1p = v.row(i0 < 0 ? 0 : i1);
  B *o = orow + off;
  for (int c = 0; c < cs;) {
    if (__ldg(cmap + off + c).y < 0) {
      B x;
      if (i0 == -1) {
        x = E::nan();
      } else if (i0 == -2) {
        x = E::store((A)0.0f);
      } else if (i1 == i0) {
        x = r0p[c];
      } else {
        A x0 = E::load(r0p[c]), x1 = E::load(r1p[c]);
        A wa = (A)w;
        x = E::store(x0 + wa * (x1 - x0));
      }
      o[c] = x;
      c++;
      continue;
    }
    // A quaternion group starts at c (groups do not overlap, so the walk meets each at its first channel).
    if (i0 == -1) {
#pragma unroll
      for (int i = 0; i < 4; i++) o[c + i] = E::nan();
    } else if (i0 == -2) {
#pragma unroll
      for (int i = 0; i < 4; i++) o[c + i] = E::store((A)(i == ident ? 1.0f : 0.0f));
    } else {
      double a[4], r[4];
#pragma unroll
      for (int i = 0; i < 4; i++) a[i] = (double)E::load(r0p[c + i]);
      if (i1 == i0) {
        rc_al_normalise(a);
#pragma unroll
        for (int i = 0; i < 4; i++) r[i] = a[i];
      } else {
        double b[4];
#pragma unroll
        for (int i = 0; i < 4; i++) b[i] = (double)E::load(r1p[c + i]);
        rc_al_slerp(a, b, w, r);
      }
#pragma unroll
      for (int i = 0; i < 4; i++) o[c + i] = E::store((A)r[i]);
    }
    c += 4;
  }
}

// rc_al_write for an RcAlRView item: when it interpolates between (or copies) the rows its NaN test
// left in its slot, they are read from there (the same arithmetic as rc_al_write, through a view whose
// rows are the slot's); anything else (fills, NaN walks past lo + 1, wide rows) as rc_al_write.
template <typename B>
struct RcAlSlotRows {
  const B *r0;
  int held, c;
  __device__ __forceinline__ const B *row(int j) const { return r0 + (rc_i64)(j - held) * c; }
};
template <typename E, typename V>
__device__ __forceinline__ void rc_al_write_regs(const V &v, const RcAlignParams &p, int q, int i0, int i1, double w,
                                                 typename E::bits *orow) {
  typedef typename E::bits B;
  const int h = v.held;
  if (i0 < 0 || h < 0 || (unsigned)(i0 - h) > 1u || (unsigned)(i1 - h) > 1u) {
    rc_al_write<E>(v, p, q, i0, i1, w, orow);
    return;
  }
  RcAlSlotRows<B> sv;
  sv.r0 = v.srow(h);
  sv.held = h;
  sv.c = v.c;
  rc_al_write<E>(sv, p, q, i0, i1, w, orow);
}

// Split form, after the items left (i0, i1, w) in shared memory: one thread per (step, quaternion
// group) SLERPs once and writes the group's 4 channels; one thread per other output element (so
// stores are contiguous), RC_ALIGN_UNROLL elements with their loads issued before any store.
#ifndef RC_ALIGN_UNROLL
#define RC_ALIGN_UNROLL 4
#endif
// Item `it` of a block's records (laid out as rc_al_rows reads them below): its weight and rows.
__device__ __forceinline__ void rc_al_put_rec(unsigned char *rec, int items, int it, int i0, int i1, double w) {
  double *sw = (double *)rec;
  int *si = (int *)(sw + items);
  sw[it] = w;
  si[it] = i0;
  si[items + it] = i1;
}
// rec: the block's items as [w x items][i0 x items][i1 x items] (items = p.tile * num_streams; item
// (k, q) at k * num_streams + q, or stream-major at q * p.tile + k); rowp(q, j, cs): stream q's row j.
// Per-channel facts come from the channel map (lanes of a warp meet several streams: no divergent
// reads of the parameter block).
template <typename E, typename R>
__device__ __forceinline__ void rc_al_rows(const RcAlignSample *s, const RcAlignParams &p, rc_i64 k0, int kcount,
                                           const unsigned char *rec, bool stream_major, const R &rowp) {
  typedef typename E::bits B;
  typedef typename E::acc A;
  const int C = p.total_channels;
  const int ns = p.num_streams;
  const int items = p.tile * ns;
  const double *sw = (const double *)rec;
  const int *si0 = (const int *)(sw + items), *si1 = si0 + items;
  const int2 *__restrict__ cmap = (const int2 *)p.chan_map;
  B *__restrict__ out = (B *)s->out + k0 * C;
  const int ident = p.wxyz ? 0 : 3;
  const int nq = p.num_quats;
  for (int j = threadIdx.x; j < kcount * nq; j += blockDim.x) {
    const int k = j / nq, gi = j - k * nq;
    const int2 gq = __ldg(cmap + C + gi);
    const int q = gq.x, it = stream_major ? q * p.tile + k : k * ns + q;
    const int i0 = si0[it], i1 = si1[it];
    B *o = out + (rc_i64)k * C + gq.y;
    if (i0 == -1) {
#pragma unroll
      for (int i = 0; i < 4; i++) o[i] = E::nan();
    } else if (i0 == -2) {
#pragma unroll
      for (int i = 0; i < 4; i++) o[i] = E::store((A)(i == ident ? 1.0f : 0.0f));
    } else {
      const int2 lq = __ldg(cmap + C + nq + gq.y);  // (channel in the stream, the stream's channels)
      const int cs = lq.y, qf = lq.x;
      const B *r0 = rowp(q, i0, cs) + qf;
      double a[4], r[4];
#pragma unroll
      for (int i = 0; i < 4; i++) a[i] = (double)E::load(r0[i]);
      if (i1 == i0) {
        rc_al_normalise(a);
#pragma unroll
        for (int i = 0; i < 4; i++) r[i] = a[i];
      } else {
        const B *r1 = rowp(q, i1, cs) + qf;
        double b[4];
#pragma unroll
        for (int i = 0; i < 4; i++) b[i] = (double)E::load(r1[i]);
        rc_al_slerp(a, b, sw[it], r);
      }
#pragma unroll
      for (int i = 0; i < 4; i++) o[i] = E::store((A)r[i]);
    }
  }
  const int total = kcount * C;
  const int bd = blockDim.x;
  // Element e = k * C + c, stepped by bd without a division per element.
  const int dk = bd / C, dc = bd - dk * C;
  int k = threadIdx.x / C, c = threadIdx.x - k * C;
  for (int base = threadIdx.x; base < total; base += RC_ALIGN_UNROLL * bd) {
    B v[RC_ALIGN_UNROLL];
    bool put[RC_ALIGN_UNROLL];
#pragma unroll
    for (int u = 0; u < RC_ALIGN_UNROLL; u++) {
      const int e = base + u * bd;
      put[u] = false;
      v[u] = E::nan();
      if (u > 0) {
        k += dk;
        c += dc;
        if (c >= C) {
          c -= C;
          k++;
        }
      }
      if (e < total) {
        const int2 m = __ldg(cmap + c);
        if (m.y < 0) {
          const int q = m.x, it = stream_major ? q * p.tile + k : k * ns + q;
          const int i0 = si0[it], i1 = si1[it];
          const int2 lq = __ldg(cmap + C + nq + c);
          const int cs = lq.y, lc = lq.x;
          put[u] = true;
          if (i0 == -1) {
            v[u] = E::nan();
          } else if (i0 == -2) {
            v[u] = E::store((A)0.0f);
          } else {
            const B b0 = rowp(q, i0, cs)[lc];
            if (i1 == i0) {
              v[u] = b0;
            } else {
              const B b1 = rowp(q, i1, cs)[lc];
              const A x0 = E::load(b0), x1 = E::load(b1);
              const A wa = (A)sw[it];
              v[u] = E::store(x0 + wa * (x1 - x0));
            }
          }
        }
      }
    }
#pragma unroll
    for (int u = 0; u < RC_ALIGN_UNROLL; u++)
      if (put[u]) out[base + u * bd] = v[u];
    k += dk;  // to the next round's first element
    c += dc;
    if (c >= C) {
      c -= C;
      k++;
    }
  }
}

// 4. A staged tile (kcount rows of C elements at sbuf + (out address mod 16)) to the output: 16-byte
// stores, 2-byte pieces at its ragged ends.
template <typename B>
__device__ __forceinline__ void rc_al_store_tile(const RcAlignSample *s, rc_i64 k0, int kcount, int C,
                                                 const unsigned char *sbuf) {
  const rc_u64 gout = s->out + (rc_u64)(k0 * C) * (rc_u64)sizeof(B);
  const rc_u64 gend = gout + (rc_u64)kcount * (rc_u64)C * (rc_u64)sizeof(B);
  const rc_u64 c0 = gout & ~15ull;
  const int nch = (int)((((gend + 15) & ~15ull) - c0) >> 4);
  for (int i = threadIdx.x; i < nch; i += blockDim.x) {
    const rc_u64 ga = c0 + 16ull * (rc_u64)i;
    const unsigned char *sp = sbuf + 16 * i;
    if (ga >= gout && ga + 16 <= gend) {
      *(uint4 *)ga = *(const uint4 *)sp;
    } else {
#pragma unroll
      for (int b = 0; b < 8; b++) {
        rc_u64 a = ga + 2 * b;
        if (a >= gout && a < gend) *(unsigned short *)a = *(const unsigned short *)(sp + 2 * b);
      }
    }
  }
}

// The block's sample, first step and step count (kcount <= 0: nothing to do).
__device__ __forceinline__ const RcAlignSample *rc_al_tile(const RcAlignSample *__restrict__ samples,
                                                           const int *__restrict__ tile_sample, const RcAlignParams &p,
                                                           rc_i64 &k0, int &kcount) {
  const RcAlignSample *s = samples + __ldg(tile_sample + blockIdx.x);
  k0 = ((rc_i64)blockIdx.x - s->tile_begin) * p.tile;
  const rc_i64 left = s->num_out - k0;
  kcount = left < p.tile ? (int)left : p.tile;
  return s;
}

