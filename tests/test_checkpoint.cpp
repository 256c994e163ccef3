// Checkpoints (io/checkpoint.hpp): a run stopped at any step and resumed from its checkpoint
// in fresh objects, built from other seeds, continues bit-identically; so does a run whose
// process is killed with SIGKILL at random moments. Damaged files and mismatched objects
// throw bnorm::Error and change nothing.
#include <bnorm/bnorm.hpp>
#include <bnorm/io/checkpoint.hpp>

#include <doctest/doctest.h>

#include "support/errors.hpp"

#include <csignal>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

using namespace bnorm;

namespace {

namespace fs = std::filesystem;

// A folder of its own for each test, removed afterwards.
struct TemporaryFolder {
  TemporaryFolder() {
    path = fs::temp_directory_path() /
           ("bnorm_test_checkpoint_" + std::to_string(::getpid()) + "_" + std::to_string(next()));
    fs::create_directories(path);
  }
  ~TemporaryFolder() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  static int next() {
    static int count = 0;
    return count++;
  }
  fs::path path;
};

// 37 examples of 6 features, 3 classes: batches of 8 leave a partial batch of 5.
const Dataset<double>& dataset() {
  static const Dataset<double> data = [] {
    Generator generator(99);
    Dataset<double> d;
    d.inputs = Matrix<double>(6, 37);
    d.labels = Labels(37);
    for (Index j = 0; j < 37; ++j) {
      for (Index i = 0; i < 6; ++i) d.inputs(i, j) = generator.normal();
      d.labels(j) = static_cast<int>(generator.below(3));
    }
    return d;
  }();
  return data;
}

// A whole training run: every object the checkpoint holds, built from `seed`.
template <template <class> class Optimizer, class Schedule>
struct Run {
  Run(const Run&) = delete;  // the schedule refers to the optimizer
  explicit Run(std::uint64_t seed, Index hidden = 10, Index batch_size = 8)
      : net(make_net(seed, hidden)),
        optimizer(split_weight_decay(net.parameters()), options()),
        schedule(make_schedule(optimizer)),
        batches(dataset(), batch_size, seed) {
    default_generator().seed_with(seed + 1);
  }

  static Sequential<double> make_net(std::uint64_t seed, Index hidden) {
    manual_seed(seed);
    return Sequential<double>{Dense<double>(6, hidden, Bias::none), BatchNorm<double>(hidden),
                              ReLU<double>(), Dropout<double>(0.2), Dense<double>(hidden, 3)};
  }
  static auto options() {
    using Options = std::remove_cvref_t<decltype(std::declval<Optimizer<double>&>().options())>;
    Options o;
    o.lr = 0.05;
    o.weight_decay = 1e-3;
    if constexpr (requires { o.momentum; }) o.momentum = 0.9;
    return o;
  }
  static Schedule make_schedule(Optimizer<double>& optimizer) {
    if constexpr (std::is_same_v<Schedule, OneCycleLR>)
      return OneCycleLR(optimizer, {.max_lr = 0.2, .total_steps = 60});
    else if constexpr (std::is_same_v<Schedule, CosineAnnealingLR>)
      return CosineAnnealingLR(optimizer, {.t_max = 13, .eta_min = 1e-3});
    else
      return StepLR(optimizer, {.step_size = 7, .gamma = 0.5});
  }

  // One step: the next batch (a new epoch when one ends), noise drawn from the default
  // generator (so that it matters), forward, backward, clip, step, schedule.
  void step() {
    if (batches.epoch() == 0 || !batches.next()) {
      batches.start_epoch();
      batches.next();
    }
    input = batches.inputs();
    for (Index k = 0; k < input.size(); ++k) input(k) += 0.01 * default_generator().normal();
    losses.push_back(loss.forward(net.forward(input, Mode::train), batches.labels()));
    net.backward(loss.backward());
    clip_grad_norm(net.parameters(), 5.0);
    optimizer.step();
    schedule.step();
  }
  void train_until(long long steps) {
    while (optimizer.step_count() < steps) step();
  }

  void save(const fs::path& path) {
    save_checkpoint(path, net, optimizer, schedule, batches, default_generator());
  }
  void load(const fs::path& path) {
    load_checkpoint(path, net, optimizer, schedule, batches, default_generator());
  }

  Sequential<double> net;
  Optimizer<double> optimizer;
  Schedule schedule;
  MiniBatches<double> batches;
  SoftmaxCrossEntropy<double> loss;
  Matrix<double> input;
  std::vector<double> losses;
};

// Every parameter, running statistic, counter and Dropout stream, as raw bytes.
std::string state_of(Sequential<double>& net) {
  ByteWriter out;
  detail::CheckpointWriter writer(out);
  visit_checkpoint(writer, net);
  return out.take();
}

template <class Object>
std::string state_of_object(Object& object) {
  ByteWriter out;
  detail::CheckpointWriter writer(out);
  visit_checkpoint(writer, object);
  return out.take();
}

constexpr long long total_steps = 40;  // 5 batches an epoch: 8 epochs

template <template <class> class Optimizer, class Schedule>
void check_resume_at(long long stop) {
  CAPTURE(stop);
  TemporaryFolder folder;
  const fs::path file = folder.path / "run.ckpt";
  Run<Optimizer, Schedule> straight(1);
  straight.train_until(total_steps);

  Run<Optimizer, Schedule> first(1);
  first.train_until(stop);
  first.save(file);
  Run<Optimizer, Schedule> second(777);  // other weights, order, Dropout streams, noise
  second.load(file);
  CHECK(second.batches.epoch() == first.batches.epoch());
  CHECK(second.batches.position() == first.batches.position());
  second.train_until(total_steps);

  CHECK(state_of(second.net) == state_of(straight.net));
  CHECK(state_of_object(second.optimizer) == state_of_object(straight.optimizer));
  CHECK(state_of_object(second.schedule) == state_of_object(straight.schedule));
  CHECK(second.optimizer.lr() == straight.optimizer.lr());
  const std::vector<double> tail(straight.losses.begin() + stop, straight.losses.end());
  CHECK(second.losses == tail);  // bit-identical, not approximately equal
}

}  // namespace

TEST_CASE("Resuming mid-epoch, at an epoch's end and at the start is bit-identical") {
  for (const long long stop : {0LL, 3LL, 5LL, 12LL, 15LL, 39LL}) {
    check_resume_at<SGD, OneCycleLR>(stop);
    check_resume_at<Adam, CosineAnnealingLR>(stop);
  }
  check_resume_at<AdamW, StepLR>(17);
  check_resume_at<RMSprop, StepLR>(20);
}

TEST_CASE("A run killed with SIGKILL at random moments resumes bit-identically") {
  constexpr long long steps = 400;
  Run<SGD, StepLR> straight(5);
  straight.train_until(steps);
  const std::string expected = state_of(straight.net);

  std::mt19937 random(2024);  // the kill delays: any value must pass
  std::uniform_int_distribution<int> delay_us(0, 40000);
  int killed_mid_run = 0;
  for (int attempt = 0; attempt < 8; ++attempt) {
    TemporaryFolder folder;
    const fs::path file = folder.path / "run.ckpt";
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {  // trains from scratch, checkpointing every 3 steps, until killed
      try {
        Run<SGD, StepLR> run(5);
        while (run.optimizer.step_count() < steps) {
          run.step();
          if (run.optimizer.step_count() % 3 == 0) run.save(file);
        }
      } catch (...) {
        ::_exit(1);
      }
      ::_exit(0);
    }
    ::usleep(static_cast<useconds_t>(delay_us(random)));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    CHECK((WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0)));

    std::optional<Run<SGD, StepLR>> resumed;
    if (fs::exists(file)) {
      resumed.emplace(31337);
      resumed->load(file);  // whatever the child left is a whole checkpoint
      if (resumed->optimizer.step_count() < steps) ++killed_mid_run;
    } else {
      resumed.emplace(5);  // killed before its first checkpoint
    }
    resumed->train_until(steps);
    CHECK(state_of(resumed->net) == expected);
  }
  MESSAGE("runs killed mid-run and resumed from their checkpoint: ", killed_mid_run, " of 8");
}

TEST_CASE("Damaged checkpoints throw bnorm::Error and change nothing") {
  TemporaryFolder folder;
  const fs::path file = folder.path / "run.ckpt";
  Run<SGD, OneCycleLR> run(1);
  run.train_until(7);
  run.save(file);
  std::string bytes;
  {
    std::ifstream in(file, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  auto write = [&](const std::string& content) {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
  };
  Run<SGD, OneCycleLR> fresh(2);
  const std::string net_before = state_of(fresh.net);
  const std::string optimizer_before = state_of_object(fresh.optimizer);
  const Generator::State generator_before = default_generator().state();
  auto unchanged = [&] {
    CHECK(state_of(fresh.net) == net_before);
    CHECK(state_of_object(fresh.optimizer) == optimizer_before);
    CHECK(fresh.batches.epoch() == 0);
    CHECK(default_generator().state() == generator_before);
  };
  for (const std::size_t at : {std::size_t{20}, bytes.size() / 2, bytes.size() - 2}) {
    std::string flipped = bytes;
    flipped[at] = static_cast<char>(flipped[at] ^ 0x10);
    write(flipped);
    CHECK_ERROR_MENTIONS(fresh.load(file), "run.ckpt", "CRC-32C", "damaged");
    unchanged();
  }
  write(bytes.substr(0, bytes.size() - 100));
  CHECK_ERROR_MENTIONS(fresh.load(file), "run.ckpt", "damaged");
  write(bytes.substr(0, 5));
  CHECK_ERROR_MENTIONS(fresh.load(file), "not a bnorm checkpoint");
  write("");
  CHECK_ERROR_MENTIONS(fresh.load(file), "not a bnorm checkpoint");
  fs::remove(file);
  CHECK_ERROR_MENTIONS(fresh.load(file), "run.ckpt", "cannot be opened");
  unchanged();
  write(bytes);
  fresh.load(file);  // the intact file loads
  CHECK(state_of(fresh.net) == state_of(run.net));
}

TEST_CASE("Mismatched objects throw bnorm::Error naming what differs, and change nothing") {
  TemporaryFolder folder;
  const fs::path file = folder.path / "run.ckpt";
  Run<SGD, StepLR> run(1);
  run.train_until(6);
  run.save(file);

  Run<SGD, StepLR> other(2);
  const std::string net_before = state_of(other.net);
  const std::string optimizer_before = state_of_object(other.optimizer);
  const std::string schedule_before = state_of_object(other.schedule);
  auto unchanged = [&] {
    CHECK(state_of(other.net) == net_before);
    CHECK(state_of_object(other.optimizer) == optimizer_before);
    CHECK(state_of_object(other.schedule) == schedule_before);
    CHECK(other.batches.epoch() == 0);
  };
  SUBCASE("another optimizer kind") {
    Run<Adam, StepLR> adam(2);
    const std::string before = state_of(adam.net);
    CHECK_ERROR_MENTIONS(adam.load(file), "object 1", "SGD<double>", "Adam<double>");
    CHECK(state_of(adam.net) == before);  // object 0 matched, and is unchanged too
  }
  SUBCASE("other shapes") {
    Run<SGD, StepLR> wider(2, 12);
    const std::string before = state_of(wider.net);
    CHECK_ERROR_MENTIONS(wider.load(file), "object 0", "0.weight", "10 x 6", "12 x 6");
    CHECK(state_of(wider.net) == before);
  }
  SUBCASE("another batch size: the last object fails, the first four stay as they were") {
    Run<SGD, StepLR> batch4(2, 10, 4);
    const std::string before = state_of(batch4.net);
    CHECK_ERROR_MENTIONS(batch4.load(file), "checkpoint '",
                         "run.ckpt': object 3 (MiniBatches<double>): ",
                         "the batch size is 8 in the checkpoint but 4 here (at byte ");
    CHECK(state_of(batch4.net) == before);
  }
  SUBCASE("another object count or order") {
    CHECK_ERROR_MENTIONS(load_checkpoint(file, other.net, other.optimizer), "holds 5 objects",
                         "2 were given");
    CHECK_ERROR_MENTIONS(load_checkpoint(file, other.optimizer, other.net, other.schedule,
                                         other.batches, default_generator()),
                         "object 0", "Sequential<double>", "SGD<double>");
    unchanged();
  }
  SUBCASE("other scheduler options") {
    StepLR faster(other.optimizer, {.step_size = 3, .gamma = 0.5});
    CHECK_ERROR_MENTIONS(load_checkpoint(file, other.net, other.optimizer, faster, other.batches,
                                         default_generator()),
                         "object 2", "StepLR", "step_size", "7", "3");
  }
  SUBCASE("other parameter groups") {
    SGD<double> one_group(other.net.parameters(), {.lr = 0.05, .momentum = 0.9});
    StepLR schedule(one_group, {.step_size = 7, .gamma = 0.5});
    CHECK_ERROR_MENTIONS(
        load_checkpoint(file, other.net, one_group, schedule, other.batches, default_generator()),
        "object 1", "parameter groups", "2", "1");
  }
}

TEST_CASE("A Generator alone, the default generator included, resumes its stream") {
  TemporaryFolder folder;
  const fs::path file = folder.path / "generators.ckpt";
  Generator mine(3);
  mine.normal();  // leaves a spare normal, which is state too
  manual_seed(11);
  default_generator().next();
  save_checkpoint(file, mine, default_generator());
  const double next_mine = mine.normal(), next_default = default_generator().uniform();
  Generator other(4);
  manual_seed(12);
  load_checkpoint(file, other, default_generator());
  CHECK(other.normal() == next_mine);
  CHECK(default_generator().uniform() == next_default);
}
