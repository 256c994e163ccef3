// write_file_atomically (io/atomic_file.hpp): a failure at any step, or a kill, leaves the
// previous file intact and, but for a kill, no temporary file behind.
#include <bnorm/io/atomic_file.hpp>

#include <doctest/doctest.h>

#include "support/errors.hpp"
#include "support/model_files.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <csignal>
#include <sys/wait.h>
#include <unistd.h>
#endif

using namespace bnorm;
using namespace bnorm_test;
using detail::AtomicWriteStep;

namespace {
const std::string old_bytes = "the previous model";
const std::string new_bytes(1000, 'n');
}  // namespace

TEST_CASE("Writes, then replaces, keeping the permissions of the file it replaces") {
  TempDir folder;
  const auto path = folder / "file.bin";
  write_file_atomically(path, old_bytes);
  CHECK(read_file(path) == old_bytes);
  std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                                         std::filesystem::perms::group_read);
  write_file_atomically(path, new_bytes);
  CHECK(read_file(path) == new_bytes);
  CHECK(std::filesystem::status(path).permissions() ==
        (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
         std::filesystem::perms::group_read));
  write_file_atomically(path, "");
  CHECK(read_file(path).empty());
  CHECK(folder.files() == std::vector<std::string>{"file.bin"});
}

TEST_CASE("A failure at any step keeps the previous file and removes the temporary file") {
  struct Case {
    AtomicWriteStep step;
    std::size_t after_bytes;  // for write: fail once this many bytes are written
    const char* words;
  };
  const Case cases[] = {
      {AtomicWriteStep::write, 0, "writing the temporary file failed: No space left on device"},
      {AtomicWriteStep::write, 490, "writing the temporary file failed: No space left on device"},
      {AtomicWriteStep::sync, 0, "flushing the temporary file to disk failed"},
      {AtomicWriteStep::close, 0, "closing the temporary file failed"},
      {AtomicWriteStep::rename, 0, "renaming the temporary file over the target failed"},
  };
  for (const Case& failure : cases) {
    for (const bool existed : {true, false}) {
      CAPTURE(failure.words);
      CAPTURE(existed);
      TempDir folder;
      const auto path = folder / "file.bin";
      if (existed) write_file(path, old_bytes);
      std::size_t temporary_size = 0;
      const auto hook = [&](AtomicWriteStep step, std::size_t written, const std::filesystem::path& temporary) {
        if (step != failure.step || written < failure.after_bytes) return;
        temporary_size = std::filesystem::file_size(temporary);  // the temporary file is there
        throw std::runtime_error(std::strerror(ENOSPC));  // as a full disk would report it
      };
      CHECK_ERROR_MENTIONS(detail::write_file_atomically(path, new_bytes, hook, 7), "cannot save '",
                           "file.bin", failure.words, "is unchanged");
      CHECK(temporary_size >= failure.after_bytes);
      if (failure.step != AtomicWriteStep::write) CHECK(temporary_size == new_bytes.size());
      if (existed) {
        CHECK(read_file(path) == old_bytes);
        CHECK(folder.files() == std::vector<std::string>{"file.bin"});
      } else {
        CHECK(folder.files().empty());
      }
    }
  }
}

TEST_CASE("Each save writes its own temporary file, never an existing one") {
  TempDir folder;
  const auto path = folder / "file.bin";
  // A leftover that looks like one of ours (a killed save) is neither reused nor removed.
  std::vector<std::filesystem::path> seen;
  const auto remember = [&](AtomicWriteStep step, std::size_t, const std::filesystem::path& temporary) {
    if (step == AtomicWriteStep::sync) seen.push_back(temporary);
  };
  detail::write_file_atomically(path, old_bytes, remember, 1 << 20);
  detail::write_file_atomically(path, new_bytes, remember, 1 << 20);
  REQUIRE(seen.size() == 2);
  CHECK(seen[0] != seen[1]);
  CHECK(seen[0].parent_path() == folder.path());
  CHECK(seen[0].filename().string().rfind("file.bin.tmp-", 0) == 0);
}

#if defined(__unix__) || defined(__APPLE__)
TEST_CASE("A save killed midway leaves the previous file intact") {
  for (const AtomicWriteStep kill_at : {AtomicWriteStep::write, AtomicWriteStep::rename}) {
    CAPTURE(int(kill_at));
    TempDir folder;
    const auto path = folder / "file.bin";
    write_file(path, old_bytes);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {  // SIGKILL: no destructor, no cleanup, as a crash or a power cut
      const auto kill = [&](AtomicWriteStep step, std::size_t written, const std::filesystem::path&) {
        if (step == kill_at && (step != AtomicWriteStep::write || written >= 500)) ::raise(SIGKILL);
      };
      detail::write_file_atomically(path, new_bytes, kill, 100);
      ::_exit(0);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    CHECK(WIFSIGNALED(status));
    CHECK(read_file(path) == old_bytes);
    const auto files = folder.files();  // the target and the abandoned temporary file
    REQUIRE(files.size() == 2);
    CHECK(files[0] == "file.bin");
    CHECK(files[1].rfind("file.bin.tmp-", 0) == 0);
    CHECK(std::filesystem::file_size(folder / files[1]) ==
          (kill_at == AtomicWriteStep::write ? 500u : new_bytes.size()));
    write_file_atomically(path, new_bytes);  // the next save is unaffected
    CHECK(read_file(path) == new_bytes);
  }
}

TEST_CASE("A folder without write permission") {
  if (::geteuid() == 0) {
    MESSAGE("skipped: root may write anywhere");
    return;
  }
  TempDir folder;
  const auto path = folder / "file.bin";
  write_file(path, old_bytes);
  std::filesystem::permissions(folder.path(), std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
  CHECK_ERROR_MENTIONS(write_file_atomically(path, new_bytes), "cannot save", "creating a temporary file",
                       "Permission denied", "is unchanged");
  CHECK(read_file(path) == old_bytes);
}
#endif

TEST_CASE("Missing folder, a file as folder, a folder as target") {
  TempDir folder;
  CHECK_ERROR_MENTIONS(write_file_atomically(folder / "absent" / "file.bin", old_bytes),
                       "cannot save", "absent", "creating a temporary file", "No such file or directory");
  write_file(folder / "plain", old_bytes);
  CHECK_ERROR_MENTIONS(write_file_atomically(folder / "plain" / "file.bin", old_bytes),
                       "creating a temporary file", "Not a directory");
  std::filesystem::create_directory(folder / "sub");
  CHECK_ERROR_MENTIONS(write_file_atomically(folder / "sub", old_bytes), "renaming", "Is a directory");
  CHECK_ERROR_MENTIONS(write_file_atomically(folder / "sub" / "", old_bytes), "names a folder, not a file");
  CHECK(folder.files() == std::vector<std::string>{"plain", "sub"});
  CHECK(read_file(folder / "plain") == old_bytes);
}
