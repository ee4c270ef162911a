#include "tls/cert.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace eco::tls {
namespace {

struct BioFree { void operator()(BIO* p) const { BIO_free(p); } };
using BioPtr = std::unique_ptr<BIO, BioFree>;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

Result<BioPtr> open_file(const std::string& file, std::string_view what) {
  errno = 0;
  BioPtr bio(BIO_new_file(file.c_str(), "r"));
  if (!bio) {
    ERR_clear_error();
    return Error{fmt::format("cannot read {} '{}': {}", what, file, std::strerror(errno ? errno : ENOENT)), errno};
  }
  return bio;
}

std::string ip_text(const ASN1_OCTET_STRING* ip) {
  char buf[INET6_ADDRSTRLEN] = "";
  int len = ASN1_STRING_length(ip);
  const unsigned char* p = ASN1_STRING_get0_data(ip);
  if (len == 4) inet_ntop(AF_INET, p, buf, sizeof buf);
  if (len == 16) inet_ntop(AF_INET6, p, buf, sizeof buf);
  return buf;
}

std::vector<std::string> names_of(X509* cert) {
  std::vector<std::string> out;
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
    if (g->type == GEN_DNS) {
      const auto* s = g->d.dNSName;
      out.push_back(lower(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), size_t(ASN1_STRING_length(s)))));
    } else if (g->type == GEN_IPADD) {
      out.push_back(ip_text(g->d.iPAddress));
    }
  }
  GENERAL_NAMES_free(sans);
  if (out.empty()) {  // RFC 6125 falls back to the CN only without DNS names
    char cn[256] = "";
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) > 0) out.push_back(lower(cn));
  }
  return out;
}

std::string key_type_of(EVP_PKEY* key) {
  int bits = EVP_PKEY_get_bits(key);
  if (EVP_PKEY_is_a(key, "EC")) {
    char group[64] = "";
    size_t len = 0;
    if (EVP_PKEY_get_group_name(key, group, sizeof group, &len) == 1) {
      if (std::strcmp(group, "prime256v1") == 0) return "ECDSA P-256";
      if (std::strcmp(group, "secp384r1") == 0) return "ECDSA P-384";
      return fmt::format("ECDSA {}", group);
    }
    return fmt::format("ECDSA {}", bits);
  }
  return fmt::format("{} {}", EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "key", bits);
}

void describe(Credentials& c) {
  c.names = names_of(c.cert.get());
  c.fingerprint = fingerprint_sha256(c.cert.get());
  c.key_type = key_type_of(c.key.get());
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(c.cert.get()), &tm) == 1) c.not_after = timegm(&tm);
}

}  // namespace

std::string take_openssl_error(const char* fallback) {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return fallback;
  char buf[256];
  const char* reason = ERR_reason_error_string(e);
  if (reason) return reason;
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

Result<std::vector<X509Ptr>> load_certificates(const std::string& file, std::string_view what) {
  auto bio = open_file(file, what);
  if (!bio) return bio.error();
  std::vector<X509Ptr> certs;
  while (X509* x = PEM_read_bio_X509(bio->get(), nullptr, nullptr, nullptr)) certs.emplace_back(x);
  ERR_clear_error();  // the read that ends the loop leaves "no start line"
  if (certs.empty()) return Error{fmt::format("{} '{}' holds no PEM certificate", what, file)};
  return certs;
}

Result<Credentials> load_credentials(const std::string& cert_file, const std::string& key_file) {
  auto certs = load_certificates(cert_file, "TLS certificate");
  if (!certs) return certs.error();
  auto kbio = open_file(key_file, "TLS key");
  if (!kbio) return kbio.error();
  Credentials c;
  c.key.reset(PEM_read_bio_PrivateKey(kbio->get(), nullptr, nullptr, nullptr));
  if (!c.key) {
    return Error{fmt::format("TLS key '{}' holds no PEM private key ({})", key_file,
                             take_openssl_error("unreadable"))};
  }
  c.cert = std::move(certs->front());
  c.chain.reset(sk_X509_new_null());
  for (size_t i = 1; i < certs->size(); ++i) sk_X509_push(c.chain.get(), (*certs)[i].release());
  if (X509_check_private_key(c.cert.get(), c.key.get()) != 1) {
    ERR_clear_error();
    return Error{fmt::format("TLS key '{}' does not match certificate '{}'", key_file, cert_file)};
  }
  c.cert_file = cert_file;
  c.key_file = key_file;
  describe(c);
  return c;
}

Result<Credentials> make_certificate(const CertSpec& spec, const Credentials* issuer) {
  Credentials c;
  c.key.reset(EVP_EC_gen("P-256"));
  c.cert.reset(X509_new());
  c.chain.reset(sk_X509_new_null());
  if (!c.key || !c.cert || !c.chain) return Error{"cannot generate a TLS key: " + take_openssl_error()};
  X509* x = c.cert.get();
  X509_set_version(x, X509_VERSION_3);
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return Error{"cannot generate a serial number: " + take_openssl_error()};
  serial[0] &= 0x7f;  // a positive INTEGER
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(x), spec.valid_from_s);
  X509_gmtime_adj(X509_getm_notAfter(x), spec.valid_until_s);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("eco"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(spec.common_name.c_str()), -1, -1, 0);
  X509* signer = issuer ? issuer->cert.get() : x;
  X509_set_issuer_name(x, X509_get_subject_name(signer));
  X509_set_pubkey(x, c.key.get());

  std::string san;
  for (const std::string& h : spec.hosts) {
    unsigned char buf[16];
    bool ip = inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
    san += fmt::format("{}{}:{}", san.empty() ? "" : ",", ip ? "IP" : "DNS", h);
  }
  std::vector<std::pair<int, std::string>> exts{
      {NID_basic_constraints, spec.ca ? "critical,CA:TRUE" : "critical,CA:FALSE"},
      {NID_key_usage, spec.ca ? "critical,keyCertSign,cRLSign,digitalSignature" : "critical,digitalSignature"},
      {NID_subject_key_identifier, "hash"}};
  if (!spec.ca) exts.push_back({NID_ext_key_usage, spec.client ? "clientAuth" : "serverAuth"});
  if (!san.empty()) exts.push_back({NID_subject_alt_name, san});
  for (const auto& [nid, value] : exts) {
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, signer, x, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
    if (!ext || X509_add_ext(x, ext, -1) != 1) {
      X509_EXTENSION_free(ext);
      return Error{"cannot build a certificate extension: " + take_openssl_error()};
    }
    X509_EXTENSION_free(ext);
  }
  EVP_PKEY* signing_key = issuer ? issuer->key.get() : c.key.get();
  if (X509_sign(x, signing_key, EVP_sha256()) <= 0) return Error{"cannot sign the TLS certificate: " + take_openssl_error()};
  describe(c);
  return c;
}

Result<Credentials> make_self_signed(const std::vector<std::string>& extra_hosts) {
  CertSpec spec;
  spec.common_name = "eco ephemeral certificate";
  spec.hosts = {"localhost", "127.0.0.1", "::1"};  // a day back: tolerate a client clock behind
  for (const std::string& h : extra_hosts)
    if (!h.empty() && std::find(spec.hosts.begin(), spec.hosts.end(), lower(h)) == spec.hosts.end())
      spec.hosts.push_back(lower(h));
  return make_certificate(spec);
}

std::string key_to_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) return {};
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, size_t(n));
}

std::string fingerprint_sha256(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &len) != 1) return {};
  std::string out;
  for (unsigned int i = 0; i < len; ++i) out += fmt::format("{}{:02X}", i ? ":" : "", md[i]);
  return out;
}

std::string to_pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return {};
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, size_t(n));
}

std::string subject_of(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) < 0) return {};
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, size_t(n));
}

bool name_matches(std::string_view name, const std::vector<std::string>& patterns) {
  std::string n = lower(std::string(name));
  for (const std::string& p : patterns) {
    if (p == n) return true;
    // "*.example.com" covers "a.example.com", not "example.com" nor "a.b.example.com".
    if (p.size() > 2 && p.compare(0, 2, "*.") == 0) {
      size_t dot = n.find('.');
      if (dot != std::string::npos && dot > 0 && n.compare(dot, std::string::npos, p, 1, std::string::npos) == 0)
        return true;
    }
  }
  return false;
}

Status write_file_atomically(const std::string& path, std::string_view data) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Error{fmt::format("cannot write '{}': {}", tmp, std::strerror(errno)), errno};
  size_t off = 0;
  while (off < data.size()) {
    ssize_t w = ::write(fd, data.data() + off, data.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return Error{fmt::format("cannot write '{}': {}", tmp, std::strerror(err)), err};
    }
    off += size_t(w);
  }
  if (::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Error{fmt::format("cannot write '{}': {}", path, std::strerror(err)), err};
  }
  return {};
}

}  // namespace eco::tls
