// points.h: robocache__VoxelDownsample, robocache__Voxelize and robocache__Normalize, the DALI face
// of src/ops/points.rs (one operator class; the schema name picks the operator).
#ifndef ROBOCACHE_DALI_PLUGIN_POINTS_H_
#define ROBOCACHE_DALI_PLUGIN_POINTS_H_

#include <string>
#include <vector>

#include "dali/pipeline/operator/operator.h"
#include "robocache_common.h"

namespace dali {

template <typename Backend>
class RobocachePoints : public Operator<Backend> {
 public:
  explicit RobocachePoints(const OpSpec &spec);

 protected:
  bool SetupImpl(std::vector<OutputDesc> &output_desc, const Workspace &ws) override;
  void RunImpl(Workspace &ws) override;

 private:
  // Fills samples_ (shapes, pointers, per-sample voxel sizes) from the workspace.
  void CollectSamples(const Workspace &ws);
  // Shape of output k of sample i, from the [sample][output][4] table.
  TensorShape<> ShapeOf(int i, int k) const;
  TensorListShape<> ListShape(int k) const;

  std::string name_;
  rust::Box<robocache::ffi::PointsOp> op_;
  rust::Vec<robocache::ffi::PointsOutDesc> outputs_;
  bool voxel_input_ = false;
  bool known_ = true;
  std::vector<robocache::ffi::PointsSampleIn> samples_;
  std::vector<int64_t> shapes_;
  USE_OPERATOR_MEMBERS();
};

}  // namespace dali

#endif  // ROBOCACHE_DALI_PLUGIN_POINTS_H_
