-- Regression (issue 10, defect 6): protocol leniency (RFC 9112, and what
-- nginx does). "Content-Length : 5" was honoured, "Transfer-Encoding:
-- gzip, chunked" taken raw and HTTP/9.9 answered 200.
local e2e = require "e2e"

local CASES = {
  { "whitespace between a header name and its colon", 400,
    "POST /publish/x/ HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello" },
  { "a tab between a header name and its colon", 400,
    "GET /echo/1/ HTTP/1.1\r\nHost: x\r\nX-A\t: 1\r\n\r\n" },
  { "whitespace inside a header name", 400, "GET /echo/1/ HTTP/1.1\r\nHost: x\r\nX A: 1\r\n\r\n" },
  { "a header line starting with whitespace", 400, "GET /echo/1/ HTTP/1.1\r\n Host: x\r\n\r\n" },
  { "Transfer-Encoding: gzip, chunked", 501,
    "POST /publish/x/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n" },
  { "Transfer-Encoding: gzip", 501, "POST /publish/x/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nhi" },
  { "Transfer-Encoding: chunked, chunked", 501,
    "POST /publish/x/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n" },
  { "two Transfer-Encoding headers", 501,
    "POST /publish/x/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
      .. "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" },
  { "Transfer-Encoding with Content-Length", 400,
    "POST /publish/x/ HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" },
  { "Transfer-Encoding in an HTTP/1.0 request", 400,
    "POST /publish/x/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" },
  { "HTTP/9.9", 505, "GET /echo/1/ HTTP/9.9\r\nHost: x\r\n\r\n" },
  { "HTTP/1.2", 505, "GET /echo/1/ HTTP/1.2\r\nHost: x\r\n\r\n" },
  { "HTTP/2.0 in HTTP/1 syntax", 505, "GET /echo/1/ HTTP/2.0\r\nHost: x\r\n\r\n" },
  { "HTTP/0.9", 505, "GET /echo/1/ HTTP/0.9\r\nHost: x\r\n\r\n" },
  -- What Debian's lenient build of http-parser lets through (found by spec/fuzz/http_fuzz.c)
  { "a version token that is not HTTP/x.y", 400, "GET /echo/1/ HXXP?1.1\r\nHost: x\r\n\r\n" },
  { "a bare CR ending a header line", 400, "GET /echo/1/ HTTP/1.1\r\nX: \rContent-Length: 3\r\n\r\nabc" },
  { "a bare CR in the blank line", 400, "GET /echo/1/ HTTP/1.1\r\nHost: x\r\n\rXGET /echo/2/ HTTP/1.1\r\n\r\n" },
  { "a folded header line", 400, "GET /echo/1/ HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n" },
  { "a NUL first in a header value", 400, "GET /echo/1/ HTTP/1.1\r\nHost: x\r\nX-A: \0evil\r\n\r\n" },
  { "a control byte in a header value", 400, "GET /echo/1/ HTTP/1.1\r\nHost: x\r\nX-A: a\1b\r\n\r\n" },
  { "chunk data not followed by CRLF", 400,
    "POST /header/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n" },
  { "a chunk size byte past 0x7f", 400,
    "POST /header/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\128\r\n\r\n"
      .. "GET /smuggled/ HTTP/1.1\r\n\r\n" },
  { "a bare CR after a chunk size", 400,
    "POST /header/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\rXhello\r\n0\r\n\r\n" },
  { "a CONNECT with a body", 400,
    "CONNECT x:443 HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\nGET /echo/1/ HTTP/1.1\r\nHost: x\r\n\r\n" },
}

describe("#e2e protocol leniency (issue 10)", function()
  local server = e2e.serve(setup, teardown, "spec/fixtures/hostile")

  for _, case in ipairs(CASES) do
    it(case[1] .. " gets " .. case[2] .. " and the connection closes", function()
      local resp, closed = e2e.raw_request(server.port, case[3])
      assert.equal(case[2], resp.status, resp.status_line)
      assert.is_true(closed)
    end)
  end

  it("reads chunked alone, in any case, and HTTP/1.0 and 1.1", function()
    local resp = e2e.raw_request(server.port,
      "POST /publish/x/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n"
        .. "2\r\nhi\r\n0\r\n\r\n")
    assert.equal(200, resp.status)
    assert.equal(200, e2e.raw_request(server.port, "GET /echo/1/ HTTP/1.0\r\n\r\n").status)
    assert.equal(200, e2e.get(server.port, "/echo/1/").status)
  end)

  it("does not take a chunked body's trailers as headers", function()
    local resp = e2e.raw_request(server.port,
      "POST /header/?name=authorization HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        .. "Connection: close\r\n\r\n1\r\na\r\n0\r\nAuthorization: Bearer smuggled\r\n\r\n")
    assert.equal(200, resp.status)
    assert.equal("- 1", resp.body)
  end)

  it("refuses a bare LF in a chunked body's framing but takes one in the head", function()
    local resp = e2e.raw_request(server.port,
      "POST /header/ HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\nConnection: close\n\n2\r\nhi\r\n0\r\n\r\n")
    assert.equal(200, resp.status)
    assert.equal("- 2", resp.body)
    assert.equal(400, e2e.raw_request(server.port,
      "POST /header/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\nhi\r\n0\r\n\r\n").status)
  end)

  it("logs each refusal as one warning and serves everyone else", function()
    local log = server:log()
    assert.matches("refused 127%.0%.0%.1: 505 ", log)
    assert.matches("refused 127%.0%.0%.1: 501 ", log)
    assert.equal(200, e2e.get(server.port, "/echo/2/").status)
  end)
end)
