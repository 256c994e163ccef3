// Checkpoints: everything a training run needs to continue bit-identically after a stop or
// a crash, in one atomically written, versioned and checksummed file.
//
//   bnorm::save_checkpoint("run.ckpt", net, optimizer, schedule, batches);
//   ...                                            // a new process, fresh objects, any seeds
//   bnorm::load_checkpoint("run.ckpt", net, optimizer, schedule, batches);
//
// Objects, any number, in any order (the same order on loading):
//   Sequential<T>      every parameter and every buffer, through net.parameters() and
//                      net.buffers(): running statistics, num_batches_tracked, Dropout streams
//   SGD, Adam, AdamW, RMSprop
//                      every group's options, the step count, every state slot (momentum
//                      buffers, moments)
//   a scheduler        its progress (last_epoch, base and last learning rates, the plateau
//                      counters); its options must equal the saved ones
//   MiniBatches<T>     the epoch, the position within it, the order and the generator
//   Generator          its whole state (bnorm::default_generator() too)
// A type joins by defining `checkpoint_kind` and `visit_checkpoint(visitor)` (see the
// optimizers and schedulers), or an overload of bnorm::visit_checkpoint(visitor, object).
//
// Not saved: gradients (the next backward overwrites them) and the batch MiniBatches::next()
// filled last (call next() after loading, as after saving).
//
// load_checkpoint reads and checks the whole file first: a damaged file (truncated, flipped
// bits: the CRC-32C fails), another format version, another number, order or kind of
// objects, other shapes, parameter names, group sizes, batch size, data set size or
// scheduler options throw bnorm::Error naming the object and the field, and leave every
// object unchanged. Only then does it write the objects, which cannot fail.
//
// The byte format is in docs/model_format.md, section "Checkpoints".
#pragma once

#include "../core/error.hpp"
#include "../core/generator.hpp"
#include "../data/mini_batches.hpp"
#include "../model/sequential.hpp"
#include "atomic_file.hpp"
#include "crc32c.hpp"
#include "generator_bytes.hpp"
#include "little_endian.hpp"

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

namespace bnorm {

namespace detail {

inline constexpr std::string_view checkpoint_magic{"\x89"
                                                   "BNCKPT\n",
                                                   8};
inline constexpr std::uint32_t checkpoint_version = 1;

// The three passes over an object's state share one walk, visit_checkpoint(visitor):
// Write encodes, Check decodes and compares without writing to the object, Load decodes
// into the object. A walk names every field, so a mismatch names what differs.
//   constant(what, value)   must be equal in the file and the object (shapes, options)
//   number / integer / flag / word(what, field&)    state, restored on loading
//   index(what, field&, bound)  state in [0, bound)
//   counter(what, field&)   a count of events (steps, batches, epochs), in [0, 2^63 - 1)
//   finite_number / rate / fraction(what, field&)
//                           a number that is finite / finite and >= 0 / in [0, 1)
//   permutation(what, vector&)  a permutation of [0, size), or all 0 (never shuffled)
//   matrix(what, map)       a tensor of the object's scalar type, shape checked
//   generator(what, g)      a Generator's whole state
//   count(what, n)          a count that must agree, e.g. of parameter groups
class CheckpointWriter {
 public:
  explicit CheckpointWriter(ByteWriter& out) : out_(out) {}
  static constexpr bool loading = false;

  void constant(std::string_view, std::string_view text) {
    out_.u64(text.size());
    out_.raw(text);
  }
  void constant(std::string_view, double value) { out_.scalar(value); }
  void constant(std::string_view, long long value) { out_.i64(value); }
  void constant(std::string_view what, bool value) { flag(what, value); }
  void count(std::string_view, std::size_t n) { out_.u64(n); }

  void number(std::string_view, double& value) { out_.scalar(value); }
  template <std::integral I>
  void integer(std::string_view, I& value) {
    out_.i64(static_cast<std::int64_t>(value));
  }
  template <std::integral I>
  void index(std::string_view what, I& value, I) {
    integer(what, value);
  }
  void counter(std::string_view what, long long& value) { integer(what, value); }
  void finite_number(std::string_view what, double& value) { number(what, value); }
  void rate(std::string_view what, double& value) { number(what, value); }
  void fraction(std::string_view what, double& value) { number(what, value); }
  template <std::integral I>
  void permutation(std::string_view what, std::vector<I>& values) {
    for (I& value : values) integer(what, value);
  }
  void flag(std::string_view, bool value) { out_.boolean(value); }
  void flag(std::string_view what, char& value) { flag(what, value != 0); }
  void word(std::string_view, std::uint64_t& value) { out_.u64(value); }

  void generator(std::string_view, const Generator& generator) {
    write_generator_state(out_, generator.state());
  }

  template <class Derived>
  void matrix(std::string_view, Eigen::MatrixBase<Derived>& m) {
    out_.u64(static_cast<std::uint64_t>(m.rows()));
    out_.u64(static_cast<std::uint64_t>(m.cols()));
    out_.scalars(m.derived().data(), static_cast<std::size_t>(m.size()));
  }

 private:
  ByteWriter& out_;
};

template <bool Load>
class CheckpointReader {
 public:
  explicit CheckpointReader(ByteReader& in) : in_(in) {}
  static constexpr bool loading = Load;

  void constant(std::string_view what, std::string_view text) {
    const std::size_t size = in_.take_count(what, 1);
    std::string found(size, '\0');
    for (auto& c : found) c = static_cast<char>(in_.u8(what));
    if (found != text) mismatch(what, "'" + found + "'", "'" + std::string(text) + "'");
  }
  void constant(std::string_view what, double value) {
    const double found = in_.scalar<double>(what);
    if (!(found == value)) mismatch(what, found, value);
  }
  void constant(std::string_view what, long long value) {
    const long long found = in_.i64(what);
    if (found != value) mismatch(what, found, value);
  }
  void constant(std::string_view what, bool value) {
    const bool found = in_.boolean(what);
    if (found != value) mismatch(what, found, value);
  }
  void count(std::string_view what, std::size_t n) {
    const std::uint64_t found = in_.u64(what);
    if (found != n) mismatch(what, found, n);
  }

  void number(std::string_view what, double& value) { store(value, in_.scalar<double>(what)); }
  template <std::integral I>
  void integer(std::string_view what, I& value) {
    store(value, static_cast<I>(in_.i64(what)));
  }
  // An integer that must be in [0, bound).
  template <std::integral I>
  void index(std::string_view what, I& value, I bound) {
    store(value, static_cast<I>(read_index(what, static_cast<std::int64_t>(bound))));
  }
  void counter(std::string_view what, long long& value) { store(value, in_.counter(what)); }
  void finite_number(std::string_view what, double& value) {
    number_where(what, value, "a finite number", [](double x) { return std::isfinite(x); });
  }
  void rate(std::string_view what, double& value) {
    number_where(what, value, "finite and >= 0", [](double x) { return std::isfinite(x) && x >= 0; });
  }
  void fraction(std::string_view what, double& value) {
    number_where(what, value, "in [0, 1)", [](double x) { return x >= 0 && x < 1; });
  }
  // Each of [0, size) exactly once (an example drawn twice means another is never drawn), or
  // all 0: a MiniBatches' order before its first epoch.
  template <std::integral I>
  void permutation(std::string_view what, std::vector<I>& values) {
    const std::size_t start = in_.position();
    std::vector<I> found(values.size());
    for (I& value : found) value = static_cast<I>(read_index(what, static_cast<std::int64_t>(found.size())));
    if (std::any_of(found.begin(), found.end(), [](I value) { return value != 0; })) {
      std::vector<bool> seen(found.size());
      for (std::size_t k = 0; k < found.size(); ++k) {
        if (seen[static_cast<std::size_t>(found[k])])
          in_.fail_at(start + 8 * k, what, " holds example ", found[k],
                      " twice: it must be a permutation of [0, ", found.size(),
                      ") (or all 0, before the first epoch)");
        seen[static_cast<std::size_t>(found[k])] = true;
      }
    }
    if constexpr (Load) std::copy(found.begin(), found.end(), values.begin());
  }
  void flag(std::string_view what, bool& value) { store(value, in_.boolean(what)); }
  void flag(std::string_view what, char& value) {
    store(value, static_cast<char>(in_.boolean(what)));
  }
  void word(std::string_view what, std::uint64_t& value) { store(value, in_.u64(what)); }

  void generator(std::string_view, Generator& generator) {
    const Generator::State state = read_generator_state(in_);
    if constexpr (Load) generator.set_state(state);
  }

  template <class Derived>
  void matrix(std::string_view what, Eigen::MatrixBase<Derived>&& m) {
    matrix(what, m);
  }
  template <class Derived>
  void matrix(std::string_view what, Eigen::MatrixBase<Derived>& m) {
    const std::uint64_t rows = in_.u64(what), cols = in_.u64(what);
    if (rows != static_cast<std::uint64_t>(m.rows()) ||
        cols != static_cast<std::uint64_t>(m.cols()))
      in_.fail(what, " is ", rows, " x ", cols, " in the checkpoint but ", m.rows(), " x ",
               m.cols(), " here");
    using Scalar = typename Derived::Scalar;
    const auto count = static_cast<std::size_t>(m.size());
    if constexpr (Load)
      in_.scalars(m.derived().data(), count, what);
    else
      in_.skip(count * sizeof(Scalar), what);
  }

 private:
  template <class Field, class Value>
  void store(Field& field, const Value& value) {
    if constexpr (Load) field = value;
  }
  std::int64_t read_index(std::string_view what, std::int64_t bound) {
    const std::int64_t found = in_.i64(what);
    if (found < 0 || found >= bound)
      in_.fail(what, " is ", found, " in the checkpoint, outside [0, ", bound, ")");
    return found;
  }
  template <class Valid>
  void number_where(std::string_view what, double& value, std::string_view rule, Valid valid) {
    const std::size_t at = in_.position();
    const double found = in_.scalar<double>(what);
    if (!valid(found)) in_.fail_at(at, what, " is ", found, " in the checkpoint; it must be ", rule);
    store(value, found);
  }
  template <class Found, class Expected>
  [[noreturn]] void mismatch(std::string_view what, const Found& found, const Expected& here) {
    in_.fail(what, " is ", found, " in the checkpoint but ", here, " here");
  }

  ByteReader& in_;
};

}  // namespace detail

// ---- The objects a checkpoint holds ----------------------------------------------------------

template <class T>
std::string checkpoint_kind_of(const Sequential<T>&) {
  return std::string("Sequential<") + (sizeof(T) == 4 ? "float" : "double") + ">";
}
inline std::string checkpoint_kind_of(const Generator&) { return "Generator"; }
template <class Object>
requires requires { Object::checkpoint_kind; }
std::string checkpoint_kind_of(const Object&) { return std::string(Object::checkpoint_kind); }

template <class Visitor, class T>
void visit_checkpoint(Visitor& visit, Sequential<T>& net) {
  auto parameters = net.parameters();
  visit.count("the number of parameters", parameters.size());
  for (auto& parameter : parameters) {
    visit.constant("a parameter's name", std::string_view(parameter.name()));
    visit.matrix(parameter.name(), parameter.value());
  }
  auto buffers = net.buffers();
  visit.count("the number of buffers", buffers.size());
  for (auto& buffer : buffers) {
    const std::string& name = buffer.name();
    visit.constant("a buffer's name", std::string_view(name));
    visit.constant(name + " kind", static_cast<long long>(buffer.kind()));
    switch (buffer.kind()) {
      case BufferKind::values:
        visit.matrix(name, buffer.values());
        break;
      case BufferKind::counter:
        visit.counter(name, buffer.counter());
        break;
      case BufferKind::generator:
        visit.generator(name, buffer.generator());
        break;
    }
  }
}

template <class Visitor>
void visit_checkpoint(Visitor& visit, Generator& generator) {
  visit.generator("the generator", generator);
}

template <class Visitor, class Object>
requires requires(Visitor& visit, Object& object) { object.visit_checkpoint(visit); }
void visit_checkpoint(Visitor& visit, Object& object) { object.visit_checkpoint(visit); }

// ---- The file ------------------------------------------------------------------------------

namespace detail {

template <class Object>
void encode_checkpoint_object(ByteWriter& file, Object& object) {
  ByteWriter payload;
  CheckpointWriter writer(payload);
  visit_checkpoint(writer, object);
  const std::string kind = checkpoint_kind_of(object);
  file.u64(kind.size());
  file.raw(kind);
  file.u64(payload.size());
  file.raw(payload.bytes());
}

// The payload of each object, after the header, the count and the kinds are checked.
template <class... Objects>
std::vector<std::string_view> checkpoint_payloads(std::string_view bytes, const std::string& source,
                                                  const Objects&... objects) {
  const std::size_t minimum = checkpoint_magic.size() + 4 + 4 + 4;
  if (bytes.size() < minimum || bytes.substr(0, checkpoint_magic.size()) != checkpoint_magic)
    fail(source, ": not a bnorm checkpoint (", bytes.size() < minimum ? "too short" : "no magic",
         ")");
  const std::string_view body = bytes.substr(0, bytes.size() - 4);
  ByteReader tail(bytes.substr(bytes.size() - 4), source, bytes.size() - 4);
  const std::uint32_t stored = tail.u32("checksum");
  if (crc32c(body) != stored)
    fail(source, ": the CRC-32C checksum fails: the file is damaged (truncated or changed)");
  ByteReader in(body, source);
  in.skip(checkpoint_magic.size(), "magic");
  const std::uint32_t version = in.u32("version");
  if (version != checkpoint_version)
    in.fail("format version ", version, " is not supported (this bnorm reads version ",
            checkpoint_version, ")");
  const std::uint32_t count = in.u32("object count");
  if (count != sizeof...(Objects))
    in.fail("holds ", count, " objects, but ", sizeof...(Objects), " were given to load");
  std::vector<std::string_view> payloads;
  std::size_t index = 0;
  auto next = [&](const auto& object) {
    in.set_location("object " + std::to_string(index++));
    const std::size_t kind_size = in.take_count("kind", 1);
    std::string kind(kind_size, '\0');
    for (auto& c : kind) c = static_cast<char>(in.u8("kind"));
    const std::string expected = checkpoint_kind_of(object);
    if (kind != expected) in.fail("is a ", kind, " in the checkpoint but a ", expected, " here");
    const std::size_t size = in.take_count("payload size", 1);
    payloads.push_back(body.substr(in.position(), size));
    in.skip(size, "payload");
  };
  (next(objects), ...);
  in.set_location("");
  if (!in.at_end()) in.fail("unexpected bytes after the last object");
  return payloads;
}

// `payload` lies within `file`, whose offsets the messages give.
template <bool Load, class Object>
void read_checkpoint_object(std::string_view file, std::string_view payload,
                            const std::string& source, std::size_t index, Object& object) {
  ByteReader in(payload, source, static_cast<std::size_t>(payload.data() - file.data()));
  in.set_location("object " + std::to_string(index) + " (" + checkpoint_kind_of(object) + ")");
  CheckpointReader<Load> reader(in);
  visit_checkpoint(reader, object);
  if (!in.at_end()) in.fail(in.remaining(), " bytes of state left over");
}

// The bytes save_checkpoint writes.
template <class... Objects>
std::string encode_checkpoint(Objects&... objects) {
  ByteWriter file;
  file.raw(checkpoint_magic);
  file.u32(checkpoint_version);
  file.u32(static_cast<std::uint32_t>(sizeof...(Objects)));
  (encode_checkpoint_object(file, objects), ...);
  file.u32(crc32c(file.bytes()));
  return file.take();
}

// load_checkpoint on the bytes of a file; `source` names it in messages (the fuzzer's entry).
template <class... Objects>
void load_checkpoint_bytes(std::string_view bytes, const std::string& source, Objects&... objects) {
  const auto payloads = checkpoint_payloads(bytes, source, objects...);
  std::size_t index = 0;
  auto check = [&](auto& object) {
    read_checkpoint_object<false>(bytes, payloads[index], source, index, object);
    ++index;
  };
  (check(objects), ...);
  index = 0;
  auto load = [&](auto& object) {
    read_checkpoint_object<true>(bytes, payloads[index], source, index, object);
    ++index;
  };
  (load(objects), ...);
}

}  // namespace detail

// Writes the objects' state to `path` atomically (io/atomic_file.hpp): a kill at any moment
// leaves the previous checkpoint or the new one.
template <class... Objects>
void save_checkpoint(const std::filesystem::path& path, Objects&... objects) {
  write_file_atomically(path, detail::encode_checkpoint(objects...));
}

// Restores the objects saved by save_checkpoint(path, ...) with the same kinds in the same
// order; all or nothing (see the top of this header).
template <class... Objects>
void load_checkpoint(const std::filesystem::path& path, Objects&... objects) {
  const std::string source = "checkpoint '" + path.string() + "'";
  std::ifstream file(path, std::ios::binary);
  if (!file) detail::fail(source, ": cannot be opened for reading (missing?)");
  const std::string bytes{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
  if (file.bad()) detail::fail(source, ": reading failed");
  detail::load_checkpoint_bytes(bytes, source, objects...);
}

}  // namespace bnorm
