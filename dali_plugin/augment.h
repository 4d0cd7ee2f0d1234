// augment.h: the DALI faces of the augmentation operators (src/ops/temporal_jitter.rs,
// action_noise.rs, points_augment.rs): robocache__TemporalJitter, robocache__ActionNoise,
// robocache__PointsAugment. Each keeps its iteration counter and per-batch draws on the Rust side.
#ifndef ROBOCACHE_DALI_PLUGIN_AUGMENT_H_
#define ROBOCACHE_DALI_PLUGIN_AUGMENT_H_

#include <vector>

#include "dali/pipeline/operator/arg_helper.h"
#include "dali/pipeline/operator/operator.h"
#include "robocache_common.h"

namespace dali {

template <typename Backend>
class RobocacheTemporalJitter : public Operator<Backend> {
 public:
  explicit RobocacheTemporalJitter(const OpSpec &spec);

 protected:
  bool SetupImpl(std::vector<OutputDesc> &output_desc, const Workspace &ws) override;
  void RunImpl(Workspace &ws) override;

 private:
  rust::Box<robocache::ffi::JitterOp> op_;
  ArgValue<float, 1> speed_, offset_;
  ArgValue<float> warp_strength_;
  robocache::ffi::JitterBatchIn batch_{};
  std::vector<robocache::ffi::JitterSampleIn> samples_;
  std::vector<int64_t> out_lens_;
  USE_OPERATOR_MEMBERS();
};

template <typename Backend>
class RobocacheActionNoise : public Operator<Backend> {
 public:
  explicit RobocacheActionNoise(const OpSpec &spec);

 protected:
  bool SetupImpl(std::vector<OutputDesc> &output_desc, const Workspace &ws) override;
  void RunImpl(Workspace &ws) override;

 private:
  rust::Box<robocache::ffi::NoiseOp> op_;
  ArgValue<float, 1> sigma_;
  ArgValue<float> p_, correlation_time_;
  robocache::ffi::ElemType data_type_ = robocache::ffi::ElemType::Other;
  std::vector<robocache::ffi::NoiseSampleIn> samples_;
  USE_OPERATOR_MEMBERS();
};

template <typename Backend>
class RobocachePointsAugment : public Operator<Backend> {
 public:
  explicit RobocachePointsAugment(const OpSpec &spec);

 protected:
  bool SetupImpl(std::vector<OutputDesc> &output_desc, const Workspace &ws) override;
  void RunImpl(Workspace &ws) override;

 private:
  rust::Box<robocache::ffi::AugPointsOp> op_;
  ArgValue<float, 1> angle_, scale_, translation_;
  ArgValue<float> jitter_, jitter_clip_, dropout_;
  std::vector<robocache::ffi::AugPointsSampleIn> samples_;
  USE_OPERATOR_MEMBERS();
};

}  // namespace dali

#endif  // ROBOCACHE_DALI_PLUGIN_AUGMENT_H_
