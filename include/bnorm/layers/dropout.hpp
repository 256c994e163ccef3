// Inverted dropout: in training each element is kept with probability 1 - p and scaled by
// 1 / (1 - p), so eval mode is the identity. Implements the layer contract of
// core/layer.hpp.
#pragma once

#include "../core/buffer.hpp"
#include "../core/generator.hpp"
#include "../core/kernels.hpp"
#include "../core/onnx_node.hpp"
#include "elementwise.hpp"

#include <sstream>
#include <vector>

namespace bnorm {

template <class T>
class Dropout : public detail::Elementwise<Dropout<T>, T> {
 public:
  // Its kind (core/layer_ref.hpp): tools find a subclass as a Dropout.
  using layer_kind = Dropout;
  static constexpr bool keeps_input = false;

  // Seeded from bnorm::default_generator(), so manual_seed() makes runs repeatable.
  explicit Dropout(double p) : Dropout(p, default_generator().next()) {}

  Dropout(double p, std::uint64_t seed) : generator_(seed) { set_p(p); }

  std::string name() const {
    std::ostringstream text;
    text << "Dropout(" << p_ << ")";
    return text.str();
  }
  double p() const { return p_; }
  // Changes the drop probability from the next training forward on (as assigning PyTorch's
  // Dropout.p); the mask stream goes on where it is.
  void set_p(double p) {
    detail::require(p >= 0.0 && p <= 1.0, "Dropout: p must be in [0, 1], got ", p);
    p_ = p;
  }
  // The mask stream. Copy it to replay a mask (as the gradient check does).
  Generator& generator() { return generator_; }
  const Generator& generator() const { return generator_; }

  // ONNX (core/onnx_node.hpp): Dropout with ratio p, the identity in inference, kept so that
  // the file loads back as the same network; the random stream is not exported.
  std::vector<OnnxNode> onnx_nodes() const {
    return {{.op = "Dropout", .inputs = {{".ratio", {}, {p_}, true}}}};
  }

  // The mask stream, so that a resumed run draws the masks it would have drawn.
  std::vector<Buffer<T>> buffers() { return {Buffer<T>("generator", generator_)}; }

  void apply(const Eigen::Ref<const Matrix<T>>& x, Matrix<T>& y, Mode mode) {
    if (mode == Mode::eval) {
      apply_eval(x, y);
      return;
    }
    // p = 1 drops everything (PyTorch returns zeros rather than 0 * inf).
    const T keep_scale = p_ < 1.0 ? static_cast<T>(1.0 / (1.0 - p_)) : T(0);
    mask_.resize(x.rows(), x.cols());
    for (Index i = 0; i < mask_.size(); ++i)
      mask_.data()[i] = generator_.uniform() < p_ ? T(0) : keep_scale;
    detail::for_each_contiguous_run<T>(x, [&](const T* in, Index at, Index n) {
      detail::kernels::multiply(in, mask_.data() + at, n, y.data() + at);
    });
  }
  // The const inference path of core/layer.hpp: the identity, as in eval mode.
  void infer(const Eigen::Ref<const Matrix<T>>& x, Matrix<T>& y, InferenceScratch<T>&) const {
    detail::check_shape(*this, "input", -1, -1, x.rows(), x.cols());
    apply_eval(x, y);
  }

  // An eval forward kept for backward was the identity, and so is its derivative.
  void apply_backward(const Eigen::Ref<const Matrix<T>>& dy, Matrix<T>& dx) {
    if (this->saved_mode() == Mode::eval) dx = dy;
    else
      detail::for_each_contiguous_run<T>(dy, [&](const T* gradient, Index at, Index n) {
        detail::kernels::multiply(gradient, mask_.data() + at, n, dx.data() + at);
      });
  }

 private:
  static void apply_eval(const Eigen::Ref<const Matrix<T>>& x, Matrix<T>& y) { y = x; }

  double p_;
  Generator generator_;
  Matrix<T> mask_;
};

}  // namespace bnorm
