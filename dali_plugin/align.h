// align.h: robocache__Align, the DALI face of src/ops/align.rs.
#ifndef ROBOCACHE_DALI_PLUGIN_ALIGN_H_
#define ROBOCACHE_DALI_PLUGIN_ALIGN_H_

#include <vector>

#include "dali/pipeline/operator/operator.h"
#include "robocache_common.h"

namespace dali {

template <typename Backend>
class RobocacheAlign : public Operator<Backend> {
 public:
  explicit RobocacheAlign(const OpSpec &spec);

 protected:
  bool SetupImpl(std::vector<OutputDesc> &output_desc, const Workspace &ws) override;
  void RunImpl(Workspace &ws) override;

 private:
  // Fills streams_ (sample-major) and refs_ from the workspace; checks input devices.
  void CollectSamples(const Workspace &ws);

  rust::Box<robocache::ffi::AlignOp> op_;
  int num_streams_ = 0;
  bool has_ref_ = false;
  int64_t total_channels_ = 0;
  std::vector<robocache::ffi::AlignStreamIn> streams_;
  std::vector<robocache::ffi::AlignRefIn> refs_;
  std::vector<int64_t> out_lens_;
  USE_OPERATOR_MEMBERS();
};

}  // namespace dali

#endif  // ROBOCACHE_DALI_PLUGIN_ALIGN_H_
