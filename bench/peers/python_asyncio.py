"""Peer: echo server on Python asyncio streams, optionally on uvloop.
Benchmark reference only, not part of eco. Written the way the asyncio docs'
TCP echo example is (start_server, read/write/drain per connection), plus a
DatagramProtocol for UDP on the same port. Single-threaded, like asyncio.

    python3 python_asyncio.py PORT [--uvloop]
"""
import asyncio
import socket
import sys


async def handle(reader, writer):
    sock = writer.get_extra_info('socket')
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()  # backpressure: wait while the client is not reading
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


class UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


async def main(port):
    loop = asyncio.get_running_loop()
    server = await asyncio.start_server(handle, '127.0.0.1', port, backlog=4096, reuse_address=True)
    await loop.create_datagram_endpoint(UdpEcho, local_addr=('127.0.0.1', port))
    async with server:
        await server.serve_forever()


if __name__ == '__main__':
    port = int(sys.argv[1])
    if '--uvloop' in sys.argv[2:]:
        import uvloop
        uvloop.install()
    asyncio.run(main(port))
