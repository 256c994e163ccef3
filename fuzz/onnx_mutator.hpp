// A structure-aware mutator for the ONNX fuzz target (fuzz_readers.cpp's LLVMFuzzerCustomMutator
// calls it for fuzz_onnx): the input is parsed as an onnx::ModelProto, one to four fields
// anywhere in the model are changed through protobuf's own reflection, and the model is
// serialized back. Byte-wise mutation of a protobuf almost always breaks its framing, so the
// importer behind the parser is rarely reached; these mutations keep the file a model and
// change what the importer reads: a node's inputs rewired to another name in the model or
// to "", an attribute's value or type, a tensor's dimensions or data, an element of a
// repeated field removed, duplicated or swapped, a message cleared or copied from another of
// its type. Inputs that do not parse, and one mutation in eight, are mutated byte-wise by
// libFuzzer, so the parser is fuzzed too. (Debian has no libprotobuf-mutator.)
#pragma once

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size, std::size_t max_size);

namespace bnorm_fuzz::onnx_mutator {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

class ModelMutator {
 public:
  explicit ModelMutator(unsigned int seed) : random_(seed) {}

  void mutate(onnx::ModelProto& model) {
    const int rounds = 1 + int(below(4));
    for (int round = 0; round < rounds; ++round) {
      // Collected anew each round: the last one may have cleared or copied sub-messages.
      messages_.clear();
      names_.clear();
      collect(model);
      mutate_field(*messages_[below(messages_.size())]);
    }
  }

 private:
  std::size_t below(std::size_t n) { return n == 0 ? 0 : std::size_t(random_() % n); }
  bool one_in(std::size_t n) { return below(n) == 0; }

  // Every message of the tree, and every string in it (the names a node input may be
  // rewired to).
  void collect(Message& message) {
    messages_.push_back(&message);
    const Reflection& reflection = *message.GetReflection();
    std::vector<const FieldDescriptor*> fields;
    reflection.ListFields(message, &fields);
    for (const FieldDescriptor* field : fields) {
      if (field->type() == FieldDescriptor::TYPE_STRING) {
        if (field->is_repeated()) {
          for (int i = 0; i < reflection.FieldSize(message, field); ++i)
            names_.push_back(reflection.GetRepeatedString(message, field, i));
        } else {
          names_.push_back(reflection.GetString(message, field));
        }
      }
      if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) continue;
      if (field->is_repeated()) {
        for (int i = 0; i < reflection.FieldSize(message, field); ++i)
          collect(*reflection.MutableRepeatedMessage(&message, field, i));
      } else {
        collect(*reflection.MutableMessage(&message, field));
      }
    }
  }

  template <class Integer>
  Integer interesting_integer(Integer current) {
    using Unsigned = std::make_unsigned_t<Integer>;  // wraps where the signed type would overflow
    const Unsigned bits = static_cast<Unsigned>(current);
    const Integer choices[] = {0, 1, 2, 3, static_cast<Integer>(-1), static_cast<Integer>(Unsigned(bits + 1u)),
                               static_cast<Integer>(Unsigned(bits - 1u)), static_cast<Integer>(Unsigned(bits * 2u)),
                               std::numeric_limits<Integer>::max(), std::numeric_limits<Integer>::min(),
                               static_cast<Integer>(1) << (sizeof(Integer) * 8 - 2),
                               static_cast<Integer>(random_())};
    return choices[below(std::size(choices))];
  }
  template <class Real>
  Real interesting_real(Real current) {
    const Real choices[] = {0, -Real(0), 1, -1, Real(0.5), Real(1e-5), Real(0.9),
                            std::numeric_limits<Real>::quiet_NaN(),
                            std::numeric_limits<Real>::infinity(),
                            -std::numeric_limits<Real>::infinity(),
                            std::numeric_limits<Real>::denorm_min(), std::numeric_limits<Real>::max(),
                            current * 2, -current, Real(double(random_() % 2001) / 1000 - 1)};
    return choices[below(std::size(choices))];
  }
  std::string interesting_string(const std::string& current, bool bytes) {
    if (!bytes && !names_.empty() && !one_in(4)) return one_in(6) ? std::string() : names_[below(names_.size())];
    // Byte-wise, within a bound: raw tensor data grows or shrinks, a name changes.
    std::string text = current;
    const std::size_t bound = std::max<std::size_t>(2 * text.size(), 64);
    text.resize(bound);
    const std::size_t size = LLVMFuzzerMutate(reinterpret_cast<std::uint8_t*>(text.data()),
                                              current.size(), bound);
    text.resize(size);
    return text;
  }

  // Sets a singular field (repeated: element `index`) of a scalar type to a new value.
  void mutate_scalar(Message& message, const FieldDescriptor* field, int index) {
    const Reflection& r = *message.GetReflection();
    const bool repeated = field->is_repeated();
#define BNORM_MUTATE_SCALAR(Type, Name, choose)                                          \
  {                                                                                      \
    const Type now = repeated ? r.GetRepeated##Name(message, field, index)               \
                              : r.Get##Name(message, field);                             \
    const Type next = choose(now);                                                       \
    repeated ? r.SetRepeated##Name(&message, field, index, next)                         \
             : r.Set##Name(&message, field, next);                                       \
    return;                                                                              \
  }
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32: BNORM_MUTATE_SCALAR(std::int32_t, Int32, interesting_integer)
      case FieldDescriptor::CPPTYPE_INT64: BNORM_MUTATE_SCALAR(std::int64_t, Int64, interesting_integer)
      case FieldDescriptor::CPPTYPE_UINT32: BNORM_MUTATE_SCALAR(std::uint32_t, UInt32, interesting_integer)
      case FieldDescriptor::CPPTYPE_UINT64: BNORM_MUTATE_SCALAR(std::uint64_t, UInt64, interesting_integer)
      case FieldDescriptor::CPPTYPE_FLOAT: BNORM_MUTATE_SCALAR(float, Float, interesting_real)
      case FieldDescriptor::CPPTYPE_DOUBLE: BNORM_MUTATE_SCALAR(double, Double, interesting_real)
      case FieldDescriptor::CPPTYPE_BOOL: BNORM_MUTATE_SCALAR(bool, Bool, !)
      case FieldDescriptor::CPPTYPE_ENUM: {
        // A value the enum names, mostly; sometimes a number it does not.
        const auto* type = field->enum_type();
        const int value = one_in(8) ? int(random_() % 64) : type->value(int(below(std::size_t(type->value_count()))))->number();
        repeated ? r.SetRepeatedEnumValue(&message, field, index, value)
                 : r.SetEnumValue(&message, field, value);
        return;
      }
      case FieldDescriptor::CPPTYPE_STRING: {
        const bool bytes = field->type() == FieldDescriptor::TYPE_BYTES;
        const std::string now = repeated ? r.GetRepeatedString(message, field, index) : r.GetString(message, field);
        const std::string next = interesting_string(now, bytes);
        repeated ? r.SetRepeatedString(&message, field, index, next) : r.SetString(&message, field, next);
        return;
      }
      case FieldDescriptor::CPPTYPE_MESSAGE: return;
    }
#undef BNORM_MUTATE_SCALAR
  }

  // A copy of a message of this type in the model, or nullptr.
  std::unique_ptr<Message> copy_of_one(const google::protobuf::Descriptor* type) {
    std::vector<const Message*> candidates;
    for (const Message* other : messages_)
      if (other->GetDescriptor() == type) candidates.push_back(other);
    if (candidates.empty()) return nullptr;
    const Message& chosen = *candidates[below(candidates.size())];
    std::unique_ptr<Message> copy(chosen.New());
    copy->CopyFrom(chosen);
    return copy;
  }

  void add_element(Message& message, const FieldDescriptor* field) {
    const Reflection& r = *message.GetReflection();
    const int size = r.FieldSize(message, field);
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      Message* added = r.AddMessage(&message, field);
      if (size > 0) added->CopyFrom(r.GetRepeatedMessage(message, field, int(below(std::size_t(size)))));
      return;
    }
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32: r.AddInt32(&message, field, 0); break;
      case FieldDescriptor::CPPTYPE_INT64: r.AddInt64(&message, field, 0); break;
      case FieldDescriptor::CPPTYPE_UINT32: r.AddUInt32(&message, field, 0); break;
      case FieldDescriptor::CPPTYPE_UINT64: r.AddUInt64(&message, field, 0); break;
      case FieldDescriptor::CPPTYPE_FLOAT: r.AddFloat(&message, field, 0); break;
      case FieldDescriptor::CPPTYPE_DOUBLE: r.AddDouble(&message, field, 0); break;
      case FieldDescriptor::CPPTYPE_BOOL: r.AddBool(&message, field, false); break;
      case FieldDescriptor::CPPTYPE_ENUM: r.AddEnumValue(&message, field, 0); break;
      case FieldDescriptor::CPPTYPE_STRING: r.AddString(&message, field, std::string()); break;
      case FieldDescriptor::CPPTYPE_MESSAGE: break;
    }
    mutate_scalar(message, field, size);
  }

  void mutate_field(Message& message) {
    const auto* descriptor = message.GetDescriptor();
    if (descriptor->field_count() == 0) return;
    const FieldDescriptor* field = descriptor->field(int(below(std::size_t(descriptor->field_count()))));
    const Reflection& r = *message.GetReflection();
    const bool is_message = field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE;
    if (!field->is_repeated()) {
      if (!is_message) return mutate_scalar(message, field, 0);
      // A sub-message: cleared, copied from another of its type, or made present. The copy
      // is taken first: making a oneof's member present frees the member it replaces.
      if (r.HasField(message, field) && one_in(2)) return r.ClearField(&message, field);
      const std::unique_ptr<Message> copy = copy_of_one(field->message_type());
      Message* sub = r.MutableMessage(&message, field);
      if (copy) sub->CopyFrom(*copy);
      return;
    }
    const int size = r.FieldSize(message, field);
    switch (below(size == 0 ? 1 : 5)) {
      case 0: return add_element(message, field);
      case 1: {  // remove one
        r.SwapElements(&message, field, int(below(std::size_t(size))), size - 1);
        return r.RemoveLast(&message, field);
      }
      case 2: return r.SwapElements(&message, field, int(below(std::size_t(size))), int(below(std::size_t(size))));
      case 3: return is_message ? r.ClearField(&message, field)
                                : mutate_scalar(message, field, int(below(std::size_t(size))));
      default:
        if (!is_message) return mutate_scalar(message, field, int(below(std::size_t(size))));
        return r.ClearField(&message, field);
    }
  }

  std::mt19937 random_;
  std::vector<Message*> messages_;
  std::vector<std::string> names_;
};

// Mutates the `size` bytes at `data` in place (up to `max_size`); returns the new size.
inline std::size_t mutate(std::uint8_t* data, std::size_t size, std::size_t max_size, unsigned int seed) {
  onnx::ModelProto model;
  if (seed % 8 == 0 || !model.ParseFromArray(data, int(size))) return LLVMFuzzerMutate(data, size, max_size);
  ModelMutator(seed).mutate(model);
  std::string bytes;
  if (!model.SerializeToString(&bytes) || bytes.size() > max_size || bytes.empty())
    return LLVMFuzzerMutate(data, size, max_size);
  std::memcpy(data, bytes.data(), bytes.size());
  return bytes.size();
}

}  // namespace bnorm_fuzz::onnx_mutator
