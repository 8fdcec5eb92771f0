"""The malformed / request-smuggling corpus of test_framing.py, as a table.

Each entry: (name, raw bytes sent on a fresh connection, statuses allowed). A closed connection without
any response is always allowed too. Where a lenient parser could see a second request, the payload carries
``GET /smuggled`` after (or inside) the malformed one; the test checks that the upstream never receives
anything from any entry (not /smuggled, not the first request).
"""

SMUG = b"GET /smuggled HTTP/1.1\r\nHost: test.local\r\n\r\n"
HOST = b"Host: test.local\r\n"
R400 = (400,)
R400_413 = (400, 413)
R400_501 = (400, 501)
R400_505 = (400, 505)
R431 = (400, 431)


def post(headers, body=b"", target=b"/framing", version=b"HTTP/1.1", host=True):
    """A POST with the given raw header lines (bytes, each without CRLF), the body, then SMUG."""
    head = b"POST " + target + b" " + version + b"\r\n" + (HOST if host else b"")
    head += b"".join(h + b"\r\n" for h in headers)
    return head + b"\r\n" + body + SMUG


def get(extra_headers=b"", line=b"GET /framing HTTP/1.1", host=True):
    return line + b"\r\n" + (HOST if host else b"") + extra_headers + b"\r\n" + SMUG


CASES = [
    # --- Content-Length and Transfer-Encoding together
    ("cl_then_te", post([b"Content-Length: 6", b"Transfer-Encoding: chunked"], b"0\r\n\r\n"), R400),
    ("te_then_cl", post([b"Transfer-Encoding: chunked", b"Content-Length: 6"], b"0\r\n\r\n"), R400),
    ("cl_te_http10", post([b"Content-Length: 5", b"Transfer-Encoding: chunked"], b"0\r\n\r\n", version=b"HTTP/1.0"),
     R400),
    # --- Content-Length values
    ("cl_duplicate_same", post([b"Content-Length: 5", b"Content-Length: 5"], b"hello"), R400),
    ("cl_duplicate_different", post([b"Content-Length: 5", b"Content-Length: 45"], b"hello"), R400),
    ("cl_plus_sign", post([b"Content-Length: +5"], b"hello"), R400),
    ("cl_minus_sign", post([b"Content-Length: -5"], b"hello"), R400),
    ("cl_inner_space", post([b"Content-Length: 1 5"], b"hello"), R400),
    ("cl_comma_list_same", post([b"Content-Length: 5, 5"], b"hello"), R400),
    ("cl_comma_list_different", post([b"Content-Length: 5, 45"], b"hello"), R400),
    ("cl_non_digit", post([b"Content-Length: 5a"], b"hello"), R400),
    ("cl_hex", post([b"Content-Length: 0x5"], b"hello"), R400),
    ("cl_decimal_point", post([b"Content-Length: 5.0"], b"hello"), R400),
    ("cl_empty", post([b"Content-Length: "], b"hello"), R400),
    ("cl_huge", post([b"Content-Length: 184467440737095516160"], b"hello"), R400_413),
    # --- Transfer-Encoding other than exactly "chunked"
    ("te_gzip", post([b"Transfer-Encoding: gzip"], b"0\r\n\r\n"), R400_501),
    ("te_gzip_chunked", post([b"Transfer-Encoding: gzip, chunked"], b"0\r\n\r\n"), R400_501),
    ("te_identity", post([b"Transfer-Encoding: identity"], b"0\r\n\r\n"), R400_501),
    ("te_chunked_chunked_list", post([b"Transfer-Encoding: chunked, chunked"], b"0\r\n\r\n"), R400_501),
    ("te_chunked_twice_headers", post([b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"], b"0\r\n\r\n"),
     R400_501),
    ("te_xchunked", post([b"Transfer-Encoding: xchunked"], b"0\r\n\r\n"), R400_501),
    ("te_chunkedx", post([b"Transfer-Encoding: chunkedx"], b"0\r\n\r\n"), R400_501),
    ("te_obs_fold", post([b"Transfer-Encoding:", b" chunked"], b"0\r\n\r\n"), R400_501),
    ("te_chunked_obs_fold_continued", post([b"Transfer-Encoding: chunked", b" , identity", b"Content-Length: 5"],
                                           b"0\r\n\r\n"), R400_501),
    ("te_vertical_tab", post([b"Transfer-Encoding: \x0bchunked"], b"0\r\n\r\n"), R400_501),
    ("te_space_before_colon", post([b"Transfer-Encoding : chunked", b"Content-Length: 5"], b"0\r\n\r\n"), R400),
    ("te_in_http10", post([b"Transfer-Encoding: chunked"], b"5\r\nhello\r\n0\r\n\r\n", version=b"HTTP/1.0"),
     R400_501),
    # --- bad chunks
    ("chunk_size_negative", post([b"Transfer-Encoding: chunked"], b"-5\r\nhello\r\n0\r\n\r\n"), R400),
    ("chunk_size_hex_overflow", post([b"Transfer-Encoding: chunked"], b"1" + b"0" * 20 + b"5\r\nhello\r\n0\r\n\r\n"),
     R400_413),
    ("chunk_size_not_hex", post([b"Transfer-Encoding: chunked"], b"zz\r\nhello\r\n0\r\n\r\n"), R400),
    ("chunk_size_empty", post([b"Transfer-Encoding: chunked"], b"\r\nhello\r\n0\r\n\r\n"), R400),
    ("chunk_size_0x_prefix", post([b"Transfer-Encoding: chunked"], b"0x5\r\nhello\r\n0\r\n\r\n"), R400),
    ("chunk_data_missing_crlf", post([b"Transfer-Encoding: chunked"], b"5\r\nhelloXX0\r\n\r\n"), R400),
    ("chunk_size_bare_lf", post([b"Transfer-Encoding: chunked"], b"5\nhello\r\n0\r\n\r\n"), R400),
    ("chunk_last_bare_lf", post([b"Transfer-Encoding: chunked"], b"5\r\nhello\r\n0\n\n"), R400),
    # --- Host
    ("host_missing_http11", get(host=False), R400),
    ("host_duplicate_different", get(b"Host: other.test\r\n"), R400),
    ("host_duplicate_same", get(HOST), R400),
    ("host_with_space", get(b"", line=b"GET /framing HTTP/1.1\r\nHost: exa mple.test", host=False), R400),
    # --- header syntax
    ("obs_fold_space", get(b"X-Foo: a\r\n  b\r\n"), R400),
    ("obs_fold_tab", get(b"X-Foo: a\r\n\tb\r\n"), R400),
    ("bare_cr_in_value", get(b"X-Foo: a\rb\r\n"), R400),
    ("bare_cr_line_end", get(b"X-Foo: a\rX-Bar: b\r\n"), R400),
    ("bare_cr_request_line", b"GET /framing HTTP/1.1\rHost: test.local\r\n\r\n" + SMUG, R400),
    ("bare_lf_everywhere", b"GET /framing HTTP/1.1\nHost: test.local\n\n" + SMUG, R400),
    ("bare_lf_one_header", get(b"X-Foo: a\nX-Bar: b\r\n"), R400),
    ("bare_lf_end_of_head", b"GET /framing HTTP/1.1\r\nHost: test.local\r\n\n" + SMUG, R400),
    ("space_before_colon", get(b"X-Foo : a\r\n"), R400),
    ("tab_before_colon", get(b"X-Foo\t: a\r\n"), R400),
    ("space_before_colon_cl", post([b"Content-Length : 5"], b"hello"), R400),
    ("nul_in_value", get(b"X-Foo: a\x00b\r\n"), R400),
    ("nul_in_name", get(b"X-F\x00oo: a\r\n"), R400),
    ("ctl_in_name", get(b"X-F\x01oo: a\r\n"), R400),
    ("del_in_name", get(b"X-F\x7foo: a\r\n"), R400),
    ("space_in_name", get(b"X Foo: a\r\n"), R400),
    ("separator_in_name", get(b"X(Foo): a\r\n"), R400),
    ("empty_name", get(b": a\r\n"), R400),
    ("no_colon", get(b"X-Foo a\r\n"), R400),
    # --- request line
    ("method_invalid_chars", get(line=b"G(T /framing HTTP/1.1"), R400_501),
    ("method_ctl", get(line=b"GE\x01T /framing HTTP/1.1"), R400_501),
    ("request_line_double_space", get(line=b"GET  /framing HTTP/1.1"), R400),
    ("request_line_trailing_space", get(line=b"GET /framing HTTP/1.1 "), R400),
    ("request_line_leading_space", get(line=b" GET /framing HTTP/1.1"), R400),
    ("request_line_tabs", get(line=b"GET\t/framing\tHTTP/1.1"), R400),
    ("request_line_missing_version", get(line=b"GET /framing"), R400),
    ("version_absurd", get(line=b"GET /framing HTTP/9.9"), R400_505),
    ("version_garbage", get(line=b"GET /framing HTTP/1.x"), R400_505),
    ("version_lowercase", get(line=b"GET /framing http/1.1"), R400_505),
    ("version_long", get(line=b"GET /framing HTTP/11.1"), R400_505),
    # --- request target
    ("target_no_slash", get(line=b"GET framing HTTP/1.1"), R400),
    ("target_ctl", get(line=b"GET /fra\x01ming HTTP/1.1"), R400),
    ("target_del", get(line=b"GET /fra\x7fming HTTP/1.1"), R400),
    ("target_nul", get(line=b"GET /fra\x00ming HTTP/1.1"), R400),
    ("target_angle_quote", get(line=b'GET /fra<"ming"> HTTP/1.1'), R400),
    ("target_asterisk_get", get(line=b"GET * HTTP/1.1"), R400),
    ("connect_method", b"CONNECT test.local:443 HTTP/1.1\r\nHost: test.local:443\r\n\r\n" + SMUG, (400, 405, 501)),
    # --- size
    ("header_section_64k", get(b"X-Big: " + b"a" * (64 * 1024) + b"\r\n"), R431),
]
