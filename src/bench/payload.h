#pragma once
// The bytes bench sends, chosen so every echoed byte can be checked without keeping
// a copy: message `seq` of connection `conn` starts with conn (4 bytes, little
// endian) and seq (8 bytes), and the rest is a pseudo-random function of (conn, seq,
// position). A byte from the wrong connection, the wrong message or the wrong place
// does not match. A connection's TCP byte stream is its messages back to back, so any
// offset in it can be regenerated from integers alone (no per-message buffers).
#include <cstddef>
#include <cstdint>

namespace eco::bench {

inline constexpr uint32_t kHeaderBytes = 12;

// Writes bytes [offset, offset+len) of the stream of `conn` with messages of `size`.
void fill_stream(uint32_t conn, uint32_t size, uint64_t offset, size_t len, uint8_t* out);

// Compares `data` with bytes [offset, offset+len) of that stream; returns the index
// of the first byte that differs, or len when all match.
size_t verify_stream(uint32_t conn, uint32_t size, uint64_t offset, const uint8_t* data, size_t len);

// The text form of the same stream, for echo servers that work line by line (gnutls-serv
// --echo echoes a C string once it holds a newline): each byte b becomes '0' + (b & 63)
// (printable, never NUL), and the last byte of every message is '\n'.
void fill_text_stream(uint32_t conn, uint32_t size, uint64_t offset, size_t len, uint8_t* out);
size_t verify_text_stream(uint32_t conn, uint32_t size, uint64_t offset, const uint8_t* data, size_t len);

// Reads conn and seq back from the first 12 bytes of a message (UDP replies).
void read_header(const uint8_t* msg, uint32_t& conn, uint64_t& seq);

}  // namespace eco::bench
