// apps/kv/cluster_page.h — the cluster page keel-kv serves at GET /
// (docs/kv.md, "The cluster page"): one HTML document with its style and
// script inline, nothing fetched from elsewhere. Every second its script
// asks each member for GET /v1/status (the member that served the page,
// then every member whose HTTP address the configuration names) and shows
// each one's role, term, commit, applied and snapshot index and replication
// lag, and the leader; a member that does not answer within a moment shows
// as unreachable. Its buttons POST to the member they act on:
// /v1/snapshot, /v1/cluster/transfer-leadership.
//
// Those are requests to other origins (another member's port), so the
// routes the page uses answer with Access-Control-Allow-Origin (http_api.cc).
//
// Thread safety: both functions return constants; any thread.
#pragma once

#include <string_view>

namespace keel::kv {

// The page, UTF-8.
std::string_view cluster_page_html();

// The Content-Security-Policy the page is served with: its own inline
// style and script, connections to any http(s) origin (the members), and
// nothing else: no external script, style, image, font or frame.
std::string_view cluster_page_security_policy();

}  // namespace keel::kv
