// robocache_common.h: what every RoboCache DALI operator shares: the bridge header, DALI type
// mapping, and the one place where a Rust error becomes a DALI error.
#ifndef ROBOCACHE_DALI_PLUGIN_COMMON_H_
#define ROBOCACHE_DALI_PLUGIN_COMMON_H_

#include <string>

#include "dali/core/error_handling.h"
#include "dali/pipeline/data/types.h"
#include "robocache/src/ffi.rs.h"
#include "rust/cxx.h"

namespace robocache_plugin {

// Maps a DALI element type to the bridge's ElemType.
inline robocache::ffi::ElemType ToElemType(dali::DALIDataType t) {
  using robocache::ffi::ElemType;
  switch (t) {
    case DALI_FLOAT: return ElemType::Float32;
    case DALI_FLOAT16: return ElemType::Float16;
    case DALI_FLOAT64: return ElemType::Float64;
    case DALI_INT64: return ElemType::Int64;
    case DALI_INT32: return ElemType::Int32;
    case DALI_UINT16: return ElemType::UInt16;
    case DALI_UINT8: return ElemType::UInt8;
    default: return ElemType::Other;
  }
}

}  // namespace robocache_plugin

// Runs a bridge call; a Rust error (already prefixed with the operator name, e.g.
// "robocache.resample: sample 3: ...") becomes a DALI error, which Python sees as RuntimeError.
#define ROBOCACHE_CALL(...)                  \
  do {                                       \
    try {                                    \
      __VA_ARGS__;                           \
    } catch (const rust::Error &rc_err__) {  \
      DALI_FAIL(std::string(rc_err__.what())); \
    }                                        \
  } while (0)

#endif  // ROBOCACHE_DALI_PLUGIN_COMMON_H_
