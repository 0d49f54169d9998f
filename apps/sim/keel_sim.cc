// apps/sim/keel_sim.cc — keel-sim: runs the deterministic simulator over one
// seed or a range of seeds (docs/simulation.md).
//
//   keel-sim --seed 42                      one seed, all faults, swarm
//   keel-sim --seeds 1..300 --nodes 5       a range
//   keel-sim --seeds 1000..                 open-ended (until interrupted or --count)
//   keel-sim --seed 7 --faults crash,halves --no-swarm --ops 1000
//
// One line per seed: "seed=S nodes=N ops=K hash=H ok" (or FAILED with the
// first violation, the report file and the command that replays it). Exit
// status 0 only if every seed passed; with --expect-violation (canary
// tests), 0 only if some seed failed, stopping at the first.
//
//   keel-sim check-history FILE [--max-states N]
//
// checks a client history recorded outside the simulator (JSON lines, as
// keel-kv's chaos tests write it: apps/sim/history_json.h, docs/kv.md
// "History format"; FILE "-" reads standard input) with the simulator's
// linearizability checker. Exit status 0: linearizable; 1: not linearizable,
// or not proven within N search states; 2: the file cannot be read or
// parsed, or the flags are wrong.
//
// A broken invariant inside keel aborts the process (KEEL_CHECK). keel-sim
// then still writes the failure report of the seed it was running, from a
// SIGABRT handler: the abort is raised synchronously by the failing check on
// this, the only, thread, so the simulation's data is consistent, and the
// process is about to end anyway.
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "history_json.h"
#include "sim/history.h"
#include "sim/linearizability.h"
#include "sim/nemesis.h"
#include "sim/simulation.h"

#ifdef KEEL_CANARIES
#include "core/canary.h"
#endif

namespace {

using keel::sim::Fault;
using keel::sim::Simulation;
using keel::sim::SimulationOptions;
using keel::sim::SimulationResult;

struct Arguments {
  SimulationOptions base;
  std::vector<std::size_t> nodes;  // voters: seed i runs with nodes[i % size]; empty: drawn
  std::uint64_t first_seed = 1;
  std::optional<std::uint64_t> last_seed = 1;  // nullopt: open-ended
  std::optional<std::uint64_t> count;
  std::string out_dir = ".";
  bool expect_violation = false;
  // What --expect-violation accepts: a safety violation only, or any.
  bool expect_any_violation = false;
  bool verbose = false;
  bool always_report = false;
};

[[noreturn]] void usage(const std::string& error) {
  if (!error.empty()) std::cerr << "keel-sim: " << error << "\n\n";
  std::cerr <<
      R"(usage: keel-sim [options]
       keel-sim check-history FILE [--max-states N]   (see keel-sim check-history --help)
  --seed S             run seed S (default 1)
  --seeds A..B         run seeds A to B; "A.." runs on until interrupted (or --count)
  --count N            with an open-ended range, stop after N seeds
  --nodes N[,M...]     voters; a list alternates by seed (seed S uses the (S mod
                       length)-th), e.g. 3,5. Default: drawn per seed (1, 3 or 5)
  --learners K         learners besides the voters (default: drawn per seed, 0 to 2)
  --clients C          concurrent clients (default 5)
  --ops K              operations per seed (default 300)
  --faults LIST        "swarm" (default: each seed enables a random half of all
                       faults), "all", "none", or a comma list (all of them enabled) of: )";
  for (Fault fault : keel::sim::all_faults()) std::cerr << keel::sim::to_string(fault) << ' ';
  std::cerr << R"(
  --subset             with a list: each seed enables a random half of it
  --no-swarm           fixed moderate fault rates and the default Config, not drawn per seed
  --time-limit SEC     virtual seconds for the clients' phase (default 120)
  --storage KIND       memory (default) or disk: the write-ahead log and file stable store
                       on a simulated disk that tears unsynced writes on a crash
  --out DIR            where failure reports go (default: current directory)
  --verbose            print each seed's fault plan and config
  --trace-frames       put every delivered frame, decoded, in the failure report's trace
  --report             write the report (trace and history) for passing seeds too
  --expect-violation [safety|any]
                       succeed only if some seed fails (stops at the first) with a
                       safety violation (the default: liveness failures do not count)
                       or with any violation; for canaries
)";
#ifdef KEEL_CANARIES
  std::cerr << "  --canary NAME        break one rule: ";
  for (keel::core::Canary canary : keel::core::kAllCanaries) {
    std::cerr << keel::core::canary_name(canary) << ' ';
  }
  std::cerr << "\n";
#endif
  std::exit(2);
}

std::uint64_t parse_number(std::string_view text, const char* what) {
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) {
    usage(std::string("bad ") + what + ": '" + std::string(text) + "'");
  }
  return value;
}

std::set<Fault> parse_faults(const std::string& list, bool& subset) {
  std::set<Fault> faults;
  subset = false;
  if (list == "none") return faults;
  if (list == "swarm") {
    subset = true;
    return keel::sim::swarm_faults();
  }
  if (list == "all") {
    for (Fault fault : keel::sim::all_faults()) faults.insert(fault);
    return faults;
  }
  std::size_t start = 0;
  while (start <= list.size()) {
    const std::size_t comma = list.find(',', start);
    const std::string name = list.substr(start, comma == std::string::npos ? comma : comma - start);
    const std::optional<Fault> fault = keel::sim::fault_from_name(name);
    if (!fault) usage("unknown fault '" + name + "'");
    faults.insert(*fault);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return faults;
}

Arguments parse(int argc, char** argv) {
  Arguments args;
  args.base.faults = keel::sim::swarm_faults();
  bool no_swarm = false;
  bool subset = false;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--seed") {
      args.first_seed = parse_number(value(), "seed");
      args.last_seed = args.first_seed;
    } else if (flag == "--seeds") {
      const std::string range = value();
      const std::size_t dots = range.find("..");
      if (dots == std::string::npos) usage("--seeds takes A..B or A..");
      args.first_seed = parse_number(range.substr(0, dots), "seed");
      const std::string last = range.substr(dots + 2);
      args.last_seed =
          last.empty() ? std::nullopt : std::optional<std::uint64_t>(parse_number(last, "seed"));
      if (args.last_seed && *args.last_seed < args.first_seed) usage("empty seed range");
    } else if (flag == "--count") {
      args.count = parse_number(value(), "count");
    } else if (flag == "--nodes") {
      args.nodes.clear();
      const std::string list = value();
      std::size_t start = 0;
      while (start <= list.size()) {
        const std::size_t comma = list.find(',', start);
        const std::string one =
            list.substr(start, comma == std::string::npos ? comma : comma - start);
        args.nodes.push_back(parse_number(one, "voter count"));
        if (args.nodes.back() < 1 || args.nodes.back() > 9) usage("--nodes must be 1..9");
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    } else if (flag == "--learners") {
      args.base.learners = parse_number(value(), "learner count");
      if (*args.base.learners > 4) usage("--learners must be 0..4");
    } else if (flag == "--clients") {
      args.base.clients = parse_number(value(), "client count");
      if (args.base.clients < 1) usage("--clients must be at least 1");
    } else if (flag == "--ops") {
      args.base.ops = parse_number(value(), "operation count");
    } else if (flag == "--faults") {
      args.base.faults = parse_faults(value(), args.base.subset);
    } else if (flag == "--subset") {
      subset = true;
    } else if (flag == "--no-swarm") {
      no_swarm = true;
    } else if (flag == "--time-limit") {
      args.base.time_limit = std::chrono::seconds(parse_number(value(), "time limit"));
    } else if (flag == "--out") {
      args.out_dir = value();
    } else if (flag == "--verbose") {
      args.verbose = true;
    } else if (flag == "--trace-frames") {
      args.base.trace_frames = true;
    } else if (flag == "--storage") {
      const std::string kind = value();
      if (kind != "memory" && kind != "disk") usage("--storage takes memory or disk");
      args.base.disk = kind == "disk";
    } else if (flag == "--report") {
      args.always_report = true;
    } else if (flag == "--expect-violation") {
      args.expect_violation = true;
      if (i + 1 < argc &&
          (std::string(argv[i + 1]) == "safety" || std::string(argv[i + 1]) == "any")) {
        args.expect_any_violation = std::string(argv[++i]) == "any";
      }
#ifdef KEEL_CANARIES
    } else if (flag == "--canary") {
      const std::string name = value();
      const auto canary = keel::core::canary_from_name(name);
      if (!canary) usage("unknown canary '" + name + "'");
      args.base.canary = static_cast<std::uint8_t>(*canary);
#else
    } else if (flag == "--canary") {
      usage("--canary needs a build configured with -DKEEL_CANARIES=ON (make test-canary)");
#endif
    } else if (flag == "--help" || flag == "-h") {
      usage("");
    } else {
      usage("unknown option '" + flag + "'");
    }
  }
  if (subset) args.base.subset = true;
  if (no_swarm) {
    args.base.swarm = false;
    args.base.subset = false;
  }
  return args;
}

// --- the failure report ----------------------------------------------------------------

// The run in progress, for the SIGABRT handler (see the top of the file).
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables)
struct InProgress {
  const Simulation* simulation = nullptr;
  const Arguments* args = nullptr;
  std::uint64_t seed = 0;
} in_progress;

std::string write_report(const Arguments& args, std::uint64_t seed, const Simulation& simulation,
                         const SimulationResult& result) {
  const std::string base = args.out_dir + (result.ok ? "/keel-sim-report-" : "/keel-sim-failure-") +
                           std::to_string(seed);
  std::ofstream report(base + ".txt");
  report << simulation.report(result);
  std::ofstream history(base + ".history");
  history << "# keel-sim seed " << seed << ": the clients' history (sim/history.h text form)\n"
          << simulation.history_text();
  if (!report || !history) std::cerr << "keel-sim: could not write " << base << ".txt/.history\n";
  return base + ".txt";
}

extern "C" void on_abort(int /*signal*/) {
  std::signal(SIGABRT, SIG_DFL);
  if (in_progress.simulation != nullptr) {
    SimulationResult result;
    result.violations.push_back(
        "an invariant inside keel aborted the process (its name is on stderr just above)");
    const std::string path =
        write_report(*in_progress.args, in_progress.seed, *in_progress.simulation, result);
    std::cout << "seed=" << in_progress.seed << " FAILED: invariant abort\n  report: " << path
              << "\n  replay: build/bin/keel-sim " << in_progress.simulation->replay_arguments()
              << std::endl;
    if (in_progress.args->expect_violation) {
      std::cout << "expected violation found" << std::endl;
      _exit(0);
    }
  }
  std::abort();
}

std::string hex(std::uint64_t value) {
  char buffer[19];
  std::snprintf(buffer, sizeof buffer, "%016llx", static_cast<unsigned long long>(value));
  return buffer;
}

// --- keel-sim check-history ------------------------------------------------------

constexpr const char* kCheckHistoryUsage =
    R"(usage: keel-sim check-history FILE [--max-states N]
  Checks a client history written as JSON lines (docs/kv.md, "History format")
  for linearizability. FILE "-" reads standard input.
  --max-states N       bound of the search, in states (default 10000000); a
                       search that reaches it answers "not proven"
Exit status: 0 linearizable; 1 not linearizable, or not proven; 2 the input
cannot be read or parsed, or the flags are wrong.
)";

struct CheckHistoryArguments {
  std::string file;  // "-": standard input
  keel::sim::CheckOptions options;
};

// Input and flag errors: one line on stderr, exit status 2, so that a script
// can tell "the history is wrong" (1) from "the history was not checked" (2).
[[noreturn]] void check_history_error(const std::string& what) {
  std::cerr << "keel-sim check-history: " << what << "\n";
  std::exit(2);
}

CheckHistoryArguments parse_check_history(int argc, char** argv) {
  CheckHistoryArguments args;
  bool file_given = false;
  // argv[1] is "check-history".
  for (int i = 2; i < argc; ++i) {
    const std::string word = argv[i];
    if (word == "--max-states") {
      if (i + 1 >= argc) check_history_error("--max-states needs a value");
      const std::string_view text = argv[++i];
      std::uint64_t states = 0;
      const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), states);
      if (error != std::errc() || end != text.data() + text.size() || states == 0) {
        check_history_error("--max-states takes a positive integer, not '" + std::string(text) +
                            "'");
      }
      args.options.max_states_explored = states;
    } else if (word == "--help" || word == "-h") {
      std::cout << kCheckHistoryUsage;
      std::exit(0);
    } else if (word.size() > 1 && word.front() == '-') {
      check_history_error("unknown option '" + word + "' (see --help)");
    } else if (file_given) {
      check_history_error("more than one FILE: '" + args.file + "' and '" + word + "'");
    } else {
      args.file = word;
      file_given = true;
    }
  }
  if (!file_given) check_history_error("no FILE given (see --help)");
  return args;
}

// The whole of `file` ("-": standard input), or the reason it cannot be read.
std::optional<std::string> read_whole_file(const std::string& file, std::string& error) {
  std::FILE* in = file == "-" ? stdin : std::fopen(file.c_str(), "rb");
  if (in == nullptr) {
    error = std::strerror(errno);
    return std::nullopt;
  }
  std::string text;
  char buffer[1 << 16];
  std::size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, in)) > 0) text.append(buffer, got);
  // fread reports a read error (EISDIR for a directory) through ferror/errno.
  const bool failed = std::ferror(in) != 0;
  if (failed) error = std::strerror(errno);
  if (in != stdin) std::fclose(in);
  if (failed) return std::nullopt;
  return text;
}

struct HistoryCounts {
  std::size_t keys = 0;
  std::size_t ok = 0;
  std::size_t failed = 0;
  std::size_t unknown = 0;
  std::size_t unchecked_reads = 0;
};

HistoryCounts count(const keel::sim::History& history) {
  HistoryCounts counts;
  std::set<std::string_view> keys;
  for (const keel::sim::Operation& op : history.operations()) {
    keys.insert(op.key);
    switch (op.outcome) {
      case keel::sim::Outcome::kOk:
        ++counts.ok;
        break;
      case keel::sim::Outcome::kFailed:
        ++counts.failed;
        break;
      case keel::sim::Outcome::kUnknown:
        ++counts.unknown;
        break;
    }
    if (!op.checked) ++counts.unchecked_reads;
  }
  counts.keys = keys.size();
  return counts;
}

// Prints the verdict line first (scripts read it), then the counts, then,
// for a history that is not proven linearizable, the checker's explanation.
int report_check(const keel::sim::History& history, const keel::sim::CheckOptions& options,
                 const keel::sim::CheckResult& result) {
  const HistoryCounts counts = count(history);
  const std::string sizes = std::to_string(history.size()) + " operations, " +
                            std::to_string(counts.keys) + " keys, " +
                            std::to_string(result.states_explored) + " states";
  if (result.linearizable) {
    std::cout << "linearizable: " << sizes << "\n";
  } else if (result.budget_exhausted) {
    std::cout << "not proven: budget exhausted (--max-states " << options.max_states_explored
              << ") on key=" << keel::sim::quoted(result.key_that_failed) << "; " << sizes << "\n";
  } else {
    std::cout << "NOT linearizable: key=" << keel::sim::quoted(result.key_that_failed) << "; "
              << sizes << "\n";
  }
  std::cout << "outcomes: " << counts.ok << " ok, " << counts.failed << " failed, "
            << counts.unknown << " unknown; stale reads (unchecked): " << counts.unchecked_reads
            << "\n";
  if (result.linearizable) return 0;
  std::cout << "\n" << result.explanation;
  if (!result.failing_history.empty()) {
    std::cout << "\nsmallest failing history found:\n" << result.failing_history.to_text();
  }
  std::cout.flush();
  return 1;
}

int check_history(int argc, char** argv) {
  const CheckHistoryArguments args = parse_check_history(argc, argv);
  const std::string source = args.file == "-" ? "<stdin>" : args.file;
  std::string error;
  const std::optional<std::string> text = read_whole_file(args.file, error);
  if (!text) check_history_error(source + ": cannot read: " + error);
  const keel::Result<keel::sim::History> history =
      keel::sim::parse_history_json_lines(*text, source);
  if (!history) check_history_error(history.status().message());
  const keel::sim::CheckResult result = keel::sim::check_linearizable(*history, args.options);
  return report_check(*history, args.options, result);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string_view(argv[1]) == "check-history") return check_history(argc, argv);
  const Arguments args = parse(argc, argv);
  std::error_code made;
  std::filesystem::create_directories(args.out_dir, made);
  if (made) {
    std::cerr << "keel-sim: cannot create --out " << args.out_dir << ": " << made.message() << "\n";
    return 2;
  }
  std::signal(SIGABRT, on_abort);
  std::uint64_t run = 0;
  std::uint64_t failed = 0;
  std::uint64_t failed_safety = 0;
  const auto started = std::chrono::steady_clock::now();
  for (std::uint64_t seed = args.first_seed;; ++seed) {
    if (args.last_seed && seed > *args.last_seed) break;
    if (args.count && run >= *args.count) break;
    SimulationOptions options = args.base;
    options.seed = seed;
    if (!args.nodes.empty()) options.nodes = args.nodes[seed % args.nodes.size()];
    Simulation simulation(options);
    in_progress = InProgress{&simulation, &args, seed};
    const SimulationResult result = simulation.run();
    in_progress = InProgress{};
    ++run;
    std::cout << "seed=" << seed << " voters=" << result.voters << " learners=" << result.learners
              << " ops=" << result.operations << " hash=" << hex(result.hash);
    if (args.verbose) {
      std::cout << " virtual=" << std::chrono::duration<double>(result.virtual_time).count()
                << "s tasks=" << result.tasks << " actions=" << result.nemesis_actions << " "
                << result.outcomes << " terms/min=" << result.terms_per_minute
                << "\n  plan: " << result.plan << "\n  config: " << result.config << "\n ";
    }
    if (result.ok) {
      std::cout << " ok" << std::endl;
      if (args.always_report) {
        std::cout << "  report: " << write_report(args, seed, simulation, result) << std::endl;
      }
      continue;
    }
    ++failed;
    const std::string path = write_report(args, seed, simulation, result);
    std::cout << " FAILED: " << result.violations.front() << "\n  report: " << path
              << "\n  replay: build/bin/keel-sim " << simulation.replay_arguments() << std::endl;
    if (result.safety_violated) ++failed_safety;
    if (args.expect_violation && (result.safety_violated || args.expect_any_violation)) break;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << run << " seeds, " << failed << " failed, " << seconds << " s" << std::endl;
  if (args.expect_violation) {
    if (failed_safety > 0 || (args.expect_any_violation && failed > 0)) {
      std::cout << "expected violation found" << std::endl;
      return 0;
    }
    std::cout << (failed > 0 ? "only liveness violations found: the canary was not caught as a "
                               "safety violation"
                             : "no violation found: the canary was not caught")
              << std::endl;
    return 1;
  }
  return failed == 0 ? 0 : 1;
}
