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
#include <limits>
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

namespace {

// Where each field of an object's payload starts: a CheckpointWriter that notes the offset
// of every field it writes, by the name the walk gives it.
struct FieldOffsets {
  static constexpr bool loading = false;
  ByteWriter out;
  detail::CheckpointWriter writer{out};
  std::vector<std::pair<std::string, std::size_t>> fields;

#define BNORM_TEST_NOTED(method)                                \
  template <class... Arguments>                                 \
  void method(std::string_view what, Arguments&&... arguments) { \
    fields.emplace_back(std::string(what), out.size());         \
    writer.method(what, arguments...);                          \
  }
  BNORM_TEST_NOTED(constant)
  BNORM_TEST_NOTED(count)
  BNORM_TEST_NOTED(number)
  BNORM_TEST_NOTED(integer)
  BNORM_TEST_NOTED(index)
  BNORM_TEST_NOTED(flag)
  BNORM_TEST_NOTED(word)
  BNORM_TEST_NOTED(generator)
  BNORM_TEST_NOTED(matrix)
  BNORM_TEST_NOTED(counter)
  BNORM_TEST_NOTED(finite_number)
  BNORM_TEST_NOTED(rate)
  BNORM_TEST_NOTED(fraction)
  BNORM_TEST_NOTED(permutation)
#undef BNORM_TEST_NOTED

  // The offset of the `occurrence`-th field named `what`.
  std::size_t at(std::string_view what, int occurrence = 0) const {
    for (const auto& [name, offset] : fields)
      if (name == what && occurrence-- == 0) return offset;
    FAIL("no field ", what);
    return 0;
  }
};

// The checkpoint of `object` alone, with `replacement` written over the bytes of its field
// `what` and the checksum made to fit: a well-formed file holding a value out of range.
template <class Object>
std::string checkpoint_with(Object& object, std::string_view what, const std::string& replacement,
                            int occurrence = 0) {
  FieldOffsets offsets;
  visit_checkpoint(offsets, object);
  ByteWriter file;
  file.raw(detail::checkpoint_magic);
  file.u32(detail::checkpoint_version);
  file.u32(1);
  detail::encode_checkpoint_object(file, object);
  std::string bytes = file.take();
  const std::size_t payload = bytes.size() - offsets.out.size();
  bytes.replace(payload + offsets.at(what, occurrence), replacement.size(), replacement);
  ByteWriter checksum;
  checksum.u32(crc32c(bytes));
  return bytes + checksum.bytes();
}

std::string i64_bytes(std::int64_t value) {
  ByteWriter w;
  w.i64(value);
  return w.take();
}
std::string f64_bytes(double value) {
  ByteWriter w;
  w.scalar(value);
  return w.take();
}

}  // namespace

TEST_CASE("Values out of range behind a valid checksum throw bnorm::Error and change nothing") {
  TemporaryFolder folder;
  const fs::path file = folder.path / "bad.ckpt";
  // Writes `bytes`, loads them into `object`, and checks the message and that `object` is
  // as it was.
  const auto rejects = [&](auto& object, const std::string& bytes, std::initializer_list<std::string> words) {
    {
      std::ofstream out(file, std::ios::binary | std::ios::trunc);
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
    const std::string before = state_of_object(object);
    const std::string message = bnorm_test::error_message([&] { load_checkpoint(file, object); });
    INFO("message: ", message);
    CHECK(message.rfind("<", 0) != 0);
    CHECK(message.find("bad.ckpt") != std::string::npos);
    for (const std::string& word : words) CHECK_MESSAGE(message.find(word) != std::string::npos, "missing: ", word);
    CHECK(state_of_object(object) == before);
  };
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  constexpr double infinity = std::numeric_limits<double>::infinity();
  constexpr std::int64_t largest = std::numeric_limits<std::int64_t>::max();

  Run<Adam, StepLR> run(1);
  run.train_until(3);

  SUBCASE("counters: below 0, or where one more step would overflow") {
    rejects(run.optimizer, checkpoint_with(run.optimizer, "the step count", i64_bytes(-1)),
            {"object 0 (Adam<double>)", "the step count must be >= 0, found -1", "at byte"});
    rejects(run.optimizer, checkpoint_with(run.optimizer, "the step count", i64_bytes(largest)),
            {"the step count is 9223372036854775807", "counting one more would overflow"});
    rejects(run.net, checkpoint_with(run.net, "1.num_batches_tracked", i64_bytes(-5)),
            {"object 0 (Sequential<double>)", "1.num_batches_tracked must be >= 0, found -5"});
    rejects(run.batches, checkpoint_with(run.batches, "the epoch", i64_bytes(largest)),
            {"object 0 (MiniBatches<double>)", "the epoch is 9223372036854775807"});
    rejects(run.schedule, checkpoint_with(run.schedule, "last_epoch", i64_bytes(-2)),
            {"object 0 (StepLR)", "last_epoch must be >= 0, found -2"});
    ReduceLROnPlateau plateau(run.optimizer);
    plateau.step(1.0);
    rejects(plateau, checkpoint_with(plateau, "num_bad_epochs", i64_bytes(largest)),
            {"num_bad_epochs is 9223372036854775807"});
    rejects(plateau, checkpoint_with(plateau, "cooldown_counter", i64_bytes(-1)),
            {"cooldown_counter must be >= 0, found -1"});
  }
  SUBCASE("optimizer options: NaN, infinite, or outside the constructor's range") {
    rejects(run.optimizer, checkpoint_with(run.optimizer, "lr", f64_bytes(nan)),
            {"object 0 (Adam<double>)", "lr is nan in the checkpoint; it must be a finite number", "at byte"});
    rejects(run.optimizer, checkpoint_with(run.optimizer, "beta1", f64_bytes(infinity)),
            {"beta1 is inf in the checkpoint; it must be a finite number"});
    rejects(run.optimizer, checkpoint_with(run.optimizer, "beta2", f64_bytes(1.0)),
            {"beta2 is 1 in the checkpoint; it must be in [0, 1)"});
    rejects(run.optimizer, checkpoint_with(run.optimizer, "eps", f64_bytes(-1e-8)),
            {"eps is -1e-08 in the checkpoint; it must be finite and >= 0"});
    rejects(run.optimizer, checkpoint_with(run.optimizer, "weight_decay", f64_bytes(nan), 1),
            {"weight_decay is nan in the checkpoint; it must be finite and >= 0"});
    SGD<double> sgd(run.net.parameters(), {.lr = 0.1, .momentum = 0.9});
    rejects(sgd, checkpoint_with(sgd, "dampening", f64_bytes(-1)), {"object 0 (SGD<double>)", "dampening is -1"});
    rejects(sgd, checkpoint_with(sgd, "momentum", f64_bytes(nan)), {"momentum is nan"});
    RMSprop<double> rmsprop(run.net.parameters());
    rejects(rmsprop, checkpoint_with(rmsprop, "alpha", f64_bytes(2)), {"object 0 (RMSprop<double>)", "alpha is 2"});
  }
  SUBCASE("a scheduler's learning rates: NaN or infinite") {
    rejects(run.schedule, checkpoint_with(run.schedule, "a base learning rate", f64_bytes(nan)),
            {"object 0 (StepLR)", "a base learning rate is nan in the checkpoint; it must be a finite number"});
    rejects(run.schedule, checkpoint_with(run.schedule, "a last learning rate", f64_bytes(-infinity), 1),
            {"a last learning rate is -inf"});
  }
  SUBCASE("a generator's state all zero, which no seeded generator has") {
    Generator generator(5);
    rejects(generator, checkpoint_with(generator, "the generator", std::string(32, '\0')),
            {"object 0 (Generator)", "the generator", "all zero"});
    rejects(run.batches, checkpoint_with(run.batches, "the generator", std::string(32, '\0')),
            {"object 0 (MiniBatches<double>)", "all zero"});
  }
  SUBCASE("a generator's spare normal infinite, which Box-Muller never draws") {
    Generator generator(5);
    FieldOffsets offsets;
    visit_checkpoint(offsets, generator);
    const std::string words = offsets.out.bytes().substr(0, 32);
    rejects(generator, checkpoint_with(generator, "the generator", words + f64_bytes(infinity)),
            {"object 0 (Generator)", "the generator's spare normal is inf"});
  }
  SUBCASE("an order that is not a permutation of the data set") {
    FieldOffsets offsets;
    visit_checkpoint(offsets, run.batches);
    // The order is one i64 per example; example 1 made a copy of example 0.
    const std::string order = offsets.out.bytes().substr(offsets.at("the order"), 16);
    rejects(run.batches, checkpoint_with(run.batches, "the order", order.substr(0, 8) + order.substr(0, 8)),
            {"object 0 (MiniBatches<double>)", "the order holds example",
             "twice: it must be a permutation of [0, 37)"});
    // Before the first epoch the order is all 0, and loads.
    Run<Adam, StepLR> unstarted(3);
    const std::string zeros = checkpoint_with(unstarted.batches, "the order", "");
    CHECK(unstarted.batches.epoch() == 0);
    std::ofstream(file, std::ios::binary) << zeros;
    CHECK_NOTHROW(load_checkpoint(file, run.batches));
    CHECK(run.batches.epoch() == 0);
    rejects(run.batches, checkpoint_with(run.batches, "the order", i64_bytes(37)),
            {"the order", "is 37 in the checkpoint, outside [0, 37)"});
  }
}
