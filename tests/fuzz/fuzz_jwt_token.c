/*
 * fuzz_jwt_token.c - libFuzzer target for the token path of dataplane/jwt_auth.h.
 *
 * The first input byte picks a mode: 0 the rest is a token as sent; 1 the rest is "HEADER\nPAYLOAD" JSON
 * texts, made into a token correctly signed with the policy's HS256 key (so the claim checks are reached);
 * 2 the same, then one byte of the token flipped. Policy: HS256 only, one oct key (kid "k"), issuer and
 * audience fixed, claims forwarded. Each run checks:
 *   - the result is one of the known reasons; a token over BGW_JWT_MAX_TOKEN is TOO_LARGE;
 *   - OK only when the token is three segments whose signature is the HMAC of the first two under the key
 *     (recomputed here), its alg is HS256 and its iss the policy's;
 *   - the forwarded claim headers are well-formed lines ("name: value\r\n", no CR, LF or NUL in a value);
 *   - the kept claims ("sub", "tenant") are found within their block;
 *   - the same token checked again through the cache gives the same result and the same headers.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "jwt_auth.h"

#define NOW 1700000000LL

static const unsigned char SECRET[32] = "fuzz-secret-fuzz-secret-fuzz-sec";
static char *algs[] = {"HS256"};
static char *auds[] = {"api"};
static char *names[] = {"sub", "scope", "n"};
static char *headers[] = {"x-user", "x-scope", "x-n"};
static struct bgw_auth_policy g_cfg;
static struct bgw_jwt_policy *g_policy;
static struct bgw_jwt_cache *g_cache;

static void b64u(const unsigned char *in, size_t n, char *out)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[o++] = al[v >> 18 & 63];
        out[o++] = al[v >> 12 & 63];
        if (i + 1 < n) out[o++] = al[v >> 6 & 63];
        if (i + 2 < n) out[o++] = al[v & 63];
    }
    out[o] = 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    static char jwks[256], k[64];
    b64u(SECRET, sizeof SECRET, k);
    snprintf(jwks, sizeof jwks, "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"k\",\"k\":\"%s\"}]}", k);
    g_cfg = (struct bgw_auth_policy){.name = "p", .issuer = "https://issuer.test", .audiences = auds,
                                     .n_audiences = 1, .algorithms = algs, .n_algorithms = 1, .jwks_json = jwks,
                                     .forward_claim_names = names, .forward_claim_headers = headers,
                                     .n_forward_claims = 3, .clock_skew_s = 60};
    char err[128];
    g_policy = bgw_jwt_policy_compile(&g_cfg, NULL, err, sizeof err);
    g_cache = bgw_jwt_cache_new(64);
    if (!g_policy || !g_cache || bgw_jwt_policy_keys(g_policy) != 1) abort();
    if (bgw_jwt_policy_keep_claim(g_policy, "sub") < 0 || bgw_jwt_policy_keep_claim(g_policy, "tenant") < 0) abort();
    return 0;
}

/* Strict base64url decode (as the module does); -1 when invalid. */
static long unb64(const char *in, size_t len, unsigned char *out)
{
    uint32_t acc = 0;
    int bits = 0;
    long o = 0;
    for (size_t i = 0; i < len; i++) {
        const char *al = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        const char *p = memchr(al, in[i], 64);
        if (!p || !in[i]) return -1;
        acc = (acc << 6) | (uint32_t)(p - al);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return o;
}

static void check_ok_is_genuine(const char *tok, size_t len)
{
    const char *d1 = memchr(tok, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
    if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok))) abort();
    unsigned char mac[EVP_MAX_MD_SIZE], sig[BGW_JWT_MAX_TOKEN];
    unsigned int ml = 0;
    HMAC(EVP_sha256(), SECRET, sizeof SECRET, (const unsigned char *)tok, (size_t)(d2 - tok), mac, &ml);
    long sl = unb64(d2 + 1, len - (size_t)(d2 + 1 - tok), sig);
    if (sl != (long)ml || CRYPTO_memcmp(mac, sig, ml) != 0) abort();     /* accepted without the key */
    unsigned char hdr[BGW_JWT_MAX_TOKEN];
    long hl = unb64(tok, (size_t)(d1 - tok), hdr);
    if (hl < 0 || !memmem(hdr, (size_t)hl, "HS256", 5)) abort();
}

static void check_headers(const char *h, size_t n)
{
    size_t i = 0;
    while (i < n) {
        const char *eol = memmem(h + i, n - i, "\r\n", 2);
        if (!eol) abort();
        const char *colon = memchr(h + i, ':', (size_t)(eol - h - i));
        if (!colon || colon == h + i || colon + 1 >= eol || colon[1] != ' ') abort();
        for (const char *p = h + i; p < eol; p++)
            if (*p == '\r' || *p == '\n' || *p == 0) abort();
        i = (size_t)(eol - h) + 2;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    static char tok[4 * BGW_JWT_MAX_TOKEN];
    size_t len;
    uint8_t mode = data[0] % 3;
    data++, size--;
    if (mode == 0 || size > BGW_JWT_MAX_TOKEN) {
        len = size < sizeof tok ? size : sizeof tok;
        memcpy(tok, data, len);
    } else {
        const uint8_t *nl = memchr(data, '\n', size);
        size_t hl = nl ? (size_t)(nl - data) : size;
        size_t pl = nl ? size - hl - 1 : 0;
        b64u(data, hl, tok);
        strcat(tok, ".");
        b64u(nl ? nl + 1 : data, pl, tok + strlen(tok));
        size_t input = strlen(tok);
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int ml = 0;
        HMAC(EVP_sha256(), SECRET, sizeof SECRET, (unsigned char *)tok, input, mac, &ml);
        strcat(tok, ".");
        b64u(mac, ml, tok + strlen(tok));
        len = strlen(tok);
        if (mode == 2 && len) tok[(hl * 7 + pl) % len] ^= (char)(1 + hl % 255);
    }

    struct bgw_jwt_verdict v;
    enum bgw_jwt_result r = bgw_jwt_check(g_policy, NULL, tok, len, NOW, &v);
    if (r < BGW_JWT_OK || r > BGW_JWT_BAD_AUDIENCE) abort();
    if (len > BGW_JWT_MAX_TOKEN && r != BGW_JWT_TOO_LARGE) abort();
    if (len == 0 && r != BGW_JWT_MISSING) abort();
    if (!bgw_jwt_reason(r) || !bgw_jwt_www_authenticate(r)) abort();
    char first[8192];
    size_t first_len = 0;
    if (r == BGW_JWT_OK) {
        check_ok_is_genuine(tok, len);
        check_headers(v.add_headers, v.add_headers_len);
        size_t vl;
        const char *sub = bgw_jwt_claim_find(v.claims, v.claims_len, "sub", 3, &vl);
        if (sub && (memchr(sub, 0, vl) || sub + vl > v.claims + v.claims_len)) abort();
        if (v.add_headers_len >= sizeof first) abort();
        memcpy(first, v.add_headers, v.add_headers_len);
        first_len = v.add_headers_len;
    }
    for (int i = 0; i < 2; i++) {                     /* through the cache: filled, then hit */
        enum bgw_jwt_result again = bgw_jwt_check(g_policy, g_cache, tok, len, NOW, &v);
        if (again != r) abort();
        if (r == BGW_JWT_OK && (v.add_headers_len != first_len || memcmp(v.add_headers, first, first_len) != 0))
            abort();
    }
    return 0;
}
