#!/usr/bin/env python3
"""Generate the SIP parser test vectors in valid/ and invalid/, and MANIFEST.

Usage:  python3 gen_vectors.py        (run from anywhere; writes next to this file)

Every vector is written from bytes assembled here so that line ends (CRLF),
Content-Length values, NUL/control bytes and non-UTF-8 bytes are exact.

The vectors are our own messages, modelled on (not copied from) the
categories of RFC 4475 "SIP Torture Test Messages" and RFC 5118 "SIP Torture
Test Messages for IPv6".  Each vector below carries a comment naming the RFC
section / test id it is modelled on and why it is valid or invalid *for this
parser* (framing, start-line, header and value rules of the vocals parser;
the expectation classes are listed below).

Expectation column of MANIFEST:
  ok                 the message must parse
  <error-kind>       the parser must reject it with exactly that kind:
                     start-line version request-uri header-syntax
                     missing-header duplicate-header header-value
                     content-length truncated-body cseq-mismatch too-large
                     incomplete
Optional third column `stream`: parse with stream (TCP) framing instead of
datagram (UDP) framing.

Design rule for invalid vectors: each one contains exactly ONE defect; the
rest of the message is a well-formed request/response (all of Via, From, To,
Call-ID, CSeq present, CSeq method matching, exact Content-Length), so the
expected error kind is unambiguous.

Parser limits the size vectors are built against: message <= 65536 bytes,
<= 256 header lines, a single header line <= 16384 bytes.  Valid vectors stay
well below these limits (checked by sanity_check()).
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CRLF = b"\r\n"

MAX_MESSAGE = 65536
MAX_HEADER_LINES = 256
MAX_LINE = 16384


def b(x):
    """str -> UTF-8 bytes; bytes pass through."""
    return x if isinstance(x, bytes) else x.encode("utf-8")


def body_lines(*lines):
    """A body made of CRLF-terminated lines (SDP, multipart, text)."""
    return b"".join(b(l) + CRLF for l in lines)


def msg(start, headers, body=b"", trailer=b"", cl=None):
    """Assemble a message.

    start    -- start line without CRLF
    headers  -- list of raw header lines (str or bytes) without CRLF.
                A line beginning with SP/HTAB is a folded continuation line.
                The text "{CL}" in any line is replaced by len(body).
    body     -- body bytes
    trailer  -- bytes appended after the body (extra datagram bytes)
    cl       -- override the value substituted for {CL}
    """
    body = b(body)
    n = str(len(body) if cl is None else cl).encode()
    out = b(start) + CRLF
    for h in headers:
        out += b(h).replace(b"{CL}", n) + CRLF
    out += CRLF + body + b(trailer)
    return out


def sdp(addr="192.0.2.10", ip="IP4", sess="2890844526", port=49170):
    return body_lines(
        "v=0",
        "o=- %s %s IN %s %s" % (sess, sess, ip, addr),
        "s=-",
        "c=IN %s %s" % (ip, addr),
        "t=0 0",
        "m=audio %d RTP/AVP 0 8 101" % port,
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=sendrecv",
    )


VECTORS = []  # (dir, name, expect, stream, data)


def vec(kind, name, expect, data, stream=False):
    assert kind in ("valid", "invalid")
    assert (expect == "ok") == (kind == "valid"), name
    assert all(v[1] != name for v in VECTORS), "duplicate name " + name
    VECTORS.append((kind, name, expect, stream, data))


def valid(name, data, stream=False):
    vec("valid", name, "ok", data, stream)


def invalid(name, expect, data, stream=False):
    vec("invalid", name, expect, data, stream)


# A plain, known-good skeleton used as the base of most invalid vectors so
# that exactly one thing is wrong in each of them.
def base_headers(method="OPTIONS", cseq="4711", via=None, frm=None, to=None,
                 callid=None, mf="70", extra=(), cl_line="Content-Length: {CL}",
                 omit=()):
    h = []
    if "via" not in omit:
        h.append(via or "Via: SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74bf9")
    if "maxf" not in omit and mf is not None:
        h.append("Max-Forwards: " + mf)
    if "from" not in omit:
        h.append(frm or "From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl")
    if "to" not in omit:
        h.append(to or "To: Bob <sip:bob@biloxi.example.com>")
    if "callid" not in omit:
        h.append(callid or "Call-ID: 3848276298220188511@atlanta.example.com")
    if "cseq" not in omit:
        h.append("CSeq: %s %s" % (cseq, method))
    h.extend(extra)
    if cl_line is not None:
        h.append(cl_line)
    return h


def simple(method="OPTIONS", ruri="sip:bob@biloxi.example.com", body=b"", **kw):
    return msg("%s %s SIP/2.0" % (method, ruri), base_headers(method=method, **kw), body)


# ===========================================================================
# VALID -- RFC 4475 section 3.1.1 (parser tests, valid messages)
# ===========================================================================

# RFC 4475 3.1.1.1 "A Short Tortuous INVITE" (wsinv), part 1 of 2: the parts
# that only stress header-line framing.  Header names in odd case, SP and HTAB
# between name and colon, a value that starts on a folded line, an unknown
# header folded over three lines (SP and HTAB continuation), an unknown header
# whose value is nothing but separators (kept verbatim), an empty Subject via
# compact form, leading zeros in Max-Forwards/CSeq, a quoted display name with
# \" and \\ escapes.  All legal per RFC 3261 -> ok.
valid("wsinv-header-framing", msg(
    "INVITE sip:alice@atlanta.example.com;transport=udp;unknownparam SIP/2.0",
    [
        "vIa: SIP/2.0/UDP pc33.example.com;branch=z9hG4bKnashds8;received=192.0.2.101",
        "TO   :",
        " <sip:alice@atlanta.example.com>",
        "fROM\t: " + r'"Bob \"the builder\" \\o/" <sip:bob@biloxi.example.com>;tag=1928301774',
        "MAX-FORWARDS: 0068",
        "Call-ID\t: wsinv-framing.a84b4c76e66710@pc33.example.com",
        "cseq: 0009 INVITE",
        "NewFangledHeader:   a newfangled value",
        " continued on a second line",
        "\tand a tab-folded third line",
        "UnknownHeaderWithOddValue: ;;,,;;,;",
        "s:",
        "Content-Type: application/sdp",
        "Content-Length   : {CL}",
    ],
    sdp("192.0.2.101"),
))

# RFC 4475 3.1.1.1 (wsinv), part 2 of 2: linear white space inside structured
# values.  RFC 3261 defines SLASH/SEMI/EQUAL/COMMA as SWS-sep-SWS, so LWS
# (including folds) is legal around the '/' of the Via sent-protocol, around
# ';' and '=' of parameters and after ','.  Two Via header lines, one holding
# two comma-separated values; To in addr-spec form with a spaced tag; From
# with lots of LWS; compact Contact with spaced params; CSeq method on a
# folded line.  -> ok.
valid("wsinv-lws-in-values", msg(
    "INVITE sip:carol@chicago.example.com;unknownparam SIP/2.0",
    [
        "Via  : SIP  /   2.0",
        " /UDP",
        "    192.0.2.44;branch=z9hG4bK7ab1x0",
        "v:  SIP  / 2.0  / TCP     relay.example.com   ;",
        "  branch  =   z9hG4bKq8w7e6  ,",
        " SIP  /    2.0   / UDP  192.0.2.201   ; branch=",
        " z9hG4bKzz31337",
        "To :",
        " sip:carol@chicago.example.com ;   tag    = 77aa9981x",
        "from   : " + r'"Carol \\ Dispatch \"Ops\""       <sip:dispatch@example.com>',
        "  ;",
        "  tag = k3j4h5",
        "Max-Forwards: 70",
        "Call-ID: wsinv-lws.8f7d6c5b@192.0.2.44",
        "cseq: 12",
        "  INVITE",
        "m:" + r'"Quoted \"x\" name" <sip:dispatch@relay.example.com> ; lvl =',
        "      high ;",
        "  flagparam ; q = 0.7",
        "Route:",
        " <sip:svc.example.com;lr;unknownwith=value;unknown-no-value>",
        "Content-Length: {CL}",
    ],
))

# Modelled on RFC 4475 3.1.1.2 "Wide Range of Valid Characters" (intmeth),
# minus the Request-URI user part (see rfc3261-user-reserved-chars) and minus
# the escaped BEL/NUL/DEL quoted-pairs in the To display name; the RFC's own
# bytes, with those, are valid/rfc4475-intmeth.sip below.
# Method and CSeq method are an unusual-but-legal token; branch, tag, param
# names, header name are full-range tokens; Call-ID uses every `word`
# character; a param value is a quoted UTF-8 string; Max-Forwards 255 is the
# upper bound.  -> ok.
WEIRD_METHOD = "!odd-Method9876543210_*+`.%surely'~"
valid("intmeth-wide-range-chars", msg(
    WEIRD_METHOD + " sip:mundane@example.com SIP/2.0",
    [
        "Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~",
        'To: "quoted \\\\ name with ; and , and <angle>" <sip:mundane@example.com>',
        "From: tok1~` tok2'+_ tok3*%!.- <sip:other@example.com>"
        ";fromParam''~+*_!.-%=\"\u0440\u0430\u0431\u043e\u0442\u0430\u0435\u0442\";tag=_tok~1'+`*%!-.",
        "Call-ID: widechars.w%ZK-!.*_+'@word`~)(><:\\/\"][?}{",
        "CSeq: 139122385 " + WEIRD_METHOD,
        "Max-Forwards: 255",
        "extensionHeader-!.%*+_`'~: \u20ac \u00fcn\u00efc\u00f6d\u00e9 \u260e \u5927\u4e08\u592b",
        "Content-Length: {CL}",
    ],
))

# RFC 4475 3.1.1.2 (intmeth) Request-URI part + 3.1.1.9 "Semicolon-Separated
# Parameters in URI User Part" (semiuri).  RFC 3261 user = unreserved /
# escaped / user-unreserved (& = + $ , ; ? /), password allows & = + $ ,.
# The '?' and ';' here are inside the userinfo (before '@'), so they are NOT
# URI headers/params.  -> ok.
valid("intmeth-semiuri-user-chars", msg(
    "OPTIONS sip:2_odd.URI~(no-doubt!)&isn't+it$/wild?,/;;*:&it+has=2,odd!*pas$wo~d_as.well(right)@example.com SIP/2.0",
    [
        "Via: SIP/2.0/UDP host2.example.com;branch=z9hG4bKsemi0001",
        "To: <sip:user;par=u%40example.net@example.com>",
        "From: <sip:caller;x=y@example.org>;tag=sem1x9",
        "Call-ID: semiuri.0ha0isnda977644900765@192.0.2.4",
        "CSeq: 8 OPTIONS",
        "Max-Forwards: 70",
        "Accept: application/sdp, application/pkcs7-mime, multipart/mixed",
        "Content-Length: {CL}",
    ],
))

# RFC 4475 3.1.1.3 "Valid Use of the % Escaping Mechanism" (esc01).
# Escaped characters in Request-URI user (including an escaped ':' and '@'),
# in To/From users, in Contact URI param names and values; compact Call-ID
# 'i' and upper-case compact Content-Type 'C'.  -> ok.
valid("esc01-percent-escapes", msg(
    "INVITE sip:sips%3Abob%40example.com@example.net SIP/2.0",
    [
        "To: sip:%62o%62@example.com",
        "From: <sip:I%20have%20spaces@example.net>;tag=77310",
        "Max-Forwards: 87",
        "i: esc01.239409asdfakjkn23onasd0-3234",
        "CSeq: 234234 INVITE",
        "Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw",
        "C: application/sdp",
        "Contact:",
        "  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>",
        "Content-Length: {CL}",
    ],
    sdp("192.0.2.55"),
))

# RFC 4475 3.1.1.4 "Escaped Nulls in URIs" (escnull).  %00 in URI users is a
# legal escape (the bytes on the wire are '%','0','0', no NUL octet).  Two
# separate Contact header lines; "L:0" = compact Content-Length, upper case,
# no space after the colon.  -> ok.
valid("escnull-escaped-nul-in-uri", msg(
    "REGISTER sip:example.com SIP/2.0",
    [
        "To: sip:nul-%00-nul@example.com",
        "From: sip:nul-%00-nul@example.com;tag=839923423",
        "Max-Forwards: 70",
        "Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd",
        "CSeq: 14398234 REGISTER",
        "Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw",
        "Contact: <sip:%00@host5.example.com>",
        "Contact: <sip:%00%00@host5.example.com;p=%00>",
        "L:0",
    ],
))

# RFC 4475 3.1.1.5 "Use of % When It Is Not an Escape" (esc02).  '%' is a
# token character, so "RE%47IST%45R" is simply an unknown method (CSeq
# matches it literally); "%Z%45" inside a quoted display name is just text;
# "C%6Fntact" is an unknown header name, NOT Contact.  -> ok.
valid("esc02-percent-not-escape", msg(
    "RE%47IST%45R sip:registrar.example.com SIP/2.0",
    [
        'To: "%Z%45" <sip:resource@example.com>',
        'From: "%Z%45" <sip:resource@example.com>;tag=f232jadfj23',
        "Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf",
        "Via: SIP/2.0/TCP host.example.com;rport;branch=z9hG4bK209323",
        "CSeq: 29344 RE%47IST%45R",
        "Max-Forwards: 70",
        "Contact: <sip:alias1@host1.example.com>",
        "C%6Fntact: <sip:alias2@host2.example.com>",
        "Contact: <sip:alias3@host3.example.com>",
        "l: {CL}",
    ],
))

# RFC 4475 3.1.1.6 "Message with No LWS between Display Name and <" (lwsdisp).
# Both a token display name and a quoted one glued to '<'.  -> ok.
valid("lwsdisp-no-space-before-angle", msg(
    "OPTIONS sip:user@example.com SIP/2.0",
    [
        "To: sip:user@example.com",
        "From: caller<sip:caller@example.com>;tag=323",
        "Contact: \"Caller Phone\"<sip:caller@pc7.example.com>",
        "Max-Forwards: 70",
        "Call-ID: lwsdisp.1234abcd@funky.example.com",
        "CSeq: 60 OPTIONS",
        "Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw",
        "l: {CL}",
    ],
))


# RFC 4475 3.1.1.7 "Long Values in Header Fields" (longreq).  Long display
# name, long tag, long Request-URI user, long Call-ID, a long unknown header
# (~12 KB on one line, under the 16384-byte line cap), 40 Via lines and a long
# Contact param.  Total stays well under 64 KB and 256 lines.  -> ok.
def _longreq():
    longname = "I have a user name of " + "extreme " * 50 + "proportion"
    longtag = "longreq.one" + "really" * 120 + "long"
    longuser = "amazinglylongcallername" + "x" * 300
    vias = ["Via: SIP/2.0/TCP sip%d.example.com:5060;branch=z9hG4bK.%s%d"
            % (i, "d" * 40, i) for i in range(40)]
    h = [
        'To: "%s" <sip:%s@example.net>;tag=%s' % (longname, longuser, longtag),
        "From: sip:%s@example.net;tag=%s" % (longuser, "12" * 150),
        "Call-ID: longreq.one" + "really" * 80 + "longcallid",
        "CSeq: 3882340 INVITE",
        "Unknown-" + "Long" * 40 + "-Name: unknown-" + "long" * 40 + "-value; unknown-"
        + "long" * 40 + "-parameter-name = unknown-" + "long" * 40 + "-parameter-value",
    ] + vias + [
        "Max-Forwards: 70",
        "Contact: <sip:%s@host5.example.net;%s=%s>" % (longuser, "p" * 200, "v" * 400),
        "X-Very-Long-Opaque: " + ("0123456789abcdef" * 750),  # 12000 bytes of value
        "Content-Type: application/sdp",
        "l: {CL}",
    ]
    return msg("INVITE sip:%s@example.com SIP/2.0" % longuser, h, sdp("192.0.2.15"))


valid("longreq-long-values", _longreq())

# RFC 4475 3.1.1.8 "Extra Trailing Octets in a UDP Datagram" (dblreq).
# A REGISTER with Content-Length 0 followed, in the same datagram, by a whole
# INVITE.  Datagram framing takes exactly Content-Length body bytes and
# ignores the rest.  -> ok.
valid("dblreq-extra-datagram-bytes", msg(
    "REGISTER sip:example.com SIP/2.0",
    [
        "To: sip:j.user@example.com",
        "From: sip:j.user@example.com;tag=43251j3j324",
        "Max-Forwards: 8",
        "I: dblreq.0ha0isndaksdj99sdfafnl3lk233412",
        "Contact: sip:j.user@host.example.com",
        "CSeq: 8 REGISTER",
        "Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492",
        "Content-Length: 0",
    ],
    trailer=msg(
        "INVITE sip:joe@example.com SIP/2.0",
        [
            "t: sip:joe@example.com",
            "From: sip:caller@example.net;tag=141334",
            "Max-Forwards: 8",
            "Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15",
            "CSeq: 8 INVITE",
            "Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234",
            "Content-Type: application/sdp",
            "Content-Length: {CL}",
        ],
        sdp("192.0.2.15"),
    ),
))

# RFC 4475 3.1.1.10 "Varied and Unknown Transport Types" (transports).
# Via transport is any token: UDP, SCTP, TLS, TLS-SCTP, WSS and made-up ones.
valid("transports-varied", msg(
    "OPTIONS sip:user@example.com SIP/2.0",
    [
        "To: sip:user@example.com",
        "From: <sip:caller@example.com>;tag=323",
        "Max-Forwards: 70",
        "Call-ID: transports.kijh4akdnaqjkwendsasfdj",
        "Accept: application/sdp",
        "CSeq: 60 OPTIONS",
        "Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw",
        "Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf",
        "Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj",
        "Via: SIP/2.0/TLS-SCTP t4.example.com;branch=z9hG4bK8m2nd0",
        "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKws77",
        "Via: SIP/2.0/UNKNOWN t5.example.com;branch=z9hG4bKasd0f3en",
        "Via: SIP/2.0/PigeonPost t6.example.com;branch=z9hG4bK0a9idfnee",
        "Via: SIP/2.0/TCP t7.example.com;branch=z9hG4bK0a9idfnee",
        "l: {CL}",
    ],
))

# RFC 4475 3.1.1.11 "Multipart MIME Message" (mpart01).  multipart/mixed with
# a quoted boundary parameter, an SDP part and a binary-ish part containing
# non-UTF-8 octets; Content-Length covers the whole multipart body.  -> ok.
_BOUNDARY = "=_vocals-7a9cbec02ceef655"
_MPART = (
    body_lines(
        "--" + _BOUNDARY,
        "Content-Type: application/sdp",
        "",
    )
    + sdp("192.0.2.99")
    + body_lines(
        "--" + _BOUNDARY,
        "Content-Type: application/octet-stream",
        "Content-Transfer-Encoding: binary",
        "",
    )
    + bytes(range(0x80, 0x100)) + CRLF
    + body_lines("--" + _BOUNDARY + "--")
)
valid("mpart01-multipart-body", msg(
    "MESSAGE sip:kumiko@example.org SIP/2.0",
    [
        "Via: SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bKmp17a",
        "Max-Forwards: 70",
        "To: <sip:kumiko@example.org>",
        "From: <sip:notifier@example.com>;tag=235242",
        "Call-ID: mpart01.sj3p42kslkmwnnasd3422j",
        "CSeq: 2 MESSAGE",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed;boundary="%s"' % _BOUNDARY,
        "Content-Length: {CL}",
    ],
    _MPART,
))

# RFC 4475 3.1.1.12 "Unusual Reason Phrase" (unreason).  The reason phrase is
# UTF-8 text with symbols, digits and punctuation.  -> ok.
valid("unreason-utf8-reason-phrase", msg(
    "SIP/2.0 183 \u2248 progr\u00e8s \u00b7 \u9032\u884c\u4e2d \u2014 \u00abstill ringing\u00bb 100 = 2**2 * 5**2 - 0x!",
    [
        "Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923",
        "Call-ID: unreason.1234ksdfak3j2erwedfsASdf",
        "CSeq: 35 INVITE",
        "From: sip:user@example.com;tag=11141343",
        "To: sip:user@example.edu;tag=2229",
        "Contact: <sip:user@host198.example.com>",
        "Content-Type: application/sdp",
        "Content-Length: {CL}",
    ],
    sdp("192.0.2.198"),
))

# RFC 4475 3.1.1.13 "Empty Reason Phrase" (noreason).  Status-Line is
# "SIP/2.0 100 " -- the SP after the code is present, the reason is empty.
valid("noreason-empty-reason-phrase", msg(
    "SIP/2.0 100 ",
    [
        "Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe",
        "Call-ID: noreason.asndj203insdf99223ndf",
        "CSeq: 35 INVITE",
        "From: <sip:user@example.com>;tag=39ansfi3",
        "To: <sip:user@example.edu>;tag=902jndnke3",
        "Content-Length: {CL}",
    ],
))

# ===========================================================================
# VALID -- RFC 4475 sections 3.2-3.4 (transaction / application semantics,
# backward compatibility).  These are syntactically fine; whatever is odd
# about them is for the transaction layer or application to answer.
# ===========================================================================

# RFC 4475 3.2.1 "Missing Transaction Identifier" (badbranch) + RFC 2543
# style branch.  First Via has the bare magic cookie as branch, second has a
# branch without the cookie, third has no branch at all.  -> ok at parse time.
valid("badbranch-no-magic-cookie", msg(
    "OPTIONS sip:user@example.com SIP/2.0",
    [
        "To: sip:user@example.com",
        "From: sip:caller@example.org;tag=33242",
        "Max-Forwards: 3",
        "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK",
        "Via: SIP/2.0/UDP 192.0.2.7;branch=7c337f30d7ce.1",
        "Via: SIP/2.0/UDP 192.0.2.9",
        "Call-ID: badbranch.sadonfo23i420jv0as0derf3j3n",
        "CSeq: 8 OPTIONS",
        "l: {CL}",
    ],
))

# RFC 4475 3.3.2 "Request-URI with Unknown Scheme" (unkscm).  The URI parses
# as an opaque absoluteURI; answering 416 is the application's job.  -> ok.
valid("unkscm-unknown-scheme-ruri", msg(
    "OPTIONS neverheardofthisscheme:opaque-content-0042 SIP/2.0",
    [
        "To: sip:user@example.com",
        "From: sip:caller@example.net;tag=384",
        "Max-Forwards: 3",
        "Call-ID: unkscm.nasdfasser0q239nwsdfasdkl34",
        "CSeq: 3923423 OPTIONS",
        "Via: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234",
        "Content-Length: {CL}",
    ],
))

# RFC 4475 3.3.3 "Request-URI with Known but Atypical Scheme" (novelsc).
valid("novelsc-atypical-scheme-ruri", msg(
    "OPTIONS soap.beep://192.0.2.77:3002 SIP/2.0",
    [
        "To: sip:user@example.com",
        "From: sip:caller@example.net;tag=384",
        "Max-Forwards: 3",
        "Call-ID: novelsc.asdfasser0q239nwsdfasdkl34",
        "CSeq: 3923423 OPTIONS",
        "Via: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234",
        "Content-Length: {CL}",
    ],
))

# RFC 4475 3.3.3 (novelsc), tel variant: a tel: Request-URI (parsed as tel)
# with a phone-context and visual separators, tel: in From.  -> ok.
valid("novelsc-tel-ruri", msg(
    "INVITE tel:+1-201-555-0123;phone-context=+1 SIP/2.0",
    [
        "Via: SIP/2.0/UDP gw7.example.com;branch=z9hG4bKtel01",
        "Max-Forwards: 70",
        "To: <tel:+1-201-555-0123>",
        "From: \"Front Desk\" <tel:7042;phone-context=example.com>;tag=tel77",
        "Call-ID: novelsc-tel.2398asdf@gw7.example.com",
        "CSeq: 1 INVITE",
        "Contact: <sip:frontdesk@gw7.example.com>",
        "Content-Type: application/sdp",
        "Content-Length: {CL}",
    ],
    sdp("192.0.2.70"),
))

# RFC 4475 3.3.4 "Unknown URI Schemes in Header Fields" (unksm2).  isbn: as
# addr-spec To, http: in From, name: and urn: in Contact.  Opaque URIs are
# valid at parse time.  -> ok.
valid("unksm2-unknown-scheme-headers", msg(
    "REGISTER sip:example.com SIP/2.0",
    [
        "To: isbn:2983792873",
        "From: <http://www.example.com>;tag=3234233",
        "Call-ID: unksm2.daksdj@hyphenated-host.example.com",
        "CSeq: 234902 REGISTER",
        "Max-Forwards: 70",
        "Via: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bKkdjuw",
        "Contact: <name:John_Smith>, <urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>",
        "l: {CL}",
    ],
))

# RFC 4475 3.3.5 "Proxy-Require and Require" (bext01) + 3.3.15
# "Unacceptable Accept Offering" (sdp01).  Unknown option tags and an Accept
# nobody supports are kept verbatim; 420/415 are application answers. -> ok.
valid("bext01-unknown-extensions", msg(
    "OPTIONS sip:user@example.com SIP/2.0",
    [
        "To: sip:j_user@example.com",
        "From: sip:caller@example.net;tag=242etr",
        "Max-Forwards: 6",
        "Call-ID: bext01.0ha0isndaksdj",
        "Require: nothingSupportsThis, nothingSupportsThisEither",
        "Proxy-Require: noProxiesSupportThis, norDoAnyProxiesSupportThis",
        "Accept: text/nobodyKnowsThis",
        "CSeq: 8 OPTIONS",
        "Via: SIP/2.0/TLS fold-and-staple.example.com;branch=z9hG4bKkdjuw",
        "Content-Length: {CL}",
    ],
))

# RFC 4475 3.3.6 "Unknown Content-Type" (invut) + 3.3.7 "Unknown
# Authorization Scheme" (regaut01).  Content-Type is syntactically valid
# (type/subtype; params) even though nobody understands it; Authorization is
# not validated at parse time.  -> ok.
valid("invut-regaut-unknown-type-and-auth", msg(
    "INVITE sip:user@example.com SIP/2.0",
    [
        "Contact: <sip:caller@host5.example.net>",
        "To: sip:j.user@example.com",
        "From: sip:caller@example.net;tag=8392034",
        "Max-Forwards: 70",
        "Call-ID: invut.0ha0isndaksdjadsfij34n23d",
        "CSeq: 235448 INVITE",
        "Via: SIP/2.0/UDP somehost.example.com;branch=z9hG4bKkdjuw",
        "Authorization: NoOneKnowsThisScheme opaque-data=here",
        "Content-Type: application/unknownformat; charset=unknown-8; x=\"y;z\"",
        "Content-Length: {CL}",
    ],
    b"<audio> <pcmu port=\"443\"/> </audio>\r\n",
))

# RFC 4475 3.3.10 "200 OK Response with Broadcast Via Header Field Value"
# (bcast).  received=255.255.255.255 is a syntactically valid IPv4 address;
# not sending there is a transport decision.  -> ok.
valid("bcast-broadcast-via-200", msg(
    "SIP/2.0 200 OK",
    [
        "Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923;received=255.255.255.255",
        "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK4a3b2c",
        "Call-ID: bcast.1234ksdfak3j2erwedfsASdf",
        "CSeq: 35 INVITE",
        "From: sip:user@example.com;tag=11141343",
        "To: sip:user@example.edu;tag=2229",
        "Content-Length: {CL}",
        "Content-Type: application/sdp",
        "Contact: <sip:user@host28.example.com>",
    ],
    sdp("192.0.2.198"),
))

# RFC 4475 3.3.11 "Zero Value in Max-Forwards Header Field" (zeromf).
# 0 is within 0-255; the 483 answer belongs to the proxy.  -> ok.
valid("zeromf-max-forwards-zero", msg(
    "OPTIONS sip:user@example.com SIP/2.0",
    [
        "To: sip:user@example.com",
        "From: sip:caller@example.net;tag=3ghsd41",
        "Call-ID: zeromf.jfasdlfnm2o2l43r5u0asdfas",
        "CSeq: 39234321 OPTIONS",
        "Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw2349i",
        "Max-Forwards: 0",
        "Content-Length: {CL}",
    ],
))

# RFC 4475 3.3.12 "REGISTER with a Contact Header Parameter" (cparam01),
# 3.3.13 "REGISTER with a URL Parameter" (cparam02), 3.3.14 "REGISTER with a
# URL Escaped Header" (regescrt).  addr-spec Contact whose ;params are header
# params; name-addr Contacts with URI params, q/expires params, and a URI
# carrying an escaped ?Route= header *inside* <> (legal there).  -> ok.
valid("cparam-register-contact-params", msg(
    "REGISTER sip:example.com SIP/2.0",
    [
        "Via: SIP/2.0/UDP saturn.example.com:5060;branch=z9hG4bKkdjuw",
        "Max-Forwards: 70",
        "From: sip:watson@example.com;tag=DkfVgjkrtMwaerKKpe",
        "To: sip:watson@example.com",
        "Call-ID: cparam01.70710@saturn.example.com",
        "CSeq: 2 REGISTER",
        "Contact: sip:+19725552222@gw1.example.net;unknownparam",
        "Contact: <sip:+19725552222@gw2.example.net;unknownparam;user=phone>;q=0.5;expires=3600",
        "Contact: <sip:watson@example.com?Route=%3Csip:sip.example.com%3E>",
        "l: {CL}",
    ],
))

# RFC 4475 3.3.12-3.3.14 (REGISTER family), wildcard case: "Contact: *" with
# Expires: 0 removes all bindings; '*' is explicitly allowed.  -> ok.
valid("register-contact-star", msg(
    "REGISTER sip:registrar.biloxi.example.com SIP/2.0",
    [
        "Via: SIP/2.0/UDP bobspc.biloxi.example.com:5060;branch=z9hG4bKnashds7",
        "Max-Forwards: 70",
        "To: Bob <sip:bob@biloxi.example.com>",
        "From: Bob <sip:bob@biloxi.example.com>;tag=456248",
        "Call-ID: 843817637684230@998sdasdh09",
        "CSeq: 1827 REGISTER",
        "Contact: *",
        "Expires: 0",
        "Content-Length: {CL}",
    ],
))

# RFC 4475 3.4.1 "INVITE with RFC 2543 Syntax" (inv2543).  No branch, no
# From tag, no Max-Forwards (not mandatory for this parser), addr-spec To
# with a header param.  -> ok.
valid("inv2543-rfc2543-invite", msg(
    "INVITE sip:UserB@example.com SIP/2.0",
    [
        "Via: SIP/2.0/UDP iftgw.example.com",
        "From: <sip:+13035551111@ift.client.example.net;user=phone>",
        "Record-Route: <sip:UserB@example.com;maddr=ss1.example.com>",
        "To: sip:+16505552222@ss1.example.net;user=phone",
        "Call-ID: inv2543.1717@ift.client.example.com",
        "CSeq: 56 INVITE",
        "Content-Type: application/sdp",
        "Content-Length: {CL}",
    ],
    sdp("192.0.2.5", sess="1"),
))

# RFC 4475 3.1.2.12 "Invalid Time Zone in Date Header Field" (baddate).
# RFC 4475 lists it as invalid (Date must be GMT), but Date is not one of the
# headers this parser validates at parse time -- it is kept verbatim, so the
# message parses.  -> ok  (see report: expectation chosen from parser rules).
valid("baddate-date-not-validated", msg(
    "INVITE sip:user@example.com SIP/2.0",
    [
        "To: sip:user@example.com",
        "From: sip:caller@example.net;tag=2234923",
        "Max-Forwards: 70",
        "Call-ID: baddate.239423mnsadf3j23lj42--sedfnm234",
        "CSeq: 1392934 INVITE",
        "Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw",
        "Date: Fri, 01 Jan 2010 16:00:00 EST",
        "Contact: <sip:caller@host5.example.net>",
        "Content-Type: application/sdp",
        "Content-Length: {CL}",
    ],
    sdp("192.0.2.5"),
))

# ===========================================================================
# VALID -- further framing / header-level cases asked for by the parser rules
# ===========================================================================

# Compact forms: every single-letter form the parser accepts (i m f t v l c k
# s e o u r b x y a j d n) in one request.  -> ok.
valid("compact-forms-all", msg(
    "INVITE sip:bob@biloxi.example.com SIP/2.0",
    [
        "v: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds",
        "Max-Forwards: 70",
        "f: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
        "t: Bob <sip:bob@biloxi.example.com>",
        "i: compact.a84b4c76e66710@pc33.atlanta.example.com",
        "CSeq: 314159 INVITE",
        "m: <sip:alice@pc33.atlanta.example.com>;expires=60",
        "k: 100rel, timer, replaces",
        "s: Lunch?",
        "o: dialog;id=7",
        "u: presence, dialog",
        "x: 1800;refresher=uac",
        "r: <sip:carol@chicago.example.com>",
        "b: <sip:alice@atlanta.example.com>",
        "e: identity",
        "y: ZXhhbXBsZS1pZGVudGl0eS1ub3QtcmVhbA;info=<https://cert.example.org/a.cer>;alg=ES256",
        "n: <https://cert.example.org/a.cer>;alg=rsa-sha1",
        "a: *;audio;require",
        "j: *;video",
        "d: proxy, recurse, parallel",
        "c: application/sdp",
        "l: {CL}",
    ],
    sdp("192.0.2.33"),
))

# Folding (RFC 3261 7.3.1 / RFC 4475 3.1.1.1): continuation lines starting
# with SP or HTAB inside From (between display name and '<'), after a Via
# comma, inside Subject, inside Contact and Record-Route lists.  -> ok.
valid("folding-continuation-lines", msg(
    "INVITE sip:bob@biloxi.example.com SIP/2.0",
    [
        "Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKfold1,",
        "   SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKfold2",
        "Max-Forwards:",
        "\t69",
        'From: "Alice',
        ' Liddell"',
        "  <sip:alice@atlanta.example.com>;tag=fold88",
        "To: Bob",
        "\t<sip:bob@biloxi.example.com>",
        "Call-ID: folding.77a1b2@atlanta.example.com",
        "CSeq: 10 INVITE",
        "Subject: this subject",
        " is folded",
        "\tacross three lines",
        "Contact: <sip:alice@pc33.atlanta.example.com>;q=0.9,",
        " <sip:alice@mobile.atlanta.example.com>;q=0.1",
        "Record-Route: <sip:p1.example.com;lr>,",
        "\t<sip:p2.example.com;lr>",
        "Content-Type: application/sdp",
        "Content-Length: {CL}",
    ],
    sdp("192.0.2.34"),
))

# Comma-joined list values (RFC 3261 7.3.1) with commas *inside quoted display
# names*, which must not split the list: Via (with an IPv6 hop), Contact,
# Record-Route, Route.  -> ok.
valid("comma-joined-lists-quoted-commas", msg(
    "INVITE sip:bob@biloxi.example.com SIP/2.0",
    [
        "Via: SIP/2.0/UDP p2.example.com;branch=z9hG4bKcj1, SIP/2.0/TCP [2001:db8::5]:5061;branch=z9hG4bKcj2,SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKcj3",
        "Max-Forwards: 68",
        'From: "Liddell, Alice" <sip:alice@atlanta.example.com>;tag=cj55',
        'To: "Builder, Bob (office, 2nd floor)" <sip:bob@biloxi.example.com>',
        "Call-ID: commajoin.99e1@atlanta.example.com",
        "CSeq: 1 INVITE",
        'Contact: "Doe, John" <sip:jdoe@example.com>;q=0.5, "Roe, Jane" <sip:jroe@example.net>;q=0.4,<sip:plain@example.org>',
        'Record-Route: <sip:p2.example.com;lr>, "Proxy, Two" <sip:a,b@p1.example.com;lr>',
        'Route: <sip:core1.example.com;lr>,<sip:core2.example.com;lr>, "Edge, West" <sip:edge.example.com;lr>',
        "Content-Type: application/sdp",
        "Content-Length: {CL}",
    ],
    sdp("192.0.2.35"),
))

# Whitespace between header name and colon (`name *WSP ":"`), on mandatory
# and validated headers.  -> ok.
valid("space-before-colon", msg(
    "BYE sip:alice@pc33.atlanta.example.com SIP/2.0",
    [
        "Via : SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKnashds10",
        "Max-Forwards  : 70",
        "From\t: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf",
        "To \t : Alice <sip:alice@atlanta.example.com>;tag=1928301774",
        "Call-ID   : spacecolon.a84b4c76e66710",
        "CSeq : 231 BYE",
        "Content-Length : {CL}",
    ],
))

# Non-UTF-8 octets (>= 0x80, not a valid UTF-8 sequence) in header values:
# Latin-1 in Subject, raw 0xFF/0xFE/0x80 in an unknown header, a truncated
# UTF-8 sequence in Organization.  The parser allows them.  -> ok.
valid("non-utf8-header-values", msg(
    "MESSAGE sip:bob@biloxi.example.com SIP/2.0",
    [
        "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKlat1n",
        "Max-Forwards: 70",
        "From: <sip:alice@atlanta.example.com>;tag=49583",
        "To: <sip:bob@biloxi.example.com>",
        "Call-ID: nonutf8.asd88asd77a@192.0.2.1",
        "CSeq: 1 MESSAGE",
        b"Subject: caf\xe9 cr\xe8me br\xfbl\xe9e",
        b"X-Raw-Octets: \xff\xfe\x80\x81 tail",
        b"Organization: Truncated \xe6\x97 sequence",
        "Content-Type: text/plain;charset=ISO-8859-1",
        "Content-Length: {CL}",
    ],
    b"Bonjour, \xe7a va?\r\n",
))

# No Content-Length in a datagram: the body is the rest of the datagram
# (RFC 3261 18.3 allows omitting it over UDP).  -> ok.
valid("datagram-no-content-length", msg(
    "MESSAGE sip:user2@domain.example.com SIP/2.0",
    [
        "Via: SIP/2.0/UDP user1pc.domain.example.com;branch=z9hG4bK776sgdkse",
        "Max-Forwards: 70",
        "From: sip:user1@domain.example.com;tag=49583",
        "To: sip:user2@domain.example.com",
        "Call-ID: noclen.asd88asd77a@1.2.3.4",
        "CSeq: 1 MESSAGE",
        "Content-Type: text/plain",
    ],
    b"Watson, come here.\r\nThe body simply runs to the end of the datagram.\r\n",
))

# Boundary values: CSeq number 2^31-1 (largest allowed), status code 699 with
# a reason phrase, two Content-Type params.  -> ok.
valid("boundary-cseq-max-status-699", msg(
    "SIP/2.0 699 Rather Final, Thanks",
    [
        "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKbound1",
        "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
        "To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf",
        "Call-ID: boundary.a84b4c76e66710@pc33.atlanta.example.com",
        "CSeq: 2147483647 INVITE",
        "Content-Type: text/plain;charset=utf-8;format=flowed",
        "Content-Length: {CL}",
    ],
    "Nothing to see here.\r\n",
))

# Twilio BYE shape with the placeholders of the fixture filled in (the raw
# fixture twilio/twilio-bye-udp.sip still carries "sip:<YOUR-CONTACT>" and
# "tag=<YOUR-TO-TAG>").  Built from the fixture bytes if present.  -> ok.
def _twilio_bye_filled():
    path = os.path.join(HERE, "twilio", "twilio-bye-udp.sip")
    if not os.path.exists(path):
        return None
    data = open(path, "rb").read()
    data = data.replace(b"sip:<YOUR-CONTACT>", b"sip:+14155550123@192.0.2.50:5060")
    data = data.replace(b"<YOUR-TO-TAG>", b"as7d900a1")
    assert b"<YOUR-" not in data
    return data


_bye = _twilio_bye_filled()
if _bye is not None:
    valid("twilio-bye-udp-filled", _bye)

# ===========================================================================
# VALID -- RFC 5118 (IPv6)
# ===========================================================================

# RFC 5118 4.1 "Valid SIP Message with an IPv6 Reference" (ipv6-good).
# Bracketed IPv6 in Request-URI, Via sent-by and Contact.  -> ok.
valid("ipv6-good", msg(
    "REGISTER sip:[2001:db8::10] SIP/2.0",
    [
        "To: sip:user@example.com",
        "From: sip:user@example.com;tag=81x2",
        "Via: SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3-111",
        "Call-ID: ipv6good.SSG95599055@hlau_4100",
        "Max-Forwards: 70",
        'Contact: "Caller" <sip:caller@[2001:db8::1]>',
        "CSeq: 98176 REGISTER",
        "Content-Length: {CL}",
    ],
))

# RFC 5118 4.3 "Port Ambiguous in a SIP URI" (port-ambiguous).  Everything
# inside the brackets is the address (2001:db8::10:5070); there is no port.
valid("ipv6-port-ambiguous", msg(
    "REGISTER sip:[2001:db8::10:5070] SIP/2.0",
    [
        "To: sip:user@example.com",
        "From: sip:user@example.com;tag=81x2",
        "Via: SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3-pa1",
        "Call-ID: portamb.SSG95523997077@hlau_4100",
        "Max-Forwards: 70",
        'Contact: "Caller" <sip:caller@[2001:db8::1]>',
        "CSeq: 98176 REGISTER",
        "Content-Length: {CL}",
    ],
))

# RFC 5118 4.4 "Port Unambiguous in a SIP URI" (port-unambiguous).  Port after
# the closing bracket in Request-URI, Via and Contact.  -> ok.
valid("ipv6-port-unambiguous", msg(
    "REGISTER sip:[2001:db8::10]:5070 SIP/2.0",
    [
        "To: sip:user@example.com",
        "From: sip:user@example.com;tag=81x2",
        "Via: SIP/2.0/UDP [2001:db8::9:1]:5070;branch=z9hG4bKas3-pu1",
        "Call-ID: portunamb.SSG95523997077@hlau_4100",
        "Max-Forwards: 70",
        'Contact: "Caller" <sip:caller@[2001:db8::1]:5070;transport=udp>',
        "CSeq: 98176 REGISTER",
        "Content-Length: {CL}",
    ],
))

# RFC 5118 4.5 "IPv6 Reference Delimiters in Via Header"
# (via-received-param-no-delim).  received= carries a bare (unbracketed)
# IPv6 address, as RFC 3261's ABNF and RFC 5118 describe.  The with-delim
# twin (received=[...]) is deliberately not included (see report).  -> ok.
valid("ipv6-via-received-no-delim", msg(
    "OPTIONS sip:[2001:db8::10] SIP/2.0",
    [
        "To: sip:user@example.com",
        "From: sip:user@example.com;tag=81x2",
        "Via: SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3",
        "Call-ID: rcvnodelim.SSG9559905523997077@hlau_4100",
        "Max-Forwards: 70",
        'Contact: "Caller" <sip:caller@[2001:db8::9:1]>',
        "CSeq: 98176 OPTIONS",
        "Content-Length: {CL}",
    ],
))

# RFC 5118 4.6 "SIP Request with IPv6 Addresses in SDP Body" (ipv6-in-sdp).
valid("ipv6-in-sdp-body", msg(
    "INVITE sip:user@[2001:db8::10] SIP/2.0",
    [
        "To: sip:user@[2001:db8::10]",
        "From: sip:user@example.com;tag=81x2",
        "Via: SIP/2.0/UDP [2001:db8::20];branch=z9hG4bKas3-sdp",
        "Call-ID: ipv6sdp.SSG9559905523997077@hlau_4100",
        "Contact: \"Caller\" <sip:caller@[2001:db8::20]>",
        "CSeq: 8612 INVITE",
        "Max-Forwards: 70",
        "Content-Type: application/sdp",
        "Content-Length: {CL}",
    ],
    sdp("2001:db8::20", ip="IP6"),
))

# RFC 5118 4.7 "Multiple IP Addresses in SIP Headers" / SDP ANAT grouping
# (mult-ip-in-sdp): IPv4 and IPv6 alternatives in the body, an IPv4 and an
# IPv6 Via.  -> ok.
valid("ipv6-mult-ip-in-sdp", msg(
    "INVITE sip:user@example.com SIP/2.0",
    [
        "To: sip:user@example.com",
        "From: sip:user@east.example.com;tag=81x2",
        "Via: SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3-mip",
        "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKjhja8781hjuaij65144",
        "Call-ID: multsdp.SSG9559905523997077@hlau_4100",
        "Contact: \"Caller\" <sip:caller@[2001:db8::9:1]>",
        "CSeq: 612 INVITE",
        "Max-Forwards: 70",
        "Content-Type: application/sdp",
        "Content-Length: {CL}",
    ],
    body_lines(
        "v=0",
        "o=bob 280744730 28977631 IN IP4 host.example.com",
        "s=-",
        "t=0 0",
        "a=group:ANAT 1 2",
        "m=audio 25000 RTP/AVP 0",
        "c=IN IP6 2001:db8::1",
        "a=mid:1",
        "m=audio 22000 RTP/AVP 0",
        "c=IN IP4 192.0.2.1",
        "a=mid:2",
    ),
))

# RFC 5118 4.8 "IPv4-Mapped IPv6 Addresses" (ipv4-mapped-ipv6).  ::ffff:a.b.c.d
# inside brackets in Via (with port) and Contact; IP6 in SDP.  -> ok.
valid("ipv6-ipv4-mapped", msg(
    "INVITE sip:user@example.com SIP/2.0",
    [
        "To: sip:user@example.com",
        "From: sip:user@east.example.com;tag=81x2",
        "Via: SIP/2.0/UDP [::ffff:192.0.2.10]:19823;branch=z9hG4bKbh19",
        "Via: SIP/2.0/UDP [::ffff:192.0.2.2]:10820;branch=z9hG4bKas3-v4m",
        "Call-ID: v4mapped.SSG9559905523997077@hlau_4100",
        'Contact: "T. desk phone" <sip:ted@[::ffff:192.0.2.2]:10820>',
        "CSeq: 612 INVITE",
        "Max-Forwards: 70",
        "Content-Type: application/sdp",
        "Content-Length: {CL}",
    ],
    sdp("::ffff:192.0.2.2", ip="IP6"),
))

# RFC 5118 4.9 "IPv6 Reference Bug in RFC 3261 ABNF" -- the *correct* form
# (ipv6-correct-abnf-2-colons): an IPv6 reference with an embedded IPv4 tail
# after "::".  -> ok.  (The 3-colon twin is invalid/ipv6-abnf-3-colons.)
valid("ipv6-abnf-2-colons", msg(
    "OPTIONS sip:user@[2001:db8::192.0.2.1] SIP/2.0",
    [
        "To: sip:user@[2001:db8::192.0.2.1]",
        "From: sip:user@example.com;tag=810x2",
        "Via: SIP/2.0/UDP [2001:db8::192.0.2.1];branch=z9hG4bKas3-2c",
        "Call-ID: twocolons.SSG95523997077@hlau_4100",
        "CSeq: 689 OPTIONS",
        "Max-Forwards: 70",
        "Content-Length: {CL}",
    ],
))

# RFC 5118 4.10 "Multiple IP Addresses in SIP Headers" (mult-ip-in-header).
# Several Vias mixing IPv6 (with port) and IPv4, received= in both families,
# IPv6 and IPv4 Contacts.  -> ok.
valid("ipv6-mult-ip-in-header", msg(
    "BYE sip:user@host.example.net SIP/2.0",
    [
        "Via: SIP/2.0/UDP [2001:db8::9:1]:6050;branch=z9hG4bKas3-111",
        "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKjhja8781hjuaij65144",
        "Via: SIP/2.0/TCP [2001:db8::9:255];branch=z9hG4bK451jj;received=192.0.2.200",
        "Via: SIP/2.0/UDP 192.0.2.200:5060;branch=z9hG4bK77aa;received=2001:db8::9:255",
        "Call-ID: multhdr.997077@lau_4100",
        "Max-Forwards: 70",
        "CSeq: 89187 BYE",
        "To: sip:user@example.net;tag=9817--94",
        "From: sip:user@example.com;tag=81x2",
        "Contact: <sip:user@[2001:db8::9:1]:6050>, <sip:user@192.0.2.1:5060>",
        "Content-Length: {CL}",
    ],
))

# ===========================================================================
# VALID -- stream (TCP) framing
# ===========================================================================

# Stream framing, complete INVITE with an SDP body and exact Content-Length.
valid("stream-invite-with-body", msg(
    "INVITE sip:bob@biloxi.example.com;transport=tcp SIP/2.0",
    [
        "Via: SIP/2.0/TCP pc33.atlanta.example.com;branch=z9hG4bKtcp01",
        "Max-Forwards: 70",
        "To: Bob <sip:bob@biloxi.example.com>",
        "From: Alice <sip:alice@atlanta.example.com>;tag=tcp1928",
        "Call-ID: stream1.a84b4c76e66710@pc33.atlanta.example.com",
        "CSeq: 314159 INVITE",
        "Contact: <sip:alice@pc33.atlanta.example.com;transport=tcp>",
        "Content-Type: application/sdp",
        "Content-Length: {CL}",
    ],
    sdp("192.0.2.101"),
), stream=True)

# Stream framing, response with compact "l: 0" (Content-Length present, zero).
valid("stream-200-zero-length", msg(
    "SIP/2.0 200 OK",
    [
        "Via: SIP/2.0/TCP pc33.atlanta.example.com;branch=z9hG4bKtcp02",
        "To: Bob <sip:bob@biloxi.example.com>;tag=314159",
        "From: Alice <sip:alice@atlanta.example.com>;tag=tcp1928",
        "Call-ID: stream2.a84b4c76e66710@pc33.atlanta.example.com",
        "CSeq: 2 BYE",
        "l: {CL}",
    ],
), stream=True)


# ===========================================================================
# INVALID -- start line
# ===========================================================================

# RFC 4475 3.1.2.7 "Request-URI with <> Enclosure" (ltgtruri).
invalid("ltgtruri-angle-brackets", "start-line",
        simple("INVITE", "<sip:bob@biloxi.example.com>"))

# RFC 4475 3.1.2.9 "Multiple SP Separating Request-Line Elements" (lwsstart).
invalid("lwsstart-multiple-sp", "start-line", msg(
    "INVITE  sip:bob@biloxi.example.com  SIP/2.0", base_headers("INVITE")))

# RFC 4475 3.1.2.10 "SP Characters at End of Request-Line" (trws).
invalid("trws-trailing-sp", "start-line", msg(
    "OPTIONS sip:bob@biloxi.example.com SIP/2.0 ", base_headers("OPTIONS")))

# RFC 4475 3.1.2.8 "Malformed SIP Request-URI (embedded LWS)" (lwsruri).
# "sip:bob@biloxi.example.com; lr" splits the Request-Line into four
# SP-separated parts -> start-line.
invalid("lwsruri-embedded-lws", "start-line", msg(
    "INVITE sip:bob@biloxi.example.com; lr SIP/2.0", base_headers("INVITE")))

# RFC 4475 3.1.2.19 "Overlarge Response Code" (bigcode).
invalid("bigcode-overlarge-status", "start-line", msg(
    "SIP/2.0 4294967501 better not break the receiver",
    base_headers("INVITE", omit=("maxf",), to="To: Bob <sip:bob@biloxi.example.com>;tag=bc1")))

# RFC 4475 3.1.2.19 (bigcode), in-range-width variant: 3 digits but > 699.
invalid("status-code-700", "start-line", msg(
    "SIP/2.0 700 Beyond Global Failure",
    base_headers("INVITE", omit=("maxf",), to="To: Bob <sip:bob@biloxi.example.com>;tag=bc2")))

# RFC 4475 3.1.2.19 (bigcode), short variant: a 2-digit status code.
invalid("status-code-two-digits", "start-line", msg(
    "SIP/2.0 20 OK",
    base_headers("INVITE", omit=("maxf",), to="To: Bob <sip:bob@biloxi.example.com>;tag=bc3")))

# Request-Line missing its SIP-Version element ("missing parts").
invalid("request-line-missing-version", "start-line", msg(
    "OPTIONS sip:bob@biloxi.example.com", base_headers("OPTIONS")))

# Method that is not an RFC 3261 token ('@' is not a token character).
# CSeq carries the same string; the start line is rejected first.
invalid("method-not-a-token", "start-line", msg(
    "INV@TE sip:bob@biloxi.example.com SIP/2.0", base_headers("INV@TE")))

# ===========================================================================
# INVALID -- version
# ===========================================================================

# RFC 4475 3.1.2.16 "Unknown Protocol Version" (badvers): well-formed but
# unsupported version -> 505.  The Via keeps SIP/2.0 so only the start line
# is at fault.
invalid("badvers-sip-7-0", "version", msg(
    "OPTIONS sip:t.watson@example.org SIP/7.0", base_headers("OPTIONS")))

# RFC 4475 3.1.2.16 (badvers), older-version variant.
invalid("badvers-sip-1-0", "version", msg(
    "INVITE sip:t.watson@example.org SIP/1.0", base_headers("INVITE")))

# ===========================================================================
# INVALID -- Request-URI
# ===========================================================================

# RFC 5118 4.2 "Invalid SIP Message with an IPv6 Reference" (ipv6-bad):
# IPv6 address in a sip URI without brackets.
invalid("ipv6-bad-unbracketed-ruri", "request-uri", msg(
    "REGISTER sip:2001:db8::10 SIP/2.0",
    base_headers("REGISTER", via="Via: SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3-bad",
                 to="To: sip:user@example.com", frm="From: sip:user@example.com;tag=81x2")))

# RFC 5118 4.9 "IPv6 Reference Bug in RFC 3261 ABNF"
# (ipv6-bug-abnf-3-colons): "2001:db8:::192.0.2.1" is not an IPv6 address.
invalid("ipv6-abnf-3-colons", "request-uri", msg(
    "OPTIONS sip:user@[2001:db8:::192.0.2.1] SIP/2.0",
    base_headers("OPTIONS", to="To: sip:user@example.com", frm="From: sip:user@example.com;tag=810x2")))

# RFC 4475 3.1.2.11 "Escaped Headers in SIP Request-URI" (escruri): a
# Request-URI may not carry ?headers.
invalid("escruri-headers-in-ruri", "request-uri",
        simple("INVITE", "sip:user@example.com?Route=%3Csip:example.com%3E"))

# RFC 5118 4.2 family: IPv6 reference whose closing bracket is missing.
invalid("ipv6-unclosed-bracket-ruri", "request-uri",
        simple("OPTIONS", "sip:user@[2001:db8::10"))

# ===========================================================================
# INVALID -- header line syntax
# ===========================================================================

# A header line with no colon at all (RFC 3261 7.3 message-header).
invalid("hdr-no-colon", "header-syntax",
        simple(extra=["This line has no colon separator"]))

# Header name with a non-token character ('[' and ']').
invalid("hdr-bad-name-chars", "header-syntax",
        simple(extra=["Bad[Header]: value"]))

# RFC 4475 3.1.1.2 "Wide Range of Valid Characters" (intmeth), byte for byte
# as the RFC prints it (its <allOneLine> lines joined, its <hex> escapes as the
# bytes they stand for): the To display name holds the quoted-pairs backslash
# BEL, backslash NUL and backslash DEL, which RFC 3261 25.1 allows inside a
# quoted-string (quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)).  -> ok.
valid("rfc4475-intmeth", (
    b"!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:"
    b"&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~\r\n"
    b"To: \"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f\" <sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>\r\n"
    b"From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%="
    b"\"\xd1\x80\xd0\xb0\xd0\xb1\xd0\xbe\xd1\x82\xd0\xb0\xd1\x8e\xd1\x89\xd0\xb8\xd0\xb9\";tag=_token~1'+`*%!-.\r\n"
    b"Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{\r\n"
    b"CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~\r\n"
    b"Max-Forwards: 255\r\n"
    b"extensionHeader-!.%*+_`'~:\xef\xbb\xbf\xe5\xa4\xa7\xe5\x81\x9c\xe9\x9b\xbb\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
))

# The same escaped BEL outside a quoted string: a quoted-pair exists only
# inside quotes, so the control byte is refused.
invalid("ctl-escaped-outside-quotes", "header-syntax",
        simple(extra=[b"X-Trace: abc\\\x07def"]))

# Empty header name.
invalid("hdr-empty-name", "header-syntax",
        simple(extra=[": value without a name"]))

# RFC 4475 2.2 non-printable characters: a raw NUL octet in a header value
# (NUL is never allowed in the header section, not even in quotes).
invalid("ctl-nul-in-header", "header-syntax",
        simple(extra=[b"X-Trace: abc\x00def"]))

# A raw ESC (0x1B) control octet in Subject; only HTAB is allowed.
invalid("ctl-escape-in-header", "header-syntax",
        simple(extra=[b"Subject: colour \x1b[31mred\x1b[0m"]))

# RFC 4475 3.1.1.1 framing, inverted: the first line after the start line
# begins with whitespace, i.e. a continuation with nothing to continue.
invalid("leading-ws-after-start-line", "header-syntax", msg(
    "OPTIONS sip:bob@biloxi.example.com SIP/2.0",
    [" X-Orphan: continuation of nothing"] + base_headers("OPTIONS")))

# ===========================================================================
# INVALID -- missing mandatory header
# ===========================================================================

# RFC 4475 3.3.1 "Missing Required Header Fields" (insuf): no Call-ID,
# From or To.
invalid("insuf-missing-callid-from-to", "missing-header",
        simple("INVITE", omit=("callid", "from", "to")))

# Missing Via (the one header every transaction needs).
invalid("missing-via", "missing-header", simple("OPTIONS", omit=("via",)))

# Missing From only.
invalid("missing-from", "missing-header", simple("OPTIONS", omit=("from",)))

# Response missing CSeq.
invalid("missing-cseq-response", "missing-header", msg(
    "SIP/2.0 200 OK",
    base_headers("OPTIONS", omit=("cseq", "maxf"),
                 to="To: Bob <sip:bob@biloxi.example.com>;tag=8321234356")))

# ===========================================================================
# INVALID -- duplicated single-valued header
# ===========================================================================

# RFC 4475 3.3.9 "OPTIONS with Multiple Content-Length Values" (mcl01).
invalid("mcl01-two-content-length", "duplicate-header",
        simple(extra=["Content-Length: 12"]))

# RFC 4475 3.3.8 "Multiple Values in Single Value Required Fields"
# (multi01): two Call-IDs, two CSeqs, two Froms, two Tos.
invalid("multi01-repeated-single-value", "duplicate-header", msg(
    "INVITE sip:user@company.example.com SIP/2.0",
    [
        "Contact: <sip:caller@host25.example.net>",
        "Via: SIP/2.0/UDP 192.0.2.25;branch=z9hG4bKkdjuw",
        "Max-Forwards: 70",
        "CSeq: 5 INVITE",
        "Call-ID: multi01.98asdh@192.0.2.1",
        "CSeq: 59 INVITE",
        "Call-ID: multi01.98asdh@192.0.2.2",
        "From: sip:caller@example.com;tag=3413415",
        "To: sip:user@example.com",
        "To: sip:other@example.net",
        "From: sip:caller@example.net;tag=2923420123",
        "Content-Type: application/sdp",
        "l: {CL}",
    ],
    sdp("192.0.2.25"),
))

# Duplicate From, one long form and one compact form (names are the same
# header regardless of form).
invalid("dup-from-compact-and-long", "duplicate-header",
        simple(extra=["f: Mallory <sip:mallory@evil.example.com>;tag=666"]))

# Duplicate Call-ID via compact "i".
invalid("dup-callid-compact", "duplicate-header",
        simple(extra=["i: another-call-id@atlanta.example.com"]))

# Duplicate Max-Forwards.
invalid("dup-max-forwards", "duplicate-header",
        simple(extra=["Max-Forwards: 69"]))

# Duplicate Content-Type (once as long form, once as compact "c").
invalid("dup-content-type", "duplicate-header",
        simple("MESSAGE", body=b"hi\r\n",
               extra=["Content-Type: text/plain", "c: text/html"]))

# ===========================================================================
# INVALID -- header values that do not parse
# ===========================================================================

# RFC 4475 3.1.2.1 "Extraneous Header Field Separators" (badinv01): Via
# value ";;,;,," -- empty parameters and empty list elements.
invalid("badinv01-via-extra-separators", "header-value", simple(
    "INVITE", via="Via: SIP/2.0/UDP 192.0.2.15;;,;,,"))

# Via missing the transport element of sent-protocol.
invalid("via-missing-transport", "header-value", simple(
    via="Via: SIP/2.0 client.atlanta.example.com;branch=z9hG4bK74bf9"))

# RFC 5118 4.2 (ipv6-bad) applied to Via: unbracketed IPv6 sent-by.
invalid("via-unbracketed-ipv6", "header-value", simple(
    via="Via: SIP/2.0/UDP 2001:db8::9:1;branch=z9hG4bKas3-111"))

# RFC 4475 3.1.2.6 "Unterminated Quoted String in Display Name" (quotbal).
invalid("quotbal-unterminated-quote", "header-value", simple(
    "INVITE", to='To: "Mr. J. User <sip:j.user@example.com>'))

# RFC 4475 3.1.2.15 "Non-token Characters in Display Name" (baddn): an
# unquoted display name containing a comma.
invalid("baddn-unquoted-comma", "header-value", simple(
    frm="From: Bell, Alexander <sip:a.g.bell@example.com>;tag=43"))

# RFC 4475 3.1.2.14 "Spaces within addr-spec" (badaspec): SP inside <...>.
invalid("badaspec-spaces-in-angle", "header-value", simple(
    to='To: "Watson, Thomas" < sip:t.watson@example.org >'))

# RFC 4475 3.1.2.4 "Request Scalar Fields with Overlarge Values" (scalar02):
# Max-Forwards 300 (> 255).
invalid("scalar02-max-forwards-300", "header-value", simple(mf="300"))

# Max-Forwards boundary: 256 is one past the maximum.
invalid("max-forwards-256", "header-value", simple(mf="256"))

# RFC 4475 3.1.2.4 (scalar02): CSeq number 2^32.
invalid("scalar02-cseq-2-32", "header-value", simple(cseq="4294967296"))

# CSeq boundary: 2^31 is one past the maximum allowed (< 2^31).
invalid("cseq-2-31", "header-value", simple(cseq="2147483648"))

# RFC 4475 3.1.2.5 "Response Scalar Fields with Overlarge Values" (scalarlg):
# a response whose CSeq number is far beyond 2^64.
invalid("scalarlg-response-cseq-huge", "header-value", msg(
    "SIP/2.0 503 Service Unavailable",
    base_headers("OPTIONS", cseq="36893488147419103232", omit=("maxf",),
                 to="To: Bob <sip:bob@biloxi.example.com>;tag=sl1",
                 extra=["Retry-After: 18446744073709551616"])))

# CSeq without a method.
invalid("cseq-no-method", "header-value", msg(
    "OPTIONS sip:bob@biloxi.example.com SIP/2.0",
    base_headers("OPTIONS", omit=("cseq",), extra=["CSeq: 4711"])))

# Contact with an unterminated '<'.
invalid("contact-unterminated-angle", "header-value", simple(
    extra=["Contact: <sip:alice@pc33.atlanta.example.com"]))

# RFC 5118 4.2 (ipv6-bad) applied to Contact: unbracketed IPv6 host.
invalid("contact-unbracketed-ipv6", "header-value", simple(
    "REGISTER", ruri="sip:[2001:db8::10]",
    extra=["Contact: <sip:caller@2001:db8::1>"]))

# RFC 4475 3.1.2.13 "Failure to Enclose name-addr URI in <>" (regbadct):
# a Contact URI carrying an escaped header ('?') is only legal in name-addr
# form; in addr-spec form the message is malformed.  (See report.)
invalid("regbadct-contact-not-enclosed", "header-value", simple(
    "REGISTER", ruri="sip:example.com",
    extra=["Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E"]))

# Record-Route with an unterminated '<'.
invalid("record-route-unterminated", "header-value", simple(
    extra=["Record-Route: <sip:p1.example.com;lr"]))

# Content-Type without a subtype.
invalid("content-type-no-subtype", "header-value", simple(
    "MESSAGE", body=b"hello\r\n", extra=["Content-Type: text"]))

# Call-ID containing a space (word ["@" word] has no SP).
invalid("callid-with-space", "header-value", simple(
    callid="Call-ID: two words@atlanta.example.com"))

# ===========================================================================
# INVALID -- Content-Length value
# ===========================================================================

# RFC 4475 3.1.2.3 "Negative Content-Length" (ncl).
invalid("ncl-negative-content-length", "content-length", msg(
    "INVITE sip:user@example.com SIP/2.0",
    base_headers("INVITE", cl_line="Content-Length: -999",
                 extra=["Content-Type: application/sdp"]),
    sdp("192.0.2.15"),
))

# Non-numeric Content-Length.
invalid("content-length-non-numeric", "content-length", simple(
    cl_line="Content-Length: zero"))

# RFC 4475 3.1.2.4 (scalar02): Content-Length too large to represent
# (> 2^64).
invalid("scalar02-content-length-overflow", "content-length", simple(
    cl_line="Content-Length: 18446744073709551618"))

# ===========================================================================
# INVALID -- truncated body (datagram)
# ===========================================================================

# RFC 4475 3.1.2.2 "Content Length Larger Than Message" (clerr).
invalid("clerr-content-length-too-big", "truncated-body", msg(
    "INVITE sip:user@example.com SIP/2.0",
    base_headers("INVITE", extra=["Content-Type: application/sdp"]),
    sdp("192.0.2.15"), cl=9999))

# Body one octet shorter than Content-Length.
invalid("body-one-byte-short", "truncated-body", msg(
    "MESSAGE sip:bob@biloxi.example.com SIP/2.0",
    base_headers("MESSAGE", extra=["Content-Type: text/plain"]),
    b"exactly thirty-one bytes here\r\n", cl=len(b"exactly thirty-one bytes here\r\n") + 1))

# ===========================================================================
# INVALID -- CSeq method mismatch
# ===========================================================================

# RFC 4475 3.1.2.17 "Start Line and CSeq Method Mismatch" (mismatch01).
invalid("mismatch01-options-vs-invite", "cseq-mismatch", msg(
    "OPTIONS sip:user@example.com SIP/2.0",
    base_headers("INVITE")))

# RFC 4475 3.1.2.18 "Unknown Method with CSeq Method Mismatch" (mismatch02).
invalid("mismatch02-unknown-method", "cseq-mismatch", msg(
    "NEWMETHOD sip:user@example.com SIP/2.0",
    base_headers("INVITE", extra=["Content-Type: application/sdp"]),
    sdp("192.0.2.15")))

# Methods are case-sensitive: "invite" is not "INVITE".
invalid("mismatch-method-case", "cseq-mismatch", msg(
    "INVITE sip:user@example.com SIP/2.0",
    base_headers("invite")))

# ===========================================================================
# INVALID -- size limits
# ===========================================================================

# Whole message > 65536 bytes, made of header bytes only (5 lines of ~14 KB,
# each under the 16384 line cap, few lines).
invalid("too-large-message-headers", "too-large", simple(
    extra=["X-Pad-%d: %s" % (i, "p" * 14000) for i in range(5)]))

# Whole message > 65536 bytes because of a 70000-byte body (exact
# Content-Length, small headers).
invalid("too-large-message-body", "too-large", simple(
    "MESSAGE", body=(b"0123456789" * 7000),
    extra=["Content-Type: text/plain"]))

# More than 256 header lines (300 short unknown headers + the mandatory ones).
invalid("too-many-header-lines", "too-large", simple(
    extra=["X-Filler-%03d: f" % i for i in range(300)]))

# A single header line longer than 16384 bytes.
invalid("too-long-header-line", "too-large", simple(
    extra=["X-Huge: " + "h" * 17000]))

# ===========================================================================
# INVALID -- stream (TCP) framing
# ===========================================================================

# Stream: the bytes end in the middle of the header section.
invalid("stream-incomplete-headers", "incomplete",
        b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/TCP pc33.atlanta.example.com;branch=z9hG4bKtcp03\r\n"
        b"Max-Forwards: 70\r\n"
        b"To: Bob <sip:bob@biloxi.example.com>\r\n"
        b"From: Alice <sip:alice@atlanta.example.com>;tag=tcp3\r\n"
        b"Call-ID: stream3.a84b4c76e66710@pc33.atlanta.example.com\r\n"
        b"CSeq: 1 INVITE\r\n"
        b"Content-Le",
        stream=True)

# Stream: headers complete, body shorter than Content-Length (more bytes
# would have to arrive).
invalid("stream-incomplete-body", "incomplete", msg(
    "INVITE sip:bob@biloxi.example.com SIP/2.0",
    base_headers("INVITE", extra=["Content-Type: application/sdp"]),
    sdp("192.0.2.101")[:60], cl=len(sdp("192.0.2.101"))), stream=True)

# Stream: Content-Length is mandatory on a stream transport (RFC 3261 18.3).
invalid("stream-missing-content-length", "content-length", msg(
    "OPTIONS sip:bob@biloxi.example.com SIP/2.0",
    base_headers("OPTIONS", cl_line=None)), stream=True)


# ===========================================================================
# checks and output
# ===========================================================================

def header_section(data):
    i = data.find(b"\r\n\r\n")
    return data if i < 0 else data[: i + 2]


def sanity_check():
    for kind, name, expect, stream, data in VECTORS:
        hs = header_section(data)
        # every LF in the header section is part of a CRLF
        assert hs.count(b"\n") == hs.count(b"\r\n"), name
        lines = hs.split(b"\r\n")[1:]  # drop start line
        lines = [l for l in lines if l]
        if expect == "ok":
            assert len(data) <= MAX_MESSAGE, (name, len(data))
            assert len(lines) <= MAX_HEADER_LINES, (name, len(lines))
            assert all(len(l) + 2 <= MAX_LINE for l in hs.split(b"\r\n")), name
            assert b"\r\n\r\n" in data, name
            # Control bytes only as quoted-pairs (a backslash before them).
            assert not any(c < 0x20 and c not in (9, 10, 13) and hs[i - 1] != 0x5c
                           for i, c in enumerate(hs)), name
    names = {v[1]: v for v in VECTORS}
    assert len(names["too-many-header-lines"][4].split(b"\r\n\r\n")[0].split(b"\r\n")) - 1 > MAX_HEADER_LINES
    assert len(names["too-large-message-headers"][4]) > MAX_MESSAGE
    assert len(names["too-large-message-body"][4]) > MAX_MESSAGE
    assert max(len(l) for l in names["too-long-header-line"][4].split(b"\r\n")) > MAX_LINE
    assert len(names["too-large-message-headers"][4].split(b"\r\n")) < MAX_HEADER_LINES
    assert max(len(l) for l in names["too-large-message-headers"][4].split(b"\r\n")) < MAX_LINE


def main():
    sanity_check()
    for d in ("valid", "invalid"):
        p = os.path.join(HERE, d)
        os.makedirs(p, exist_ok=True)
        for f in os.listdir(p):  # drop stale generated vectors
            if f.endswith(".sip"):
                os.remove(os.path.join(p, f))
    for kind, name, expect, stream, data in VECTORS:
        with open(os.path.join(HERE, kind, name + ".sip"), "wb") as f:
            f.write(data)

    out = []
    out.append("# SIP parser test vectors -- generated by gen_vectors.py, do not edit by hand.")
    out.append("# <path relative to this directory> <expect> [stream]")
    out.append("# expect: ok | start-line | version | request-uri | header-syntax | missing-header")
    out.append("#         | duplicate-header | header-value | content-length | truncated-body")
    out.append("#         | cseq-mismatch | too-large | incomplete")
    out.append("# stream: parse with stream (TCP) framing; default is datagram (UDP) framing.")
    out.append("")
    out.append("# --- Twilio fixtures (copied byte-exact from /work/shared/fixtures) ---")
    tdir = os.path.join(HERE, "twilio")
    tw = sorted(f for f in os.listdir(tdir) if f.endswith(".sip")) if os.path.isdir(tdir) else []
    if not tw:
        print("warning: no twilio fixtures found in", tdir, file=sys.stderr)
    for f in tw:
        data = open(os.path.join(tdir, f), "rb").read()
        if b"<YOUR-" in data:
            # The fixture still carries unfilled placeholders
            # ("BYE sip:<YOUR-CONTACT> SIP/2.0", "tag=<YOUR-TO-TAG>"); as-is
            # the Request-URI is not a valid URI.  The filled-in version is
            # valid/twilio-bye-udp-filled.sip.
            out.append("# placeholder Request-URI sip:<YOUR-CONTACT> is not a URI; see valid/twilio-bye-udp-filled.sip")
            out.append("%-55s %s" % ("twilio/" + f, "request-uri"))
        else:
            out.append("%-55s %s" % ("twilio/" + f, "ok"))
    for kind, title in (("valid", "valid (must parse)"), ("invalid", "invalid (must be rejected)")):
        out.append("")
        out.append("# --- %s ---" % title)
        for k, name, expect, stream, data in VECTORS:
            if k != kind:
                continue
            line = "%-55s %s" % ("%s/%s.sip" % (k, name), expect)
            if stream:
                line += " stream"
            out.append(line.rstrip())
    with open(os.path.join(HERE, "MANIFEST"), "w") as f:
        f.write("\n".join(out) + "\n")
    nv = sum(1 for v in VECTORS if v[0] == "valid")
    print("wrote %d valid, %d invalid vectors, %d twilio fixtures listed"
          % (nv, len(VECTORS) - nv, len(tw)))


if __name__ == "__main__":
    main()
