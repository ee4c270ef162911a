// Peer: standalone Asio echo server written the way Asio's own
// examples/cpp11/echo/async_tcp_echo_server.cpp is (a session that alternates
// async_read_some and async_write, a server that re-arms async_accept), plus
// the async_udp_echo_server example's UDP loop on the same port. Benchmark
// reference only, not part of eco. One io_context, run by N threads.
//
//   asio_echo PORT [THREADS]
#include <cstdlib>
#include <iostream>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include <asio.hpp>

using asio::ip::tcp;
using asio::ip::udp;

class session : public std::enable_shared_from_this<session> {
 public:
  explicit session(tcp::socket socket) : socket_(std::move(socket)) {}
  void start() { do_read(); }

 private:
  void do_read() {
    auto self(shared_from_this());
    socket_.async_read_some(asio::buffer(data_, max_length), [this, self](std::error_code ec, std::size_t length) {
      if (!ec) do_write(length);
    });
  }

  void do_write(std::size_t length) {
    auto self(shared_from_this());
    asio::async_write(socket_, asio::buffer(data_, length), [this, self](std::error_code ec, std::size_t /*length*/) {
      if (!ec) do_read();
    });
  }

  tcp::socket socket_;
  // The example's 1 KiB would split a 16 KiB message into 16 reads; 64 KiB is
  // what a user tuning it for this load would pick (and matches the others).
  enum { max_length = 65536 };
  char data_[max_length];
};

class server {
 public:
  server(asio::io_context& io_context, unsigned short port)
      : acceptor_(io_context, tcp::endpoint(asio::ip::make_address("127.0.0.1"), port)) {
    do_accept();
  }

 private:
  void do_accept() {
    acceptor_.async_accept([this](std::error_code ec, tcp::socket socket) {
      if (!ec) {
        socket.set_option(tcp::no_delay(true));
        std::make_shared<session>(std::move(socket))->start();
      }
      do_accept();
    });
  }

  tcp::acceptor acceptor_;
};

class udp_server {
 public:
  udp_server(asio::io_context& io_context, unsigned short port)
      : socket_(io_context, udp::endpoint(asio::ip::make_address("127.0.0.1"), port)) {
    do_receive();
  }

 private:
  void do_receive() {
    socket_.async_receive_from(asio::buffer(data_, max_length), sender_endpoint_,
                               [this](std::error_code ec, std::size_t bytes_recvd) {
                                 if (!ec && bytes_recvd > 0)
                                   do_send(bytes_recvd);
                                 else
                                   do_receive();
                               });
  }

  void do_send(std::size_t length) {
    socket_.async_send_to(asio::buffer(data_, length), sender_endpoint_,
                          [this](std::error_code /*ec*/, std::size_t /*bytes_sent*/) { do_receive(); });
  }

  udp::socket socket_;
  udp::endpoint sender_endpoint_;
  enum { max_length = 65536 };
  char data_[max_length];
};

int main(int argc, char* argv[]) {
  try {
    if (argc < 2) {
      std::cerr << "usage: asio_echo PORT [THREADS]\n";
      return 2;
    }
    auto port = static_cast<unsigned short>(std::atoi(argv[1]));
    int threads = argc > 2 ? std::atoi(argv[2]) : 1;
    if (threads < 1) threads = 1;
    asio::io_context io_context(threads);
    server s(io_context, port);
    udp_server u(io_context, port);
    std::vector<std::thread> pool;
    for (int i = 1; i < threads; ++i) pool.emplace_back([&io_context] { io_context.run(); });
    io_context.run();
    for (auto& t : pool) t.join();
  } catch (std::exception& e) {
    std::cerr << "asio_echo: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
