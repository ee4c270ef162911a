#pragma once
#include <string>
#include <string_view>

namespace eco::client {

// Python's repr() of a bytes object (b'...'), as the tutorial's client prints it.
std::string python_bytes_repr(std::string_view bytes);

}  // namespace eco::client
