# docs/doxygen_filter.awk: keel's headers, as Doxygen should read them
# (Doxyfile's INPUT_FILTER; prints one line for every line it reads, so that
# warnings name the right line).
#
# keel's headers document themselves in plain // comments (STYLE.md), which
# Doxygen ignores. This turns them into documentation without changing the
# headers: the comment block that opens a file becomes its @file page, a //
# block before a declaration of a namespace, class, struct or enum scope
# becomes ///, and a trailing // after a member becomes ///<. Comments inside
# function bodies, `// --- section ---` rulers, NOLINT notes and the
# `}  // namespace` closers stay plain comments. A code sample in a comment
# (lines indented by three spaces or more after a blank comment line) is
# indented further, so that Doxygen's Markdown shows it as code.

# The text of a // comment (without the slashes) as documentation text.
function doc_text(text) {
  if (text ~ /^ *$/) {
    after_blank = 1
    in_sample = 0
    return text
  }
  if (text ~ /^    */ && (after_blank || in_sample)) {
    in_sample = 1
  } else {
    in_sample = 0
  }
  after_blank = 0
  return in_sample ? "    " text : text
}

function is_scope_opening(statement) {
  return statement ~ /(^|[^A-Za-z0-9_])(namespace|class|struct|enum|union)([^A-Za-z0-9_]|$)/ &&
         statement !~ /\(/
}

BEGIN { depth = 0; in_header = 1; statement = "" }

{
  line = $0

  # The comment block that opens the file: `// keel/raft.h — what it is`.
  if (in_header) {
    if (line ~ /^\/\//) {
      text = substr(line, 3)
      if (NR == 1) {
        sub(/^ /, "", text)
        split(text, words, " ")
        rest = substr(text, length(words[1]) + 1)
        sub(/^ *(—|--|-) */, " ", rest)
        print "/// @file " words[1] rest
      } else {
        print "///" doc_text(text)
      }
      next
    }
    in_header = 0
  }

  # Split the line into code and a trailing comment, skipping string and
  # character literals, and follow the braces of the code part.
  code = line
  comment = ""
  quote = ""
  n = length(line)
  for (i = 1; i <= n; i++) {
    c = substr(line, i, 1)
    if (quote != "") {
      if (c == "\\") { i++; continue }
      if (c == quote) quote = ""
      continue
    }
    if (c == "\"" || c == "'") { quote = c; continue }
    if (c == "/" && substr(line, i + 1, 1) == "/") {
      code = substr(line, 1, i - 1)
      comment = substr(line, i)
      break
    }
    if (c == "{") {
      depth++
      scope[depth] = is_scope_opening(statement)
      statement = ""
    } else if (c == "}") {
      if (depth > 0) depth--
      statement = ""
    } else if (c == ";") {
      statement = ""
    } else {
      statement = statement c
    }
  }
  if (code !~ /^[ \t]*$/) statement = statement " "

  at_scope_level = in_scope(depth)
  if (comment == "" || code !~ /^[ \t]*$/) after_blank = in_sample = 0
  if (comment == "" || !at_scope_level || comment ~ /^\/\/\// || comment ~ /^\/\/ *NOLINT/ ||
      comment ~ /^\/\/ *---/) {
    print line
    next
  }
  if (code ~ /^[ \t]*$/) {
    print code "///" doc_text(substr(comment, 3))
  } else if (code ~ /^[ \t]*}/) {
    print line
  } else {
    print code "///<" substr(comment, 3)
  }
}

# Whether the braces open at `level` are all namespace, class, struct or
# enum scopes (not a function body, where comments stay comments).
function in_scope(level,    k) {
  for (k = 1; k <= level; k++) if (!scope[k]) return 0
  return 1
}
