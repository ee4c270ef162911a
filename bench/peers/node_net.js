// Peer: Node.js `net` echo server, socket.pipe(socket) as Node's docs show,
// plus a dgram socket for UDP on the same port. Benchmark reference only,
// not part of eco. Single-threaded (one event loop), like Node.
//
//   node node_net.js PORT
'use strict';
const net = require('net');
const dgram = require('dgram');

const port = Number(process.argv[2]);
const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
  socket.pipe(socket);
});
server.listen({ host: '127.0.0.1', port, backlog: 4096 });

const udp = dgram.createSocket('udp4');
udp.on('message', (msg, rinfo) => udp.send(msg, rinfo.port, rinfo.address));
udp.bind(port, '127.0.0.1');
