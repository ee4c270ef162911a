#pragma once
// Certificates and keys: PEM files read whole (leaf, then its chain), the names a
// certificate covers, the ephemeral self-signed certificate eco makes when none is given,
// and fingerprints.
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "tls/ossl.h"
#include "util/result.h"

namespace eco::tls {

// A certificate with its chain and private key, ready to be served.
struct Credentials {
  X509Ptr cert;
  ChainPtr chain;  // intermediates after the leaf (may be empty, never null)
  PkeyPtr key;
  std::string cert_file, key_file;  // where it came from ("" when generated)
  std::vector<std::string> names;   // DNS and IP subjectAltNames, lowercased; the CN when there are none
  std::string fingerprint;          // SHA-256 of the DER, "AB:CD:..." (as openssl x509 -fingerprint)
  std::string key_type;             // "ECDSA P-256", "RSA 2048", ...
  std::time_t not_after = 0;
};

// Reads a full-chain PEM certificate file and its key; checks that they match.
// Errors name the file and the reason: "cannot read TLS certificate 'x.pem': No such file ...".
Result<Credentials> load_credentials(const std::string& cert_file, const std::string& key_file);

// An ECDSA P-256 certificate signed by its own key, valid from a day ago for a year, for
// localhost, 127.0.0.1, ::1 and `extra_hosts` (DNS names or IP addresses).
Result<Credentials> make_self_signed(const std::vector<std::string>& extra_hosts);

// What make_certificate builds (the ephemeral certificate is one; tests build CAs, leaves
// and expired certificates with it).
struct CertSpec {
  std::string common_name = "eco";
  std::vector<std::string> hosts;   // subjectAltNames: DNS names or IP addresses
  long valid_from_s = -24 * 3600;   // notBefore, relative to now
  long valid_until_s = 365 * 24 * 3600L;
  bool ca = false;                  // a CA that can sign others
  bool client = false;              // extendedKeyUsage clientAuth instead of serverAuth
};
// A new ECDSA P-256 key and its certificate, signed by `issuer` (nullptr: by itself).
Result<Credentials> make_certificate(const CertSpec& spec, const Credentials* issuer = nullptr);
std::string key_to_pem(EVP_PKEY* key);

// Loads the certificates of a PEM file (a CA bundle); error if it holds none.
Result<std::vector<X509Ptr>> load_certificates(const std::string& file, std::string_view what);

std::string fingerprint_sha256(X509* cert);
std::string to_pem(X509* cert);
std::string subject_of(X509* cert);  // RFC 2253: "CN=localhost,O=eco"

// Does `name` (a host name as sent in SNI) match one of `patterns` ("example.com",
// "*.example.com": one leftmost label)? Case-insensitive.
bool name_matches(std::string_view name, const std::vector<std::string>& patterns);

// Writes `data` to `path` whole (to a temporary file, then renamed).
Status write_file_atomically(const std::string& path, std::string_view data);

}  // namespace eco::tls
