#pragma once
// Owners for the OpenSSL objects src/tls holds (freed exactly once, never copied), and the
// one place that turns OpenSSL's thread-local error queue into text.
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

namespace eco::tls {

struct SslCtxFree { void operator()(SSL_CTX* p) const { SSL_CTX_free(p); } };
struct X509Free { void operator()(X509* p) const { X509_free(p); } };
struct PkeyFree { void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); } };
struct ChainFree { void operator()(STACK_OF(X509)* p) const { sk_X509_pop_free(p, X509_free); } };
struct SessionFree { void operator()(SSL_SESSION* p) const { SSL_SESSION_free(p); } };

using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using ChainPtr = std::unique_ptr<STACK_OF(X509), ChainFree>;

// Empties this thread's OpenSSL error queue and returns its first entry as text
// ("no such file", "wrong version number"), or `fallback` when it was empty.
std::string take_openssl_error(const char* fallback = "unknown OpenSSL error");

}  // namespace eco::tls
