// resample.h: robocache__Resample, the DALI face of src/ops/resample.rs.
#ifndef ROBOCACHE_DALI_PLUGIN_RESAMPLE_H_
#define ROBOCACHE_DALI_PLUGIN_RESAMPLE_H_

#include <vector>

#include "dali/pipeline/operator/arg_helper.h"
#include "dali/pipeline/operator/operator.h"
#include "robocache_common.h"

namespace dali {

template <typename Backend>
class RobocacheResample : public Operator<Backend> {
 public:
  explicit RobocacheResample(const OpSpec &spec);

 protected:
  bool SetupImpl(std::vector<OutputDesc> &output_desc, const Workspace &ws) override;
  void RunImpl(Workspace &ws) override;

 private:
  // Fills samples_ (shapes, pointers, per-sample arguments) from the workspace.
  void CollectSamples(const Workspace &ws);

  rust::Box<robocache::ffi::ResampleOp> op_;
  bool has_targets_ = false;
  ArgValue<float> start_, end_;
  robocache::ffi::ResampleBatchIn batch_{};
  std::vector<robocache::ffi::ResampleSampleIn> samples_;
  std::vector<int64_t> out_lens_;
  int data_ndim_ = 2;
  USE_OPERATOR_MEMBERS();
};

}  // namespace dali

#endif  // ROBOCACHE_DALI_PLUGIN_RESAMPLE_H_
