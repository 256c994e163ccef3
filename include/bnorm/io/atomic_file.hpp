// Replacing a file so that a crash, a kill or a full disk leaves either the old file or the
// new one, never a mixture and never nothing.
//
// write_file_atomically(path, bytes) writes the bytes to a new temporary file in the same
// folder (same file system, so the final rename is atomic), named "<file>.tmp-<pid>-<n>"
// and created exclusively, so two writers never share one. It then flushes the data to the
// disk (fsync), closes the file, gives it the permissions of the file it replaces, renames
// it over `path` and flushes the folder entry. On POSIX, rename() replaces the target
// atomically: every reader sees the old or the new file whole.
//
// Exception guarantee: strong for `path`. On any failure the temporary file is removed and
// a bnorm::Error names the file, the step that failed and the system's reason; `path` is
// as it was. If the process dies during the write, `path` is as it was and the temporary
// file stays behind (the next save does not reuse it; delete "*.tmp-*" files at leisure).
//
// Without POSIX (Windows), the same steps run through the standard library, minus fsync.
#pragma once

#include "../core/error.hpp"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <system_error>

#if defined(__unix__) || defined(__APPLE__)
#define BNORM_POSIX_FILES 1
#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#else
#include <fstream>
#endif

namespace bnorm {

namespace detail {

// The steps of an atomic write, in order.
enum class AtomicWriteStep { write, sync, close, rename };

inline const char* step_name(AtomicWriteStep step) {
  switch (step) {
    case AtomicWriteStep::write: return "writing the temporary file";
    case AtomicWriteStep::sync: return "flushing the temporary file to disk";
    case AtomicWriteStep::close: return "closing the temporary file";
    case AtomicWriteStep::rename: return "renaming the temporary file over the target";
  }
  return "?";
}

// A test hook, called before each step (before each chunk of the write) with the bytes
// written so far and the temporary file's path. An exception from it is a failure of that
// step, handled like a real one: that is how the tests simulate a full disk or a failing
// rename, or kill the process in the middle of a save.
using AtomicWriteHook = std::function<void(AtomicWriteStep step, std::size_t bytes_written,
                                           const std::filesystem::path& temporary)>;

// The temporary file; removed by the destructor unless the rename committed it.
class TemporaryFile {
 public:
  explicit TemporaryFile(const std::filesystem::path& target) : target_(target) {
    if (!target.has_filename()) fail("cannot save '", target.string(), "': the path names a folder, not a file");
    const std::filesystem::path folder = folder_of(target);
    static std::atomic<unsigned long> counter{0};
    for (int attempt = 0; attempt < 100; ++attempt) {
      path_ = folder / (target.filename().string() + ".tmp-" + process_id() + "-" +
                        std::to_string(counter++));
#ifdef BNORM_POSIX_FILES
      descriptor_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (descriptor_ >= 0) return;
      if (errno != EEXIST) fail_step("creating a temporary file in '" + folder.string() + "'", errno_text());
#else
      if (std::filesystem::exists(path_)) continue;
      stream_.open(path_, std::ios::binary | std::ios::trunc);
      if (stream_) return;
      fail_step("creating a temporary file in '" + folder.string() + "'", "cannot open it");
#endif
    }
    fail_step("creating a temporary file in '" + folder.string() + "'", "100 names were taken");
  }
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;

  ~TemporaryFile() {
    close_quietly();
    if (!committed_) {
      std::error_code ignored;
      std::filesystem::remove(path_, ignored);
    }
  }

  const std::filesystem::path& path() const { return path_; }

  // "cannot save 'net.bnorm': renaming ... failed: Permission denied; 'net.bnorm' is unchanged"
  [[noreturn]] void fail_step(std::string_view what, std::string_view reason) const {
    fail("cannot save '", target_.string(), "': ", what, " failed: ", reason, "; '",
         target_.string(), "' is unchanged");
  }

  void write(std::string_view bytes) {
#ifdef BNORM_POSIX_FILES
    while (!bytes.empty()) {
      const ::ssize_t written = ::write(descriptor_, bytes.data(), bytes.size());
      if (written < 0) {
        if (errno == EINTR) continue;
        fail_step(step_name(AtomicWriteStep::write), errno_text());
      }
      bytes.remove_prefix(static_cast<std::size_t>(written));
    }
#else
    stream_.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!stream_) fail_step(step_name(AtomicWriteStep::write), "the stream failed");
#endif
  }

  void sync() {
#ifdef BNORM_POSIX_FILES
    if (::fsync(descriptor_) != 0) fail_step(step_name(AtomicWriteStep::sync), errno_text());
#else
    if (!stream_.flush()) fail_step(step_name(AtomicWriteStep::sync), "the stream failed");
#endif
  }

  // Gives the temporary file the permission bits of the file it will replace, if any.
  void copy_target_permissions() {
    std::error_code error;
    const auto status = std::filesystem::status(target_, error);
    if (!error && std::filesystem::is_regular_file(status))
      std::filesystem::permissions(path_, status.permissions(), error);  // best effort
  }

  void close() {
#ifdef BNORM_POSIX_FILES
    const int result = ::close(descriptor_);
    descriptor_ = -1;  // closed even on error (POSIX leaves it unspecified; Linux closes)
    if (result != 0) fail_step(step_name(AtomicWriteStep::close), errno_text());
#else
    stream_.close();
    if (!stream_) fail_step(step_name(AtomicWriteStep::close), "the stream failed");
#endif
  }

  void rename_over_target() {
#ifdef BNORM_POSIX_FILES
    if (::rename(path_.c_str(), target_.c_str()) != 0)
      fail_step(step_name(AtomicWriteStep::rename), errno_text());
    committed_ = true;
    // Make the new directory entry durable too; not every file system can, so best effort.
    const int folder_descriptor = ::open(folder_of(target_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (folder_descriptor >= 0) {
      (void)::fsync(folder_descriptor);
      ::close(folder_descriptor);
    }
#else
    std::error_code error;
    std::filesystem::rename(path_, target_, error);
    if (error) fail_step(step_name(AtomicWriteStep::rename), error.message());
    committed_ = true;
#endif
  }

 private:
  static std::string process_id() {
#ifdef BNORM_POSIX_FILES
    return std::to_string(static_cast<long long>(::getpid()));
#else
    return "0";
#endif
  }

  static std::string errno_text() { return std::error_code(errno, std::system_category()).message(); }
  static std::filesystem::path folder_of(const std::filesystem::path& target) {
    return target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  }

  void close_quietly() {
#ifdef BNORM_POSIX_FILES
    if (descriptor_ >= 0) ::close(descriptor_);
    descriptor_ = -1;
#else
    if (stream_.is_open()) stream_.close();
#endif
  }

  std::filesystem::path target_, path_;
#ifdef BNORM_POSIX_FILES
  int descriptor_ = -1;
#else
  std::ofstream stream_;
#endif
  bool committed_ = false;
};

// write_file_atomically with a test hook and the size of each write() call.
inline void write_file_atomically(const std::filesystem::path& path, std::string_view bytes,
                                  const AtomicWriteHook& hook, std::size_t chunk_size) {
  TemporaryFile file(path);
  const auto step = [&](AtomicWriteStep which, std::size_t written) {
    if (!hook) return;
    try {
      hook(which, written, file.path());
    } catch (const std::exception& error) {
      file.fail_step(step_name(which), error.what());
    }
  };
  for (std::size_t written = 0; written < bytes.size();) {
    step(AtomicWriteStep::write, written);
    const std::size_t chunk = std::min(chunk_size, bytes.size() - written);
    file.write(bytes.substr(written, chunk));
    written += chunk;
  }
  step(AtomicWriteStep::sync, bytes.size());
  file.sync();
  file.copy_target_permissions();
  step(AtomicWriteStep::close, bytes.size());
  file.close();
  step(AtomicWriteStep::rename, bytes.size());
  file.rename_over_target();
}

}  // namespace detail

// Replaces the file at `path` with `bytes`, atomically (see the top of this header).
inline void write_file_atomically(const std::filesystem::path& path, std::string_view bytes) {
  detail::write_file_atomically(path, bytes, {}, std::size_t{1} << 20);
}

}  // namespace bnorm
