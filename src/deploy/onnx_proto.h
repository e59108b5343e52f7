#pragma once
// The few pieces of the protobuf wire format and of onnx.proto (ONNX 1.12, proto2 syntax) that an
// ONNX model writer needs: messages are built bottom-up as byte strings. Field numbers are those of
// onnx/onnx.proto; repeated scalars are written unpacked, as proto2 declares them.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rla::deploy::onnx {

/// One protobuf message being written: fields are appended in call order.
class Message {
 public:
  Message& varint(int field, uint64_t v) {
    key(field, 0);
    put_varint(v);
    return *this;
  }
  Message& int64(int field, int64_t v) { return varint(field, static_cast<uint64_t>(v)); }
  Message& float32(int field, float v) {
    key(field, 5);
    char b[4];
    std::memcpy(b, &v, 4);  // little-endian on every platform LibTorch supports
    bytes_.append(b, 4);
    return *this;
  }
  Message& bytes(int field, std::string_view s) {
    key(field, 2);
    put_varint(s.size());
    bytes_.append(s.data(), s.size());
    return *this;
  }
  Message& message(int field, const Message& m) { return bytes(field, m.bytes_); }
  /// Room for `n` more bytes: a message holding a model's weights grows once instead of doubling
  /// (each doubling copies and page-faults everything written so far).
  Message& reserve_more(size_t n) {
    bytes_.reserve(bytes_.size() + n);
    return *this;
  }
  /// The key and length of a length-delimited field of `payload` bytes, whose contents the next
  /// calls append: a large sub-message written in place, without a copy of its own.
  Message& begin(int field, size_t payload) {
    key(field, 2);
    put_varint(payload);
    return *this;
  }
  /// Bytes appended as they are (inside a field begun with begin()).
  Message& raw(std::string_view s) {
    bytes_.append(s.data(), s.size());
    return *this;
  }
  size_t size() const { return bytes_.size(); }
  const std::string& str() const { return bytes_; }
  std::string release() && { return std::move(bytes_); }

 private:
  void key(int field, int wire_type) { put_varint((static_cast<uint64_t>(field) << 3) | wire_type); }
  void put_varint(uint64_t v) {
    while (v >= 0x80) {
      bytes_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    bytes_.push_back(static_cast<char>(v));
  }
  std::string bytes_;
};

/// The bytes of v as a varint.
inline size_t varint_size(uint64_t v) {
  size_t n = 1;
  for (; v >= 0x80; v >>= 7) ++n;
  return n;
}

/// The bytes of a length-delimited field holding `payload` bytes.
inline size_t field_size(int field, size_t payload) {
  return varint_size((static_cast<uint64_t>(field) << 3) | 2) + varint_size(payload) + payload;
}

// TensorProto.DataType
enum DataType : int { kFloat = 1, kInt64 = 7 };

// AttributeProto: name = 1, f = 2, i = 3, t = 5, floats = 7, ints = 8, type = 20
// (AttributeType FLOAT = 1, INT = 2, TENSOR = 4, INTS = 7).
inline Message attribute_int(std::string_view name, int64_t v) {
  return Message().bytes(1, name).int64(3, v).varint(20, 2);
}
inline Message attribute_float(std::string_view name, float v) {
  return Message().bytes(1, name).float32(2, v).varint(20, 1);
}
inline Message attribute_ints(std::string_view name, const std::vector<int64_t>& v) {
  Message m;
  m.bytes(1, name);
  for (auto x : v) m.int64(8, x);
  return m.varint(20, 7);
}
inline Message attribute_tensor(std::string_view name, const Message& tensor) {
  return Message().bytes(1, name).message(5, tensor).varint(20, 4);
}

/// TensorProto: dims = 1, data_type = 2, name = 8, raw_data = 9 (little-endian values). Its fields
/// but raw_data, which append_tensor writes after them.
inline Message tensor_head(std::string_view name, DataType type, const std::vector<int64_t>& dims) {
  Message m;
  for (auto d : dims) m.int64(1, d);
  m.varint(2, type);
  if (!name.empty()) m.bytes(8, name);
  return m;
}

/// The bytes of a TensorProto made of `head` (tensor_head) and `raw` data.
inline size_t tensor_size(const Message& head, std::string_view raw) {
  return head.size() + field_size(9, raw.size());
}

/// Appends a TensorProto as field `field` of `parent`: the values are copied once, into it.
inline void append_tensor(Message& parent, int field, const Message& head, std::string_view raw) {
  parent.begin(field, tensor_size(head, raw)).raw(head.str()).begin(9, raw.size()).raw(raw);
}

/// One dimension of a shape: a fixed size (>= 0) or a named free one.
struct Dim {
  int64_t value = -1;
  std::string param;
};

/// ValueInfoProto (name = 1, type = 2) of a float tensor: TypeProto.tensor_type = 1 holds
/// elem_type = 1 and shape = 2; TensorShapeProto.dim = 1 holds dim_value = 1 or dim_param = 2.
inline Message float_value_info(std::string_view name, const std::vector<Dim>& dims) {
  Message shape;
  for (const auto& d : dims)
    shape.message(1, d.param.empty() ? Message().int64(1, d.value) : Message().bytes(2, d.param));
  const auto tensor_type = Message().varint(1, kFloat).message(2, shape);
  return Message().bytes(1, name).message(2, Message().message(1, tensor_type));
}

/// NodeProto: input = 1, output = 2, name = 3, op_type = 4, attribute = 5.
inline Message node(std::string_view op_type, const std::vector<std::string>& inputs,
                    const std::vector<std::string>& outputs, std::string_view name,
                    const std::vector<Message>& attributes) {
  Message m;
  for (const auto& i : inputs) m.bytes(1, i);
  for (const auto& o : outputs) m.bytes(2, o);
  m.bytes(3, name).bytes(4, op_type);
  for (const auto& a : attributes) m.message(5, a);
  return m;
}

}  // namespace rla::deploy::onnx
