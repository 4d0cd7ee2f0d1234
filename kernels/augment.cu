// augment.cu: action_noise and points_augment, one launch per ragged batch each.
// common.cuh (with the Philox generator, identical to src/rng.rs) is prepended by the registry.
// temporal_jitter needs no kernel of its own: its random warp is drawn on the host and it launches
// resample.cu with the warped times as explicit targets.
//
// action_noise: one block per sample. White noise: every thread draws and writes elements
// independently. Ornstein-Uhlenbeck (a > 0): the block draws a chunk of innovations in parallel
// into shared memory, then one thread per channel runs the recursion x_t = a x_{t-1} + b e_t
// over the chunk (float64, FMA contraction off: the same operations as the CPU backend).

#define RC_NOISE_SMEM 2048

// Innovation of element e = t * C + c, before scaling by sigma: N(0, 1) or U(-1, 1).
__device__ __forceinline__ double rc_noise_draw(const RcNoiseParams &p, unsigned sample, rc_u64 e) {
  RcU4 w = rc_words(p.seed, p.iteration, sample, RC_STREAM_NOISE, (unsigned)(e >> 1));
  if (p.distribution == 0) {
    double z0, z1;
    rc_box_muller(w, z0, z1);
    return (e & 1) ? z1 : z0;
  }
  double u = (e & 1) ? rc_uniform_f64(w.z, w.w) : rc_uniform_f64(w.x, w.y);
  return 2.0 * u - 1.0;
}

template <typename E>
__device__ __forceinline__ typename E::bits rc_noise_out(const RcNoiseParams &p, typename E::bits in,
                                                         double x, int c) {
  typedef typename E::acc A;
  A v = E::load(in) + (A)x;
  if (p.low) { A lo = (A)((const double *)p.low)[c]; v = v < lo ? lo : v; }
  if (p.high) { A hi = (A)((const double *)p.high)[c]; v = v > hi ? hi : v; }
  return E::store(v);
}

template <typename E>
__device__ __forceinline__ void rc_action_noise(const RcNoiseSample *__restrict__ samples,
                                                RcNoiseParams p) {
  typedef typename E::bits B;
  const RcNoiseSample s = samples[blockIdx.x];
  const int C = p.channels;
  const rc_i64 total = s.len * (rc_i64)C;
  const B *__restrict__ in = (const B *)s.data;
  B *__restrict__ out = (B *)s.out;
  const double *__restrict__ sigma = (const double *)s.sigma;
  const int tid = threadIdx.x, nt = blockDim.x;
  if (!s.apply) {
    for (rc_i64 e = tid; e < total; e += nt) out[e] = in[e];
    return;
  }
  if (s.a == 0.0) {
    // White noise: one thread per pair of elements (2q, 2q + 1), which share one Philox draw.
    const rc_i64 pairs = (total + 1) >> 1;
    for (rc_i64 q = tid; q < pairs; q += nt) {
      RcU4 w = rc_words(p.seed, p.iteration, (unsigned)s.sample, RC_STREAM_NOISE, (unsigned)q);
      double z0, z1;
      if (p.distribution == 0) {
        rc_box_muller(w, z0, z1);
      } else {
        z0 = 2.0 * rc_uniform_f64(w.x, w.y) - 1.0;
        z1 = 2.0 * rc_uniform_f64(w.z, w.w) - 1.0;
      }
      const rc_i64 e = 2 * q;
      int c = (int)(e % C);
      out[e] = rc_noise_out<E>(p, in[e], z0 * sigma[c], c);
      if (e + 1 < total) {
        c = c + 1 == C ? 0 : c + 1;
        out[e + 1] = rc_noise_out<E>(p, in[e + 1], z1 * sigma[c], c);
      }
    }
    return;
  }
  // Chunks of `rows` steps x `cc` channels: innovations and inputs staged in shared memory in
  // parallel, so the serial recursion touches only shared memory (stores are fire-and-forget).
  __shared__ double buf[RC_NOISE_SMEM];
  __shared__ double inraw[RC_NOISE_SMEM];  // B values (<= 8 bytes each)
  B *inb = (B *)inraw;
  const int cc = C < nt ? C : nt;  // channels per pass
  const int rows = RC_NOISE_SMEM / cc;
  for (int c0 = 0; c0 < C; c0 += cc) {
    const int c = c0 + tid;
    double x = 0.0;
    for (rc_i64 t0 = 0; t0 < s.len; t0 += rows) {
      const int nr = (int)(s.len - t0 < rows ? s.len - t0 : rows);
      for (int j = tid; j < nr * cc; j += nt) {
        int r = j / cc, k = j % cc;
        if (c0 + k < C) {
          rc_i64 e = (t0 + r) * C + c0 + k;
          buf[j] = rc_noise_draw(p, (unsigned)s.sample, e) * sigma[c0 + k];
          inb[j] = in[e];
        }
      }
      __syncthreads();
      if (tid < cc && c < C) {
        for (int r = 0; r < nr; r++) {
          rc_i64 t = t0 + r;
          double eps = buf[r * cc + tid];
          x = t == 0 ? eps : s.a * x + s.b * eps;
          out[t * C + c] = rc_noise_out<E>(p, inb[r * cc + tid], x, c);
        }
      }
      __syncthreads();
    }
  }
}

#define RC_ACTION_NOISE(E, SUFFIX)                                                           \
  extern "C" __global__ void __launch_bounds__(256)                                         \
      action_noise_##SUFFIX(const RcNoiseSample *__restrict__ samples, RcNoiseParams p) {   \
    rc_action_noise<E>(samples, p);                                                         \
  }

RC_ACTION_NOISE(RcF32, f32)
RC_ACTION_NOISE(RcF64, f64)
RC_ACTION_NOISE(RcF16, f16)
RC_ACTION_NOISE(RcBF16, bf16)

// points_augment: one thread per point, `tile` points per block, `tile_sample` maps blocks to
// samples. out = M [x y z 1]^T (float32, the CPU's operation order) + jitter; features copied.
extern "C" __global__ void __launch_bounds__(256)
    points_augment_f32(const RcAugPointsSample *__restrict__ samples,
                       const int *__restrict__ tile_sample, RcAugPointsParams p) {
  const RcAugPointsSample &s = samples[__ldg(tile_sample + blockIdx.x)];
  const rc_i64 i = ((rc_i64)blockIdx.x - s.tile_begin) * p.tile + threadIdx.x;
  if (blockIdx.x == s.tile_begin && threadIdx.x < 16) {
    int r = threadIdx.x / 4, k = threadIdx.x % 4;
    float v = r < 3 ? s.m[r * 4 + k] : (k == 3 ? 1.0f : 0.0f);
    ((float *)s.transform)[threadIdx.x] = v;
  }
  if (i >= s.n) return;
  const int D = p.dims;
  const float *__restrict__ src = (const float *)s.in + i * D;
  float *__restrict__ dst = (float *)s.out + i * D;
  const float x = src[0], y = src[1], z = src[2];
  float o[3];
#pragma unroll
  for (int r = 0; r < 3; r++) o[r] = s.m[r * 4] * x + s.m[r * 4 + 1] * y + s.m[r * 4 + 2] * z + s.m[r * 4 + 3];
  if (s.jitter > 0.0f) {
    // One Philox draw per point: words 0-1 give the x and y jitter, words 2-3 the z jitter.
    RcU4 w = rc_words(p.seed, p.iteration, (unsigned)s.sample, RC_STREAM_POINTS_JITTER, (unsigned)i);
    float j[3], unused;
    rc_box_muller_f32(w.x, w.y, j[0], j[1]);
    rc_box_muller_f32(w.z, w.w, j[2], unused);
    const float c = s.clip;
#pragma unroll
    for (int r = 0; r < 3; r++) {
      float d = j[r] * s.jitter;
      if (c > 0.0f) d = d < -c ? -c : (d > c ? c : d);
      o[r] = o[r] + d;
    }
  }
  dst[0] = o[0]; dst[1] = o[1]; dst[2] = o[2];
  for (int k = 3; k < D; k++) dst[k] = src[k];
  if (s.mask) {
    unsigned char keep = 1;
    if (s.dropout > 0.0f) {
      RcU4 w = rc_words(p.seed, p.iteration, (unsigned)s.sample, RC_STREAM_POINTS_DROP, (unsigned)i);
      keep = rc_uniform_f32(w.x) >= s.dropout ? 1 : 0;
    }
    ((unsigned char *)s.mask)[i] = keep;
  }
}
