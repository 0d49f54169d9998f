// apps/bench/options.cc — keel-bench's flags, checked: a bad one exits 2.
#include "options.h"

#include <charconv>
#include <cstdlib>
#include <iostream>
#include <string_view>
#include <system_error>

namespace keel_bench {
namespace {

[[noreturn]] void usage(const std::string& error) {
  if (!error.empty()) std::cerr << "keel-bench: " << error << "\n\n";
  std::cerr << R"(usage: keel-bench [options]
       keel-bench floor [--dir DIR] [--samples N] [--json]
  --mode processes     each server a process of its own, over TCP on 127.0.0.1 (default);
                       the clients run in the process of the server they use
  --mode in-process    servers in this process over the in-memory network
  --mode tcp-in-process  servers in this process over the TCP transport on 127.0.0.1
  --log memory|wal     memory stores (default), or the write-ahead log on disk
  --dir DIR            where --log wal (and floor) write; must be empty or absent
                       (default: a fresh temporary folder, removed afterwards)
  --samples N          floor: measurements of each kind (default 500)
  --servers N          servers in the cluster (default 3)
  --clients N          closed-loop clients (default 1)
  --payload BYTES      bytes per command (default 256)
  --workload write|read  write: apply a command, wait until the leader applied it
                       (default); read: read() at --read consistency
  --read linearizable|lease  the reads' consistency (default linearizable)
  --on leader|follower the server the reading clients use (default leader;
                       lease reads are served by the leader only)
  --duration SECONDS   measured time (default 10)
  --warmup SECONDS     time before measuring (default 2)
  --json               one JSON object instead of text
  --verbose            keel's log lines (info and up) on stderr
)";
  std::exit(2);
}

double parse_number(std::string_view text, const char* what) {
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < 0) {
    usage(std::string("bad ") + what + ": '" + std::string(text) + "'");
  }
  return value;
}

std::size_t parse_count(std::string_view text, const char* what, std::size_t low,
                        std::size_t high) {
  const double value = parse_number(text, what);
  if (value < static_cast<double>(low) || value > static_cast<double>(high) ||
      value != static_cast<double>(static_cast<std::size_t>(value))) {
    usage(std::string(what) + " must be a whole number in " + std::to_string(low) + ".." +
          std::to_string(high));
  }
  return static_cast<std::size_t>(value);
}

}  // namespace

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(flag + " needs a value");
      return argv[++i];
    };
    auto one_of = [&](std::string& field, std::initializer_list<const char*> allowed) {
      field = value();
      std::string names;
      for (const char* name : allowed) {
        if (field == name) return;
        names += (names.empty() ? "" : ", ") + std::string(name);
      }
      usage(flag + ": one of " + names + " (got '" + field + "')");
    };
    if (i == 1 && flag == "floor") {
      options.floor = true;
    } else if (i == 1 && flag == "node") {
      options.node = true;
    } else if (flag == "--id") {
      options.node_id = parse_count(value(), "--id", 1, 9);
    } else if (flag == "--addresses") {
      options.addresses = value();
    } else if (flag == "--mode") {
      one_of(options.mode, {"processes", "in-process", "tcp-in-process"});
    } else if (flag == "--log") {
      one_of(options.log, {"memory", "wal"});
    } else if (flag == "--dir") {
      options.dir = value();
    } else if (flag == "--samples") {
      options.samples = parse_count(value(), "--samples", 1, 1'000'000);
    } else if (flag == "--servers") {
      options.servers = parse_count(value(), "--servers", 1, 9);
    } else if (flag == "--clients") {
      options.clients = parse_count(value(), "--clients", 1, 4096);
    } else if (flag == "--payload") {
      options.payload = parse_count(value(), "--payload", 0, 1U << 20);
    } else if (flag == "--workload") {
      one_of(options.workload, {"write", "read"});
    } else if (flag == "--read") {
      one_of(options.consistency, {"linearizable", "lease"});
    } else if (flag == "--on") {
      one_of(options.on, {"leader", "follower"});
    } else if (flag == "--duration") {
      options.duration_s = parse_number(value(), "duration");
      if (options.duration_s <= 0) usage("--duration must be positive");
    } else if (flag == "--warmup") {
      options.warmup_s = parse_number(value(), "warmup");
    } else if (flag == "--json") {
      options.json = true;
    } else if (flag == "--verbose") {
      options.verbose = true;
    } else if (flag == "--help" || flag == "-h") {
      usage("");
    } else {
      usage("unknown option '" + flag + "'");
    }
  }
  if (options.on == "follower" && options.consistency == "lease") {
    usage("--read lease is served by the leader only: use --on leader");
  }
  if (options.on == "follower" && options.servers < 2) {
    usage("--on follower needs at least 2 servers");
  }
  if (!options.reads() && options.on == "follower") {
    usage("--on follower is for --workload read (writes go to the leader)");
  }
  return options;
}

}  // namespace keel_bench
