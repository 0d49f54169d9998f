// tests/integration/kv/cluster_page_test.cc — keel-kv's cluster page (GET /,
// docs/kv.md "The cluster page") in a headless Chromium, against three real
// servers: the page, loaded from a follower, shows the three members and
// the leader; it follows a failover when the leader is killed (another
// leader, the old one unreachable); its snapshot and transfer buttons act
// on other members and say what happened.
//
// Every wait polls the page's DOM, as a user would read it, against a
// generous deadline. Without chromium and chromedriver the test reports
// SKIP (exit 77), except under CI=true, where scripts/install-deps.sh has
// installed them and their absence fails. KEEL_SCREENSHOT=FILE saves the
// page after the failover as a PNG (docs/cluster-page.png is made so).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "gtest/gtest.h"
#include "headless_chromium.h"
#include "kv_harness.h"

namespace {

using keel::kv::testing::chromedriver_binary;
using keel::kv::testing::chromium_binary;
using keel::kv::testing::HeadlessChromium;
using keel::kv::testing::http;
using keel::kv::testing::HttpReply;
using keel::kv::testing::KvCluster;
using keel::kv::testing::KvClusterOptions;
using keel::kv::testing::TempDir;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using namespace std::chrono_literals;

// Liveness bounds, generous for a loaded machine: a cluster elects a ready
// leader; the page shows what its members say (it asks every second).
constexpr milliseconds kLeaderBound = 30s;
constexpr milliseconds kPageBound = 30s;

// What the page shows: each member's row and the leader named above the
// table, as text, and the outcome of the last button pressed.
struct PageView {
  struct Row {
    std::uint64_t id = 0;
    std::string role, term, commit, applied, snapshot, lag;
    bool snapshot_enabled = false;
    bool lead_enabled = false;
  };
  std::vector<Row> rows;
  std::string leader_id;  // #leader's data-leader-id: "" when it names none
  std::string leader_text;
  std::string outcome;
  std::string outcome_state;  // "ok", "error", "pending" or ""

  // Member `id`'s row; one with id 0 and every field empty if there is none.
  Row row(std::uint64_t id) const {
    for (const Row& r : rows) {
      if (r.id == id) return r;
    }
    return Row{};
  }
  std::size_t count_role(const std::string& role) const {
    std::size_t n = 0;
    for (const Row& r : rows) n += r.role == role ? 1 : 0;
    return n;
  }
  std::string describe() const {
    std::ostringstream out;
    out << "leader: \"" << leader_text << "\" (id \"" << leader_id
        << "\"); outcome: " << outcome_state << " \"" << outcome << "\"; rows:";
    for (const Row& r : rows) {
      out << "\n  " << r.id << " " << r.role << " term=" << r.term << " commit=" << r.commit
          << " applied=" << r.applied << " snapshot=" << r.snapshot << " lag=" << r.lag;
    }
    return out.str();
  }
};

constexpr const char* kReadPage = R"js(
  const text = (root, selector) => {
    const e = root.querySelector(selector);
    return e ? e.textContent : "";
  };
  const enabled = (root, selector) => {
    const e = root.querySelector(selector);
    return e !== null && !e.disabled;
  };
  const rows = [...document.querySelectorAll("#members tr")].map((tr) => ({
    id: Number(tr.dataset.memberId),
    role: text(tr, "[data-field=role]"),
    term: text(tr, "[data-field=term]"),
    commit: text(tr, "[data-field=commit]"),
    applied: text(tr, "[data-field=applied]"),
    snapshot: text(tr, "[data-field=snapshot]"),
    lag: text(tr, "[data-field=lag]"),
    snapshot_enabled: enabled(tr, "button[data-action=snapshot]"),
    lead_enabled: enabled(tr, "button[data-action=transfer]"),
  }));
  const leader = document.getElementById("leader");
  const outcome = document.getElementById("outcome");
  return {rows, leader_id: leader.dataset.leaderId, leader_text: leader.textContent,
          outcome: outcome.textContent, outcome_state: outcome.dataset.outcome};
)js";

PageView read_page(HeadlessChromium& browser) {
  const json page = browser.execute(kReadPage);
  PageView view;
  for (const json& r : page.at("rows")) {
    view.rows.push_back({r.at("id").get<std::uint64_t>(), r.at("role"), r.at("term"),
                         r.at("commit"), r.at("applied"), r.at("snapshot"), r.at("lag"),
                         r.at("snapshot_enabled"), r.at("lead_enabled")});
  }
  view.leader_id = page.at("leader_id");
  view.leader_text = page.at("leader_text");
  view.outcome = page.at("outcome");
  view.outcome_state = page.at("outcome_state");
  return view;
}

// Reads the page every 100 ms until `condition` holds (the view that did
// is left in *view) or kPageBound passes (a failure naming what was
// awaited and what the page showed last).
::testing::AssertionResult await_page(HeadlessChromium& browser, const std::string& what,
                                      const std::function<bool(const PageView&)>& condition,
                                      PageView* view) {
  const auto deadline = Clock::now() + kPageBound;
  while (true) {
    *view = read_page(browser);
    if (condition(*view)) return ::testing::AssertionSuccess();
    if (Clock::now() >= deadline) {
      return ::testing::AssertionFailure()
             << "the page did not show " << what << " within " << kPageBound.count()
             << " ms; it showed " << view->describe();
    }
    std::this_thread::sleep_for(100ms);
  }
}

bool is_number(const std::string& text) {
  return !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
}

// Three members, each answering, exactly one the leader, named above the
// table as "server N, term T".
bool shows_three_members_and_a_leader(const PageView& v) {
  if (v.rows.size() != 3 || v.count_role("leader") != 1) return false;
  for (std::uint64_t id = 1; id <= 3; ++id) {
    const PageView::Row r = v.row(id);
    if (r.id == 0 || r.role == "unreachable" || !is_number(r.term) || !is_number(r.commit) ||
        !is_number(r.applied) || !is_number(r.snapshot)) {
      return false;
    }
    if (r.role == "leader" &&
        (v.leader_id != std::to_string(id) ||
         v.leader_text.rfind("server " + std::to_string(id) + ",", 0) != 0 || r.lag != "0")) {
      return false;
    }
  }
  return true;
}

json status_of(const std::string& address) {
  const HttpReply r = http(address, "GET", "/v1/status", "", 2000ms);
  return r.answered && r.status == 200 ? json::parse(r.body, nullptr, false) : json();
}

void save_screenshot_if_asked(HeadlessChromium& browser) {
  const char* path = std::getenv("KEEL_SCREENSHOT");
  if (path == nullptr || *path == '\0') return;
  const std::string png = browser.screenshot_png();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(png.data(), static_cast<std::streamsize>(png.size()));
  ASSERT_TRUE(out.good()) << "could not write the screenshot to " << path;
  std::fprintf(stderr, "cluster page screenshot saved to %s (%zu bytes)\n", path, png.size());
}

TEST(ClusterPage, shows_the_members_and_the_leader_follows_a_failover_and_its_buttons_act) {
  TempDir dir("keel-kv-page");
  KvCluster cluster(dir.path(), KvClusterOptions{});
  cluster.start_all();
  const std::optional<std::size_t> first = cluster.wait_for_ready_leader(kLeaderBound);
  ASSERT_TRUE(first) << "the cluster elected no ready leader";
  const std::size_t origin = *first == 1 ? 2 : 1;  // the page comes from a follower

  HeadlessChromium::Options window;
  window.window_width = 1150;  // the size of docs/cluster-page.png
  window.window_height = 560;
  HeadlessChromium browser(dir.path() / "browser", window);
  browser.navigate("http://" + cluster.http_address(origin) + "/");
  PageView view;
  ASSERT_TRUE(await_page(browser, "three members answering and one leader",
                         shows_three_members_and_a_leader, &view));
  const std::uint64_t old_leader = std::stoull(view.leader_id);

  // kill -9 the leader: the others elect another, and the page says so.
  cluster.kill(old_leader);
  ASSERT_TRUE(await_page(
      browser, "another leader and server " + std::to_string(old_leader) + " unreachable",
      [&](const PageView& v) {
        const PageView::Row old_row = v.row(old_leader);
        if (v.rows.size() != 3 || old_row.id == 0 || old_row.role != "unreachable" ||
            old_row.term != "\u2014" || v.count_role("leader") != 1 || !is_number(v.leader_id) ||
            v.leader_id == std::to_string(old_leader)) {
          return false;
        }
        const PageView::Row leader_row = v.row(std::stoull(v.leader_id));
        // The new leader tells how far behind the server it cannot reach
        // is: its own term-start entry at least.
        return leader_row.role == "leader" && is_number(old_row.lag) &&
               std::stoull(old_row.lag) > 0;
      },
      &view));
  const std::uint64_t new_leader = std::stoull(view.leader_id);

  // A snapshot of a survivor that did not serve the page (a request to
  // another origin): the page reports it, and the member's own status and
  // its row agree.
  std::vector<std::uint64_t> survivors;
  for (std::uint64_t id = 1; id <= 3; ++id) {
    if (id != old_leader) survivors.push_back(id);
  }
  const std::uint64_t other = survivors[0] != origin ? survivors[0] : survivors[1];
  const std::string snapshot_button =
      "tr[data-member-id='" + std::to_string(other) + "'] button[data-action=snapshot]";
  ASSERT_TRUE(await_page(
      browser, "server " + std::to_string(other) + "'s snapshot button enabled",
      [&](const PageView& v) { return v.row(other).snapshot_enabled; }, &view));
  const std::optional<std::string> button = browser.find(snapshot_button);
  ASSERT_TRUE(button) << "no element matches " << snapshot_button;
  browser.click(*button);
  const std::string taken = "Snapshot of server " + std::to_string(other) + " taken: index ";
  ASSERT_TRUE(await_page(
      browser, "the snapshot's success",
      [&](const PageView& v) { return v.outcome_state != "pending" && !v.outcome.empty(); },
      &view));
  ASSERT_EQ(view.outcome_state, "ok") << view.describe();
  ASSERT_EQ(view.outcome.rfind(taken, 0), 0u) << view.describe();
  const std::string index_text =
      view.outcome.substr(taken.size(), view.outcome.find(',') - taken.size());
  ASSERT_TRUE(is_number(index_text)) << view.describe();
  const json status = status_of(cluster.http_address(other));
  ASSERT_TRUE(status.is_object()) << "server " << other << " did not answer its status";
  EXPECT_EQ(status["snapshot_index"].get<std::uint64_t>(), std::stoull(index_text));
  ASSERT_TRUE(await_page(
      browser, "server " + std::to_string(other) + "'s snapshot index " + index_text,
      [&](const PageView& v) { return v.row(other).snapshot == index_text; }, &view));
  save_screenshot_if_asked(browser);

  // "Make leader" on the survivor that does not lead: the request goes to
  // the leader, and the page then names the new one.
  const std::uint64_t follower = survivors[0] != new_leader ? survivors[0] : survivors[1];
  const std::string lead_button =
      "tr[data-member-id='" + std::to_string(follower) + "'] button[data-action=transfer]";
  ASSERT_TRUE(await_page(
      browser, "server " + std::to_string(follower) + "'s make-leader button enabled",
      [&](const PageView& v) { return v.row(follower).lead_enabled; }, &view));
  const std::optional<std::string> lead = browser.find(lead_button);
  ASSERT_TRUE(lead) << "no element matches " << lead_button;
  browser.click(*lead);
  ASSERT_TRUE(await_page(
      browser, "the transfer's outcome",
      [&](const PageView& v) {
        return v.outcome_state != "pending" && v.outcome.rfind("Snapshot", 0) != 0;
      },
      &view));
  ASSERT_EQ(view.outcome_state, "ok") << view.describe();
  EXPECT_EQ(view.outcome, "Leadership moved: server " + std::to_string(follower) + " leads.");
  ASSERT_TRUE(await_page(
      browser, "server " + std::to_string(follower) + " as the leader",
      [&](const PageView& v) {
        return v.leader_id == std::to_string(follower) && v.row(follower).role == "leader";
      },
      &view));
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  std::string missing;
  if (chromium_binary().empty()) missing += " chromium";
  if (chromedriver_binary().empty()) missing += " chromedriver";
  if (!missing.empty()) {
    const char* ci = std::getenv("CI");
    const bool in_ci = ci != nullptr && std::string(ci) == "true";
    std::fprintf(stderr,
                 "%s: not found:%s (Debian's chromium and chromium-driver; "
                 "scripts/install-deps.sh installs them)%s\n",
                 in_ci ? "FAIL" : "SKIP", missing.c_str(),
                 in_ci ? "; under CI=true they must be installed" : "");
    return in_ci ? 1 : 77;
  }
  return RUN_ALL_TESTS();
}
