std = "lua54"
max_line_length = 120
self = false -- methods may ignore self
exclude_files = { "spec/fixtures/broken_urls/" } -- a syntax error on purpose
files["spec/"] = { std = "+busted" }
