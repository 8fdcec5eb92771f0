/*
 * pathnorm.c - request path normalisation (see pathnorm.h), run on every request before routing.
 *
 * One left-to-right pass over the input, writing into the caller's buffer; no allocation. Each segment is
 * decoded as it is copied; when it ends, a "." segment is dropped and a ".." segment drops itself and the
 * segment before it (RFC 3986 5.2.4, "remove_dot_segments", applied after decoding so that "%2E%2E" is
 * a "..", as an upstream that decodes it would see it). The output never grows: every output byte comes
 * from at least one input byte, which is why len + 1 bytes of out always suffice.
 */
#include "pathnorm.h"

#include <stdint.h>

/* What a raw input byte is. */
enum bgw__pn_class {
    PN_BAD = 0,     /* refused: controls, space, DEL, >= 0x80, '\\', '#' */
    PN_COPY,        /* copied as is */
    PN_PCT,         /* '%': an escape follows */
    PN_SLASH,       /* '/': a segment ends */
};

/* Byte classes, built at compile time: 0x21..0x7e are copied except '%', '/', '\\' and '#'. */
#define PN_RANGE(c) (((c) >= 0x21 && (c) <= 0x7e) ? PN_COPY : PN_BAD)
#define PN_CLASS(c) ((c) == '%' ? PN_PCT : (c) == '/' ? PN_SLASH : ((c) == '\\' || (c) == '#') ? PN_BAD \
                     : PN_RANGE(c))
#define PN_ROW(b) PN_CLASS((b) + 0), PN_CLASS((b) + 1), PN_CLASS((b) + 2), PN_CLASS((b) + 3), \
                  PN_CLASS((b) + 4), PN_CLASS((b) + 5), PN_CLASS((b) + 6), PN_CLASS((b) + 7), \
                  PN_CLASS((b) + 8), PN_CLASS((b) + 9), PN_CLASS((b) + 10), PN_CLASS((b) + 11), \
                  PN_CLASS((b) + 12), PN_CLASS((b) + 13), PN_CLASS((b) + 14), PN_CLASS((b) + 15)
static const uint8_t pn_class[256] = {
    PN_ROW(0x00), PN_ROW(0x10), PN_ROW(0x20), PN_ROW(0x30), PN_ROW(0x40), PN_ROW(0x50), PN_ROW(0x60),
    PN_ROW(0x70), PN_ROW(0x80), PN_ROW(0x90), PN_ROW(0xa0), PN_ROW(0xb0), PN_ROW(0xc0), PN_ROW(0xd0),
    PN_ROW(0xe0), PN_ROW(0xf0),
};

/* Value of a hex digit, or -1. */
static inline int pn_hex(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* RFC 3986 2.3 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
static inline int pn_unreserved(unsigned c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

long bgw_pathnorm(const char *path, size_t len, char *out)
{
    static const char hexdig[] = "0123456789ABCDEF";
    const unsigned char *in = (const unsigned char *)path;
    size_t i = 1, o = 1;

    if (len == 0 || in[0] != '/')
        return -1;
    out[0] = '/';

    /* Invariant at the top of each segment: out[0..o) is a normalised path that ends with '/'. */
    while (i < len) {
        size_t seg = o;

        /* Copy (and decode) one segment. */
        while (i < len) {
            unsigned char c = in[i];
            unsigned cls = pn_class[c];
            if (cls == PN_COPY) {
                out[o++] = (char)c;
                i++;
            } else if (cls == PN_SLASH) {
                break;
            } else if (cls == PN_PCT) {
                int hi, lo;
                unsigned v;
                if (len - i < 3 || (hi = pn_hex(in[i + 1])) < 0 || (lo = pn_hex(in[i + 2])) < 0)
                    return -1;
                v = (unsigned)(hi << 4 | lo);
                if (v == 0 || v == '/' || v == '\\')
                    return -1;
                if (pn_unreserved(v)) {
                    out[o++] = (char)v;
                } else {
                    out[o++] = '%';
                    out[o++] = hexdig[hi];
                    out[o++] = hexdig[lo];
                }
                i += 3;
            } else {
                return -1;
            }
        }

        /* The segment is out[seg..o); in[i] is its '/' or i == len. */
        size_t n = o - seg;
        if (n == 1 && out[seg] == '.') {
            o = seg;                          /* "." : drop it, keep the slash before it */
        } else if (n == 2 && out[seg] == '.' && out[seg + 1] == '.') {
            o = seg;                          /* "..": drop it and the segment before, if any */
            if (o > 1) {
                o--;                          /* the '/' ending the previous segment */
                while (out[o - 1] != '/')
                    o--;
            }
        } else if (n > 0 && i < len) {
            out[o++] = '/';                   /* an ordinary segment followed by a slash */
        }
        /* n == 0: an empty segment (a repeated or trailing slash); out already ends with '/'. */
        i++;                                  /* past the '/' (or past the end, which ends the loop) */
    }
    out[o] = '\0';
    return (long)o;
}
