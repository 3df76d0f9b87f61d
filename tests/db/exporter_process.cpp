// Child-process plumbing for the end-to-end tests.
#include "db/exporter_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>

namespace koji_exporter::testing {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// Waits up to `limit` for the child to exit; returns its exit code, or -1.
int WaitForExit(pid_t pid, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

httplib::Client MakeClient(const ClientOptions& options, int port) {
  httplib::Client client(fmt::format("{}://127.0.0.1:{}", options.https ? "https" : "http", port));
  client.enable_server_certificate_verification(false);
  if (!options.user.empty()) client.set_basic_auth(options.user, options.password);
  return client;
}

}  // namespace

pid_t SpawnWithLog(const std::string& binary, const std::vector<std::string>& arguments,
                   const std::string& log_path) {
  std::vector<std::string> argv_storage = {binary};
  argv_storage.insert(argv_storage.end(), arguments.begin(), arguments.end());
  std::vector<char*> argv;
  for (auto& argument : argv_storage) argv.push_back(argument.data());
  argv.push_back(nullptr);

  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    const int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(log, STDOUT_FILENO);
    dup2(log, STDERR_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "koji_exporter_test_XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::Write(const std::string& relative, const std::string& text) const {
  const std::filesystem::path full = std::filesystem::path(path_) / relative;
  std::filesystem::create_directories(full.parent_path());
  std::ofstream(full) << text;
  return full.string();
}

CommandResult RunExporter(const std::vector<std::string>& arguments) {
  TempDir directory;
  const std::string log_path = directory.path() + "/output";
  const pid_t pid = SpawnWithLog(KOJI_EXPORTER_BINARY, arguments, log_path);
  CommandResult result;
  result.exit_code = WaitForExit(pid, std::chrono::seconds(30));
  if (result.exit_code == -1) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  result.output = ReadAll(log_path);
  return result;
}

ExporterProcess::ExporterProcess(const std::string& config_file,
                                 const std::vector<std::string>& extra_arguments) {
  log_path_ = config_file + ".log";
  std::vector<std::string> arguments = {"--config.file=" + config_file,
                                        "--web.listen-address=127.0.0.1:0"};
  arguments.insert(arguments.end(), extra_arguments.begin(), extra_arguments.end());
  pid_ = SpawnWithLog(KOJI_EXPORTER_BINARY, arguments, log_path_);

  const std::regex listening(R"(msg=listening .*port=(\d+))");
  for (int attempt = 0; attempt < 200; ++attempt) {
    std::smatch match;
    const std::string log = Log();
    if (std::regex_search(log, match, listening)) {
      port_ = std::stoi(match[1]);
      return;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("koji_exporter exited before listening:\n" + log);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("koji_exporter did not log \"listening\" within 10 s:\n" + Log());
}

ExporterProcess::~ExporterProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

std::string ExporterProcess::Get(const std::string& path, int* status) const {
  httplib::Client client = MakeClient(client_options_, port_);
  client.set_connection_timeout(5);
  client.set_read_timeout(10);
  auto result = client.Get(path.c_str());
  if (status != nullptr) *status = result ? result->status : 0;
  return result ? result->body : "";
}

std::string ExporterProcess::Post(const std::string& path, int* status) const {
  httplib::Client client = MakeClient(client_options_, port_);
  client.set_connection_timeout(5);
  client.set_read_timeout(30);
  auto result = client.Post(path.c_str(), "", "text/plain");
  if (status != nullptr) *status = result ? result->status : 0;
  return result ? result->body : "";
}

void ExporterProcess::Signal(int signal) const {
  if (pid_ > 0) kill(pid_, signal);
}

std::string ExporterProcess::WaitForMetric(const std::string& needle, int attempts) const {
  std::string body;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    body = Get("/metrics");
    if (body.find(needle) != std::string::npos) return body;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return body;
}

int ExporterProcess::Stop(int signal) {
  if (pid_ <= 0) return -1;
  kill(pid_, signal);
  const int code = WaitForExit(pid_, std::chrono::seconds(30));
  if (code != -1) pid_ = -1;
  return code;
}

std::string ExporterProcess::Log() const { return ReadAll(log_path_); }

bool ExporterProcess::WaitForAcceptedConnection() const {
  for (int attempt = 0; attempt < 200; ++attempt) {
    // Inodes of the sockets the process holds.
    std::set<std::string> inodes;
    std::error_code error;
    for (const auto& entry :
         std::filesystem::directory_iterator(fmt::format("/proc/{}/fd", pid_), error)) {
      const std::string target = std::filesystem::read_symlink(entry.path(), error).string();
      if (target.rfind("socket:[", 0) == 0) inodes.insert(target.substr(8, target.size() - 9));
    }
    // Lines of /proc/net/tcp: "sl local_address rem_address st ... uid timeout inode";
    // addresses are hex "IP:PORT", and state 01 is ESTABLISHED.
    std::ifstream table(fmt::format("/proc/{}/net/tcp", pid_));
    std::string line;
    std::getline(table, line);
    while (std::getline(table, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
      fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
          timeout >> inode;
      const int local_port = std::stoi(local.substr(local.find(':') + 1), nullptr, 16);
      if (local_port == port_ && state == "01" && inodes.count(inode) > 0) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

}  // namespace koji_exporter::testing
