#ifndef TLSD_COMMON_WIRE_BYTE_IO_H_
#define TLSD_COMMON_WIRE_BYTE_IO_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace tlsd {

// ByteReader is a bounds-checked big-endian cursor over untrusted bytes
// (BoringSSL's CBS). Every Read* returns false and consumes nothing when the
// input is too short; callers turn false into one InvalidArgument status.
class ByteReader {
 public:
  explicit ByteReader(absl::Span<const uint8_t> in) : in_(in) {}

  bool ReadU8(uint8_t* out);
  bool ReadU16(uint16_t* out);
  bool ReadU32(uint32_t* out);
  bool ReadU64(uint64_t* out);
  bool ReadBytes(size_t len, absl::Span<const uint8_t>* out);
  // Length-prefixed byte strings; the view points into the input.
  bool ReadU8Prefixed(absl::string_view* out);
  bool ReadU16Prefixed(absl::string_view* out);

  size_t remaining() const { return in_.size(); }
  bool empty() const { return in_.empty(); }

 private:
  absl::Span<const uint8_t> in_;
};

// ByteWriter appends big-endian fields. Writing a string longer than its
// prefix can express is a caller bug (encoders validate first): TLSD_CHECK.
class ByteWriter {
 public:
  void WriteU8(uint8_t v);
  void WriteU16(uint16_t v);
  void WriteU32(uint32_t v);
  void WriteU64(uint64_t v);
  void WriteBytes(absl::Span<const uint8_t> bytes);
  void WriteU8Prefixed(absl::string_view s);
  void WriteU16Prefixed(absl::string_view s);

  const std::vector<uint8_t>& bytes() const { return out_; }
  std::vector<uint8_t> Take() { return std::move(out_); }

 private:
  std::vector<uint8_t> out_;
};

}  // namespace tlsd

#endif  // TLSD_COMMON_WIRE_BYTE_IO_H_
