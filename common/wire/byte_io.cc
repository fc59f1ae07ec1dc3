#include "common/wire/byte_io.h"

#include "common/base/logging.h"

namespace tlsd {
namespace {

template <typename T>
bool ReadBigEndian(absl::Span<const uint8_t>& in, T* out) {
  if (in.size() < sizeof(T)) return false;
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v = static_cast<T>((v << 8) | in[i]);
  *out = v;
  in.remove_prefix(sizeof(T));
  return true;
}

template <typename T>
void WriteBigEndian(std::vector<uint8_t>& out, T v) {
  for (size_t i = sizeof(T); i > 0; --i) {
    out.push_back(static_cast<uint8_t>(v >> (8 * (i - 1))));
  }
}

}  // namespace

bool ByteReader::ReadU8(uint8_t* out) { return ReadBigEndian(in_, out); }
bool ByteReader::ReadU16(uint16_t* out) { return ReadBigEndian(in_, out); }
bool ByteReader::ReadU32(uint32_t* out) { return ReadBigEndian(in_, out); }
bool ByteReader::ReadU64(uint64_t* out) { return ReadBigEndian(in_, out); }

bool ByteReader::ReadBytes(size_t len, absl::Span<const uint8_t>* out) {
  if (in_.size() < len) return false;
  *out = in_.subspan(0, len);
  in_.remove_prefix(len);
  return true;
}

bool ByteReader::ReadU8Prefixed(absl::string_view* out) {
  absl::Span<const uint8_t> saved = in_;
  uint8_t len;
  absl::Span<const uint8_t> bytes;
  if (!ReadU8(&len) || !ReadBytes(len, &bytes)) {
    in_ = saved;
    return false;
  }
  *out = absl::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return true;
}

bool ByteReader::ReadU16Prefixed(absl::string_view* out) {
  absl::Span<const uint8_t> saved = in_;
  uint16_t len;
  absl::Span<const uint8_t> bytes;
  if (!ReadU16(&len) || !ReadBytes(len, &bytes)) {
    in_ = saved;
    return false;
  }
  *out = absl::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return true;
}

void ByteWriter::WriteU8(uint8_t v) { out_.push_back(v); }
void ByteWriter::WriteU16(uint16_t v) { WriteBigEndian(out_, v); }
void ByteWriter::WriteU32(uint32_t v) { WriteBigEndian(out_, v); }
void ByteWriter::WriteU64(uint64_t v) { WriteBigEndian(out_, v); }
void ByteWriter::WriteBytes(absl::Span<const uint8_t> bytes) {
  out_.insert(out_.end(), bytes.begin(), bytes.end());
}
void ByteWriter::WriteU8Prefixed(absl::string_view s) {
  TLSD_CHECK(s.size() <= 0xff);  // encoders validate lengths before writing
  WriteU8(static_cast<uint8_t>(s.size()));
  out_.insert(out_.end(), s.begin(), s.end());
}
void ByteWriter::WriteU16Prefixed(absl::string_view s) {
  TLSD_CHECK(s.size() <= 0xffff);  // encoders validate lengths before writing
  WriteU16(static_cast<uint16_t>(s.size()));
  out_.insert(out_.end(), s.begin(), s.end());
}

}  // namespace tlsd
